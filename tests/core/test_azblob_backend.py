"""The Azure Blob backend against Azurite (and the Files emulator as a copy source)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import socket
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from azure.storage.blob import (
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    ContentSettings,
    generate_container_sas,
)
from azure.storage.fileshare import ShareServiceClient, generate_file_sas

from shareferry.core.backends.azblob import (
    MAX_BLOCK,
    AzureBlobBackend,
    tree_order_level,
)
from shareferry.core.errors import CredentialError, NotFoundError, TransferError, UsageError
from shareferry.core.objects import ContentHeaders, StoredObject, WriteProps
from shareferry.emulator import RunningEmulator
from tests.support.azurite import AzuriteInfo, run_azurite

pytestmark = pytest.mark.azurite

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteInfo]:
    with run_azurite(tmp_path_factory.mktemp("azurite")) as info:
        yield info


@pytest.fixture
def container(azurite: AzuriteInfo) -> ContainerClient:
    """A new empty container, through the Azure SDK (the independent client)."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return service.create_container(f"c{uuid.uuid4().hex}")


@pytest.fixture
async def backend(azurite: AzuriteInfo, container: ContainerClient) -> AsyncIterator[AzureBlobBackend]:
    blob_backend = key_backend(azurite, container.container_name)
    yield blob_backend
    await blob_backend.close()


def key_backend(azurite: AzuriteInfo, container: str, **kwargs: str) -> AzureBlobBackend:
    return AzureBlobBackend(
        endpoint=azurite.endpoint,
        container=container,
        account_name=azurite.account,
        account_key=azurite.key,
        **kwargs,
    )


