"""The CRDs, every example manifest and every invalid manifest under tests/crds/invalid, taken by
the real API server: the CRDs are created (structural schema, RE2 patterns, defaults, CEL rules
compiled and within the cost limits), objects go through server-side dry-run (pruning, defaults,
schema and CEL validation, strict field validation as `kubectl apply` asks for it)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.kubectl import Kubectl, wait_for
from tests.support.paths import repo_root

ROOT = repo_root()
CRD_FILES = sorted((ROOT / "crds").glob("*.yaml"))
EXAMPLE_FILES = sorted(path for path in (ROOT / "examples").rglob("*.yaml") if "helm" not in path.parts)
INVALID_FILES = sorted((ROOT / "tests" / "crds" / "invalid").glob("*.yaml"))
NAMESPACE = "crd-checks"
GROUP = "shareferry.dev"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def expected_error(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# expect: (.+)", first)
    assert match, f"{path.name}: the first line must be '# expect: <part of the error>', not {first!r}"
    return match.group(1).strip()


def example(kind: str) -> dict[str, Any]:
    for path in EXAMPLE_FILES:
        for document in documents(path):
            if document.get("kind") == kind:
                return copy.deepcopy(document)
    raise AssertionError(f"no example of kind {kind}")


@pytest.fixture(scope="module")
def crds_installed(kube: Kubectl) -> Kubectl:
    for path in CRD_FILES:
        kube.run("apply", "--server-side", "--force-conflicts", "-f", str(path))
    for path in CRD_FILES:
        name = documents(path)[0]["metadata"]["name"]
        kube.run("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    if kube.get("namespace", NAMESPACE) is None:
        kube.run("create", "namespace", NAMESPACE)
    return kube


def dry_run(kube: Kubectl, manifest: dict[str, Any] | str) -> tuple[int, str, dict[str, Any] | None]:
    """Server-side dry-run of one manifest: (exit code, stderr, the object the server returned)."""
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    result = kube.run(
        "apply", "--dry-run=server", "-n", NAMESPACE, "-o", "json", "-f", "-", stdin=text, check=False
    )
    returned = json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else None
    return result.returncode, result.stderr, returned


def test_the_server_establishes_every_crd_and_serves_its_names(crds_installed: Kubectl) -> None:
    resources = crds_installed.run("api-resources", f"--api-group={GROUP}", "-o", "name").stdout.split()
    assert sorted(resources) == sorted(
        f"{documents(p)[0]['spec']['names']['plural']}.{GROUP}" for p in CRD_FILES
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
        names = documents(path)[0]["spec"]["names"]
        for short in names["shortNames"]:
            assert short_names.get(short) == [names["kind"]], (short, short_names.get(short))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.relative_to(ROOT / "examples").as_posix())
def test_example_is_accepted_by_the_server(path: Path, crds_installed: Kubectl) -> None:
    for document in documents(path):
        code, stderr, _ = dry_run(crds_installed, document)
        assert code == 0, stderr


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda p: p.stem)
def test_invalid_manifest_is_refused_by_the_server(path: Path, crds_installed: Kubectl) -> None:
    code, stderr, _ = dry_run(crds_installed, path.read_text(encoding="utf-8"))
    assert code != 0, f"the server accepted {path.name}"
    assert expected_error(path) in stderr, stderr


def test_there_are_invalid_manifests_for_every_kind() -> None:
    kinds = {documents(path)[0]["kind"] for path in INVALID_FILES}
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
    document = documents(next(p for p in CRD_FILES if p.name.startswith("fileshares")))[0]
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
