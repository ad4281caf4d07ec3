"""Directories and files through the real synchronous Azure SDK over HTTP.

Every test checks what a user of the SDK would: the bytes and MD5s that come back, the properties
the SDK parses, and the status and error codes of the SDK's exceptions.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.fileshare import (
    ContentSettings,
    FileSasPermissions,
    NTFSAttributes,
    ShareClient,
    ShareFileClient,
    ShareServiceClient,
    generate_file_sas,
)

from shareferry.emulator import Account, EmulatorConfig, RunningEmulator

MiB = 1024 * 1024
SDDL = "O:BAG:SYD:(A;;FA;;;BA)(A;;0x1200a9;;;BU)"
OTHER_SDDL = "O:SYG:SYD:(A;;FA;;;SY)"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def upload(share: ShareClient, path: str, data: bytes, **kwargs: Any) -> ShareFileClient:
    client = share.get_file_client(path)
    client.upload_file(data, **kwargs)
    return client


def read(share: ShareClient, path: str) -> bytes:
    return share.get_file_client(path).download_file().readall()


def names(share: ShareClient, directory: str = "") -> list[str]:
    return [entry["name"] for entry in share.list_directories_and_files(directory)]


class HeaderCapture:
    """A ``raw_response_hook`` that keeps the headers of the last response."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}

    def __call__(self, response: Any) -> None:
        self.headers = dict(response.http_response.headers)