def read_sas(azurite: AzuriteInfo, container: str, permission: str = "rl") -> str:
    return generate_container_sas(
        azurite.account,
        container,
        account_key=azurite.key,
        permission=ContainerSasPermissions.from_string(permission),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def put(container: ContainerClient, name: str, data: bytes = b"x", **kwargs: object) -> None:
    container.get_blob_client(name).upload_blob(data, overwrite=True, **kwargs)


async def listed(
    backend: AzureBlobBackend, path: str = "", *, recursive: bool = True
) -> list[tuple[str, bool]]:
    return [(obj.path, obj.is_dir) async for obj in backend.list(path, recursive=recursive)]


def local_tree(root: Path, relative: str = "") -> list[tuple[str, bool]]:
    """What walking a local directory gives: each level sorted by name, a directory first."""
    found: list[tuple[str, bool]] = []
    for name in sorted(entry.name for entry in (root / relative).iterdir()):
        path = f"{relative}/{name}" if relative else name
        is_dir = (root / path).is_dir()
        found.append((path, is_dir))
        if is_dir:
            found += local_tree(root, path)
    return found


# -- stat ------------------------------------------------------------------------------------


async def test_stat_reports_what_the_blob_stores(
    backend: AzureBlobBackend, container: ContainerClient
) -> None:
    data = os.urandom(1000)
    put(
        container,
        "dir/file.bin",
        data,
        content_settings=ContentSettings(
            content_type="application/x-test",
            content_encoding="identity",
            content_language="en",
            content_disposition="attachment",
            cache_control="no-cache",
            content_md5=bytearray(hashlib.md5(data).digest()),
        ),
        metadata={"owner": "ops"},
    )

    stored = await backend.stat("dir/file.bin")

    assert stored is not None
    assert (stored.path, stored.is_dir, stored.size) == ("dir/file.bin", False, 1000)
    assert stored.md5 == hashlib.md5(data).digest()
    assert stored.content == ContentHeaders(
        content_type="application/x-test",
        content_encoding="identity",
        content_language="en",
        content_disposition="attachment",
        cache_control="no-cache",
    )
    assert stored.metadata == {"owner": "ops"}
    assert stored.last_modified is not None
    assert abs(stored.last_modified - datetime.now(UTC)) < timedelta(minutes=5)


async def test_stat_virtual_directories_markers_root_and_missing(
    backend: AzureBlobBackend, container: ContainerClient
) -> None:
    put(container, "top/mid/leaf.txt")
    put(container, "marker", b"", metadata={"hdi_isfolder": "true"})

    assert await backend.stat("") == StoredObject(path="", is_dir=True)
    for path in ("top", "top/mid", "top/mid/", "marker"):
        stored = await backend.stat(path)
        assert stored is not None and stored.is_dir, path
        assert stored.path == path.strip("/")
    assert await backend.stat("to") is None
    assert await backend.stat("top/mid/leaf") is None
    assert await backend.stat("nothing/here") is None


async def test_stat_in_a_missing_container_says_so(azurite: AzuriteInfo) -> None:
    backend = key_backend(azurite, "no-such-container")
    try:
        with pytest.raises(NotFoundError, match="ContainerNotFound"):
            await backend.stat("a")
    finally:
        await backend.close()


# -- listing ---------------------------------------------------------------------------------

TRICKY_NAMES = (
    "a-b",
    "a/b",
    "a.b",
    "a b",
    "a0",
    "a/c.d/e",
    "a/c/e",
    "a/c-d",
    "a/c d/f",
    "b",
    "b.txt/x",
    "b.txt.bak",
    "ab/z",
)


async def test_recursive_listing_is_in_the_order_of_the_same_local_tree(
    backend: AzureBlobBackend, container: ContainerClient, tmp_path: Path
) -> None:
    for name in TRICKY_NAMES:
        put(container, name)
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")

    got = await listed(backend)

    assert got == local_tree(tmp_path)
    assert got[:3] == [("a", True), ("a/b", False), ("a/c", True)]  # "a" before "a b", "a-b", "a.b"


async def test_one_level_and_a_subdirectory(
    backend: AzureBlobBackend, container: ContainerClient, tmp_path: Path
) -> None:
    for name in TRICKY_NAMES:
        put(container, name)
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    expected = local_tree(tmp_path)

    assert await listed(backend, recursive=False) == [(p, d) for p, d in expected if "/" not in p]
    assert await listed(backend, "a") == [(p, d) for p, d in expected if p.startswith("a/")]
    assert await listed(backend, "/a/", recursive=False) == [
        (p, d) for p, d in expected if p.startswith("a/") and p.count("/") == 1
    ]


async def test_listing_fills_size_time_and_md5(backend: AzureBlobBackend, container: ContainerClient) -> None:
    data = os.urandom(3000)
    put(
        container,
        "d/f",
        data,
        content_settings=ContentSettings(content_md5=bytearray(hashlib.md5(data).digest())),
    )

    [directory, file] = [obj async for obj in backend.list("", recursive=True)]

    assert (directory.path, directory.is_dir) == ("d", True)
    assert (file.path, file.is_dir, file.size) == ("d/f", False, 3000)
    assert file.md5 == hashlib.md5(data).digest()
    assert file.last_modified is not None


async def test_folder_markers_are_directories_not_files(
    backend: AzureBlobBackend, container: ContainerClient
) -> None:
    put(container, "d", b"", metadata={"hdi_isfolder": "true"})
    put(container, "d/x")
    put(container, "empty", b"", metadata={"hdi_isfolder": "true"})
    put(container, "empty.txt")

    assert await listed(backend) == [("d", True), ("d/x", False), ("empty", True), ("empty.txt", False)]
    assert await listed(backend, "empty") == []


async def test_listing_what_is_not_a_directory_raises(
    backend: AzureBlobBackend, container: ContainerClient
) -> None:
    put(container, "file")

    with pytest.raises(NotFoundError, match="no such directory"):
        await listed(backend, "missing")
    with pytest.raises(NotFoundError, match="no such directory"):
        await listed(backend, "file")
    assert await listed(backend, "") == [("file", False)]


async def test_a_root_prefix_scopes_every_path(
    azurite: AzuriteInfo, container: ContainerClient, tmp_path: Path
) -> None:
    put(container, "base/sub/x.txt", b"inside")
    put(container, "base/sub/d/y", b"deeper")
    put(container, "base/subway", b"outside")
    put(container, "other", b"outside")
    backend = key_backend(azurite, container.container_name, root="/base/sub/")
    try:
        assert await listed(backend) == [("d", True), ("d/y", False), ("x.txt", False)]
        assert await backend.read("x.txt", 0, 100) == b"inside"
        assert backend.describe("x.txt").endswith(f"/{container.container_name}/base/sub/x.txt")
        writer = await backend.open_writer("new", size=3, props=WriteProps())
        await writer.write(0, b"new")
        await writer.commit(None)
        assert container.get_blob_client("base/sub/new").download_blob().readall() == b"new"
    finally:
        await backend.close()


async def test_missing_container_listing_is_not_found(azurite: AzuriteInfo) -> None:
    backend = key_backend(azurite, "no-such-container")
    try:
        with pytest.raises(NotFoundError, match="ContainerNotFound"):
            await listed(backend)
    finally:
        await backend.close()


def as_sdk_pages(
    service_order: list[tuple[str, bool]], rng: random.Random
) -> AsyncIterator[list[tuple[str, StoredObject]]]:
    """Split a level listed in service order into pages, each with its prefixes first (as the
    Azure SDK gives them)."""

    async def pages() -> AsyncIterator[list[tuple[str, StoredObject]]]:
        start = 0
        while start < len(service_order):
            size = rng.randint(1, 7)
            chunk = service_order[start : start + size]
            start += size
            chunk.sort(key=lambda entry: not entry[1])
            yield [
                (name + ("/" if is_dir else ""), StoredObject(path=name, is_dir=is_dir))
                for name, is_dir in chunk
            ]

    return pages()


@pytest.mark.parametrize("seed", range(30))
async def test_level_ordering_matches_sorting_for_random_names(seed: int) -> None:
    """The streaming reorder against plain sorting, over names full of characters below '/'."""
    rng = random.Random(seed)
    alphabet = "ab -.!"
    names = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5))) for _ in range(60)}
    entries = [(name, rng.random() < 0.4) for name in names]  # (name, is a virtual directory)
    service_order = sorted(entries, key=lambda entry: entry[0] + ("/" if entry[1] else ""))

    got = [(obj.name, obj.is_dir) async for obj in tree_order_level(as_sdk_pages(service_order, rng))]

    assert got == sorted(entries)


