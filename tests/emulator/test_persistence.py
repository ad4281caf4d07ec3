"""Persistence under ``--data-dir``: what a client saw before a restart, it sees identically after.

The comparisons use the raw responses (every header but Date and the request ids, and the XML
listings byte for byte), so ETags, Last-Modified, file ids and SMB times to the 100 ns tick are
all covered, not just what the SDK's models keep.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.pipeline import PipelineResponse
from azure.storage.fileshare import (
    AccessPolicy,
    ContentSettings,
    ShareClient,
    ShareSasPermissions,
    ShareServiceClient,
    generate_share_sas,
)

from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.support.emulator_process import EmulatorProcess

MIB = 1024 * 1024
SDDL = "O:BAG:SYD:(A;;FA;;;SY)(A;;0x1200a9;;;BU)"
DIR_CREATION = "2021-03-04T05:06:07.1234567Z"
DIR_LAST_WRITE = "2022-11-12T13:14:15.7654321Z"
FILE_CREATION = "2019-01-02T03:04:05.0000001Z"
FILE_LAST_WRITE = "2020-06-07T08:09:10.9999999Z"
SPARSE = "docs/2024 q1 #1/sparse ünï.bin"
SMALL = "docs/small.txt"
EMPTY = "empty.txt"
SMALL_DATA = b"small file content\n" * 7
POLICY_EXPIRY = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
POLICY_START = datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC)

#: Response headers that differ between any two requests.
_VOLATILE = {"date", "x-ms-request-id", "x-ms-client-request-id", "connection", "keep-alive"}


def service_for(emulator: RunningEmulator) -> ShareServiceClient:
    account = emulator.account()
    return ShareServiceClient(
        emulator.account_url(),
        credential={"account_name": account.name, "account_key": account.key},
        retry_total=0,
    )


class Raw:
    """Collects the raw response of the call it is passed to as ``raw_response_hook``."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.body = ""

    def __call__(self, pipeline_response: PipelineResponse[Any, Any]) -> None:
        response = pipeline_response.http_response
        self.headers = {k.lower(): v for k, v in response.headers.items() if k.lower() not in _VOLATILE}
        is_xml = "xml" in self.headers.get("content-type", "")
        self.body = response.text() if response.status_code == 200 and is_xml else ""


def raw(call: Callable[..., Any], *args: Any, paged: bool = False, **kwargs: Any) -> dict[str, Any]:
    """The headers (and XML body) of one call's response; ``paged``: a one-page listing."""
    hook = Raw()
    result = call(*args, raw_response_hook=hook, **kwargs)
    if paged:
        list(result)
    return {"headers": hook.headers, "body": hook.body}


def populate(service: ShareServiceClient) -> None:
    """Shares, a snapshot, directories, files of several kinds, a stored access policy."""
    alpha = service.create_share("alpha", quota=7, metadata={"owner": "ada", "purpose": "persist"})
    alpha.set_share_access_policy(
        {
            "readers": AccessPolicy(
                permission=ShareSasPermissions(read=True, list=True), expiry=POLICY_EXPIRY, start=POLICY_START
            )
        }
    )
    key = alpha.create_permission_for_share(SDDL)
    assert key is not None
    docs = alpha.get_directory_client("docs")
    docs.create_directory(
        metadata={"dir": "docs"},
        file_attributes="Directory|Hidden",
        file_creation_time=DIR_CREATION,
        file_last_write_time=DIR_LAST_WRITE,
        file_permission_key=key,
    )
    alpha.get_directory_client("docs/2024 q1 #1").create_directory()
    alpha.get_directory_client("empty dir").create_directory()

    alpha.get_file_client(EMPTY).create_file(0, metadata={"kind": "empty"})

    small = alpha.get_file_client(SMALL)
    small.create_file(
        len(SMALL_DATA),
        metadata={"Kind": "small", "n": "1"},
        content_settings=ContentSettings(
            content_type="text/plain; charset=utf-8",
            content_language="en-GB",
            content_disposition="inline",
            cache_control="max-age=60",
            content_md5=hashlib.md5(SMALL_DATA).digest(),
        ),
        file_attributes="ReadOnly|Archive",
        file_creation_time=FILE_CREATION,
        file_last_write_time=FILE_LAST_WRITE,
        file_permission=SDDL,
    )
    small.upload_range(SMALL_DATA, offset=0, length=len(SMALL_DATA), file_last_write_mode="preserve")

    sparse = alpha.get_file_client(SPARSE)
    sparse.create_file(5 * MIB)
    sparse.upload_range(os.urandom(MIB), offset=0, length=MIB)
    sparse.upload_range(b"\x07" * 512, offset=3 * MIB, length=512)
    sparse.clear_range(offset=512 * 1024, length=256 * 1024)

    old = alpha.get_file_client("docs/old name.txt")
    old.upload_file(b"renamed later")
    old.rename_file("docs/renamed.txt")

    alpha.create_snapshot(metadata={"label": "before-edit"})
    # Change the live share after the snapshot, so the two differ.
    alpha.get_file_client(SMALL).set_file_metadata({"Kind": "edited"})
    alpha.get_file_client("docs/after snapshot.txt").upload_file(b"only in the live share")

    service.create_share("beta", quota=1, metadata={"empty": "yes"})


