"""Trees deeper than any recursion limit, copied and synced as a user runs ``shareferry``.

Each tree is DEPTH nested directories ``d/d/.../d`` with a file every STEP levels and one at
the bottom, built directly (the SDK on the Files emulator, blob names in Azurite, ``os.mkdir``
locally), so no ShareFerry code is involved in making it. Every walk (listing, the planner's
one-level-at-a-time walk under path filters, the sync's march, deletion) must list it whole:
the destination is byte-identical, the counters add up, and no traceback is printed.

On Azure Files (and on the local disk, whose tree is uploaded there) the tree is 250 levels
deep, the most Azure Files allows (the emulator refuses more, as Azure does); in Blob 300. Below Python's default recursion limit a walk that
recursed once per level can still pass, so the same trees are also walked in this process
(planning a copy, with and without path filters, and marching a sync) under a recursion limit of
200: no walk may spend a frame per level. Uploads of such a tree also show that folders are
created once each: racing their own parents, they were created again with their whole chain each
time (a number of requests in the square of the depth).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient
from azure.storage.fileshare import ShareClient, ShareServiceClient

from shareferry.core.backends.factory import open_destination, open_source
from shareferry.core.filters import ObjectFilter
from shareferry.core.locations import resolve
from shareferry.core.options import Filters, TransferOptions
from shareferry.core.planning.copy_plan import plan_copy
from shareferry.core.planning.sync_plan import Compare, SyncScope, plan_sync
from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.cli.test_copy_cli import account_sas, share_url, shareferry_all
from tests.cli.test_sync_cli import blob_sas, container_url, new_container
from tests.support.trees import read_local, read_share

DEPTH = 249  # below deep/: 250 levels of directories, the most Azure Files allows
BLOB_DEPTH = 300
STEP = 100
BOTTOM = os.urandom(70_000)  # several chunks of 16 KiB on its way down


def deep_files(depth: int) -> dict[str, bytes]:
    """The files of a tree ``depth`` directories deep, by path below its top directory."""
    files = {}
    for level in range(STEP, depth + 1, STEP):
        files["d/" * level + f"at-{level}.txt"] = f"level {level}\n".encode() * level
    files["d/" * depth + "bottom.bin"] = BOTTOM
    files["top.txt"] = b"the top\n"
    return files


def deep_dirs(depth: int) -> set[str]:
    return {"/".join(["d"] * level) for level in range(1, depth + 1)}


def make_deep_share(share: ShareClient, top: str, depth: int) -> None:
    share.get_directory_client(top).create_directory()
    current = top
    for _ in range(depth):
        current += "/d"
        share.get_directory_client(current).create_directory()
    for path, data in deep_files(depth).items():
        share.get_file_client(f"{top}/{path}").upload_file(data)


def make_deep_local(root: Path, depth: int) -> None:
    current = root
    current.mkdir(parents=True)
    for _ in range(depth):
        current = current / "d"
        current.mkdir()
    for path, data in deep_files(depth).items():
        (root / path).write_bytes(data)


def make_deep_container(container: ContainerClient, top: str, depth: int) -> None:
    for path, data in deep_files(depth).items():
        container.upload_blob(f"{top}/{path}", data)


def below(listing: dict[str, bytes], top: str) -> dict[str, bytes]:
    return {path[len(top) + 1 :]: data for path, data in listing.items() if path.startswith(f"{top}/")}


@dataclass
class DeepRuns:
    """Every command's result, and where each landed."""

    results: dict[str, subprocess.CompletedProcess[str]]
    share: ShareClient
    copies: dict[str, ShareClient]  # per upload command, a share of its own
    tmp: Path
    files_url: str  # the deep tree on the Files emulator, with a SAS
    blob_url: str  # the deep tree in Azurite, with a SAS


