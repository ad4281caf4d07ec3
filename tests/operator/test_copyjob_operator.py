"""CopyJobs end to end: kopf reconciles them on the test API server, the test kubelet runs the
worker Job the operator builds as local ``shareferry worker`` processes, the data lands in the
Files emulator. Checked as a platform team would: the bytes and MD5s at the destination, the
CopyJob's status and conditions, the MD5 results ConfigMap, the Events, the metrics, and that no
credential appears in any pod's command line."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from shareferry.api import names
from shareferry.kube import CONFIGMAPS, COPYJOBS, FILESHARES, JOBS
from shareferry.worker.md5_results import read_results
from tests.operator.conftest import NAMESPACE, SECRET, World, condition, status_of
from tests.support.trees import read_share, write_local

TREE = {f"reports/2026-{month:02}.csv": os.urandom(1500 + month * 37) for month in range(1, 13)} | {
    "README.txt": b"quarterly exports\n",
    "deep/a/b/c.bin": os.urandom(5 * 1024 * 1024 + 3),  # more than one 4 MiB range
}


def copyjob(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shareferry.dev/v1alpha1",
        "kind": "CopyJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


async def reasons_of(world: World, name: str, *, until: str, timeout: float = 10.0) -> list[str]:
    """The reasons of the Events about ``name`` in the order they happened, once ``until`` is
    among them (kopf posts Events in the background, a moment after the status is written)."""

    def ordered() -> list[str] | None:
        events = sorted(
            world.cluster.events(NAMESPACE, involving=name),
            key=lambda event: str(event.get("firstTimestamp") or event["metadata"]["creationTimestamp"]),
        )
        reasons = [str(event["reason"]) for event in events]
        return reasons if until in reasons else None

    found: list[str] = await world.cluster.wait_for(
        ordered, timeout=timeout, what=f"a {until} event about {name}"
    )
    return found


async def finished(world: World, name: str, timeout: float = 60.0) -> dict[str, Any]:
    return await world.cluster.wait_for_object(
        COPYJOBS,
        NAMESPACE,
        name,
        lambda body: status_of(body).get("phase") in ("Succeeded", "CompletedWithErrors", "Failed"),
        timeout=timeout,
    )


async def test_a_copyjob_uploads_a_volume_into_a_fileshare_and_reports_md5s(world: World) -> None:
    write_local(world.volumes["data"], TREE)
    await world.seed_secret()
    await world.cluster.apply(world.fileshare("landing", "landing", quotaGiB=10))
    await world.cluster.wait_for_object(
        FILESHARES, NAMESPACE, "landing", lambda body: condition(body, "Ready").get("status") == "True"
    )
    await world.cluster.apply(
        copyjob(
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
    config_map = world.cluster.get(CONFIGMAPS, NAMESPACE, config_map_name)
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
    assert (
        world.metric("shareferry_copyjob_runs_total", namespace=NAMESPACE, mode="copy", result="Succeeded")
        == 1
    )
    assert world.metric("shareferry_transferred_files_total", namespace=NAMESPACE, mode="copy") == len(TREE)
    assert world.metric("shareferry_transferred_bytes_total", namespace=NAMESPACE, mode="copy") == sum(
        map(len, TREE.values())
    )

    # Nothing secret on any command line; the key reached the pod only through secretKeyRef.
    key = world.emulator.account().key
    await world.kubelet.wait_for_job(names.worker_job_name("upload"), conditions=("Complete",))
    for pod in world.kubelet.pods_of(names.worker_job_name("upload")):
        assert key not in " ".join(pod.argv)
        assert key not in pod.stdout + pod.stderr  # nor in the worker's log
        assert pod.stderr or pod.stdout  # (it did log something)
        assert pod.exit_code == 0
    job = world.cluster.get(JOBS, NAMESPACE, names.worker_job_name("upload"))
    assert job is not None
    assert key not in str(job)
    assert key not in str(world.cluster.get(COPYJOBS, NAMESPACE, "upload"))
    assert key not in str(world.cluster.events(NAMESPACE))
    assert key not in world.metrics.render()[0].decode()
    refs = [
        item["valueFrom"]["secretKeyRef"]["name"]
        for item in job["spec"]["template"]["spec"]["containers"][0]["env"]
        if "valueFrom" in item
    ]
    assert refs and set(refs) == {SECRET}


def _b64(digest: bytes) -> str:
    import base64

    return base64.b64encode(digest).decode()


async def test_a_sharded_sync_runs_three_workers_and_covers_every_file_once(
    world: World, tmp_path: Path
) -> None:
    del tmp_path
    await world.seed_secret()
    source = world.service.create_share("primary")
    from tests.support.trees import write_share

    write_share(
        source, {f"dir{index % 4}/file-{index:03}.dat": os.urandom(700 + index) for index in range(40)}
    )
    await world.cluster.apply(world.fileshare("primary", "primary"))
    await world.cluster.apply(world.fileshare("backup", "backup", quotaGiB=5))
    await world.cluster.wait_for_object(
        FILESHARES, NAMESPACE, "backup", lambda body: condition(body, "Ready").get("status") == "True"
    )
    from tests.support.emulator_admin import reset_counters, writes_per_file

    reset_counters(world.emulator)
    await world.cluster.apply(
        copyjob(
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

    pods = world.kubelet.pods_of(names.worker_job_name("primary-to-backup"))
    assert sorted(pod.env["JOB_COMPLETION_INDEX"] for pod in pods) == ["0", "1", "2"]
    assert [shard["index"] for shard in status["shards"]] == [0, 1, 2]
    assert sum(report["filesDone"] for report in status["shardReports"].values()) == len(expected)
    assert status["counters"]["filesTransferred"] == len(expected)


async def test_a_wrong_key_fails_the_copyjob_with_a_reason_a_person_can_act_on(world: World) -> None:
    write_local(world.volumes["data"], {"a.txt": b"alpha\n"})
    await world.seed_secret("wrong-credentials", key="d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=")
    world.service.create_share("target")
    await world.cluster.apply(
        copyjob(
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
    runs = world.metric("shareferry_copyjob_runs_total", namespace=NAMESPACE, mode="copy", result="Failed")
    assert runs == 1
    errors = world.metric(
        "shareferry_errors_total", namespace=NAMESPACE, kind="CopyJob", reason="AuthenticationFailed"
    )
    assert errors == 1
    assert list(world.service.get_share_client("target").list_directories_and_files()) == []


async def test_a_missing_secret_keeps_the_copyjob_pending_until_it_exists(world: World) -> None:
    await world.cluster.apply(
        copyjob(
            "waiting",
            source={"pvc": {"claimName": "data"}},
            destination={
                "url": f"{world.emulator.account_url()}/target",
                "kind": "file",
                "credentials": {"secretName": "not-there-yet"},
            },
        )
    )
    body = await world.cluster.wait_for_object(
        COPYJOBS, NAMESPACE, "waiting", lambda body: condition(body, "Accepted").get("status") == "False"
    )
    assert status_of(body)["phase"] == "Pending"
    accepted = condition(body, "Accepted")
    assert accepted["reason"] == "MissingSecret"
    assert "'not-there-yet'" in accepted["message"] and "destination" in accepted["message"]
    assert world.cluster.get(JOBS, NAMESPACE, names.worker_job_name("waiting")) is None
    assert await reasons_of(world, "waiting", until="MissingSecret") == ["MissingSecret"]
    assert (
        world.metric("shareferry_errors_total", namespace=NAMESPACE, kind="CopyJob", reason="MissingSecret")
        == 1
    )

    # Once the Secret exists, the retry goes ahead on its own.
    write_local(world.volumes["data"], {"late.txt": b"better late\n"})
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
    await world.cluster.apply(
        copyjob(
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
    assert world.cluster.get(JOBS, NAMESPACE, names.worker_job_name("ambiguous")) is None


async def test_deleting_a_running_copyjob_stops_its_workers(world: World) -> None:
    write_local(world.volumes["data"], {"big.bin": os.urandom(6 * 1024 * 1024)})
    await world.seed_secret()
    world.service.create_share("slow")
    await world.cluster.apply(
        copyjob(
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
    await world.cluster.wait_for_object(
        COPYJOBS, NAMESPACE, "slow-upload", lambda body: status_of(body).get("phase") == "Running", timeout=20
    )
    [pod] = await world.kubelet.wait_for_pods(job_name, count=1, phase="Running")

    await world.cluster.delete(COPYJOBS, NAMESPACE, "slow-upload")

    await world.cluster.wait_for_absence(COPYJOBS, NAMESPACE, "slow-upload", timeout=15)
    assert world.cluster.get(JOBS, NAMESPACE, job_name) is None
    await world.cluster.wait_for(lambda: pod.done, timeout=15, what="the worker process to end")
    assert pod.exit_code != 0  # stopped, not finished
    names_left = [item.name for item in world.service.get_share_client("slow").list_directories_and_files()]
    assert (
        "big.bin" not in names_left
        or world.service.get_share_client("slow").get_file_client("big.bin").get_file_properties().size
        == 6 * 1024 * 1024
    )


async def test_a_spec_change_after_the_start_is_refused_and_the_job_keeps_its_spec(world: World) -> None:
    write_local(world.volumes["data"], {"a.txt": b"alpha\n"})
    await world.seed_secret()
    world.service.create_share("fixed")
    await world.cluster.apply(
        copyjob(
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
    job_before = world.cluster.get(JOBS, NAMESPACE, names.worker_job_name("fixed"))
    assert job_before is not None

    async with world.cluster.client() as kube:
        await kube.patch(COPYJOBS, NAMESPACE, "fixed", {"spec": {"options": {"putMd5": True}}})
    body = await world.cluster.wait_for_object(
        COPYJOBS,
        NAMESPACE,
        "fixed",
        lambda body: condition(body, "SpecChangeRefused").get("status") == "True",
    )
    refused = condition(body, "SpecChangeRefused")
    assert refused["reason"] == "SpecImmutable"
    assert "Delete this CopyJob and create a new one" in refused["message"]
    assert refused["observedGeneration"] == body["metadata"]["generation"] == 2
    job_after = world.cluster.get(JOBS, NAMESPACE, names.worker_job_name("fixed"))
    assert job_after is not None
    assert job_after["metadata"]["annotations"] == job_before["metadata"]["annotations"]
    assert status_of(body)["phase"] == "Succeeded"
    assert "SpecImmutable" in await reasons_of(world, "fixed", until="SpecImmutable")
