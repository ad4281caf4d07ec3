"""The CRDs in crds/ and the manifests in examples/, taken as the Kubernetes API server would take
them, without a cluster (see schema.py for what is checked). invalid/ holds manifests the server
must refuse, each naming on its first line (``# expect: ...``) the error a user should see."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from tests.crds.schema import CrdSchema, load_crds, load_documents
from tests.support.paths import repo_root

ROOT = repo_root()
CRD_FILES = sorted((ROOT / "crds").glob("*.yaml"))
# Every manifest under examples/ (examples/demo/ included); examples/helm/ holds Helm values
# files, not manifests: tests/chart renders them and validates what comes out.
EXAMPLE_FILES = sorted(path for path in (ROOT / "examples").rglob("*.yaml") if "helm" not in path.parts)
INVALID_FILES = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))
GROUP = "shareferry.dev"
API_VERSION = f"{GROUP}/v1alpha1"

#: Short names of the resources a Kubernetes cluster (1.30) serves itself, as ``kubectl
#: api-resources`` lists them; a CRD short name equal to one of these makes ``kubectl get``
#: ambiguous.
BUILTIN_SHORT_NAMES = {
    "cm", "cs", "ep", "ev", "limits", "no", "ns", "po", "pv", "pvc", "quota", "rc", "sa", "svc",  # core
    "crd", "crds",  # apiextensions
    "deploy", "ds", "rs", "sts",  # apps
    "hpa",  # autoscaling
    "cj",  # batch CronJob
    "csr",  # certificates
    "ing", "netpol",  # networking
    "pdb", "psp",  # policy
    "pc",  # scheduling PriorityClass
    "sc", "vac",  # storage StorageClass, VolumeAttributesClass
}  # fmt: skip

MISSING = object()


def with_changes(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``document`` with dotted paths (``spec__shareName``) set, or removed with MISSING."""
    changed = copy.deepcopy(document)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = changed
        for key in parents:
            node = node.setdefault(key, {})
        if value is MISSING:
            node.pop(last, None)
        else:
            node[last] = value
    return changed


def example(kind: str) -> dict[str, Any]:
    """The first example manifest of ``kind``."""
    for path in EXAMPLE_FILES:
        for document in load_documents(path):
            if document.get("kind") == kind:
                return document
    raise AssertionError(f"no example of kind {kind} in examples/")


