"""The backend contract, checked the same way against every backend in ``backend_factories``.

Each test states one promise of :mod:`shareferry.core.backends.base` and checks it from the
outside: bytes read back, sizes, times, properties, listing order, errors. What the contract
leaves open (staging, which properties are kept) is declared by each factory; optional
abilities come from the backend's own ``capabilities``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shareferry.core.backends import azblob, azfiles
from shareferry.core.backends.base import Backend
from shareferry.core.errors import NotFoundError, TransferError
from shareferry.core.objects import ContentHeaders, Refused, SmbInfo, StoredObject, WriteProps

from .backend_factories import FACTORIES, BackendFactory

CHUNK = 64 * 1024


@pytest.fixture(params=[pytest.param(f, id=f.name, marks=f.marks) for f in FACTORIES])
def factory(request: pytest.FixtureRequest) -> BackendFactory:
    chosen: BackendFactory = request.param
    return chosen


@pytest.fixture
async def backend(factory: BackendFactory, tmp_path: Path) -> AsyncIterator[Backend]:
    async with factory.open(tmp_path) as opened:
        yield opened


async def write_file(
    backend: Backend,
    path: str,
    data: bytes,
    *,
    props: WriteProps | None = None,
    md5: bytes | None = None,
) -> None:
    """Write ``data`` in chunks sent concurrently, last chunk first, then commit."""
    writer = await backend.open_writer(path, size=len(data), props=props or WriteProps())
    chunk = min(CHUNK, backend.capabilities.max_range)
    offsets = range(0, len(data), chunk)
    await asyncio.gather(
        *(writer.write(offset, data[offset : offset + chunk]) for offset in reversed(offsets))
    )
    await writer.commit(md5)


async def listing(backend: Backend, path: str = "", *, recursive: bool = True) -> list[StoredObject]:
    return [obj async for obj in backend.list(path, recursive=recursive)]


def visible(backend: Backend, objects: list[StoredObject]) -> list[StoredObject]:
    """Objects a test may assert on: directories only count where they are real objects."""
    return [obj for obj in objects if backend.capabilities.folders or not obj.is_dir]


def components(path: str) -> list[str]:
    return path.split("/")


def near_now(moment: datetime | None) -> bool:
    assert moment is not None
    assert moment.utcoffset() == timedelta(0), f"{moment!r} is not in UTC"
    return abs(datetime.now(UTC) - moment) < timedelta(minutes=5)


def requires(condition: bool, reason: str) -> None:
    if not condition:
        pytest.skip(reason)


# ---- stat


async def test_stat_of_missing_is_none(backend: Backend) -> None:
    await write_file(backend, "present.txt", b"here")

    assert await backend.stat("absent.txt") is None
    assert await backend.stat("absent-dir/absent.txt") is None
    assert await backend.stat("present.txt/below") is None


async def test_root_of_a_backend_with_folders_is_a_directory(backend: Backend) -> None:
    requires(backend.capabilities.folders, "directories are not objects here")

    root = await backend.stat("")

    assert root is not None
    assert root.is_dir


# ---- writing and reading


async def test_concurrent_out_of_order_writes_read_back_exactly(backend: Backend) -> None:
    data = os.urandom(3 * CHUNK + 1234)

    await write_file(backend, "data.bin", data)

    obj = await backend.stat("data.bin")
    assert obj is not None
    assert not obj.is_dir
    assert obj.size == len(data)
    assert near_now(obj.last_modified)
    assert await backend.read("data.bin", 0, len(data)) == data
    assert await backend.read("data.bin", CHUNK - 10, 20) == data[CHUNK - 10 : CHUNK + 10]
    assert await backend.read("data.bin", 2 * CHUNK + 7, CHUNK) == data[2 * CHUNK + 7 : 3 * CHUNK + 7]


async def test_read_past_the_end_is_short(backend: Backend) -> None:
    data = os.urandom(1000)
    await write_file(backend, "short.bin", data)

    assert await backend.read("short.bin", 900, 500) == data[900:]
    assert await backend.read("short.bin", len(data), 10) == b""


async def test_read_of_missing_file_raises_not_found(backend: Backend) -> None:
    with pytest.raises(NotFoundError):
        await backend.read("absent.bin", 0, 10)


async def test_nothing_is_visible_before_commit(backend: Backend) -> None:
    data = os.urandom(2 * CHUNK)
    writer = await backend.open_writer("staged.bin", size=len(data), props=WriteProps())
    await writer.write(CHUNK, data[CHUNK:])
    await writer.write(0, data[:CHUNK])

    assert await backend.stat("staged.bin") is None
    assert "staged.bin" not in [obj.path for obj in await listing(backend)]

    await writer.commit(None)

    assert await backend.read("staged.bin", 0, len(data)) == data


async def test_abort_leaves_nothing(backend: Backend) -> None:
    writer = await backend.open_writer("aborted.bin", size=2 * CHUNK, props=WriteProps())
    await writer.write(0, os.urandom(CHUNK))

    await writer.abort()

    assert await backend.stat("aborted.bin") is None
    assert await listing(backend) == []


async def test_a_committed_writer_replaces_an_existing_file(backend: Backend) -> None:
    old = os.urandom(3 * CHUNK)
    new = os.urandom(CHUNK // 2)
    await write_file(backend, "replaced.bin", old)
    writer = await backend.open_writer("replaced.bin", size=len(new), props=WriteProps())
    await writer.write(0, new)
    assert await backend.read("replaced.bin", 0, len(old)) == old  # untouched until the commit

    await writer.commit(None)

    obj = await backend.stat("replaced.bin")
    assert obj is not None
    assert obj.size == len(new)
    assert await backend.read("replaced.bin", 0, len(old)) == new


async def test_zero_byte_file(backend: Backend) -> None:
    await write_file(backend, "empty.txt", b"")

    obj = await backend.stat("empty.txt")
    assert obj is not None
    assert not obj.is_dir
    assert obj.size == 0
    assert await backend.read("empty.txt", 0, 10) == b""
    assert [(o.path, o.size) for o in await listing(backend)] == [("empty.txt", 0)]


AWKWARD_NAMES = [
    "with space.txt",
    "hash#tag.txt",
    "100%.txt",
    "%41%2F.txt",
    "plus+sign.txt",
    "ünïcödé 日本語 ✓.txt",
    "dir with space/ümlaut #1/a+b%20c.txt",
]


async def test_awkward_names_round_trip(backend: Backend) -> None:
    for name in AWKWARD_NAMES:
        await write_file(backend, name, name.encode())

    for name in AWKWARD_NAMES:
        obj = await backend.stat(name)
        assert obj is not None, name
        assert obj.path == name
        assert await backend.read(name, 0, 1000) == name.encode()
    listed = {obj.path for obj in await listing(backend) if not obj.is_dir}
    assert listed == set(AWKWARD_NAMES)


#: Names for a listing of many pages: awkward ones, trailing dots, names sorting around "/".
PAGED_NAMES = [*AWKWARD_NAMES, "trailing dot.", "dir./inside.", "a b.txt", "a-b.txt", "a/z.txt", "a.txt"]


async def test_a_listing_of_many_pages_gives_every_name_once(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two entries per page where the backend pages its listings (Azure Files, Blob)."""
    monkeypatch.setattr(azfiles, "LISTING_PAGE_SIZE", 2)
    monkeypatch.setattr(azblob, "LISTING_PAGE_SIZE", 2)
    for index, name in enumerate(PAGED_NAMES):
        await write_file(backend, name, b"x" * index)

    objects = await listing(backend)

    files = [obj for obj in objects if not obj.is_dir]
    assert sorted((obj.path, obj.size) for obj in files) == sorted(
        (name, index) for index, name in enumerate(PAGED_NAMES)
    )
    paths = [obj.path for obj in visible(backend, objects)]
    assert paths == sorted(paths, key=components)
    assert len(paths) == len(set(paths))


