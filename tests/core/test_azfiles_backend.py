"""The Azure Files backend against the emulator over real HTTP: every method, SMB properties and
permissions round-tripping exactly, server-side copies between shares, and the error contract
(credentials, missing shares, throttling with Retry-After, dropped connections)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.fileshare import (
    ContentSettings,
    ShareClient,
    ShareSasPermissions,
    ShareServiceClient,
    generate_share_sas,
)

from shareferry.core.backends import azfiles
from shareferry.core.backends.azfiles import AzureFilesBackend
from shareferry.core.errors import CredentialError, NotFoundError, TransferError
from shareferry.core.objects import ContentHeaders, SmbInfo, StoredObject, WriteProps
from shareferry.emulator import RunningEmulator
from tests.support.emulator_admin import add_fault, counters

MIB = 1024 * 1024

#: Names a user may well have, each one path segment.
ODD_NAMES = ["with space.txt", "hash#1.txt", "per%cent%20.txt", "plus+sign.txt", "ünïcødé ☃ 文件.txt"]

#: Service-style SMB times (100 ns digits) that a datetime could not hold.
CREATED = "2019-02-03T04:05:06.1234567Z"
WRITTEN = "2020-07-08T09:10:11.7654321Z"
SDDL = "O:BAG:SYD:(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;BU)"


def backend_for(emulator: RunningEmulator, share: str, **kwargs: Any) -> AzureFilesBackend:
    account = emulator.account()
    credentials: dict[str, Any] = {"account_name": account.name, "account_key": account.key}
    if "sas" in kwargs:
        credentials = {}
    return AzureFilesBackend(endpoint=emulator.account_url(), share=share, **{**credentials, **kwargs})


@pytest.fixture
async def files(emulator: RunningEmulator, share: ShareClient) -> AsyncIterator[AzureFilesBackend]:
    backend = backend_for(emulator, share.share_name)
    try:
        yield backend
    finally:
        await backend.close()


async def write_file(
    backend: AzureFilesBackend,
    path: str,
    data: bytes,
    props: WriteProps | None = None,
    *,
    step: int = 4 * MIB,
) -> None:
    writer = await backend.open_writer(path, size=len(data), props=props or WriteProps())
    for offset in range(0, len(data), step):
        await writer.write(offset, data[offset : offset + step])
    await writer.commit(hashlib.md5(data).digest())


async def listed(backend: AzureFilesBackend, path: str = "", *, recursive: bool = True) -> list[StoredObject]:
    return [item async for item in backend.list(path, recursive=recursive)]


def flags(attributes: str | None) -> set[str]:
    """Azure's ``A | B`` attribute list as a set (the service picks the order)."""
    return {part.strip() for part in (attributes or "").split("|") if part.strip()}


def seed(share: ShareClient, path: str, data: bytes, **smb: Any) -> None:
    """Upload with the plain SDK, then set SMB properties (a put range moves the write time)."""
    settings = smb.pop("content_settings", ContentSettings())
    metadata = smb.pop("metadata", None)
    client = share.get_file_client(path)
    client.upload_file(data, content_settings=settings, metadata=metadata)
    if smb:
        client.set_http_headers(settings, **smb)


def raw_smb_headers(share: ShareClient, path: str) -> dict[str, str]:
    """The SMB headers exactly as the service sent them, read with the plain SDK."""
    seen: dict[str, str] = {}

    def hook(response: Any) -> None:
        seen.update(response.http_response.headers)

    share.get_file_client(path).get_file_properties(raw_response_hook=hook)
    return {k: v for k, v in seen.items() if k.startswith("x-ms-file-")}


# ---- stat ------------------------------------------------------------------------------------


