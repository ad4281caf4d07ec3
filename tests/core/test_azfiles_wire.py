"""The lean request path for small Azure files, against the emulator over real HTTP.

What the lean path writes (Create File, Put Range) reads back identically through the SDK, what
it reads (Get File) equals what the SDK's properties say, and what it lists equals the SDK's
listing, with a shared key and with a SAS, for awkward names, pages and share snapshots; faults
(mid-listing too), wrong credentials and missing files map to the contract's errors; and the
Shared Key signer orders headers the way the service does.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.fileshare import ShareClient, ShareSasPermissions, generate_share_sas
from azure.storage.fileshare._shared.authentication import _storage_header_sort
from azure.storage.fileshare.aio import ShareDirectoryClient, ShareFileClient

from shareferry.core.backends import azfiles, listing_retry
from shareferry.core.backends.azfiles import AzureFilesBackend
from shareferry.core.backends.azfiles_wire import FilesWire, SharedKeySigner, service_header_order, wire_for
from shareferry.core.credentials import LazyDefaultAzureCredential
from shareferry.core.errors import CredentialError, NotFoundError, ShareFerryError, TransferError
from shareferry.core.objects import ContentHeaders, SmbInfo, StoredObject, WriteProps
from shareferry.emulator import RunningEmulator
from tests.support.emulator_admin import add_fault, counters

NAMES = [
    "plain.txt",
    "with space.txt",
    "hash#1.txt",
    "per%cent%20.txt",
    "plus+sign.txt",
    "semi;colon (1) & 'q'=x,y!.txt",
    "ünïcødé ☃ 文件.txt",
    "deep/er dir/ü #%+/leaf.txt",
]
CREATED = "2019-02-03T04:05:06.1234567Z"
WRITTEN = "2020-07-08T09:10:11.7654321Z"
CONTENT = ContentHeaders(
    content_type="text/plain; charset=utf-8",
    content_encoding="gzip",
    content_language="en-GB",
    content_disposition='attachment; filename="a b.txt"',
    cache_control="max-age=60",
)
METADATA = {"Project": "ferry", "a_b": "1", "a1": "2", "Zeta": "last"}


def share_sas(emulator: RunningEmulator, share: str) -> str:
    account = emulator.account()
    every = ShareSasPermissions(read=True, create=True, write=True, delete=True, list=True)
    expiry = datetime.now(UTC) + timedelta(hours=1)
    return generate_share_sas(account.name, share, account.key, permission=every, expiry=expiry)


def backend_for(emulator: RunningEmulator, share: str, credential: str, **kwargs: Any) -> AzureFilesBackend:
    account = emulator.account()
    auth: dict[str, Any]
    if credential == "sas":
        auth = {"sas": share_sas(emulator, share)}
    else:
        auth = {"account_name": account.name, "account_key": account.key}
    return AzureFilesBackend(endpoint=emulator.account_url(), share=share, **auth, **kwargs)


@pytest.fixture(params=["shared_key", "sas"])
async def lean(
    request: pytest.FixtureRequest, emulator: RunningEmulator, share: ShareClient
) -> AsyncIterator[AzureFilesBackend]:
    backend = backend_for(emulator, share.share_name, request.param)
    assert backend._wire is not None
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
def no_sdk_for_hot_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail if the SDK is asked for what the lean path does (so the tests prove which path ran)."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the SDK was used for a request the lean path makes")

    for name in (
        "create_file",
        "upload_range",
        "download_file",
        "upload_range_from_url",
        "get_file_properties",
    ):
        monkeypatch.setattr(ShareFileClient, name, refuse)
    yield


def sdk_file(share: ShareClient, path: str) -> Any:
    return share.get_file_client(path)


def raw_headers(share: ShareClient, path: str) -> dict[str, str]:
    found: dict[str, str] = {}

    def hook(response: Any) -> None:
        found.update((k.lower(), v) for k, v in response.http_response.headers.items())

    sdk_file(share, path).get_file_properties(raw_response_hook=hook)
    return found


async def write_small(backend: AzureFilesBackend, path: str, data: bytes, props: WriteProps) -> None:
    writer = await backend.open_writer(path, size=len(data), props=props)
    await writer.write(0, data)
    await writer.commit(props.content_md5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.usefixtures("no_sdk_for_hot_calls")
async def test_lean_writes_read_back_identically_through_the_sdk(
    lean: AzureFilesBackend, share: ShareClient, name: str
) -> None:
    data = f"bytes of {name}".encode() * 100
    md5 = hashlib.md5(data).digest()
    props = WriteProps(
        content=CONTENT,
        metadata=METADATA,
        smb=SmbInfo(creation_time=CREATED, last_write_time=WRITTEN),
        content_md5=md5,
    )
    # Create File and Put Range go to the hidden staging file; the final name appears at commit.
    writer = await lean.open_writer(name, size=len(data), props=props)
    headers = raw_headers(share, writer.staged)  # a Put Range moves the last-write time: read now
    assert (headers["x-ms-file-creation-time"], headers["x-ms-file-last-write-time"]) == (CREATED, WRITTEN)
    await writer.write(0, data)
    assert not sdk_file(share, name).exists()
    await writer.commit(md5)

    assert sdk_file(share, name).download_file(decompress=False).readall() == data
    properties = sdk_file(share, name).get_file_properties()
    settings = properties.content_settings
    assert bytes(settings.content_md5) == md5
    assert (settings.content_type, settings.content_encoding, settings.content_language) == (
        CONTENT.content_type,
        CONTENT.content_encoding,
        CONTENT.content_language,
    )
    assert (settings.content_disposition, settings.cache_control) == (
        CONTENT.content_disposition,
        CONTENT.cache_control,
    )
    assert properties.metadata == METADATA


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.usefixtures("no_sdk_for_hot_calls")
async def test_lean_read_whole_equals_the_sdk_stat(
    lean: AzureFilesBackend, share: ShareClient, name: str
) -> None:
    data = b"0123456789" * 1000
    props = WriteProps(content=CONTENT, metadata=METADATA, content_md5=hashlib.md5(data).digest())
    await write_small(lean, name, data, props)

    got, stored = await lean.read_whole(name, len(data))
    stat = await lean.stat(name)  # the SDK's HEAD
    assert got == data
    assert stored == stat
    assert stored.metadata == METADATA and stored.md5 == props.content_md5
    assert stored.content is not None and stored.content.content_type == CONTENT.content_type


async def sdk_only(
    emulator: RunningEmulator, share: ShareClient, credential: str, **kwargs: Any
) -> AzureFilesBackend:
    """A backend on the same share that sends everything through the SDK."""
    backend = backend_for(emulator, share.share_name, credential, **kwargs)
    assert backend._wire is not None
    await backend._wire.close()
    backend._wire = None
    return backend


@pytest.mark.parametrize("name", NAMES)
async def test_lean_stat_equals_the_sdk_stat(
    lean: AzureFilesBackend, emulator: RunningEmulator, share: ShareClient, name: str
) -> None:
    data = b"stat me" * 300
    props = WriteProps(
        content=CONTENT,
        metadata=METADATA,
        smb=SmbInfo(attributes="ReadOnly | Archive", creation_time=CREATED, last_write_time=WRITTEN),
        content_md5=hashlib.md5(data).digest(),
    )
    await write_small(lean, f"dir/{name}", data, props)
    sdk = await sdk_only(emulator, share, "shared_key")
    try:
        lean_stat, sdk_stat = await lean.stat(f"dir/{name}"), await sdk.stat(f"dir/{name}")
        assert lean_stat == sdk_stat
        assert lean_stat is not None and lean_stat.size == len(data) and lean_stat.md5 == props.content_md5
        assert lean_stat.smb is not None and lean_stat.smb.last_write_time == WRITTEN
        # A directory, and nothing at all, are answered as through the SDK.
        assert await lean.stat("dir") == await sdk.stat("dir")
        assert await lean.stat("dir/none") is None
    finally:
        await sdk.close()


@pytest.mark.usefixtures("no_sdk_for_hot_calls")
async def test_lean_put_range_from_url_copies_server_side(
    lean: AzureFilesBackend, emulator: RunningEmulator, share: ShareClient
) -> None:
    data = bytes(range(256)) * 40_000  # about 10 MiB: three ranges of at most 4 MiB
    share.get_file_client("from.bin").upload_file(data)
    source = backend_for(emulator, share.share_name, "shared_key")
    try:
        url = source.source_url("from.bin")
        assert url is not None
        before = counters(emulator)["operations"]
        writer = await lean.open_writer("to.bin", size=len(data), props=WriteProps())
        step = 4 * 1024 * 1024
        for offset in range(0, len(data), step):
            await writer.write_from_url(offset, url, offset, min(step, len(data) - offset))
        await writer.commit(None)
        after = counters(emulator)["operations"]
    finally:
        await source.close()
    assert sdk_file(share, "to.bin").download_file().readall() == data
    sent = after["PutRangeFromURL"]["total"] - before.get("PutRangeFromURL", {}).get("total", 0)
    assert sent == 3
    assert after.get("PutRange", {}).get("total", 0) == before.get("PutRange", {}).get("total", 0)


async def test_lean_read_whole_of_a_grown_file_reports_its_real_size(lean: AzureFilesBackend) -> None:
    await write_small(lean, "grew.bin", b"x" * 300, WriteProps())
    data, stored = await lean.read_whole("grew.bin", 100)
    assert (len(data), stored.size) == (100, 300)


async def test_lean_read_whole_of_a_now_empty_file_fails_as_through_the_sdk(
    lean: AzureFilesBackend, share: ShareClient
) -> None:
    sdk_file(share, "empty.bin").create_file(0)
    with pytest.raises(TransferError, match=r"InvalidRange \(HTTP 416\)") as info:
        await lean.read_whole("empty.bin", 10)  # the listing saw 10 bytes
    assert not info.value.retryable


async def test_parents_are_created_when_the_lean_create_finds_none(
    lean: AzureFilesBackend, share: ShareClient
) -> None:
    await write_small(lean, "a/b c/d.txt", b"deep", WriteProps())
    assert sdk_file(share, "a/b c/d.txt").download_file().readall() == b"deep"


async def test_smb_attributes_still_set_at_commit(lean: AzureFilesBackend, share: ShareClient) -> None:
    smb = SmbInfo(attributes="ReadOnly | Archive", creation_time=CREATED, last_write_time=WRITTEN)
    await write_small(lean, "attrs.txt", b"abc", WriteProps(smb=smb))
    headers = raw_headers(share, "attrs.txt")
    assert {part.strip() for part in headers["x-ms-file-attributes"].split("|")} == {"ReadOnly", "Archive"}
    assert (headers["x-ms-file-creation-time"], headers["x-ms-file-last-write-time"]) == (CREATED, WRITTEN)


async def test_lean_reads_a_share_snapshot(emulator: RunningEmulator, share: ShareClient) -> None:
    sdk_file(share, "snap.txt").upload_file(b"before")
    snapshot = share.create_snapshot()["snapshot"]
    sdk_file(share, "snap.txt").upload_file(b"after!")
    for credential in ("shared_key", "sas"):
        backend = backend_for(emulator, share.share_name, credential, snapshot=snapshot)
        data, _stored = await backend.read_whole("snap.txt", 6)
        assert data == b"before"
        with pytest.raises(ShareFerryError):  # a snapshot is read-only, through either path
            await backend.open_writer("snap.txt", size=1, props=WriteProps())
        await backend.close()
    assert sdk_file(share, "snap.txt").download_file().readall() == b"after!"


# ---- listings -----------------------------------------------------------------------------------

#: Files of a tree that is hard to list: awkward names (one the service must percent-encode in
#: its XML, marked Encoded="true"), trailing dots, names sorting around "/" and nested directories.
TREE_FILES = [
    *NAMES,
    "a b.txt",
    "a-b.txt",
    "a/inner.txt",
    "dots./end.",
    "not\uffffxml.txt",
    "deep/er dir/second.txt",
]
TREE_DIRS = ["empty", "deep/empty inner", "deep/er dir/ü #%+/deeper"]


async def build_tree(backend: AzureFilesBackend) -> None:
    for directory in TREE_DIRS:
        await backend.make_dir(directory)
    smb = SmbInfo(attributes="ReadOnly | Archive", creation_time=CREATED, last_write_time=WRITTEN)
    for index, name in enumerate(TREE_FILES):
        await write_small(backend, name, b"x" * index, WriteProps(smb=smb if index % 2 else None))


async def listed(backend: AzureFilesBackend, path: str = "", *, recursive: bool = True) -> list[StoredObject]:
    return [obj async for obj in backend.list(path, recursive=recursive)]


def _refuse_listing(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("the SDK was asked for a listing the lean path makes")


@pytest.fixture
def no_sdk_listing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail if the SDK is asked for a listing (so the tests prove the lean path listed)."""
    monkeypatch.setattr(ShareDirectoryClient, "list_directories_and_files", _refuse_listing)
    yield


