"""The local backend beyond the shared contract: staying inside its root, never leaving
temporary files behind, symbolic links, file times, and listings that cannot finish."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shareferry.core.backends.local import LocalBackend
from shareferry.core.backends.staging import SUFFIX as PARTIAL_SUFFIX
from shareferry.core.errors import CredentialError, NotFoundError, TransferError
from shareferry.core.objects import Refusal, Refused, StoredObject, WriteProps

OUTSIDE_CONTENT = b"must stay untouched"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the root, with one file, that no write may reach."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_bytes(OUTSIDE_CONTENT)
    return path


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every entry below ``directory`` (files with their bytes), without following links."""
    found: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            relative = str(full.relative_to(directory))
            found[relative] = full.read_bytes() if full.is_file() and not full.is_symlink() else None
    return found


def names(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir())


async def listing(backend: LocalBackend, path: str = "") -> list[StoredObject]:
    return [obj async for obj in backend.list(path, recursive=True)]


async def write(backend: LocalBackend, path: str, data: bytes, props: WriteProps | None = None) -> None:
    writer = await backend.open_writer(path, size=len(data), props=props or WriteProps())
    await writer.write(0, data)
    await writer.commit(None)


# ---- staying inside the root


def escaping_paths(outside: Path) -> list[str]:
    return ["../outside/new.txt", "a/../../outside/new.txt", str(outside / "new.txt"), "a/b\x00c"]


async def test_writes_that_climb_out_are_refused(root: Path, outside: Path) -> None:
    backend = LocalBackend(root)
    before = snapshot(root.parent)

    for path in escaping_paths(outside):
        with pytest.raises(TransferError, match="refusing to write outside the destination"):
            await backend.open_writer(path, size=1, props=WriteProps())
        with pytest.raises(TransferError, match="refusing to write outside the destination"):
            await backend.make_dir(path)
        with pytest.raises(TransferError, match="refusing to write outside the destination"):
            await backend.delete(path)

    assert snapshot(root.parent) == before


async def test_reads_that_climb_out_are_refused(root: Path, outside: Path) -> None:
    backend = LocalBackend(root)

    for path in ["../outside/secret.txt", "a/../../outside/secret.txt", "/etc/passwd"]:
        with pytest.raises(TransferError, match="refusing to read outside the source"):
            await backend.stat(path)
        with pytest.raises(TransferError, match="refusing to read outside the source"):
            await backend.read(path, 0, 100)
    with pytest.raises(TransferError, match="refusing to read outside the source"):
        await listing(backend, "..")


async def test_a_symlinked_directory_pointing_outside_is_refused(root: Path, outside: Path) -> None:
    (root / "link").symlink_to(outside, target_is_directory=True)
    backend = LocalBackend(root, follow_symlinks=True)
    before = snapshot(root.parent)

    with pytest.raises(TransferError, match="refusing to write outside the destination"):
        await backend.open_writer("link/new.txt", size=1, props=WriteProps())
    with pytest.raises(TransferError, match="refusing to write outside the destination"):
        await backend.open_writer("link/deeper/new.txt", size=1, props=WriteProps())
    with pytest.raises(TransferError, match="refusing to write outside the destination"):
        await backend.make_dir("link/sub")
    with pytest.raises(TransferError, match="refusing to write outside the destination"):
        await backend.delete("link/secret.txt")

    assert snapshot(root.parent) == before
    assert (outside / "secret.txt").read_bytes() == OUTSIDE_CONTENT


async def test_a_symlinked_file_pointing_outside_is_replaced_not_written_through(
    root: Path, outside: Path
) -> None:
    (root / "secret.txt").symlink_to(outside / "secret.txt")
    backend = LocalBackend(root)

    await write(backend, "secret.txt", b"new bytes")

    assert (outside / "secret.txt").read_bytes() == OUTSIDE_CONTENT
    assert not (root / "secret.txt").is_symlink()
    assert (root / "secret.txt").read_bytes() == b"new bytes"


