"""A FileShare reconciled end to end against the Files emulator over HTTP: the share in Azure,
the status fields and the events, pass after pass (a kopf handler calls exactly this)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareClient,
    ShareServiceClient,
    generate_account_sas,
)

from shareferry.api.fileshare import FileShareSpec, parse_fileshare
from shareferry.controller.fileshare_ops import ReconcileOutcome, delete_fileshare, reconcile_fileshare
from shareferry.core.shares import GIB
from shareferry.emulator import EmulatorConfig, RunningEmulator

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
WRONG_KEY = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="


class FileShareRun:
    """One FileShare's stored status across passes, patched the way kopf's merge patch does."""

    def __init__(self, spec: FileShareSpec, environ: dict[str, str], *, generation: int = 1) -> None:
        self.spec = spec
        self.environ = environ
        self.generation = generation
        self.status: dict[str, Any] = {}
        self.now = T0

    async def reconcile(self, *, retry: int = 0) -> ReconcileOutcome:
        outcome = await reconcile_fileshare(
            self.spec,
            self.environ,
            generation=self.generation,
            now=self.now,
            previous_conditions=self.status.get("conditions", []),
            previous_status=self.status,
            retry=retry,
        )
        self.status.update(outcome.status)
        self.now += timedelta(minutes=10)
        return outcome


def fileshare(emulator: RunningEmulator, **changes: Any) -> FileShareSpec:
    raw: dict[str, Any] = {
        "account": {"endpoint": emulator.account_url()},
        "credentials": {"secretName": "emulator-credentials"},
        "shareName": "reports",
        "quotaGiB": 100,
        "accessTier": "Hot",
        "metadata": {"team": "finance"},
    }
    raw.update(changes)
    return parse_fileshare({key: value for key, value in raw.items() if value is not None})


@pytest.fixture
def secret(emulator: RunningEmulator) -> dict[str, str]:
    """The FileShare Secret's keys, as the controller hands them over."""
    account = emulator.account()
    return {"AZURE_STORAGE_ACCOUNT_NAME": account.name, "AZURE_STORAGE_ACCOUNT_KEY": account.key}


def reports(service: ShareServiceClient) -> ShareClient:
    return service.get_share_client("reports")


def events_of(outcome: ReconcileOutcome) -> list[tuple[str, str]]:
    return [(event.type, event.reason) for event in outcome.events]


def ready(outcome: ReconcileOutcome) -> dict[str, Any]:
    (condition,) = [c for c in outcome.status["conditions"] if c["type"] == "Ready"]
    return dict(condition)


# ---- create, then nothing ---------------------------------------------------------------------


async def test_first_pass_creates_the_share_and_reports_it(
    emulator: RunningEmulator, secret: dict[str, str], service: ShareServiceClient
) -> None:
    run = FileShareRun(fileshare(emulator), secret)
    outcome = await run.reconcile()
    props = reports(service).get_share_properties()
    assert (props.quota, props.access_tier, props.metadata) == (100, "Hot", {"team": "finance"})
    url = f"{emulator.account_url()}/reports"
    assert {key: value for key, value in outcome.status.items() if key != "conditions"} == {
        "observedGeneration": 1,
        "url": url,
        "quotaGiB": 100,
        "usageBytes": 0,
        "usage": "0 B",
        "adopted": False,
        "lastCheckTime": "2025-03-01T12:00:00Z",
    }
    assert (ready(outcome)["status"], ready(outcome)["reason"]) == ("True", "ShareReady")
    assert (outcome.ready, outcome.retry_after) == (True, None)
    assert events_of(outcome) == [("Normal", "Created")]
    assert outcome.events[0].message == f"created share {url} (quota 100 GiB, tier Hot, metadata team)"


async def test_second_pass_is_a_no_op_without_events(
    emulator: RunningEmulator, secret: dict[str, str], service: ShareServiceClient
) -> None:
    run = FileShareRun(fileshare(emulator), secret)
    await run.reconcile()
    etag = reports(service).get_share_properties().etag
    reports(service).get_file_client("data.bin").upload_file(b"x" * 4096)
    outcome = await run.reconcile()
    assert outcome.events == [] and outcome.ready and outcome.retry_after is None
    assert reports(service).get_share_properties().etag == etag  # nothing was written
    assert "adopted" not in outcome.status and run.status["adopted"] is False
    assert (outcome.status["usageBytes"], outcome.status["usage"]) == (4096, "4.0 KiB")
    assert outcome.status["lastCheckTime"] == "2025-03-01T12:10:00Z"
    assert ready(outcome)["lastTransitionTime"] == "2025-03-01T12:00:00Z"


