"""Which files ``shareferry sync`` copies, skips and deletes, against ``azcopy sync`` 10.32.2 on the
same two trees: a local directory and a Files emulator share.

Every cell of {missing at the destination, source newer, destination newer, same time} x {same
size, other size} is a file named after its cell, plus a file only at the destination (deleted
with ``--delete-destination=true``), empty files and directories. Both tools run with
``--dry-run --output-type json`` in both directions (LocalFile and FileLocal), with and without
``--preserve-info``, on the untouched trees; what each would copy or delete is read from its
``Dryrun`` lines.

The rule both follow is AzCopy 10.32.2's ``syncSourceComparator.ProcessIfNecessary``
(``azcopy/syncComparator.go``): a file on both sides is copied only when
``sourceObject.IsMoreRecentThan(destinationObjectInMap, f.preferSMBTime)``, which is
``lmtA.After(lmtB)`` (``traverser/zc_enumerator.go``): no size check, and equal times are
skipped. The time of an Azure file is its ``Last-Modified`` (whole seconds); its SMB last-write
time only with ``preferSMBTime``, which is ``--preserve-info``, false by default on Linux. A local
file's time is its mtime to the nanosecond.

So each share file's SMB last-write time is set explicitly (``set_http_headers``) and the local
mtimes are set (``os.utime``) relative to the share file's ``Last-Modified`` read back after it.
The cells where ShareFerry deliberately decides otherwise are listed in :data:`DELIBERATE` with
what AzCopy does and why.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from azure.storage.fileshare import ContentSettings, ShareClient

from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.cli.test_copy_cli import account_sas, clean_environment, shareferry_all
from tests.cli.test_dry_run_json_peer import World
from tests.support.azcopy import AZCOPY_COMMON_FLAGS, azcopy_env, ensure_azcopy
from tests.support.emulator_admin import service_client
from tests.support.trees import write_local, write_share

pytestmark = [pytest.mark.azcopy]

COPY, SKIP, DELETE = "copy", "skip", "delete"
SAME, OTHER = b"four", b"other size"  # the local file is SAME; the share's is SAME_AT_SHARE or OTHER
SAME_AT_SHARE = b"FOUR"  # same size, other bytes: only the times can tell them apart

#: How the local file's mtime stands to the share file's Last-Modified ``L`` (whole seconds), and
#: the share file's SMB last-write time.
#: relation -> (local mtime - L, SMB last-write time - L), in seconds
RELATIONS: dict[str, tuple[float, float]] = {
    "local newer": (100, 0.25),
    "share newer": (-100, 0.25),
    "same second": (0, 0.25),  # the local mtime is L itself, to the nanosecond
    "same instant": (0.25, 0.25),  # the local mtime is the SMB last-write time, L + 0.25 s
    # The share file was written after the local edit (Last-Modified) but its SMB last-write time
    # is older than both (set by an SMB client that kept an older file's time, or a copy with
    # --preserve-info from an older file).
    "smb time older": (-100, -1000),
}
SIZES = {"same size": SAME_AT_SHARE, "other size": OTHER}


def cell_name(relation: str, size: str) -> str:
    return f"{relation}, {size}.txt".replace(" ", "_")


BOTH: dict[str, tuple[bytes, bytes, str]] = {
    cell_name(relation, size): (SAME, share_bytes, relation)
    for relation in RELATIONS
    for size, share_bytes in SIZES.items()
} | {
    "empty_local_newer.txt": (b"", b"", "local newer"),
    "empty_share_newer.txt": (b"", b"", "share newer"),
    "dir/inside_same_second.txt": (SAME, SAME_AT_SHARE, "same second"),
}
DIRECTORY_LOCAL_NEWER_BY = 100  # seconds: "dir" is newer locally than on the share
ONLY_LOCAL = {"only_local.txt": b"local", "only_local_empty.txt": b"", "local_dir/x.txt": b"x"}
ONLY_SHARE = {"only_share.txt": b"share", "only_share_empty.txt": b"", "share_dir/y.txt": b"y"}


def decisions_of_azcopy(direction: str, *, smb_times: bool) -> dict[str, str]:
    """What AzCopy 10.32.2 does, path by path (files and folders; every other path is skipped):
    copy when the source is strictly more recent, by Last-Modified for the share file (by its SMB
    last-write time with ``--preserve-info``)."""
    upload = direction == "LocalFile"
    table: dict[str, str] = {}
    for name, (_local, _share, relation) in BOTH.items():
        local_offset, smb_offset = RELATIONS[relation]
        local_minus_share = local_offset - smb_offset if smb_times else local_offset
        source_newer = local_minus_share > 0 if upload else local_minus_share < 0
        table[name] = COPY if source_newer else SKIP
    only_source, only_destination = (ONLY_LOCAL, ONLY_SHARE) if upload else (ONLY_SHARE, ONLY_LOCAL)
    for name in only_source:
        table[name] = COPY
    for name in only_destination:
        table[name] = DELETE
    source_dir, destination_dir = ("local_dir/", "share_dir/") if upload else ("share_dir/", "local_dir/")
    table[source_dir] = COPY
    table[destination_dir] = DELETE
    # A folder on both sides is compared as a file is: sent again (its properties) when newer.
    table["dir/"] = COPY if upload else SKIP
    return table


#: (direction, path) -> (ShareFerry's decision, AzCopy's, why they differ). Only these differ.
#: Without --preserve-info (the share file's time is its Last-Modified):
DELIBERATE: dict[tuple[str, str], tuple[str, str, str]] = {
    # AzCopy compares the local mtime (nanoseconds) with the share's Last-Modified (an HTTP date,
    # whole seconds): L + 0.25 s is "after" L, so it uploads a file again when it was written in
    # the second it was uploaded. ShareFerry compares to the second when one side only knows
    # whole seconds, so an unchanged file is not copied again.
    ("LocalFile", cell_name("same instant", "same size")): (SKIP, COPY, "compared to the second"),
    # The same comparison with other sizes: which side was written last in that second is unknown,
    # so ShareFerry keeps the destination (and counts it as maybe newer) rather than risk an edit;
    # AzCopy copies, the nanoseconds being "after" the whole second.
    ("LocalFile", cell_name("same instant", "other size")): (SKIP, COPY, "same second: may be newer"),
    # A directory on both sides: AzCopy schedules a Folder transfer when the source folder is
    # newer, which re-applies its properties (none without --preserve-info: it changes nothing
    # at the destination). ShareFerry leaves an existing directory alone and does not count it.
    ("LocalFile", "dir/"): (SKIP, COPY, "an existing directory is left alone"),
}
#: With --preserve-info (the share file's time is its SMB last-write time, L + 0.25 s here):
DELIBERATE_SMB: dict[tuple[str, str], tuple[str, str, str]] = {
    # The local mtime is a whole second (L), so ShareFerry compares to the second (see above):
    # equal, where AzCopy finds the share file 0.25 s newer and downloads it.
    ("FileLocal", cell_name("same second", "same size")): (SKIP, COPY, "compared to the second"),
    ("FileLocal", "dir/inside_same_second.txt"): (SKIP, COPY, "compared to the second"),
    ("FileLocal", cell_name("same second", "other size")): (SKIP, COPY, "same second: may be newer"),
    # Equal times to the 100 ns, other sizes: AzCopy skips (the source is not "after" the
    # destination). ShareFerry copies: such a pair cannot be identical and neither side is newer
    # (a copy that carried its source's time and landed with another length is repaired).
    ("LocalFile", cell_name("same instant", "other size")): (COPY, SKIP, "equal times, sizes differ"),
    ("FileLocal", cell_name("same instant", "other size")): (COPY, SKIP, "equal times, sizes differ"),
    ("LocalFile", "dir/"): (SKIP, COPY, "an existing directory is left alone"),
}


def set_share_time(share: ShareClient, path: str, smb_offset: float) -> datetime:
    """Set ``path``'s SMB last-write time to its Last-Modified plus ``smb_offset`` seconds and
    return that Last-Modified (Set File Properties changes it: retried until it stays in the
    second the SMB time was computed from)."""
    client = share.get_file_client(path)
    for _ in range(5):
        second = datetime.now(UTC).replace(microsecond=0)
        client.set_http_headers(
            ContentSettings(), file_last_write_time=second + timedelta(seconds=smb_offset)
        )
        last_modified: datetime = client.get_file_properties().last_modified
        if last_modified == second:
            return last_modified
    raise AssertionError(f"could not set {path}'s SMB time within one second")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("sync-decisions-peer")
    local = tmp / "local"
    write_local(local, {name: data for name, (data, _share, _relation) in BOTH.items()} | ONLY_LOCAL)
    with RunningEmulator(EmulatorConfig()) as emulator:
        share = service_client(emulator).create_share("decisions")
        write_share(share, {name: data for name, (_local, data, _relation) in BOTH.items()} | ONLY_SHARE)
        for name, (_local, _share, relation) in BOTH.items():
            local_offset, smb_offset = RELATIONS[relation]
            last_modified = set_share_time(share, name, smb_offset)
            when = int(last_modified.timestamp()) * 10**9 + int(local_offset * 10**9)
            os.utime(local / name, ns=(when, when))
        # The directory on both sides: newer locally (by its mtime against its Last-Modified).
        directory_modified = share.get_directory_client("dir").get_directory_properties().last_modified
        when = int(directory_modified.timestamp() + DIRECTORY_LOCAL_NEWER_BY) * 10**9
        os.utime(local / "dir", ns=(when, when))
        yield World(emulator, share, account_sas(emulator), local, tmp)


def relative(world: World, location: str) -> str:
    """A Dryrun Source/Destination as a path relative to its root (folders end in ``/``)."""
    path = unquote(location.split("?", 1)[0])
    for root in (str(world.local) + "/", f"/{world.share.share_name}/"):
        if root in path:
            return path.split(root, 1)[1]
    return ""  # a root itself


def decisions(world: World, stdout: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for line in stdout.splitlines():
        message: dict[str, Any] = json.loads(line) if line.strip() else {}
        if message.get("MessageType") != "Dryrun":
            continue
        item = json.loads(message["MessageContent"])
        deleting = item["Destination"] == ""
        path = relative(world, item["Source"])
        if not path:
            continue  # the root folder's own properties
        if item["EntityType"] == "Folder":
            path = path.rstrip("/") + "/"
        table[path] = DELETE if deleting else COPY
    return table


def run_both(world: World, direction: str, *, smb_times: bool) -> tuple[dict[str, str], dict[str, str]]:
    source, destination = (
        (str(world.local), world.url()) if direction == "LocalFile" else (world.url(), str(world.local))
    )
    args = ["sync", source, destination, "--from-to", direction, "--delete-destination=true"]
    args += ["--dry-run", "--output-type", "json", *(["--preserve-info=true"] if smb_times else [])]
    azcopy = subprocess.run(
        [str(ensure_azcopy()), *args, *AZCOPY_COMMON_FLAGS],
        env=azcopy_env(world.tmp),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    env = clean_environment(SHAREFERRY_JOB_DIR=str(world.tmp / "jobs"))
    ours = shareferry_all({direction: args}, env=env)[direction]
    assert azcopy.returncode == 0, azcopy.stdout[-2000:] + azcopy.stderr[-2000:]
    assert ours.returncode == 0, ours.stdout[-2000:] + ours.stderr[-2000:]
    return decisions(world, azcopy.stdout), decisions(world, ours.stdout)


def complete(table: dict[str, str]) -> dict[str, str]:
    """``table`` with every file of the matrix, a path it does not name being skipped."""
    names = [*BOTH, *ONLY_LOCAL, *ONLY_SHARE, "local_dir/", "share_dir/", "dir/"]
    return {name: table.get(name, SKIP) for name in names} | table


@pytest.mark.parametrize("smb_times", [False, True], ids=["by Last-Modified", "--preserve-info"])
@pytest.mark.parametrize("direction", ["LocalFile", "FileLocal"])
def test_sync_decides_as_azcopy_1032_but_for_the_deliberate_cells(
    world: World, direction: str, smb_times: bool
) -> None:
    theirs, ours = run_both(world, direction, smb_times=smb_times)
    expected_azcopy = decisions_of_azcopy(direction, smb_times=smb_times)
    # AzCopy decides as its source says (this pins our reading of syncComparator.go).
    assert complete(theirs) == complete(expected_azcopy)
    expected_ours = dict(expected_azcopy)
    deliberate = DELIBERATE_SMB if smb_times else DELIBERATE
    for (where, name), (shareferry_does, azcopy_does, _why) in deliberate.items():
        if where == direction:
            assert expected_azcopy[name] == azcopy_does, name
            expected_ours[name] = shareferry_does
    assert complete(ours) == complete(expected_ours)
