"""Build the batch/v1 Job that runs a CopyJob's workers: a pure function of the CopyJob.

One Job per CopyJob, named by :func:`shareferry.api.names.worker_job_name`, owned by the CopyJob
(deleting the CopyJob deletes the Job and its pods), running ``shareferry worker`` with:

* nothing secret in its arguments: the CopyJob's namespace and name and the shard count come as
  plain environment variables, credentials only through ``secretKeyRef`` (each key of
  :data:`~shareferry.api.names.CREDENTIAL_KEYS` under the side's prefix, ``optional`` so a Secret
  needs only the keys it uses);
* an Indexed Job when ``parallelism > 1``: pod *i* takes shard ``JOB_COMPLETION_INDEX`` of N;
* ``restartPolicy: Never`` (the Job's ``backoffLimit`` retries a failed pod), a restricted
  security context (non-root, read-only root filesystem, no privilege escalation, all
  capabilities dropped, seccomp RuntimeDefault), a writable ``emptyDir`` for ``/tmp`` and one
  for the job plans, or the CopyJob's ``stateVolume`` claim so a retried pod resumes its shard;
* PVC endpoints mounted at ``<volume root>/source`` and ``<volume root>/destination``;
* the pod label ``azure.workload.identity/use: "true"`` when a side asks for workload identity.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from shareferry.api import names
from shareferry.controller.settings import OperatorSettings

WORKER_CONTAINER = "worker"
EXIT_BAD_SPEC = 2
"""``shareferry worker``'s exit code for a spec no retry can fix."""
WORKER_COMMAND = ("shareferry", "worker")
JOB_DIR = "/var/lib/shareferry/jobs"
WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"
SIDES = ("source", "destination")
_PREFIX = {"source": names.SOURCE_ENV_PREFIX, "destination": names.DESTINATION_ENV_PREFIX}


def standard_labels(copyjob_name: str) -> dict[str, str]:
    """The labels on the Job, its pods and every object a CopyJob owns."""
    return {
        "app.kubernetes.io/name": "shareferry",
        "app.kubernetes.io/component": "worker",
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
        names.LABEL_COPYJOB: copyjob_name,
    }


def owner_reference(body: Mapping[str, Any], *, kind: str = names.COPYJOB_KIND) -> dict[str, Any]:
    """A controller ownerReference to ``body`` (garbage collection deletes the child with it)."""
    meta = body.get("metadata", {})
    return {
        "apiVersion": names.API_VERSION,
        "kind": kind,
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def secret_for(side: Mapping[str, Any], fileshare_secrets: Mapping[str, str | None]) -> str | None:
    """The Secret holding one side's credentials: its own, or its FileShare's (None: none)."""
    if "fileShare" in side:
        return fileshare_secrets.get(side["fileShare"]["name"])
    credentials = side.get("credentials") or {}
    secret = credentials.get("secretName")
    return str(secret) if secret else None


def uses_workload_identity(side: Mapping[str, Any], fileshare_identity: Mapping[str, bool]) -> bool:
    if "fileShare" in side:
        return bool(fileshare_identity.get(side["fileShare"]["name"], False))
    return bool(side.get("workloadIdentity", False))


def credential_env(side_name: str, secret: str | None) -> list[dict[str, Any]]:
    """One optional secretKeyRef variable per credential key, under the side's prefix."""
    if secret is None:
        return []
    return [
        {
            "name": _PREFIX[side_name] + key,
            "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": True}},
        }
        for key in names.CREDENTIAL_KEYS
    ]


