"""A CopyJob on the real control plane, as a platform team runs one: ``kubectl apply`` of a
Secret, a FileShare and a CopyJob (a PVC folder into the share with ``putMd5``); the real Job
controller makes the pod, the process kubelet runs the worker under its own ServiceAccount
token, the operator (itself a pod of the chart's Deployment) writes the status back."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from shareferry.worker.md5_results import read_results
from tests.cluster.kubectl import wait_for
from tests.cluster.release import NAMESPACE, Release, condition
from tests.support.emulator_admin import reset_counters, writes_per_file
from tests.support.trees import read_share, write_local, write_share

TREE = {f"reports/2026-{month:02}.csv": os.urandom(1500 + month * 37) for month in range(1, 13)} | {
    "README.txt": b"quarterly exports\n",
    "deep/a/b/c.bin": os.urandom(5 * 1024 * 1024 + 3),  # more than one 4 MiB range
}


def _md5_text(data: bytes) -> set[str]:
    digest = hashlib.md5(data).digest()
    return {digest.hex(), base64.b64encode(digest).decode()}


def test_the_operator_runs_as_a_pod_of_the_chart_under_its_service_account(release: Release) -> None:
    [pod] = release.pods("shareferry-system", "app.kubernetes.io/component=operator")
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["serviceAccountName"] == "shareferry"
    [status] = pod["status"]["containerStatuses"]
    assert status["ready"] is True
    assert any(v.get("projected") for v in pod["spec"]["volumes"]), "the ServiceAccount token volume"


def test_kubectl_apply_of_a_copyjob_copies_a_volume_into_a_share(release: Release) -> None:
    data = release.volume("upload-data")
    write_local(data, TREE)
    release.apply(release.fileshare("landing", "landing", quotaGiB=10))
    release.wait_ready_share("landing")
    assert release.service.get_share_client("landing").get_share_properties().quota == 10

    release.apply(
        release.copyjob(
            "upload",
            source={"pvc": {"claimName": "upload-data"}},
            destination={"fileShare": {"name": "landing", "path": "incoming"}},
            options={"putMd5": True},
        )
    )
    body = release.wait_finished("upload")
    status = body["status"]
    assert status["phase"] == "Succeeded", status

    landed = read_share(release.service.get_share_client("landing"), "incoming")
    assert landed.files == {f"incoming/{path}": data for path, data in TREE.items()}
    assert landed.stored_md5 == {
        f"incoming/{path}": hashlib.md5(data).digest() for path, data in TREE.items()
    }

    counters = status["counters"]
    assert counters["filesTransferred"] == len(TREE)
    assert counters["filesFailed"] == 0
    assert counters["bytesTransferred"] == sum(len(data) for data in TREE.values())
    assert condition(body, "Complete")["status"] == "True"

    # The worker pod was made by the real Job controller, owned by the Job, and ran as the
    # chart's worker ServiceAccount.
    job = release.get("job", status["jobName"])
    assert job is not None
    assert job["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    [pod] = release.pods(NAMESPACE, f"job-name={status['jobName']}")
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert pod["spec"]["serviceAccountName"] == "shareferry-worker"
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0

    # MD5 results: a ConfigMap owned by the CopyJob, one line per file.
    md5 = status["md5Results"]
    assert md5["files"] == len(TREE)
    [config_map_name] = md5["configMaps"]
    config_map = release.get("configmap", config_map_name)
    assert config_map is not None
    assert config_map["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    results = {line["path"]: line for line in read_results(config_map)}
    assert set(results) == {f"incoming/{path}" for path in TREE}
    for path, data in TREE.items():
        assert results[f"incoming/{path}"]["size"] == len(data)
        assert results[f"incoming/{path}"]["md5"] in _md5_text(data)

    # The Events, as `kubectl get events` lists them.
    events = release.kube.run(
        "get", "events", "-n", NAMESPACE, "--field-selector", "involvedObject.name=upload"
    ).stdout
    assert "Succeeded" in events or "Completed" in events, events

    # The printer columns, filled.
    table = release.kube.run("get", "copyjobs", "upload", "-n", NAMESPACE).stdout.splitlines()
    header, row = table[0].split(), table[1].split()
    assert header[:2] == ["NAME", "MODE"] or "PHASE" in header, header
    cells = dict(zip(header, row, strict=False))
    assert cells.get("PHASE") == "Succeeded", table
    assert all(cell not in ("<none>", "") for cell in row[:4]), table


def _writes(release: Release, share: str) -> dict[str, dict[str, int]]:
    prefix = f"{release.emulator.account().name}/{share}/"
    return {
        key.removeprefix(prefix): ops
        for key, ops in writes_per_file(release.emulator).items()
        if key.startswith(prefix)
    }


def test_a_three_shard_share_to_share_sync_writes_each_file_once_and_deletes_extras(release: Release) -> None:
    service = release.service
    tree = {f"dir{index % 4}/file-{index:03}.dat": os.urandom(700 + index) for index in range(45)}
    write_share(service.create_share("primary"), tree)
    backup = service.create_share("backup")
    stale = {"dir0/file-000.dat": b"an older version", "gone/extra.txt": b"deleted at the source"}
    write_share(backup, stale)
    release.apply(release.fileshare("primary", "primary"), release.fileshare("backup", "backup", quotaGiB=5))
    release.wait_ready_share("primary")
    release.wait_ready_share("backup")
    reset_counters(release.emulator)

    release.apply(
        release.copyjob(
            "primary-to-backup",
            mode="sync",
            source={"fileShare": {"name": "primary"}},
            destination={"fileShare": {"name": "backup"}},
            options={"deleteDestination": "true", "mirrorMode": True},
            parallelism=3,
        )
    )
    body = release.wait_finished("primary-to-backup")
    status = body["status"]
    assert status["phase"] == "Succeeded", status
    assert read_share(backup).files == tree  # the stale copy replaced, the extra deleted

    writes = _writes(release, "backup")
    assert set(writes) == set(tree)  # every file written by exactly one shard
    assert all(ops.get("CreateFile") == 1 for ops in writes.values()), writes

    # The workers report before their pods end; the Job controller's count follows.
    job = wait_for(
        lambda: (job := release.get("job", status["jobName"])) and job.get("status", {}).get("succeeded") == 3 and job,
        timeout=60,
        what="the Job to count three succeeded pods",
    )  # fmt: skip
    assert (job["spec"]["completionMode"], job["spec"]["completions"]) == ("Indexed", 3)
    pods = release.pods(NAMESPACE, f"job-name={status['jobName']}")
    indexes = sorted(
        pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for pod in pods
    )
    assert indexes == ["0", "1", "2"]
    assert [shard["index"] for shard in status["shards"]] == [0, 1, 2]
    assert status["counters"]["filesTransferred"] == len(tree)


def _running_pod(release: Release, job_name: str) -> dict[str, Any]:
    return wait_for(
        lambda: next(
            (
                pod
                for pod in release.pods(NAMESPACE, f"job-name={job_name}")
                if pod["status"].get("phase") == "Running"
            ),
            None,
        ),
        timeout=90,
        what=f"a Running pod of {job_name}",
    )


def _finished_files(release: Release, share: str) -> set[str]:
    """Files whose final name exists at the share's root, by listing names only (the copy goes on
    meanwhile; an unfinished file is a hidden staging file)."""
    items = release.service.get_share_client(share).list_directories_and_files()
    return {
        item["name"] for item in items if not item["is_directory"] and not item["name"].endswith(".partial")
    }


def test_a_deleted_worker_pod_is_replaced_and_resumes_without_resending_finished_files(
    release: Release,
) -> None:
    data = release.volume("resume-data")
    tree = {f"part-{index:02}.bin": os.urandom(256 * 1024) for index in range(24)}
    write_local(data, tree)
    release.volume("resume-state")
    release.service.create_share("resumed")
    reset_counters(release.emulator)
    release.apply(
        release.copyjob(
            "resumable",
            source={"pvc": {"claimName": "resume-data"}},
            destination=release.share_url("resumed"),
            # Two files at a time, 6 MiB at 4 Mbit/s: they finish one after another over about 12 s.
            options={"capMbps": 4, "putMd5": True, "concurrency": 2},
            stateVolume={"claimName": "resume-state"},
            backoffLimit=3,
        )
    )
    job_name = wait_for(
        lambda: (body := release.get("copyjob", "resumable")) and body.get("status", {}).get("jobName"),
        what="the worker Job",
    )
    first = _running_pod(release, job_name)
    done_before = wait_for(lambda: (files := _finished_files(release, "resumed")) and len(files) >= 4 and files, timeout=60, what="some files finished")  # fmt: skip
    release.kube.run("delete", "pod", first["metadata"]["name"], "-n", NAMESPACE, "--wait=false")

    body = release.wait_finished("resumable", timeout=240)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    # The worker reports Succeeded just before its process exits; the pod's phase follows.
    replacement = wait_for(
        lambda: next(
            (
                pod
                for pod in release.pods(NAMESPACE, f"job-name={job_name}")
                if pod["metadata"]["uid"] != first["metadata"]["uid"]
                and pod["status"].get("phase") == "Succeeded"
            ),
            None,
        ),
        timeout=60,
        what="the Job controller's replacement pod to succeed",
    )
    assert replacement["metadata"]["name"] != first["metadata"]["name"]
    assert read_share(release.service.get_share_client("resumed")).files == tree
    writes = _writes(release, "resumed")
    resent = {path for path in done_before if writes.get(path, {}).get("CreateFile", 0) != 1}
    assert resent == set(), f"finished before the pod was deleted, yet sent again: {sorted(resent)}"
    assert len(done_before) < len(tree), "the pod was deleted after the copy had finished; nothing was proven"


def test_the_operator_pod_deleted_mid_run_comes_back_and_the_status_converges(release: Release) -> None:
    data = release.volume("operator-restart-data")
    tree = {f"slow-{index}.bin": os.urandom(512 * 1024) for index in range(6)}
    write_local(data, tree)
    release.service.create_share("restarted")
    release.apply(
        release.copyjob(
            "through-a-restart",
            source={"pvc": {"claimName": "operator-restart-data"}},
            destination=release.share_url("restarted"),
            options={"capMbps": 4},  # 3 MiB at 4 Mbit/s: about 6 s
        )
    )
    body = wait_for(
        lambda: (body := release.get("copyjob", "through-a-restart")) and body.get("status", {}).get("phase") == "Running" and body,
        what="the copy running",
    )  # fmt: skip
    job = release.get("job", body["status"]["jobName"])
    assert job is not None
    [operator] = release.pods("shareferry-system", "app.kubernetes.io/component=operator")
    release.kube.run("delete", "pod", operator["metadata"]["name"], "-n", "shareferry-system", "--wait=false")

    def new_operator() -> dict[str, Any] | None:
        pods = release.pods("shareferry-system", "app.kubernetes.io/component=operator")
        fresh = [p for p in pods if p["metadata"]["uid"] != operator["metadata"]["uid"]]
        ready = [p for p in fresh if any(s.get("ready") for s in p["status"].get("containerStatuses", []))]
        return ready[0] if ready else None

    wait_for(new_operator, timeout=120, what="the Deployment's new operator pod Ready")
    body = release.wait_finished("through-a-restart", timeout=180)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    jobs = release.kube.json("get", "jobs", "-n", NAMESPACE)["items"]
    mine = [
        j
        for j in jobs
        if any(o["uid"] == body["metadata"]["uid"] for o in j["metadata"].get("ownerReferences", []))
    ]
    assert [j["metadata"]["uid"] for j in mine] == [job["metadata"]["uid"]], "a second Job was made"
    assert body["status"]["counters"]["filesTransferred"] == len(tree)
    assert read_share(release.service.get_share_client("restarted")).files == tree


def test_kubectl_delete_of_a_running_copyjob_removes_its_job_and_pods(release: Release) -> None:
    data = release.volume("deleted-data")
    write_local(data, {"big.bin": os.urandom(6 * 1024 * 1024)})
    release.service.create_share("abandoned")
    release.apply(
        release.copyjob(
            "deleted-mid-run",
            source={"pvc": {"claimName": "deleted-data"}},
            destination=release.share_url("abandoned"),
            options={"capMbps": 1},  # 6 MiB at 1 Mbit/s: most of a minute
        )
    )
    job_name = wait_for(
        lambda: (body := release.get("copyjob", "deleted-mid-run")) and body.get("status", {}).get("jobName"),
        what="the worker Job",
    )
    _running_pod(release, job_name)
    release.kube.run("delete", "copyjob", "deleted-mid-run", "-n", NAMESPACE, timeout=120)
    wait_for(
        lambda: release.get("job", job_name) is None,
        timeout=60,
        what="the garbage collector to delete the Job",
    )
    wait_for(
        lambda: release.pods(NAMESPACE, f"job-name={job_name}") == [], timeout=90, what="its pods to be gone"
    )
    # Nothing half-written is left visible at the destination.
    assert read_share(release.service.get_share_client("abandoned")).files == {}


def test_a_fileshare_with_deletion_policy_delete_removes_its_share(release: Release) -> None:
    release.apply(release.fileshare("temporary", "temporary", deletionPolicy="Delete"))
    release.wait_ready_share("temporary")
    assert "temporary" in {share.name for share in release.service.list_shares()}
    release.kube.run("delete", "fileshare", "temporary", "-n", NAMESPACE, timeout=120)
    assert "temporary" not in {share.name for share in release.service.list_shares()}
    release.apply(release.fileshare("kept", "kept"))  # the default policy: Retain
    release.wait_ready_share("kept")
    release.kube.run("delete", "fileshare", "kept", "-n", NAMESPACE, timeout=120)
    assert "kept" in {share.name for share in release.service.list_shares()}


def test_an_evicted_worker_does_not_use_up_the_backoff_limit(release: Release) -> None:
    """A node drain evicts pods (the Eviction API marks them DisruptionTarget): the worker Job's
    podFailurePolicy ignores such a failure, so even backoffLimit 0 survives it."""
    data = release.volume("evicted-data")
    tree = {f"chunk-{index:02}.bin": os.urandom(256 * 1024) for index in range(12)}
    write_local(data, tree)
    release.volume("evicted-state")
    release.service.create_share("evicted")
    release.apply(
        release.copyjob(
            "evicted",
            source={"pvc": {"claimName": "evicted-data"}},
            destination=release.share_url("evicted"),
            options={"capMbps": 4, "concurrency": 2},  # 3 MiB at 4 Mbit/s: about 6 s
            stateVolume={"claimName": "evicted-state"},
            backoffLimit=0,
        )
    )
    job_name = wait_for(
        lambda: (body := release.get("copyjob", "evicted")) and body.get("status", {}).get("jobName"),
        what="the worker Job",
    )
    pod = _running_pod(release, job_name)
    name = pod["metadata"]["name"]
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": NAMESPACE},
    }
    release.kube.run(
        "create", "--raw", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/eviction", "-f", "-", stdin=json.dumps(eviction)
    )  # fmt: skip
    body = release.wait_finished("evicted", timeout=180)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert read_share(release.service.get_share_client("evicted")).files == tree
    job = release.get("job", job_name)
    assert job is not None
    assert job["status"].get("failed", 0) == 0, job["status"]  # the evicted pod was not counted