async def test_stat_file_reports_size_md5_headers_metadata_and_exact_smb(
    files: AzureFilesBackend, share: ShareClient
) -> None:
    data = b"stat me" * 1000
    settings = ContentSettings(
        content_type="text/plain",
        content_encoding="identity",
        content_language="en",
        content_disposition="inline",
        cache_control="no-cache",
        content_md5=bytearray(hashlib.md5(data).digest()),
    )
    share.create_directory("docs")
    seed(
        share,
        "docs/a.txt",
        data,
        content_settings=settings,
        metadata={"Origin": "test"},
        file_attributes="ReadOnly | Archive",
        file_creation_time=CREATED,
        file_last_write_time=WRITTEN,
    )

    found = await files.stat("docs/a.txt")

    assert found is not None and not found.is_dir
    assert (found.path, found.name, found.size) == ("docs/a.txt", "a.txt", len(data))
    assert found.md5 == hashlib.md5(data).digest()
    assert found.content == ContentHeaders("text/plain", "identity", "en", "inline", "no-cache")
    assert found.metadata == {"Origin": "test"}
    assert found.smb == SmbInfo(
        attributes="ReadOnly | Archive", creation_time=CREATED, last_write_time=WRITTEN
    )
    assert found.last_modified is not None and found.last_modified.tzinfo is not None


async def test_stat_directory_root_and_missing(files: AzureFilesBackend, share: ShareClient) -> None:
    share.create_directory("folder", metadata={"k": "v"})
    folder = await files.stat("folder")
    root = await files.stat("")
    assert folder is not None and folder.is_dir and folder.metadata == {"k": "v"}
    assert folder.smb is not None and "Directory" in (folder.smb.attributes or "")
    assert folder.smb.creation_time and len(folder.smb.creation_time.split(".")[1]) == len("1234567Z")
    assert root is not None and root.is_dir and root.path == ""
    assert await files.stat("missing.txt") is None
    assert await files.stat("folder/missing/deeper.txt") is None


async def test_backend_rooted_in_a_directory_addresses_paths_below_it(
    emulator: RunningEmulator, share: ShareClient
) -> None:
    backend = backend_for(emulator, share.share_name, root="/outer dir/inner/")
    try:
        await write_file(backend, "sub/file.txt", b"rooted")
        root = await backend.stat("")
        items = [(item.path, item.is_dir) for item in await listed(backend)]
        content = await backend.read("sub/file.txt", 0, 100)
        description = backend.describe("sub/file.txt")
    finally:
        await backend.close()
    assert root is not None and root.is_dir
    assert items == [("sub", True), ("sub/file.txt", False)]
    assert content == b"rooted"
    assert share.get_file_client("outer dir/inner/sub/file.txt").download_file().readall() == b"rooted"
    assert description == f"{emulator.account_url()}/{share.share_name}/outer%20dir/inner/sub/file.txt"


# ---- list ------------------------------------------------------------------------------------


async def test_list_is_tree_order_with_sizes_times_and_exact_last_write(
    files: AzureFilesBackend, share: ShareClient
) -> None:
    for directory in ("b", "b/inner", "a-dir", "a"):
        share.create_directory(directory)
    for path in ("b/inner/z.txt", "b/x.txt", "a/y.txt", "a-b.txt", "c.txt"):
        seed(share, path, path.encode(), file_last_write_time=WRITTEN)

    everything = await listed(files)
    top = await listed(files, recursive=False)
    below_b = await listed(files, "b")

    assert [item.path for item in everything] == [
        "a",
        "a/y.txt",
        "a-b.txt",
        "a-dir",
        "b",
        "b/inner",
        "b/inner/z.txt",
        "b/x.txt",
        "c.txt",
    ]
    assert [item.path for item in top] == ["a", "a-b.txt", "a-dir", "b", "c.txt"]
    assert [item.path for item in below_b] == ["b/inner", "b/inner/z.txt", "b/x.txt"]
    for item in everything:
        assert item.last_modified is not None
        assert item.smb is not None and item.smb.last_write_time and item.smb.creation_time
        if not item.is_dir:
            assert item.size == len(item.path.encode())
            assert item.smb.last_write_time == WRITTEN
            stat = await files.stat(item.path)
            assert stat is not None and stat.smb is not None
            assert (item.smb.attributes, item.smb.creation_time) == (
                stat.smb.attributes,
                stat.smb.creation_time,
            )