async def test_a_symlink_that_stays_inside_the_root_may_be_written_through(root: Path) -> None:
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    backend = LocalBackend(root)

    await write(backend, "alias/file.txt", b"inside")

    assert (root / "real" / "file.txt").read_bytes() == b"inside"


async def test_delete_of_the_root_is_refused(root: Path) -> None:
    backend = LocalBackend(root)

    with pytest.raises(TransferError, match="refusing to delete the root"):
        await backend.delete("")

    assert root.is_dir()


# ---- temporary files


async def test_the_writer_stages_under_a_hidden_partial_name_until_commit(root: Path) -> None:
    backend = LocalBackend(root)
    writer = await backend.open_writer("staged.txt", size=5, props=WriteProps())
    await writer.write(0, b"hello")

    staged = names(root)
    assert len(staged) == 1
    assert staged[0].startswith(".staged.txt.shareferry-")
    assert staged[0].endswith(PARTIAL_SUFFIX)

    await writer.commit(None)

    assert names(root) == ["staged.txt"]
    assert (root / "staged.txt").read_bytes() == b"hello"


async def test_abort_removes_the_temporary_file(root: Path) -> None:
    backend = LocalBackend(root)
    writer = await backend.open_writer("sub/aborted.bin", size=3 * 1024 * 1024, props=WriteProps())
    await asyncio.gather(writer.write(2 * 1024 * 1024, os.urandom(1024 * 1024)), writer.write(0, b"head"))

    await writer.abort()
    await writer.abort()

    assert names(root / "sub") == []
    with pytest.raises(TransferError):
        await writer.write(0, b"late")
    with pytest.raises(TransferError):
        await writer.commit(None)
    assert names(root / "sub") == []


SMALL_FILE_LIMIT = 4096


