"""The CRDs, every example manifest and every invalid manifest under tests/crds/invalid, taken by
the real API server: the CRDs are created (structural schema, RE2 patterns, defaults, CEL rules
compiled and within the cost limits), objects go through server-side dry-run (pruning, defaults,
schema and CEL validation, strict field validation as `kubectl apply` asks for it)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.crds import CRD_FILES, NAMESPACE, DryRun, dry_run, dry_run_all, load_documents
from tests.cluster.kubectl import Kubectl, wait_for
from tests.crds.test_crds import EXAMPLE_FILES, INVALID_FILES, expected_error
from tests.support.paths import repo_root

ROOT = repo_root()
GROUP = "shareferry.dev"


def example(kind: str) -> dict[str, Any]:
    for path in EXAMPLE_FILES:
        for document in load_documents(path):
            if document.get("kind") == kind:
                return copy.deepcopy(document)
    raise AssertionError(f"no example of kind {kind}")


@pytest.fixture(scope="module")
def examples_on_server(crds_installed: Kubectl) -> dict[Path, list[DryRun]]:
    """Every example document, dry-run on the server in one call, by file."""
    paths = [path for path in EXAMPLE_FILES for _ in load_documents(path)]
    answers = dry_run_all(crds_installed, [d for path in EXAMPLE_FILES for d in load_documents(path)])
    by_file: dict[Path, list[DryRun]] = {}
    for path, answer in zip(paths, answers, strict=True):
        by_file.setdefault(path, []).append(answer)
    return by_file


def test_the_server_establishes_every_crd_and_serves_its_names(crds_installed: Kubectl) -> None:
    resources = crds_installed.run("api-resources", f"--api-group={GROUP}", "-o", "name").stdout.split()
    assert sorted(resources) == sorted(
        f"{load_documents(p)[0]['spec']['names']['plural']}.{GROUP}" for p in CRD_FILES
    )
    # Each short name reaches our kind alone: nothing the server serves itself shares it.
    every = crds_installed.run("api-resources", "--no-headers").stdout.splitlines()
    short_names: dict[str, list[str]] = {}
    for line in every:
        fields = line.split()
        if len(fields) >= 5:  # NAME SHORTNAMES APIVERSION NAMESPACED KIND
            for short in fields[1].split(","):
                short_names.setdefault(short, []).append(fields[-1])
    for path in CRD_FILES:
        names = load_documents(path)[0]["spec"]["names"]
        for short in names["shortNames"]:
            assert short_names.get(short) == [names["kind"]], (short, short_names.get(short))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.relative_to(ROOT / "examples").as_posix())
def test_example_is_accepted_by_the_server(path: Path, examples_on_server: dict[Path, list[DryRun]]) -> None:
    assert examples_on_server[path], f"{path.name} holds no manifest"
    for code, stderr, _ in examples_on_server[path]:
        assert code == 0, stderr


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda p: p.stem)
def test_invalid_manifest_is_refused_by_the_server(path: Path, crds_installed: Kubectl) -> None:
    code, stderr, _ = dry_run(crds_installed, path.read_text(encoding="utf-8"))
    assert code != 0, f"the server accepted {path.name}"
    assert expected_error(path) in stderr, stderr


def test_there_are_invalid_manifests_for_every_kind() -> None:
    kinds = {load_documents(path)[0]["kind"] for path in INVALID_FILES}
    assert len(INVALID_FILES) >= 15
    assert kinds == {"FileShare", "CopyJob", "SyncSchedule"}


def test_the_server_fills_in_the_declared_defaults(crds_installed: Kubectl) -> None:
    share = example("FileShare")
    share["spec"].pop("deletionPolicy", None)
    share["spec"].pop("resyncSeconds", None)
    _, stderr, returned = dry_run(crds_installed, share)
    assert returned is not None, stderr
    assert returned["spec"]["deletionPolicy"] == "Retain"
    assert returned["spec"]["resyncSeconds"] > 0
    job = example("CopyJob")
    job["spec"].pop("options", None)
    job["spec"].pop("mode", None)
    _, stderr, returned = dry_run(crds_installed, job)
    assert returned is not None, stderr
    assert returned["spec"]["mode"] == "copy"
    assert "options" not in returned["spec"], "defaults apply inside objects that are present only"
    job["spec"]["options"] = {"putMd5": True}
    _, stderr, returned = dry_run(crds_installed, job)
    assert returned is not None, stderr
    assert returned["spec"]["options"] == {"putMd5": True, "recursive": True}
    schedule = example("SyncSchedule")
    schedule["spec"]["jobTemplate"]["spec"].pop("mode", None)
    _, stderr, returned = dry_run(crds_installed, schedule)
    assert returned is not None, stderr
    assert returned["spec"]["jobTemplate"]["spec"]["mode"] == "sync"


@pytest.mark.parametrize(
    "share_name", ["reports", "abc", "a-b", "r2-d2", "123", "x" * 63, "-".join(["ab"] * 21)]
)
def test_valid_share_names_are_accepted(share_name: str, crds_installed: Kubectl) -> None:
    share = example("FileShare")
    share["spec"]["shareName"] = share_name
    code, stderr, _ = dry_run(crds_installed, share)
    assert code == 0, stderr


@pytest.mark.parametrize(
    "account",
    [
        {"name": "contosodata"},
        {"endpoint": "https://contosodata.file.core.windows.net"},
        {"endpoint": "http://127.0.0.1:10000/devstoreaccount1"},
    ],
)
def test_accounts_by_name_or_endpoint_with_workload_identity(
    account: dict[str, str], crds_installed: Kubectl
) -> None:
    share = example("FileShare")
    share["spec"]["account"] = account
    share["spec"].pop("credentials", None)
    share["spec"]["workloadIdentity"] = True
    code, stderr, _ = dry_run(crds_installed, share)
    assert code == 0, stderr


def test_a_share_snapshot_url_and_rfc3339_dates_are_accepted(crds_installed: Kubectl) -> None:
    job = example("CopyJob")
    url = "https://contosodata.file.core.windows.net/reports?sharesnapshot=2025-01-31T02:30:00.0000000Z"
    job["spec"]["source"] = {"url": url, "credentials": {"secretName": "contosodata-credentials"}}
    job["spec"]["destination"] = {"pvc": {"claimName": "restore"}}
    job["spec"]["options"] = {"includeAfter": "2025-01-31T02:30:00Z"}
    code, stderr, _ = dry_run(crds_installed, job)
    assert code == 0, stderr


def test_share_name_is_immutable_once_created(crds_installed: Kubectl) -> None:
    share = example("FileShare")
    share["metadata"] = {"name": "immutable-check", "namespace": NAMESPACE}
    crds_installed.apply(json.dumps(share))
    try:
        wait_for(lambda: crds_installed.get("fileshare", "immutable-check", NAMESPACE), what="the FileShare")
        renamed = copy.deepcopy(share)
        renamed["spec"]["shareName"] = "reports-archive"
        code, stderr, _ = dry_run(crds_installed, renamed)
        assert code != 0 and "shareName is immutable" in stderr, stderr
        resized = copy.deepcopy(share)
        resized["spec"]["quotaGiB"] = 2 * int(share["spec"].get("quotaGiB", 1))
        code, stderr, _ = dry_run(crds_installed, resized)
        assert code == 0, stderr
    finally:
        crds_installed.run(
            "delete", "fileshare", "immutable-check", "-n", NAMESPACE, "--wait=false", check=False
        )


def _broken_file_share_crd(change: str) -> dict[str, Any]:
    document = load_documents(next(p for p in CRD_FILES if p.name.startswith("fileshares")))[0]
    version = document["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    if change == "lookahead":
        spec["properties"]["shareName"]["pattern"] = "^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$"
    elif change == "misspelt-field":
        spec["x-kubernetes-validations"].append({"rule": "has(self.shareNmae)"})
    elif change == "bad-default":
        spec["properties"]["resyncSeconds"]["default"] = 5
    elif change == "untyped":
        spec["properties"]["accessTier"].pop("type")
    return document


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("lookahead", "invalid or unsupported Perl syntax"),
        ("misspelt-field", "undefined field 'shareNmae'"),
        ("bad-default", "should be greater than or equal to"),
        ("untyped", "must not be empty for specified object fields"),
    ],
)
def test_the_server_refuses_a_broken_crd(change: str, expected: str, crds_installed: Kubectl) -> None:
    code, stderr, _ = dry_run(crds_installed, _broken_file_share_crd(change))
    assert code != 0, f"the server took a CRD with {change}"
    assert expected in stderr, stderr