def build_worker_job(
    copyjob: Mapping[str, Any],
    *,
    settings: OperatorSettings,
    spec_hash: str,
    fileshare_secrets: Mapping[str, str | None] | None = None,
    fileshare_identity: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """The worker Job for ``copyjob`` (its spec with the CRD defaults applied).

    ``fileshare_secrets`` maps each FileShare the CopyJob references to its credentials Secret
    (None for workload identity); ``fileshare_identity`` says which of them use workload identity.
    """
    meta = copyjob["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    spec = copyjob["spec"]
    secrets = fileshare_secrets or {}
    identity = fileshare_identity or {}
    parallelism = int(spec.get("parallelism", 1))
    labels = standard_labels(name)
    pod_labels = dict(labels)
    if any(uses_workload_identity(spec[side], identity) for side in SIDES):
        pod_labels[WORKLOAD_IDENTITY_LABEL] = "true"

    env: list[dict[str, Any]] = [
        {"name": names.ENV_COPYJOB_NAMESPACE, "value": namespace},
        {"name": names.ENV_COPYJOB_NAME, "value": name},
        {"name": names.ENV_SHARD_COUNT, "value": str(parallelism)},
        {"name": names.ENV_STATUS_INTERVAL, "value": _seconds(settings.status_interval)},
        {"name": names.ENV_VOLUME_ROOT, "value": names.DEFAULT_VOLUME_ROOT},
        {"name": "SHAREFERRY_JOB_DIR", "value": JOB_DIR},
    ]
    for side in SIDES:
        env.extend(credential_env(side, secret_for(spec[side], secrets)))

    state = spec.get("stateVolume") or {}
    plans: dict[str, Any] = (
        {"persistentVolumeClaim": {"claimName": state["claimName"]}}
        if state.get("claimName")
        else {"emptyDir": {}}
    )
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "jobs", **plans},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108  (the pod's own emptyDir)
        {"name": "jobs", "mountPath": JOB_DIR},
    ]
    for side in SIDES:
        pvc = spec[side].get("pvc")
        if pvc is None:
            continue
        read_only = side == "source" or bool(pvc.get("readOnly", False))
        volumes.append(
            {
                "name": f"{side}-volume",
                "persistentVolumeClaim": {"claimName": pvc["claimName"], "readOnly": read_only},
            }
        )
        mounts.append(
            {
                "name": f"{side}-volume",
                "mountPath": f"{names.DEFAULT_VOLUME_ROOT}/{side}",
                "readOnly": read_only,
            }
        )

    container: dict[str, Any] = {
        "name": WORKER_CONTAINER,
        "image": settings.worker_image,
        "imagePullPolicy": settings.worker_pull_policy,
        "command": list(WORKER_COMMAND),
        "env": env,
        "volumeMounts": mounts,
        "resources": copy.deepcopy(spec.get("resources")) or _default_resources(),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": settings.worker_service_account,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": volumes,
    }
    for key in ("nodeSelector", "tolerations", "affinity"):
        if spec.get(key):
            pod_spec[key] = copy.deepcopy(spec[key])

    job_spec: dict[str, Any] = {
        "parallelism": parallelism,
        "completions": parallelism,
        "backoffLimit": int(spec.get("backoffLimit", 3)),
        "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
    }
    if parallelism > 1:
        job_spec["completionMode"] = "Indexed"
    # A bad spec (exit 2) fails the same way every time: fail the Job at once instead of
    # spending backoffLimit retries on it. A pod ended by a disruption (an eviction in a node
    # drain, a preemption, a node shutdown: the pod then carries the DisruptionTarget
    # condition) did nothing wrong: its replacement resumes, and backoffLimit is left for
    # real failures, so a cluster upgrade cannot use it up.
    job_spec["podFailurePolicy"] = {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": WORKER_CONTAINER,
                    "operator": "In",
                    "values": [EXIT_BAD_SPEC],
                },
            },
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]
    }
    for key in ("activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        if spec.get(key) is not None:
            job_spec[key] = int(spec[key])

    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": names.worker_job_name(name),
            "namespace": namespace,
            "labels": labels,
            "annotations": {names.ANNOTATION_SPEC_HASH: spec_hash},
            "ownerReferences": [owner_reference(copyjob)],
        },
        "spec": job_spec,
    }


def _default_resources() -> dict[str, Any]:
    """Requests every worker gets unless the CopyJob says otherwise (a memory limit keeps a
    runaway worker from starving its node; the core's buffers stay far below it)."""
    return {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def referenced_fileshares(spec: Mapping[str, Any]) -> Sequence[str]:
    """The FileShare names a CopyJob spec refers to (source first), without repeats."""
    found: list[str] = []
    for side in SIDES:
        ref = spec.get(side, {}).get("fileShare")
        if ref and ref["name"] not in found:
            found.append(ref["name"])
    return found
