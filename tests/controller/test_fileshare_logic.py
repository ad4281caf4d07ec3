"""A FileShare's plan and status: pure functions, checked case by case (create, adopt, drift,
re-created after a deletion behind our back, errors)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from shareferry.api.errors import SpecError
from shareferry.api.fileshare import FileShareSpec, parse_fileshare, share_url
from shareferry.controller.fileshare_logic import (
    action_event,
    error_event,
    error_reason,
    fileshare_error_status,
    fileshare_status,
    is_drift,
    on_delete,
    plan_fileshare,
    share_known,
)
from shareferry.core.errors import CredentialError
from shareferry.core.shares import GIB, AuthenticationFailed, QuotaBelowUsage, ShareState, Unreachable

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fileshare.yaml"
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def example_spec(**changes: Any) -> FileShareSpec:
    """The example manifest's spec (reports, 100 GiB, TransactionOptimized, team=finance)."""
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())["spec"]
    raw.update(changes)
    return parse_fileshare({key: value for key, value in raw.items() if value is not None})


def state_of(spec: FileShareSpec, **changes: Any) -> ShareState:
    """The share exactly as ``spec`` wants it, with ``changes``."""
    fields: dict[str, Any] = {
        "url": share_url(spec),
        "quota_gib": spec.quota_gib or 5120,
        "usage_bytes": 0,
        "metadata": dict(spec.metadata),
        "access_tier": spec.access_tier or "TransactionOptimized",
        "etag": '"0x1"',
    }
    fields.update(changes)
    return ShareState(**fields)


