"""The CRDs in crds/ and the manifests in examples/: the conventions a server does not check (names,
printer columns, status subresources, examples that refer to each other). What the API server
checks (schemas, CEL rules, defaults, the manifests of invalid/ it must refuse) is tested on the
real server, in tests/cluster/test_crds_on_server.py. invalid/ holds manifests the server must
refuse, each naming on its first line (``# expect: ...``) the error a user sees, word for word."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

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


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]


def crd_documents() -> list[dict[str, Any]]:
    return [load_documents(path)[0] for path in CRD_FILES]


def test_there_is_a_crd_for_each_shareferry_kind() -> None:
    assert {crd["spec"]["names"]["kind"] for crd in crd_documents()} == {
        "FileShare",
        "CopyJob",
        "SyncSchedule",
    }
    assert {version["name"] for crd in crd_documents() for version in crd["spec"]["versions"]} == {"v1alpha1"}


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


@pytest.mark.parametrize("path", CRD_FILES, ids=lambda p: p.name)
def test_every_version_has_a_status_subresource_and_columns_that_point_at_declared_fields(path: Path) -> None:
    """The server takes a printer column to nowhere (``kubectl get`` then shows <none>) and a CRD
    without a status subresource (the operator's status patches would then change the spec)."""
    (document,) = load_documents(path)
    for version in document["spec"]["versions"]:
        assert "status" in version.get("subresources", {}), version["name"]
        schema = version["schema"]["openAPIV3Schema"]
        for column in version.get("additionalPrinterColumns", []):
            path = re.sub(r"\[[^\]]*\]", "", column["jsonPath"]).lstrip(".").split(".")
            if path[0] == "metadata":  # the server's own ObjectMeta
                continue
            node = schema
            for part in path:
                node = node.get("items", node)  # a filter or an index selects array items
                declared = node.get("properties", {})
                if node.get("x-kubernetes-preserve-unknown-fields") and part not in declared:
                    break
                assert part in declared, f"column {column['name']}: {column['jsonPath']}"
                node = declared[part]


# -- the examples ----------------------------------------------------------------------------


def test_examples_show_every_kind_and_refer_to_each_other() -> None:
    documents = [document for path in EXAMPLE_FILES for document in load_documents(path)]
    kinds = {document["kind"] for document in documents}
    assert {"FileShare", "CopyJob", "SyncSchedule"} <= kinds
    file_shares = {d["metadata"]["name"] for d in documents if d["kind"] == "FileShare"}
    copy_specs = [d["spec"] for d in documents if d["kind"] == "CopyJob"]
    copy_specs += [d["spec"]["jobTemplate"]["spec"] for d in documents if d["kind"] == "SyncSchedule"]
    referenced = {side["fileShare"]["name"] for spec in copy_specs for side in (spec["source"], spec["destination"]) if "fileShare" in side}  # fmt: skip
    assert referenced, "no example copies from or to a FileShare"
    assert referenced <= file_shares


def test_every_invalid_manifest_names_the_error_a_user_sees() -> None:
    for path in INVALID_FILES:
        assert expected_error(path)
        assert len(load_documents(path)) == 1, path.name


def server_message_parts(expected: str) -> tuple[str, str]:
    """The field an API server error names, and the message of ours in it ("" when the text is
    the server's own wording: a type, enum, length or pattern failure).

    ``spec.destination: Invalid value: give exactly one of ...`` (a CEL rule's message) gives
    ("spec.destination", "give exactly one of ..."); ``unknown field "spec.quotaGb"`` (strict
    decoding) gives ("spec.quotaGb", "")."""
    if expected.startswith("unknown field "):
        return expected.split('"')[1], ""
    where, _, detail = expected.partition(": ")
    detail = detail.removeprefix("Invalid value: ")
    if detail.startswith(('"', "Unsupported value", "Required value", "Too long")) or " in body " in detail:
        return where, ""
    return where, detail