# ---- adopt, drift, re-create ------------------------------------------------------------------


async def test_existing_share_is_adopted_and_brought_to_the_spec(
    emulator: RunningEmulator, secret: dict[str, str], service: ShareServiceClient
) -> None:
    share = service.create_share("reports", quota=5120, metadata={"owner": "ops"})
    share.get_file_client("old.bin").upload_file(b"o" * 1000)
    outcome = await FileShareRun(fileshare(emulator), secret).reconcile()
    props = share.get_share_properties()
    assert (props.quota, props.access_tier, props.metadata) == (100, "Hot", {"team": "finance"})
    assert share.get_file_client("old.bin").download_file().readall() == b"o" * 1000
    assert events_of(outcome) == [
        ("Normal", "Adopted"),
        ("Normal", "MetadataUpdated"),
        ("Normal", "AccessTierUpdated"),
        ("Normal", "QuotaUpdated"),
    ]
    assert (outcome.status["adopted"], outcome.status["usageBytes"], outcome.ready) == (True, 1000, True)


async def test_changes_made_in_azure_are_put_back(
    emulator: RunningEmulator, secret: dict[str, str], service: ShareServiceClient
) -> None:
    run = FileShareRun(fileshare(emulator), secret)
    await run.reconcile()
    reports(service).set_share_metadata({"team": "sales", "extra": "1"})
    reports(service).set_share_quota(7)
    outcome = await run.reconcile()
    props = reports(service).get_share_properties()
    assert (props.quota, props.metadata) == (100, {"team": "finance"})
    assert events_of(outcome) == [("Normal", "MetadataUpdated"), ("Normal", "QuotaUpdated")]
    assert all(e.message.endswith("(changed outside Kubernetes: put back)") for e in outcome.events)
    assert outcome.events[1].message.startswith(
        f"quota of {emulator.account_url()}/reports: 7 GiB -> 100 GiB"
    )
    assert "adopted" not in outcome.status and outcome.ready


async def test_a_spec_change_is_applied_as_such(
    emulator: RunningEmulator, secret: dict[str, str], service: ShareServiceClient
) -> None:
    run = FileShareRun(fileshare(emulator), secret)
    await run.reconcile()
    run.spec, run.generation = fileshare(emulator, quotaGiB=200, accessTier="Cool"), 2
    outcome = await run.reconcile()
    props = reports(service).get_share_properties()
    assert (props.quota, props.access_tier) == (200, "Cool")
    assert [e.message.split(": ", 1)[1] for e in outcome.events] == ["Hot -> Cool", "100 GiB -> 200 GiB"]
    assert (outcome.status["observedGeneration"], outcome.status["quotaGiB"]) == (2, 200)


async def test_share_deleted_behind_our_back_is_recreated(
    emulator: RunningEmulator, secret: dict[str, str], service: ShareServiceClient
) -> None:
    run = FileShareRun(fileshare(emulator), secret)
    await run.reconcile()
    service.delete_share("reports")
    outcome = await run.reconcile()
    props = reports(service).get_share_properties()
    assert (props.quota, props.metadata) == (100, {"team": "finance"})
    assert events_of(outcome) == [("Warning", "Recreated")]
    assert "was deleted outside Kubernetes" in outcome.events[0].message
    assert (outcome.status["adopted"], outcome.ready) == (False, True)


# ---- errors -----------------------------------------------------------------------------------


async def test_wrong_key_is_reported_once_and_not_retried_soon(
    emulator: RunningEmulator, secret: dict[str, str], service: ShareServiceClient
) -> None:
    run = FileShareRun(fileshare(emulator), {**secret, "AZURE_STORAGE_ACCOUNT_KEY": WRONG_KEY})
    first = await run.reconcile()
    condition = ready(first)
    assert (condition["status"], condition["reason"]) == ("False", "AuthenticationFailed")
    assert "access denied" in condition["message"]
    assert WRONG_KEY not in str(first.status) and WRONG_KEY not in str(first.events)
    assert events_of(first) == [("Warning", "AuthenticationFailed")]
    assert (first.ready, first.retry_after) == (False, None)
    assert first.status["url"] == f"{emulator.account_url()}/reports"
    second = await run.reconcile()
    assert second.events == []
    assert ready(second)["lastTransitionTime"] == condition["lastTransitionTime"]
    assert [share.name for share in service.list_shares()] == []