def capture_share(share: ShareClient) -> dict[str, Any]:
    out: dict[str, Any] = {"properties": raw(share.get_share_properties)}
    if share.snapshot is None:
        out["acl"] = raw(share.get_share_access_policy)
        out["stats"] = share.get_share_stats()
    pending = [""]
    while pending:
        path = pending.pop()
        directory = share.get_directory_client(path)
        out[f"dir:{path}"] = raw(directory.get_directory_properties)
        out[f"list:{path}"] = raw(
            directory.list_directories_and_files,
            paged=True,
            include=["timestamps", "Etag", "Attributes", "PermissionKey"],
            include_extended_info=True,
        )
        for item in directory.list_directories_and_files():
            child = f"{path}/{item['name']}" if path else item["name"]
            if item["is_directory"]:
                pending.append(child)
                continue
            file = share.get_file_client(child)
            data = file.download_file().readall()
            out[f"file:{child}"] = {
                "properties": raw(file.get_file_properties),
                "md5": hashlib.md5(data).hexdigest(),
                "data": data,
                "ranges": file.get_ranges(),
            }
    return out


def capture(service: ShareServiceClient) -> dict[str, Any]:
    """Everything a client can read back, keyed by what it is."""
    out: dict[str, Any] = {
        "shares": raw(service.list_shares, paged=True, include_metadata=True, include_snapshots=True),
    }
    for item in service.list_shares(include_snapshots=True):
        share = service.get_share_client(item["name"], snapshot=item["snapshot"])
        out[f"share:{item['name']}@{item['snapshot']}"] = capture_share(share)
    alpha = service.get_share_client("alpha")
    key = alpha.get_directory_client("docs").get_directory_properties().permission_key
    out["permission"] = alpha.get_permission_for_share(key)
    return out


@dataclass
class Restarted:
    before: dict[str, Any]
    after: dict[str, Any]
    emulator: RunningEmulator


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restarted]:
    """Populate a persistent emulator, capture it, restart it, capture again."""
    first = RunningEmulator(EmulatorConfig(data_dir=tmp_path_factory.mktemp("data"))).start()
    try:
        populate(service_for(first))
        before = capture(service_for(first))
    except BaseException:
        first.stop()
        raise
    second = first.restarted()  # same port: listings carry the endpoint URL
    try:
        yield Restarted(before, capture(service_for(second)), second)
    finally:
        second.stop()


def test_share_listing_with_snapshots_is_identical(restarted: Restarted) -> None:
    assert restarted.before["shares"]["body"].count("<Share>") == 3  # alpha, its snapshot, beta
    assert restarted.after["shares"] == restarted.before["shares"]