@pytest.fixture(scope="module")
def deep_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeepRuns]:
    tmp = tmp_path_factory.mktemp("deep")
    make_deep_local(tmp / "local" / "deep", DEPTH)
    container = new_container()
    make_deep_container(container, "deep", BLOB_DEPTH)
    token = blob_sas()
    with RunningEmulator(EmulatorConfig()) as emulator:
        account = emulator.account()
        service = ShareServiceClient(
            emulator.account_url(), credential={"account_name": account.name, "account_key": account.key}
        )
        share = service.create_share("deep")
        copies = {name: service.create_share(name) for name in ("ff-copy", "ff-sync", "lf-copy", "lf-sync")}
        make_deep_share(share, "deep", DEPTH)
        sas = account_sas(emulator)
        source = share_url(emulator, share, "deep", sas)
        json_out = ("--output-type", "json")
        commands = {
            "FileLocal copy": ["copy", source, str(tmp / "fl-copy"), "--recursive", *json_out],
            "FileLocal copy pruned": [
                "copy", source, str(tmp / "fl-pruned"), "--recursive", "--exclude-path", "elsewhere", *json_out,
            ],
            "FileLocal sync": ["sync", source, str(tmp / "fl-sync"), "--delete-destination", "true", *json_out],
            "FileFile copy": ["copy", source, share_url(emulator, copies["ff-copy"], "", sas), "--recursive", *json_out],
            "FileFile sync": ["sync", source, share_url(emulator, copies["ff-sync"], "", sas), *json_out],
            "LocalFile copy": [
                "copy", str(tmp / "local" / "deep"), share_url(emulator, copies["lf-copy"], "", sas), "--recursive",
                *json_out,
            ],
            "LocalFile sync": [
                "sync", str(tmp / "local" / "deep"), share_url(emulator, copies["lf-sync"], "", sas), *json_out,
            ],
            "BlobLocal copy": [
                "copy", container_url(container, token, "deep"), str(tmp / "bl-copy"), "--recursive", *json_out,
            ],
            "BlobLocal sync": ["sync", container_url(container, token, "deep"), str(tmp / "bl-sync"), *json_out],
        }  # fmt: skip
        for name, args in commands.items():
            args += ["--from-to", name.split()[0]]
        (tmp / "fl-sync").mkdir()
        (tmp / "bl-sync").mkdir()
        (tmp / "fl-sync" / "extra" / "d" / "d").mkdir(parents=True)  # deleted by the sync
        (tmp / "fl-sync" / "extra" / "d" / "d" / "gone.txt").write_bytes(b"not at the source")
        first = shareferry_all(dict(list(commands.items())[:5]))
        second = shareferry_all(dict(list(commands.items())[5:]))
        yield DeepRuns(
            {**first, **second}, share, copies, tmp, source, container_url(container, token, "deep")
        )