async def test_unreachable_endpoint_is_retried_with_growing_backoff(secret: dict[str, str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = parse_fileshare(
        {
            "account": {"endpoint": f"http://127.0.0.1:{port}/{secret['AZURE_STORAGE_ACCOUNT_NAME']}"},
            "credentials": {"secretName": "emulator-credentials"},
            "shareName": "reports",
        }
    )
    run = FileShareRun(spec, secret)
    first = await run.reconcile()
    assert ready(first)["reason"] == "Unreachable"
    assert f"cannot reach http://127.0.0.1:{port}/" in ready(first)["message"]
    assert first.retry_after == 10.0
    assert (await run.reconcile(retry=2)).retry_after == 40.0
    assert (await run.reconcile(retry=50)).retry_after == 300.0


async def test_quota_below_usage_keeps_the_other_changes(tmp_path: Path) -> None:
    # On disk, a large file is a sparse file: gigabytes of usage cost nothing.
    with RunningEmulator(EmulatorConfig(data_dir=tmp_path)) as emulator:
        account = emulator.account()
        secret = {"AZURE_STORAGE_ACCOUNT_NAME": account.name, "AZURE_STORAGE_ACCOUNT_KEY": account.key}
        service = ShareServiceClient(
            emulator.account_url(), credential={"account_name": account.name, "account_key": account.key}
        )
        run = FileShareRun(fileshare(emulator, quotaGiB=5), secret)
        await run.reconcile()
        reports(service).get_file_client("big.bin").create_file(size=3 * GIB)
        run.spec, run.generation = fileshare(emulator, quotaGiB=2, metadata={"team": "sales"}), 2
        outcome = await run.reconcile()
        props = reports(service).get_share_properties()
    assert (props.quota, props.metadata) == (5, {"team": "sales"})
    assert events_of(outcome) == [("Normal", "MetadataUpdated"), ("Warning", "QuotaBelowUsage")]
    condition = ready(outcome)
    assert (condition["status"], condition["reason"]) == ("False", "QuotaBelowUsage")
    assert "2 GiB is below the 3.0 GiB" in condition["message"]
    assert outcome.retry_after is None


async def test_sas_token_secret(emulator: RunningEmulator, service: ShareServiceClient) -> None:
    account = emulator.account()
    sas = generate_account_sas(
        account.name,
        account.key,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, create=True),
        datetime.now(UTC) + timedelta(hours=1),
    )
    outcome = await FileShareRun(fileshare(emulator), {"AZURE_STORAGE_SAS_TOKEN": sas}).reconcile()
    assert outcome.ready and events_of(outcome) == [("Normal", "Created")]
    assert reports(service).get_share_properties().quota == 100
    signature = dict(part.split("=", 1) for part in sas.split("&"))["sig"]
    assert signature not in str(outcome.status)


# ---- deletion ---------------------------------------------------------------------------------


async def test_retain_leaves_the_share(
    emulator: RunningEmulator, secret: dict[str, str], service: ShareServiceClient
) -> None:
    spec = fileshare(emulator)
    await FileShareRun(spec, secret).reconcile()
    events = await delete_fileshare(spec, secret)
    assert [(e.type, e.reason) for e in events] == [("Normal", "Retained")]
    assert reports(service).get_share_properties().quota == 100


async def test_delete_policy_deletes_the_share_and_its_snapshots(
    emulator: RunningEmulator, secret: dict[str, str], service: ShareServiceClient
) -> None:
    spec = fileshare(emulator, deletionPolicy="Delete")
    await FileShareRun(spec, secret).reconcile()
    reports(service).create_snapshot()
    events = await delete_fileshare(spec, secret)
    assert [(e.reason, e.message) for e in events] == [
        ("Deleted", f"deleted share {emulator.account_url()}/reports and its snapshots")
    ]
    assert list(service.list_shares(include_snapshots=True)) == []
    again = await delete_fileshare(spec, secret)
    assert again[0].message.endswith("was already gone")
