"""CopyJob specs parsed as the operator and ``shareferry run`` read them: the examples, the CRD's
defaults, and one refusal per rule, each with the message a person sees in the condition."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from shareferry.api.copyjob import (
    CopyJobSpec,
    FileShareRef,
    PvcEndpoint,
    SpecError,
    UrlEndpoint,
    parse_copyjob,
    spec_hash,
)
from tests.cluster.crds import dry_run_all
from tests.cluster.kubectl import Kubectl
from tests.crds.test_crds import (
    EXAMPLE_FILES,
    INVALID_FILES,
    ROOT,
    expected_error,
    load_documents,
    server_message_parts,
)

EXAMPLES_DIR = ROOT / "examples"
FILES_URL = "https://contosodr.file.core.windows.net/reports"
EMULATOR_URL = "http://127.0.0.1:10000/devstoreaccount1/reports"


def manifests(kind: str, paths: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.relative_to(EXAMPLES_DIR)}#{index}", document)
        for path in paths
        for index, document in enumerate(load_documents(path))
        if document.get("kind") == kind
    ]


EXAMPLES = manifests("CopyJob", EXAMPLE_FILES)
TEMPLATES = [
    (name, document["spec"]["jobTemplate"]["spec"])
    for name, document in manifests("SyncSchedule", EXAMPLE_FILES)
]


def base(**changes: Any) -> dict[str, Any]:
    """A small valid spec (PVC -> FileShare), with top-level fields changed."""
    spec: dict[str, Any] = {
        "source": {"pvc": {"claimName": "data"}},
        "destination": {"fileShare": {"name": "reports"}},
    }
    spec.update(changes)
    return spec


def refusal(spec: Any, **kwargs: Any) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse_copyjob(spec, **kwargs)
    return caught.value


@pytest.fixture(scope="module")
def stored_examples(crds_installed: Kubectl) -> dict[str, dict[str, Any]]:
    """Each example CopyJob as the API server stores it (server-side dry-run, one call)."""
    answers = dry_run_all(crds_installed, [document for _, document in EXAMPLES])
    return {name: answer.stored() for (name, _), answer in zip(EXAMPLES, answers, strict=True)}


# -- the examples and the defaults -------------------------------------------------------------


def test_there_are_copyjob_examples() -> None:
    assert len(EXAMPLES) >= 2 and TEMPLATES


@pytest.mark.parametrize(("name", "document"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_every_example_parses(name: str, document: dict[str, Any]) -> None:
    spec = parse_copyjob(document["spec"])
    assert spec.mode == document["spec"].get("mode", "copy")
    assert spec.parallelism == document["spec"].get("parallelism", 1)
    assert spec.options == {"recursive": True, **document["spec"].get("options", {})}


@pytest.mark.parametrize(("name", "template"), TEMPLATES, ids=[name for name, _ in TEMPLATES])
def test_every_syncschedule_template_parses_as_a_sync(name: str, template: dict[str, Any]) -> None:
    spec = parse_copyjob({**template, "mode": "sync"}, path="spec.jobTemplate.spec")
    assert spec.mode == "sync"


@pytest.mark.parametrize(("name", "document"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_a_spec_parses_the_same_before_and_after_the_server_defaults_it(
    name: str, document: dict[str, Any], stored_examples: dict[str, dict[str, Any]]
) -> None:
    stored = stored_examples[name]
    assert parse_copyjob(stored["spec"]) == parse_copyjob(document["spec"])


def test_the_examples_endpoints_are_typed() -> None:
    upload = parse_copyjob(dict(EXAMPLES)["copyjob-upload.yaml#0"]["spec"])
    assert upload.source == PvcEndpoint(claim_name="reports-data", path="exports", read_only=True)
    assert upload.destination == FileShareRef(name="reports", path="incoming")
    assert upload.from_to == "LocalFile"
    assert upload.ttl_seconds_after_finished == 86400 and upload.backoff_limit == 3
    sync = parse_copyjob(dict(EXAMPLES)["copyjob-share-sync.yaml#0"]["spec"])
    assert sync.destination == UrlEndpoint(
        url=FILES_URL, secret_name="contosodr-credentials", workload_identity=False, kind="file"
    )
    assert sync.from_to == "FileFile"
    assert sync.resources == {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    assert sync.fileshare_names == ["reports"] and sync.secret_names == ["contosodr-credentials"]


def test_defaults_are_the_crds() -> None:
    spec = parse_copyjob(base())
    assert spec == CopyJobSpec(
        source=PvcEndpoint(claim_name="data"),
        destination=FileShareRef(name="reports"),
        mode="copy",
        options={"recursive": True},
        parallelism=1,
        backoff_limit=3,
    )
    assert spec.active_deadline_seconds is None and spec.ttl_seconds_after_finished is None


#: Specs that leave out what the CRD defaults, in every way a user can.
SPARSE_SPECS = {
    "nothing-optional": base(),
    "empty-options": base(options={}),
    "one-option": base(options={"putMd5": True}),
    "sync": base(mode="sync"),
}


@pytest.fixture(scope="module")
def stored_sparse_specs(crds_installed: Kubectl) -> dict[str, dict[str, Any]]:
    """Each of SPARSE_SPECS as the API server stores it (server-side dry-run, one call)."""
    documents = [
        {"apiVersion": "shareferry.dev/v1alpha1", "kind": "CopyJob", "metadata": {"name": name}, "spec": spec}
        for name, spec in SPARSE_SPECS.items()
    ]
    answers = dry_run_all(crds_installed, documents)
    return {name: answer.stored()["spec"] for name, answer in zip(SPARSE_SPECS, answers, strict=True)}


@pytest.mark.parametrize("name", list(SPARSE_SPECS))
def test_the_parser_fills_in_what_the_server_fills_in(
    name: str, stored_sparse_specs: dict[str, dict[str, Any]]
) -> None:
    stored = stored_sparse_specs[name]
    spec = parse_copyjob(SPARSE_SPECS[name])
    assert parse_copyjob(stored) == spec
    assert (spec.mode, spec.parallelism, spec.backoff_limit) == (
        stored["mode"],
        stored["parallelism"],
        stored["backoffLimit"],
    )
    if "options" in stored:  # the server defaults inside an options object that is present only
        assert spec.options == stored["options"]


def test_placement_fields_are_kept_as_given() -> None:
    toleration = {"key": "storage", "operator": "Exists", "effect": "NoSchedule"}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}
    spec = parse_copyjob(
        base(
            nodeSelector={"pool": "io"},
            tolerations=[toleration],
            affinity=affinity,
            activeDeadlineSeconds=600,
        )
    )
    assert (spec.node_selector, spec.tolerations, spec.affinity) == ({"pool": "io"}, [toleration], affinity)
    assert spec.active_deadline_seconds == 600


def test_paths_inside_a_share_or_volume_are_normalised() -> None:
    spec = parse_copyjob(
        base(
            source={"pvc": {"claimName": "d", "path": "/exports/./2024/"}},
            destination={"fileShare": {"name": "r", "path": "a//b/"}},
        )
    )
    assert spec.source == PvcEndpoint(claim_name="d", path="exports/2024")
    assert spec.destination == FileShareRef(name="r", path="a/b")


def test_a_path_style_url_takes_its_kind_from_the_spec() -> None:
    spec = parse_copyjob(
        base(destination={"url": EMULATOR_URL, "kind": "blob", "credentials": {"secretName": "emu"}})
    )
    assert spec.destination == UrlEndpoint(url=EMULATOR_URL, secret_name="emu", kind="blob")
    assert spec.from_to == "LocalBlob"


def test_a_url_with_a_share_snapshot_is_a_source() -> None:
    url = f"{FILES_URL}?sharesnapshot=2024-01-01T00:00:00.0000000Z"
    spec = parse_copyjob(base(source={"url": url, "workloadIdentity": True}))
    assert spec.source == UrlEndpoint(url=url, secret_name=None, workload_identity=True, kind="file")


def test_the_spec_hash_is_stable_and_changes_with_the_spec() -> None:
    spec = base(options={"putMd5": True, "excludePattern": ["*.tmp"]})
    reordered = dict(reversed(list(spec.items())))
    assert spec_hash(spec) == spec_hash(reordered) == spec_hash(copy.deepcopy(spec))
    assert len(spec_hash(spec)) == 16
    assert spec_hash(spec) != spec_hash(base(options={"putMd5": False, "excludePattern": ["*.tmp"]}))


# -- what the API server refuses, refused here too ----------------------------------------------

SERVER_REFUSALS = [
    (path, expected_error(path), load_documents(path)[0])
    for path in INVALID_FILES
    if path.name.startswith("copyjob-")
]


@pytest.mark.parametrize(
    ("path", "expected", "document"), SERVER_REFUSALS, ids=[path.name for path, _, _ in SERVER_REFUSALS]
)
def test_every_manifest_the_server_refuses_is_refused_naming_the_same_field(
    path: Path, expected: str, document: dict[str, Any]
) -> None:
    error = refusal(document["spec"])
    where, detail = server_message_parts(expected)
    assert where in error.message
    if detail:
        assert detail in error.message  # a CEL rule's message, as it is


def test_a_missing_destination_is_required() -> None:
    spec = base()
    del spec["destination"]
    error = refusal(spec)
    assert (error.reason, error.message) == ("InvalidSpec", "spec.destination: Required value")


def test_an_endpoint_takes_exactly_one_kind() -> None:
    error = refusal(base(source={"pvc": {"claimName": "d"}, "fileShare": {"name": "r"}}))
    assert error.message == "spec.source: give exactly one of fileShare, url or pvc"


def test_pvc_to_pvc_is_refused() -> None:
    error = refusal(base(destination={"pvc": {"claimName": "other"}}))
    assert error.message == "spec: a PVC to a PVC is not a transfer ShareFerry makes: one side must be Azure"


def test_a_url_with_a_sas_is_refused() -> None:
    error = refusal(
        base(destination={"url": f"{FILES_URL}?sv=2024&sig=abc", "credentials": {"secretName": "s"}})
    )
    assert error.message == (
        "spec.destination: a URL must not carry a SAS: put the SAS token in the credentials Secret "
        "(AZURE_STORAGE_SAS_TOKEN)"
    )


def test_a_destination_url_takes_no_query() -> None:
    error = refusal(
        base(destination={"url": f"{FILES_URL}?sharesnapshot=x", "credentials": {"secretName": "s"}})
    )
    assert error.message.startswith("spec.destination.url must be an http(s) URL with no query")


def test_a_url_needs_credentials_or_workload_identity() -> None:
    error = refusal(base(destination={"url": FILES_URL, "workloadIdentity": False}))
    assert error.message == "spec.destination: a URL needs credentials (a Secret) or workloadIdentity: true"


def test_a_path_style_url_without_a_kind_is_refused() -> None:
    error = refusal(base(destination={"url": EMULATOR_URL, "credentials": {"secretName": "s"}}))
    assert error.message.startswith(
        f"spec.destination.url {EMULATOR_URL} does not say whether it is Azure Files"
    )
    assert error.message.endswith("add spec.destination.kind: file or blob")


def test_a_kind_that_contradicts_the_host_is_refused() -> None:
    error = refusal(base(destination={"url": FILES_URL, "kind": "blob", "credentials": {"secretName": "s"}}))
    assert error.message == f"spec.destination.url: {FILES_URL} is an Azure Files URL, not Azure Blob"


def test_a_url_of_another_service_is_refused() -> None:
    error = refusal(
        base(destination={"url": "https://acct.dfs.core.windows.net/fs", "credentials": {"secretName": "s"}})
    )
    assert "is a dfs endpoint" in error.message and error.message.startswith("spec.destination.url: ")


def test_credentials_belong_to_a_url_only() -> None:
    error = refusal(base(destination={"fileShare": {"name": "r"}, "credentials": {"secretName": "s"}}))
    assert (
        error.message
        == "spec.destination.credentials applies to a url only: a FileShare brings its own credentials"
    )


def test_a_path_may_not_climb_out_of_its_volume() -> None:
    error = refusal(base(source={"pvc": {"claimName": "d", "path": "../etc"}}))
    assert error.message == "spec.source.pvc.path '../etc' must stay inside: '..' is not allowed"


def test_an_unknown_mode_is_refused() -> None:
    error = refusal(base(mode="move"))
    assert error.message == 'spec.mode: Unsupported value: "move": supported values: copy, sync'


def test_an_unknown_field_is_refused_with_a_suggestion() -> None:
    error = refusal(base(paralelism=2))
    assert error.message == 'spec.paralelism: unknown field "spec.paralelism" (did you mean parallelism?)'


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("parallelism", 0, "spec.parallelism must be at least 1, not 0"),
        ("parallelism", 65, "spec.parallelism must be at most 64, not 65"),
        ("parallelism", "3", "spec.parallelism must be a whole number, not string"),
        ("backoffLimit", 101, "spec.backoffLimit must be at most 100, not 101"),
        ("activeDeadlineSeconds", 0, "spec.activeDeadlineSeconds must be at least 1, not 0"),
        ("ttlSecondsAfterFinished", -1, "spec.ttlSecondsAfterFinished must be at least 0, not -1"),
        ("nodeSelector", {"pool": 1}, "spec.nodeSelector.pool must be a string, not number"),
        ("tolerations", {"key": "x"}, "spec.tolerations must be a list of objects, not object"),
    ],
)
def test_numbers_and_types_are_checked(field: str, value: Any, message: str) -> None:
    error = refusal(base(**{field: value}))
    assert (error.reason, error.message) == ("InvalidSpec", message)


def test_a_spec_that_is_not_an_object_is_refused() -> None:
    assert refusal(["source"]).message == "spec must be an object, not array"


def test_a_template_is_named_by_its_own_path() -> None:
    error = refusal({"mode": "sync", "source": {"pvc": {"claimName": "a"}}}, path="spec.jobTemplate.spec")
    assert error.message == "spec.jobTemplate.spec.destination: Required value"


def test_sync_needs_a_share_or_container_in_a_url() -> None:
    error = refusal(
        base(
            mode="sync",
            destination={"url": "https://acct.file.core.windows.net/", "credentials": {"secretName": "s"}},
        )
    )
    assert error.message == (
        "spec.destination.url names a whole account: mode: sync needs a share or container in the URL"
    )


def test_sync_takes_no_wildcards() -> None:
    error = refusal(base(mode="sync", source={"pvc": {"claimName": "d", "path": "exports/*"}}))
    assert error.message.startswith("spec.source: mode: sync takes no wildcards")


def test_a_state_volume_names_its_claim() -> None:
    assert parse_copyjob(base(stateVolume={"claimName": "plans"})).state_claim == "plans"
    assert parse_copyjob(base()).state_claim is None
    error = refusal(base(stateVolume={"claimName": "plans", "size": "1Gi"}))
    assert "spec.stateVolume" in error.message and "size" in error.message
    error = refusal(base(stateVolume={}))
    assert "spec.stateVolume.claimName" in error.message
