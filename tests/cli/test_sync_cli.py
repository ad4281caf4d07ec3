"""``shareferry sync`` run as a user runs it: a child process (``python -m shareferry sync ...``)
against the Files emulator over HTTP, Azurite and local directories, with account SAS URLs.

Checked as a user would: the exit status, the bytes (and MD5s) at the destination, what was
deleted and what was kept, the summary's sync lines, AzCopy's JSON fields, the ``DRYRUN:``
lines, and the emulator's own request counters to prove that an unchanged file is not sent again
and that a dry run writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from azure.storage.blob import AccountSasPermissions as BlobAccountSasPermissions
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.blob import ContentSettings as BlobContentSettings
from azure.storage.blob import ResourceTypes as BlobResourceTypes
from azure.storage.blob import generate_account_sas as generate_blob_account_sas
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareClient,
    ShareServiceClient,
    generate_account_sas,
)

from shareferry.core.backends.listing_retry import LIST_ATTEMPTS
from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.cli.test_copy_cli import (
    TREE,
    BadInputRun,
    account_sas,
    assert_secret_free,
    clean_environment,
    on_terminal,
    share_url,
    shareferry,
    shareferry_all,
    signature,
    summary_value,
)
from tests.support.emulator_admin import add_fault, counters, reset_counters, writes_per_file
from tests.support.shared_azurite import shared_azurite
from tests.support.trees import (
    md5,
    read_container,
    read_local,
    read_share,
    write_container,
    write_local,
    write_share,
)

#: TREE as it lands when ``src`` is synced: sync mirrors a directory's contents, no extra level.
SYNCED = {path.removeprefix("src/"): data for path, data in TREE.items()}
SYNCED_DIRS = {"notes", "deep", "deep/er", "empty dir"}
CHUNK_FLAGS = ("--block-size-mb", "0.25")  # several ranges per big file
HOUR = 3600.0


@pytest.fixture
def sas(emulator: RunningEmulator) -> str:
    return account_sas(emulator)


def writes_to(emulator: RunningEmulator, share: ShareClient) -> dict[str, dict[str, int]]:
    """The emulator's content writes per file of ``share`` since the last reset, by path."""
    prefix = f"{emulator.account().name}/{share.share_name}/"
    return {
        path.removeprefix(prefix): ops
        for path, ops in writes_per_file(emulator).items()
        if path.startswith(prefix) and any(ops.values())
    }


def operations(emulator: RunningEmulator) -> dict[str, dict[str, int]]:
    """The emulator's answered requests since the last reset: ``{op: {status: n}}``."""
    return {op: dict(seen["by_status"]) for op, seen in counters(emulator)["operations"].items()}


def changing_operations(emulator: RunningEmulator) -> set[str]:
    """Requests since the last reset that could change anything (writes, deletions)."""
    verbs = ("Create", "Put", "Set", "Delete", "Copy", "Rename", "Abort")
    return {op for op in operations(emulator) if op.startswith(verbs)}


