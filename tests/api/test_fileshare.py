"""FileShare specs: the example, defaults, the share URL, and refusals naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shareferry.api.errors import SpecError
from shareferry.api.fileshare import FileShareSpec, parse_fileshare, share_url
from tests.cluster.crds import dry_run
from tests.cluster.kubectl import Kubectl
from tests.crds.test_crds import (
    EXAMPLE_FILES,
    INVALID_FILES,
    ROOT,
    expected_error,
    load_documents,
    server_message_parts,
)

EXAMPLES = [
    (f"{path.relative_to(ROOT / 'examples')}#{index}", document)
    for path in EXAMPLE_FILES
    for index, document in enumerate(load_documents(path))
    if document.get("kind") == "FileShare"
]


def base(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "account": {"name": "contosodata"},
        "credentials": {"secretName": "contosodata-credentials"},
        "shareName": "reports",
    }
    spec.update(changes)
    return spec


def refusal(spec: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as caught:
        parse_fileshare(spec)
    assert caught.value.reason == "InvalidSpec"
    return caught.value.message


@pytest.mark.parametrize(("name", "document"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_every_example_parses(name: str, document: dict[str, Any]) -> None:
    spec = parse_fileshare(document["spec"])
    assert spec.share_name == document["spec"]["shareName"]
    assert share_url(spec).endswith(f"/{spec.share_name}")


def test_the_example_share_is_typed() -> None:
    spec = parse_fileshare(dict(EXAMPLES)["fileshare.yaml#0"]["spec"])
    assert spec == FileShareSpec(
        share_name="reports",
        account_name="contosodata",
        secret_name="contosodata-credentials",
        quota_gib=100,
        access_tier="TransactionOptimized",
        metadata={"team": "finance"},
        deletion_policy="Retain",
    )
    assert share_url(spec) == "https://contosodata.file.core.windows.net/reports"


def test_defaults_are_the_crds() -> None:
    spec = parse_fileshare(base())
    assert (spec.deletion_policy, spec.resync_seconds, spec.quota_gib, spec.metadata) == (
        "Retain",
        600,
        None,
        {},
    )


def test_the_parser_fills_in_what_the_server_fills_in(crds_installed: Kubectl) -> None:
    document = {
        "apiVersion": "shareferry.dev/v1alpha1",
        "kind": "FileShare",
        "metadata": {"name": "sparse"},
        "spec": base(),
    }
    stored = dry_run(crds_installed, document).stored()["spec"]
    spec = parse_fileshare(base())
    assert parse_fileshare(stored) == spec
    assert (spec.deletion_policy, spec.resync_seconds) == (stored["deletionPolicy"], stored["resyncSeconds"])
    assert "quotaGiB" not in stored and spec.quota_gib is None


def test_an_endpoint_account_makes_a_path_style_share_url() -> None:
    spec = parse_fileshare(
        base(
            account={"endpoint": "http://emulator:10000/devstoreaccount1/"},
            credentials=None,
            workloadIdentity=True,
        )
    )
    assert spec.workload_identity and spec.secret_name is None
    assert share_url(spec) == "http://emulator:10000/devstoreaccount1/reports"


SERVER_REFUSALS = [
    (path, expected_error(path), load_documents(path)[0])
    for path in INVALID_FILES
    if path.name.startswith("fileshare-") and not expected_error(path).startswith("metadata.")
]


@pytest.mark.parametrize(
    ("path", "expected", "document"), SERVER_REFUSALS, ids=[path.name for path, _, _ in SERVER_REFUSALS]
)
def test_every_spec_the_server_refuses_is_refused_naming_the_same_field(
    path: Path, expected: str, document: dict[str, Any]
) -> None:
    message = refusal(document["spec"])
    where, detail = server_message_parts(expected)
    assert message.startswith(where)
    if detail:
        assert detail in message


def test_one_of_account_name_or_endpoint() -> None:
    assert refusal(base(account={})) == "spec.account: give exactly one of account.name or account.endpoint"


def test_one_of_credentials_or_workload_identity() -> None:
    assert refusal(base(workloadIdentity=True)) == (
        "spec: give exactly one of credentials (a Secret) or workloadIdentity: true"
    )


def test_an_account_name_is_azures() -> None:
    assert refusal(base(account={"name": "Contoso"})) == (
        "spec.account.name 'Contoso' must be 3-24 lower-case letters and digits"
    )


def test_a_share_name_is_azures() -> None:
    assert refusal(base(shareName="a--b")).startswith(
        "spec.shareName 'a--b' must be 3 to 63 lower-case letters"
    )


def test_metadata_names_are_identifiers() -> None:
    assert refusal(base(metadata={"1x": "y"})).startswith(
        "spec.metadata: metadata names must be C identifiers"
    )


def test_a_quota_is_bounded() -> None:
    assert refusal(base(quotaGiB=102401)) == "spec.quotaGiB must be at most 102400, not 102401"
