"""The copy planner: where each source object lands, the way ``azcopy copy`` lays it out.

Sources are the in-memory reference backend (a share-like service) and the local backend over a
temporary directory (for what only local sources allow); expected layouts are derived from what
the source lists, so the tests say the rule, not a memorised answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shareferry.core.backends.base import Backend, Capabilities
from shareferry.core.backends.local import LocalBackend
from shareferry.core.backends.memory import MemoryBackend
from shareferry.core.errors import NotFoundError, UsageError
from shareferry.core.filters import ObjectFilter
from shareferry.core.objects import StoredObject
from shareferry.core.options import Filters
from shareferry.core.planning.copy_plan import Transfer, plan_copy
from shareferry.core.planning.shard import Shard

FILES = (
    "data/readme.txt",
    "data/my1.txt",
    "data/my2.txt",
    "data/notes.md",
    "data/docs/a.txt",
    "data/docs/b.pdf",
    "data/docs/private/secret.txt",
    "data/logs/app/1.log",
    "data/logs/app/2.log",
    "other/x.txt",
)
EMPTY_DIRS = ("data/empty",)
NO_FILTER = ObjectFilter.build(Filters())


class ListingRecorder(MemoryBackend):
    """The memory backend, noting every listing asked of it and every entry it handed out."""

    def __init__(self, *, name: str) -> None:
        super().__init__(name=name)
        self.listed: list[str] = []
        self.handed_out = 0

    async def list(self, path: str, *, recursive: bool) -> AsyncIterator[StoredObject]:
        self.listed.append(path)
        async for obj in super().list(path, recursive=recursive):
            self.handed_out += 1
            yield obj


async def _seeded(name: str = "share1") -> ListingRecorder:
    backend = ListingRecorder(name=name)
    for path in FILES:
        backend.put(path, path.encode())
    for path in EMPTY_DIRS:
        await backend.make_dir(path)
    return backend


def _blob_like(name: str = "container") -> MemoryBackend:
    backend = MemoryBackend(name=name)
    backend.capabilities = Capabilities(folders=False)  # blob: no real folders
    return backend


async def _plan(
    source: Backend,
    source_path: str,
    *,
    destination: Backend | None = None,
    destination_path: str = "",
    hint: bool = False,
    recursive: bool = True,
    filters: Filters | None = None,
    shard: Shard | None = None,
) -> list[Transfer]:
    plan = plan_copy(
        source,
        source_path,
        destination=destination if destination is not None else MemoryBackend(name="dest"),
        destination_path=destination_path,
        destination_is_dir_hint=hint,
        recursive=recursive,
        object_filter=ObjectFilter.build(filters) if filters is not None else NO_FILTER,
        shard=shard,
    )
    return [transfer async for transfer in plan]


async def _below(backend: Backend, directory: str) -> list[StoredObject]:
    return [obj async for obj in backend.list(directory, recursive=True)]


def _relative(directory: str, path: str) -> str:
    return path[len(directory) + 1 :] if directory else path


def _layout(transfers: list[Transfer]) -> list[tuple[str, str, bool]]:
    return [(t.source.path, t.destination, t.is_dir) for t in transfers]


# ---- a single file


async def test_file_into_an_existing_directory() -> None:
    source, destination = await _seeded(), MemoryBackend(name="dest")
    await destination.make_dir("incoming")
    plan = await _plan(source, "data/readme.txt", destination=destination, destination_path="incoming")
    assert _layout(plan) == [("data/readme.txt", "incoming/readme.txt", False)]
    assert plan[0].source.size == len(b"data/readme.txt")


async def test_file_to_a_new_name() -> None:
    source, destination = await _seeded(), MemoryBackend(name="dest")
    await destination.make_dir("incoming")
    plan = await _plan(
        source, "data/readme.txt", destination=destination, destination_path="incoming/renamed.txt"
    )
    assert _layout(plan) == [("data/readme.txt", "incoming/renamed.txt", False)]


@pytest.mark.parametrize(("destination_path", "hint"), [("newdir/", False), ("newdir", True)])
async def test_file_into_a_directory_marked_by_slash_or_hint(destination_path: str, hint: bool) -> None:
    plan = await _plan(await _seeded(), "data/readme.txt", destination_path=destination_path, hint=hint)
    assert _layout(plan) == [("data/readme.txt", "newdir/readme.txt", False)]


async def test_file_into_the_destination_root() -> None:
    plan = await _plan(await _seeded(), "data/docs/a.txt", destination_path="")
    assert _layout(plan) == [("data/docs/a.txt", "a.txt", False)]


async def test_single_file_is_filtered_by_its_name() -> None:
    source = await _seeded()
    assert await _plan(source, "data/readme.txt", filters=Filters(include_patterns=("*.md",))) == []
    assert len(await _plan(source, "data/notes.md", filters=Filters(include_patterns=("*.md",)))) == 1


async def test_missing_source_is_not_found_with_its_name() -> None:
    with pytest.raises(NotFoundError) as caught:
        await _plan(await _seeded(), "data/nothing-here.txt")
    assert str(caught.value) == "source not found: memory://share1/data/nothing-here.txt"


# ---- a directory


async def test_directory_without_recursive_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        await _plan(await _seeded(), "data/docs", recursive=False)
    message = str(caught.value)
    assert message.startswith("memory://share1/data/docs is a directory: use --recursive")
    assert "/*" in message


async def test_directory_is_recreated_below_the_destination() -> None:
    source = await _seeded()
    plan = await _plan(source, "data", destination_path="backup")
    root = await source.stat("data")
    assert root is not None
    expected = [("data", "backup/data", True)] + [
        (obj.path, f"backup/data/{_relative('data', obj.path)}", obj.is_dir)
        for obj in await _below(source, "data")
    ]
    assert _layout(plan) == expected
    assert ("data/empty", "backup/data/empty", True) in _layout(plan)  # empty folders too
    assert not any(t.source.path.startswith("other/") for t in plan)


async def test_directory_folders_come_before_their_contents() -> None:
    plan = await _plan(await _seeded(), "data", destination_path="backup")
    seen_dirs: set[str] = set()
    for transfer in plan:
        parent = transfer.destination.rpartition("/")[0]
        assert parent in seen_dirs or parent == "backup", transfer
        if transfer.is_dir:
            seen_dirs.add(transfer.destination)


async def test_no_folders_when_the_destination_has_none() -> None:
    source = await _seeded()
    with_folders = await _plan(source, "data", destination_path="backup")
    blob_plan = await _plan(source, "data", destination=_blob_like(), destination_path="backup")
    assert not any(t.is_dir for t in blob_plan)
    assert _layout(blob_plan) == [entry for entry in _layout(with_folders) if not entry[2]]


async def test_file_only_filters_copy_no_folders() -> None:
    plan = await _plan(
        await _seeded(), "data", destination_path="b", filters=Filters(include_patterns=("*.txt",))
    )
    assert not any(t.is_dir for t in plan)
    assert {t.source.name for t in plan} == {"readme.txt", "my1.txt", "my2.txt", "a.txt", "secret.txt"}


async def test_share_root_to_share_root_puts_the_contents_straight_in() -> None:
    source = await _seeded()
    plan = await _plan(source, "", destination_path="")
    assert _layout(plan) == [(obj.path, obj.path, obj.is_dir) for obj in await _below(source, "")]


async def test_share_root_to_a_directory_is_recreated_under_its_name() -> None:
    source = await _seeded(name="photos")
    plan = await _plan(source, "", destination_path="archive")
    assert _layout(plan)[0] == ("", "archive/photos", True)
    assert _layout(plan)[1:] == [
        (obj.path, f"archive/photos/{obj.path}", obj.is_dir) for obj in await _below(source, "")
    ]


# ---- dir/* and wildcards


async def test_trailing_star_copies_the_contents_only() -> None:
    source = await _seeded()
    plan = await _plan(source, "data/*", destination_path="backup")
    assert _layout(plan) == [
        (obj.path, f"backup/{_relative('data', obj.path)}", obj.is_dir)
        for obj in await _below(source, "data")
    ]


async def test_trailing_star_without_recursive_copies_the_files_directly_inside() -> None:
    source = await _seeded()
    plan = await _plan(source, "data/*", destination_path="backup", recursive=False)
    top_files = [obj async for obj in source.list("data", recursive=False) if not obj.is_dir]
    assert _layout(plan) == [(obj.path, f"backup/{obj.name}", False) for obj in top_files]


async def test_wildcard_in_the_last_segment() -> None:
    plan = await _plan(await _seeded(), "data/my*.txt", destination_path="out")
    assert _layout(plan) == [("data/my1.txt", "out/my1.txt", False), ("data/my2.txt", "out/my2.txt", False)]


async def test_wildcard_matching_one_file_still_lands_inside_the_destination() -> None:
    plan = await _plan(await _seeded(), "data/read*", destination_path="out.txt")
    assert _layout(plan) == [("data/readme.txt", "out.txt/readme.txt", False)]


async def test_wildcard_matching_nothing_plans_nothing() -> None:
    assert await _plan(await _seeded(), "data/zz*", destination_path="out") == []


async def test_wildcard_below_a_missing_directory_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="source not found: memory://share1/nowhere"):
        await _plan(await _seeded(), "nowhere/*.txt")


async def test_wildcard_before_the_last_segment_is_refused_for_a_service() -> None:
    with pytest.raises(UsageError, match="only allowed in the last segment of a URL"):
        await _plan(await _seeded(), "data/d*/a.txt")


def _local_tree(root: Path) -> LocalBackend:
    for path in FILES:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.encode())
    for path in EMPTY_DIRS:
        (root / path).mkdir(parents=True, exist_ok=True)
    return LocalBackend(root)


async def test_wildcards_in_directory_segments_for_a_local_source(tmp_path: Path) -> None:
    source = _local_tree(tmp_path / "src")
    plan = await _plan(source, "data/*o*/*.txt", destination_path="out")
    # relative to the part before the first wildcard ("data"), no top directory
    assert _layout(plan) == [("data/docs/a.txt", "out/docs/a.txt", False)]


async def test_wildcard_matching_directories_brings_them_whole(tmp_path: Path) -> None:
    source = _local_tree(tmp_path / "src")
    plan = await _plan(source, "*/lo*", destination_path="out")
    assert _layout(plan) == [
        ("data/logs", "out/data/logs", True),
        ("data/logs/app", "out/data/logs/app", True),
        ("data/logs/app/1.log", "out/data/logs/app/1.log", False),
        ("data/logs/app/2.log", "out/data/logs/app/2.log", False),
    ]
    not_recursive = await _plan(source, "*/do*", destination_path="out", recursive=False)
    assert _layout(not_recursive) == [
        ("data/docs/a.txt", "out/data/docs/a.txt", False),
        ("data/docs/b.pdf", "out/data/docs/b.pdf", False),
    ]


async def test_local_root_is_recreated_under_its_directory_name(tmp_path: Path) -> None:
    source = _local_tree(tmp_path / "src")
    plan = await _plan(
        LocalBackend(tmp_path / "src" / "data"), "", destination=_blob_like(), destination_path=""
    )
    expected = [
        (_relative("data", obj.path), f"data/{_relative('data', obj.path)}", False)
        for obj in await _below(source, "data")
        if not obj.is_dir
    ]
    assert _layout(plan) == expected


async def test_include_path_cannot_be_combined_with_wildcards() -> None:
    with pytest.raises(UsageError, match="--include-path cannot be combined with wildcards"):
        await _plan(await _seeded(), "data/my*", filters=Filters(include_paths=("docs",)))


# ---- filters while walking


async def test_exclude_path_prunes_whole_subtrees_without_listing_them() -> None:
    source = await _seeded()
    plan = await _plan(
        source, "data", destination_path="b", filters=Filters(exclude_paths=("logs;docs/private",))
    )
    planned = {t.source.path for t in plan}
    assert not any(path.startswith(("data/logs", "data/docs/private")) for path in planned)
    assert {"data/docs", "data/docs/a.txt", "data/empty", "data/readme.txt"} <= planned
    assert "data/logs" not in source.listed
    assert "data/docs/private" not in source.listed


async def test_include_path_is_relative_to_the_source_directory() -> None:
    source = await _seeded()
    plan = await _plan(
        source, "data", destination_path="b", filters=Filters(include_paths=("docs;readme.txt",))
    )
    assert _layout(plan) == [
        ("data/docs", "b/data/docs", True),
        ("data/docs/a.txt", "b/data/docs/a.txt", False),
        ("data/docs/b.pdf", "b/data/docs/b.pdf", False),
        ("data/docs/private", "b/data/docs/private", True),
        ("data/docs/private/secret.txt", "b/data/docs/private/secret.txt", False),
        ("data/readme.txt", "b/data/readme.txt", False),
    ]
    assert "data/logs" not in source.listed  # away from every included path: never listed


async def test_dates_filter_files_while_walking() -> None:
    source = MemoryBackend(name="s")
    noon = datetime(2024, 5, 1, 12, tzinfo=UTC)
    source.put("d/old.txt", b"1", last_modified=datetime(2024, 5, 1, 11, tzinfo=UTC))
    source.put("d/noon.txt", b"2", last_modified=noon)
    source.put("d/new.txt", b"3", last_modified=datetime(2024, 5, 1, 13, tzinfo=UTC))
    plan = await _plan(source, "d", filters=Filters(include_after=noon))
    assert [t.destination for t in plan] == ["d/new.txt", "d/noon.txt"]


async def test_the_plan_streams_while_the_source_is_listed() -> None:
    source = ListingRecorder(name="big")
    for index in range(2000):
        source.put(f"many/f{index:05}.bin", b"x")
    plan = plan_copy(
        source,
        "many",
        destination=MemoryBackend(name="dest"),
        destination_path="",
        destination_is_dir_hint=False,
        recursive=True,
        object_filter=NO_FILTER,
    )
    first = await anext(plan)
    second = await anext(plan)
    assert (first.destination, second.destination) == ("many", "many/f00000.bin")
    assert source.handed_out < 10  # not the 2000 entries a list-first planner would read
    await plan.aclose()


# ---- shards


async def _sharded_source() -> MemoryBackend:
    source = MemoryBackend(name="s")
    for index in range(200):
        source.put(f"tree/d{index % 7}/f{index:03}.bin", b"x")
    await source.make_dir("tree/empty")
    return source


async def test_three_shards_are_disjoint_and_complete() -> None:
    source = await _sharded_source()
    whole = await _plan(source, "tree", destination_path="out")
    all_files = {t.destination for t in whole if not t.is_dir}
    all_folders = [t.destination for t in whole if t.is_dir]
    assert len(all_files) == 200

    shards = [
        await _plan(source, "tree", destination_path="out", shard=Shard(index, 3)) for index in range(3)
    ]
    file_sets = [{t.destination for t in plan if not t.is_dir} for plan in shards]
    assert sum(len(files) for files in file_sets) == 200  # disjoint ...
    assert set().union(*file_sets) == all_files  # ... and complete
    assert all(files for files in file_sets)  # every shard has work
    for plan in shards:  # folders belong to every shard
        assert [t.destination for t in plan if t.is_dir] == all_folders

    again = [await _plan(source, "tree", destination_path="out", shard=Shard(index, 3)) for index in range(3)]
    assert [_layout(plan) for plan in again] == [_layout(plan) for plan in shards]


def test_shard_owners_do_not_depend_on_the_process() -> None:
    paths = [f"tree/d{index % 7}/f{index:03}.bin" for index in range(200)]
    here = [next(i for i in range(3) if Shard(i, 3).owns(path)) for path in paths]
    program = (
        "import json, sys\n"
        "from shareferry.core.planning.shard import Shard\n"
        "paths = json.load(sys.stdin)\n"
        "print(json.dumps([next(i for i in range(3) if Shard(i, 3).owns(p)) for p in paths]))\n"
    )
    for seed in ("1", "4242"):
        result = subprocess.run(
            [sys.executable, "-c", program],
            input=json.dumps(paths),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert json.loads(result.stdout) == here


@pytest.mark.parametrize(("index", "count"), [(3, 3), (-1, 2), (0, 0)])
def test_invalid_shards_are_usage_errors(index: int, count: int) -> None:
    with pytest.raises(UsageError, match="the index must be 0 to count - 1"):
        Shard(index, count)