def end_of_job(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    (end,) = [json.loads(line) for line in result.stdout.splitlines() if '"EndOfJob"' in line]
    content: dict[str, str] = json.loads(end["MessageContent"])
    assert content["JobStatus"] == "Completed", content
    return content


COPIES = ["FileLocal copy", "FileLocal copy pruned", "FileLocal sync", "BlobLocal copy", "BlobLocal sync"]


@pytest.mark.azurite
@pytest.mark.parametrize("name", COPIES)
def test_a_deep_tree_downloads_whole(deep_runs: DeepRuns, name: str) -> None:
    depth = BLOB_DEPTH if name.startswith("Blob") else DEPTH
    content = end_of_job(deep_runs.results[name])
    target = (
        deep_runs.tmp
        / {
            "FileLocal copy": "fl-copy/deep",
            "FileLocal copy pruned": "fl-pruned/deep",
            "FileLocal sync": "fl-sync",
            "BlobLocal copy": "bl-copy/deep",
            "BlobLocal sync": "bl-sync",
        }[name]
    )
    landed = read_local(target)
    assert landed.files == deep_files(depth)
    if name.startswith("File"):
        assert deep_dirs(depth) <= landed.dirs
    assert landed.dirs - deep_dirs(depth) == set()  # the sync deleted extra/... whole
    if name == "FileLocal sync":
        assert content["DeleteTransfersCompleted"] == "4"  # extra, extra/d, extra/d/d, gone.txt
    elif not name.endswith("sync"):
        assert content["TransfersCompleted"] == str(
            len(deep_files(depth)) + (depth + 1 if name.startswith("File") else 0)  # the top one too
        )


@pytest.mark.azurite
@pytest.mark.parametrize("name", ["FileFile copy", "FileFile sync", "LocalFile copy", "LocalFile sync"])
def test_a_deep_tree_uploads_whole(deep_runs: DeepRuns, name: str) -> None:
    end_of_job(deep_runs.results[name])
    share = deep_runs.copies[{"FileFile": "ff", "LocalFile": "lf"}[name.split()[0]] + "-" + name.split()[1]]
    top = "deep" if name.endswith("copy") else ""  # a copy recreates deep/, a sync its contents
    landed = read_share(share, top)
    files = below(landed.files, top) if top else landed.files
    dirs = {path[len(top) + 1 :] for path in landed.dirs} if top else landed.dirs
    assert files == deep_files(DEPTH)
    assert dirs == deep_dirs(DEPTH)


@pytest.mark.azurite
def test_a_deep_tree_counts_every_file_and_folder(deep_runs: DeepRuns) -> None:
    content = end_of_job(deep_runs.results["FileLocal copy"])
    assert content["FileTransfers"] == str(len(deep_files(DEPTH)))
    assert content["FolderPropertyTransfers"] == str(DEPTH + 1)  # the top one too


# ---- no walk recurses: the same trees walked in this process under a low recursion limit --------

LOW_LIMIT = 200  # below the depth of the trees: a walk that recursed per level would break


async def walk_deep(
    source_text: str, destination_text: str | None, from_to: str, *, prune: bool
) -> tuple[list[str], list[str]]:
    """The paths a copy of ``source_text`` plans, and the pairs a sync of it into an empty
    destination marches (a new local directory unless ``destination_text``), both under
    :data:`LOW_LIMIT` (the emulator answers on its own thread)."""
    with tempfile.TemporaryDirectory() as empty:
        _, source_location, destination_location = resolve(source_text, destination_text or empty, from_to)
        options = TransferOptions(recursive=True)
        source = await open_source(source_location, environ=None, options=options)
        destination = await open_destination(destination_location, environ=None, options=options)
        filters = ObjectFilter.build(Filters(exclude_paths=("elsewhere",))) if prune else ObjectFilter()
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(LOW_LIMIT)
        try:
            planned = [
                transfer.destination
                async for transfer in plan_copy(
                    source.backend,
                    source.path,
                    destination=destination.backend,
                    destination_path="",
                    destination_is_dir_hint=True,
                    recursive=True,
                    object_filter=filters,
                )
            ]
            judged = [
                item.relative
                async for item in plan_sync(
                    source.backend,
                    source.path,
                    destination=destination.backend,
                    destination_root="",
                    scope=SyncScope(object_filter=filters),
                    compare=Compare.TIME,
                )
            ]
        finally:
            sys.setrecursionlimit(limit)
            await source.backend.close()
            await destination.backend.close()
    return planned, judged


@pytest.mark.azurite
@pytest.mark.parametrize("prune", [False, True], ids=["flat", "pruned"])
@pytest.mark.parametrize("side", ["Files", "Blob", "local"])
async def test_no_walk_recurses_per_level(deep_runs: DeepRuns, side: str, prune: bool) -> None:
    nowhere = deep_runs.blob_url.replace("/deep?", "/nowhere?")  # an empty Blob prefix
    source, destination, from_to, depth = {
        "Files": (deep_runs.files_url, None, "FileLocal", DEPTH),
        "Blob": (deep_runs.blob_url, None, "BlobLocal", BLOB_DEPTH),
        "local": (str(deep_runs.tmp / "local" / "deep"), nowhere, "LocalBlob", DEPTH),
    }[side]
    planned, judged = await walk_deep(source, destination, from_to, prune=prune)
    files = set(deep_files(depth))
    assert {path.partition("/")[2] for path in planned} >= files
    assert set(judged) >= files
