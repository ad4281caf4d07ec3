"""CopyJobs end to end on a real control plane: kopf reconciles them, the real Job controller
makes the worker pods of the Job the operator builds, the process kubelet runs them as local
``shareferry worker`` processes under the chart's worker ServiceAccount, the data lands in the
Files emulator. Checked as a platform team would: the bytes and MD5s at the destination, the
CopyJob's status and conditions, the MD5 results ConfigMap, the Events, the metrics, the pods as
the API server shows them and their logs, and that no credential appears in any pod spec."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from typing import Any

from shareferry.api import names
from shareferry.kube import CONFIGMAPS, COPYJOBS, FILESHARES, JOBS, PODS
from shareferry.worker.md5_results import read_results
from tests.operator.conftest import SECRET, World, condition, reasons_of, status_of
from tests.support.cluster_api import COMPLETION_INDEX, JOB_NAME_LABEL, exit_code
from tests.support.emulator_admin import reset_counters, writes_per_file
from tests.support.trees import read_share, write_local, write_share

TREE = {f"reports/2026-{month:02}.csv": os.urandom(1500 + month * 37) for month in range(1, 13)} | {
    "README.txt": b"quarterly exports\n",
    "deep/a/b/c.bin": os.urandom(5 * 1024 * 1024 + 3),  # more than one 4 MiB range
}
FINISHED = ("Succeeded", "CompletedWithErrors", "Failed")


async def finished(world: World, name: str, timeout: float = 90.0) -> dict[str, Any]:
    return await world.api.wait_for_object(
        COPYJOBS,
        world.namespace,
        name,
        lambda body: status_of(body).get("phase") in FINISHED,
        timeout=timeout,
        what=f"CopyJob {name} finished",
    )


async def share_ready(world: World, name: str) -> dict[str, Any]:
    return await world.api.wait_for_object(
        FILESHARES, world.namespace, name, lambda body: condition(body, "Ready").get("status") == "True"
    )


def transferring(body: dict[str, Any]) -> bool:
    """The worker itself reports that it is under way (a pod the kubelet calls Running may not
    have started its process's work yet)."""
    report = (status_of(body).get("shardReports") or {}).get("0") or {}
    return report.get("state") == "Running"


def owner_uid(body: dict[str, Any]) -> str:
    [owner] = body["metadata"].get("ownerReferences") or [{"uid": ""}]
    return str(owner["uid"])


def pod_spec_values(pod: dict[str, Any]) -> list[str]:
    """Every command, args and env value of a pod's containers, as the API server stores them."""
    values: list[str] = []
    for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
        values += [str(part) for part in container.get("command") or []]
        values += [str(part) for part in container.get("args") or []]
        values += [str(item["value"]) for item in container.get("env") or [] if "value" in item]
    return values


async def test_a_copyjob_uploads_a_volume_into_a_fileshare_and_reports_md5s(world: World) -> None:
    ns = world.namespace
    write_local(await world.volume("data"), TREE)
    await world.seed_secret()
    await world.api.apply(world.fileshare("landing", "landing", quotaGiB=10))
    await share_ready(world, "landing")
    await world.api.apply(
        world.copyjob(
            "upload",
            source={"pvc": {"claimName": "data"}},
            destination={"fileShare": {"name": "landing", "path": "incoming"}},
            options={"putMd5": True},
        )
    )

    body = await finished(world, "upload")
    status = status_of(body)
    assert status["phase"] == "Succeeded", status

    # The bytes and their stored MD5s, read back from the share.
    landed = read_share(world.service.get_share_client("landing"), "incoming")
    assert landed.files == {f"incoming/{path}": data for path, data in TREE.items()}
    assert landed.stored_md5 == {
        f"incoming/{path}": hashlib.md5(data).digest() for path, data in TREE.items()
    }

    # The status a person reads.
    assert status["jobName"] == names.worker_job_name("upload")
    assert status["progress"]["percentText"] == "100%"
    counters = status["counters"]
    assert counters["filesTransferred"] == len(TREE)
    assert counters["filesFailed"] == 0
    assert counters["bytesTransferred"] == sum(len(data) for data in TREE.values())
    assert status["startTime"] <= status["completionTime"]
    assert status["durationSeconds"] >= 0
    assert condition(body, "Complete") | {"lastTransitionTime": None} == condition(body, "Complete") | {
        "lastTransitionTime": None,
        "status": "True",
        "reason": "Succeeded",
    }
    assert condition(body, "Failed")["status"] == "False"
    assert condition(body, "Accepted")["status"] == "True"
    assert condition(body, "Complete")["observedGeneration"] == body["metadata"]["generation"]

    # The MD5 results: a ConfigMap owned by the CopyJob, one line per file.
    md5 = status["md5Results"]
    assert md5["files"] == len(TREE)
    [config_map_name] = md5["configMaps"]
    config_map = await world.api.get(CONFIGMAPS, ns, config_map_name)
    assert config_map is not None
    assert config_map["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    results = {line["path"]: line for line in read_results(config_map)}
    assert set(results) == {f"incoming/{path}" for path in TREE}  # where each file now is
    for path, data in TREE.items():
        line = results[f"incoming/{path}"]
        assert line["size"] == len(data)
        assert line["md5"] in (hashlib.md5(data).hexdigest(), _b64(hashlib.md5(data).digest()))

    # Events on every transition, in order, each once.
    assert await reasons_of(world, "upload", until="Succeeded") == ["JobCreated", "Started", "Succeeded"]

    # Metrics: one successful run, its bytes and files.
    assert world.metric("shareferry_copyjob_runs_total", namespace=ns, mode="copy", result="Succeeded") == 1
    assert world.metric("shareferry_transferred_files_total", namespace=ns, mode="copy") == len(TREE)
    assert world.metric("shareferry_transferred_bytes_total", namespace=ns, mode="copy") == sum(
        map(len, TREE.values())
    )

    # The pod the Job controller made ran under the chart's worker ServiceAccount and ended 0.
    # Nothing secret in any pod spec the server stores; the key reached the pod only through
    # secretKeyRef.
    key = world.emulator.account().key
    await world.api.wait_for_job(ns, names.worker_job_name("upload"), conditions=("Complete",))
    [pod] = await world.api.pods_of(ns, names.worker_job_name("upload"))
    assert pod["spec"]["serviceAccountName"] == world.plane.operator_env["SHAREFERRY_WORKER_SERVICE_ACCOUNT"]
    assert pod["status"]["phase"] == "Succeeded"
    assert exit_code(pod) == 0
    assert not any(key in value for value in pod_spec_values(pod))
    assert key not in str(pod)
    log = world.api.log_of(pod)
    assert log  # it did log something
    assert key not in log  # but not the key
    job = await world.api.get(JOBS, ns, names.worker_job_name("upload"))
    assert job is not None
    assert key not in str(job)
    assert key not in str(await world.api.get(COPYJOBS, ns, "upload"))
    assert key not in str(await world.api.events(ns))
    assert key not in world.metrics.render()[0].decode()
    refs = [
        item["valueFrom"]["secretKeyRef"]["name"]
        for item in job["spec"]["template"]["spec"]["containers"][0]["env"]
        if "valueFrom" in item
    ]
    assert refs and set(refs) == {SECRET}


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


async def test_a_sharded_sync_runs_three_workers_and_covers_every_file_once(world: World) -> None:
    ns = world.namespace
    await world.seed_secret()
    source = world.service.create_share("primary")
    write_share(
        source, {f"dir{index % 4}/file-{index:03}.dat": os.urandom(700 + index) for index in range(40)}
    )
    await world.api.apply(world.fileshare("primary", "primary"))
    await world.api.apply(world.fileshare("backup", "backup", quotaGiB=5))
    await share_ready(world, "backup")
    reset_counters(world.emulator)
    await world.api.apply(
        world.copyjob(
            "primary-to-backup",
            mode="sync",
            source={"fileShare": {"name": "primary"}},
            destination={"fileShare": {"name": "backup"}},
            options={"preserveSmbInfo": True},
            parallelism=3,
        )
    )
    body = await finished(world, "primary-to-backup")
    status = status_of(body)
    assert status["phase"] == "Succeeded", status

    expected = read_share(source).files
    landed = read_share(world.service.get_share_client("backup")).files
    assert landed == expected
    prefix = f"{world.emulator.account().name}/backup/"
    writes = {
        key.removeprefix(prefix): ops
        for key, ops in writes_per_file(world.emulator).items()
        if key.startswith(prefix)
    }
    assert set(writes) == set(expected)  # every file written by exactly one shard, once
    assert all(ops.get("CreateFile") == 1 for ops in writes.values()), writes
    assert not any("PutRange" in ops for ops in writes.values())  # server-side: no bytes through a worker

    # One pod per index (the Job controller's Indexed mode), each ended 0.
    await world.api.wait_for_job(ns, names.worker_job_name("primary-to-backup"), conditions=("Complete",))
    pods = await world.api.pods_of(ns, names.worker_job_name("primary-to-backup"))
    assert [pod["metadata"]["annotations"][COMPLETION_INDEX] for pod in pods] == ["0", "1", "2"]
    assert [exit_code(pod) for pod in pods] == [0, 0, 0]
    assert [shard["index"] for shard in status["shards"]] == [0, 1, 2]
    assert sum(report["filesDone"] for report in status["shardReports"].values()) == len(expected)
    assert status["counters"]["filesTransferred"] == len(expected)


async def test_a_wrong_key_fails_the_copyjob_with_a_reason_a_person_can_act_on(world: World) -> None:
    ns = world.namespace
    write_local(await world.volume("data"), {"a.txt": b"alpha\n"})
    await world.seed_secret("wrong-credentials", key="d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=")
    world.service.create_share("target")
    await world.api.apply(
        world.copyjob(
            "denied",
            source={"pvc": {"claimName": "data"}},
            destination={
                "url": f"{world.emulator.account_url()}/target",
                "kind": "file",
                "credentials": {"secretName": "wrong-credentials"},
            },
            backoffLimit=0,
        )
    )
    body = await finished(world, "denied")
    status = status_of(body)
    assert status["phase"] == "Failed", status
    failed = condition(body, "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "AuthenticationFailed")
    assert "wrong-key" not in str(status) and "d3JvbmctaW" not in str(status)
    assert condition(body, "Complete")["status"] == "False"
    reasons = await reasons_of(world, "denied", until="AuthenticationFailed")
    assert reasons[0] == "JobCreated" and reasons[-1] == "AuthenticationFailed"
    runs = world.metric("shareferry_copyjob_runs_total", namespace=ns, mode="copy", result="Failed")
    assert runs == 1
    errors = world.metric(
        "shareferry_errors_total", namespace=ns, kind="CopyJob", reason="AuthenticationFailed"
    )
    assert errors == 1
    assert list(world.service.get_share_client("target").list_directories_and_files()) == []


async def test_a_missing_secret_keeps_the_copyjob_pending_until_it_exists(world: World) -> None:
    ns = world.namespace
    data = await world.volume("data")
    await world.api.apply(
        world.copyjob(
            "waiting",
            source={"pvc": {"claimName": "data"}},
            destination={
                "url": f"{world.emulator.account_url()}/target",
                "kind": "file",
                "credentials": {"secretName": "not-there-yet"},
            },
        )
    )
    body = await world.api.wait_for_object(
        COPYJOBS, ns, "waiting", lambda body: condition(body, "Accepted").get("status") == "False"
    )
    assert status_of(body)["phase"] == "Pending"
    accepted = condition(body, "Accepted")
    assert accepted["reason"] == "MissingSecret"
    assert "'not-there-yet'" in accepted["message"] and "destination" in accepted["message"]
    assert await world.api.get(JOBS, ns, names.worker_job_name("waiting")) is None
    assert await reasons_of(world, "waiting", until="MissingSecret") == ["MissingSecret"]
    assert world.metric("shareferry_errors_total", namespace=ns, kind="CopyJob", reason="MissingSecret") == 1

    # Once the Secret exists, the retry goes ahead on its own.
    write_local(data, {"late.txt": b"better late\n"})
    world.service.create_share("target")
    await world.seed_secret("not-there-yet")
    body = await finished(world, "waiting")
    assert status_of(body)["phase"] == "Succeeded"
    assert condition(body, "Accepted")["status"] == "True"
    late = world.service.get_share_client("target").get_file_client("late.txt").download_file().readall()
    assert late == b"better late\n"


async def test_a_spec_the_schema_allows_but_the_operator_cannot_run_fails_at_once(world: World) -> None:
    # A path-style URL (an emulator's) does not say whether it is Files or Blob: the schema
    # cannot know, the operator refuses it before any pod starts.
    await world.seed_secret()
    await world.api.apply(
        world.copyjob(
            "ambiguous",
            source={"pvc": {"claimName": "data"}},
            destination={
                "url": f"{world.emulator.account_url()}/target",
                "credentials": {"secretName": SECRET},
            },
        )
    )
    body = await finished(world, "ambiguous")
    assert status_of(body)["phase"] == "Failed"
    failed = condition(body, "Failed")
    assert failed["reason"] in ("InvalidSpec", "InvalidOptions")
    assert "kind" in failed["message"]
    assert await world.api.get(JOBS, world.namespace, names.worker_job_name("ambiguous")) is None


async def test_deleting_a_running_copyjob_stops_its_workers(world: World) -> None:
    ns = world.namespace
    write_local(await world.volume("data"), {"big.bin": os.urandom(6 * 1024 * 1024)})
    await world.seed_secret()
    world.service.create_share("slow")
    await world.api.apply(
        world.copyjob(
            "slow-upload",
            source={"pvc": {"claimName": "data"}},
            destination={
                "url": f"{world.emulator.account_url()}/slow",
                "kind": "file",
                "credentials": {"secretName": SECRET},
            },
            options={"capMbps": 1},  # 6 MiB at 1 Mbit/s: most of a minute
        )
    )
    job_name = names.worker_job_name("slow-upload")
    await world.api.wait_for_object(COPYJOBS, ns, "slow-upload", transferring, timeout=60)
    [pod] = await world.api.pods_of(ns, job_name)
    assert pod["status"]["phase"] == "Running"
    pod_name = pod["metadata"]["name"]

    # Watch the pod from the version read: its last state before it goes says how its process
    # ended (once deleted, the server has nothing more to show).
    last_seen: dict[str, Any] = {}

    async def follow() -> None:
        async for event in world.api.kube.watch(
            PODS,
            ns,
            label_selector=f"{JOB_NAME_LABEL}={job_name}",
            resource_version=pod["metadata"]["resourceVersion"],
            timeout_seconds=120,
        ):
            if event["object"]["metadata"]["name"] == pod_name:
                last_seen.update(event["object"])
                if event["type"] == "DELETED":
                    return

    follower = asyncio.create_task(follow())
    await world.api.delete(COPYJOBS, ns, "slow-upload")

    await world.api.wait_for_absence(COPYJOBS, ns, "slow-upload", timeout=60)
    assert await world.api.get(JOBS, ns, job_name) is None
    await world.api.wait_for_absence(PODS, ns, pod_name, timeout=60)
    await asyncio.wait_for(follower, timeout=30)
    code = exit_code(last_seen)
    assert code is not None and code != 0, last_seen.get("status")  # stopped, not finished
    assert "Succeeded" not in world.api.log_of(last_seen)
    names_left = [item.name for item in world.service.get_share_client("slow").list_directories_and_files()]
    assert (
        "big.bin" not in names_left
        or world.service.get_share_client("slow").get_file_client("big.bin").get_file_properties().size
        == 6 * 1024 * 1024
    )


async def test_a_copyjob_deleted_and_created_again_under_its_name_runs_anew(world: World) -> None:
    ns = world.namespace
    data = await world.volume("data")
    big = os.urandom(6 * 1024 * 1024)
    write_local(data, {"big.bin": big})
    await world.seed_secret()
    world.service.create_share("again")
    spec: dict[str, Any] = {
        "source": {"pvc": {"claimName": "data"}},
        "destination": {
            "url": f"{world.emulator.account_url()}/again",
            "kind": "file",
            "credentials": {"secretName": SECRET},
        },
    }
    await world.api.apply(world.copyjob("again", **spec, options={"capMbps": 1}))
    await world.api.wait_for_object(COPYJOBS, ns, "again", transferring, timeout=60)

    # Deleted as `kubectl delete` does it: the call returns once the CopyJob is gone, and by
    # then its workers have stopped (the CopyJob goes after its Job and pods, not before).
    await world.api.delete(COPYJOBS, ns, "again")
    await world.api.wait_for_absence(COPYJOBS, ns, "again", timeout=60)
    assert await world.api.get(JOBS, ns, names.worker_job_name("again")) is None
    assert await world.api.pods_of(ns, names.worker_job_name("again")) == []

    # The same name at once, without the bandwidth cap: a run of its own, with a Job of its own.
    write_local(data, {"small.txt": b"second run\n"})
    created = await world.api.apply(world.copyjob("again", **spec))
    body = await finished(world, "again")
    assert status_of(body)["phase"] == "Succeeded", status_of(body)
    job = await world.api.get(JOBS, ns, names.worker_job_name("again"))
    assert job is not None and owner_uid(job) == created["metadata"]["uid"]
    assert read_share(world.service.get_share_client("again")).files == {
        "big.bin": big,
        "small.txt": b"second run\n",
    }
    assert status_of(body)["counters"]["filesTransferred"] == 2


async def test_a_job_of_the_copyjobs_name_that_is_not_its_own_is_left_alone(world: World) -> None:
    ns = world.namespace
    # Someone's Job under the name the CopyJob's worker Job would take.
    foreign = await world.api.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": names.worker_job_name("clash"), "namespace": ns},
            "spec": {
                "suspend": True,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "main", "image": "shareferry:local", "command": ["true"]}],
                    }
                },
            },
        }
    )
    write_local(await world.volume("data"), {"a.txt": b"alpha\n"})
    await world.seed_secret()
    world.service.create_share("clash")
    await world.api.apply(
        world.copyjob(
            "clash",
            source={"pvc": {"claimName": "data"}},
            destination={
                "url": f"{world.emulator.account_url()}/clash",
                "kind": "file",
                "credentials": {"secretName": SECRET},
            },
        )
    )
    body = await world.api.wait_for_object(
        COPYJOBS, ns, "clash", lambda body: condition(body, "Accepted").get("status") == "False"
    )
    assert status_of(body)["phase"] == "Pending"
    accepted = condition(body, "Accepted")
    assert accepted["reason"] == "JobNameInUse"
    assert f"Job {names.worker_job_name('clash')!r}" in accepted["message"]
    assert "jobName" not in status_of(body)  # nothing of the other Job is taken for this run's
    assert "JobNameInUse" in await reasons_of(world, "clash", until="JobNameInUse")
    job = await world.api.get(JOBS, ns, names.worker_job_name("clash"))
    assert job is not None and job["metadata"]["uid"] == foreign["metadata"]["uid"]
    assert "ownerReferences" not in job["metadata"] and job["spec"]["suspend"] is True

    # Its owner deletes it: the CopyJob goes ahead on its own.
    await world.api.delete(JOBS, ns, names.worker_job_name("clash"))
    body = await finished(world, "clash")
    assert status_of(body)["phase"] == "Succeeded", status_of(body)
    job = await world.api.get(JOBS, ns, names.worker_job_name("clash"))
    assert job is not None and owner_uid(job) == body["metadata"]["uid"]
    clash = world.service.get_share_client("clash")
    assert clash.get_file_client("a.txt").download_file().readall() == b"alpha\n"


