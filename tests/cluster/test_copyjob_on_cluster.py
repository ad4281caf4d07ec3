"""A CopyJob on the real control plane, as a platform team runs one: ``kubectl apply`` of a
Secret, a FileShare and a CopyJob (a PVC folder into the share with ``putMd5``); the real Job
controller makes the pod, the process kubelet runs the worker under its own ServiceAccount
token, the operator (itself a pod of the chart's Deployment) writes the status back."""

from __future__ import annotations

import base64
import hashlib
import os

from shareferry.worker.md5_results import read_results
from tests.cluster.release import NAMESPACE, Release, condition
from tests.support.trees import read_share, write_local

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
