"""Kill -9 campaigns: a copy and a sync are killed at many points and resumed each time with
``shareferry jobs resume``; the end result must be byte-identical with every MD5 matching, and
the emulator's per-file write counters must show that no file the plan held as done (at the
moment of a kill) was written again by any later run.

The kill points are chosen by what the emulator has seen (cumulative content writes, a big file
part-way through its ranges, deletions under way), not by sleeping, so they land in the same
phases on a slow or a fast machine: before the first write (the job is still enumerating), at
several depths of the upload, in the middle of one multi-range file, and during the deletions
of a sync. A little latency on the emulator's writes keeps each phase long enough to hit.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from azure.storage.fileshare import ShareServiceClient

from shareferry.core.jobplan import FileState, JobPlan, list_jobs
from shareferry.emulator import RunningEmulator
from tests.cli.test_copy_cli import emulator_environment, summary_value
from tests.support.emulator_admin import add_fault, counters, writes_per_file
from tests.support.trees import md5, read_local, read_share, write_local, write_share

KIB = 1024
MIB = 1024 * KIB
BIG = "a/huge file.bin"  # 6 MiB + a tail in 0.5 MiB blocks: 13 ranges, hit mid-way once
BIG_RANGES = 13
SEED = 20261121


def source_tree() -> dict[str, bytes]:
    rng = random.Random(SEED)
    files = {f"d{d}/f{i:03d}.bin": rng.randbytes(24 * KIB + i) for d in range(6) for i in range(30)}
    files[BIG] = rng.randbytes(6 * MIB + 4321)
    files["a/ünïcødé name.txt"] = "déjà vu, encore".encode()
    files["z/empty.txt"] = b""
    files["z/deeper/leaf 100%.json"] = b'{"leaf": true}'
    return files


Snapshot = dict[str, dict[str, int]]


@dataclass(frozen=True)
class Seen:
    """What the emulator has counted: per-file writes and per-operation totals."""

    writes: Snapshot
    operations: dict[str, Any]

    def total_writes(self) -> int:
        return total_writes(self.writes)

    def ranges(self, key: str) -> int:
        """Ranges written to the file ``key``: where it landed, plus (while it is unfinished) its
        hidden staging files (``.<name>.shareferry-<token>.partial`` beside it)."""
        head, _, name = key.rpartition("/")
        staged = f"{head}/.{name}.shareferry-"
        return sum(
            per_op.get("PutRange", 0)
            for path, per_op in self.writes.items()
            if path == key or (path.startswith(staged) and path.endswith(".partial"))
        )

    def deletes(self) -> int:
        return int(self.operations.get("DeleteFile", {}).get("total", 0))


#: Whether to kill now, from what the emulator saw when this run started and what it sees now.
Condition = Callable[[Seen, Seen], bool]


def total_writes(writes: Snapshot) -> int:
    return sum(sum(per_op.values()) for per_op in writes.values())


def after_writes(n: int) -> Condition:
    """Once this run has written ``n`` times."""
    return lambda start, now: now.total_writes() - start.total_writes() >= n


def big_file_part_way(share: str, path: str) -> Condition:
    """Once this run has sent some of the big file's ranges but not all of them."""
    key = f"devstoreaccount1/{share}/{path}"
    return lambda start, now: 2 <= now.ranges(key) - start.ranges(key) <= BIG_RANGES - 2


def deletions_under_way(n: int) -> Condition:
    """Once this run has deleted ``n`` files."""
    return lambda start, now: now.deletes() - start.deletes() >= n