def list_requests(emulator: RunningEmulator) -> dict[str, int]:
    found = counters(emulator)["operations"].get("ListDirectory", {"total": 0, "by_status": {}})
    return {"total": found["total"], **found["by_status"]}


@pytest.mark.parametrize("page_size", [2, azfiles.LISTING_PAGE_SIZE])
async def test_lean_listing_equals_the_sdks(
    lean: AzureFilesBackend,
    emulator: RunningEmulator,
    share: ShareClient,
    monkeypatch: pytest.MonkeyPatch,
    page_size: int,
) -> None:
    monkeypatch.setattr(azfiles, "LISTING_PAGE_SIZE", page_size)
    await build_tree(lean)
    sdk = await sdk_only(emulator, share, "shared_key")
    calls = [("", True), ("", False), ("deep", True), ("deep/er dir", False), ("empty", True)]
    try:
        expected = [await listed(sdk, path, recursive=recursive) for path, recursive in calls]
        before = list_requests(emulator)["total"]
        with monkeypatch.context() as patched:
            patched.setattr(ShareDirectoryClient, "list_directories_and_files", _refuse_listing)
            got = [await listed(lean, path, recursive=recursive) for path, recursive in calls]
            sent = list_requests(emulator)["total"] - before
    finally:
        await sdk.close()
    assert got == expected
    everything = got[0]
    assert {obj.path for obj in everything if not obj.is_dir} == set(TREE_FILES)
    assert {obj.path for obj in everything if obj.is_dir} >= set(TREE_DIRS)
    assert len(everything) == len({obj.path for obj in everything})
    dotted = {obj.path: obj for obj in everything}["dots./end."]
    assert dotted.size == TREE_FILES.index("dots./end.") and dotted.smb is not None
    assert (dotted.smb.creation_time, dotted.smb.last_write_time) == (CREATED, WRITTEN)
    assert got[4] == []
    # One request per directory listed (each call's own, and those below it when recursive)...
    listed_directories = sum(
        1 + (sum(obj.is_dir for obj in result) if recursive else 0)
        for (_path, recursive), result in zip(calls, got, strict=True)
    )
    if page_size == 2:  # ... and more where a directory took more than one page
        assert sent > listed_directories
    else:
        assert sent == listed_directories


