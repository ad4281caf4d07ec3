"""Leases and Rename File as Azure has them, through the real SDK.

A file under an active lease refuses every change made without its lease id (412
``LeaseIdMissing``; a wrong id is 412 ``LeaseIdMismatchWithFileOperation``) and is left as it
was. Rename File with ``overwrite=True`` replaces an existing destination in one step and keeps
the source's content headers (Content-MD5 included), metadata, SMB times, attributes and
permission; without it the rename is a 409 ``ResourceAlreadyExists``. Names that start with a
dot and carry ``.shareferry-`` (temporary files) list, read and rename like any other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.fileshare import (
    ContentSettings,
    NTFSAttributes,
    ShareClient,
    ShareFileClient,
    ShareServiceClient,
)

from shareferry.emulator import EmulatorConfig, RunningEmulator

SDDL = "O:BAG:SYD:(A;;FA;;;BA)(A;;0x1200a9;;;BU)"
CREATED = datetime(2020, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
WRITTEN = datetime(2021, 6, 7, 8, 9, 10, 654321, tzinfo=UTC)
LEASE = "5b1e4a6c-0000-4000-8000-00000000a11e"


def names(share: ShareClient, directory: str = "") -> list[str]:
    return [entry["name"] for entry in share.list_directories_and_files(directory)]


def upload(share: ShareClient, path: str, data: bytes, **kwargs: Any) -> ShareFileClient:
    client = share.get_file_client(path)
    client.upload_file(data, **kwargs)
    return client


def state(client: ShareFileClient) -> tuple[bytes, dict[str, str], str | None]:
    """What a change must not touch: the bytes, the metadata and the content type."""
    properties = client.get_file_properties()
    return client.download_file().readall(), properties.metadata, properties.content_settings.content_type


# ---- (a) a leased file refuses changes without its lease id ----------------------------------------

#: Each change to the leased file ``leased.txt``, made without its lease id.
CHANGES: dict[str, Callable[[ShareClient, ShareFileClient], object]] = {
    "put range": lambda share, leased: leased.upload_range(b"XXXX", 0, 4),
    "clear range": lambda share, leased: leased.clear_range(0, 512),
    "set properties": lambda share, leased: leased.set_http_headers(ContentSettings(content_type="text/x")),
    "resize": lambda share, leased: leased.resize_file(2),
    "set metadata": lambda share, leased: leased.set_file_metadata({"k": "changed"}),
    "delete": lambda share, leased: leased.delete_file(),
    "create over it": lambda share, leased: leased.create_file(10),
    "upload over it": lambda share, leased: leased.upload_file(b"other"),
    "copy over it": lambda share, leased: leased.start_copy_from_url(share.get_file_client("other.txt").url),
    "rename over it": lambda share, leased: share.get_file_client("other.txt").rename_file(
        "leased.txt", overwrite=True
    ),
    "rename it": lambda share, leased: leased.rename_file("moved.txt"),
}


@pytest.fixture
def leased(share: ShareClient) -> ShareFileClient:
    client = upload(share, "leased.txt", b"leased content" + bytes(498), metadata={"k": "v"})
    upload(share, "other.txt", b"other content")
    client.acquire_lease(lease_id=LEASE)
    return client


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_without_the_lease_id_is_412_and_changes_nothing(
    share: ShareClient, leased: ShareFileClient, change: str
) -> None:
    before = state(leased)
    with pytest.raises(HttpResponseError) as info:
        CHANGES[change](share, leased)
    assert info.value.status_code == 412
    assert info.value.error_code == "LeaseIdMissing"
    assert state(leased) == before
    assert leased.get_file_properties().lease.state == "leased"
    assert sorted(names(share)) == ["leased.txt", "other.txt"]
    assert share.get_file_client("other.txt").download_file().readall() == b"other content"


def test_a_wrong_lease_id_is_412_mismatch(share: ShareClient, leased: ShareFileClient) -> None:
    wrong = "00000000-0000-0000-0000-000000000000"
    for change in (
        lambda: leased.upload_range(b"XXXX", 0, 4, lease=wrong),
        lambda: leased.delete_file(lease=wrong),
        lambda: share.get_file_client("other.txt").rename_file(
            "leased.txt", overwrite=True, destination_lease=wrong
        ),
        lambda: leased.rename_file("moved.txt", source_lease=wrong),
    ):
        with pytest.raises(HttpResponseError) as info:
            change()
        assert info.value.status_code == 412
        assert info.value.error_code == "LeaseIdMismatchWithFileOperation"
    assert sorted(names(share)) == ["leased.txt", "other.txt"]


def test_with_the_lease_id_the_changes_go_through(share: ShareClient, leased: ShareFileClient) -> None:
    lease = LEASE
    leased.upload_range(b"XXXX", 0, 4, lease=lease)
    leased.create_file(4, lease=lease)  # replaced in place: the lease stays on the file
    leased.upload_range(b"new!", 0, 4, lease=lease)
    assert leased.get_file_properties().lease.state == "leased"
    moved = leased.rename_file("moved.txt", source_lease=lease)
    assert moved.download_file().readall() == b"new!"
    assert moved.get_file_properties().lease.state == "leased"
    share.get_file_client("other.txt").rename_file("moved.txt", overwrite=True, destination_lease=lease)
    assert names(share) == ["moved.txt"]
    assert moved.download_file().readall() == b"other content"


# ---- (b) Rename File replacing a destination ------------------------------------------------------


def rich_source(share: ShareClient) -> tuple[ShareFileClient, bytes]:
    data = b"the source's bytes" * 100
    client = share.get_file_client("source.bin")
    client.upload_file(
        data,
        metadata={"origin": "source", "Mixed": "Case"},
        content_settings=ContentSettings(
            content_type="text/plain",
            content_encoding="identity",
            content_language="en-GB",
            cache_control="no-cache",
            content_disposition="attachment",
            content_md5=bytearray(hashlib.md5(data).digest()),
        ),
        file_attributes=NTFSAttributes(archive=True, hidden=True),
        file_creation_time=CREATED,
        file_last_write_time=WRITTEN,
        file_permission=SDDL,
    )
    return client, data


def test_rename_over_an_existing_file_keeps_everything_of_the_source(share: ShareClient) -> None:
    source, data = rich_source(share)
    before = source.get_file_properties()
    upload(share, "dest.bin", b"the destination's old bytes", metadata={"origin": "dest"})
    moved = source.rename_file("dest.bin", overwrite=True)
    after = moved.get_file_properties()
    assert names(share) == ["dest.bin"]
    assert moved.download_file().readall() == data
    assert after.size == len(data)
    assert after.metadata == {"origin": "source", "Mixed": "Case"}
    assert after.content_settings.content_md5 == bytearray(hashlib.md5(data).digest())
    for field in (
        "content_type",
        "content_encoding",
        "content_language",
        "cache_control",
        "content_disposition",
    ):
        assert getattr(after.content_settings, field) == getattr(before.content_settings, field), field
    assert after.creation_time == before.creation_time
    assert after.last_write_time == before.last_write_time
    assert after.file_attributes == before.file_attributes
    assert after.permission_key == before.permission_key
    assert after.file_id == before.file_id
    assert after.change_time >= before.change_time  # Azure moves the change time to now


def test_rename_over_an_existing_file_without_overwrite_is_409(share: ShareClient) -> None:
    source, data = rich_source(share)
    upload(share, "dest.bin", b"kept")
    with pytest.raises(ResourceExistsError) as info:
        source.rename_file("dest.bin")
    assert info.value.status_code == 409
    assert info.value.error_code == "ResourceAlreadyExists"
    assert sorted(names(share)) == ["dest.bin", "source.bin"]
    assert share.get_file_client("dest.bin").download_file().readall() == b"kept"
    assert source.download_file().readall() == data


def test_rename_over_a_directory_is_409_even_with_overwrite(share: ShareClient) -> None:
    source, _data = rich_source(share)
    share.create_directory("dest.bin")
    with pytest.raises(ResourceExistsError):
        source.rename_file("dest.bin", overwrite=True)
    assert sorted(names(share)) == ["dest.bin", "source.bin"]


def test_rename_over_a_read_only_file_needs_ignore_read_only(share: ShareClient) -> None:
    source, data = rich_source(share)
    upload(share, "dest.bin", b"read-only", file_attributes=NTFSAttributes(read_only=True))
    with pytest.raises(ResourceExistsError) as info:
        source.rename_file("dest.bin", overwrite=True)
    assert info.value.error_code == "ReadOnlyAttribute"
    assert share.get_file_client("dest.bin").download_file().readall() == b"read-only"
    moved = source.rename_file("dest.bin", overwrite=True, ignore_read_only=True)
    assert moved.download_file().readall() == data
    assert names(share) == ["dest.bin"]


def test_rename_can_set_new_properties(share: ShareClient) -> None:
    source, data = rich_source(share)
    moved = source.rename_file(
        "renamed.bin", content_type="application/json", metadata={"fresh": "1"}, file_creation_time=WRITTEN
    )
    properties = moved.get_file_properties()
    assert properties.content_settings.content_type == "application/json"
    assert properties.metadata == {"fresh": "1"}
    assert properties.creation_time == WRITTEN
    assert properties.content_settings.content_md5 == bytearray(hashlib.md5(data).digest())


def test_rename_over_survives_a_restart(tmp_path: Path) -> None:
    with RunningEmulator(EmulatorConfig(data_dir=tmp_path / "data")) as emulator:
        account = emulator.account()
        service = ShareServiceClient(
            emulator.account_url(), credential={"account_name": account.name, "account_key": account.key}
        )
        share = service.create_share("kept")
        source, data = rich_source(share)
        upload(share, "dest.bin", b"old")
        source.rename_file("dest.bin", overwrite=True)
        restarted = emulator.restarted()
        try:
            share = ShareServiceClient(
                restarted.account_url(), credential={"account_name": account.name, "account_key": account.key}
            ).get_share_client("kept")
            assert names(share) == ["dest.bin"]
            moved = share.get_file_client("dest.bin")
            assert moved.download_file().readall() == data
            assert moved.get_file_properties().metadata == {"origin": "source", "Mixed": "Case"}
        finally:
            restarted.stop()


# ---- temporary names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        ".report.csv.shareferry-3f2a9c",
        ".shareferry-partial",
        "..double.shareferry-1",
        ".a.b.shareferry-x.tmp",
    ],
)
def test_a_dot_name_with_shareferry_in_it_lists_and_renames_normally(share: ShareClient, name: str) -> None:
    share.create_directory("dir")
    upload(share, "dir/report.csv", b"old")
    upload(share, f"dir/{name}", b"new")
    assert sorted(names(share, "dir")) == sorted([name, "report.csv"])
    listed = list(share.list_directories_and_files("dir", name_starts_with="."))
    assert [entry["name"] for entry in listed] == [name]
    assert listed[0]["size"] == 3
    temporary = share.get_file_client(f"dir/{name}")
    assert temporary.get_file_properties().size == 3
    temporary.rename_file("dir/report.csv", overwrite=True)
    assert names(share, "dir") == ["report.csv"]
    assert share.get_file_client("dir/report.csv").download_file().readall() == b"new"