def expected_error(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# expect: (.+)", first)
    assert match, f"{path.name}: the first line must be '# expect: <part of the error>', not {first!r}"
    return match.group(1).strip()


@pytest.fixture(scope="module")
def crds() -> dict[tuple[str, str], CrdSchema]:
    return load_crds(CRD_FILES)


def crd_of(crds: dict[tuple[str, str], CrdSchema], kind: str) -> CrdSchema:
    return crds[(API_VERSION, kind)]


# -- the CRDs --------------------------------------------------------------------------------


def test_there_is_a_crd_for_each_shareferry_kind(crds: dict[tuple[str, str], CrdSchema]) -> None:
    assert {kind for _, kind in crds} == {"FileShare", "CopyJob", "SyncSchedule"}
    assert {api_version for api_version, _ in crds} == {API_VERSION}


@pytest.mark.parametrize("path", CRD_FILES, ids=lambda p: p.name)
def test_crd_is_structural_and_its_rules_can_be_checked(path: Path) -> None:
    (document,) = load_documents(path)
    for version in document["spec"]["versions"]:
        errors = CrdSchema(document, version["name"]).structural_errors()
        assert errors == [], "\n".join(errors)


@pytest.mark.parametrize("path", CRD_FILES, ids=lambda p: p.name)
def test_crd_names_agree_with_each_other(path: Path) -> None:
    (document,) = load_documents(path)
    spec, names = document["spec"], document["spec"]["names"]
    assert document["apiVersion"] == "apiextensions.k8s.io/v1"
    assert document["kind"] == "CustomResourceDefinition"
    assert spec["group"] == GROUP
    assert document["metadata"]["name"] == f"{names['plural']}.{spec['group']}"
    assert path.name == f"{document['metadata']['name']}.yaml"
    assert names["singular"] == names["kind"].lower()
    assert names["plural"] == f"{names['singular']}s"
    assert names["listKind"] == f"{names['kind']}List"
    assert names["categories"] == ["shareferry"]
    assert spec["scope"] == "Namespaced"
    assert [v["name"] for v in spec["versions"] if v["served"] and v["storage"]] == ["v1alpha1"]
    for name in (names["plural"], names["singular"], *names["shortNames"]):
        assert re.fullmatch(r"[a-z][a-z0-9]*", name), name


def test_short_names_collide_with_nothing(crds: dict[tuple[str, str], CrdSchema]) -> None:
    short_names = [name for crd in crds.values() for name in crd.crd["spec"]["names"]["shortNames"]]
    assert short_names, "each CRD should offer a short name"
    assert len(short_names) == len(set(short_names)), short_names
    assert not set(short_names) & BUILTIN_SHORT_NAMES
    own_names = {
        name
        for crd in crds.values()
        for name in (crd.crd["spec"]["names"]["plural"], crd.crd["spec"]["names"]["singular"])
    }
    assert not set(short_names) & own_names


# -- the examples ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.relative_to(ROOT / "examples").as_posix())
def test_example_is_accepted(path: Path, crds: dict[tuple[str, str], CrdSchema]) -> None:
    documents = load_documents(path)
    assert documents, f"{path.name} holds no manifest"
    for document in documents:
        if document["apiVersion"].startswith(f"{GROUP}/"):
            errors = crds[(document["apiVersion"], document["kind"])].validate(document)
            assert errors == [], "\n".join(errors)
        else:
            assert (document["apiVersion"], document["kind"]) == ("v1", "Secret"), path.name
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", document["metadata"]["name"])
            values = {**document.get("stringData", {}), **document.get("data", {})}
            assert values, "a credentials Secret with nothing in it"
            assert all(isinstance(value, str) for value in values.values()), values
            assert set(values) <= {
                "AZURE_STORAGE_CONNECTION_STRING",
                "AZURE_STORAGE_ACCOUNT_NAME",
                "AZURE_STORAGE_ACCOUNT_KEY",
                "AZURE_STORAGE_SAS_TOKEN",
            }


def test_examples_show_every_kind_and_refer_to_each_other(crds: dict[tuple[str, str], CrdSchema]) -> None:
    documents = [document for path in EXAMPLE_FILES for document in load_documents(path)]
    kinds = {document["kind"] for document in documents}
    assert {kind for _, kind in crds} <= kinds
    file_shares = {d["metadata"]["name"] for d in documents if d["kind"] == "FileShare"}
    copy_specs = [d["spec"] for d in documents if d["kind"] == "CopyJob"]
    copy_specs += [d["spec"]["jobTemplate"]["spec"] for d in documents if d["kind"] == "SyncSchedule"]
    referenced = {side["fileShare"]["name"] for spec in copy_specs for side in (spec["source"], spec["destination"]) if "fileShare" in side}  # fmt: skip
    assert referenced, "no example copies from or to a FileShare"
    assert referenced <= file_shares


# -- defaulting ------------------------------------------------------------------------------


def test_defaults_fill_in_what_a_file_share_leaves_out(crds: dict[tuple[str, str], CrdSchema]) -> None:
    crd = crd_of(crds, "FileShare")
    declared = crd.schema["properties"]["spec"]["properties"]
    minimal = with_changes(example("FileShare"), spec__deletionPolicy=MISSING, spec__resyncSeconds=MISSING)
    defaulted = crd.default(minimal)["spec"]
    assert defaulted["deletionPolicy"] == declared["deletionPolicy"]["default"]
    assert defaulted["resyncSeconds"] == declared["resyncSeconds"]["default"]
    chosen = with_changes(example("FileShare"), spec__deletionPolicy="Delete", spec__resyncSeconds=60)
    assert crd.default(chosen)["spec"] == chosen["spec"]


def test_defaults_apply_inside_objects_that_are_present_only(crds: dict[tuple[str, str], CrdSchema]) -> None:
    crd = crd_of(crds, "CopyJob")
    declared = crd.schema["properties"]["spec"]["properties"]
    without_options = with_changes(example("CopyJob"), spec__options=MISSING, spec__mode=MISSING)
    defaulted = crd.default(without_options)["spec"]
    assert "options" not in defaulted
    assert defaulted["mode"] == declared["mode"]["default"]
    with_options = with_changes(example("CopyJob"), spec__options={"putMd5": True})
    options = crd.default(with_options)["spec"]["options"]
    assert options == {"putMd5": True, "recursive": declared["options"]["properties"]["recursive"]["default"]}


def test_a_sync_schedule_always_makes_sync_jobs(crds: dict[tuple[str, str], CrdSchema]) -> None:
    schedule = example("SyncSchedule")
    assert "mode" not in schedule["spec"]["jobTemplate"]["spec"]
    assert crd_of(crds, "SyncSchedule").default(schedule)["spec"]["jobTemplate"]["spec"]["mode"] == "sync"


# -- what must be accepted -------------------------------------------------------------------


@pytest.mark.parametrize(
    "share_name", ["reports", "abc", "a-b", "r2-d2", "123", "x" * 63, "-".join(["ab"] * 21)]
)
def test_valid_share_names_are_accepted(share_name: str, crds: dict[tuple[str, str], CrdSchema]) -> None:
    manifest = with_changes(example("FileShare"), spec__shareName=share_name)
    assert crd_of(crds, "FileShare").validate(manifest) == []


@pytest.mark.parametrize(
    "account",
    [
        {"name": "contosodata"},
        {"endpoint": "https://contosodata.file.core.windows.net"},
        {"endpoint": "http://127.0.0.1:10000/devstoreaccount1"},
    ],
)
def test_accounts_by_name_or_endpoint_with_workload_identity(
    account: dict[str, str], crds: dict[tuple[str, str], CrdSchema]
) -> None:
    manifest = with_changes(example("FileShare"), spec__account=account, spec__credentials=MISSING, spec__workloadIdentity=True)  # fmt: skip
    assert crd_of(crds, "FileShare").validate(manifest) == []


def test_a_share_snapshot_url_is_a_valid_source(crds: dict[tuple[str, str], CrdSchema]) -> None:
    url = "https://contosodata.file.core.windows.net/reports?sharesnapshot=2025-01-31T02:30:00.0000000Z"
    manifest = with_changes(
        example("CopyJob"),
        spec__source={"url": url, "credentials": {"secretName": "contosodata-credentials"}},
        spec__destination={"pvc": {"claimName": "restore"}},
    )
    assert crd_of(crds, "CopyJob").validate(manifest) == []


def test_date_time_options_take_rfc3339(crds: dict[tuple[str, str], CrdSchema]) -> None:
    manifest = with_changes(example("CopyJob"), spec__options={"includeAfter": "2025-01-31T02:30:00Z"})
    assert crd_of(crds, "CopyJob").validate(manifest) == []


# -- what must be refused --------------------------------------------------------------------


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda p: p.stem)
def test_invalid_manifest_is_refused(path: Path, crds: dict[tuple[str, str], CrdSchema]) -> None:
    expected = expected_error(path)
    (document,) = load_documents(path)
    errors = crds[(document["apiVersion"], document["kind"])].validate(document)
    assert any(expected in error for error in errors), f"expected {expected!r} among:\n" + "\n".join(errors)