def ready(status: dict[str, Any]) -> dict[str, Any]:
    (condition,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    return dict(condition)


# ---- plans ------------------------------------------------------------------------------------


def test_missing_share_is_created_with_the_spec() -> None:
    spec = example_spec()
    plan = plan_fileshare(spec, None)
    assert plan.actions == ("create",)
    assert (plan.create, plan.recreated) == (True, False)
    assert (plan.quota_gib, plan.access_tier, plan.metadata) == (
        100,
        "TransactionOptimized",
        {"team": "finance"},
    )
    event = action_event(plan, "create", url=share_url(spec))
    assert (event.type, event.reason) == ("Normal", "Created")
    assert event.message == (
        "created share https://contosodata.file.core.windows.net/reports "
        "(quota 100 GiB, tier TransactionOptimized, metadata team)"
    )


def test_created_without_a_quota_takes_the_service_default() -> None:
    spec = example_spec(quotaGiB=None, accessTier=None, metadata=None)
    plan = plan_fileshare(spec, None)
    assert (plan.quota_gib, plan.access_tier, plan.metadata) == (None, None, None)
    assert "the service's default quota" in action_event(plan, "create", url=share_url(spec)).message


def test_share_deleted_behind_our_back_is_recreated_with_a_warning() -> None:
    spec = example_spec()
    plan = plan_fileshare(spec, None, known=True)
    assert plan.actions == ("create",)
    assert plan.recreated
    event = action_event(plan, "create", url=share_url(spec))
    assert (event.type, event.reason) == ("Warning", "Recreated")
    assert "was deleted outside Kubernetes" in event.message


def test_existing_share_that_matches_is_adopted_without_changes() -> None:
    spec = example_spec()
    before = state_of(spec, usage_bytes=3 * GIB // 2)
    plan = plan_fileshare(spec, before)
    assert plan.actions == ("adopt",)
    assert not plan.changes_share
    event = action_event(plan, "adopt", url=share_url(spec))
    assert (event.type, event.reason) == ("Normal", "Adopted")
    assert event.message.endswith("quota 100 GiB, 1.5 GiB used, tier TransactionOptimized")


def test_adopted_share_is_brought_to_the_spec() -> None:
    spec = example_spec()
    before = state_of(spec, quota_gib=5120, metadata={"owner": "ops"}, access_tier="Hot")
    plan = plan_fileshare(spec, before)
    assert plan.actions == ("adopt", "set-metadata", "set-access-tier", "set-quota")
    assert (plan.quota_gib, plan.access_tier, plan.metadata) == (
        100,
        "TransactionOptimized",
        {"team": "finance"},
    )
    url = share_url(spec)
    assert action_event(plan, "set-quota", url=url).message == f"quota of {url}: 5120 GiB -> 100 GiB"
    assert action_event(plan, "set-access-tier", url=url).message == (
        f"access tier of {url}: Hot -> TransactionOptimized"
    )
    assert (
        action_event(plan, "set-metadata", url=url).message == f"metadata of {url}: added team; removed owner"
    )


def test_in_sync_share_needs_nothing() -> None:
    spec = example_spec()
    plan = plan_fileshare(spec, state_of(spec, usage_bytes=12345), known=True)
    assert plan.nothing and plan.actions == ()


@pytest.mark.parametrize(
    ("drift", "action", "reason"),
    [
        ({"quota_gib": 50}, "set-quota", "QuotaUpdated"),
        ({"access_tier": "Cool"}, "set-access-tier", "AccessTierUpdated"),
        ({"metadata": {"team": "sales"}}, "set-metadata", "MetadataUpdated"),
        ({"metadata": {"team": "finance", "extra": "1"}}, "set-metadata", "MetadataUpdated"),
        ({"metadata": {}}, "set-metadata", "MetadataUpdated"),
    ],
)
def test_drift_in_azure_is_put_back(drift: dict[str, Any], action: str, reason: str) -> None:
    spec = example_spec()
    plan = plan_fileshare(spec, state_of(spec, **drift), known=True)
    assert plan.actions == (action,)
    event = action_event(plan, plan.actions[0], url=share_url(spec), drift=True)
    assert (event.type, event.reason) == ("Normal", reason)
    assert event.message.endswith("(changed outside Kubernetes: put back)")


def test_what_the_spec_leaves_out_is_left_alone() -> None:
    spec = example_spec(quotaGiB=None, accessTier=None, metadata=None)
    found = state_of(spec, quota_gib=77, access_tier="Cool", metadata={"owner": "ops"})
    assert plan_fileshare(spec, found, known=True).nothing


def test_known_share_and_drift_come_from_the_stored_status() -> None:
    assert not share_known(None) and not share_known({})
    assert share_known({"adopted": False}) and share_known({"adopted": True})
    assert is_drift({"adopted": False, "observedGeneration": 3}, 3)
    assert not is_drift({"adopted": False, "observedGeneration": 2}, 3)  # the spec changed
    assert not is_drift({"observedGeneration": 3}, 3)  # never had the share


def test_deletion_policy() -> None:
    assert on_delete(example_spec(deletionPolicy="Delete"))
    assert not on_delete(example_spec(deletionPolicy="Retain"))
    assert not on_delete(example_spec(deletionPolicy=None))  # the CRD's default


# ---- status -----------------------------------------------------------------------------------


def test_ready_status_has_every_field() -> None:
    spec = example_spec()
    after = state_of(spec, usage_bytes=int(1.2 * GIB))
    status = fileshare_status(spec, after, adopted=False, generation=4, now=NOW, previous_conditions=[])
    assert {key: status[key] for key in status if key != "conditions"} == {
        "observedGeneration": 4,
        "url": "https://contosodata.file.core.windows.net/reports",
        "quotaGiB": 100,
        "usageBytes": int(1.2 * GIB),
        "usage": "1.2 GiB",
        "adopted": False,
        "lastCheckTime": "2025-03-01T12:00:00Z",
    }
    condition = ready(status)
    assert (condition["status"], condition["reason"], condition["observedGeneration"]) == (
        "True",
        "ShareReady",
        4,
    )
    assert condition["message"] == (
        "share https://contosodata.file.core.windows.net/reports is ready: quota 100 GiB, 1.2 GiB used, "
        "tier TransactionOptimized"
    )


def test_later_passes_keep_adopted_and_the_transition_time() -> None:
    spec = example_spec()
    first = fileshare_status(
        spec, state_of(spec), adopted=True, generation=1, now=NOW, previous_conditions=[]
    )
    later = fileshare_status(
        spec,
        state_of(spec, usage_bytes=10),
        adopted=None,
        generation=1,
        now=NOW + timedelta(minutes=10),
        previous_conditions=first["conditions"],
    )
    assert "adopted" not in later  # a merge patch keeps the stored value
    assert later["lastCheckTime"] == "2025-03-01T12:10:00Z"
    assert ready(later)["lastTransitionTime"] == ready(first)["lastTransitionTime"] == "2025-03-01T12:00:00Z"


def test_share_still_differing_after_the_pass_is_not_ready() -> None:
    spec = example_spec()
    status = fileshare_status(
        spec, state_of(spec, quota_gib=5), adopted=None, generation=2, now=NOW, previous_conditions=[]
    )
    condition = ready(status)
    assert (condition["status"], condition["reason"]) == ("False", "OutOfSync")
    assert "quota 5 GiB, wanted 100 GiB" in condition["message"]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            AuthenticationFailed("read https://x.file.core.windows.net/reports: access denied"),
            "AuthenticationFailed",
        ),
        (QuotaBelowUsage("set the quota: 1 GiB is below the 2.5 GiB the share holds"), "QuotaBelowUsage"),
        (Unreachable("cannot reach http://emulator:10000/acct: connection refused"), "Unreachable"),
        (SpecError("InvalidSpec", "spec.shareName is required"), "InvalidSpec"),
        (
            CredentialError("AZURE_STORAGE_ACCOUNT_KEY is not a valid base64 account key"),
            "InvalidCredentials",
        ),
    ],
)
def test_errors_become_a_not_ready_condition(error: Exception, reason: str) -> None:
    spec = example_spec()
    found_reason, message = error_reason(error)
    status = fileshare_error_status(
        spec, reason=found_reason, message=message, generation=3, now=NOW, previous_conditions=[]
    )
    condition = ready(status)
    assert (condition["status"], condition["reason"], condition["message"]) == ("False", reason, message)
    assert status["url"] == share_url(spec)
    assert status["observedGeneration"] == 3
    assert "quotaGiB" not in status and "adopted" not in status  # the last known values stay