async def test_level_ordering_holds_back_only_what_a_later_directory_could_precede() -> None:
    listed_so_far: list[str] = []

    async def pages() -> AsyncIterator[list[tuple[str, StoredObject]]]:
        for listed_name in ("a b", "a.x", "a/", "b", "c"):
            listed_so_far.append(listed_name)
            name = listed_name.rstrip("/")
            yield [(listed_name, StoredObject(path=name, is_dir=listed_name.endswith("/")))]

    seen: list[tuple[str, list[str]]] = []
    async for obj in tree_order_level(pages()):
        seen.append((obj.name, list(listed_so_far)))

    assert [name for name, _ in seen] == ["a", "a b", "a.x", "b", "c"]
    assert seen[0] == ("a", ["a b", "a.x", "a/"])  # "a b" waits until "a/" is listed
    assert seen[3] == ("b", ["a b", "a.x", "a/", "b"])  # "b" is given as soon as it is listed


async def test_level_ordering_gives_a_marked_directory_once() -> None:
    async def pages() -> AsyncIterator[list[tuple[str, StoredObject]]]:
        yield [
            ("d", StoredObject(path="d", is_dir=True)),
            ("d.txt", StoredObject(path="d.txt", is_dir=False)),
        ]
        yield [("d/", StoredObject(path="d", is_dir=True))]

    assert [(obj.name, obj.is_dir) async for obj in tree_order_level(pages())] == [
        ("d", True),
        ("d.txt", False),
    ]


# -- reading ---------------------------------------------------------------------------------


async def test_read_ranges(backend: AzureBlobBackend, container: ContainerClient) -> None:
    data = os.urandom(10_000)
    put(container, "f", data)

    assert await backend.read("f", 0, 10_000) == data
    assert await backend.read("f", 1234, 4321) == data[1234:5555]
    assert await backend.read("f", 9000, 5000) == data[9000:]  # short only at the end
    assert await backend.read("f", 10_000, 10) == b""
    assert await backend.read("f", 5, 0) == b""
    with pytest.raises(NotFoundError, match="BlobNotFound"):
        await backend.read("missing", 0, 10)