async def test_many_files_written_concurrently(backend: Backend) -> None:
    contents = {f"batch/file-{n:02d}.bin": os.urandom(100 + n) for n in range(20)}

    await asyncio.gather(*(write_file(backend, path, data) for path, data in contents.items()))

    listed = {obj.path: obj.size for obj in await listing(backend, "batch")}
    assert listed == {path: len(data) for path, data in contents.items()}
    for path, data in contents.items():
        assert await backend.read(path, 0, len(data)) == data


# ---- directories


async def test_parent_directories_are_created_implicitly(backend: Backend) -> None:
    await write_file(backend, "a/b/c/deep.txt", b"deep")

    assert await backend.read("a/b/c/deep.txt", 0, 4) == b"deep"
    below = visible(backend, await listing(backend, "a/b"))
    if backend.capabilities.folders:
        assert [obj.path for obj in below] == ["a/b/c", "a/b/c/deep.txt"]
        for path in ("a", "a/b", "a/b/c"):
            obj = await backend.stat(path)
            assert obj is not None and obj.is_dir, path
    else:
        assert [obj.path for obj in below] == ["a/b/c/deep.txt"]


async def test_make_dir_is_idempotent_and_empty_dirs_are_listed(backend: Backend) -> None:
    requires(backend.capabilities.folders, "directories are not objects here")

    await backend.make_dir("empty/inner")
    await backend.make_dir("empty/inner")
    await backend.make_dir("empty")

    inner = await backend.stat("empty/inner")
    assert inner is not None and inner.is_dir
    assert [(obj.path, obj.is_dir) for obj in await listing(backend)] == [
        ("empty", True),
        ("empty/inner", True),
    ]