async def test_lean_listing_of_a_root_below_the_share_and_of_a_snapshot(
    emulator: RunningEmulator, share: ShareClient
) -> None:
    writer = backend_for(emulator, share.share_name, "shared_key")
    try:
        await build_tree(writer)
        before = await listed(writer)
        snapshot = share.create_snapshot()["snapshot"]
        await writer.delete("a b.txt")
        await write_small(writer, "after the snapshot.txt", b"new", WriteProps())
    finally:
        await writer.close()
    for credential in ("shared_key", "sas"):
        lean = backend_for(emulator, share.share_name, credential, snapshot=snapshot)
        rooted = backend_for(emulator, share.share_name, credential, root="deep/er dir")
        sdk = await sdk_only(emulator, share, credential, snapshot=snapshot)
        sdk_rooted = await sdk_only(emulator, share, credential, root="deep/er dir")
        try:
            assert await listed(lean) == await listed(sdk) == before
            assert await listed(rooted) == await listed(sdk_rooted)
            assert [obj.path for obj in await listed(rooted)] == [
                "second.txt",
                "ü #%+",
                "ü #%+/deeper",
                "ü #%+/leaf.txt",
            ]
        finally:
            for backend in (lean, rooted, sdk, sdk_rooted):
                await backend.close()


@pytest.mark.parametrize(
    "spec",
    ["busy:ListDirectory:count=1,retry_after=0", "error:ListDirectory:count=1", "drop:ListDirectory:count=1"],
)
@pytest.mark.usefixtures("no_sdk_listing")
async def test_a_fault_on_a_later_page_lists_the_directory_again_whole(
    lean: AzureFilesBackend,
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    spec: str,
) -> None:
    names = [f"file {index:02d}.txt" for index in range(7)]
    for name in names:
        await write_small(lean, name, name.encode(), WriteProps())
    monkeypatch.setattr(azfiles, "LISTING_PAGE_SIZE", 3)
    monkeypatch.setattr(listing_retry, "FIRST_PAUSE", 0.01)
    pages = FilesWire.list_directory
    calls = 0

    async def fault_after_the_first_page(self: FilesWire, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second page's request meets the fault
            add_fault(emulator, spec)
        return await pages(self, *args, **kwargs)

    monkeypatch.setattr(FilesWire, "list_directory", fault_after_the_first_page)
    got = await listed(lean)
    assert [(obj.path, obj.size) for obj in got] == [(name, len(name)) for name in names]
    # Three pages, the second failed once, then the directory again from its first page.
    assert calls == 2 + 3
    assert list_requests(emulator)["total"] == (4 if spec.startswith("drop") else 5)


@pytest.mark.usefixtures("no_sdk_listing")
async def test_a_listing_that_keeps_failing_is_a_retryable_error_without_secrets(
    emulator: RunningEmulator, share: ShareClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = backend_for(emulator, share.share_name, "sas")
    await write_small(backend, "dir/f.txt", b"x", WriteProps())
    monkeypatch.setattr(listing_retry, "FIRST_PAUSE", 0.01)
    add_fault(emulator, "busy:ListDirectory:retry_after=0")
    try:
        with pytest.raises(TransferError) as info:
            await listed(backend, "dir")
    finally:
        await backend.close()
    assert info.value.retryable
    assert str(info.value).startswith(f"list {emulator.account_url()}/{share.share_name}/dir: ")
    assert "ServerBusy (HTTP 503)" in str(info.value) and "sig=" not in str(info.value)
    assert list_requests(emulator) == {
        "total": listing_retry.LIST_ATTEMPTS,
        "503": listing_retry.LIST_ATTEMPTS,
    }


@pytest.mark.usefixtures("no_sdk_listing")
async def test_listing_what_is_missing_or_refused(emulator: RunningEmulator, lean: AzureFilesBackend) -> None:
    await write_small(lean, "file.txt", b"x", WriteProps())
    with pytest.raises(NotFoundError, match="no such directory"):
        await listed(lean, "nowhere")
    with pytest.raises(NotFoundError):
        await listed(lean, "file.txt")
    other = backend_for(emulator, "no-such-share", "shared_key")
    wrong = AzureFilesBackend(
        endpoint=emulator.account_url(),
        share=lean.share,
        account_name="devstoreaccount1",
        account_key=base64.b64encode(b"not the key" * 3).decode(),
    )
    try:
        with pytest.raises(NotFoundError, match="ShareNotFound"):
            await listed(other)
        with pytest.raises(CredentialError):
            await listed(wrong)
    finally:
        await other.close()
        await wrong.close()


# ---- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "retry_after"),
    [
        ("busy:CreateFile:count=1,retry_after=3", 3.0),
        ("busy:PutRange:count=1,retry_after=0", 0.0),
        ("busy:GetFile:count=1,retry_after=2", 2.0),
        ("error:CreateFile:count=1", None),
        ("error:PutRange:count=1", None),
        ("error:GetFile:count=1", None),
        # aiohttp resends a PUT once by itself when the connection drops: the second drop shows.
        ("drop:CreateFile:count=2", None),
        ("drop:PutRange:count=2", None),
        ("drop:GetFile:count=1", None),
    ],
)
async def test_faults_are_retryable_transfer_errors(
    emulator: RunningEmulator,
    lean: AzureFilesBackend,
    share: ShareClient,
    spec: str,
    retry_after: float | None,
) -> None:
    sdk_file(share, "f.bin").upload_file(b"z" * 4096)
    add_fault(emulator, spec)

    async def operation() -> None:
        if "GetFile" in spec:
            await lean.read_whole("f.bin", 4096)
            return
        writer = await lean.open_writer("f.bin", size=4096, props=WriteProps())
        await writer.write(0, b"y" * 4096)

    with pytest.raises(TransferError) as info:
        await operation()
    assert info.value.retryable
    assert info.value.retry_after == retry_after
    assert "sig=" not in str(info.value) and "f.bin" in str(info.value)
    await operation()  # the fault fired once: the retry goes through


async def test_a_wrong_key_is_a_credential_error(emulator: RunningEmulator, share: ShareClient) -> None:
    wrong = base64.b64encode(b"not the key" * 3).decode()
    backend = AzureFilesBackend(
        endpoint=emulator.account_url(),
        share=share.share_name,
        account_name="devstoreaccount1",
        account_key=wrong,
    )
    sdk_file(share, "f.bin").upload_file(b"data")
    try:
        with pytest.raises(CredentialError):
            await backend.open_writer("new.bin", size=1, props=WriteProps())
        with pytest.raises(CredentialError):
            await backend.read_whole("f.bin", 4)
    finally:
        await backend.close()
    assert counters(emulator)["operations"]["CreateFile"]["by_status"].get("403") == 1


async def test_a_tampered_sas_is_a_credential_error(emulator: RunningEmulator, share: ShareClient) -> None:
    sas = share_sas(emulator, share.share_name).replace("sig=", "sig=AAAA")
    backend = AzureFilesBackend(endpoint=emulator.account_url(), share=share.share_name, sas=sas)
    try:
        with pytest.raises(CredentialError) as info:
            await backend.open_writer("new.bin", size=1, props=WriteProps())
    finally:
        await backend.close()
    assert "AAAA" not in str(info.value)


async def test_missing_files_and_shares_are_not_found(
    emulator: RunningEmulator, lean: AzureFilesBackend
) -> None:
    with pytest.raises(NotFoundError):
        await lean.read_whole("nothing.bin", 10)
    other = backend_for(emulator, "no-such-share", "shared_key")
    try:
        with pytest.raises(NotFoundError):
            await other.open_writer("x.bin", size=1, props=WriteProps())
    finally:
        await other.close()


# ---- which credentials, and the signer -----------------------------------------------------------


def test_only_sas_and_shared_key_take_the_lean_path() -> None:
    common: dict[str, Any] = {
        "endpoint": "https://acct.file.core.windows.net",
        "share": "s",
        "snapshot": None,
        "account_name": "acct",
        "api_version": "2026-10-06",
        "connection_timeout": 30,
    }
    assert wire_for(**common, sas=None, account_key=None) is None
    assert isinstance(wire_for(**common, sas="sv=x&sig=y", account_key=None), FilesWire)
    key = base64.b64encode(b"k" * 32).decode()
    assert isinstance(wire_for(**common, sas=None, account_key=key), FilesWire)
    backend = AzureFilesBackend(
        endpoint="https://acct.file.core.windows.net",
        share="s",
        token_credential=LazyDefaultAzureCredential(),
    )
    assert backend._wire is None


def test_header_order_is_the_services() -> None:
    names = [
        "x-ms-version",
        "x-ms-date",
        "x-ms-meta-a_b",
        "x-ms-meta-a1",
        "x-ms-meta-ab",
        "x-ms-meta-a",
        "x-ms-meta-zeta",
        "x-ms-content-md5",
        "x-ms-content-length",
        "x-ms-content-type",
        "x-ms-file-permission",
        "x-ms-file-permission-key",
        "x-ms-file-creation-time",
        "x-ms-file-last-write-time",
        "x-ms-allow-trailing-dot",
        "x-ms-client-request-id",
        "x-ms-type",
        "x-ms-range",
        "x-ms-write",
        "x-ms-meta-_x",
        "x-ms-meta-9",
    ]
    expected = [name for name, _ in _storage_header_sort([(name, "") for name in names])]
    assert sorted(names, key=service_header_order) == expected


def test_string_to_sign_follows_the_documented_layout() -> None:
    signer = SharedKeySigner("acct", base64.b64encode(b"k" * 32).decode())
    text = signer.string_to_sign(
        "PUT",
        "/share/dir%20a/f.txt",
        {"comp": "range"},
        {
            "Content-Length": "5",
            "Content-Type": "application/octet-stream",
            "x-ms-version": "2026-10-06",
            "x-ms-range": "bytes=0-4",
            "x-ms-date": "Sat, 01 Jan 2022 00:00:00 GMT",
        },
    )
    assert text == (
        "PUT\n\n\n5\n\napplication/octet-stream\n\n\n\n\n\n\n"
        "x-ms-date:Sat, 01 Jan 2022 00:00:00 GMT\nx-ms-range:bytes=0-4\nx-ms-version:2026-10-06\n"
        "/acct/share/dir%20a/f.txt\ncomp:range"
    )
    assert signer.string_to_sign("PUT", "/s/f", {}, {"Content-Length": "0"}).split("\n")[3] == ""