def sas_url(emulator: RunningEmulator, client: ShareFileClient, account: Account | None = None) -> str:
    account = account or emulator.account()
    sas = generate_file_sas(
        account.name,
        client.share_name,
        client.file_path,
        account.key,
        permission=FileSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"{client.url}?{sas}"


# ---- directories ------------------------------------------------------------------------------


def test_create_directory_exists(share: ShareClient) -> None:
    directory = share.create_directory("docs")
    assert directory.exists()
    assert not share.get_directory_client("nope").exists()


def test_directory_properties(share: ShareClient) -> None:
    directory = share.create_directory("docs", metadata={"Owner": "ops"})
    props = directory.get_directory_properties()
    assert props.is_directory
    assert props.metadata == {"Owner": "ops"}
    assert "Directory" in props.file_attributes
    assert props.etag
    assert props.file_id


def test_nested_directories(share: ShareClient) -> None:
    share.create_directory("a")
    share.get_directory_client("a").create_subdirectory("b")
    share.create_directory("a/b/c")
    assert share.get_directory_client("a/b/c").exists()
    assert names(share, "a/b") == ["c"]


def test_create_directory_without_parent_is_404(share: ShareClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        share.create_directory("missing/child")
    assert info.value.status_code == 404
    assert info.value.error_code == "ParentNotFound"


def test_create_existing_directory_is_409(share: ShareClient) -> None:
    share.create_directory("docs")
    with pytest.raises(ResourceExistsError) as info:
        share.create_directory("docs")
    assert info.value.status_code == 409
    assert info.value.error_code == "ResourceAlreadyExists"


def test_delete_directory(share: ShareClient) -> None:
    share.create_directory("docs")
    share.delete_directory("docs")
    assert not share.get_directory_client("docs").exists()
    assert names(share) == []


def test_delete_non_empty_directory_is_409(share: ShareClient) -> None:
    share.create_directory("docs")
    upload(share, "docs/a.txt", b"a")
    with pytest.raises(ResourceExistsError) as info:
        share.delete_directory("docs")
    assert info.value.status_code == 409
    assert info.value.error_code == "DirectoryNotEmpty"


def test_delete_missing_directory_is_404(share: ShareClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        share.delete_directory("nope")
    assert info.value.error_code == "ResourceNotFound"


def test_directory_metadata_round_trip(share: ShareClient) -> None:
    directory = share.create_directory("docs")
    directory.set_directory_metadata({"a_b": "1", "a1": "2", "CamelCase": "3"})
    assert directory.get_directory_properties().metadata == {"a_b": "1", "a1": "2", "CamelCase": "3"}


# ---- listing ----------------------------------------------------------------------------------


@pytest.fixture
def fifty(share: ShareClient) -> list[str]:
    """A directory ``big`` with 20 subdirectories and 30 files; their names, sorted."""
    share.create_directory("big")
    created = []
    for i in range(20):
        share.create_directory(f"big/dir{i:02d}")
        created.append(f"dir{i:02d}")
    for i in range(30):
        share.get_file_client(f"big/file{i:02d}.txt").create_file(i)
        created.append(f"file{i:02d}.txt")
    return sorted(created)


def test_list_paging_returns_every_entry_once(share: ShareClient, fifty: list[str]) -> None:
    pages = list(share.list_directories_and_files("big", results_per_page=7).by_page())
    assert len(pages) > 1
    listed = [entry["name"] for page in pages for entry in page]
    assert listed == fifty


def test_list_page_sizes(share: ShareClient, fifty: list[str]) -> None:
    pages = [list(page) for page in share.list_directories_and_files("big", results_per_page=7).by_page()]
    assert [len(page) for page in pages] == [7, 7, 7, 7, 7, 7, 7, 1]


def test_list_marks_directories_and_sizes(share: ShareClient, fifty: list[str]) -> None:
    entries = {e["name"]: e for e in share.list_directories_and_files("big")}
    assert entries["dir03"]["is_directory"] is True
    assert entries["file07.txt"]["is_directory"] is False
    assert entries["file07.txt"]["size"] == 7


def test_list_name_starts_with(share: ShareClient, fifty: list[str]) -> None:
    listed = [e["name"] for e in share.list_directories_and_files("big", name_starts_with="file1")]
    assert listed == [f"file1{i}.txt" for i in range(10)]


def test_list_name_starts_with_paged(share: ShareClient, fifty: list[str]) -> None:
    pages = share.list_directories_and_files("big", name_starts_with="dir", results_per_page=3).by_page()
    listed = [e["name"] for page in pages for e in page]
    assert listed == [f"dir{i:02d}" for i in range(20)]


def test_list_include_details(share: ShareClient) -> None:
    share.create_directory("sub")
    client = upload(share, "f.bin", b"12345")
    capture = HeaderCapture()
    props = client.get_file_properties(raw_response_hook=capture)
    entries = {
        e["name"]: e
        for e in share.list_directories_and_files(
            include=["timestamps", "Etag", "Attributes", "PermissionKey"], include_extended_info=True
        )
    }
    entry = entries["f.bin"]
    assert entry.etag == props.etag
    # the SDK hands listed SMB times over as the service's strings: compare them with the headers
    assert entry.creation_time == capture.headers["x-ms-file-creation-time"]
    assert entry.last_write_time == capture.headers["x-ms-file-last-write-time"]
    assert entry.change_time == capture.headers["x-ms-file-change-time"]
    assert entry.last_modified == props.last_modified
    assert entry.file_attributes == props.file_attributes
    assert entry.permission_key == props.permission_key
    assert str(entry.file_id) == str(props.file_id)
    assert "Directory" in entries["sub"].file_attributes


def test_list_extended_info_has_file_ids(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"1")
    entry = next(iter(share.list_directories_and_files(include_extended_info=True)))
    assert str(entry.file_id) == str(client.get_file_properties().file_id)


def test_list_missing_directory_is_404(share: ShareClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        list(share.list_directories_and_files("nope"))
    assert info.value.error_code == "ResourceNotFound"


# ---- upload and download ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, 4 * MiB, 4 * MiB + 1],
    ids=["empty", "one-byte", "4MiB", "4MiB+1"],
)
def test_upload_download_round_trip(share: ShareClient, size: int) -> None:
    data = payload(size, seed=size)
    upload(share, "f.bin", data)
    got = read(share, "f.bin")
    assert len(got) == size
    assert md5(got) == md5(data)


def test_parallel_upload_and_download_9mib(share: ShareClient) -> None:
    data = payload(9 * MiB, seed=9)
    upload(share, "big.bin", data, max_concurrency=4)
    client = share.get_file_client("big.bin")
    assert client.get_file_properties().size == len(data)
    got = client.download_file(max_concurrency=4).readall()
    assert md5(got) == md5(data)


def test_ranged_downloads(share: ShareClient) -> None:
    data = payload(5 * MiB + 123, seed=5)
    client = upload(share, "f.bin", data, max_concurrency=2)
    rng = random.Random(42)
    for _ in range(12):
        offset = rng.randrange(len(data))
        length = rng.randint(1, min(len(data) - offset, 2 * MiB))
        assert client.download_file(offset, length).readall() == data[offset : offset + length]
    assert client.download_file(len(data) - 1, 1).readall() == data[-1:]
    assert client.download_file(0, 1).readall() == data[:1]


def test_ranged_download_past_end_is_clipped(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"0123456789")
    assert client.download_file(5, 100).readall() == b"56789"


def test_ranged_download_beyond_size_is_416(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"0123456789")
    with pytest.raises(HttpResponseError) as info:
        client.download_file(20, 5).readall()
    assert info.value.status_code == 416
    assert info.value.error_code == "InvalidRange"


def test_download_with_validate_content(share: ShareClient) -> None:
    data = payload(9 * MiB + 17, seed=3)
    client = upload(share, "f.bin", data, max_concurrency=4)
    got = client.download_file(validate_content=True, max_concurrency=3).readall()
    assert md5(got) == md5(data)


def test_ranged_download_with_validate_content(share: ShareClient) -> None:
    data = payload(6 * MiB, seed=4)
    client = upload(share, "f.bin", data, max_concurrency=2)
    got = client.download_file(1000, 5 * MiB, validate_content=True).readall()
    assert got == data[1000 : 1000 + 5 * MiB]


def test_download_missing_file_is_404(share: ShareClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        read(share, "nope.bin")
    assert info.value.error_code == "ResourceNotFound"


def test_download_file_in_missing_directory_is_404(share: ShareClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        read(share, "nodir/nope.bin")
    assert info.value.status_code == 404


def test_upload_overwrites(share: ShareClient) -> None:
    upload(share, "f.bin", b"a long first version")
    upload(share, "f.bin", b"short")
    assert read(share, "f.bin") == b"short"


def test_upload_range_with_validate_content(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(1024)
    result = client.upload_range(b"x" * 512, 256, 512, validate_content=True)
    assert result["etag"]
    got = client.download_file().readall()
    assert got == bytes(256) + b"x" * 512 + bytes(256)


def test_upload_range_reports_md5(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(10)
    result = client.upload_range(b"0123456789", 0, 10)
    assert bytes(result["content_md5"]) == hashlib.md5(b"0123456789").digest()


def test_put_range_with_wrong_md5_is_400(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(10)
    with pytest.raises(HttpResponseError) as info:
        client._client.file.upload_range(
            b"0123456789",
            range="bytes=0-9",
            file_range_write="update",
            content_length=10,
            content_md5=bytearray(16),
        )
    assert info.value.status_code == 400
    assert info.value.response is not None
    assert info.value.response.headers["x-ms-error-code"] == "Md5Mismatch"
    assert client.download_file().readall() == bytes(10)


def test_put_range_over_4mib_is_413(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(8 * MiB)
    body = bytes(4 * MiB + 1)
    with pytest.raises(HttpResponseError) as info:
        client._client.file.upload_range(
            body,
            range=f"bytes=0-{len(body) - 1}",
            file_range_write="update",
            content_length=len(body),
        )
    assert info.value.status_code == 413
    assert info.value.response is not None
    assert info.value.response.headers["x-ms-error-code"] == "RequestBodyTooLarge"


def test_put_range_beyond_size_is_416(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(10)
    with pytest.raises(HttpResponseError) as info:
        client.upload_range(b"abc", 9, 3)
    assert info.value.status_code == 416
    assert info.value.error_code == "InvalidRange"


def test_clear_range_leaves_a_hole(share: ShareClient) -> None:
    data = payload(3 * 4096, seed=1)
    client = upload(share, "f.bin", data)
    client.clear_range(4096, 4096)
    ranges = [(r.start, r.end) for r in client.list_ranges()]
    assert ranges == [(0, 4095), (8192, 12287)]
    got = client.download_file().readall()
    assert got == data[:4096] + bytes(4096) + data[8192:]


def test_get_ranges_after_sparse_writes(share: ShareClient) -> None:
    client = share.get_file_client("sparse.bin")
    client.create_file(10 * MiB)
    client.upload_range(b"a" * 512, 0, 512)
    client.upload_range(b"b" * 1024, 5 * MiB, 1024)
    client.upload_range(b"c" * 512, 10 * MiB - 512, 512)
    ranges = [(r.start, r.end) for r in client.list_ranges()]
    assert ranges == [(0, 511), (5 * MiB, 5 * MiB + 1023), (10 * MiB - 512, 10 * MiB - 1)]
    assert client.download_file(5 * MiB - 2, 4).readall() == b"\0\0bb"


def test_deprecated_get_ranges(share: ShareClient) -> None:
    client = share.get_file_client("sparse.bin")
    client.create_file(MiB)
    client.upload_range(b"x" * 512, 1024, 512)
    with pytest.deprecated_call():
        ranges = client.get_ranges()
    assert ranges == [{"start": 1024, "end": 1535}]


def test_adjacent_ranges_merge(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(2048)
    client.upload_range(b"a" * 512, 0, 512)
    client.upload_range(b"b" * 512, 512, 512)
    assert [(r.start, r.end) for r in client.list_ranges()] == [(0, 1023)]


def test_list_ranges_of_empty_file(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(4096)
    assert list(client.list_ranges()) == []


def test_resize_grow_reads_zeros(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"abc")
    client.resize_file(10)
    assert client.get_file_properties().size == 10
    assert client.download_file().readall() == b"abc" + bytes(7)


def test_resize_shrink_truncates(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"0123456789")
    client.resize_file(4)
    assert client.get_file_properties().size == 4
    assert client.download_file().readall() == b"0123"
    assert [(r.start, r.end) for r in client.list_ranges()] == [(0, 3)]


def test_set_http_headers_round_trip(share: ShareClient) -> None:
    data = b"<html></html>"
    client = upload(share, "page.html", data)
    settings = ContentSettings(
        content_type="text/html",
        content_encoding="identity",
        content_language="en-GB",
        content_disposition="attachment; filename=page.html",
        cache_control="max-age=60",
        content_md5=bytearray(hashlib.md5(data).digest()),
    )
    client.set_http_headers(content_settings=settings)
    got = client.get_file_properties().content_settings
    assert got.content_type == "text/html"
    assert got.content_encoding == "identity"
    assert got.content_language == "en-GB"
    assert got.content_disposition == "attachment; filename=page.html"
    assert got.cache_control == "max-age=60"
    assert bytes(got.content_md5) == hashlib.md5(data).digest()


def test_stored_md5_on_properties_and_download(share: ShareClient) -> None:
    data = payload(6 * MiB, seed=8)
    digest = hashlib.md5(data).digest()
    client = upload(
        share,
        "f.bin",
        data,
        content_settings=ContentSettings(content_type="application/x-test", content_md5=bytearray(digest)),
        max_concurrency=2,
    )
    assert bytes(client.get_file_properties().content_settings.content_md5) == digest
    downloader = client.download_file()
    assert bytes(downloader.properties.content_settings.content_md5) == digest
    assert downloader.properties.content_settings.content_type == "application/x-test"
    assert hashlib.md5(downloader.readall()).digest() == digest


def test_stored_md5_on_ranged_download(share: ShareClient) -> None:
    data = b"ranged-md5-content"
    digest = hashlib.md5(data).digest()
    client = upload(share, "f.bin", data, content_settings=ContentSettings(content_md5=bytearray(digest)))
    downloader = client.download_file(2, 5)
    assert downloader.readall() == data[2:7]
    assert bytes(downloader.properties.content_settings.content_md5) == digest


def test_file_metadata_round_trip(share: ShareClient) -> None:
    metadata = {"a_b": "underscore", "a1": "digit", "CamelCase": "Kept", "x": ""}
    client = upload(share, "f.bin", b"x", metadata=metadata)
    assert client.get_file_properties().metadata == metadata


def test_set_file_metadata_replaces(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"x", metadata={"old": "1"})
    client.set_file_metadata({"New_Key": "2", "k9": "3"})
    assert client.get_file_properties().metadata == {"New_Key": "2", "k9": "3"}
    client.set_file_metadata({})
    assert client.get_file_properties().metadata == {}


def test_metadata_on_download(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"x", metadata={"Owner": "ops"})
    assert client.download_file().properties.metadata == {"Owner": "ops"}


def test_delete_file(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"x")
    client.delete_file()
    assert not client.exists()
    with pytest.raises(ResourceNotFoundError) as info:
        client.delete_file()
    assert info.value.error_code == "ResourceNotFound"


def test_etag_changes_on_write(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(4)
    before = client.get_file_properties().etag
    client.upload_range(b"abcd", 0, 4)
    assert client.get_file_properties().etag != before


# ---- SMB properties ---------------------------------------------------------------------------


def test_create_with_attributes_string(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(0, file_attributes="ReadOnly|Archive")
    attributes = client.get_file_properties().file_attributes
    assert {a.strip() for a in attributes.split("|")} == {"ReadOnly", "Archive"}


def test_create_with_ntfs_attributes(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(0, file_attributes=NTFSAttributes(read_only=True, hidden=True))
    attributes = client.get_file_properties().file_attributes
    assert {a.strip() for a in attributes.split("|")} == {"ReadOnly", "Hidden"}


def test_default_attributes_archive(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"x")
    assert client.get_file_properties().file_attributes.strip() == "Archive"


def test_smb_times_as_datetimes_round_trip(share: ShareClient) -> None:
    created = datetime(2020, 2, 3, 4, 5, 6, 123456, tzinfo=UTC)
    written = datetime(2021, 7, 8, 9, 10, 11, 654321, tzinfo=UTC)
    client = share.get_file_client("f.bin")
    client.create_file(0, file_creation_time=created, file_last_write_time=written)
    props = client.get_file_properties()
    assert props.creation_time == created
    assert props.last_write_time == written


def test_smb_times_as_strings_round_trip_exactly(share: ShareClient) -> None:
    created = "2020-02-03T04:05:06.1234567Z"
    written = "2021-07-08T09:10:11.7654321Z"
    client = share.get_file_client("f.bin")
    create_capture = HeaderCapture()
    client.create_file(
        0, file_creation_time=created, file_last_write_time=written, raw_response_hook=create_capture
    )
    assert create_capture.headers["x-ms-file-creation-time"] == created
    capture = HeaderCapture()
    client.get_file_properties(raw_response_hook=capture)
    assert capture.headers["x-ms-file-creation-time"] == created
    assert capture.headers["x-ms-file-last-write-time"] == written


def test_smb_change_time_round_trip(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"x")
    client.set_http_headers(ContentSettings(), file_change_time="2022-01-01T00:00:00.0000001Z")
    capture = HeaderCapture()
    client.get_file_properties(raw_response_hook=capture)
    assert capture.headers["x-ms-file-change-time"] == "2022-01-01T00:00:00.0000001Z"


def test_set_http_headers_with_smb_properties(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"data")
    written = "2019-12-31T23:59:59.9999999Z"
    client.set_http_headers(
        content_settings=ContentSettings(content_type="text/plain"),
        file_attributes=NTFSAttributes(read_only=True, archive=True),
        file_last_write_time=written,
    )
    capture = HeaderCapture()
    props = client.get_file_properties(raw_response_hook=capture)
    assert capture.headers["x-ms-file-last-write-time"] == written
    assert {a.strip() for a in props.file_attributes.split("|")} == {"ReadOnly", "Archive"}
    assert props.content_settings.content_type == "text/plain"
    assert client.download_file().readall() == b"data"


def test_set_http_headers_preserves_times(share: ShareClient) -> None:
    created = "2018-01-01T01:01:01.0101010Z"
    client = share.get_file_client("f.bin")
    client.create_file(3, file_creation_time=created)
    client.set_http_headers(content_settings=ContentSettings(content_type="text/plain"))
    capture = HeaderCapture()
    client.get_file_properties(raw_response_hook=capture)
    assert capture.headers["x-ms-file-creation-time"] == created


def test_directory_smb_times_round_trip(share: ShareClient) -> None:
    created = "2017-05-06T07:08:09.1000001Z"
    directory = share.get_directory_client("d")
    directory.create_directory(file_creation_time=created, file_attributes="Hidden")
    capture = HeaderCapture()
    props = directory.get_directory_properties(raw_response_hook=capture)
    assert capture.headers["x-ms-file-creation-time"] == created
    assert {a.strip() for a in props.file_attributes.split("|")} == {"Hidden", "Directory"}


# ---- permissions ------------------------------------------------------------------------------


def test_permission_round_trip(share: ShareClient) -> None:
    key = share.create_permission_for_share(SDDL)
    assert key
    assert share.get_permission_for_share(key) == SDDL


def test_same_permission_same_key(share: ShareClient) -> None:
    assert share.create_permission_for_share(SDDL) == share.create_permission_for_share(SDDL)
    assert share.create_permission_for_share(SDDL) != share.create_permission_for_share(OTHER_SDDL)


def test_create_file_with_permission_key(share: ShareClient) -> None:
    key = share.create_permission_for_share(SDDL)
    client = share.get_file_client("f.bin")
    client.create_file(0, permission_key=key)
    assert client.get_file_properties().permission_key == key


def test_create_file_with_sddl(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(0, file_permission=OTHER_SDDL)
    key = client.get_file_properties().permission_key
    assert share.get_permission_for_share(key) == OTHER_SDDL


def test_set_permission_on_existing_file(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"x")
    key = share.create_permission_for_share(SDDL)
    client.set_http_headers(ContentSettings(), permission_key=key)
    assert client.get_file_properties().permission_key == key


def test_files_inherit_a_permission_key(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"x")
    key = client.get_file_properties().permission_key
    assert key
    assert share.get_permission_for_share(key).startswith("O:")


def test_unknown_permission_key_is_400(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    with pytest.raises(HttpResponseError) as info:
        client.create_file(0, permission_key="12345678*87654321")
    assert info.value.status_code == 400
    assert info.value.error_code == "FileInvalidPermissionKey"


def test_get_unknown_permission_is_400(share: ShareClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        share.get_permission_for_share("1*2")
    assert info.value.error_code == "FileInvalidPermissionKey"


# ---- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "unicode-ünï-日本語-😀.txt",
        "with spaces .txt",
        "hash#sign.txt",
        "per%cent.txt",
        "per%20cent.txt",
        "plus+sign.txt",
        "amp&ersand.txt",
        "quote'.txt",
        "semi;colon=eq.txt",
        "x" * 255,
    ],
    ids=[
        "unicode",
        "spaces",
        "hash",
        "percent",
        "percent-escape",
        "plus",
        "ampersand",
        "apostrophe",
        "semicolon",
        "255-chars",
    ],
)
def test_special_names_round_trip(share: ShareClient, name: str) -> None:
    data = name.encode()
    upload(share, name, data)
    assert read(share, name) == data
    assert names(share) == [name]


@pytest.mark.parametrize("name", ["dir #1", "dir%2F", "d+i&r", "ünï dir"])
def test_special_directory_names(share: ShareClient, name: str) -> None:
    share.create_directory(name)
    upload(share, f"{name}/inner.txt", b"inner")
    assert names(share) == [name]
    assert names(share, name) == ["inner.txt"]
    assert read(share, f"{name}/inner.txt") == b"inner"


def test_name_longer_than_255_is_rejected(share: ShareClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        upload(share, "x" * 256, b"x")
    assert info.value.status_code == 400


def test_deep_path(share: ShareClient) -> None:
    parts = [f"level{i}" for i in range(10)]
    for depth in range(1, 11):
        share.create_directory("/".join(parts[:depth]))
    path = "/".join([*parts, "deep.txt"])
    upload(share, path, b"deep")
    assert read(share, path) == b"deep"
    assert names(share, "/".join(parts)) == ["deep.txt"]


def test_trailing_dot_is_trimmed(share: ShareClient) -> None:
    upload(share, "name.", b"dot")
    assert names(share) == ["name"]
    assert read(share, "name") == b"dot"


def test_trailing_dot_kept_when_allowed(emulator: RunningEmulator) -> None:
    account = emulator.account()
    service = ShareServiceClient(
        account_url=emulator.account_url(),
        credential={"account_name": account.name, "account_key": account.key},
        allow_trailing_dot=True,
    )
    share = service.create_share("dots")
    share.create_directory("dir.")
    upload(share, "dir./name.", b"dot")
    assert names(share) == ["dir."]
    assert names(share, "dir.") == ["name."]
    assert read(share, "dir./name.") == b"dot"


def test_case_insensitive_lookup_case_preserving_listing(share: ShareClient) -> None:
    share.create_directory("MixedDir")
    upload(share, "MixedDir/ReadMe.TXT", b"case")
    assert read(share, "mixeddir/readme.txt") == b"case"
    assert names(share) == ["MixedDir"]
    assert names(share, "MIXEDDIR") == ["ReadMe.TXT"]


def test_overwrite_with_other_case_keeps_first_spelling(share: ShareClient) -> None:
    upload(share, "ReadMe.txt", b"one")
    upload(share, "README.TXT", b"two")
    assert names(share) == ["ReadMe.txt"]
    assert read(share, "readme.txt") == b"two"


def test_directory_case_insensitive_conflict(share: ShareClient) -> None:
    share.create_directory("Docs")
    with pytest.raises(ResourceExistsError) as info:
        share.create_directory("DOCS")
    assert info.value.error_code == "ResourceAlreadyExists"


@pytest.mark.parametrize("name", ["a:b", "a|b", "a<b", "a*b", 'a"b', "a?b"])
def test_invalid_names_are_400(share: ShareClient, name: str) -> None:
    with pytest.raises(HttpResponseError) as info:
        share.get_file_client(name).create_file(0)
    assert info.value.status_code == 400
    assert info.value.error_code == "InvalidResourceName"


def test_invalid_directory_name_is_400(share: ShareClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        share.create_directory("a:b")
    assert info.value.error_code == "InvalidResourceName"


# ---- leases -----------------------------------------------------------------------------------


def test_write_without_lease_is_412(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(4)
    client.acquire_lease()
    with pytest.raises(HttpResponseError) as info:
        client.upload_range(b"abcd", 0, 4)
    assert info.value.status_code == 412
    assert info.value.error_code == "LeaseIdMissing"


def test_write_with_lease_then_release(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(4)
    lease = client.acquire_lease()
    client.upload_range(b"abcd", 0, 4, lease=lease)
    props = client.get_file_properties()
    assert props.lease.state == "leased"
    assert props.lease.status == "locked"
    lease.release()
    client.upload_range(b"wxyz", 0, 4)
    assert client.get_file_properties().lease.state == "available"
    assert client.download_file().readall() == b"wxyz"


def test_delete_leased_file_without_lease_is_412(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"x")
    lease = client.acquire_lease()
    with pytest.raises(HttpResponseError) as info:
        client.delete_file()
    assert info.value.error_code == "LeaseIdMissing"
    client.delete_file(lease=lease)
    assert not client.exists()


def test_wrong_lease_id_is_412(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"abcd")
    client.acquire_lease()
    with pytest.raises(HttpResponseError) as info:
        client.upload_range(b"abcd", 0, 4, lease="00000000-0000-0000-0000-000000000000")
    assert info.value.status_code == 412


def test_break_lease(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"abcd")
    lease = client.acquire_lease()
    lease.break_lease()
    client.upload_range(b"wxyz", 0, 4)
    assert client.download_file().readall() == b"wxyz"


def test_second_acquire_is_409(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"abcd")
    client.acquire_lease()
    with pytest.raises(HttpResponseError) as info:
        client.acquire_lease()
    assert info.value.status_code == 409


# ---- rename -----------------------------------------------------------------------------------


def test_rename_file(share: ShareClient) -> None:
    upload(share, "old.txt", b"renamed")
    share.create_directory("dst")
    moved = share.get_file_client("old.txt").rename_file("dst/new.txt")
    assert moved.download_file().readall() == b"renamed"
    assert names(share) == ["dst"]
    assert names(share, "dst") == ["new.txt"]


def test_rename_file_onto_existing_needs_overwrite(share: ShareClient) -> None:
    upload(share, "a.txt", b"a")
    upload(share, "b.txt", b"b")
    with pytest.raises(ResourceExistsError):
        share.get_file_client("a.txt").rename_file("b.txt")
    share.get_file_client("a.txt").rename_file("b.txt", overwrite=True)
    assert names(share) == ["b.txt"]
    assert read(share, "b.txt") == b"a"


def test_rename_directory_moves_children(share: ShareClient) -> None:
    share.create_directory("src")
    share.create_directory("src/inner")
    upload(share, "src/inner/f.txt", b"deep")
    moved = share.get_directory_client("src").rename_directory("dst")
    assert moved.exists()
    assert names(share) == ["dst"]
    assert read(share, "dst/inner/f.txt") == b"deep"


def test_rename_missing_file_is_404(share: ShareClient) -> None:
    with pytest.raises(ResourceNotFoundError):
        share.get_file_client("nope.txt").rename_file("other.txt")


# ---- server-side copies -----------------------------------------------------------------------


def test_copy_with_sas_source(emulator: RunningEmulator, share: ShareClient) -> None:
    data = payload(5 * MiB, seed=11)
    source = upload(share, "src.bin", data, max_concurrency=2)
    target = share.get_file_client("dst.bin")
    result = target.start_copy_from_url(sas_url(emulator, source))
    assert result["copy_status"] == "success"
    props = target.get_file_properties()
    assert props.copy.status == "success"
    assert props.copy.id == result["copy_id"]
    assert md5(target.download_file().readall()) == md5(data)


def test_copy_with_shared_key_same_account(share: ShareClient) -> None:
    source = upload(share, "src.bin", b"shared key copy")
    target = share.get_file_client("dst.bin")
    assert target.start_copy_from_url(source.url)["copy_status"] == "success"
    assert target.download_file().readall() == b"shared key copy"


def test_copy_keeps_headers_and_metadata(share: ShareClient) -> None:
    data = b"headers travel"
    settings = ContentSettings(
        content_type="text/x-copy",
        content_language="de",
        content_md5=bytearray(hashlib.md5(data).digest()),
    )
    source = upload(share, "src.txt", data, content_settings=settings, metadata={"Origin": "src"})
    target = share.get_file_client("dst.txt")
    target.start_copy_from_url(source.url)
    props = target.get_file_properties()
    assert props.content_settings.content_type == "text/x-copy"
    assert props.content_settings.content_language == "de"
    assert bytes(props.content_settings.content_md5) == hashlib.md5(data).digest()
    assert props.metadata == {"Origin": "src"}


def test_copy_into_another_share(service: ShareServiceClient, share: ShareClient) -> None:
    other = service.create_share("other")
    source = upload(share, "src.txt", b"cross share")
    target = other.get_file_client("dst.txt")
    target.start_copy_from_url(source.url)
    assert target.download_file().readall() == b"cross share"


def test_copy_missing_source_fails(share: ShareClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        share.get_file_client("dst.bin").start_copy_from_url(share.get_file_client("nope").url)
    assert info.value.status_code == 404
    assert info.value.error_code == "CannotVerifyCopySource"


def test_abort_finished_copy_is_409(share: ShareClient) -> None:
    source = upload(share, "src.bin", b"x")
    target = share.get_file_client("dst.bin")
    copy_id = target.start_copy_from_url(source.url)["copy_id"]
    with pytest.raises(HttpResponseError) as info:
        target.abort_copy(copy_id)
    assert info.value.status_code == 409
    assert info.value.error_code == "NoPendingCopyOperation"


def test_put_range_from_url_same_account(emulator: RunningEmulator, share: ShareClient) -> None:
    data = payload(3 * MiB, seed=12)
    source = upload(share, "src.bin", data)
    target = share.get_file_client("dst.bin")
    target.create_file(len(data))
    url = sas_url(emulator, source)
    target.upload_range_from_url(url, offset=0, length=2 * MiB, source_offset=MiB)
    target.upload_range_from_url(url, offset=2 * MiB, length=MiB, source_offset=0)
    assert target.download_file().readall() == data[MiB:] + data[:MiB]


def test_put_range_from_url_without_sas_is_403(share: ShareClient) -> None:
    source = upload(share, "src.bin", b"0123456789")
    target = share.get_file_client("dst.bin")
    target.create_file(10)
    with pytest.raises(HttpResponseError) as info:
        target.upload_range_from_url(source.url, offset=0, length=10, source_offset=0)
    assert info.value.status_code == 403
    assert info.value.error_code == "CannotVerifyCopySource"


@pytest.fixture
def two_accounts() -> Iterator[RunningEmulator]:
    accounts = (
        Account("alpha", base64.b64encode(os.urandom(64)).decode()),
        Account("beta", base64.b64encode(os.urandom(64)).decode()),
    )
    with RunningEmulator(EmulatorConfig(accounts=accounts)) as running:
        yield running


def _service(emulator: RunningEmulator, name: str) -> ShareServiceClient:
    account = emulator.account(name)
    return ShareServiceClient(
        account_url=emulator.account_url(name),
        credential={"account_name": account.name, "account_key": account.key},
    )


def test_put_range_from_url_other_account(two_accounts: RunningEmulator) -> None:
    data = payload(MiB + 5, seed=13)
    source = upload(_service(two_accounts, "alpha").create_share("src"), "src.bin", data)
    target = _service(two_accounts, "beta").create_share("dst").get_file_client("dst.bin")
    target.create_file(len(data))
    url = sas_url(two_accounts, source, two_accounts.account("alpha"))
    target.upload_range_from_url(url, offset=0, length=len(data), source_offset=0)
    assert md5(target.download_file().readall()) == md5(data)


def test_put_range_from_url_other_account_without_sas_is_403(two_accounts: RunningEmulator) -> None:
    source = upload(_service(two_accounts, "alpha").create_share("src"), "src.bin", b"secret")
    target = _service(two_accounts, "beta").create_share("dst").get_file_client("dst.bin")
    target.create_file(6)
    with pytest.raises(HttpResponseError) as info:
        target.upload_range_from_url(source.url, offset=0, length=6, source_offset=0)
    assert info.value.status_code == 403
    assert info.value.error_code == "CannotVerifyCopySource"


def test_copy_from_other_account_needs_sas(two_accounts: RunningEmulator) -> None:
    source = upload(_service(two_accounts, "alpha").create_share("src"), "src.bin", b"cross account")
    target = _service(two_accounts, "beta").create_share("dst").get_file_client("dst.bin")
    with pytest.raises(HttpResponseError) as info:
        target.start_copy_from_url(source.url)
    assert info.value.error_code == "CannotVerifyCopySource"
    target.start_copy_from_url(sas_url(two_accounts, source, two_accounts.account("alpha")))
    assert target.download_file().readall() == b"cross account"


# ---- more edges a client relies on ------------------------------------------------------------


def test_download_detects_a_change_between_chunks(emulator: RunningEmulator) -> None:
    account = emulator.account()
    service = ShareServiceClient(
        account_url=emulator.account_url(),
        credential={"account_name": account.name, "account_key": account.key},
        max_single_get_size=MiB,
        max_chunk_get_size=MiB,
    )
    share = service.create_share("chunked")
    client = upload(share, "f.bin", payload(3 * MiB, seed=1))
    downloader = client.download_file()  # the first 1 MiB is fetched now
    client.upload_range(b"changed", 2 * MiB, 7)
    with pytest.raises(ResourceModifiedError):
        downloader.readall()


def test_small_chunks_download(emulator: RunningEmulator) -> None:
    account = emulator.account()
    service = ShareServiceClient(
        account_url=emulator.account_url(),
        credential={"account_name": account.name, "account_key": account.key},
        max_single_get_size=MiB,
        max_chunk_get_size=MiB,
    )
    data = payload(3 * MiB + 77, seed=2)
    client = upload(service.create_share("chunked"), "f.bin", data)
    assert client.download_file(max_concurrency=3).readall() == data


def test_list_ranges_within_a_window(share: ShareClient) -> None:
    client = share.get_file_client("f.bin")
    client.create_file(8192)
    client.upload_range(b"a" * 4096, 0, 4096)
    client.upload_range(b"b" * 1024, 6144, 1024)
    window = [(r.start, r.end) for r in client.list_ranges(offset=2048, length=4608)]
    assert window == [(2048, 4095), (6144, 6655)]


def test_put_range_preserving_last_write_time(share: ShareClient) -> None:
    written = "2015-06-07T08:09:10.1112131Z"
    client = share.get_file_client("f.bin")
    client.create_file(4, file_last_write_time=written)
    client.upload_range(b"abcd", 0, 4, file_last_write_mode="preserve")
    capture = HeaderCapture()
    client.get_file_properties(raw_response_hook=capture)
    assert capture.headers["x-ms-file-last-write-time"] == written
    client.upload_range(b"efgh", 0, 4)
    client.get_file_properties(raw_response_hook=capture)
    assert capture.headers["x-ms-file-last-write-time"] != written


def test_create_file_over_4tib_is_400(share: ShareClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        share.get_file_client("huge.bin").create_file(4 * 1024**4 + 1)
    assert info.value.status_code == 400


def test_large_sparse_file(share: ShareClient) -> None:
    client = share.get_file_client("sparse.bin")
    client.create_file(64 * MiB)
    client.upload_range(b"end", 64 * MiB - 3, 3)
    assert client.get_file_properties().size == 64 * MiB
    assert client.download_file(64 * MiB - 10, 10).readall() == bytes(7) + b"end"


def test_invalid_metadata_name_is_400(share: ShareClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        upload(share, "f.bin", b"x", metadata={"1starts-with-digit": "v"})
    assert info.value.status_code == 400


def test_copy_from_a_snapshot(service: ShareServiceClient, share: ShareClient) -> None:
    upload(share, "f.txt", b"old")
    snap = share.create_snapshot()["snapshot"]
    upload(share, "f.txt", b"new!")
    source = service.get_share_client(share.share_name, snapshot=snap).get_file_client("f.txt")
    target = share.get_file_client("restored.txt")
    target.start_copy_from_url(source.url)
    assert target.download_file().readall() == b"old"


def test_copy_with_override_metadata(share: ShareClient) -> None:
    source = upload(share, "src.txt", b"x", metadata={"from": "source"})
    target = share.get_file_client("dst.txt")
    target.start_copy_from_url(source.url, metadata={"from": "request"})
    assert target.get_file_properties().metadata == {"from": "request"}


def test_file_handles_are_empty(share: ShareClient) -> None:
    client = upload(share, "f.bin", b"x")
    assert list(client.list_handles()) == []
    assert client.close_all_handles() == {"closed_handles_count": 0, "failed_handles_count": 0}
    assert list(share.get_directory_client().list_handles(recursive=True)) == []


def test_file_sas_response_header_overrides(emulator: RunningEmulator, share: ShareClient) -> None:
    upload(share, "report.csv", b"a,b\n1,2\n", content_settings=ContentSettings(content_type="text/csv"))
    account = emulator.account()
    sas = generate_file_sas(
        account.name,
        share.share_name,
        ["report.csv"],
        account.key,
        permission=FileSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
        content_disposition="attachment; filename=report.csv",
        content_type="application/octet-stream",
        cache_control="no-cache",
    )
    client = ShareServiceClient(account_url=emulator.account_url(), credential=sas)
    downloader = client.get_share_client(share.share_name).get_file_client("report.csv").download_file()
    settings = downloader.properties.content_settings
    assert settings.content_disposition == "attachment; filename=report.csv"
    assert settings.content_type == "application/octet-stream"
    assert settings.cache_control == "no-cache"
    assert downloader.readall() == b"a,b\n1,2\n"
    stored = share.get_file_client("report.csv").get_file_properties().content_settings
    assert stored.content_type == "text/csv"


def test_exists_probes_tell_files_and_directories_apart(share: ShareClient) -> None:
    """Directory operations on a file path (and file operations on a directory) are 404s."""
    share.create_directory("folder")
    share.get_file_client("folder/item").upload_file(b"x")
    assert share.get_directory_client("folder").exists()
    assert not share.get_file_client("folder").exists()
    assert share.get_file_client("folder/item").exists()
    assert not share.get_directory_client("folder/item").exists()