async def test_list_spans_pages(
    files: AzureFilesBackend, share: ShareClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azfiles, "LISTING_PAGE_SIZE", 3)
    names = [f"f{i:02d}.txt" for i in range(8)]
    for index, name in enumerate(names):
        seed(share, name, b"x" * index, file_last_write_time=WRITTEN)
    items = await listed(files)
    assert [item.name for item in items] == names
    assert [item.size for item in items] == list(range(8))
    assert {item.smb.last_write_time for item in items if item.smb} == {WRITTEN}
    assert all(item.smb is not None for item in items)


async def test_list_missing_or_file_path_is_not_found(files: AzureFilesBackend, share: ShareClient) -> None:
    share.get_file_client("plain.txt").upload_file(b"x")
    with pytest.raises(NotFoundError, match="no such directory"):
        await listed(files, "nowhere")
    with pytest.raises(NotFoundError):
        await listed(files, "plain.txt")


# ---- read ------------------------------------------------------------------------------------


async def test_read_ranges_and_the_short_tail(files: AzureFilesBackend) -> None:
    data = os.urandom(MIB + 333)
    await write_file(files, "r.bin", data, step=MIB // 2)
    assert await files.read("r.bin", 0, len(data)) == data
    assert await files.read("r.bin", 1000, 5000) == data[1000:6000]
    assert await files.read("r.bin", MIB, MIB) == data[MIB:]
    assert await files.read("r.bin", len(data), 10) == b""
    assert await files.read("r.bin", 5, 0) == b""
    with pytest.raises(NotFoundError, match=r"r-missing\.bin"):
        await files.read("r-missing.bin", 0, 10)


async def test_read_empty_file(files: AzureFilesBackend) -> None:
    await write_file(files, "empty", b"")
    assert await files.read("empty", 0, 10) == b""
    found = await files.stat("empty")
    assert found is not None and found.size == 0 and found.md5 == hashlib.md5(b"").digest()


# ---- write -----------------------------------------------------------------------------------


async def test_writer_creates_parents_and_sets_headers_metadata_and_md5(
    files: AzureFilesBackend, share: ShareClient
) -> None:
    data = os.urandom(9 * MIB + 17)
    props = WriteProps(
        content=ContentHeaders(content_type="application/x-test", cache_control="max-age=1"),
        metadata={"Owner": "ferry"},
    )
    writer = await files.open_writer("new/deep/dirs/big.bin", size=len(data), props=props)
    offsets = list(range(0, len(data), 4 * MIB))
    for offset in reversed(offsets):  # out of order, as concurrent writers may land
        await writer.write(offset, data[offset : offset + 4 * MIB])
    await writer.commit(hashlib.md5(data).digest())

    found = await files.stat("new/deep/dirs/big.bin")
    downloaded = share.get_file_client("new/deep/dirs/big.bin").download_file().readall()
    assert hashlib.md5(downloaded).digest() == hashlib.md5(data).digest()
    assert found is not None and found.size == len(data) and found.md5 == hashlib.md5(data).digest()
    assert found.content is not None and found.content.content_type == "application/x-test"
    assert found.content.cache_control == "max-age=1"
    assert found.metadata == {"Owner": "ferry"}


async def test_writer_replaces_an_existing_file(files: AzureFilesBackend) -> None:
    await write_file(files, "same.txt", b"a much longer first version", WriteProps(metadata={"v": "1"}))
    await write_file(files, "same.txt", b"second")
    found = await files.stat("same.txt")
    assert await files.read("same.txt", 0, 100) == b"second"
    assert found is not None and found.size == 6 and found.metadata == {}


async def test_smb_info_round_trips_exactly_through_stat_and_writer(
    files: AzureFilesBackend, share: ShareClient
) -> None:
    seed(
        share,
        "src.txt",
        b"smb",
        file_attributes="ReadOnly | Archive",
        file_creation_time=CREATED,
        file_last_write_time=WRITTEN,
        file_permission=SDDL,
    )
    source = await files.stat("src.txt")
    assert source is not None and source.smb is not None
    permission = await files.get_permission("src.txt")
    assert permission == SDDL

    smb = SmbInfo(
        attributes=source.smb.attributes,
        creation_time=source.smb.creation_time,
        last_write_time=source.smb.last_write_time,
        permission=permission,
    )
    await write_file(files, "copies/dst.txt", b"smb", WriteProps(smb=smb))
    copied = await files.stat("copies/dst.txt")

    assert copied is not None and copied.smb == source.smb
    assert raw_smb_headers(share, "copies/dst.txt")["x-ms-file-last-write-time"] == WRITTEN
    assert await files.get_permission("copies/dst.txt") == SDDL
    assert await files.get_permission("missing") is None


async def test_a_permission_over_8_kib_goes_through_a_permission_key(files: AzureFilesBackend) -> None:
    aces = "".join(f"(A;;FR;;;S-1-5-21-1004336348-1177238915-682003330-{1000 + i})" for i in range(200))
    big = f"O:BAG:SYD:(A;;FA;;;BA){aces}"
    assert len(big.encode()) > 8 * 1024
    await write_file(files, "big-acl.txt", b"acl", WriteProps(smb=SmbInfo(permission=big)))
    await files.make_dir("big-acl-dir", WriteProps(smb=SmbInfo(permission=big)))
    assert await files.get_permission("big-acl.txt") == big
    assert await files.get_permission("big-acl-dir") == big


async def test_abort_removes_the_partial_file(files: AzureFilesBackend, share: ShareClient) -> None:
    writer = await files.open_writer("partial.bin", size=100, props=WriteProps())
    await writer.write(0, b"x" * 50)
    assert [item["name"] for item in share.list_directories_and_files()] == [writer.staged]
    await writer.abort()
    await writer.abort()  # never raises, even when there is nothing left
    assert await files.stat("partial.bin") is None
    assert list(share.list_directories_and_files()) == []  # the staging file is gone too


# ---- directories and deletes -----------------------------------------------------------------


async def test_make_dir_creates_the_chain_idempotently_with_smb(files: AzureFilesBackend) -> None:
    smb = SmbInfo(
        attributes="Directory | Hidden", creation_time=CREATED, last_write_time=WRITTEN, permission=SDDL
    )
    await files.make_dir("one/two/three")
    await files.make_dir("one/two/three")
    await files.make_dir("one/two/three", WriteProps(smb=smb))  # already there: properties set
    await files.make_dir("fresh", WriteProps(smb=smb, metadata={"m": "1"}))  # new: created with them
    for path in ("one/two/three", "fresh"):
        found = await files.stat(path)
        assert found is not None and found.is_dir and found.smb is not None
        assert flags(found.smb.attributes) == {"Directory", "Hidden"}
        assert (found.smb.creation_time, found.smb.last_write_time) == (CREATED, WRITTEN)
        assert await files.get_permission(path) == SDDL
    fresh = await files.stat("fresh")
    assert fresh is not None and fresh.metadata == {"m": "1"}
    assert [item.path for item in await listed(files)] == ["fresh", "one", "one/two", "one/two/three"]


async def test_make_dir_over_a_file_fails(files: AzureFilesBackend) -> None:
    await write_file(files, "taken", b"file")
    with pytest.raises(TransferError, match="ResourceTypeMismatch") as info:
        await files.make_dir("taken")
    assert not info.value.retryable


async def test_delete_file_empty_directory_and_missing(files: AzureFilesBackend) -> None:
    await write_file(files, "d/f.txt", b"x")
    with pytest.raises(TransferError, match="DirectoryNotEmpty"):
        await files.delete("d")
    await files.delete("d/f.txt")
    await files.delete("d")
    assert await files.stat("d") is None
    with pytest.raises(NotFoundError, match=r"d/f\.txt"):
        await files.delete("d/f.txt")


@pytest.mark.parametrize("name", ODD_NAMES)
async def test_odd_names_round_trip(files: AzureFilesBackend, share: ShareClient, name: str) -> None:
    path = f"dir {name}/{name}"
    await write_file(files, path, name.encode())
    items = await listed(files)
    found = await files.stat(path)
    content = await files.read(path, 0, 1000)
    sdk_view = share.get_file_client(path).download_file().readall()
    await files.delete(path)
    await files.delete(f"dir {name}")
    assert [item.path for item in items] == [f"dir {name}", path]
    assert found is not None and found.path == path
    assert content == sdk_view == name.encode()
    assert await listed(files) == []


async def test_trailing_dot_names_are_kept(files: AzureFilesBackend) -> None:
    await write_file(files, "dotted./name.", b"dots")
    assert [item.path for item in await listed(files)] == ["dotted.", "dotted./name."]
    assert await files.read("dotted./name.", 0, 10) == b"dots"


async def test_create_share(emulator: RunningEmulator, service: ShareServiceClient) -> None:
    backend = backend_for(emulator, "made-by-ferry")
    try:
        assert await backend.create_share(quota_gb=5) is True
        assert await backend.create_share(quota_gb=5) is False
    finally:
        await backend.close()
    assert service.get_share_client("made-by-ferry").get_share_properties().quota == 5


# ---- server-side copies ----------------------------------------------------------------------


async def test_share_to_share_copy_runs_server_side(
    emulator: RunningEmulator, service: ShareServiceClient
) -> None:
    service.create_share("source")
    service.create_share("target")
    data = os.urandom(9 * MIB)
    source = backend_for(emulator, "source")
    target = backend_for(emulator, "target")
    try:
        await write_file(source, "in/nine mib #1.bin", data)
        url = source.source_url("in/nine mib #1.bin")
        assert url is not None and "sig=" in url
        before = counters(emulator)["operations"].get("PutRange", {}).get("total", 0)

        writer = await target.open_writer("out/copy.bin", size=len(data), props=WriteProps())
        for offset in range(0, len(data), 4 * MIB):
            length = min(4 * MIB, len(data) - offset)
            await writer.write_from_url(offset, url, offset, length)
        await writer.commit(hashlib.md5(data).digest())

        operations = counters(emulator)["operations"]
        copied = await target.read("out/copy.bin", 0, len(data))
        found = await target.stat("out/copy.bin")
    finally:
        await source.close()
        await target.close()
    assert operations["PutRangeFromURL"]["by_status"] == {"201": 3}
    assert operations.get("PutRange", {}).get("total", 0) == before
    assert hashlib.md5(copied).digest() == hashlib.md5(data).digest()
    assert found is not None and found.md5 == hashlib.md5(data).digest()


async def test_a_file_copied_onto_itself_keeps_its_bytes(
    emulator: RunningEmulator, service: ShareServiceClient
) -> None:
    """The engine cannot zero a file it reads from: Create File goes to the hidden staging name,
    so the file being read stays whole until the copy is renamed over it (the same bytes)."""
    service.create_share("itself")
    data = os.urandom(9 * MIB)
    files = backend_for(emulator, "itself")
    try:
        await write_file(files, "d/same.bin", data)
        url = files.source_url("d/same.bin")
        assert url is not None
        writer = await files.open_writer("d/same.bin", size=len(data), props=WriteProps())
        assert await files.read("d/same.bin", 0, len(data)) == data  # untouched by Create File
        for offset in range(0, len(data), 4 * MIB):
            length = min(4 * MIB, len(data) - offset)
            await writer.write_from_url(offset, url, offset, length)
        await writer.commit(hashlib.md5(data).digest())
        assert await files.read("d/same.bin", 0, len(data)) == data
        names = [entry.path async for entry in files.list("", recursive=True)]
    finally:
        await files.close()
    assert names == ["d", "d/same.bin"]
    listed = [item["name"] for item in service.get_share_client("itself").list_directories_and_files("d")]
    assert listed == ["same.bin"], "no staging file is left behind"


@pytest.mark.parametrize("credential", ["sas", "key"])
async def test_source_url_of_a_snapshot_reads_the_snapshot(
    emulator: RunningEmulator, share: ShareClient, credential: str
) -> None:
    share.get_file_client("v #1.txt").upload_file(b"version one")
    snapshot = share.create_snapshot()["snapshot"]
    share.get_file_client("v #1.txt").upload_file(b"version two!")
    account = emulator.account()
    sas = generate_share_sas(
        account.name,
        share.share_name,
        account.key,
        permission=ShareSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    by_credential: dict[str, Any] = {"sas": {"sas": sas}, "key": {}}
    snap = backend_for(emulator, share.share_name, snapshot=snapshot, **by_credential[credential])
    target = backend_for(emulator, share.share_name)
    try:
        url = snap.source_url("v #1.txt")
        description = snap.describe("v #1.txt")
        writer = await target.open_writer("from-snapshot.txt", size=11, props=WriteProps())
        await writer.write_from_url(0, url or "", 0, 11)
        await writer.commit(None)
        copied = await target.read("from-snapshot.txt", 0, 100)
        snap_listing = [item.path for item in await listed(snap)]
    finally:
        await snap.close()
        await target.close()
    assert url is not None and "sharesnapshot=" in url and "sig=" in url
    assert copied == b"version one"
    assert snap_listing == ["v #1.txt"]
    assert "sig=" not in description and "sharesnapshot=" in description


def test_capabilities_follow_the_credential(emulator: RunningEmulator) -> None:
    class FakeTokenCredential:
        async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise AssertionError("no request is made")

    keyed = backend_for(emulator, "share1")
    token = AzureFilesBackend(
        endpoint="https://acct.file.core.windows.net", share="s", token_credential=FakeTokenCredential()
    )
    assert keyed.capabilities.source_url and keyed.capabilities.write_from_url
    assert keyed.capabilities.smb and keyed.capabilities.folders and keyed.capabilities.stored_md5
    assert keyed.capabilities.max_range == 4 * MIB
    assert not token.capabilities.source_url and token.source_url("x") is None
    assert token.describe("a b") == "https://acct.file.core.windows.net/s/a%20b"


async def test_a_sas_given_inside_the_endpoint_is_used_and_never_shown(
    emulator: RunningEmulator, share: ShareClient
) -> None:
    account = emulator.account()
    sas = generate_share_sas(
        account.name,
        share.share_name,
        account.key,
        permission=ShareSasPermissions(read=True, write=True, create=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    backend = AzureFilesBackend(endpoint=f"{emulator.account_url()}?{sas}", share=share.share_name)
    try:
        await write_file(backend, "via-endpoint-sas.txt", b"ok")
        content = await backend.read("via-endpoint-sas.txt", 0, 10)
    finally:
        await backend.close()
    assert content == b"ok"
    assert backend.capabilities.source_url
    assert "sig" not in backend.describe("via-endpoint-sas.txt")


# ---- errors ----------------------------------------------------------------------------------


async def test_wrong_key_and_bad_sas_are_credential_errors_without_secrets(
    emulator: RunningEmulator, share: ShareClient
) -> None:
    wrong_key = base64.b64encode(b"not the key at all" * 3).decode()
    account = emulator.account()
    bad_sas = generate_share_sas(
        account.name,
        share.share_name,
        wrong_key,
        permission=ShareSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    keyed = backend_for(emulator, share.share_name, account_key=wrong_key)
    sassed = backend_for(emulator, share.share_name, sas=bad_sas)
    try:
        with pytest.raises(CredentialError) as by_key:
            await keyed.stat("file.txt")
        with pytest.raises(CredentialError) as by_sas:
            await listed(sassed)
    finally:
        await keyed.close()
        await sassed.close()
    signature = dict(part.split("=", 1) for part in bad_sas.split("&"))["sig"]
    for message in (str(by_key.value), str(by_sas.value)):
        assert "AuthenticationFailed" in message and share.share_name in message
        assert signature not in message and wrong_key not in message


async def test_read_only_sas_cannot_write(emulator: RunningEmulator, share: ShareClient) -> None:
    account = emulator.account()
    sas = generate_share_sas(
        account.name,
        share.share_name,
        account.key,
        permission=ShareSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    backend = backend_for(emulator, share.share_name, sas=sas)
    try:
        with pytest.raises(CredentialError, match="AuthorizationPermissionMismatch") as info:
            await backend.open_writer("nope.txt", size=1, props=WriteProps())
    finally:
        await backend.close()
    assert "nope.txt" in str(info.value)


async def test_a_missing_share_is_not_found(emulator: RunningEmulator) -> None:
    backend = backend_for(emulator, "no-such-share")
    try:
        with pytest.raises(NotFoundError, match="ShareNotFound"):
            await listed(backend)
        with pytest.raises(NotFoundError, match="ShareNotFound"):
            await backend.stat("a.txt")
        with pytest.raises(NotFoundError, match="ShareNotFound"):
            await backend.open_writer("a.txt", size=1, props=WriteProps())
        with pytest.raises(NotFoundError):
            await backend.read("a.txt", 0, 1)
    finally:
        await backend.close()


@pytest.mark.parametrize("retry_after", [0, 2])
async def test_throttled_write_is_retryable_with_retry_after(
    emulator: RunningEmulator, files: AzureFilesBackend, retry_after: int
) -> None:
    writer = await files.open_writer("busy.bin", size=10, props=WriteProps())
    add_fault(emulator, f"busy:PutRange:count=1,retry_after={retry_after}")
    with pytest.raises(TransferError) as info:
        await writer.write(0, b"0123456789")
    await writer.write(0, b"0123456789")  # the engine's retry succeeds
    await writer.commit(None)
    assert info.value.retryable
    assert getattr(info.value, "retry_after", None) == float(retry_after)
    assert "ServerBusy" in str(info.value) and "503" in str(info.value)
    assert await files.read("busy.bin", 0, 10) == b"0123456789"


@pytest.mark.parametrize("spec", ["error:GetFile:count=1", "drop:GetFile:count=1"])
async def test_server_errors_and_dropped_downloads_are_retryable(
    emulator: RunningEmulator, files: AzureFilesBackend, spec: str
) -> None:
    await write_file(files, "flaky.bin", b"z" * 1000)
    add_fault(emulator, spec)
    with pytest.raises(TransferError) as info:
        await files.read("flaky.bin", 0, 1000)
    assert info.value.retryable
    assert await files.read("flaky.bin", 0, 1000) == b"z" * 1000


async def test_unreachable_endpoint_is_retryable() -> None:
    backend = AzureFilesBackend(
        endpoint="http://127.0.0.1:9/devstoreaccount1",
        share="s",
        account_key=base64.b64encode(b"k" * 32).decode(),
    )
    try:
        with pytest.raises(TransferError) as info:
            await backend.stat("x")
    finally:
        await backend.close()
    assert info.value.retryable and getattr(info.value, "retry_after", "unset") is None


async def test_read_gives_stored_bytes_whatever_the_content_encoding(
    files: AzureFilesBackend, share: ShareClient
) -> None:
    packed = gzip.compress(b"plain text " * 100)
    seed(share, "packed.txt", packed, content_settings=ContentSettings(content_encoding="gzip"))
    assert await files.read("packed.txt", 0, len(packed)) == packed
    assert await files.read("packed.txt", 10, 20) == packed[10:30]
