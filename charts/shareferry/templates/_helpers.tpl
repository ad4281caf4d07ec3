{{/* Names, labels, images and the namespace lists every template shares. */}}

{{- define "shareferry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-shareferry", or the release name when it already contains the chart name. */}}
{{- define "shareferry.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "shareferry.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select the operator pod (stable across upgrades). */}}
{{- define "shareferry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shareferry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The standard labels on every object the chart renders. */}}
{{- define "shareferry.labels" -}}
helm.sh/chart: {{ include "shareferry.chart" . }}
app.kubernetes.io/name: {{ include "shareferry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: shareferry
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "shareferry.operatorServiceAccountName" -}}
{{- default (include "shareferry.fullname" .) .Values.operator.serviceAccount.name }}
{{- end }}

{{- define "shareferry.workerServiceAccountName" -}}
{{- default (printf "%s-worker" (include "shareferry.fullname" . | trunc 56 | trimSuffix "-")) .Values.worker.serviceAccount.name }}
{{- end }}

{{/* repository[:tag][@digest] from an image block, falling back to a default block. */}}
{{- define "shareferry.imageRef" -}}
{{- $image := .image }}
{{- $fallback := .fallback }}
{{- $repository := default $fallback.repository $image.repository }}
{{- $tag := default (default .appVersion $fallback.tag) $image.tag }}
{{- $digest := default $fallback.digest $image.digest }}
{{- if $digest }}
{{- printf "%s@%s" $repository $digest }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{- define "shareferry.image" -}}
{{- include "shareferry.imageRef" (dict "image" .Values.image "fallback" .Values.image "appVersion" .Chart.AppVersion) }}
{{- end }}

{{- define "shareferry.workerImage" -}}
{{- include "shareferry.imageRef" (dict "image" .Values.worker.image "fallback" .Values.image "appVersion" .Chart.AppVersion) }}
{{- end }}

{{/* "true" when the operator serves every namespace. */}}
{{- define "shareferry.clusterWide" -}}
{{- if not .Values.watchNamespaces }}true{{ end }}
{{- end }}

{{/*
The namespaces that get the worker ServiceAccount and Role, comma-separated: the watched ones,
or (cluster-wide) workerNamespaces or the release namespace, plus the namespaces of the rendered
CopyJobs and SyncSchedules. Also checks that the namespace settings agree with each other.
*/}}
{{- define "shareferry.workerNamespaces" -}}
{{- $namespaces := list }}
{{- if .Values.watchNamespaces }}
{{- if .Values.workerNamespaces }}
{{- fail "workerNamespaces is for cluster-wide mode only: with watchNamespaces set, the worker ServiceAccount goes into each watched namespace; leave workerNamespaces empty" }}
{{- end }}
{{- $namespaces = .Values.watchNamespaces }}
{{- else if .Values.workerNamespaces }}
{{- $namespaces = .Values.workerNamespaces }}
{{- else }}
{{- $namespaces = list .Release.Namespace }}
{{- end }}
{{- range concat .Values.copyJobs .Values.syncSchedules }}
{{- $namespaces = append $namespaces (default $.Release.Namespace .namespace) }}
{{- end }}
{{- join "," (uniq $namespaces) }}
{{- end }}

{{/*
One migration resource: {root, kind, item}. Fails when a namespaced operator would not see it.
*/}}
{{- define "shareferry.migrationResource" -}}
{{- $root := .root }}
{{- $item := .item }}
{{- $namespace := default $root.Release.Namespace $item.namespace }}
{{- if and $root.Values.watchNamespaces (not (has $namespace $root.Values.watchNamespaces)) }}
{{- fail (printf "%s %q is in namespace %q, which the operator does not watch (watchNamespaces: %s)" .kind $item.name $namespace (join ", " $root.Values.watchNamespaces)) }}
{{- end }}
apiVersion: shareferry.dev/v1alpha1
kind: {{ .kind }}
metadata:
  name: {{ $item.name }}
  namespace: {{ $namespace }}
  labels:
    {{- include "shareferry.labels" $root | nindent 4 }}
    app.kubernetes.io/component: migration
    {{- with $item.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- $annotations := dict }}
  {{- if $root.Values.migration.keepOnUninstall }}
  {{- $_ := set $annotations "helm.sh/resource-policy" "keep" }}
  {{- end }}
  {{- with $item.annotations }}
  {{- $annotations = merge (deepCopy .) $annotations }}
  {{- end }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- toYaml $item.spec | nindent 2 }}
{{- end }}