@dataclass
class Campaign:
    """One job killed again and again, with what each kill left behind."""

    emulator: RunningEmulator
    env: dict[str, str]
    job_dir: Path
    share: str
    kills: int = 0
    job_id: str | None = None
    #: After each kill: the files the plan held as done, and the writes counted per file then.
    settled: list[tuple[set[str], Snapshot]] = field(default_factory=list)

    def start(self, args: list[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "shareferry", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env,
        )

    def run_until(
        self, args: list[str], condition: Condition | None
    ) -> subprocess.CompletedProcess[str] | None:
        """Run until ``condition`` holds (then kill -9 and return None) or the process ends."""
        at_start = self._seen()
        process = self.start(args)
        while process.poll() is None:
            if condition is not None and condition(at_start, self._seen()):
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
                assert process.stdout is not None
                process.stdout.read()
                self.kills += 1
                self._record_kill()
                return None
            time.sleep(0.005)
        out, _ = process.communicate(timeout=30)
        return subprocess.CompletedProcess(process.args, process.returncode, out, "")

    def _seen(self) -> Seen:
        snapshot = counters(self.emulator, paths=True)
        return Seen(snapshot["paths"], snapshot["operations"])

    def _record_kill(self) -> None:
        jobs = list_jobs(self.job_dir)
        if not jobs:
            return  # killed before the plan existed: nothing can have been done
        assert len(jobs) == 1, "one campaign, one job"
        self.job_id = jobs[0].job_id
        with JobPlan.open(self.job_dir, self.job_id) as plan:
            done = {
                f"devstoreaccount1/{self.share}/{file.destination}"
                for file in plan.files(state=FileState.DONE)
            }
        self.settled.append((done, writes_per_file(self.emulator)))

    def check_nothing_done_was_sent_again(self) -> None:
        final = writes_per_file(self.emulator)
        for done, writes_then in self.settled:
            again = {key for key in done if final.get(key) != writes_then.get(key)}
            assert not again, f"files done before a kill were written again after it: {sorted(again)[:5]}"

    def resume_args(self) -> list[str]:
        assert self.job_id is not None
        return ["jobs", "resume", self.job_id]


@pytest.fixture
def campaign_env(emulator: RunningEmulator, tmp_path: Path) -> dict[str, str]:
    # A little latency on every write keeps each phase of the job long enough to be hit.
    add_fault(emulator, "latency:CreateFile+PutRange+DeleteFile:latency_ms=12")
    return emulator_environment(emulator, tmp_path / "jobs", SHAREFERRY_CONCURRENCY="4")


def test_a_copy_killed_at_many_points_resumes_to_an_identical_share(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, campaign_env: dict[str, str]
) -> None:
    files = source_tree()
    write_local(tmp_path / "src", files)
    share = service.create_share("crashcopy")
    url = f"{emulator.account_url()}/crashcopy"
    copy_args = ["copy", str(tmp_path / "src"), url, "--from-to", "LocalFile", "--recursive", "--put-md5"]
    copy_args += ["--block-size-mb", "0.5"]
    campaign = Campaign(emulator, campaign_env, tmp_path / "jobs", "crashcopy")
    points: list[Condition] = [
        lambda _start, _now: list_jobs(campaign.job_dir) != [],  # the plan exists, nothing sent yet
        big_file_part_way("crashcopy", f"src/{BIG}"),  # it comes first in tree order
        after_writes(20),
        after_writes(30),
        after_writes(30),
        after_writes(30),
        after_writes(30),
    ]
    first = campaign.run_until(copy_args, points[0])
    assert first is None, "the first run finished before it could be killed"
    for point in points[1:]:
        if campaign.run_until(campaign.resume_args(), point) is not None:
            break  # the job finished before this point: the later points are moot
    final = campaign.run_until(campaign.resume_args(), None)
    assert final is not None and final.returncode == 0, final.stdout if final else "killed"
    assert campaign.kills >= 6, f"only {campaign.kills} kills landed"

    copied = read_share(share, "src")
    assert copied.files == {f"src/{path}": data for path, data in files.items()}
    for path, data in copied.files.items():
        assert copied.stored_md5[path] == md5(data), path
    # The final summary counts the whole job, earlier runs included.
    assert summary_value(final.stdout, "Number of File Transfers Completed") == str(len(files))
    assert summary_value(final.stdout, "Final Job Status") == "Completed"
    campaign.check_nothing_done_was_sent_again()
    _check_plan_complete(campaign, len(files))


def test_a_sync_killed_at_many_points_resumes_to_an_exact_mirror(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, campaign_env: dict[str, str]
) -> None:
    files = source_tree()
    write_local(tmp_path / "src", files)
    share = service.create_share("crashsync")
    # The destination already holds stale versions of some files (another size, older than the
    # source: they must be copied) and files the source does not have (they must go).
    stale = {path: b"stale" for path in list(files)[::4]}
    extra = {f"old/x{i:02d}.bin": b"x" * i for i in range(30)}
    write_share(share, {**stale, **extra})
    later = time.time() + 3600  # a newer destination would be kept (AzCopy's rule)
    for path in files:
        os.utime(tmp_path / "src" / path, (later, later))
    url = f"{emulator.account_url()}/crashsync"
    sync_args = ["sync", str(tmp_path / "src"), url, "--from-to", "LocalFile", "--put-md5"]
    sync_args += ["--delete-destination", "true", "--block-size-mb", "0.5", "--max-delete-percent", "100"]
    campaign = Campaign(emulator, campaign_env, tmp_path / "jobs", "crashsync")
    points: list[Condition] = [
        lambda _start, _now: list_jobs(campaign.job_dir) != [],  # listing both trees, nothing sent yet
        big_file_part_way("crashsync", BIG),
        after_writes(20),
        after_writes(30),
        after_writes(30),
        deletions_under_way(8),
    ]
    first = campaign.run_until(sync_args, points[0])
    assert first is None, "the first run finished before it could be killed"
    for point in points[1:]:
        if campaign.run_until(campaign.resume_args(), point) is not None:
            break
    final = campaign.run_until(campaign.resume_args(), None)
    assert final is not None and final.returncode == 0, final.stdout if final else "killed"
    assert campaign.kills >= 5, f"only {campaign.kills} kills landed"

    mirrored = read_share(share)
    assert mirrored.files == files  # every file byte-identical, no extra one left
    for path, data in mirrored.files.items():
        assert mirrored.stored_md5[path] == md5(data), path
    assert "old" not in mirrored.dirs  # emptied by the deletions, then removed itself
    campaign.check_nothing_done_was_sent_again()
    assert read_local(tmp_path / "src").files == files  # the source was only read


def _check_plan_complete(campaign: Campaign, expected: int) -> None:
    assert campaign.job_id is not None
    with JobPlan.open(campaign.job_dir, campaign.job_id) as plan:
        counts = plan.counts()
        record = plan.record
    assert counts.get(FileState.DONE, 0) == expected
    assert record.status == "Completed"
    assert record.runs == campaign.kills + 1