def test_share_properties_quota_metadata_and_policy_are_identical(restarted: Restarted) -> None:
    before = restarted.before["share:alpha@None"]
    after = restarted.after["share:alpha@None"]
    assert before["properties"]["headers"]["x-ms-share-quota"] == "7"
    assert before["properties"]["headers"]["x-ms-meta-owner"] == "ada"
    assert "<Id>readers</Id>" in before["acl"]["body"]
    for key in ("properties", "acl"):
        assert after[key] == before[key], key
    assert after["stats"] == before["stats"]


def test_directory_properties_and_listings_are_identical(restarted: Restarted) -> None:
    before = restarted.before["share:alpha@None"]
    after = restarted.after["share:alpha@None"]
    keys = sorted(k for k in before if k.startswith(("dir:", "list:")))
    assert "dir:docs/2024 q1 #1" in keys and "dir:empty dir" in keys
    assert {k: after.get(k) for k in keys} == {k: before[k] for k in keys}


def test_smb_properties_survive_to_the_tick(restarted: Restarted) -> None:
    docs = restarted.after["share:alpha@None"]["dir:docs"]["headers"]
    small = restarted.after["share:alpha@None"][f"file:{SMALL}"]["properties"]["headers"]
    assert docs["x-ms-file-creation-time"] == DIR_CREATION
    assert docs["x-ms-file-last-write-time"] == DIR_LAST_WRITE
    assert docs["x-ms-file-attributes"].replace(" ", "") == "Hidden|Directory"
    assert small["x-ms-file-creation-time"] == FILE_CREATION
    assert small["x-ms-file-last-write-time"] == FILE_LAST_WRITE
    assert small["x-ms-file-attributes"].replace(" ", "") == "ReadOnly|Archive"
    before = restarted.before["share:alpha@None"]
    for path in ("docs", "docs/2024 q1 #1"):
        for name in (
            "x-ms-file-id",
            "x-ms-file-parent-id",
            "x-ms-file-change-time",
            "x-ms-file-permission-key",
        ):
            assert (
                restarted.after["share:alpha@None"][f"dir:{path}"]["headers"][name]
                == before[f"dir:{path}"]["headers"][name]
            )


def test_permission_keys_resolve_to_the_same_sddl(restarted: Restarted) -> None:
    assert restarted.before["permission"] == SDDL
    assert restarted.after["permission"] == SDDL


@pytest.mark.parametrize("path", [EMPTY, SMALL, SPARSE, "docs/renamed.txt", "docs/after snapshot.txt"])
def test_file_bytes_md5_ranges_and_properties_are_identical(restarted: Restarted, path: str) -> None:
    before = restarted.before["share:alpha@None"][f"file:{path}"]
    after = restarted.after["share:alpha@None"][f"file:{path}"]
    assert after["data"] == before["data"]
    assert after["md5"] == before["md5"]
    assert after["ranges"] == before["ranges"]
    assert after["properties"] == before["properties"]


def test_sparse_file_keeps_its_cleared_hole(restarted: Restarted) -> None:
    sparse = restarted.after["share:alpha@None"][f"file:{SPARSE}"]
    assert len(sparse["data"]) == 5 * MIB
    assert sparse["data"][512 * 1024 : 768 * 1024] == bytes(256 * 1024)
    assert sparse["ranges"] == [
        {"start": 0, "end": 512 * 1024 - 1},
        {"start": 768 * 1024, "end": MIB - 1},
        {"start": 3 * MIB, "end": 3 * MIB + 511},
    ]


def test_small_file_keeps_content_settings_and_md5(restarted: Restarted) -> None:
    small = restarted.after["share:alpha@None"][f"file:{SMALL}"]
    headers = small["properties"]["headers"]
    assert small["data"] == SMALL_DATA
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-language"] == "en-GB"
    assert headers["cache-control"] == "max-age=60"
    assert headers["content-md5"] == base64.b64encode(hashlib.md5(SMALL_DATA).digest()).decode()
    assert headers["x-ms-meta-kind"] == "edited"


def test_snapshot_contents_are_identical(restarted: Restarted) -> None:
    (key,) = [k for k in restarted.before if k.startswith("share:alpha@") and not k.endswith("@None")]
    before, after = restarted.before[key], restarted.after[key]
    assert f"file:{SMALL}" in before and "file:docs/after snapshot.txt" not in before
    assert before[f"file:{SMALL}"]["properties"]["headers"]["x-ms-meta-kind"] == "small"
    assert before["properties"]["headers"]["x-ms-meta-label"] == "before-edit"
    assert after == before