async def test_read_gives_stored_bytes_whatever_the_content_encoding(
    backend: AzureBlobBackend, container: ContainerClient
) -> None:
    import gzip

    packed = gzip.compress(b"plain text " * 100)
    put(container, "packed.txt", packed, content_settings=ContentSettings(content_encoding="gzip"))

    assert await backend.read("packed.txt", 0, len(packed)) == packed
    assert await backend.read("packed.txt", 10, 20) == packed[10:30]


async def test_read_an_empty_blob(backend: AzureBlobBackend, container: ContainerClient) -> None:
    put(container, "empty", b"")
    assert await backend.read("empty", 0, 100) == b""


async def test_a_snapshot_backend_reads_that_snapshot_and_refuses_writes(
    azurite: AzuriteInfo, container: ContainerClient
) -> None:
    put(container, "d/f", b"old")
    put(container, "d/g", b"no snapshot")
    snapshot = container.get_blob_client("d/f").create_snapshot()["snapshot"]
    put(container, "d/f", b"new contents")
    backend = key_backend(azurite, container.container_name, snapshot=snapshot)
    try:
        stored = await backend.stat("d/f")
        assert stored is not None and stored.size == 3
        assert await backend.read("d/f", 0, 100) == b"old"
        assert await listed(backend) == [("d", True), ("d/f", False)]
        with urllib.request.urlopen(backend.source_url("d/f")) as response:
            assert response.read() == b"old"
        assert f"snapshot={snapshot}" in backend.describe("d/f")
        with pytest.raises(UsageError, match="read-only"):
            await backend.open_writer("d/f", size=1, props=WriteProps())
        with pytest.raises(UsageError, match="read-only"):
            await backend.delete("d/f")
    finally:
        await backend.close()


# -- writing ---------------------------------------------------------------------------------


async def test_staged_blocks_are_invisible_until_commit(
    backend: AzureBlobBackend, container: ContainerClient
) -> None:
    data = os.urandom(3 * 1000)
    md5 = hashlib.md5(data).digest()
    props = WriteProps(
        content=ContentHeaders(content_type="text/plain", cache_control="max-age=60"),
        metadata={"source": "test"},
    )
    writer = await backend.open_writer("dir/new.txt", size=len(data), props=props)
    for offset in (2000, 0, 1000):
        await writer.write(offset, data[offset : offset + 1000])

    assert await backend.stat("dir/new.txt") is None
    assert await backend.stat("dir") is None
    assert [blob.name for blob in container.list_blobs()] == []

    await writer.commit(md5)

    blob = container.get_blob_client("dir/new.txt")
    assert blob.download_blob().readall() == data
    properties = blob.get_blob_properties()
    assert bytes(properties.content_settings.content_md5) == md5
    assert properties.content_settings.content_type == "text/plain"
    assert properties.content_settings.cache_control == "max-age=60"
    assert properties.metadata == {"source": "test"}
    stored = await backend.stat("dir/new.txt")
    assert stored is not None and stored.md5 == md5 and stored.size == len(data)


async def test_concurrent_out_of_order_blocks_of_a_20_mib_blob(
    backend: AzureBlobBackend, container: ContainerClient
) -> None:
    data = os.urandom(20 * MIB)
    block = 4 * MIB
    offsets = list(range(0, len(data), block))
    random.Random(7).shuffle(offsets)
    writer = await backend.open_writer("big.bin", size=len(data), props=WriteProps())

    await asyncio.gather(*(writer.write(offset, data[offset : offset + block]) for offset in offsets))
    await writer.commit(hashlib.md5(data).digest())

    blob = container.get_blob_client("big.bin")
    assert blob.download_blob().readall() == data
    assert bytes(blob.get_blob_properties().content_settings.content_md5) == hashlib.md5(data).digest()
    committed, uncommitted = blob.get_block_list("all")
    assert [b.size for b in committed] == [block] * 5
    assert uncommitted == []