async def test_make_dir_without_folders_is_a_no_op(backend: Backend) -> None:
    requires(not backend.capabilities.folders, "directories are real objects here")

    await backend.make_dir("nothing/here")
    await backend.make_dir("nothing/here")

    assert visible(backend, await listing(backend)) == []


async def test_make_dir_with_a_file_in_the_way_fails(backend: Backend) -> None:
    requires(backend.capabilities.folders, "directories are not objects here")
    await write_file(backend, "taken", b"file")

    with pytest.raises(TransferError):
        await backend.make_dir("taken")
    with pytest.raises(TransferError):
        await backend.make_dir("taken/below")
    assert await backend.read("taken", 0, 10) == b"file"


TREE = [
    "a.txt",
    "a-b.txt",
    "a/b.txt",
    "a/c/d.txt",
    "a/c-d.txt",
    "a b.txt",
    "B.txt",
    "b/x",
    "ä.txt",
    "_under.txt",
]


async def test_recursive_listing_is_in_tree_order(backend: Backend) -> None:
    for path in TREE:
        await write_file(backend, path, path.encode())
    if backend.capabilities.folders:
        await backend.make_dir("e/empty")

    objects = visible(backend, await listing(backend))
    paths = [obj.path for obj in objects]

    assert paths == sorted(paths, key=components)
    assert {obj.path for obj in objects if not obj.is_dir} == set(TREE)
    if backend.capabilities.folders:
        dirs = {obj.path for obj in objects if obj.is_dir}
        assert dirs == {"a", "a/c", "b", "e", "e/empty"}
        for index, path in enumerate(paths):
            parent = path.rpartition("/")[0]
            if parent:
                assert parent in paths[:index], f"{path} listed before its directory"


async def test_listing_gives_sizes_and_times(backend: Backend) -> None:
    for path in TREE:
        await write_file(backend, path, path.encode() * 3)

    files = [obj for obj in await listing(backend) if not obj.is_dir]

    assert {obj.path: obj.size for obj in files} == {path: len(path.encode()) * 3 for path in TREE}
    assert all(near_now(obj.last_modified) for obj in files)


async def test_non_recursive_listing_gives_one_level(backend: Backend) -> None:
    for path in TREE:
        await write_file(backend, path, b"x")

    top = visible(backend, await listing(backend, recursive=False))

    expected = {path for path in TREE if "/" not in path}
    if backend.capabilities.folders:
        expected |= {"a", "b"}
    paths = [obj.path for obj in top]
    assert set(paths) == expected
    assert paths == sorted(paths, key=components)


async def test_listing_a_subdirectory_gives_paths_from_the_root(backend: Backend) -> None:
    for path in TREE:
        await write_file(backend, path, b"x")

    below = visible(backend, await listing(backend, "a"))

    expected = ["a/b.txt", "a/c", "a/c/d.txt", "a/c-d.txt"]
    if not backend.capabilities.folders:
        expected.remove("a/c")
    assert [obj.path for obj in below] == expected
    shallow = visible(backend, await listing(backend, "a", recursive=False))
    assert [obj.path for obj in shallow] == [path for path in expected if path != "a/c/d.txt"]


async def test_listing_a_missing_directory_raises_not_found(backend: Backend) -> None:
    await write_file(backend, "file.txt", b"x")

    with pytest.raises(NotFoundError):
        await listing(backend, "absent")
    with pytest.raises(NotFoundError):
        await listing(backend, "file.txt")


@pytest.mark.parametrize("skip_vanished", [True, False], ids=["skip-vanished", "strict"])
async def test_a_directory_removed_during_the_walk(backend: Backend, skip_vanished: bool) -> None:
    """Removed after its parent was listed, before the walk reaches its entries: walked as empty
    with ``skip_vanished`` (the later siblings still come), else the walk fails or lists that
    directory as unreadable. A directory that only exists through the objects below it (Blob)
    cannot fail that way: it lists as empty."""
    for name in ("a/1.txt", "b/x/2.txt", "b/3.txt", "c/4.txt"):
        await write_file(backend, name, b"x")
    seen: list[str] = []
    unreadable: list[str] = []

    async def walk() -> None:
        async for obj in backend.list("", recursive=True, skip_vanished=skip_vanished):
            seen.append(obj.path)
            if obj.refusal is not None and obj.refusal.kind is Refused.UNREADABLE:
                unreadable.append(obj.path)
            if obj.path == "b":  # listed: now remove it, as another shard of a sync would
                for name in ("b/x/2.txt", "b/3.txt", "b/x", "b"):
                    if backend.capabilities.folders or not name.endswith(("b/x", "b")):
                        await backend.delete(name)

    if skip_vanished or not backend.capabilities.folders:
        await walk()
        files = [path for path in seen if not path.startswith("b/")]
        assert [path for path in files if path.endswith(".txt")] == ["a/1.txt", "c/4.txt"]
        assert seen[-2:] == ["c", "c/4.txt"]
    else:
        try:
            await walk()
        except (NotFoundError, TransferError):
            return
        assert unreadable and all(path.startswith("b") for path in unreadable)


