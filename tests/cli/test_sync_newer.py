"""``shareferry sync`` never overwrites a destination file that is newer than its source (AzCopy:
"the file is skipped if the last modified time in the destination is more recent"), whatever the
sizes; it says so in the summary, the JSON output and the ``--report`` file.

Run as a user runs it (a child process against the Files emulator, Azurite for Blob, local
directories) and checked as a user would: the bytes and MD5s at the destination, the exit status,
the counters, the report lines. Also after a ``kill -9`` mid-file followed by a fresh ``sync``:
the big file lands whole, the newer destination file is still kept, no staging file is left."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.fileshare import ShareClient, ShareServiceClient

from shareferry.core.jobplan import list_jobs
from shareferry.emulator import RunningEmulator
from tests.cli.test_campaign_signals import STAGING_MARK, local_staging, staging_files, start, strike
from tests.cli.test_copy_cli import (
    account_sas,
    clean_environment,
    emulator_environment,
    share_url,
    shareferry,
    shareferry_all,
    summary_value,
)
from tests.support.shared_azurite import shared_azurite
from tests.support.trees import md5, read_container, read_local, read_share, write_local, write_share

KIB = 1024
MIB = 1024 * KIB
HOUR = 3600.0
NEWER_LINE = "Files Skipped Because the Destination Is Newer"
NEWER_FIELD = "FilesSkippedNewerAtDestination"
NEWER_REASON = "skipped: the destination is newer"
SOURCE = {f"d1/f{i}.txt": f"file {i} from the source\n".encode() for i in range(1, 6)}
EDITED = b"edited at the destination after the last sync: another length\n"


def set_mtimes(root: Path, when: float) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (when, when))


def newer(result: subprocess.CompletedProcess[str]) -> int:
    return int(summary_value(result.stdout, NEWER_LINE))


def copied(result: subprocess.CompletedProcess[str]) -> int:
    return int(summary_value(result.stdout, "Number of File Transfers Completed"))


def unchanged(result: subprocess.CompletedProcess[str]) -> int:
    return int(summary_value(result.stdout, "Files Unchanged"))


def assert_completed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary_value(result.stdout, "Final Job Status") == "Completed", result.stdout


def report_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def json_end(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    messages = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert messages[-1]["MessageType"] == "EndOfJob", result.stdout
    content: dict[str, Any] = json.loads(messages[-1]["MessageContent"])
    return content


# ---- the repro ---------------------------------------------------------------------------------


def test_a_destination_file_edited_after_the_last_sync_is_kept_counted_and_reported(
    emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_local(src, SOURCE)
    set_mtimes(src, time.time() - 60)  # written a minute ago
    url = share_url(emulator, share, "", account_sas(emulator))
    assert_completed(shareferry("sync", str(src), url, "--from-to", "LocalFile"))
    write_share(share, {"d1/f5.txt": EDITED})  # someone edits it at the share (with its MD5)

    report = tmp_path / "report.jsonl"
    runs = shareferry_all(
        {
            "text": ["sync", str(src), url, "--from-to", "LocalFile", "--report", str(report)],
            "json": ["sync", str(src), url, "--from-to", "LocalFile", "--output-type", "json"],
        }
    )

    text = runs["text"]
    assert_completed(text)
    assert (newer(text), copied(text), unchanged(text)) == (1, 0, 4)
    assert summary_value(text.stdout, "Number of File Transfers Skipped") == "0"  # not a transfer
    landed = read_share(share)
    assert landed.files == {**SOURCE, "d1/f5.txt": EDITED}  # the newer file is kept byte for byte
    assert landed.stored_md5["d1/f5.txt"] == md5(EDITED)
    (line,) = report_lines(report)
    assert line["path"] == "d1/f5.txt" and line["result"] == "skipped"
    assert line["reason"] == NEWER_REASON
    assert line["source"] == str(src / "d1" / "f5.txt")
    assert (
        line["destination"].endswith(f"/{share.share_name}/d1/f5.txt") and "sig=" not in line["destination"]
    )

    end = runs["json"]
    assert end.returncode == 0, end.stdout + end.stderr
    summary = json_end(end)
    assert summary["JobStatus"] == "Completed"
    assert summary[NEWER_FIELD] == "1"
    assert (summary["TransfersCompleted"], summary["TransfersSkipped"], summary["TotalTransfers"]) == (
        "0",
        "0",
        "0",
    )
    assert read_share(share).files == {**SOURCE, "d1/f5.txt": EDITED}


# ---- the rule, case by case (local -> Files) ---------------------------------------------------

#: name: (destination bytes, destination written after the source?, extra flags, expected bytes
#: at the destination afterwards, expected (copied, unchanged, newer))
CASES: dict[str, tuple[bytes, bool, list[str], bytes, tuple[int, int, int]]] = {
    "older destination of another size": (b"old, longer content", False, [], b"source", (1, 0, 0)),
    "newer destination of the same size": (b"SOURCE", True, [], b"SOURCE", (0, 1, 0)),
    "newer destination of another size": (b"newer, longer", True, [], b"newer, longer", (0, 0, 1)),
    "--mirror-mode, newer destination": (b"newer, longer", True, ["--mirror-mode"], b"source", (1, 0, 0)),
    # AzCopy: "transfer only files which differ in their MD5 hash", whatever the times.
    "--compare-hash MD5, MD5s differ, newer destination": (
        b"newer, longer",
        True,
        ["--compare-hash", "MD5"],
        b"source",
        (1, 0, 0),
    ),
    "--compare-hash MD5, same MD5, older destination": (
        b"source",
        False,
        ["--compare-hash", "MD5"],
        b"source",
        (0, 1, 0),
    ),
}
WITHOUT_MD5 = "--compare-hash MD5, no MD5 at the destination, newer destination"


@pytest.mark.parametrize("case", [*CASES, WITHOUT_MD5])
def test_each_rule_through_the_cli(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, case: str
) -> None:
    if case == WITHOUT_MD5:  # the hash comparison falls back to the times: the newer file is kept
        destination, after, flags, expected, counts = (
            b"newer, longer",
            True,
            ["--compare-hash", "MD5"],
            b"newer, longer",
            (0, 0, 1),
        )
    else:
        destination, after, flags, expected, counts = CASES[case]
    src = tmp_path / "src"
    write_local(src, {"f.txt": b"source"})
    share = service.create_share("rule")
    write_share(share, {"f.txt": destination}, with_md5=case != WITHOUT_MD5)
    set_mtimes(src, time.time() + (-HOUR if after else HOUR))
    report = tmp_path / "report.jsonl"
    url = share_url(emulator, share, "", account_sas(emulator))
    result = shareferry("sync", str(src), url, "--from-to", "LocalFile", "--report", str(report), *flags)
    assert_completed(result)
    assert (copied(result), unchanged(result), newer(result)) == counts
    assert read_share(share).files == {"f.txt": expected}
    reasons = [line["reason"] for line in report_lines(report) if line["result"] == "skipped"]
    assert reasons == [NEWER_REASON] * counts[2]


# ---- every direction ---------------------------------------------------------------------------


def test_the_newer_destination_is_kept_share_to_local_and_share_to_share(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path
) -> None:
    sas = account_sas(emulator)
    source, destination = service.create_share("from"), service.create_share("into")
    write_share(source, SOURCE)
    down = tmp_path / "down"
    commands = {
        "FileLocal": ["sync", share_url(emulator, source, "", sas), str(down), "--from-to", "FileLocal"],
        "FileFile": [
            "sync", share_url(emulator, source, "", sas), share_url(emulator, destination, "", sas),
            "--from-to", "FileFile", "--preserve-smb-info",
        ],
    }  # fmt: skip
    for pair, result in shareferry_all(commands).items():
        assert_completed(result)
        assert copied(result) == len(SOURCE), pair
    # Edited at both destinations after the sync, with other lengths.
    (down / "d1" / "f5.txt").write_bytes(EDITED)
    write_share(destination, {"d1/f5.txt": EDITED})

    again = shareferry_all(commands)
    for pair, result in again.items():
        assert_completed(result)
        assert (newer(result), copied(result), unchanged(result)) == (1, 0, 4), pair
    assert read_local(down).files == {**SOURCE, "d1/f5.txt": EDITED}
    assert read_share(destination).files == {**SOURCE, "d1/f5.txt": EDITED}


def new_container(name: str) -> ContainerClient:
    azurite = shared_azurite()
    return BlobServiceClient(azurite.endpoint, azurite.credential).create_container(
        f"{name}{os.urandom(4).hex()}"
    )


@pytest.mark.azurite
def test_the_newer_destination_is_kept_blob_to_blob_and_local_to_blob(tmp_path: Path) -> None:
    azurite = shared_azurite()
    source, to_blob, from_local = new_container("src"), new_container("dst"), new_container("up")
    for path, data in SOURCE.items():
        source.upload_blob(path, data)
    src = tmp_path / "src"
    write_local(src, SOURCE)
    set_mtimes(src, time.time() - HOUR)

    def url(container: ContainerClient) -> str:
        return f"{azurite.endpoint}/{container.container_name}"

    commands = {
        "BlobBlob": ["sync", url(source), url(to_blob), "--from-to", "BlobBlob"],
        "LocalBlob": ["sync", str(src), url(from_local), "--from-to", "LocalBlob", "--output-type", "json"],
    }
    env = clean_environment(AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string)
    first = shareferry_all(commands, env=env)
    assert_completed(first["BlobBlob"])
    assert first["LocalBlob"].returncode == 0, first["LocalBlob"].stdout + first["LocalBlob"].stderr
    time.sleep(1.1)  # a blob's time has whole seconds: the edit lands in a later one than the copy
    for container in (to_blob, from_local):
        container.upload_blob("d1/f5.txt", EDITED, overwrite=True)

    again = shareferry_all(commands, env=env)
    blob = again["BlobBlob"]
    assert_completed(blob)
    assert (newer(blob), copied(blob), unchanged(blob)) == (1, 0, 4)
    summary = json_end(again["LocalBlob"])
    assert summary["JobStatus"] == "Completed"
    assert (summary[NEWER_FIELD], summary["TransfersCompleted"]) == ("1", "0")
    for container in (to_blob, from_local):
        assert read_container(container).files == {**SOURCE, "d1/f5.txt": EDITED}


# ---- kill -9 mid-file, then a fresh sync -------------------------------------------------------

BIG = "big.bin"
BIG_SIZE = 64 * MIB
#: A cap that makes the big file take seconds, so the kill lands while it is in flight.
SLOW = ["--cap-mbps", "160", "--block-size-mb", "1"]


def big_ranges_written(seen: dict[str, Any]) -> int:
    return sum(
        per_op.get("PutRange", 0) for path, per_op in seen["paths"].items() if f".{BIG}{STAGING_MARK}" in path
    )


@pytest.mark.parametrize(
    ("direction", "then"), [("LocalFile", "sync"), ("FileLocal", "sync"), ("LocalFile", "jobs resume")]
)
def test_kill_9_mid_file_then_a_fresh_sync_lands_the_big_file_and_keeps_the_newer_one(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, direction: str, then: str
) -> None:
    env = emulator_environment(emulator, tmp_path / "jobs")
    share = service.create_share("killed")
    url = f"{emulator.account_url()}/killed"
    local = tmp_path / ("src" if direction == "LocalFile" else "down")
    big = random.Random(direction).randbytes(BIG_SIZE)
    if direction == "LocalFile":
        write_local(local, SOURCE)
        set_mtimes(local, time.time() - 60)
        args = ["sync", str(local), url, "--from-to", direction]
    else:
        write_share(share, SOURCE)
        args = ["sync", url, str(local), "--from-to", direction]
    first = shareferry(*args, env=env)
    assert_completed(first)

    # After the first sync: the destination's d1/f5.txt is edited there (newer, another length),
    # and a big file appears at the source.
    if direction == "LocalFile":
        write_share(share, {"d1/f5.txt": EDITED})
        write_local(local, {BIG: big})
    else:
        # The share's times have whole seconds: edit in a later one than the first sync's, so
        # the edit is newer, not "maybe newer" (same second: see the judgement tests).
        time.sleep(1.1)
        (local / "d1" / "f5.txt").write_bytes(EDITED)
        write_share(share, {BIG: big}, with_md5=False)

    def big_in_flight(seen: dict[str, Any]) -> bool:
        if direction == "LocalFile":
            return 1 <= big_ranges_written(seen) <= BIG_SIZE // MIB // 2
        reads = int(seen["operations"].get("GetFile", {}).get("total", 0))
        return reads >= 2 and bool(local_staging(local))

    struck = strike(start([*args, *SLOW], env), emulator, big_in_flight, signal.SIGKILL)
    assert struck.returncode == -signal.SIGKILL
    if direction == "LocalFile":
        assert staging_files(read_share(share).files), "the kill landed with no file in flight"
        assert BIG not in read_share(share).files
    else:
        assert local_staging(local), "the kill landed with no file in flight"
        assert not (local / BIG).exists()

    report = tmp_path / "report.jsonl"
    if then == "sync":
        fresh = shareferry(*args, "--report", str(report), env=env)  # a new job, not a resume
    else:  # the same job again: it judges the newer file afresh and counts it once
        (job,) = [job for job in list_jobs(tmp_path / "jobs") if job.status == "Interrupted"]
        fresh = shareferry("jobs", "resume", job.job_id, "--report", str(report), env=env)
    assert_completed(fresh)
    assert (copied(fresh), unchanged(fresh), newer(fresh)) == (1, len(SOURCE) - 1, 1)
    expected = {**SOURCE, "d1/f5.txt": EDITED, BIG: big}
    landed = read_share(share) if direction == "LocalFile" else read_local(local)
    assert landed.files.keys() == expected.keys(), "a staging file (or a stray) is left"
    assert md5(landed.files[BIG]) == md5(big)
    assert landed.files == expected  # the newer file kept byte for byte, the rest the source's
    if direction == "FileLocal":
        assert local_staging(local) == []
    skipped = [line for line in report_lines(report) if line["result"] == "skipped"]
    assert [(line["path"], line["reason"]) for line in skipped] == [("d1/f5.txt", NEWER_REASON)]
