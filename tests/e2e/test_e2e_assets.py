"""The end-to-end assets, checked without kind: the script parses, the manifests are accepted by
a real API server (server-side dry-run, with the CRDs installed), and the MD5 checker reads what
the worker really writes."""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from shareferry.api.copyjob_status import aggregate_status
from shareferry.core.accounting import FileResult, Outcome
from shareferry.worker.md5_results import Md5Collector, results_configmap
from tests.cluster.crds import dry_run_all, load_documents
from tests.cluster.kubectl import Kubectl
from tests.e2e.verify_copyjob import problems, read_expected, same_file

HERE = Path(__file__).parent
MANIFESTS = sorted((HERE / "manifests").glob("*.yaml"))
NAMESPACE = "shareferry-e2e"


def test_script_parses() -> None:
    result = subprocess.run(
        ["bash", "-n", str(HERE / "run-kind.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_manifests_are_accepted_and_stay_in_the_e2e_namespace(crds_installed: Kubectl) -> None:
    named = [(path.name, document) for path in MANIFESTS for document in load_documents(path)]
    for name, document in named:
        assert document["metadata"]["namespace"] == NAMESPACE, name
    assert {"FileShare", "CopyJob", "SyncSchedule"} <= {document["kind"] for _, document in named}
    answers = dry_run_all(crds_installed, [document for _, document in named])
    refused = [
        f"{name}: {answer.stderr.strip()}"
        for (name, _), answer in zip(named, answers, strict=True)
        if answer.code
    ]
    assert refused == []


def test_copyjobs_refer_to_the_fileshares_and_secret_that_exist() -> None:
    documents = [document for path in MANIFESTS for document in load_documents(path)]
    shares = {d["metadata"]["name"] for d in documents if d["kind"] == "FileShare"}
    specs = [d["spec"] for d in documents if d["kind"] == "CopyJob"]
    specs += [d["spec"]["jobTemplate"]["spec"] for d in documents if d["kind"] == "SyncSchedule"]
    claims = {d["metadata"]["name"] for d in documents if d["kind"] == "PersistentVolumeClaim"}
    script = (HERE / "run-kind.sh").read_text(encoding="utf-8")
    for spec in specs:
        for side in ("source", "destination"):
            endpoint = spec[side]
            if "fileShare" in endpoint:
                assert endpoint["fileShare"]["name"] in shares
            elif "pvc" in endpoint:
                assert endpoint["pvc"]["claimName"] in claims
            else:
                secret = endpoint["credentials"]["secretName"]
                assert f"create secret generic {secret}" in script


def results_of(
    tree: dict[str, bytes], *, name: str, corrupt: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A CopyJob as the operator would show it after one shard copied ``tree``, and that
    shard's results ConfigMap as the worker builds it."""
    with Md5Collector() as collector:
        for path, data in tree.items():
            digest = hashlib.md5(b"other" if path == corrupt else data).hexdigest()
            collector.on_done(
                FileResult(path=f"tree/{path}", size=len(data), outcome=Outcome.COMPLETED, md5=digest)
            )
        packed = results_configmap(collector, copyjob_name=name, namespace=NAMESPACE, uid=None, shard=0)
    summary = dict(packed.summary, configMap=packed.body["metadata"]["name"])
    report = {
        "state": "Succeeded",
        "jobStatus": "Completed",
        "filesTotal": len(tree),
        "filesDone": len(tree),
        "md5": summary,
    }
    status = aggregate_status({"0": report}, parallelism=1)
    copyjob = {"metadata": {"name": name}, "status": {"phase": "Succeeded", **status}}
    return copyjob, [packed.body]


def expected_of(tree: dict[str, bytes]) -> dict[str, str]:
    text = "".join(f"{hashlib.md5(data).hexdigest()}  {path}\n" for path, data in tree.items())
    return read_expected(text)


TREE = {
    "dir0/sub0/file-00.bin": b"a" * 100,
    "dir1/sub1/file-01.bin": b"b" * 5000,
    "dir2/sub0/file-02.bin": b"",
}


def test_checker_accepts_a_verified_copy() -> None:
    copyjob, configmaps = results_of(TREE, name="upload")
    assert problems(copyjob, configmaps, expected_of(TREE)) == []


def test_checker_names_a_file_with_another_md5() -> None:
    copyjob, configmaps = results_of(TREE, name="upload", corrupt="dir1/sub1/file-01.bin")
    found = problems(copyjob, configmaps, expected_of(TREE))
    assert len(found) == 1
    assert found[0].startswith("upload: dir1/sub1/file-01.bin has MD5 ")


def test_checker_refuses_a_failed_or_incomplete_copy() -> None:
    copyjob, configmaps = results_of(TREE, name="upload")
    failed = copy.deepcopy(copyjob)
    failed["status"]["phase"] = "Failed"
    assert problems(failed, configmaps, expected_of(TREE)) == ["upload: phase 'Failed', not 'Succeeded'"]
    partial = {path: data for path, data in TREE.items() if "file-02" not in path}
    copyjob, configmaps = results_of(partial, name="upload")
    found = problems(copyjob, configmaps, expected_of(TREE))
    assert "upload: md5Results.files is 2, expected 3" in found
    assert "upload: 0 result lines for dir2/sub0/file-02.bin, expected 1" in found


def test_paths_match_at_a_slash_only() -> None:
    assert same_file("tree/dir0/file.bin", "dir0/file.bin")
    assert same_file("dir0/file.bin", "tree/dir0/file.bin")
    assert not same_file("tree/xdir0/file.bin", "dir0/file.bin")


def test_seed_job_prints_md5_lines_for_its_files(tmp_path: Path) -> None:
    """The seed container's script, run here against a temporary /data: one md5sum line per file."""
    (seed,) = [d for d in load_documents(HERE / "manifests" / "seed.yaml") if d["kind"] == "Job"]
    (container,) = seed["spec"]["template"]["spec"]["containers"]
    program = container["command"][2].replace('pathlib.Path("/data")', f"pathlib.Path({str(tmp_path)!r})")
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    expected = read_expected(result.stdout)
    assert len(expected) == 20
    for path, digest in expected.items():
        assert hashlib.md5((tmp_path / path).read_bytes()).hexdigest() == digest
    assert any((tmp_path / path).stat().st_size > 4 * 1024 * 1024 for path in expected), "a multi-range file"
