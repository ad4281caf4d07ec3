"""The lean range read and listing for blobs, against Azurite over real HTTP.

What the lean path reads equals what the SDK downloads for the same range, and what it lists
equals the SDK's listing, with a shared key and with a SAS, for awkward names, folder markers,
pages, snapshots and a root below the container; bytes stay as stored; a range past the end is
empty; a listing page that fails is asked for again from its marker; wrong credentials, missing
blobs and refused connections map to the contract's errors; token credentials keep the SDK. The
SDK's download and listing are patched to fail wherever the lean path must have run.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from aiohttp import web
from azure.storage.blob import (
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    ContentSettings,
    generate_container_sas,
)
from azure.storage.blob.aio import BlobClient
from azure.storage.blob.aio import ContainerClient as AsyncContainerClient

from shareferry.core.backends import azblob, listing_retry
from shareferry.core.backends.azblob import AzureBlobBackend
from shareferry.core.backends.azblob_wire import BlobWire, blob_wire_for
from shareferry.core.credentials import LazyDefaultAzureCredential
from shareferry.core.errors import CredentialError, NotFoundError, TransferError
from shareferry.core.objects import StoredObject
from tests.support.azurite import AzuriteInfo, run_azurite
from tests.support.fault_proxy import fault_proxy

pytestmark = pytest.mark.azurite

NAMES = [
    "plain.txt",
    "with space.txt",
    "hash#1.txt",
    "per%cent%20.txt",
    "plus+sign.txt",
    "tilde~and=eq&amp;semi;colon (1) 'q',y!.txt",
    "ünïcødé ☃ 文件.txt",
    "deep/er dir/ü #%+/leaf.txt",
]


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteInfo]:
    with run_azurite(tmp_path_factory.mktemp("azurite")) as info:
        yield info


@pytest.fixture
def container(azurite: AzuriteInfo) -> ContainerClient:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return service.create_container(f"c{uuid.uuid4().hex}")


def container_sas(azurite: AzuriteInfo, container: str) -> str:
    return generate_container_sas(
        azurite.account,
        container,
        account_key=azurite.key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def backend_for(azurite: AzuriteInfo, container: str, credential: str, **kwargs: Any) -> AzureBlobBackend:
    auth: dict[str, Any]
    if credential == "sas":
        auth = {"sas": container_sas(azurite, container)}
    else:
        auth = {"account_name": azurite.account, "account_key": azurite.key}
    return AzureBlobBackend(endpoint=azurite.endpoint, container=container, **auth, **kwargs)


@pytest.fixture(params=["shared_key", "sas"])
async def lean(
    request: pytest.FixtureRequest, azurite: AzuriteInfo, container: ContainerClient
) -> AsyncIterator[AzureBlobBackend]:
    backend = backend_for(azurite, container.container_name, request.param)
    assert backend._wire is not None
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
def no_sdk_download(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail if the SDK is asked to download (so the tests prove the lean path ran)."""

    monkeypatch.setattr(BlobClient, "download_blob", _refuse)
    yield


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("the SDK was used for a range read the lean path makes")


async def sdk_only(azurite: AzuriteInfo, container: str, credential: str, **kwargs: Any) -> AzureBlobBackend:
    """A backend on the same container that reads and lists through the SDK."""
    backend = backend_for(azurite, container, credential, **kwargs)
    assert backend._wire is not None
    await backend._wire.close()
    backend._wire = None
    return backend