async def test_a_zero_byte_file_commits(backend: AzureBlobBackend, container: ContainerClient) -> None:
    writer = await backend.open_writer("empty", size=0, props=WriteProps())
    await writer.commit(hashlib.md5(b"").digest())

    properties = container.get_blob_client("empty").get_blob_properties()
    assert properties.size == 0
    assert bytes(properties.content_settings.content_md5) == hashlib.md5(b"").digest()


async def test_commit_replaces_an_existing_blob(
    backend: AzureBlobBackend, container: ContainerClient
) -> None:
    put(container, "f", b"old contents that are longer", metadata={"old": "1"})
    writer = await backend.open_writer("f", size=3, props=WriteProps(metadata={"new": "1"}))
    await writer.write(0, b"new")
    assert container.get_blob_client("f").download_blob().readall() == b"old contents that are longer"

    await writer.commit(None)

    blob = container.get_blob_client("f")
    assert blob.download_blob().readall() == b"new"
    assert blob.get_blob_properties().metadata == {"new": "1"}


async def test_commit_refuses_a_gap(backend: AzureBlobBackend, container: ContainerClient) -> None:
    writer = await backend.open_writer("f", size=20, props=WriteProps())
    await writer.write(0, b"0123456789")

    with pytest.raises(TransferError, match="cover 10 of 20 bytes"):
        await writer.commit(None)
    await writer.abort()
    assert await backend.stat("f") is None


async def test_writing_into_a_missing_container_is_not_found(azurite: AzuriteInfo) -> None:
    backend = key_backend(azurite, "no-such-container")
    try:
        writer = await backend.open_writer("f", size=1, props=WriteProps())
        with pytest.raises(NotFoundError, match="ContainerNotFound"):
            # A one-piece blob is sent at commit (one Put Blob), so the error may come from either.
            await writer.write(0, b"x")
            await writer.commit(None)
    finally:
        await backend.close()


async def test_make_dir_is_a_no_op_and_delete_removes_a_blob(
    backend: AzureBlobBackend, container: ContainerClient
) -> None:
    assert backend.capabilities.folders is False
    await backend.make_dir("some/dir")
    assert await backend.stat("some/dir") is None

    put(container, "d/f")
    put(container, "d/g")
    await backend.delete("d/f")
    assert await backend.stat("d/f") is None
    assert [blob.name for blob in container.list_blobs()] == ["d/g"]
    with pytest.raises(NotFoundError, match="BlobNotFound"):
        await backend.delete("d/f")
    with pytest.raises(TransferError, match="virtual directory"):
        await backend.delete("d")


async def test_create_container(azurite: AzuriteInfo) -> None:
    name = f"c{uuid.uuid4().hex}"
    backend = key_backend(azurite, name)
    try:
        assert await backend.create_container() is True
        assert await backend.create_container() is False
        assert await listed(backend) == []
    finally:
        await backend.close()


# -- server-side copies ----------------------------------------------------------------------


async def test_server_side_copy_blob_to_blob(
    azurite: AzuriteInfo, backend: AzureBlobBackend, container: ContainerClient
) -> None:
    data = os.urandom(3 * MIB + 17)
    put(container, "src/data.bin", data)
    destination = BlobServiceClient.from_connection_string(azurite.connection_string).create_container(
        f"c{uuid.uuid4().hex}"
    )
    target = key_backend(azurite, destination.container_name)
    url = backend.source_url("src/data.bin")
    assert url is not None and "sig=" in url
    try:
        writer = await target.open_writer("copy.bin", size=len(data), props=WriteProps())
        await asyncio.gather(
            writer.write_from_url(2 * MIB, url, 2 * MIB, len(data) - 2 * MIB),
            writer.write_from_url(0, url, 0, 2 * MIB),
        )
        await writer.commit(hashlib.md5(data).digest())
    finally:
        await target.close()

    copied = destination.get_blob_client("copy.bin")
    assert copied.download_blob().readall() == data
    assert bytes(copied.get_blob_properties().content_settings.content_md5) == hashlib.md5(data).digest()