def test_empty_share_is_identical(restarted: Restarted) -> None:
    assert restarted.after["share:beta@None"] == restarted.before["share:beta@None"]


def test_restarted_emulator_accepts_writes_with_fresh_file_ids(restarted: Restarted) -> None:
    share = service_for(restarted.emulator).get_share_client("beta")
    file = share.get_file_client("new after restart.txt")
    file.upload_file(b"new")
    new_id = file.get_file_properties().file_id
    old_ids = {
        headers["x-ms-file-id"]
        for entry in restarted.before["share:alpha@None"].values()
        if isinstance(entry, dict)
        for headers in [entry.get("headers") or entry.get("properties", {}).get("headers", {})]
        if "x-ms-file-id" in headers
    }
    assert len(old_ids) >= 5
    assert new_id not in old_ids
    assert file.download_file().readall() == b"new"


# ---- deletes survive ---------------------------------------------------------------------------


def test_deleted_file_directory_and_share_stay_deleted(tmp_path: Path) -> None:
    with RunningEmulator(EmulatorConfig(data_dir=tmp_path)) as emulator:
        service = service_for(emulator)
        keep = service.create_share("keep")
        keep.get_directory_client("d").create_directory()
        keep.get_file_client("d/gone.txt").upload_file(b"gone")
        keep.get_file_client("d/stays.txt").upload_file(b"stays")
        keep.get_directory_client("d/gone dir").create_directory()
        service.create_share("gone").get_file_client("f.txt").upload_file(b"x" * 1000)

        keep.get_file_client("d/gone.txt").delete_file()
        keep.get_directory_client("d/gone dir").delete_directory()
        service.delete_share("gone")

        restarted = emulator.restarted()
    with restarted:
        service = service_for(restarted)
        keep = service.get_share_client("keep")
        assert [s.name for s in service.list_shares()] == ["keep"]
        assert [i["name"] for i in keep.list_directories_and_files("d")] == ["stays.txt"]
        assert keep.get_file_client("d/stays.txt").download_file().readall() == b"stays"
        with pytest.raises(ResourceNotFoundError):
            keep.get_file_client("d/gone.txt").get_file_properties()
        with pytest.raises(ResourceNotFoundError):
            service.get_share_client("gone").get_share_properties()


def test_deleted_share_with_snapshots_frees_its_content(tmp_path: Path) -> None:
    with RunningEmulator(EmulatorConfig(data_dir=tmp_path)) as emulator:
        service = service_for(emulator)
        share = service.create_share("gone")
        share.get_file_client("a.bin").upload_file(os.urandom(100_000))
        share.create_snapshot()
        share.delete_share(delete_snapshots=True)
        restarted = emulator.restarted()
    with restarted:
        assert list(service_for(restarted).list_shares(include_snapshots=True)) == []
    leftover = [p for p in (tmp_path / "content").rglob("*") if p.is_file()]
    assert leftover == []


def test_overwritten_file_keeps_only_the_new_content(tmp_path: Path) -> None:
    with RunningEmulator(EmulatorConfig(data_dir=tmp_path)) as emulator:
        share = service_for(emulator).create_share("over")
        share.get_file_client("f.bin").upload_file(b"first version, long" * 100)
        share.get_file_client("f.bin").upload_file(b"second")
        restarted = emulator.restarted()
    with restarted:
        file = service_for(restarted).get_share_client("over").get_file_client("f.bin")
        assert file.download_file().readall() == b"second"
    assert len([p for p in (tmp_path / "content").rglob("*") if p.is_file()]) == 1


def test_in_memory_emulator_forgets_everything_on_restart() -> None:
    with RunningEmulator(EmulatorConfig()) as emulator:
        share = service_for(emulator).create_share("ephemeral")
        share.get_file_client("f.txt").upload_file(b"x")
        restarted = emulator.restarted()
    with restarted:
        service = service_for(restarted)
        assert list(service.list_shares()) == []
        with pytest.raises(ResourceNotFoundError):
            service.get_share_client("ephemeral").get_file_client("f.txt").get_file_properties()


