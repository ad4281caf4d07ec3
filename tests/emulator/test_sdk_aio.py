"""The async Azure SDK (``azure.storage.fileshare.aio``, aiohttp transport) against the emulator.

aiohttp re-normalises the URL it sends (``%3B`` goes out as ``;``). The aio Shared Key policy
signs that normalised path only when it recognises the aiohttp transport, which it looks for at
most two wrappers deep: a file or subdirectory client made from a directory client made from a
share client made from a service client signs the path as the SDK quoted it. Names with spaces,
``#``, ``%``, ``+``, unicode and reserved characters, and directory paths sent as one
``%2F``-quoted segment, cover both cases.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.fileshare import ContentSettings, ShareSasPermissions, generate_share_sas
from azure.storage.fileshare.aio import ShareClient, ShareDirectoryClient, ShareServiceClient

from shareferry.emulator import RunningEmulator

MIB = 1024 * 1024

#: File names a user may well have; each is a single path segment.
ODD_NAMES = [
    "with space.txt",
    "hash#1.txt",
    "per%cent%20literal.txt",
    "plus+sign.txt",
    "ünïcødé ☃ 文件.txt",
    "a%2Fb looks quoted.txt",
    "semi;colon=eq&amp.txt",
    "q'uote(1)[x]{y}~!@$^.txt",
]

#: Directory paths addressed as one directory client (the SDK sends '/' as %2F).
ODD_DIRECTORIES = ["top dir/sub#dir/per%cent", "dïr+ünï/☃ snow/a;b=c"]


@asynccontextmanager
async def aio_service(emulator: RunningEmulator, key: str | None = None) -> AsyncIterator[ShareServiceClient]:
    account = emulator.account()
    async with ShareServiceClient(
        emulator.account_url(),
        credential={"account_name": account.name, "account_key": key or account.key},
        retry_total=0,
    ) as service:
        yield service


@asynccontextmanager
async def aio_share(emulator: RunningEmulator, name: str = "share1") -> AsyncIterator[ShareClient]:
    async with aio_service(emulator) as service:
        share = await service.create_share(name)
        yield share


async def make_directories(share: ShareClient, path: str) -> ShareDirectoryClient:
    """Create every directory along ``path`` and return a client for the deepest one."""
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        await share.get_directory_client("/".join(parts[:depth])).create_directory()
    return share.get_directory_client(path)


async def read_all(client: object, **kwargs: object) -> bytes:
    downloader = await client.download_file(**kwargs)  # type: ignore[attr-defined]
    data: bytes = await downloader.readall()
    return data


async def test_upload_9_mib_with_concurrency_downloads_identical(emulator: RunningEmulator) -> None:
    data = os.urandom(9 * MIB + 12345)
    md5 = hashlib.md5(data).digest()
    async with aio_share(emulator) as share:
        directory = await make_directories(share, "big files/nested #1")
        file = directory.get_file_client("nine mib ünï.bin")
        await file.upload_file(data, max_concurrency=4, content_settings=ContentSettings(content_md5=md5))

        downloaded = await read_all(file, max_concurrency=4)
        properties = await file.get_file_properties()

    assert downloaded == data
    assert hashlib.md5(downloaded).digest() == md5
    assert properties.size == len(data)
    assert bytes(properties.content_settings.content_md5) == md5


async def test_download_with_validate_content_checks_each_range_md5(emulator: RunningEmulator) -> None:
    data = os.urandom(6 * MIB + 7)
    async with aio_share(emulator) as share:
        file = share.get_file_client("validated.bin")
        await file.upload_file(data, max_concurrency=4)
        downloaded = await read_all(file, validate_content=True, max_concurrency=2)
    assert downloaded == data


@pytest.mark.parametrize("name", ODD_NAMES)
async def test_odd_file_name_round_trips_through_a_directory_client(
    emulator: RunningEmulator, name: str
) -> None:
    async with aio_share(emulator) as share:
        directory = await make_directories(share, "outer dir/inner #dir")
        file = directory.get_file_client(name)
        await file.upload_file(b"content of " + name.encode())
        await file.set_file_metadata({"origin": "aio"})

        listed = [item["name"] async for item in directory.list_directories_and_files()]
        properties = await file.get_file_properties()
        content = await read_all(file)
        await file.delete_file()
        after_delete = [item["name"] async for item in directory.list_directories_and_files()]

    assert listed == [name]
    assert properties.name == name
    assert properties.metadata == {"origin": "aio"}
    assert content == b"content of " + name.encode()
    assert after_delete == []


@pytest.mark.parametrize("name", ODD_NAMES)
async def test_odd_file_name_round_trips_through_the_share_client(
    emulator: RunningEmulator, name: str
) -> None:
    async with aio_share(emulator) as share:
        file = share.get_file_client(name)
        await file.upload_file(b"x" * 100)
        content = await read_all(file, offset=10, length=20)
        listed = [item["name"] async for item in share.list_directories_and_files()]
    assert content == b"x" * 20
    assert listed == [name]


@pytest.mark.parametrize("path", ODD_DIRECTORIES)
async def test_quoted_directory_path_creates_lists_and_deletes(emulator: RunningEmulator, path: str) -> None:
    async with aio_share(emulator) as share:
        directory = await make_directories(share, path)
        await directory.set_directory_metadata({"kind": "deep"})
        sub = directory.get_subdirectory_client("child;=&dir")
        await sub.create_directory()
        await sub.get_file_client("leaf file+1.txt").upload_file(b"leaf")

        properties = await directory.get_directory_properties()
        children = [
            (item["name"], item["is_directory"]) async for item in directory.list_directories_and_files()
        ]
        leaf = await read_all(share.get_file_client(f"{path}/child;=&dir/leaf file+1.txt"))
        parent_path, _, last = path.rpartition("/")
        siblings = [
            item["name"] async for item in share.list_directories_and_files(directory_name=parent_path)
        ]

        with pytest.raises(ResourceExistsError) as not_empty:
            await directory.delete_directory()
        await sub.get_file_client("leaf file+1.txt").delete_file()
        await sub.delete_directory()
        await directory.delete_directory()
        exists_after = await directory.exists()

    assert properties.metadata == {"kind": "deep"}
    assert children == [("child;=&dir", True)]
    assert leaf == b"leaf"
    assert siblings == [last]
    assert not_empty.value.error_code == "DirectoryNotEmpty"
    assert exists_after is False


async def test_listing_pages_through_directories_and_files(emulator: RunningEmulator) -> None:
    names = [f"file {i:02d}#.txt" for i in range(7)] + ["dir a", "dir b"]
    async with aio_share(emulator) as share:
        directory = await make_directories(share, "paged dir")
        for name in names:
            if name.startswith("dir"):
                await directory.get_subdirectory_client(name).create_directory()
            else:
                await directory.get_file_client(name).upload_file(name.encode())

        pages: list[list[str]] = []
        async for page in directory.list_directories_and_files(results_per_page=4).by_page():
            pages.append([item["name"] async for item in page])
        prefixed = [
            item["name"] async for item in directory.list_directories_and_files(name_starts_with="file 0")
        ]
        sizes = {
            item["name"]: item["size"]
            async for item in directory.list_directories_and_files()
            if not item["is_directory"]
        }

    assert [len(page) for page in pages] == [4, 4, 1]
    assert [name for page in pages for name in page] == sorted(names)
    assert prefixed == sorted(n for n in names if n.startswith("file 0"))
    assert sizes["file 03#.txt"] == len(b"file 03#.txt")


async def test_listing_shares_pages_with_metadata(emulator: RunningEmulator) -> None:
    async with aio_service(emulator) as service:
        for i in range(5):
            await service.create_share(f"share-{i}", metadata={"index": str(i)})
        pages: list[list[tuple[str, dict[str, str]]]] = []
        async for page in service.list_shares(include_metadata=True, results_per_page=2).by_page():
            pages.append([(share["name"], dict(share["metadata"])) async for share in page])
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [item for page in pages for item in page] == [(f"share-{i}", {"index": str(i)}) for i in range(5)]


async def test_snapshot_keeps_the_content_at_snapshot_time(emulator: RunningEmulator) -> None:
    async with aio_service(emulator) as service:
        share = await service.create_share("snapshotted")
        directory = await make_directories(share, "snap dir #1")
        file = directory.get_file_client("doc ünï.txt")
        await file.upload_file(b"version one")
        snapshot = await share.create_snapshot(metadata={"label": "v1"})

        await file.upload_file(b"version two, longer")
        await directory.get_file_client("added later.txt").upload_file(b"new")

        snap_share = service.get_share_client("snapshotted", snapshot=snapshot["snapshot"])
        snap_dir = snap_share.get_directory_client("snap dir #1")
        snap_content = await read_all(snap_dir.get_file_client("doc ünï.txt"))
        snap_listing = [item["name"] async for item in snap_dir.list_directories_and_files()]
        snap_properties = await snap_share.get_share_properties()
        live_content = await read_all(file)
        with pytest.raises(HttpResponseError) as write_to_snapshot:
            await snap_dir.get_file_client("doc ünï.txt").upload_file(b"nope")

    assert snap_content == b"version one"
    assert snap_listing == ["doc ünï.txt"]
    assert snap_properties.snapshot == snapshot["snapshot"]
    assert snap_properties.metadata == {"label": "v1"}
    assert live_content == b"version two, longer"
    assert write_to_snapshot.value.status_code == 400


async def test_share_directory_and_file_properties_and_metadata(emulator: RunningEmulator) -> None:
    settings = ContentSettings(
        content_type="text/plain; charset=utf-8",
        content_encoding="identity",
        content_language="de-CH",
        content_disposition='attachment; filename="r\u00e9sum\u00e9.txt"',
        cache_control="no-cache",
    )
    async with aio_service(emulator) as service:
        share = await service.create_share("props", quota=7, metadata={"team": "ferry"})
        await share.set_share_metadata({"team": "ferry", "stage": "test"})
        directory = await make_directories(share, "meta dir")
        await directory.set_directory_metadata({"level": "one"})
        file = directory.get_file_client("meta file.txt")
        await file.upload_file(b"hello", metadata={"Author": "Ada", "n": "1"})
        await file.set_http_headers(content_settings=settings)

        share_properties = await share.get_share_properties()
        directory_properties = await directory.get_directory_properties()
        file_properties = await file.get_file_properties()

    assert share_properties.quota == 7
    assert share_properties.metadata == {"team": "ferry", "stage": "test"}
    assert directory_properties.metadata == {"level": "one"}
    assert directory_properties.is_directory
    assert file_properties.metadata == {"Author": "Ada", "n": "1"}
    assert file_properties.size == 5
    got = file_properties.content_settings
    assert (got.content_type, got.content_encoding, got.content_language) == (
        "text/plain; charset=utf-8",
        "identity",
        "de-CH",
    )
    assert got.content_disposition == settings.content_disposition
    assert got.cache_control == "no-cache"
    assert file_properties.etag and file_properties.last_modified


async def test_resize_and_ranges(emulator: RunningEmulator) -> None:
    async with aio_share(emulator) as share:
        file = share.get_file_client("sparse + ranges.bin")
        await file.create_file(3 * MIB)
        await file.upload_range(b"a" * 512, offset=MIB, length=512)
        await file.upload_range(b"b" * 512, offset=2 * MIB, length=512)
        await file.clear_range(offset=2 * MIB, length=512)
        ranges = await file.get_ranges()
        await file.resize_file(MIB + 100)
        properties = await file.get_file_properties()
        tail = await read_all(file, offset=MIB, length=100)
    assert ranges == [{"start": MIB, "end": MIB + 511}]
    assert properties.size == MIB + 100
    assert tail == b"a" * 100


async def test_delete_file_directory_and_share(emulator: RunningEmulator) -> None:
    async with aio_service(emulator) as service:
        share = await service.create_share("doomed")
        directory = await make_directories(share, "gone dir")
        file = directory.get_file_client("gone file.txt")
        await file.upload_file(b"bye")
        await file.delete_file()
        file_gone = await file.exists()
        await directory.delete_directory()
        directory_gone = await directory.exists()
        await share.delete_share()
        shares = [s["name"] async for s in service.list_shares()]
        with pytest.raises(ResourceNotFoundError) as share_gone:
            await share.get_share_properties()
    assert file_gone is False
    assert directory_gone is False
    assert shares == []
    assert share_gone.value.error_code == "ShareNotFound"


async def test_missing_resources_raise_not_found_with_azure_codes(emulator: RunningEmulator) -> None:
    async with aio_service(emulator) as service:
        with pytest.raises(ResourceNotFoundError) as no_share:
            await service.get_share_client("nosuchshare").get_share_properties()
        share = await service.create_share("present")
        with pytest.raises(ResourceNotFoundError) as no_file:
            await share.get_file_client("missing file.txt").get_file_properties()
        with pytest.raises(ResourceNotFoundError) as no_parent:
            await share.get_file_client("no dir/file.txt").upload_file(b"x")
        with pytest.raises(ResourceNotFoundError) as no_dir:
            await share.get_directory_client("no dir/deeper").get_directory_properties()
        with pytest.raises(ResourceNotFoundError) as download_missing:
            await read_all(share.get_file_client("missing.bin"))
    assert no_share.value.error_code == "ShareNotFound"
    assert no_file.value.error_code == "ResourceNotFound"
    assert no_parent.value.error_code == "ParentNotFound"
    assert no_dir.value.status_code == 404
    assert download_missing.value.error_code == "ResourceNotFound"


async def test_conflicts_raise_resource_exists(emulator: RunningEmulator) -> None:
    async with aio_service(emulator) as service:
        share = await service.create_share("conflicts")
        with pytest.raises(ResourceExistsError) as share_exists:
            await service.create_share("conflicts")
        directory = await make_directories(share, "d")
        with pytest.raises(ResourceExistsError) as dir_exists:
            await directory.create_directory()
        await share.create_snapshot()
        with pytest.raises(HttpResponseError) as has_snapshots:
            await share.delete_share()
    assert share_exists.value.error_code == "ShareAlreadyExists"
    assert dir_exists.value.error_code == "ResourceAlreadyExists"
    assert has_snapshots.value.error_code == "ShareHasSnapshots"


async def test_wrong_key_is_authentication_failed(emulator: RunningEmulator) -> None:
    wrong_key = base64.b64encode(b"not the key" * 4).decode()
    async with aio_service(emulator, key=wrong_key) as service:
        with pytest.raises(ClientAuthenticationError) as denied:
            await service.create_share("never")
    assert denied.value.error_code == "AuthenticationFailed"
    async with aio_service(emulator) as service:
        assert [s["name"] async for s in service.list_shares()] == []


async def test_connection_string_client(emulator: RunningEmulator) -> None:
    async with ShareServiceClient.from_connection_string(emulator.connection_string()) as service:
        share = await service.create_share("from-conn-str")
        await share.get_file_client("hello world.txt").upload_file(b"hi")
        content = await read_all(share.get_file_client("hello world.txt"))
    assert content == b"hi"


async def test_share_sas_client_handles_odd_names(emulator: RunningEmulator) -> None:
    account = emulator.account()
    async with aio_share(emulator, "sas-share"):
        pass
    sas = generate_share_sas(
        account.name,
        "sas-share",
        account.key,
        permission=ShareSasPermissions(read=True, write=True, create=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    async with ShareClient(emulator.account_url(), "sas-share", credential=sas, retry_total=0) as share:
        directory = await make_directories(share, "sas dir/sub;=&#%+ ü")
        file = directory.get_file_client("semi;colon=eq&amp #%+ ü.txt")
        await file.upload_file(b"via sas")
        content = await read_all(file)
        listed = [item["name"] async for item in directory.list_directories_and_files()]
    assert content == b"via sas"
    assert listed == ["semi;colon=eq&amp #%+ ü.txt"]