def json_end(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The EndOfJob summary of an ``--output-type json`` run (its last line)."""
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert messages[0]["MessageType"] == "Init"
    assert messages[-1]["MessageType"] == "EndOfJob"
    content: dict[str, str] = json.loads(messages[-1]["MessageContent"])
    return content


def set_mtime(path: Path, when: float) -> None:
    os.utime(path, (when, when))


def mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary_value(result.stdout, "Final Job Status") == "Completed", result.stdout


def copied(result: subprocess.CompletedProcess[str]) -> int:
    return int(summary_value(result.stdout, "Number of File Transfers Completed"))


def unchanged(result: subprocess.CompletedProcess[str]) -> int:
    return int(summary_value(result.stdout, "Files Unchanged"))


# ---- local <-> Files ---------------------------------------------------------------------------


def test_a_second_sync_copies_nothing_both_ways(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    write_local(tmp_path, TREE, dirs=("src/empty dir",))
    url = share_url(emulator, share, "", sas)
    up = shareferry("sync", str(tmp_path / "src"), url, "--from-to", "LocalFile", "--put-md5", *CHUNK_FLAGS)
    assert_ok(up)
    assert (copied(up), unchanged(up)) == (len(TREE), 0)
    assert summary_value(up.stdout, "Files Scanned at Source") == str(len(TREE))
    assert summary_value(up.stdout, "Files Scanned at Destination") == "0"
    assert summary_value(up.stdout, "Total Number of Bytes Transferred") == str(sum(map(len, TREE.values())))
    uploaded = read_share(share)
    assert uploaded.files == SYNCED
    assert uploaded.stored_md5 == {path: md5(data) for path, data in SYNCED.items()}
    assert uploaded.dirs == SYNCED_DIRS

    reset_counters(emulator)
    down = tmp_path / "down"
    runs = shareferry_all(
        {
            "up again": ["sync", str(tmp_path / "src"), url, "--from-to", "LocalFile", "--put-md5"],
            "down": ["sync", url, str(down), "--from-to", "FileLocal"],
        }
    )
    again = runs["up again"]
    assert_ok(again)
    assert (copied(again), unchanged(again)) == (0, len(TREE))
    assert summary_value(again.stdout, "Number of File Transfers") == "0"
    assert summary_value(again.stdout, "Total Number of Bytes Transferred") == "0"
    assert writes_to(emulator, share) == {}
    assert changing_operations(emulator) == set()

    assert_ok(runs["down"])
    assert (copied(runs["down"]), unchanged(runs["down"])) == (len(TREE), 0)
    downloaded = read_local(down)
    assert downloaded.files == SYNCED
    assert downloaded.dirs == SYNCED_DIRS
    before = mtimes(down)
    down_again = shareferry("sync", url, str(down), "--from-to", "FileLocal")
    assert_ok(down_again)
    assert (copied(down_again), unchanged(down_again)) == (0, len(TREE))
    assert mtimes(down) == before  # not rewritten
    assert read_local(down).files == SYNCED
    for result in (up, *runs.values(), down_again):
        assert_secret_free(result, signature(sas))


def test_newer_source_is_copied_newer_destination_kept_whatever_its_size(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_local(src, {"newer.txt": b"aaaa", "older.txt": b"bbbb", "resized.txt": b"cc", "same.txt": b"dd"})
    url = share_url(emulator, share, "", sas)
    assert_ok(shareferry("sync", str(src), url, "--from-to", "LocalFile"))
    now = time.time()
    (src / "newer.txt").write_bytes(b"AAAA")  # same size, made newer than the destination
    set_mtime(src / "newer.txt", now + HOUR)
    (src / "older.txt").write_bytes(b"BBBB")  # same size, the destination is newer
    set_mtime(src / "older.txt", now - HOUR)
    (src / "resized.txt").write_bytes(b"ccc")  # another size, the destination is newer: kept too
    set_mtime(src / "resized.txt", now - HOUR)

    reset_counters(emulator)
    result = shareferry("sync", str(src), url, "--from-to", "LocalFile")
    assert_ok(result)
    assert (copied(result), unchanged(result)) == (1, 2)
    assert summary_value(result.stdout, "Files Skipped Because the Destination Is Newer") == "1"
    assert set(writes_to(emulator, share)) == {"newer.txt"}
    assert read_share(share).files == {
        "newer.txt": b"AAAA",
        "older.txt": b"bbbb",
        "resized.txt": b"cc",
        "same.txt": b"dd",
    }


# ---- deletions ---------------------------------------------------------------------------------


def test_delete_destination_removes_extras_and_empty_dirs_but_never_excluded_files(
    emulator: RunningEmulator, service: ShareServiceClient, sas: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_local(src, {"top.txt": b"top", "keep/a.txt": b"a", "keep/b.txt": b"b", "skip.log": b"not synced"})
    before = {
        "top.txt": b"top",
        "extra.txt": b"extra",
        "keep/old.txt": b"old",
        "gone/x.txt": b"x",
        "gone/deeper/y.txt": b"y",
        "private/secret.txt": b"excluded by path",
    }
    logs = {"logs/app.log": b"excluded by pattern", "keep/debug.log": b"excluded by pattern"}
    by_path, by_pattern = service.create_share("bypath"), service.create_share("bypattern")
    write_share(by_path, before)
    write_share(by_pattern, {**before, **logs})
    common = ["--from-to", "LocalFile", "--delete-destination", "true", "--exclude-path", "private"]
    json_flags = ["--exclude-pattern", "*.log", "--output-type", "json"]
    runs = shareferry_all(
        {
            "text": ["sync", str(src), share_url(emulator, by_path, "", sas), *common],
            "json": ["sync", str(src), share_url(emulator, by_pattern, "", sas), *common, *json_flags],
        }
    )
    synced = {
        "top.txt": b"top",
        "keep/a.txt": b"a",
        "keep/b.txt": b"b",
        "private/secret.txt": b"excluded by path",
    }

    text = runs["text"]
    assert_ok(text)
    listing = read_share(by_path)
    assert listing.files == {**synced, "skip.log": b"not synced"}
    assert listing.dirs == {"keep", "private"}  # gone/ and gone/deeper/ were left empty: removed
    # 4 files (extra.txt, keep/old.txt, gone/x.txt, gone/deeper/y.txt), then gone/deeper/ and gone/
    assert summary_value(text.stdout, "Number of Deletions at Destination") == "6 of 6"
    assert summary_value(text.stdout, "Files Scanned at Source") == "4"
    assert summary_value(text.stdout, "Files Scanned at Destination") == "5"

    assert runs["json"].returncode == 0, runs["json"].stderr
    end = json_end(runs["json"])
    listing = read_share(by_pattern)
    assert listing.files == {**synced, **logs}
    assert {"keep", "logs", "private"} <= listing.dirs  # they hold excluded files
    assert end["JobStatus"] == "Completed"
    assert end["SourceFilesScanned"] == "3"  # skip.log is excluded
    assert end["DestinationFilesScanned"] == "5"  # the two .log files and private/ are excluded
    # the 4 files, and whichever directories went with them: the count says what happened
    removed_dirs = {"gone", "gone/deeper"} - listing.dirs
    assert end["DeleteTransfersCompleted"] == str(4 + len(removed_dirs))
    assert end["DeleteTotalTransfers"] == end["DeleteTransfersCompleted"]
    for result in runs.values():
        assert_secret_free(result, signature(sas))


def test_the_guard_refuses_large_deletions_until_allowed(
    emulator: RunningEmulator, service: ShareServiceClient, sas: str, tmp_path: Path
) -> None:
    def numbered(count: int) -> dict[str, bytes]:
        return {f"f{n:02d}.txt": f"file {n}".encode() for n in range(count)}

    cases = {
        # name: (destination files, source files, extra flags)
        "default guard": (numbered(20), numbered(5), []),
        "explicit limit": (numbered(12), numbered(10), ["--max-delete-percent", "10"]),
        "below the floor": (numbered(12), numbered(3), []),
    }
    shares: dict[str, ShareClient] = {}
    commands: dict[str, list[str]] = {}
    for n, (name, (destination, source, flags)) in enumerate(cases.items()):
        shares[name] = target = service.create_share(f"guard{n}")
        write_share(target, destination)
        write_local(tmp_path / f"src{n}", {**source, "new.txt": b"new"})
        commands[name] = [
            "sync", str(tmp_path / f"src{n}"), share_url(emulator, target, "", sas),
            "--from-to", "LocalFile", "--delete-destination", "true", *flags,
        ]  # fmt: skip
    runs = shareferry_all(commands)

    refused = runs["default guard"]
    assert refused.returncode == 1
    assert "refusing to delete 15 of the destination's 20 files" in refused.stderr
    assert summary_value(refused.stdout, "Number of Deletions at Destination") == "0 of 15"
    # nothing deleted, but the copy was kept
    assert read_share(shares["default guard"]).files == {**numbered(20), "new.txt": b"new"}

    limited = runs["explicit limit"]
    assert limited.returncode == 1
    assert "refusing to delete 2 of the destination's 12 files" in limited.stderr
    assert "--max-delete-percent 10" in limited.stderr
    assert set(read_share(shares["explicit limit"]).files) == {*numbered(12), "new.txt"}

    small = runs["below the floor"]  # 9 of 12 files: more than half, but fewer than 10
    assert_ok(small)
    assert summary_value(small.stdout, "Number of Deletions at Destination") == "9 of 9"
    assert read_share(shares["below the floor"]).files == {**numbered(3), "new.txt": b"new"}

    allowed = shareferry(*commands["default guard"], "--max-delete-percent", "100")
    assert_ok(allowed)
    assert summary_value(allowed.stdout, "Number of Deletions at Destination") == "15 of 15"
    assert read_share(shares["default guard"]).files == {**numbered(5), "new.txt": b"new"}
    for result in (*runs.values(), allowed):
        assert_secret_free(result, signature(sas))


#: What the share holds before the dry run: same.txt is at the source too, the rest is not.
DRY_RUN_DESTINATION = {
    "same.txt": b"same",
    "extra file.txt": b"extra",
    "sub/old.txt": b"old",
    "gone/x.txt": b"x",
}


@dataclass
class DryRun:
    result: subprocess.CompletedProcess[str]
    copies: set[str]  # the DRYRUN lines a user expects for the files to copy
    removals: set[str]  # ... and for what would be deleted


def dry_run_sync(emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path) -> DryRun:
    """A ``--dry-run --delete-destination true`` sync with two files to copy and three files and a
    directory to delete; the emulator's counters are reset just before it."""
    src = tmp_path / "src"
    write_local(src, {"same.txt": b"same", "new file.txt": b"new", "sub/new 100%.txt": b"new too"})
    write_share(share, DRY_RUN_DESTINATION)  # after the local files: same.txt is not older here
    reset_counters(emulator)
    result = shareferry(
        "sync", str(src), share_url(emulator, share, "", sas), "--from-to", "LocalFile",
        "--delete-destination", "true", "--dry-run",
    )  # fmt: skip
    base = share_url(emulator, share, "", None)
    copies = {
        f"DRYRUN: copy {src / path} to {base}/{quote(path)}" for path in ("new file.txt", "sub/new 100%.txt")
    }
    removals = {
        f"DRYRUN: remove {base}/{quote(path)}"
        for path in ("extra file.txt", "sub/old.txt", "gone/x.txt", "gone")
    }
    return DryRun(result, copies, removals)


def test_dry_run_says_what_it_would_do_and_changes_nothing(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    run = dry_run_sync(emulator, share, sas, tmp_path)
    assert run.result.returncode == 0, run.result.stderr
    assert {line for line in run.result.stdout.splitlines() if line.startswith("DRYRUN: copy ")} == run.copies
    printed = (run.result.stdout + run.result.stderr).splitlines()
    for removal in run.removals:
        assert sum(line.endswith(removal) for line in printed) == 1, removal
    assert summary_value(run.result.stdout, "Number of Deletions at Destination") == "0 of 4"
    assert changing_operations(emulator) == set()
    assert "ListDirectory" in operations(emulator)  # the counters did see the sync
    listing = read_share(share)
    assert listing.files == DRY_RUN_DESTINATION
    assert listing.dirs == {"sub", "gone"}
    assert_secret_free(run.result, signature(sas))


def test_dry_run_prints_its_removals_on_stdout_like_its_copies(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    run = dry_run_sync(emulator, share, sas, tmp_path)
    assert run.result.returncode == 0, run.result.stderr
    dry_runs = {line for line in run.result.stdout.splitlines() if line.startswith("DRYRUN: ")}
    assert dry_runs == run.copies | run.removals
    assert "DRYRUN" not in run.result.stderr


# ---- Files -> Files ----------------------------------------------------------------------------


def test_share_to_share_keeps_smb_times_and_recopies_only_what_changed(
    emulator: RunningEmulator, service: ShareServiceClient, sas: str
) -> None:
    source, destination = service.create_share("syncfrom"), service.create_share("syncto")
    write_share(source, SYNCED, dirs=("empty dir",))
    command = [
        "sync", share_url(emulator, source, "", sas), share_url(emulator, destination, "", sas),
        "--from-to", "FileFile", "--preserve-smb-info", *CHUNK_FLAGS,
    ]  # fmt: skip
    first = shareferry(*command)
    assert_ok(first)
    assert copied(first) == len(SYNCED)
    assert read_share(destination).files == SYNCED
    assert read_share(destination).dirs == SYNCED_DIRS
    for path in SYNCED:
        written = source.get_file_client(path).get_file_properties().last_write_time
        assert destination.get_file_client(path).get_file_properties().last_write_time == written, path

    reset_counters(emulator)
    second = shareferry(*command)
    assert_ok(second)
    assert (copied(second), unchanged(second)) == (0, len(SYNCED))
    assert writes_to(emulator, destination) == {}

    changed = {"notes/read me.txt": b"HELLO FROM SHAREFERRY\n" * 40}  # same size, new bytes
    write_share(source, changed)
    reset_counters(emulator)
    third = shareferry(*command)
    assert_ok(third)
    assert (copied(third), unchanged(third)) == (1, len(SYNCED) - 1)
    writes = writes_to(emulator, destination)
    assert set(writes) == set(changed)
    assert writes["notes/read me.txt"].get("PutRangeFromURL", 0) >= 1
    assert writes["notes/read me.txt"].get("PutRange", 0) == 0  # server-side, not through us
    assert read_share(destination).files == {**SYNCED, **changed}
    for result in (first, second, third):
        assert_secret_free(result, signature(sas))


# ---- comparing content -------------------------------------------------------------------------


def blob_sas() -> str:
    azurite = shared_azurite()
    return generate_blob_account_sas(
        azurite.account,
        azurite.key,
        BlobResourceTypes(service=True, container=True, object=True),
        BlobAccountSasPermissions(read=True, write=True, create=True, list=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def new_container() -> ContainerClient:
    azurite = shared_azurite()
    service = BlobServiceClient(azurite.endpoint, azurite.credential)
    return service.create_container(f"sync{os.urandom(4).hex()}")


def container_url(container: ContainerClient, sas: str | None, path: str = "") -> str:
    url = f"{shared_azurite().endpoint}/{container.container_name}" + (f"/{path}" if path else "")
    return f"{url}?{sas}" if sas else url


def etags(container: ContainerClient) -> dict[str, str]:
    return {blob.name: str(blob.etag) for blob in container.list_blobs()}


@pytest.mark.azurite
def test_compare_hash_copies_different_content_even_when_the_destination_is_newer(tmp_path: Path) -> None:
    token = blob_sas()
    src = tmp_path / "src"
    write_local(src, {"a.txt": b"aaaa", "b.txt": b"bbbb"})
    containers = {"by time": new_container(), "by hash": new_container()}
    commands = {
        name: ["sync", str(src), container_url(container, token), "--from-to", "LocalBlob", "--put-md5"]
        for name, container in containers.items()
    }
    for result in shareferry_all(commands).values():
        assert_ok(result)
    for container in containers.values():
        # a.txt: replaced at the destination by other bytes of the same size: newer there
        settings = BlobContentSettings(content_md5=bytearray(md5(b"XXXX")))
        container.upload_blob("a.txt", b"XXXX", overwrite=True, content_settings=settings)
    set_mtime(src / "b.txt", time.time() + HOUR)  # b.txt: the same bytes, touched at the source
    before = {name: etags(container) for name, container in containers.items()}

    commands["by hash"] += ["--compare-hash", "MD5"]
    runs = shareferry_all(commands)
    by_time = runs["by time"]  # the times say: a.txt is newer at the destination, b.txt older
    assert_ok(by_time)
    assert (copied(by_time), unchanged(by_time)) == (1, 1)
    assert read_container(containers["by time"]).files == {"a.txt": b"XXXX", "b.txt": b"bbbb"}
    assert etags(containers["by time"])["b.txt"] != before["by time"]["b.txt"]

    by_hash = runs["by hash"]  # the MD5s say: a.txt differs, b.txt is the same
    assert_ok(by_hash)
    assert (copied(by_hash), unchanged(by_hash)) == (1, 1)
    assert read_container(containers["by hash"]).files == {"a.txt": b"aaaa", "b.txt": b"bbbb"}
    assert etags(containers["by hash"])["b.txt"] == before["by hash"]["b.txt"]  # not sent again
    for result in runs.values():
        assert_secret_free(result, signature(token))


def test_mirror_mode_overwrites_a_newer_destination_of_the_same_size(
    emulator: RunningEmulator, service: ShareServiceClient, sas: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_local(src, {"a.txt": b"aaaa"})
    shares = {"by time": service.create_share("bytime"), "mirror": service.create_share("mirror")}
    commands = {
        name: ["sync", str(src), share_url(emulator, share, "", sas), "--from-to", "LocalFile"]
        for name, share in shares.items()
    }
    for result in shareferry_all(commands).values():
        assert_ok(result)
    for share in shares.values():
        write_share(share, {"a.txt": b"XXXX"})  # newer at the destination, same size

    commands["mirror"].append("--mirror-mode")
    runs = shareferry_all(commands)
    assert_ok(runs["by time"])
    assert (copied(runs["by time"]), unchanged(runs["by time"])) == (0, 1)
    assert read_share(shares["by time"]).files == {"a.txt": b"XXXX"}
    assert_ok(runs["mirror"])
    assert copied(runs["mirror"]) == 1
    assert read_share(shares["mirror"]).files == {"a.txt": b"aaaa"}
    for result in runs.values():
        assert_secret_free(result, signature(sas))


# ---- other pairs -------------------------------------------------------------------------------


@pytest.mark.azurite
def test_every_other_pair_syncs_once_then_copies_nothing(
    emulator: RunningEmulator, service: ShareServiceClient, sas: str, tmp_path: Path
) -> None:
    token = blob_sas()
    write_local(tmp_path, TREE)
    blob_source, files_source = new_container(), service.create_share("filessource")
    write_container(blob_source, SYNCED)
    write_share(files_source, SYNCED)
    to_blob = {pair: new_container() for pair in ("LocalBlob", "BlobBlob", "FileBlob")}
    from_blob = service.create_share("fromblob")
    down = tmp_path / "down"
    commands = {
        "LocalBlob": [str(tmp_path / "src"), container_url(to_blob["LocalBlob"], token)],
        "BlobLocal": [container_url(blob_source, token), str(down)],
        # Azurite answers 500 to Put Block From URL on a SAS-authorized request: the server-side
        # copies into Blob are authorized with the key (the connection string) instead
        "BlobBlob": [container_url(blob_source, token), container_url(to_blob["BlobBlob"], None)],
        "FileBlob": [share_url(emulator, files_source, "", sas), container_url(to_blob["FileBlob"], None)],
        "BlobFile": [container_url(blob_source, token), share_url(emulator, from_blob, "", sas)],
    }
    runs = {
        pair: ["sync", *args, "--from-to", pair, "--put-md5", *CHUNK_FLAGS] for pair, args in commands.items()
    }
    env = clean_environment(AZURE_STORAGE_CONNECTION_STRING=shared_azurite().connection_string)
    first = shareferry_all(runs, env=env)
    for pair, result in first.items():
        assert_ok(result)
        assert copied(result) == len(SYNCED), pair
    for pair, container in to_blob.items():
        assert read_container(container).files == SYNCED, pair
    assert read_local(down).files == SYNCED
    assert read_share(from_blob).files == SYNCED

    blob_tags = {pair: etags(container) for pair, container in to_blob.items()}
    local_times = mtimes(down)
    reset_counters(emulator)
    second = shareferry_all(runs, env=env)
    for pair, result in second.items():
        assert_ok(result)
        assert (copied(result), unchanged(result)) == (0, len(SYNCED)), pair
        assert summary_value(result.stdout, "Total Number of Bytes Transferred") == "0", pair
    assert {pair: etags(container) for pair, container in to_blob.items()} == blob_tags
    assert mtimes(down) == local_times
    assert writes_to(emulator, from_blob) == {}
    for result in (*first.values(), *second.values()):
        assert_secret_free(result, signature(sas), signature(token), shared_azurite().key)


def test_recursive_false_syncs_only_the_top_level_files(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_local(src, {"top.txt": b"top", "sub/deep.txt": b"deep"})
    write_share(share, {"old.txt": b"old", "sub/kept.txt": b"below the top level"})
    result = shareferry(
        "sync", str(src), share_url(emulator, share, "", sas), "--from-to", "LocalFile",
        "--recursive=false", "--delete-destination", "true",
    )  # fmt: skip
    assert_ok(result)
    assert copied(result) == 1
    assert summary_value(result.stdout, "Number of Deletions at Destination") == "1 of 1"
    assert read_share(share).files == {"top.txt": b"top", "sub/kept.txt": b"below the top level"}


# ---- safety ------------------------------------------------------------------------------------


def test_a_failed_source_listing_deletes_nothing(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    write_share(share, {"a.txt": b"a", "sub/b.txt": b"b"})
    local = {"a.txt": b"a", **{f"extra{n}.txt": b"only here" for n in range(3)}, "sub/extra.txt": b"x"}
    account = emulator.account()
    no_list = generate_account_sas(  # may read the share, may not list it
        account.name,
        account.key,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    cases = {"refused listing": no_list, "failing listing": sas}
    results = {}
    for case, token in cases.items():
        write_local(tmp_path / case, local)
        if case == "failing listing":
            add_fault(emulator, "error:ListDirectory:count=1000")
        results[case] = shareferry(
            "sync", share_url(emulator, share, "", token), str(tmp_path / case), "--from-to", "FileLocal",
            "--delete-destination", "true", "--max-delete-percent", "100",
        )  # fmt: skip
    for case, result in results.items():
        assert result.returncode == 1, case
        assert result.stderr.startswith(f"shareferry sync: list {share_url(emulator, share, '', None)}"), case
        assert "Traceback" not in result.stderr
        assert read_local(tmp_path / case).files == local, case
        assert_secret_free(result, signature(cases[case]))
    # The 403 is final at once; the 500s were retried until the listing's attempts were spent.
    assert operations(emulator)["ListDirectory"] == {"403": 1, "500": LIST_ATTEMPTS}


def test_a_listing_answered_busy_once_is_retried(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    write_share(share, {"a.txt": b"a", "sub/b.txt": b"b"})
    add_fault(emulator, "busy:ListDirectory:count=1,retry_after=0")
    result = shareferry(
        "sync", share_url(emulator, share, "", sas), str(tmp_path / "down"), "--from-to", "FileLocal"
    )
    assert result.returncode == 0, result.stderr
    assert read_local(tmp_path / "down").files == {"a.txt": b"a", "sub/b.txt": b"b"}


def test_a_busy_service_mid_sync_still_ends_byte_identical(tmp_path: Path) -> None:
    config = EmulatorConfig(fault_specs=("busy:PutRange:probability=0.3,retry_after=0",), fault_seed=7)
    with RunningEmulator(config) as emulator:
        account = emulator.account()
        service = ShareServiceClient(
            emulator.account_url(), credential={"account_name": account.name, "account_key": account.key}
        )
        share = service.create_share("busy")
        token = account_sas(emulator)
        files = {**SYNCED, **{f"many/{n}.bin": os.urandom(1000 + n) for n in range(20)}}
        write_local(tmp_path / "src", files)
        command = [
            "sync",
            str(tmp_path / "src"),
            share_url(emulator, share, "", token),
            "--from-to",
            "LocalFile",
        ]
        result = shareferry(*command, *CHUNK_FLAGS)
        assert_ok(result)
        assert read_share(share).files == files
        assert operations(emulator)["PutRange"].get("503", 0) > 0  # the service did push back
        again = shareferry(*command)
        assert_ok(again)
        assert (copied(again), unchanged(again)) == (0, len(files))
        assert_secret_free(result, signature(token))


# ---- letter case -------------------------------------------------------------------------------


def test_a_case_twin_is_replaced_not_lost(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    write_share(share, {"Readme.TXT": b"old readme", "other.txt": b"other"})
    src = tmp_path / "src"
    write_local(src, {"readme.txt": b"the new readme", "other.txt": b"other"})
    result = shareferry(
        "sync", str(src), share_url(emulator, share, "", sas), "--from-to", "LocalFile",
        "--delete-destination", "true",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kept" in result.stderr and "Readme.TXT" in result.stderr  # it says why
    files = read_share(share).files
    (name,) = [path for path in files if path.lower() == "readme.txt"]
    assert files == {name: b"the new readme", "other.txt": b"other"}


# ---- one file ----------------------------------------------------------------------------------


def test_one_file_into_a_directory(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_bytes(b"just this one")
    (tmp_path / "b.txt").write_bytes(b"not this one")
    command = ["sync", "./a.txt", share_url(emulator, share, "dir/", sas), "--from-to", "LocalFile"]
    first = shareferry(*command, cwd=tmp_path)
    assert_ok(first)
    assert copied(first) == 1
    assert read_share(share).files == {"dir/a.txt": b"just this one"}
    reset_counters(emulator)
    second = shareferry(*command, cwd=tmp_path)
    assert_ok(second)
    assert (copied(second), unchanged(second)) == (0, 1)
    assert writes_to(emulator, share) == {}
    assert_secret_free(first, signature(sas))


# ---- bad input ---------------------------------------------------------------------------------


BAD_INPUT = {
    # case: (exit status, what the one line says)
    "wildcard in the source": (2, "no wildcards"),
    "account-level URL": (2, "share or container"),
    "--compare-hash SHA256": (2, "--compare-hash"),
    "--max-delete-percent 150": (2, "--max-delete-percent"),
    "--delete-destination maybe": (2, "--delete-destination"),
    "--overwrite false": (2, "--overwrite"),
    "--compare-hash with --mirror-mode": (2, "cannot be combined"),
    "missing destination share": (1, "does not exist"),
    "missing destination share, path below": (1, "does not exist"),
}


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BadInputRun]:
    """Every bad-input case run at once against one emulator."""
    tmp_path = tmp_path_factory.mktemp("bad-sync-input")
    write_local(tmp_path, {"src/a.txt": b"a"})
    with RunningEmulator(EmulatorConfig()) as emulator:
        account = emulator.account()
        service = ShareServiceClient(
            emulator.account_url(), credential={"account_name": account.name, "account_key": account.key}
        )
        share = service.create_share("share1")
        token = account_sas(emulator)
        source = str(tmp_path / "src")
        good = share_url(emulator, share, "", token)
        commands = {
            "wildcard in the source": [str(tmp_path / "src" / "*"), good],
            "account-level URL": [source, f"{emulator.account_url()}?{token}"],
            "--compare-hash SHA256": [source, good, "--compare-hash", "SHA256"],
            "--max-delete-percent 150": [source, good, "--max-delete-percent", "150"],
            "--delete-destination maybe": [source, good, "--delete-destination", "maybe"],
            "--overwrite false": [source, good, "--overwrite", "false"],
            "--compare-hash with --mirror-mode": [source, good, "--compare-hash", "MD5", "--mirror-mode"],
            "missing destination share": [source, f"{emulator.account_url()}/nosuchshare?{token}"],
            "missing destination share, path below": [
                source,
                f"{emulator.account_url()}/nosuchshare/d?{token}",
            ],
        }
        env = clean_environment(SHAREFERRY_JOB_DIR=str(tmp_path / "jobs"))
        results = shareferry_all(
            {case: ["sync", *args, "--from-to", "LocalFile"] for case, args in commands.items()}, env=env
        )
        yield BadInputRun(results, token, share)


@pytest.mark.parametrize(
    "case",
    list(BAD_INPUT),
)
def test_bad_input_is_one_clear_line(bad_input_runs: BadInputRun, case: str) -> None:
    status, message = BAD_INPUT[case]
    result = bad_input_runs.results[case]
    assert result.returncode == status, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("shareferry sync: ") and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert_secret_free(result, signature(bad_input_runs.sas))
    assert read_share(bad_input_runs.share).files == {}


# ---- --delete-destination prompt ---------------------------------------------------------------


@pytest.mark.parametrize(("answer", "kept"), [("y", False), ("n", True)])
def test_delete_destination_prompt_asks_once_on_the_terminal(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path, answer: str, kept: bool
) -> None:
    write_local(tmp_path / "src", {"keep.txt": b"keep"})
    extras = {"old/one.txt": b"1", "old/two.txt": b"2", "three.txt": b"3"}
    write_share(share, {"keep.txt": b"keep", **extras})
    status, shown = on_terminal(
        "sync", str(tmp_path / "src"), share_url(emulator, share, "", sas), "--from-to", "LocalFile",
        "--delete-destination", "prompt", "--max-delete-percent", "100",
        question="not at the source? [y/N]",
        answers=[answer],
    )  # fmt: skip
    assert status == 0, shown
    assert shown.count("Delete 3 files and 1 directories at the destination") == 1
    remaining = read_share(share).files
    assert remaining == ({"keep.txt": b"keep", **extras} if kept else {"keep.txt": b"keep"})
    assert ("Number of Deletions at Destination: 0 of 4" in shown) == kept
    assert signature(sas) not in shown


def test_a_resumed_sync_deletes_what_left_the_source_since_its_first_run(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path, job_dir: Path
) -> None:
    """A file the job itself copied earlier is not a case twin of itself: once it leaves the
    source, a later run of the same job deletes it from the (case-insensitive) share."""
    write_local(tmp_path / "src", {"stays.txt": b"stays", "goes.txt": b"goes"})
    command = ["sync", str(tmp_path / "src"), share_url(emulator, share, "", sas), "--from-to", "LocalFile"]
    first = shareferry(*command, "--delete-destination", "true")
    assert_ok(first)
    assert read_share(share).files == {"stays.txt": b"stays", "goes.txt": b"goes"}
    (tmp_path / "src" / "goes.txt").unlink()
    job_id = next(line for line in first.stdout.splitlines() if line.startswith("Job ")).split()[1]
    again = shareferry("jobs", "resume", job_id, "--destination-sas", sas)
    assert_ok(again)
    assert read_share(share).files == {"stays.txt": b"stays"}
    assert "Number of Deletions at Destination: 1 of 1" in again.stdout


def test_sharded_sync_deletes_each_extra_file_and_directory_once(
    emulator: RunningEmulator, service: ShareServiceClient, sas: str, tmp_path: Path
) -> None:
    # Three shards at once, as an Indexed Job runs them. Every shard meets every directory; an
    # extra one must be deleted (and counted) by one shard only.
    src = tmp_path / "src"
    write_local(src, {f"keep/{index}.txt": b"k%d" % index for index in range(6)})
    target = service.create_share("sharded")
    extras = {f"gone/{index}.txt": b"x" for index in range(6)} | {"old.txt": b"old"}
    write_share(target, extras)
    for empty in ("empty-a", "empty-b", "empty-c", "empty-a/inner"):
        target.get_directory_client(empty).create_directory()
    url = share_url(emulator, target, "", sas)
    flags = ["--from-to", "LocalFile", "--delete-destination", "true", "--max-delete-percent", "100"]

    def run_all_shards() -> int:
        runs = shareferry_all(
            {
                str(index): ["sync", str(src), url, *flags, "--shard-index", str(index), "--shard-count", "3"]
                for index in range(3)
            }
        )
        done = 0
        for result in runs.values():
            assert result.returncode == 0, result.stdout + result.stderr
            line = summary_value(result.stdout, "Number of Deletions at Destination")
            done += int(line.partition(" of ")[0])  # a directory holding another shard's files is kept
        return done

    before = read_share(target).dirs
    first = run_all_shards()
    listing = read_share(target)
    assert listing.files == {f"keep/{index}.txt": b"k%d" % index for index in range(6)}
    removed = before - listing.dirs
    assert first == len(extras) + len(removed)  # each file and each removed directory counted once
    second = run_all_shards()  # what a shard kept because another was still emptying it
    assert read_share(target).dirs == {"keep"}
    assert second == len(before - {"keep"}) - len(removed)
