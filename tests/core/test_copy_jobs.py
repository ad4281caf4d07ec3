"""Copy jobs end to end through ``run_copy``: every --from-to pair against real servers (the Files
emulator over HTTP, Azurite, local directories), checked the way a user would: the bytes and
MD5s at the destination, the directories there, the job's counters and status. Also server-side
copies (the emulator's request counters), share snapshots as sources, SMB properties and
permissions, --overwrite, --dry-run and sharding."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.fileshare import (
    ContentSettings,
    ShareClient,
    ShareSasPermissions,
    ShareServiceClient,
    generate_share_sas,
)

from shareferry.core.accounting import Outcome
from shareferry.core.jobs import JobStatus
from shareferry.core.locations import FromTo
from shareferry.core.options import Overwrite
from shareferry.emulator import RunningEmulator
from tests.support.copy_world import World, dirs_of, operation_totals
from tests.support.shared_azurite import shared_azurite
from tests.support.trees import Listing, RecordingSubscriber, md5, read_share, write_share

MIB = 1024 * 1024

#: The tree every pair copies: a file of several ranges and an odd tail, an empty one, and names
#: with unicode, spaces, '#', '%' and '+' (in file and directory names).
TREE: dict[str, bytes] = {
    "tree/big.bin": os.urandom(9 * MIB + 12345),
    "tree/zero.txt": b"",
    "tree/ünïcødé ☃ 文件.txt": "unicode ✓".encode(),
    "tree/with space/hash#1.txt": b"hash" * 100,
    "tree/with space/per%cent%20.txt": b"percent",
    "tree/plus+sign/a+b c#d%e.txt": b"plus" * 333,
}
EMPTY_DIRS = ("tree/empty dir",)
PAIRS = [
    pytest.param(pair, marks=[pytest.mark.azurite] if "Blob" in pair else [])
    for pair in (
        "LocalFile",
        "FileLocal",
        "FileFile",
        "LocalBlob",
        "BlobLocal",
        "BlobBlob",
        "BlobFile",
        "FileBlob",
    )
]


@pytest.fixture
def world(emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path) -> World:
    return World(emulator=emulator, service=service, tmp_path=tmp_path)


@pytest.fixture
def world_with_blobs(world: World) -> Iterator[World]:
    azurite = shared_azurite()
    blobs = BlobServiceClient(account_url=azurite.endpoint, credential=azurite.credential)
    world.azurite, world.blobs = azurite, blobs
    yield world
    blobs.close()


# ---- every pair ---------------------------------------------------------------------------------


@pytest.mark.parametrize("from_to", PAIRS)
async def test_every_pair_copies_the_tree_byte_for_byte(
    world: World, request: pytest.FixtureRequest, from_to: str
) -> None:
    if "Blob" in from_to:
        world = request.getfixturevalue("world_with_blobs")
    pair = FromTo(from_to)
    source = world.place(pair.source_kind, "source", TREE, EMPTY_DIRS)
    destination = world.place(pair.destination_kind, "destination")
    before = operation_totals(world.emulator)
    subscriber = RecordingSubscriber()

    summary = await world.copy(
        source.at("tree"), destination.argument, from_to, subscriber, recursive=True, put_md5=True
    )

    assert (summary.status, summary.exit_code, summary.error) == (JobStatus.COMPLETED, 0, None)
    landed = destination.read()
    assert landed.files == TREE  # exactly these paths, byte for byte: nothing lost, nothing extra
    folders_both = source.folders and destination.folders
    if destination.folders:
        expected_dirs = dirs_of(TREE, EMPTY_DIRS if folders_both else ())
        assert landed.dirs == expected_dirs
    if destination.kind != "local":
        # Uploads store the MD5 they computed (--put-md5); service-to-service copies carry the
        # source's stored one.
        assert landed.stored_md5 == {path: md5(data) for path, data in TREE.items()}
    completed = subscriber.files(Outcome.COMPLETED)
    assert {path: result.md5 for path, result in completed.items()} == {
        path: md5(data).hex() for path, data in TREE.items()
    }
    assert summary.counters.files_completed == len(TREE)
    assert summary.counters.files_failed == summary.counters.files_skipped == 0
    assert (
        summary.counters.bytes_transferred
        == summary.counters.bytes_enumerated
        == sum(map(len, TREE.values()))
    )
    assert summary.counters.folders_completed == (len(dirs_of(TREE, EMPTY_DIRS)) if folders_both else 0)
    if destination.kind == "file" and source.kind != "local":
        # Both ends allow a server-side copy: the share pulls every range from the source URL
        # (at least one per non-empty file, each at most 4 MiB) and no byte is sent to it.
        after = operation_totals(world.emulator)
        least = sum(-(-len(data) // (4 * MIB)) for data in TREE.values())
        assert after.get("PutRangeFromURL", 0) - before.get("PutRangeFromURL", 0) >= least
        assert after.get("PutRange", 0) == before.get("PutRange", 0)


# ---- MD5 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("put_md5", [True, False])
async def test_put_md5_decides_whether_an_upload_stores_content_md5(world: World, put_md5: bool) -> None:
    files = {"up/one.bin": os.urandom(5 * MIB + 7), "up/two.txt": b"two"}
    source = world.place("local", "source", files)
    destination = world.place("file", "destination")
    subscriber = RecordingSubscriber()

    summary = await world.copy(
        source.at("up"), destination.argument, "LocalFile", subscriber, recursive=True, put_md5=put_md5
    )

    assert summary.status is JobStatus.COMPLETED
    landed = destination.read()
    assert landed.files == files
    expected = {path: md5(data) if put_md5 else None for path, data in files.items()}
    assert landed.stored_md5 == expected


# ---- snapshots ----------------------------------------------------------------------------------


@pytest.mark.parametrize("from_to", ["FileLocal", "FileFile"])
async def test_a_share_snapshot_source_gives_the_snapshot_bytes(world: World, from_to: str) -> None:
    before = {"dir/snap.bin": os.urandom(5 * MIB + 3), "dir/small.txt": b"as it was"}
    share = world.share("snapsource")
    write_share(share, before)
    snapshot = share.create_snapshot()["snapshot"]
    write_share(
        share, {"dir/snap.bin": os.urandom(5 * MIB + 3), "dir/small.txt": b"changed", "dir/new.txt": b"new"}
    )
    account = world.emulator.account()
    sas = generate_share_sas(
        account.name,
        "snapsource",
        account.key,
        permission=ShareSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    source = f"{world.emulator.account_url()}/snapsource/dir?sharesnapshot={snapshot}&{sas}"
    destination = world.place("local" if from_to == "FileLocal" else "file", "destination")

    logged: list[str] = []
    summary = await world.copy(source, destination.argument, from_to, log=logged.append, recursive=True)

    assert summary.status is JobStatus.COMPLETED, summary.failures
    assert destination.read().files == before  # not the changed files, not the file added since
    signature = parse_qs(sas)["sig"][0]
    assert all(signature not in text for text in [summary.source, *logged])


# ---- SMB properties -----------------------------------------------------------------------------

CREATED = "2019-02-03T04:05:06.1234567Z"
WRITTEN = "2020-07-08T09:10:11.7654321Z"
DIR_CREATED = "2018-01-02T03:04:05.0000001Z"
DIR_WRITTEN = "2018-06-07T08:09:10.9999999Z"
FILE_SDDL = "O:BAG:SYD:(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;BU)"
DIR_SDDL = "O:SYG:SYD:(A;OICI;FA;;;SY)(A;OICI;0x1301bf;;;AU)"


def raw_smb(share: ShareClient, path: str, *, is_dir: bool) -> dict[str, str]:
    """The SMB headers exactly as the service sends them, with the permission key resolved to
    its SDDL."""
    seen: dict[str, str] = {}

    def hook(response: Any) -> None:
        seen.update({k.lower(): v for k, v in response.http_response.headers.items()})

    if is_dir:
        share.get_directory_client(path).get_directory_properties(raw_response_hook=hook)
    else:
        share.get_file_client(path).get_file_properties(raw_response_hook=hook)
    smb = {
        k: seen[k] for k in ("x-ms-file-attributes", "x-ms-file-creation-time", "x-ms-file-last-write-time")
    }
    smb["sddl"] = share.get_permission_for_share(seen["x-ms-file-permission-key"])
    return smb


@pytest.mark.parametrize("preserve", [True, False])
async def test_file_to_file_preserves_smb_info_and_permissions_exactly_when_asked(
    world: World, preserve: bool
) -> None:
    source_share = world.share("smbsource")
    source_share.get_directory_client("smb").create_directory(
        file_attributes="Directory|Hidden",
        file_creation_time=DIR_CREATED,
        file_last_write_time=DIR_WRITTEN,
        file_permission=DIR_SDDL,
    )
    data = os.urandom(MIB + 1)
    client = source_share.get_file_client("smb/f.txt")
    client.upload_file(data)
    client.set_http_headers(
        ContentSettings(),
        file_attributes="ReadOnly|Archive",
        file_creation_time=CREATED,
        file_last_write_time=WRITTEN,
        file_permission=FILE_SDDL,
    )
    destination_share = world.share("smbdestination")
    destination = f"{world.emulator.account_url()}/smbdestination"

    summary = await world.copy(
        f"{world.emulator.account_url()}/smbsource/smb",
        destination,
        "FileFile",
        RecordingSubscriber(),
        recursive=True,
        preserve_smb_info=preserve,
        preserve_smb_permissions=preserve,
    )

    assert summary.status is JobStatus.COMPLETED, summary.failures
    assert read_share(destination_share).files == {"smb/f.txt": data}
    for path, is_dir in (("smb", True), ("smb/f.txt", False)):
        source_smb = raw_smb(source_share, path, is_dir=is_dir)
        copied_smb = raw_smb(destination_share, path, is_dir=is_dir)
        if preserve:
            assert copied_smb == source_smb
        else:
            assert copied_smb["x-ms-file-creation-time"] != source_smb["x-ms-file-creation-time"]
            assert copied_smb["sddl"] != source_smb["sddl"]


# ---- --overwrite --------------------------------------------------------------------------------


@pytest.mark.parametrize("overwrite", [Overwrite.TRUE, Overwrite.FALSE, Overwrite.IF_SOURCE_NEWER])
async def test_overwrite_modes(world: World, overwrite: Overwrite) -> None:
    files = {"src/older.txt": b"older source", "src/newer.txt": b"newer source", "src/fresh.txt": b"fresh"}
    source = world.place("local", "source", files)
    existing = {"src/older.txt": b"existing one", "src/newer.txt": b"existing two"}
    destination = world.place("file", "destination", existing)
    now = datetime.now(UTC)
    for name, moment in (("older.txt", now - timedelta(days=3650)), ("newer.txt", now + timedelta(days=1))):
        stamp = moment.timestamp()
        os.utime(Path(source.argument) / "src" / name, (stamp, stamp))
    subscriber = RecordingSubscriber()

    summary = await world.copy(
        source.at("src"),
        destination.argument,
        "LocalFile",
        subscriber,
        recursive=True,
        overwrite=overwrite,
    )

    kept = {
        Overwrite.TRUE: set(),
        Overwrite.FALSE: {"src/older.txt", "src/newer.txt"},
        Overwrite.IF_SOURCE_NEWER: {"src/older.txt"},
    }[overwrite]
    expected = {path: existing[path] if path in kept else data for path, data in files.items()}
    assert destination.read().files == expected
    skipped = subscriber.files(Outcome.SKIPPED)
    assert set(skipped) == kept
    assert all(f"--overwrite={overwrite.value}" in (result.reason or "") for result in skipped.values())
    assert set(subscriber.files(Outcome.COMPLETED)) == set(files) - kept
    assert summary.counters.files_skipped == len(kept)
    assert summary.counters.files_completed == len(files) - len(kept)
    assert summary.status is (JobStatus.COMPLETED_WITH_SKIPPED if kept else JobStatus.COMPLETED)
    assert summary.exit_code == 0


# ---- --dry-run ----------------------------------------------------------------------------------


@pytest.mark.parametrize("from_to", ["LocalFile", "FileLocal"])
async def test_dry_run_writes_nothing_and_reports_every_item_skipped(world: World, from_to: str) -> None:
    files = {"tree/a.txt": b"a", "tree/sub/b.bin": os.urandom(5 * MIB), "tree/zero": b""}
    source = world.place("local" if from_to == "LocalFile" else "file", "source", files, ("tree/empty",))
    if from_to == "LocalFile":
        destination = world.place("file", "destination")
        argument, landing = destination.argument, ""
    else:  # a destination that does not exist yet: the job must not even create it, and paths
        # are relative to it as they would be were it there (the files go into it either way)
        argument, landing = str(world.tmp_path / "not-yet" / "out"), ""
    subscriber = RecordingSubscriber()

    summary = await world.copy(source.at("tree"), argument, from_to, subscriber, recursive=True, dry_run=True)

    if from_to == "LocalFile":
        assert destination.read() == Listing()
    else:
        assert not (world.tmp_path / "not-yet").exists()
    assert subscriber.results and all(
        (r.outcome, r.reason) == (Outcome.SKIPPED, "dry-run") for r in subscriber.results
    )
    assert set(subscriber.files(Outcome.SKIPPED)) == {landing + path for path in files}
    folders = subscriber.folders(Outcome.SKIPPED)
    assert folders == {landing + path for path in dirs_of(files, ("tree/empty",))}
    counters_ = summary.counters
    assert counters_.files_enumerated == len(files)
    assert (counters_.files_completed, counters_.folders_completed, counters_.files_failed) == (0, 0, 0)
    assert counters_.bytes_transferred == 0 and subscriber.progress == 0
    assert (counters_.files_skipped, counters_.folders_skipped) == (len(files), len(folders))
    assert (summary.status, summary.exit_code) == (JobStatus.COMPLETED_WITH_SKIPPED, 0)


# ---- sharding -----------------------------------------------------------------------------------


async def test_three_shards_copy_disjoint_sets_that_together_are_the_whole_tree(world: World) -> None:
    files = {f"tree/{'sub/' if i % 3 == 0 else ''}file-{i:02d}.txt": f"file {i}".encode() for i in range(24)}
    source = world.place("local", "source", files)
    destination = world.place("file", "destination")
    shards: list[set[str]] = []

    for index in range(3):
        subscriber = RecordingSubscriber()
        summary = await world.copy(
            source.at("tree"),
            destination.argument,
            "LocalFile",
            subscriber,
            recursive=True,
            shard_index=index,
            shard_count=3,
        )
        assert summary.status is JobStatus.COMPLETED
        completed = set(subscriber.files(Outcome.COMPLETED))
        assert summary.counters.files_completed == len(completed)
        shards.append(completed)

    assert all(shards), "every shard should get some of 24 files"
    assert sum(map(len, shards)) == len(set().union(*shards)), "shards overlap"
    assert set().union(*shards) == set(files)
    assert destination.read().files == files
