"""FileShares end to end: kopf reconciles them on a real API server against the Files emulator.
Checked as a platform team would: the share as the Azure SDK reads it (quota, access tier,
metadata), the FileShare's status and Ready condition, the Events, the metrics, what happens to
the Azure share when the FileShare is deleted, and that a wrong key never shows."""

from __future__ import annotations

import base64
import json
import os
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from shareferry.controller.fileshare_pass import NOT_READY_RECHECK_SECONDS
from shareferry.kube import FILESHARES
from tests.operator.conftest import SECRET, World, condition, reasons_of, status_of

GIB = 1 << 30
HANDLED = "shareferry.dev/last-handled-configuration"
"""kopf's record of the spec its change handlers have finished with."""


async def event_about(world: World, name: str, reason: str) -> dict[str, Any]:
    [event] = [
        event
        for event in await world.api.events(world.namespace, involving=name)
        if event["reason"] == reason
    ]
    return event


def handled(body: dict[str, Any]) -> bool:
    """Whether kopf has finished the change handlers for the object's current spec (it records
    the spec it handled in an annotation once they succeed)."""
    record = body["metadata"].get("annotations", {}).get(HANDLED)
    return record is not None and json.loads(record).get("spec") == body.get("spec")


async def ready(world: World, name: str, status: str = "True", *, timeout: float = 30.0) -> dict[str, Any]:
    """The FileShare once its Ready condition has ``status`` for its current generation (and,
    when True, kopf is done with its handlers: no test ends while kopf still writes)."""
    return await world.api.wait_for_object(
        FILESHARES,
        world.namespace,
        name,
        lambda body: (
            condition(body, "Ready").get("status") == status
            and condition(body, "Ready").get("observedGeneration") == body["metadata"]["generation"]
            and (status != "True" or handled(body))
        ),
        timeout=timeout,
    )


async def test_a_fileshare_creates_its_share_as_declared_and_reports_it_ready(world: World) -> None:
    await world.seed_secret()
    await world.api.apply(
        world.fileshare(
            "reports",
            "reports",
            quotaGiB=7,
            accessTier="Cool",
            metadata={"team": "finance", "costCentre": "cc42"},
        )
    )
    body = await ready(world, "reports")

    # The share, as the Azure SDK reads it.
    properties = world.service.get_share_client("reports").get_share_properties()
    assert properties.quota == 7
    assert properties.access_tier == "Cool"
    assert dict(properties.metadata) == {"team": "finance", "costCentre": "cc42"}

    # The status a person reads.
    status = status_of(body)
    assert status["url"] == f"{world.emulator.account_url()}/reports"
    assert status["quotaGiB"] == 7
    assert status["usageBytes"] == 0
    assert status["usage"]
    assert status["adopted"] is False
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert condition(body, "Ready")["reason"] == "ShareReady"
    assert "7 GiB" in condition(body, "Ready")["message"]

    assert await reasons_of(world, "reports", until="Created") == ["Created"]
    created = await event_about(world, "reports", "Created")
    assert created["type"] == "Normal"
    assert status["url"] in created["message"] and "quota 7 GiB" in created["message"]

    assert world.metric("shareferry_fileshare_ready", namespace=world.namespace, fileshare="reports") == 1
    assert (
        world.metric("shareferry_fileshare_quota_bytes", namespace=world.namespace, fileshare="reports")
        == 7 * GIB
    )
    assert (
        world.metric("shareferry_fileshare_usage_bytes", namespace=world.namespace, fileshare="reports") == 0
    )


async def test_an_existing_share_is_adopted_as_it_is_and_a_quota_change_is_applied(world: World) -> None:
    existing = world.service.create_share("legacy", quota=3, metadata={"owner": "data-team"})
    data = os.urandom(12_345)
    existing.get_file_client("keep.bin").upload_file(data)
    await world.seed_secret()
    await world.api.apply(world.fileshare("legacy", "legacy"))
    body = await ready(world, "legacy")

    status = status_of(body)
    assert status["adopted"] is True
    assert status["quotaGiB"] == 3
    assert status["usageBytes"] == len(data)
    assert await reasons_of(world, "legacy", until="Adopted") == ["Adopted"]
    assert "quota 3 GiB" in (await event_about(world, "legacy", "Adopted"))["message"]
    # Nothing in the spec asks for a change: the share keeps its own settings and content.
    properties = existing.get_share_properties()
    assert properties.quota == 3
    assert dict(properties.metadata) == {"owner": "data-team"}
    assert existing.get_file_client("keep.bin").download_file().readall() == data

    # The spec now asks for a quota: it is applied, and adopted stays as first reported.
    await world.api.apply(world.fileshare("legacy", "legacy", quotaGiB=9))
    body = await ready(world, "legacy")
    assert status_of(body)["quotaGiB"] == 9
    assert status_of(body)["adopted"] is True
    assert existing.get_share_properties().quota == 9
    assert await reasons_of(world, "legacy", until="QuotaUpdated") == ["Adopted", "QuotaUpdated"]
    assert "3 GiB -> 9 GiB" in (await event_about(world, "legacy", "QuotaUpdated"))["message"]
    assert (
        world.metric("shareferry_fileshare_quota_bytes", namespace=world.namespace, fileshare="legacy")
        == 9 * GIB
    )
    assert dict(existing.get_share_properties().metadata) == {"owner": "data-team"}