async def test_a_spec_change_after_the_start_is_refused_and_the_job_keeps_its_spec(world: World) -> None:
    ns = world.namespace
    write_local(await world.volume("data"), {"a.txt": b"alpha\n"})
    await world.seed_secret()
    world.service.create_share("fixed")
    await world.api.apply(
        world.copyjob(
            "fixed",
            source={"pvc": {"claimName": "data"}},
            destination={
                "url": f"{world.emulator.account_url()}/fixed",
                "kind": "file",
                "credentials": {"secretName": SECRET},
            },
        )
    )
    await finished(world, "fixed")
    job_before = await world.api.get(JOBS, ns, names.worker_job_name("fixed"))
    assert job_before is not None

    await world.api.kube.patch(COPYJOBS, ns, "fixed", {"spec": {"options": {"putMd5": True}}})
    body = await world.api.wait_for_object(
        COPYJOBS, ns, "fixed", lambda body: condition(body, "SpecChangeRefused").get("status") == "True"
    )
    refused = condition(body, "SpecChangeRefused")
    assert refused["reason"] == "SpecImmutable"
    assert "Delete this CopyJob and create a new one" in refused["message"]
    assert refused["observedGeneration"] == body["metadata"]["generation"] == 2
    job_after = await world.api.get(JOBS, ns, names.worker_job_name("fixed"))
    assert job_after is not None
    assert job_after["metadata"]["annotations"] == job_before["metadata"]["annotations"]
    assert status_of(body)["phase"] == "Succeeded"
    assert "SpecImmutable" in await reasons_of(world, "fixed", until="SpecImmutable")