async def test_source_url_is_readable_on_its_own(
    azurite: AzuriteInfo, backend: AzureBlobBackend, container: ContainerClient
) -> None:
    put(container, "dir/a file+name.txt", b"hello")
    with urllib.request.urlopen(backend.source_url("dir/a file+name.txt")) as response:
        assert response.read() == b"hello"

    sas_backend = AzureBlobBackend(
        endpoint=azurite.endpoint,
        container=container.container_name,
        sas=read_sas(azurite, container.container_name),
    )
    try:
        url = sas_backend.source_url("dir/a file+name.txt")
        assert url is not None
        with urllib.request.urlopen(url) as response:
            assert response.read() == b"hello"
        assert await sas_backend.read("dir/a file+name.txt", 0, 5) == b"hello"
    finally:
        await sas_backend.close()


async def test_no_source_url_with_a_token_credential() -> None:
    class Token:
        async def get_token(self, *scopes: str, **kwargs: object) -> object:
            raise AssertionError("no request is made")

    backend = AzureBlobBackend(
        endpoint="https://acct.blob.core.windows.net", container="c", token_credential=Token()
    )
    try:
        assert backend.source_url("x") is None
        assert backend.describe("d/x") == "https://acct.blob.core.windows.net/c/d/x"
    finally:
        await backend.close()