# ---- deleting


async def test_delete_a_file(backend: Backend) -> None:
    await write_file(backend, "dir/gone.txt", b"x")
    await write_file(backend, "dir/kept.txt", b"y")

    await backend.delete("dir/gone.txt")

    assert await backend.stat("dir/gone.txt") is None
    assert [obj.path for obj in await listing(backend, "dir")] == ["dir/kept.txt"]


async def test_delete_an_empty_directory(backend: Backend) -> None:
    requires(backend.capabilities.folders, "directories are not objects here")
    await backend.make_dir("outer/inner")

    await backend.delete("outer/inner")

    assert await backend.stat("outer/inner") is None
    assert [obj.path for obj in await listing(backend)] == ["outer"]


async def test_delete_a_non_empty_directory_fails(backend: Backend) -> None:
    requires(backend.capabilities.folders, "directories are not objects here")
    await write_file(backend, "full/child.txt", b"x")

    with pytest.raises(TransferError):
        await backend.delete("full")

    assert await backend.read("full/child.txt", 0, 1) == b"x"


async def test_delete_of_missing_raises_not_found(backend: Backend) -> None:
    with pytest.raises(NotFoundError):
        await backend.delete("absent.txt")
    with pytest.raises(NotFoundError):
        await backend.delete("absent-dir/absent.txt")


# ---- properties


async def test_md5_is_stored_on_commit(backend: Backend) -> None:
    requires(backend.capabilities.stored_md5, "no stored Content-MD5")
    data = os.urandom(2 * CHUNK + 5)
    md5 = hashlib.md5(data).digest()

    await write_file(backend, "hashed.bin", data, md5=md5)

    obj = await backend.stat("hashed.bin")
    assert obj is not None
    assert obj.md5 == md5


async def test_content_headers_round_trip(backend: Backend, factory: BackendFactory) -> None:
    requires(factory.keeps_content_headers, f"{factory.name} keeps no content headers")
    headers = ContentHeaders(
        content_type="text/csv; charset=utf-8",
        content_encoding="gzip",
        content_language="de-CH",
        content_disposition='attachment; filename="report.csv"',
        cache_control="max-age=60",
    )

    await write_file(backend, "report.csv", b"a,b\n", props=WriteProps(content=headers))

    obj = await backend.stat("report.csv")
    assert obj is not None
    assert obj.content == headers


async def test_metadata_round_trips(backend: Backend, factory: BackendFactory) -> None:
    requires(factory.keeps_metadata, f"{factory.name} keeps no metadata")
    metadata = {"owner": "ops", "purpose": "conformance"}

    await write_file(backend, "tagged.txt", b"x", props=WriteProps(metadata=metadata))

    obj = await backend.stat("tagged.txt")
    assert obj is not None
    assert obj.metadata == metadata


async def test_last_modified_is_taken_from_the_props(backend: Backend, factory: BackendFactory) -> None:
    requires(factory.sets_last_modified, f"{factory.name} stamps its own times")
    when = datetime(2021, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)

    await write_file(backend, "dated.txt", b"x", props=WriteProps(last_modified=when))

    obj = await backend.stat("dated.txt")
    assert obj is not None
    assert obj.last_modified == when
    assert [o.last_modified for o in await listing(backend)] == [when]


async def test_smb_info_round_trips(backend: Backend) -> None:
    requires(backend.capabilities.smb, "no SMB properties")
    file_smb = SmbInfo(
        attributes="Archive",
        creation_time="2020-01-02T03:04:05.1234567Z",
        last_write_time="2021-06-07T08:09:10.7654321Z",
    )
    dir_smb = SmbInfo(
        attributes="Directory",
        creation_time="2019-11-12T13:14:15.0000001Z",
        last_write_time="2019-11-12T13:14:16.0000002Z",
    )

    await backend.make_dir("smb", WriteProps(smb=dir_smb))
    await write_file(backend, "smb/file.txt", b"x", props=WriteProps(smb=file_smb))

    for path, expected in (("smb", dir_smb), ("smb/file.txt", file_smb)):
        obj = await backend.stat(path)
        assert obj is not None and obj.smb is not None, path
        assert (obj.smb.attributes, obj.smb.creation_time, obj.smb.last_write_time) == (
            expected.attributes,
            expected.creation_time,
            expected.last_write_time,
        ), path