async def test_metadata_changed_in_azure_is_put_back_on_the_next_resync(world: World) -> None:
    await world.seed_secret()
    await world.api.apply(world.fileshare("tagged", "tagged", metadata={"team": "finance"}, resyncSeconds=30))
    first = await ready(world, "tagged")
    share = world.service.get_share_client("tagged")
    assert dict(share.get_share_properties().metadata) == {"team": "finance"}

    share.set_share_metadata({"team": "marketing", "extra": "added-by-hand"})
    world.clock.advance(timedelta(seconds=31))
    await world.api.wait_for(
        lambda: dict(share.get_share_properties().metadata) == {"team": "finance"},
        timeout=30,
        what="the metadata to be put back",
    )

    assert await reasons_of(world, "tagged", until="MetadataUpdated") == ["Created", "MetadataUpdated"]
    event = await event_about(world, "tagged", "MetadataUpdated")
    assert "changed outside Kubernetes" in event["message"]
    assert "team" in event["message"] and "extra" in event["message"]
    body = await world.api.wait_for_object(
        FILESHARES,
        world.namespace,
        "tagged",
        lambda body: status_of(body)["lastCheckTime"] > status_of(first)["lastCheckTime"],
    )
    assert condition(body, "Ready")["status"] == "True"
    assert body["metadata"]["generation"] == first["metadata"]["generation"]  # no spec change


async def test_a_missing_secret_is_reported_and_the_share_is_made_once_it_appears(world: World) -> None:
    await world.api.apply(world.fileshare("later", "later", quotaGiB=2))
    body = await ready(world, "later", "False")
    ready_condition = condition(body, "Ready")
    assert ready_condition["reason"] == "MissingSecret"
    assert f"'{SECRET}'" in ready_condition["message"] and world.namespace in ready_condition["message"]
    assert await reasons_of(world, "later", until="MissingSecret") == ["MissingSecret"]
    assert (await event_about(world, "later", "MissingSecret"))["type"] == "Warning"
    assert world.metric("shareferry_fileshare_ready", namespace=world.namespace, fileshare="later") == 0
    assert (
        world.metric(
            "shareferry_errors_total", namespace=world.namespace, kind="FileShare", reason="MissingSecret"
        )
        or 0
    ) >= 1
    with pytest.raises(ResourceNotFoundError):
        world.service.get_share_client("later").get_share_properties()

    await world.seed_secret()
    body = await ready(world, "later")
    assert status_of(body)["quotaGiB"] == 2
    assert world.service.get_share_client("later").get_share_properties().quota == 2
    assert await reasons_of(world, "later", until="Created") == ["MissingSecret", "Created"]
    assert world.metric("shareferry_fileshare_ready", namespace=world.namespace, fileshare="later") == 1


async def test_a_wrong_key_is_reported_without_the_key_anywhere(world: World) -> None:
    wrong_key = base64.b64encode(b"this is not the account key, not at all" + os.urandom(24)).decode()
    await world.seed_secret(key=wrong_key)
    await world.api.apply(world.fileshare("locked", "locked", quotaGiB=1))
    body = await ready(world, "locked", "False")

    ready_condition = condition(body, "Ready")
    assert ready_condition["reason"] == "AuthenticationFailed"
    assert "account key" in ready_condition["message"]
    assert await reasons_of(world, "locked", until="AuthenticationFailed") == ["AuthenticationFailed"]
    assert world.metric("shareferry_fileshare_ready", namespace=world.namespace, fileshare="locked") == 0
    with pytest.raises(ResourceNotFoundError):
        world.service.get_share_client("locked").get_share_properties()

    # Not a failure worth retrying: the handling ends (kopf records the spec as handled).
    body = await world.api.wait_for_object(FILESHARES, world.namespace, "locked", handled)
    assert condition(body, "Ready")["reason"] == "AuthenticationFailed"

    real_key = world.emulator.account().key
    seen = [str(body), *(str(event) for event in await world.api.events(world.namespace))]
    for text in seen:
        assert wrong_key not in text
        assert real_key not in text

    # The key is fixed in the Secret: nothing watches Secrets, but a share that is not Ready is
    # looked at again within a minute (of the controller's clock), and becomes Ready.
    await world.seed_secret()
    world.clock.advance(timedelta(seconds=NOT_READY_RECHECK_SECONDS + 1))
    body = await ready(world, "locked", "True")
    assert world.service.get_share_client("locked").get_share_properties().quota == 1


@pytest.mark.parametrize(("policy", "kept"), [("Delete", False), ("Retain", True)])
async def test_deleting_a_fileshare_deletes_or_keeps_the_azure_share_as_its_policy_says(
    world: World, policy: str, kept: bool
) -> None:
    await world.seed_secret()
    await world.api.apply(world.fileshare("scratch", "scratch", quotaGiB=1, deletionPolicy=policy))
    body = await ready(world, "scratch")
    assert body["metadata"]["finalizers"]  # the operator holds it until the share is dealt with
    share = world.service.get_share_client("scratch")
    share.get_file_client("note.txt").upload_file(b"scratch data\n")

    await world.api.delete(FILESHARES, world.namespace, "scratch")
    await world.api.wait_for_absence(FILESHARES, world.namespace, "scratch")

    if kept:
        assert share.get_file_client("note.txt").download_file().readall() == b"scratch data\n"
        assert await reasons_of(world, "scratch", until="Retained") == ["Created", "Retained"]
    else:
        with pytest.raises(ResourceNotFoundError):
            share.get_share_properties()
        assert await reasons_of(world, "scratch", until="Deleted") == ["Created", "Deleted"]
    # The FileShare's series go with it.
    assert world.metric("shareferry_fileshare_ready", namespace=world.namespace, fileshare="scratch") is None
    assert (
        world.metric("shareferry_fileshare_quota_bytes", namespace=world.namespace, fileshare="scratch")
        is None
    )
