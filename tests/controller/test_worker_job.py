"""The worker Job the operator builds for a CopyJob: a pure function, checked field by field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from shareferry.api import names
from shareferry.controller.settings import OperatorSettings, SettingsError
from shareferry.controller.worker_job import build_worker_job, referenced_fileshares

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SETTINGS = OperatorSettings(worker_image="registry.example/shareferry:1.2.3", worker_pull_policy="Always")


def example(name: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    body["metadata"].update(namespace="storage", uid="0b6c1f2e-uid")
    return body


def container(job: dict[str, Any]) -> dict[str, Any]:
    containers = job["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def env_map(job: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item for item in container(job)["env"]}


def test_share_sync_job_is_indexed_owned_and_carries_no_secret_in_its_command() -> None:
    body = example("copyjob-share-sync.yaml")
    job = build_worker_job(
        body, settings=SETTINGS, spec_hash="abc123", fileshare_secrets={"reports": "contosodata-credentials"}
    )

    assert job["metadata"]["name"] == names.worker_job_name("reports-to-dr")
    assert job["metadata"]["namespace"] == "storage"
    assert job["metadata"]["annotations"][names.ANNOTATION_SPEC_HASH] == "abc123"
    owner = job["metadata"]["ownerReferences"][0]
    assert owner == {
        "apiVersion": "shareferry.dev/v1alpha1",
        "kind": "CopyJob",
        "name": "reports-to-dr",
        "uid": "0b6c1f2e-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    spec = job["spec"]
    assert (spec["parallelism"], spec["completions"], spec["completionMode"]) == (3, 3, "Indexed")
    assert spec["backoffLimit"] == 3
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "shareferry-worker"
    worker = container(job)
    assert worker["command"] == ["shareferry", "worker"]
    assert "args" not in worker
    assert (worker["image"], worker["imagePullPolicy"]) == ("registry.example/shareferry:1.2.3", "Always")
    assert worker["resources"] == {
        "requests": {"cpu": "500m", "memory": "256Mi"},
        "limits": {"memory": "512Mi"},
    }

    env = env_map(job)
    assert env[names.ENV_COPYJOB_NAME]["value"] == "reports-to-dr"
    assert env[names.ENV_COPYJOB_NAMESPACE]["value"] == "storage"
    assert env[names.ENV_SHARD_COUNT]["value"] == "3"
    for key in names.CREDENTIAL_KEYS:
        source = env[names.SOURCE_ENV_PREFIX + key]["valueFrom"]["secretKeyRef"]
        destination = env[names.DESTINATION_ENV_PREFIX + key]["valueFrom"]["secretKeyRef"]
        assert source == {"name": "contosodata-credentials", "key": key, "optional": True}
        assert destination == {"name": "contosodr-credentials", "key": key, "optional": True}
    assert all("value" in item or "valueFrom" in item for item in worker["env"])


def test_single_worker_job_is_not_indexed_and_mounts_the_source_pvc_read_only() -> None:
    body = example("copyjob-upload.yaml")
    job = build_worker_job(
        body, settings=SETTINGS, spec_hash="h", fileshare_secrets={"reports": "contosodata-credentials"}
    )

    spec = job["spec"]
    assert "completionMode" not in spec
    assert (spec["parallelism"], spec["completions"], spec["ttlSecondsAfterFinished"]) == (1, 1, 86400)
    pod = spec["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["source-volume"]["persistentVolumeClaim"] == {
        "claimName": "reports-data",
        "readOnly": True,
    }
    mounts = {mount["name"]: mount for mount in container(job)["volumeMounts"]}
    assert mounts["source-volume"] == {
        "name": "source-volume",
        "mountPath": f"{names.DEFAULT_VOLUME_ROOT}/source",
        "readOnly": True,
    }
    assert "destination-volume" not in mounts
    env = env_map(job)
    assert not any(name.startswith(names.SOURCE_ENV_PREFIX) for name in env)  # a PVC needs no credentials
    assert env[names.DESTINATION_ENV_PREFIX + "AZURE_STORAGE_ACCOUNT_KEY"]["valueFrom"]["secretKeyRef"][
        "name"
    ] == ("contosodata-credentials")


def test_security_context_is_restricted_and_writable_paths_are_empty_dirs() -> None:
    job = build_worker_job(example("copyjob-upload.yaml"), settings=SETTINGS, spec_hash="h")
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert container(job)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    empty_dirs = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
    mounted = {mount["name"]: mount["mountPath"] for mount in container(job)["volumeMounts"]}
    assert {mounted[name] for name in empty_dirs} == {"/tmp", "/var/lib/shareferry/jobs"}
    assert env_map(job)["SHAREFERRY_JOB_DIR"]["value"] == "/var/lib/shareferry/jobs"


def test_default_resources_placement_and_workload_identity() -> None:
    body = example("copyjob-share-sync.yaml")
    del body["spec"]["resources"]
    body["spec"]["destination"] = {
        "url": "https://contosodr.file.core.windows.net/reports",
        "workloadIdentity": True,
    }
    body["spec"]["nodeSelector"] = {"pool": "transfer"}
    body["spec"]["tolerations"] = [{"key": "transfer", "operator": "Exists", "effect": "NoSchedule"}]
    body["spec"]["activeDeadlineSeconds"] = 7200
    original = copy.deepcopy(body)
    job = build_worker_job(body, settings=SETTINGS, spec_hash="h", fileshare_secrets={"reports": "s"})

    assert body == original  # the CopyJob is not modified
    resources = container(job)["resources"]
    assert resources["requests"]["memory"] and resources["limits"]["memory"]
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod["metadata"]["labels"][names.LABEL_COPYJOB] == "reports-to-dr"
    assert pod["spec"]["nodeSelector"] == {"pool": "transfer"}
    assert pod["spec"]["tolerations"][0]["key"] == "transfer"
    assert job["spec"]["activeDeadlineSeconds"] == 7200
    env = env_map(job)
    assert not any(name.startswith(names.DESTINATION_ENV_PREFIX) for name in env)


def test_referenced_fileshares_lists_each_once() -> None:
    spec = {"source": {"fileShare": {"name": "a"}}, "destination": {"fileShare": {"name": "a", "path": "x"}}}
    assert referenced_fileshares(spec) == ["a"]
    assert referenced_fileshares(example("copyjob-share-sync.yaml")["spec"]) == ["reports"]


def test_settings_from_environment_and_their_errors() -> None:
    settings = OperatorSettings.from_environment(
        {
            "SHAREFERRY_WORKER_IMAGE": "img:2",
            "SHAREFERRY_WORKER_SERVICE_ACCOUNT": "sa",
            "SHAREFERRY_STATUS_INTERVAL": "2.5",
        }
    )
    assert (settings.worker_image, settings.worker_service_account, settings.status_interval) == (
        "img:2",
        "sa",
        2.5,
    )
    with pytest.raises(SettingsError, match="SHAREFERRY_WORKER_IMAGE_PULL_POLICY must be one of"):
        OperatorSettings.from_environment({"SHAREFERRY_WORKER_IMAGE_PULL_POLICY": "Sometimes"})
    with pytest.raises(SettingsError, match="SHAREFERRY_STATUS_INTERVAL must be a positive number"):
        OperatorSettings.from_environment({"SHAREFERRY_STATUS_INTERVAL": "-1"})


def test_a_state_volume_keeps_job_plans_across_pod_retries() -> None:
    body = example("copyjob-share-sync.yaml")
    body["spec"]["stateVolume"] = {"claimName": "shareferry-plans"}
    job = build_worker_job(body, settings=SETTINGS, spec_hash="h", fileshare_secrets={"reports": "s"})
    volumes = {volume["name"]: volume for volume in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["jobs"] == {"name": "jobs", "persistentVolumeClaim": {"claimName": "shareferry-plans"}}
    mounts = {mount["name"]: mount["mountPath"] for mount in container(job)["volumeMounts"]}
    assert mounts["jobs"] == env_map(job)["SHAREFERRY_JOB_DIR"]["value"]
    assert "emptyDir" in {name: volume for name, volume in volumes.items()}["tmp"]


def test_a_bad_spec_fails_the_job_without_retries() -> None:
    job = build_worker_job(example("copyjob-upload.yaml"), settings=SETTINGS, spec_hash="h")
    bad_spec, disruption = job["spec"]["podFailurePolicy"]["rules"]
    assert bad_spec == {
        "action": "FailJob",
        "onExitCodes": {"containerName": "worker", "operator": "In", "values": [2]},
    }
    assert disruption == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
