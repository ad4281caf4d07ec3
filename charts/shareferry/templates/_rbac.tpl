{{/*
The operator's permissions, the same in a ClusterRole (cluster-wide) or a Role per watched
namespace. Each rule lists what the code does with it; nothing else is granted:
- the three kinds: kopf lists and watches them and patches metadata (finalizers, its
  annotations); the operator reads them; a SyncSchedule creates its CopyJobs and deletes those
  beyond its history limits;
- their status subresources: the operator writes status (kopf patches it there);
- copyjobs/finalizers and syncschedules/finalizers: update, which the API server asks of whoever
  creates an object with an ownerReference that sets blockOwnerDeletion (a worker Job owned by
  its CopyJob, a CopyJob owned by its SyncSchedule) when OwnerReferencesPermissionEnforcement is on;
- batch Jobs: the worker Jobs (created, watched, deleted with the CopyJob);
- Secrets: get only (a CopyJob's Secrets must exist; a FileShare's credentials are read);
- ConfigMaps: list and delete the MD5 result ConfigMaps of a deleted CopyJob;
- Events: create (kopf posts core/v1 Events).
Namespaces and CustomResourceDefinitions are not granted: cluster-wide, kopf needs no namespace
list; namespaced, it watches the exact names given; without CRD access it only skips noticing
CRD changes at run time (the chart installs the CRDs before the operator starts).
*/}}
{{- define "shareferry.operatorRules" -}}
- apiGroups: ["shareferry.dev"]
  resources: ["copyjobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["shareferry.dev"]
  resources: ["fileshares", "syncschedules"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["shareferry.dev"]
  resources: ["copyjobs/status", "fileshares/status", "syncschedules/status"]
  verbs: ["patch"]
- apiGroups: ["shareferry.dev"]
  resources: ["copyjobs/finalizers", "syncschedules/finalizers"]
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["list", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/*
The worker's permissions in its namespace: read its CopyJob and the FileShares it names, report
into the CopyJob's status, write its MD5 results ConfigMap (create, or replace a previous
attempt's). Nothing else: no Secrets (credentials come as environment variables), no Jobs.
*/}}
{{- define "shareferry.workerRules" -}}
- apiGroups: ["shareferry.dev"]
  resources: ["copyjobs", "fileshares"]
  verbs: ["get"]
- apiGroups: ["shareferry.dev"]
  resources: ["copyjobs/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create", "update"]
{{- end }}