def test_missing_secret_as_the_controller_reports_it() -> None:
    status = fileshare_error_status(
        example_spec(),
        reason="MissingSecret",
        message="Secret storage/contosodata-credentials not found",
        generation=1,
        now=NOW,
        previous_conditions=[],
    )
    assert ready(status)["reason"] == "MissingSecret"


def test_error_messages_are_redacted() -> None:
    message = (
        "refused: AccountKey=c2VjcmV0c2VjcmV0c2VjcmV0;EndpointSuffix=core.windows.net and ?sv=1&sig=abcdef"
    )
    status = fileshare_error_status(
        None, reason="Error", message=message, generation=None, now=NOW, previous_conditions=[]
    )
    text = ready(status)["message"]
    assert "c2VjcmV0" not in text and "abcdef" not in text
    assert "url" not in status and "observedGeneration" not in status


def test_an_error_warns_once_per_reason() -> None:
    first = error_event([], "Unreachable", "cannot reach it")
    assert [(e.type, e.reason, e.message) for e in first] == [("Warning", "Unreachable", "cannot reach it")]
    stored = fileshare_error_status(
        example_spec(), reason="Unreachable", message="x", generation=1, now=NOW, previous_conditions=[]
    )["conditions"]
    assert error_event(stored, "Unreachable", "cannot reach it") == []
    assert [e.reason for e in error_event(stored, "AuthenticationFailed", "denied")] == [
        "AuthenticationFailed"
    ]