def files_source(emulator: RunningEmulator, data: bytes) -> str:
    """A file in the Files emulator and a read SAS URL for it."""
    account = emulator.account()
    service = ShareServiceClient(
        account_url=emulator.account_url(),
        credential={"account_name": account.name, "account_key": account.key},
    )
    share = service.create_share("source")
    share.get_file_client("data.bin").upload_file(data)
    sas = generate_file_sas(
        account.name,
        "source",
        ["data.bin"],
        account_key=account.key,
        permission="r",
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"{emulator.account_url()}/source/data.bin?{sas}"


@pytest.mark.xfail(
    strict=True,
    raises=TransferError,
    reason=(
        "Azurite 3.37 stages Put Block From URL only from a source on the same Azurite instance: "
        "for any other host it answers 404 CannotVerifyCopySource without fetching "
        "(see test_azurite_reads_copy_sources_only_from_itself)"
    ),
)
async def test_copy_from_a_files_emulator_url_into_a_blob(
    emulator: RunningEmulator, backend: AzureBlobBackend, container: ContainerClient
) -> None:
    data = os.urandom(MIB + 5)
    url = files_source(emulator, data)
    writer = await backend.open_writer("from-files.bin", size=len(data), props=WriteProps())
    await writer.write_from_url(0, url, 0, len(data))
    await writer.commit(hashlib.md5(data).digest())

    assert container.get_blob_client("from-files.bin").download_blob().readall() == data


async def test_azurite_reads_copy_sources_only_from_itself(
    emulator: RunningEmulator, backend: AzureBlobBackend
) -> None:
    """Why the Files → Blob server-side test above fails: the URL works, Azurite will not fetch it."""
    data = os.urandom(1000)
    url = files_source(emulator, data)
    with urllib.request.urlopen(url) as response:
        assert response.read() == data  # the SAS URL itself is fine
    writer = await backend.open_writer("from-files.bin", size=len(data), props=WriteProps())

    with pytest.raises(TransferError) as caught:
        await writer.write_from_url(0, url, 0, len(data))

    message = str(caught.value)
    assert "404 CannotVerifyCopySource" in message
    assert "could not read the copy source" in message
    assert f"127.0.0.1:{emulator.port}/devstoreaccount1/source/data.bin" in message
    signature = url.split("sig=", 1)[1].split("&", 1)[0]
    assert signature not in message and "sig=REDACTED" in message
    assert caught.value.retryable is False


# -- errors ----------------------------------------------------------------------------------


async def test_a_wrong_key_is_a_credential_error(azurite: AzuriteInfo, container: ContainerClient) -> None:
    wrong_key = base64.b64encode(b"not the key" * 6).decode()
    backend = AzureBlobBackend(
        endpoint=azurite.endpoint,
        container=container.container_name,
        account_name=azurite.account,
        account_key=wrong_key,
    )
    try:
        with pytest.raises(CredentialError) as caught:
            await backend.stat("f")
    finally:
        await backend.close()
    message = str(caught.value)
    assert message.startswith(f"stat {azurite.endpoint}/{container.container_name}/f: ")
    assert "403 AuthorizationFailure" in message
    assert wrong_key not in message


async def test_a_sas_without_write_permission_is_a_credential_error_without_the_sas(
    azurite: AzuriteInfo, container: ContainerClient
) -> None:
    sas = read_sas(azurite, container.container_name)
    backend = AzureBlobBackend(endpoint=f"{azurite.endpoint}?{sas}", container=container.container_name)
    try:
        # Two bytes written one at a time: a staged block (a one-piece blob waits for commit).
        writer = await backend.open_writer("f", size=2, props=WriteProps())
        with pytest.raises(CredentialError) as caught:
            await writer.write(0, b"x")
        assert "sig=" not in backend.describe("f")
    finally:
        await backend.close()
    message = str(caught.value)
    assert "put block" in message and "403 AuthorizationPermissionMismatch" in message
    signature = sas.split("sig=", 1)[1].split("&", 1)[0]
    assert signature not in message and "sig=" not in message


async def test_throttling_is_retryable_with_the_retry_after_hint() -> None:
    async def busy(request: web.Request) -> web.Response:
        return web.Response(
            status=503,
            headers={"Retry-After": "7", "x-ms-error-code": "ServerBusy"},
            text="<?xml version='1.0'?><Error><Code>ServerBusy</Code><Message>busy</Message></Error>",
            content_type="application/xml",
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", busy)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    await web.SockSite(runner, listener).start()
    backend = AzureBlobBackend(
        endpoint=f"http://127.0.0.1:{port}/devstoreaccount1", container="c", sas="sv=2024-01-01&sig=secret"
    )
    try:
        with pytest.raises(TransferError) as caught:
            await backend.read("f", 0, 10)
    finally:
        await backend.close()
        await runner.cleanup()
    assert caught.value.retryable is True
    assert caught.value.retry_after == 7.0
    assert "503 ServerBusy" in str(caught.value)
    assert "secret" not in str(caught.value)


async def test_a_refused_connection_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = AzureBlobBackend(endpoint=f"http://127.0.0.1:{port}/devstoreaccount1", container="c")
    try:
        with pytest.raises(TransferError, match="connection failed") as caught:
            await backend.stat("f")
    finally:
        await backend.close()
    assert caught.value.retryable is True
    assert getattr(caught.value, "retry_after", "missing") is None


def test_one_credential_at_most() -> None:
    with pytest.raises(UsageError, match="one credential"):
        AzureBlobBackend(
            endpoint="https://acct.blob.core.windows.net", container="c", sas="sig=x", account_key="a2V5"
        )


def test_describe_never_shows_the_sas() -> None:
    backend = AzureBlobBackend(
        endpoint="https://acct.blob.core.windows.net/?sv=2024-01-01&sig=very-secret", container="c", root="r"
    )
    assert backend.describe("") == "https://acct.blob.core.windows.net/c/r"
    assert backend.describe("a/b") == "https://acct.blob.core.windows.net/c/r/a/b"
    url = backend.source_url("a/b")
    assert url == "https://acct.blob.core.windows.net/c/r/a/b?sv=2024-01-01&sig=very-secret"
    assert backend.capabilities.max_range == MAX_BLOCK


async def test_a_one_piece_blob_is_sent_as_one_put_blob(
    backend: AzureBlobBackend, container: ContainerClient
) -> None:
    """A blob written in one piece goes up with Put Blob (no blocks), invisible until commit."""
    data = b"one piece " * 100
    writer = await backend.open_writer("single.txt", size=len(data), props=WriteProps())
    await writer.write(0, data)
    assert await backend.stat("single.txt") is None
    await writer.commit(hashlib.md5(data).digest())
    blob = container.get_blob_client("single.txt")
    assert blob.download_blob().readall() == data
    assert bytes(blob.get_blob_properties().content_settings.content_md5) == hashlib.md5(data).digest()
    committed, uncommitted = blob.get_block_list("all")
    assert committed == [] and uncommitted == []