@contextlib.contextmanager
def small_file_size_limit() -> Iterator[None]:
    """Let this process write files of at most 4 KiB (writes past it fail with EFBIG).

    Held only around the one write under test: the limit applies to every file the process
    writes, including pytest's own output when it is redirected to a file (as in CI)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (SMALL_FILE_LIMIT, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@pytest.mark.parametrize("size", [100, 1024 * 1024], ids=["inline", "threaded"])
async def test_a_failed_write_leaves_no_temporary_file(root: Path, size: int) -> None:
    backend = LocalBackend(root)
    writer = await backend.open_writer("too-big.bin", size=0, props=WriteProps())

    with (
        pytest.raises(TransferError, match=r"cannot write .*too-big\.bin: File too large"),
        small_file_size_limit(),
    ):
        await writer.write(2 * SMALL_FILE_LIMIT, b"x" * size)

    assert names(root) == []
    with pytest.raises(TransferError, match=r"earlier write failed|already discarded"):
        await writer.commit(None)
    await writer.abort()
    assert names(root) == []


async def test_a_failed_commit_leaves_no_temporary_file(root: Path) -> None:
    backend = LocalBackend(root)
    writer = await backend.open_writer("target", size=4, props=WriteProps())
    await writer.write(0, b"data")
    (root / "target").mkdir()  # something else put a directory there meanwhile
    (root / "target" / "child").write_bytes(b"x")

    with pytest.raises(TransferError, match="cannot commit"):
        await writer.commit(None)

    assert names(root) == ["target"]
    assert names(root / "target") == ["child"]


async def test_a_directory_in_the_way_of_a_file_is_refused_at_once(root: Path) -> None:
    (root / "dir").mkdir()
    backend = LocalBackend(root)

    with pytest.raises(TransferError, match="a directory is in the way"):
        await backend.open_writer("dir", size=1, props=WriteProps())

    assert names(root) == ["dir"]


async def test_a_file_in_the_way_of_a_parent_directory_is_refused(root: Path) -> None:
    (root / "file").write_bytes(b"x")
    backend = LocalBackend(root)

    with pytest.raises(TransferError, match="a file is in the way"):
        await backend.open_writer("file/below.txt", size=1, props=WriteProps())

    assert names(root) == ["file"]


async def test_a_name_near_the_length_limit_can_be_staged(root: Path) -> None:
    name = "é" * 120 + ".txt"  # 244 bytes: the temporary name has to be shortened
    backend = LocalBackend(root)

    await write(backend, name, b"long")

    assert names(root) == [name]


async def test_fsync_commits_the_same_bytes(root: Path) -> None:
    backend = LocalBackend(root, fsync=True)
    data = os.urandom(200_000)

    await write(backend, "durable.bin", data)

    assert (root / "durable.bin").read_bytes() == data


# ---- a whole small file in one go (what the engine uses for one-chunk files)


async def test_write_whole_lands_the_bytes_and_time_and_reports_the_length(root: Path) -> None:
    backend = LocalBackend(root)
    when = datetime(2021, 6, 1, 12, 0, 0, tzinfo=UTC)
    data = os.urandom(20_000)

    landed = await backend.write_whole("new dir/ü #1.bin", data, WriteProps(last_modified=when))

    assert landed == len(data)
    assert (root / "new dir" / "ü #1.bin").read_bytes() == data
    assert (root / "new dir" / "ü #1.bin").stat().st_mtime == when.timestamp()
    assert names(root / "new dir") == ["ü #1.bin"]  # no temporary name left


async def test_write_whole_replaces_an_existing_file(root: Path) -> None:
    (root / "f.txt").write_bytes(b"old and longer")
    backend = LocalBackend(root)

    assert await backend.write_whole("f.txt", b"new", WriteProps()) == 3

    assert (root / "f.txt").read_bytes() == b"new"
    assert names(root) == ["f.txt"]


async def test_a_failed_write_whole_leaves_nothing_behind(root: Path) -> None:
    backend = LocalBackend(root)
    (root / "dir").mkdir()

    with pytest.raises(TransferError, match="a directory is in the way"):
        await backend.write_whole("dir", b"x", WriteProps())
    with (
        pytest.raises(TransferError, match=r"cannot write .*big\.bin: File too large"),
        small_file_size_limit(),
    ):
        await backend.write_whole("big.bin", b"x" * (2 * SMALL_FILE_LIMIT), WriteProps())
    with pytest.raises(TransferError, match="outside"):
        await backend.write_whole("../escape.txt", b"x", WriteProps())

    assert names(root) == ["dir"]
    assert names(root / "dir") == []


# ---- times


async def test_mtime_is_set_from_the_props(root: Path) -> None:
    backend = LocalBackend(root)
    when = datetime(2020, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)

    await write(backend, "dated.txt", b"x", WriteProps(last_modified=when))

    assert (root / "dated.txt").stat().st_mtime_ns == int(when.timestamp()) * 10**9 + 123456 * 1000
    obj = await backend.stat("dated.txt")
    assert obj is not None
    assert obj.last_modified == when


async def test_without_a_time_in_the_props_the_mtime_is_the_write_time(root: Path) -> None:
    backend = LocalBackend(root)
    started = datetime.now(UTC)

    await write(backend, "now.txt", b"x")

    obj = await backend.stat("now.txt")
    assert obj is not None and obj.last_modified is not None
    assert started.replace(microsecond=0) <= obj.last_modified <= datetime.now(UTC)


# ---- symbolic links


@pytest.fixture
def linked_tree(root: Path) -> Path:
    """real/f.txt, links to it (directory, file), two loops and two dead links."""
    (root / "real").mkdir()
    (root / "real" / "f.txt").write_bytes(b"data")
    (root / "real" / "back").symlink_to("..", target_is_directory=True)
    (root / "real" / "again").symlink_to(".", target_is_directory=True)
    (root / "link_dir").symlink_to("real", target_is_directory=True)
    (root / "link_file").symlink_to("real/f.txt")
    (root / "broken").symlink_to("nowhere")
    (root / "self_loop").symlink_to("self_loop")
    return root


async def test_symlinks_are_skipped_unless_followed(linked_tree: Path) -> None:
    backend = LocalBackend(linked_tree)

    objects = await listing(backend)
    assert [obj.path for obj in objects if obj.refusal is None] == ["real", "real/f.txt"]
    refused = {obj.path: obj.refusal for obj in objects if obj.refusal is not None}
    assert set(refused) == {"broken", "link_dir", "link_file", "real/again", "real/back", "self_loop"}
    assert all(r.kind is Refused.SPECIAL and "symbolic link" in r.reason for r in refused.values())
    for link in ("link_file", "link_dir"):
        found = await backend.stat(link)
        assert found is not None and found.refusal is not None and not found.is_dir
    with pytest.raises(NotFoundError):
        await backend.read("link_file", 0, 4)


async def test_followed_symlinks_are_listed_and_loops_are_cut(linked_tree: Path) -> None:
    backend = LocalBackend(linked_tree, follow_symlinks=True)

    objects = await asyncio.wait_for(listing(backend), timeout=10)
    refused = {obj.path: obj.refusal.reason for obj in objects if obj.refusal is not None}
    objects = [obj for obj in objects if obj.refusal is None]

    assert refused == {
        "broken": "not a regular file (a broken symbolic link)",
        "link_dir/again": "a symbolic link to a directory above it (following it would never end)",
        "link_dir/back": "a symbolic link to a directory above it (following it would never end)",
        "real/again": "a symbolic link to a directory above it (following it would never end)",
        "real/back": "a symbolic link to a directory above it (following it would never end)",
        "self_loop": "not a regular file (a loop of symbolic links)",
    }
    assert [(obj.path, obj.is_dir, obj.size) for obj in objects] == [
        ("link_dir", True, 0),
        ("link_dir/f.txt", False, 4),
        ("link_file", False, 4),
        ("real", True, 0),
        ("real/f.txt", False, 4),
    ]
    assert await backend.read("link_dir/f.txt", 0, 10) == b"data"
    linked = await backend.stat("link_file")
    assert linked is not None and linked.size == 4
    broken = await backend.stat("broken")
    assert broken is not None and broken.refusal is not None and "broken" in broken.refusal.reason


# ---- listings


async def test_special_files_are_listed_as_refused(root: Path) -> None:
    (root / "plain.txt").write_bytes(b"x")
    os.mkfifo(root / "pipe")
    backend = LocalBackend(root)

    objects = await listing(backend)
    assert [(obj.path, obj.refusal) for obj in objects] == [
        ("pipe", Refusal(Refused.SPECIAL, "not a regular file (a named pipe)")),
        ("plain.txt", None),
    ]
    piped = await backend.stat("pipe")
    assert piped is not None and piped.refusal == objects[0].refusal


async def test_a_directory_that_vanishes_mid_listing_is_listed_as_unreadable(root: Path) -> None:
    for name in ("a/1.txt", "b/2.txt"):
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_bytes(b"x")
    backend = LocalBackend(root)
    walk = backend.list("", recursive=True)
    first = await anext(walk)
    assert first.path == "a"

    shutil.rmtree(root / "b")

    rest = [obj async for obj in walk]
    assert [obj.path for obj in rest] == ["a/1.txt", "b"]
    unread = rest[1].refusal
    assert unread is not None and unread.kind is Refused.UNREADABLE and "cannot list it" in unread.reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory whatever its mode")
async def test_an_unreadable_directory_is_listed_as_unreadable(root: Path) -> None:
    (root / "locked").mkdir()
    (root / "locked" / "hidden.txt").write_bytes(b"x")
    (root / "locked").chmod(0)
    try:
        (locked,) = await listing(LocalBackend(root))
        assert locked.refusal is not None and locked.refusal.kind is Refused.UNREADABLE
        with pytest.raises(CredentialError):
            await listing(LocalBackend(root), "locked")
    finally:
        (root / "locked").chmod(0o755)


async def test_a_missing_root_lists_as_not_found_and_is_created_on_write(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "later")

    assert await backend.stat("") is None
    with pytest.raises(NotFoundError):
        await listing(backend)

    await write(backend, "deep/file.txt", b"x")

    assert (tmp_path / "later" / "deep" / "file.txt").read_bytes() == b"x"


async def test_describe_gives_the_local_path(root: Path) -> None:
    backend = LocalBackend(root)

    assert backend.describe() == str(root)
    assert backend.describe("a/b.txt") == str(root / "a" / "b.txt")