@pytest.mark.parametrize("name", NAMES)
async def test_lean_range_reads_equal_the_sdks(
    lean: AzureBlobBackend,
    azurite: AzuriteInfo,
    container: ContainerClient,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    data = os.urandom(50_000)
    container.get_blob_client(name).upload_blob(data)
    ranges = [(0, len(data)), (0, 1), (123, 4567), (49_990, 100), (0, 10 * len(data))]
    sdk = await sdk_only(azurite, container.container_name, "shared_key")
    try:
        expected = [await sdk.read(name, offset, length) for offset, length in ranges]
    finally:
        await sdk.close()
    with monkeypatch.context() as patched:
        patched.setattr(BlobClient, "download_blob", _refuse)
        got = [await lean.read(name, offset, length) for offset, length in ranges]
    assert got == expected
    assert got[0] == data and got[2] == data[123 : 123 + 4567] and got[3] == data[49_990:]


@pytest.mark.parametrize("name", NAMES)
async def test_read_whole_gives_the_bytes_and_what_stat_gives(
    lean: AzureBlobBackend, container: ContainerClient, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    data = os.urandom(30_000)
    settings = ContentSettings(
        content_type="text/csv",
        content_encoding="identity",
        content_language="de-CH",
        content_disposition='attachment; filename="x y.csv"',
        cache_control="no-cache",
        content_md5=bytearray(hashlib.md5(data).digest()),
    )
    container.get_blob_client(name).upload_blob(
        data, content_settings=settings, metadata={"Owner": "ferry", "k": ""}
    )
    expected = await lean.stat(name)  # Get Blob Properties, through the SDK
    with monkeypatch.context() as patched:
        patched.setattr(BlobClient, "download_blob", _refuse)
        patched.setattr(BlobClient, "get_blob_properties", _refuse)
        got, props = await lean.read_whole(name, len(data))
    assert got == data
    assert props == expected
    assert props.md5 == hashlib.md5(data).digest() and props.metadata == {"Owner": "ferry", "k": ""}


async def test_read_whole_of_a_blob_without_headers_or_empty_since_listed(
    lean: AzureBlobBackend, container: ContainerClient
) -> None:
    container.get_blob_client("plain.bin").upload_blob(b"abc", content_settings=ContentSettings())
    data, props = await lean.read_whole("plain.bin", 3)
    assert data == b"abc" and props == await lean.stat("plain.bin")
    container.get_blob_client("shrunk.bin").upload_blob(b"")
    data, props = await lean.read_whole("shrunk.bin", 10)  # listed at 10 bytes, empty since
    assert (data, props.size) == (b"", 0)
    with pytest.raises(NotFoundError):
        await lean.read_whole("missing.bin", 10)


@pytest.mark.usefixtures("no_sdk_download")
async def test_stored_bytes_are_never_decompressed(
    lean: AzureBlobBackend, container: ContainerClient
) -> None:
    packed = gzip.compress(b"hello " * 1000)
    settings = ContentSettings(content_type="text/plain", content_encoding="gzip")
    container.get_blob_client("z.txt").upload_blob(packed, content_settings=settings)
    assert await lean.read("z.txt", 0, len(packed)) == packed


@pytest.mark.usefixtures("no_sdk_download")
async def test_a_range_past_the_end_is_empty(lean: AzureBlobBackend, container: ContainerClient) -> None:
    container.get_blob_client("short.bin").upload_blob(b"0123456789")
    assert await lean.read("short.bin", 10, 5) == b""
    assert await lean.read("short.bin", 1000, 5) == b""
    assert await lean.read("short.bin", 8, 5) == b"89"
    container.get_blob_client("empty.bin").upload_blob(b"")
    assert await lean.read("empty.bin", 0, 5) == b""


@pytest.mark.usefixtures("no_sdk_download")
async def test_a_root_below_the_container_and_a_snapshot_are_read(
    azurite: AzuriteInfo, container: ContainerClient
) -> None:
    blob = container.get_blob_client("sub dir/ü.txt")
    blob.upload_blob(b"before")
    snapshot = blob.create_snapshot()["snapshot"]
    blob.upload_blob(b"after!", overwrite=True)
    for credential in ("shared_key", "sas"):
        backend = backend_for(azurite, container.container_name, credential, root="sub dir")
        try:
            assert await backend.read("ü.txt", 0, 6) == b"after!"
        finally:
            await backend.close()
    # Shared key only: Azurite refuses a container SAS for snapshots (through the SDK too).
    snap = backend_for(azurite, container.container_name, "shared_key", snapshot=snapshot)
    try:
        assert await snap.read("sub dir/ü.txt", 0, 6) == b"before"
    finally:
        await snap.close()


@pytest.mark.usefixtures("no_sdk_download")
async def test_missing_blobs_and_containers_are_not_found(
    lean: AzureBlobBackend, azurite: AzuriteInfo
) -> None:
    with pytest.raises(NotFoundError, match="BlobNotFound"):
        await lean.read("nothing.bin", 0, 10)
    other = backend_for(azurite, "no-such-container", "shared_key")
    try:
        with pytest.raises(NotFoundError, match="ContainerNotFound"):
            await other.read("x.bin", 0, 10)
    finally:
        await other.close()


@pytest.mark.usefixtures("no_sdk_download")
async def test_a_wrong_key_is_a_credential_error(azurite: AzuriteInfo, container: ContainerClient) -> None:
    container.get_blob_client("f.bin").upload_blob(b"data")
    wrong = base64.b64encode(b"not the key" * 3).decode()
    backend = AzureBlobBackend(
        endpoint=azurite.endpoint,
        container=container.container_name,
        account_name=azurite.account,
        account_key=wrong,
    )
    try:
        assert backend._wire is not None
        with pytest.raises(CredentialError):
            await backend.read("f.bin", 0, 4)
    finally:
        await backend.close()


@pytest.mark.usefixtures("no_sdk_download")
async def test_a_tampered_sas_is_a_credential_error(azurite: AzuriteInfo, container: ContainerClient) -> None:
    container.get_blob_client("f.bin").upload_blob(b"data")
    sas = container_sas(azurite, container.container_name).replace("sig=", "sig=AAAA")
    backend = AzureBlobBackend(endpoint=azurite.endpoint, container=container.container_name, sas=sas)
    try:
        with pytest.raises(CredentialError) as info:
            await backend.read("f.bin", 0, 4)
    finally:
        await backend.close()
    assert "AAAA" not in str(info.value) and "f.bin" in str(info.value)


@pytest.mark.usefixtures("no_sdk_download")
async def test_a_refused_connection_is_a_retryable_transfer_error(azurite: AzuriteInfo) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = AzureBlobBackend(
        endpoint=f"http://127.0.0.1:{port}/{azurite.account}",
        container="c",
        account_name=azurite.account,
        account_key=azurite.key,
    )
    try:
        with pytest.raises(TransferError) as info:
            await backend.read("f.bin", 0, 4)
    finally:
        await backend.close()
    assert info.value.retryable


# -- listings ---------------------------------------------------------------------------------

#: Blobs that are hard to list: awkward names, names sorting around "/" (the service lists "a b"
#: and "a-b" before "a/", tree order puts directory "a" first), trailing dots, a folder marker
#: with blobs below it, an empty blob, and one with every content header and metadata.
TREE = [*NAMES, "a b.txt", "a-b.txt", "a/x.txt", "a/y/z.txt", "dots./end.", "marker/inside.txt", "empty.bin"]


def build_tree(container: ContainerClient) -> None:
    for index, name in enumerate(TREE):
        data = b"" if name == "empty.bin" else name.encode() * (index + 1)
        container.get_blob_client(name).upload_blob(
            data, metadata={"index": str(index)} if index % 2 else None
        )
    container.get_blob_client("marker").upload_blob(b"", metadata={"hdi_isfolder": "true", "Owner": "ops"})
    settings = ContentSettings(
        content_type="text/plain; charset=utf-8",
        content_encoding="gzip",
        content_language="en-GB",
        content_disposition='attachment; filename="a b.txt"',
        cache_control="max-age=60",
        content_md5=bytearray(hashlib.md5(b"h").digest()),
    )
    container.get_blob_client("headers.txt").upload_blob(
        b"h", content_settings=settings, metadata={"a_b": "1"}
    )


async def listed(backend: AzureBlobBackend, path: str = "", *, recursive: bool = True) -> list[StoredObject]:
    return [obj async for obj in backend.list(path, recursive=recursive)]


def _refuse_listing(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("the SDK was asked for a listing the lean path makes")


@pytest.mark.parametrize("page_size", [2, None])
async def test_lean_listing_equals_the_sdks(
    lean: AzureBlobBackend,
    azurite: AzuriteInfo,
    container: ContainerClient,
    monkeypatch: pytest.MonkeyPatch,
    page_size: int | None,
) -> None:
    monkeypatch.setattr(azblob, "LISTING_PAGE_SIZE", page_size)
    build_tree(container)
    calls = [("", True), ("", False), ("deep", True), ("deep/er dir", False), ("marker", True)]
    sdk = await sdk_only(azurite, container.container_name, "shared_key")
    try:
        expected = [await listed(sdk, path, recursive=recursive) for path, recursive in calls]
    finally:
        await sdk.close()
    with monkeypatch.context() as patched:
        patched.setattr(AsyncContainerClient, "walk_blobs", _refuse_listing)
        got = [await listed(lean, path, recursive=recursive) for path, recursive in calls]
    assert got == expected
    by_path = {obj.path: obj for obj in got[0]}
    assert {path for path, obj in by_path.items() if not obj.is_dir} == {*TREE, "headers.txt"}
    assert by_path["marker"].is_dir and not by_path["marker"].metadata  # the prefix, as the SDK gives
    headers = by_path["headers.txt"]
    assert headers.md5 == hashlib.md5(b"h").digest() and headers.metadata == {"a_b": "1"}
    assert (
        headers.content is not None
        and headers.content.content_disposition == 'attachment; filename="a b.txt"'
    )
    assert [obj.path for obj in got[4]] == ["marker/inside.txt"]


@pytest.mark.usefixtures("no_sdk_download")
async def test_an_empty_metadata_value_is_listed_as_stat_gives_it(
    lean: AzureBlobBackend, container: ContainerClient
) -> None:
    # (The SDK's listing gives None for an empty value; the lean listing gives the "" of stat.)
    container.get_blob_client("f.txt").upload_blob(b"f", metadata={"empty": "", "full": "yes"})
    listed_file, stat = (await listed(lean))[0], await lean.stat("f.txt")
    assert stat is not None and listed_file.metadata == stat.metadata == {"empty": "", "full": "yes"}


async def test_lean_listing_of_a_root_below_the_container_and_of_a_snapshot(
    azurite: AzuriteInfo, container: ContainerClient
) -> None:
    build_tree(container)
    blob = container.get_blob_client("deep/er dir/ü #%+/leaf.txt")
    snapshot = blob.create_snapshot()["snapshot"]
    blob.upload_blob(b"changed", overwrite=True)
    container.get_blob_client("deep/er dir/new.txt").upload_blob(b"new")
    # Shared key only for the snapshot: Azurite refuses a container SAS for snapshots.
    cases = [
        ("shared_key", {"snapshot": snapshot}),
        ("shared_key", {"root": "deep"}),
        ("sas", {"root": "deep"}),
    ]
    for credential, options in cases:
        lean = backend_for(azurite, container.container_name, credential, **options)
        sdk = await sdk_only(azurite, container.container_name, credential, **options)
        try:
            got, expected = await listed(lean), await listed(sdk)
        finally:
            await lean.close()
            await sdk.close()
        assert got == expected, options
        if "snapshot" in options:  # only the blob that has the snapshot, as it was
            name = "deep/er dir/ü #%+/leaf.txt"
            files = [(obj.path, obj.size) for obj in got if not obj.is_dir]
            assert files == [(name, len(name.encode()) * (TREE.index(name) + 1))]
        else:
            assert [obj.path for obj in got] == [
                "er dir",
                "er dir/new.txt",
                "er dir/ü #%+",
                "er dir/ü #%+/leaf.txt",
            ]


async def test_a_failed_page_is_asked_for_again_from_its_marker(
    azurite: AzuriteInfo, container: ContainerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"file {index:02d}.txt" for index in range(7)]
    for name in names:
        container.get_blob_client(name).upload_blob(name.encode())
    monkeypatch.setattr(azblob, "LISTING_PAGE_SIZE", 3)
    monkeypatch.setattr(listing_retry, "FIRST_PAUSE", 0.01)
    upstream = urlsplit(azurite.endpoint)
    async with fault_proxy(f"http://{upstream.netloc}", busy_listings={2, 3}) as proxy:
        for credential in ("shared_key", "sas"):
            proxy.listing_markers.clear()
            auth = (
                {"sas": container_sas(azurite, container.container_name)}
                if credential == "sas"
                else {"account_key": azurite.key}
            )
            backend = AzureBlobBackend(
                endpoint=proxy.url + upstream.path, container=container.container_name, **auth
            )
            try:
                with monkeypatch.context() as patched:
                    patched.setattr(AsyncContainerClient, "walk_blobs", _refuse_listing)
                    got = await listed(backend)
            finally:
                await backend.close()
            assert [(obj.path, obj.size) for obj in got] == [(name, len(name)) for name in names]
            first, second, *rest = proxy.listing_markers
            # The second page failed twice and was asked for again from the same marker, never
            # from the start; then the third page.
            assert first is None and second is not None
            assert rest[:2] == [second, second] and len(rest) == 3 and rest[2] not in (None, second)


async def test_a_listing_that_keeps_failing_is_a_retryable_error_without_secrets(
    azurite: AzuriteInfo, container: ContainerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    container.get_blob_client("dir/f.txt").upload_blob(b"x")
    monkeypatch.setattr(listing_retry, "FIRST_PAUSE", 0.01)
    upstream = urlsplit(azurite.endpoint)
    sas = container_sas(azurite, container.container_name)
    every = range(1, listing_retry.LIST_ATTEMPTS + 2)
    async with fault_proxy(f"http://{upstream.netloc}", busy_listings=every) as proxy:
        endpoint = proxy.url + upstream.path
        backend = AzureBlobBackend(endpoint=endpoint, container=container.container_name, sas=sas)
        try:
            with pytest.raises(TransferError) as info:
                await listed(backend, "dir")
        finally:
            await backend.close()
    assert info.value.retryable
    assert str(info.value).startswith(f"list {endpoint}/{container.container_name}/dir: 503 ServerBusy")
    assert "sig=" not in str(info.value)
    assert proxy.listing_markers == [None] * listing_retry.LIST_ATTEMPTS


async def test_encoded_names_in_a_listing_are_decoded() -> None:
    """Names the service cannot put in XML come percent-encoded, marked ``Encoded="true"``
    (Azurite never sends them: a small server answers with the documented form)."""
    odd, tabbed = "odd\uffffname/", "tab\tname.txt"

    async def answer(request: web.Request) -> web.Response:
        document = (
            '<?xml version="1.0" encoding="utf-8"?><EnumerationResults ContainerName="c">'
            f"<Prefix>{request.query['prefix']}</Prefix><Delimiter>/</Delimiter><Blobs>"
            f'<BlobPrefix><Name Encoded="true">{quote("d/" + odd)}</Name></BlobPrefix>'
            f'<Blob><Name Encoded="true">{quote("d/" + tabbed)}</Name><Properties>'
            "<Last-Modified>Sat, 21 Nov 2026 11:53:38 GMT</Last-Modified><Content-Length>5</Content-Length>"
            "<Content-Type>text/plain</Content-Type><Content-Encoding /><Content-MD5 />"
            "</Properties><Metadata /></Blob>"
            "<Blob><Name>d/plain &amp; simple.txt</Name><Properties><Content-Length>0</Content-Length>"
            "</Properties></Blob></Blobs><NextMarker /></EnumerationResults>"
        )
        return web.Response(body=document.encode(), content_type="application/xml")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    await web.SockSite(runner, listener).start()
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}/acct"
    backend = AzureBlobBackend(endpoint=endpoint, container="c", sas="sv=2024-01-01&sig=secret")
    try:
        got = await listed(backend, "d", recursive=False)
    finally:
        await backend.close()
        await runner.cleanup()
    assert [(obj.path, obj.is_dir, obj.size) for obj in got] == [
        ("d/odd\uffffname", True, 0),
        ("d/plain & simple.txt", False, 0),
        ("d/tab\tname.txt", False, 5),
    ]
    assert got[2].content is not None and got[2].content.content_encoding is None and got[2].md5 is None


def test_only_sas_and_shared_key_take_the_lean_path() -> None:
    common: dict[str, Any] = {
        "endpoint": "https://acct.blob.core.windows.net",
        "container": "c",
        "snapshot": None,
        "account_name": "acct",
        "api_version": "2026-10-06",
        "connection_timeout": 20,
    }
    assert blob_wire_for(**common, sas=None, account_key=None) is None
    assert blob_wire_for(**common, sas=None, account_key="not base64!") is None
    assert isinstance(blob_wire_for(**common, sas="sv=x&sig=y", account_key=None), BlobWire)
    key = base64.b64encode(b"k" * 32).decode()
    assert isinstance(blob_wire_for(**common, sas=None, account_key=key), BlobWire)
    token = AzureBlobBackend(
        endpoint="https://acct.blob.core.windows.net",
        container="c",
        token_credential=LazyDefaultAzureCredential(),
    )
    anonymous = AzureBlobBackend(endpoint="https://acct.blob.core.windows.net", container="c")
    assert token._wire is None and anonymous._wire is None
    sas_in_url = AzureBlobBackend(endpoint="https://acct.blob.core.windows.net/?sv=x&sig=y", container="c")
    assert sas_in_url._wire is not None


def test_the_blob_clients_api_version_is_sent() -> None:
    backend = AzureBlobBackend(
        endpoint="https://acct.blob.core.windows.net",
        container="c",
        account_key=base64.b64encode(b"k" * 32).decode(),
    )
    assert backend._wire is not None
    assert backend._wire._sender._api_version == backend._container.api_version
