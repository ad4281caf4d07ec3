"""Shares through the real synchronous Azure SDK over HTTP: lifecycle, listing, snapshots, policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.fileshare import (
    AccessPolicy,
    CorsRule,
    Metrics,
    RetentionPolicy,
    ShareClient,
    ShareSasPermissions,
    ShareServiceClient,
    generate_share_sas,
)

from shareferry.emulator import RunningEmulator


def _upload(share: ShareClient, path: str, data: bytes) -> None:
    share.get_file_client(path).upload_file(data)


def _read(share: ShareClient, path: str) -> bytes:
    return share.get_file_client(path).download_file().readall()


# ---- lifecycle --------------------------------------------------------------------------------


def test_create_share_then_get_properties(service: ShareServiceClient) -> None:
    service.create_share("alpha", quota=7, metadata={"team": "red"})
    props = service.get_share_client("alpha").get_share_properties()
    assert props.name == "alpha"
    assert props.quota == 7
    assert props.metadata == {"team": "red"}
    assert props.etag
    assert props.last_modified is not None


def test_default_quota_is_the_maximum(service: ShareServiceClient) -> None:
    props = service.create_share("alpha").get_share_properties()
    assert props.quota == 5120


def test_create_existing_share_is_409(service: ShareServiceClient) -> None:
    service.create_share("alpha")
    with pytest.raises(ResourceExistsError) as info:
        service.create_share("alpha")
    assert info.value.status_code == 409
    assert info.value.error_code == "ShareAlreadyExists"


def test_missing_share_is_404(service: ShareServiceClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        service.get_share_client("nosuch").get_share_properties()
    assert info.value.status_code == 404
    assert info.value.error_code == "ShareNotFound"


def test_delete_missing_share_is_404(service: ShareServiceClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        service.delete_share("nosuch")
    assert info.value.error_code == "ShareNotFound"


def test_invalid_share_name_is_400(service: ShareServiceClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        service.create_share("Bad--Name")
    assert info.value.status_code == 400
    assert info.value.error_code == "InvalidResourceName"


def test_set_quota(share: ShareClient) -> None:
    share.set_share_quota(42)
    assert share.get_share_properties().quota == 42


def test_set_metadata_replaces_it(share: ShareClient) -> None:
    share.set_share_metadata({"one": "1", "Two": "2"})
    share.set_share_metadata({"three": "3"})
    assert share.get_share_properties().metadata == {"three": "3"}


def test_set_metadata_changes_the_etag(share: ShareClient) -> None:
    before = share.get_share_properties().etag
    share.set_share_metadata({"k": "v"})
    assert share.get_share_properties().etag != before


def test_set_access_tier(share: ShareClient) -> None:
    assert share.get_share_properties().access_tier == "TransactionOptimized"
    share.set_share_properties(access_tier="Cool")
    props = share.get_share_properties()
    assert props.access_tier == "Cool"


def test_create_share_with_access_tier(service: ShareServiceClient) -> None:
    service.create_share("hotshare", access_tier="Hot")
    assert service.get_share_client("hotshare").get_share_properties().access_tier == "Hot"


def test_delete_share(service: ShareServiceClient) -> None:
    service.create_share("alpha")
    service.delete_share("alpha")
    with pytest.raises(ResourceNotFoundError):
        service.get_share_client("alpha").get_share_properties()
    assert [s.name for s in service.list_shares()] == []


def test_share_name_can_be_reused_after_delete(service: ShareServiceClient) -> None:
    service.create_share("alpha", metadata={"gen": "1"})
    service.delete_share("alpha")
    service.create_share("alpha", metadata={"gen": "2"})
    assert service.get_share_client("alpha").get_share_properties().metadata == {"gen": "2"}


def test_share_lease_blocks_delete(share: ShareClient) -> None:
    lease = share.acquire_lease()
    with pytest.raises(HttpResponseError) as info:
        share.delete_share()
    assert info.value.status_code == 412
    assert info.value.error_code == "LeaseIdMissing"
    with pytest.raises(HttpResponseError) as wrong:
        share.delete_share(lease="00000000-0000-0000-0000-000000000000")
    assert wrong.value.status_code == 412
    share.delete_share(lease=lease)
    with pytest.raises(ResourceNotFoundError):
        share.get_share_properties()


def test_share_lease_state(share: ShareClient) -> None:
    lease = share.acquire_lease()
    props = share.get_share_properties()
    assert props.lease.state == "leased"
    lease.release()
    assert share.get_share_properties().lease.state == "available"


# ---- listing ----------------------------------------------------------------------------------


def test_list_shares_sorted(service: ShareServiceClient) -> None:
    for name in ("gamma", "alpha", "beta"):
        service.create_share(name)
    assert [s.name for s in service.list_shares()] == ["alpha", "beta", "gamma"]


def test_list_shares_with_prefix(service: ShareServiceClient) -> None:
    for name in ("logs-a", "logs-b", "data-a"):
        service.create_share(name)
    assert [s.name for s in service.list_shares(name_starts_with="logs-")] == ["logs-a", "logs-b"]


def test_list_shares_include_metadata(service: ShareServiceClient) -> None:
    service.create_share("alpha", metadata={"owner": "ops", "Mixed": "Case"})
    listed = list(service.list_shares(include_metadata=True))
    assert listed[0].metadata == {"owner": "ops", "Mixed": "Case"}


def test_list_shares_properties(service: ShareServiceClient) -> None:
    service.create_share("alpha", quota=12)
    item = next(iter(service.list_shares()))
    assert item.quota == 12
    assert item.etag
    assert item.last_modified is not None


def test_list_shares_include_snapshots(service: ShareServiceClient) -> None:
    share = service.create_share("alpha")
    snap = share.create_snapshot()["snapshot"]
    service.create_share("beta")
    plain = [(s.name, s.snapshot) for s in service.list_shares()]
    assert plain == [("alpha", None), ("beta", None)]
    with_snaps = [(s.name, s.snapshot) for s in service.list_shares(include_snapshots=True)]
    assert sorted(with_snaps, key=lambda x: (x[0], x[1] or "")) == [
        ("alpha", None),
        ("alpha", snap),
        ("beta", None),
    ]


def test_list_shares_paging_returns_every_share_once(service: ShareServiceClient) -> None:
    names = [f"share{i:02d}" for i in range(11)]
    for name in names:
        service.create_share(name)
    pages = list(service.list_shares(results_per_page=3).by_page())
    assert len(pages) > 1
    listed = [s.name for page in pages for s in page]
    assert listed == names


def test_list_shares_paging_with_snapshots(service: ShareServiceClient) -> None:
    expected = []
    for i in range(4):
        share = service.create_share(f"share{i}")
        expected.append((f"share{i}", share.create_snapshot()["snapshot"]))
        expected.append((f"share{i}", None))
    pages = service.list_shares(include_snapshots=True, results_per_page=3).by_page()
    listed = [(s.name, s.snapshot) for page in pages for s in page]
    assert sorted(listed, key=lambda x: (x[0], x[1] or "")) == sorted(
        expected, key=lambda x: (x[0], x[1] or "")
    )
    assert len(listed) == len(set(listed))


# ---- snapshots --------------------------------------------------------------------------------


def test_snapshot_keeps_old_bytes(service: ShareServiceClient, share: ShareClient) -> None:
    _upload(share, "doc.txt", b"version one")
    snap = share.create_snapshot()
    _upload(share, "doc.txt", b"version two, longer")
    snapshot_share = service.get_share_client(share.share_name, snapshot=snap["snapshot"])
    assert _read(snapshot_share, "doc.txt") == b"version one"
    assert _read(share, "doc.txt") == b"version two, longer"


def test_snapshot_keeps_deleted_files(service: ShareServiceClient, share: ShareClient) -> None:
    share.create_directory("dir")
    _upload(share, "dir/gone.bin", b"\x00\x01\x02")
    snap = share.create_snapshot()["snapshot"]
    share.get_file_client("dir/gone.bin").delete_file()
    snapshot_share = service.get_share_client(share.share_name, snapshot=snap)
    assert _read(snapshot_share, "dir/gone.bin") == b"\x00\x01\x02"
    names = [e["name"] for e in snapshot_share.list_directories_and_files("dir")]
    assert names == ["gone.bin"]


def test_snapshot_properties_and_metadata(service: ShareServiceClient) -> None:
    share = service.create_share("alpha", metadata={"live": "yes"})
    snap = share.create_snapshot(metadata={"snap": "one"})
    assert snap["snapshot"]
    props = service.get_share_client("alpha", snapshot=snap["snapshot"]).get_share_properties()
    assert props.snapshot == snap["snapshot"]
    assert props.metadata == {"snap": "one"}
    assert share.get_share_properties().metadata == {"live": "yes"}


def test_write_to_snapshot_fails(service: ShareServiceClient, share: ShareClient) -> None:
    _upload(share, "doc.txt", b"abc")
    snap = share.create_snapshot()["snapshot"]
    snapshot_share = service.get_share_client(share.share_name, snapshot=snap)
    with pytest.raises(HttpResponseError) as info:
        snapshot_share.get_file_client("new.txt").upload_file(b"nope")
    assert info.value.status_code == 400
    assert info.value.error_code == "InvalidQueryParameterValue"
    assert _read(snapshot_share, "doc.txt") == b"abc"


def test_set_metadata_on_snapshot_fails(service: ShareServiceClient, share: ShareClient) -> None:
    snap = share.create_snapshot()["snapshot"]
    with pytest.raises(HttpResponseError) as info:
        service.get_share_client(share.share_name, snapshot=snap).get_directory_client("d").create_directory()
    assert info.value.status_code == 400


def test_delete_share_with_snapshots_needs_flag(service: ShareServiceClient, share: ShareClient) -> None:
    share.create_snapshot()
    with pytest.raises(ResourceExistsError) as info:
        share.delete_share()
    assert info.value.status_code == 409
    assert info.value.error_code == "ShareHasSnapshots"
    share.delete_share(delete_snapshots=True)
    assert list(service.list_shares(include_snapshots=True)) == []


def test_delete_one_snapshot(service: ShareServiceClient, share: ShareClient) -> None:
    first = share.create_snapshot()["snapshot"]
    second = share.create_snapshot()["snapshot"]
    assert first != second
    service.get_share_client(share.share_name, snapshot=first).delete_share()
    snaps = [s.snapshot for s in service.list_shares(include_snapshots=True) if s.snapshot]
    assert snaps == [second]


def test_missing_snapshot_is_404(service: ShareServiceClient, share: ShareClient) -> None:
    missing = service.get_share_client(share.share_name, snapshot="2001-01-01T00:00:00.0000000Z")
    with pytest.raises(ResourceNotFoundError) as info:
        missing.get_share_properties()
    assert info.value.error_code == "ShareSnapshotNotFound"


# ---- stats, policies, service properties -------------------------------------------------------


def test_share_stats_counts_bytes(share: ShareClient) -> None:
    assert share.get_share_stats() == 0
    _upload(share, "a.bin", b"x" * 1000)
    share.create_directory("d")
    _upload(share, "d/b.bin", b"y" * 24)
    assert share.get_share_stats() == 1024


def test_access_policy_round_trip(share: ShareClient) -> None:
    policy = AccessPolicy(
        permission=ShareSasPermissions(read=True, list=True),
        start=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        expiry=datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    share.set_share_access_policy({"readers": policy})
    got = share.get_share_access_policy()
    identifiers = got["signed_identifiers"]
    assert [i.id for i in identifiers] == ["readers"]
    access = identifiers[0].access_policy
    assert access.permission == "rl"
    assert access.start == "2030-01-02T03:04:05Z"
    assert access.expiry == "2031-01-02T03:04:05Z"


def test_access_policy_cleared(share: ShareClient) -> None:
    share.set_share_access_policy(
        {"p": AccessPolicy(permission="r", expiry=datetime(2031, 1, 1, tzinfo=UTC))}
    )
    share.set_share_access_policy({})
    assert share.get_share_access_policy()["signed_identifiers"] == []


def test_new_share_has_no_access_policy(share: ShareClient) -> None:
    assert share.get_share_access_policy()["signed_identifiers"] == []


def _sas_share(emulator: RunningEmulator, share_name: str, sas: str) -> ShareClient:
    return ShareServiceClient(account_url=emulator.account_url(), credential=sas).get_share_client(share_name)


def test_service_sas_with_stored_policy(emulator: RunningEmulator, share: ShareClient) -> None:
    _upload(share, "doc.txt", b"policy bytes")
    expiry = datetime.now(UTC) + timedelta(hours=1)
    share.set_share_access_policy(
        {"read-only": AccessPolicy(permission=ShareSasPermissions(read=True, list=True), expiry=expiry)}
    )
    account = emulator.account()
    sas = generate_share_sas(account.name, share.share_name, account.key, policy_id="read-only")
    client = _sas_share(emulator, share.share_name, sas)
    assert _read(client, "doc.txt") == b"policy bytes"
    assert [e["name"] for e in client.list_directories_and_files()] == ["doc.txt"]
    with pytest.raises(HttpResponseError) as info:
        client.get_file_client("other.txt").upload_file(b"x")
    assert info.value.status_code == 403
    assert info.value.error_code == "AuthorizationPermissionMismatch"


def test_service_sas_with_unknown_policy_fails(emulator: RunningEmulator, share: ShareClient) -> None:
    _upload(share, "doc.txt", b"x")
    account = emulator.account()
    sas = generate_share_sas(account.name, share.share_name, account.key, policy_id="nosuch")
    with pytest.raises(HttpResponseError) as info:
        _read(_sas_share(emulator, share.share_name, sas), "doc.txt")
    assert info.value.status_code == 403
    assert info.value.error_code == "AuthenticationFailed"


def test_service_sas_stops_working_when_policy_removed(emulator: RunningEmulator, share: ShareClient) -> None:
    _upload(share, "doc.txt", b"x")
    expiry = datetime.now(UTC) + timedelta(hours=1)
    share.set_share_access_policy({"p": AccessPolicy(permission="r", expiry=expiry)})
    account = emulator.account()
    sas = generate_share_sas(account.name, share.share_name, account.key, policy_id="p")
    client = _sas_share(emulator, share.share_name, sas)
    assert _read(client, "doc.txt") == b"x"
    share.set_share_access_policy({})
    with pytest.raises(HttpResponseError) as info:
        _read(client, "doc.txt")
    assert info.value.status_code == 403


def test_service_properties_default(service: ShareServiceClient) -> None:
    props = service.get_service_properties()
    assert props["hour_metrics"].enabled is False
    assert props["minute_metrics"].enabled is False
    assert props["cors"] == []


def test_service_properties_round_trip(service: ShareServiceClient) -> None:
    hour = Metrics(enabled=True, include_apis=True, retention_policy=RetentionPolicy(enabled=True, days=5))
    minute = Metrics(enabled=False)
    cors = [
        CorsRule(
            ["https://example.com"],
            ["GET", "PUT"],
            allowed_headers=["x-ms-meta-*"],
            exposed_headers=["x-ms-request-id"],
            max_age_in_seconds=300,
        )
    ]
    service.set_service_properties(hour_metrics=hour, minute_metrics=minute, cors=cors)
    props = service.get_service_properties()
    assert props["hour_metrics"].enabled is True
    assert props["hour_metrics"].include_apis is True
    assert props["hour_metrics"].retention_policy.days == 5
    assert props["minute_metrics"].enabled is False
    assert len(props["cors"]) == 1
    rule = props["cors"][0]
    assert rule.allowed_origins == "https://example.com"
    assert rule.allowed_methods == "GET,PUT"
    assert rule.max_age_in_seconds == 300