def test_there_are_invalid_manifests_for_every_kind(crds: dict[tuple[str, str], CrdSchema]) -> None:
    kinds = [load_documents(path)[0]["kind"] for path in INVALID_FILES]
    assert len(kinds) >= 15
    assert {kind for _, kind in crds} <= set(kinds)


def test_share_name_is_immutable_on_update(crds: dict[tuple[str, str], CrdSchema]) -> None:
    crd = crd_of(crds, "FileShare")
    stored = example("FileShare")
    renamed = with_changes(stored, spec__shareName="reports-archive")
    errors = crd.validate(renamed, old=stored)
    assert any("spec: shareName is immutable" in error for error in errors), errors
    assert crd.validate(copy.deepcopy(stored), old=stored) == []
    assert crd.validate(renamed) == [], "on create there is nothing to compare with"
    resized = with_changes(stored, spec__quotaGiB=2 * stored["spec"]["quotaGiB"])
    assert crd.validate(resized, old=stored) == []


# -- the validator catches what the server would refuse in a CRD -------------------------------


def _mutate_file_share(crds: dict[tuple[str, str], CrdSchema], change: str) -> CrdSchema:
    document = copy.deepcopy(crd_of(crds, "FileShare").crd)
    version = document["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    if change == "lookahead":
        spec["properties"]["shareName"]["pattern"] = "^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$"
    elif change == "kubernetes-only-function":
        spec["x-kubernetes-validations"].append({"rule": "self.shareName.lowerAscii() == self.shareName"})
    elif change == "misspelt-field":
        spec["x-kubernetes-validations"].append({"rule": "has(self.shareNmae)"})
    elif change == "bad-default":
        spec["properties"]["resyncSeconds"]["default"] = 5
    elif change == "column-to-nothing":
        version["additionalPrinterColumns"].append(
            {"name": "Tier", "type": "string", "jsonPath": ".spec.tier"}
        )
    elif change == "untyped":
        spec["properties"]["accessTier"].pop("type")
    elif change == "no-status-subresource":
        version.pop("subresources")
    return CrdSchema(document)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("lookahead", "is not RE2, the server refuses it"),
        ("kubernetes-only-function", "calls lowerAscii(), which cel-python cannot evaluate"),
        ("misspelt-field", "undefined field 'shareNmae'"),
        ("bad-default", "default 5 is invalid"),
        ("column-to-nothing", "points at nothing the schema declares (.spec.tier)"),
        ("untyped", "spec.accessTier: no type"),
        ("no-status-subresource", "no status subresource"),
    ],
)
def test_validator_reports_a_broken_crd(
    change: str, expected: str, crds: dict[tuple[str, str], CrdSchema]
) -> None:
    errors = _mutate_file_share(crds, change).structural_errors()
    assert any(expected in error for error in errors), errors


def test_a_rule_cel_python_cannot_run_fails_validation(crds: dict[tuple[str, str], CrdSchema]) -> None:
    crd = _mutate_file_share(crds, "kubernetes-only-function")
    errors = crd.validate(example("FileShare"))
    assert any("could not evaluate rule" in error and "lowerAscii" in error for error in errors), errors