# ---- the real CLI process ------------------------------------------------------------------------


def cli_service(process: EmulatorProcess) -> ShareServiceClient:
    return ShareServiceClient.from_connection_string(process.connection_string, retry_total=0)


def test_cli_process_keeps_data_across_sigterm_and_restart(tmp_path: Path) -> None:
    data = os.urandom(3 * MIB + 17)
    first = EmulatorProcess("--port", "0", "--data-dir", str(tmp_path))
    try:
        share = cli_service(first).create_share("cli-share", metadata={"via": "cli"})
        share.get_directory_client("dir one").create_directory()
        file = share.get_file_client("dir one/data ünï.bin")
        file.upload_file(data, max_concurrency=2)
        before = file.get_file_properties()
    finally:
        status = first.terminate()
    assert status == 0

    second = EmulatorProcess("--port", "0", "--data-dir", str(tmp_path))
    try:
        share = cli_service(second).get_share_client("cli-share")
        file = share.get_file_client("dir one/data ünï.bin")
        after = file.get_file_properties()
        content = file.download_file().readall()
        metadata = share.get_share_properties().metadata
        share.get_file_client("dir one/second.txt").upload_file(b"2")
        new_id = share.get_file_client("dir one/second.txt").get_file_properties().file_id
    finally:
        second.terminate()
    assert content == data
    assert metadata == {"via": "cli"}
    assert (after.etag, after.last_modified, after.file_id, after.size) == (
        before.etag,
        before.last_modified,
        before.file_id,
        before.size,
    )
    assert (after.creation_time, after.last_write_time, after.change_time) == (
        before.creation_time,
        before.last_write_time,
        before.change_time,
    )
    assert new_id not in {before.file_id, before.parent_id}


def test_cli_process_without_data_dir_forgets_on_restart() -> None:
    first = EmulatorProcess("--port", "0")
    try:
        cli_service(first).create_share("lost")
    finally:
        assert first.terminate() == 0
    second = EmulatorProcess("--port", "0")
    try:
        assert list(cli_service(second).list_shares()) == []
    finally:
        second.terminate()


def test_stored_policy_still_authorises_a_sas_after_restart(restarted: Restarted) -> None:
    account = restarted.emulator.account()
    sas = generate_share_sas(account.name, "alpha", account.key, policy_id="readers")
    share = ShareClient(restarted.emulator.account_url(), "alpha", credential=sas, retry_total=0)
    names = sorted(item["name"] for item in share.list_directories_and_files())
    assert names == ["docs", "empty dir", EMPTY]
    assert POLICY_EXPIRY - timedelta(days=1) > datetime.now(UTC)


def test_leases_survive_restart(tmp_path: Path) -> None:
    with RunningEmulator(EmulatorConfig(data_dir=tmp_path)) as emulator:
        share = service_for(emulator).create_share("leased")
        file = share.get_file_client("locked.txt")
        file.upload_file(b"locked")
        file_lease = file.acquire_lease()
        share_lease = share.acquire_lease()
        restarted = emulator.restarted()
    with restarted:
        share = service_for(restarted).get_share_client("leased")
        file = share.get_file_client("locked.txt")
        file_state = file.get_file_properties().lease
        share_state = share.get_share_properties().lease
        with pytest.raises(HttpResponseError) as write_without_lease:
            file.upload_range(b"X", offset=0, length=1)
        file.upload_range(b"L", offset=0, length=1, lease=file_lease.id)
        content = file.download_file().readall()
        with pytest.raises(HttpResponseError) as delete_without_lease:
            share.delete_share()
        share.delete_share(lease=share_lease.id)
    assert (file_state.state, file_state.status) == ("leased", "locked")
    assert (share_state.state, share_state.status) == ("leased", "locked")
    assert write_without_lease.value.status_code == 412
    assert content == b"Locked"
    assert delete_without_lease.value.status_code == 412
