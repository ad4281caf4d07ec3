"""A download into a local folder that does not exist yet, killed with ``kill -9`` part-way and
resumed with ``shareferry jobs resume``: the first run decides that the folder is a directory the
files go into and the plan keeps that, so no later run downloads a finished file again (its inode
and modification time stay as they were), and ``shareferry jobs show`` agrees with the summary."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.storage.fileshare import ShareServiceClient

from shareferry.core.jobplan import FileState, JobPlan, list_jobs
from shareferry.emulator import RunningEmulator
from tests.cli.test_copy_cli import clean_environment, shareferry, summary_value
from tests.support.emulator_admin import add_fault, counters
from tests.support.trees import read_local, write_share

KIB = 1024


def tree() -> dict[str, bytes]:
    rng = random.Random(7)
    return {f"many/d{d}/f{i:02d}.bin": rng.randbytes(16 * KIB + i) for d in range(4) for i in range(25)}


def downloads(emulator: RunningEmulator) -> int:
    return int(counters(emulator)["operations"].get("GetFile", {}).get("total", 0))


def run_until(
    args: list[str], env: dict[str, str], stop: Callable[[], bool]
) -> subprocess.CompletedProcess[str] | None:
    """Run ``shareferry`` until ``stop()`` holds (then kill -9 it and return None) or it ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "shareferry", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    while process.poll() is None:
        if stop():
            os.kill(process.pid, signal.SIGKILL)
            process.communicate(timeout=30)
            return None
        time.sleep(0.005)
    out, err = process.communicate(timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


Stamp = tuple[int, int]  # inode, modification time in ns


def finished_files(job_dir: Path, destination: Path) -> dict[Path, Stamp]:
    """The local files the job's plan holds as done, with their inode and modification time.
    A key is relative to the folder (or, had the folder been taken as a new name, its parent)."""
    (job,) = list_jobs(job_dir)
    with JobPlan.open(job_dir, job.job_id) as plan:
        keys = [file.destination for file in plan.files(state=FileState.DONE)]
    stamps = {}
    for key in keys:
        path = destination / key if (destination / key).exists() else destination.parent / key
        stat = path.stat()
        stamps[path] = (stat.st_ino, stat.st_mtime_ns)
    return stamps


def test_a_download_to_a_new_folder_resumes_without_downloading_a_finished_file_again(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path
) -> None:
    files = tree()
    write_share(service.create_share("resumes"), files)
    account = emulator.account()
    job_dir = tmp_path / "jobs"
    env = clean_environment(
        AZURE_STORAGE_CONNECTION_STRING=(
            f"DefaultEndpointsProtocol=http;AccountName={account.name};AccountKey={account.key};"
            f"FileEndpoint={emulator.account_url()};"
        ),
        SHAREFERRY_CONCURRENCY="4",
        SHAREFERRY_JOB_DIR=str(job_dir),
    )
    add_fault(emulator, "latency:GetFile:latency_ms=15")  # keeps the download long enough to hit
    destination = tmp_path / "not" / "yet" / "there"
    source = f"{emulator.account_url()}/resumes/many"

    def after(more: int) -> Callable[[], bool]:
        start = downloads(emulator)
        return lambda: downloads(emulator) - start >= more

    first = run_until(
        ["copy", source, str(destination), "--recursive", "--from-to", "FileLocal"], env, after(25)
    )
    assert first is None, "the first run ended before it could be killed"
    settled = [finished_files(job_dir, destination)]
    (job,) = list_jobs(job_dir)
    assert job.options["local_destination"] == "directory"
    resumed = run_until(["jobs", "resume", job.job_id], env, after(25))
    assert resumed is None, "the second run ended before it could be killed"
    settled.append(finished_files(job_dir, destination))

    final = run_until(["jobs", "resume", job.job_id], env, lambda: False)
    assert final is not None and final.returncode == 0, final.stderr if final else "killed"
    assert read_local(destination).files == files
    for done in settled:
        again = {
            str(path)
            for path, stamp in done.items()
            if (path.stat().st_ino, path.stat().st_mtime_ns) != stamp
        }
        assert not again, f"finished files were downloaded again: {sorted(again)[:3]}"
    assert len(settled[0]) >= 10 and len(settled[1]) > len(settled[0]), [len(done) for done in settled]
    assert summary_value(final.stdout, "Number of File Transfers Completed") == str(len(files))
    assert summary_value(final.stdout, "Files Completed by Earlier Runs") == str(len(settled[1]))
    assert summary_value(final.stdout, "Final Job Status") == "Completed"

    shown = shareferry("jobs", "show", job.job_id, "--output-type", "json", env=env)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["status"] == "Completed" and document["runs"] == 3
    assert document["files"] == {
        "total": len(files),
        "done": len(files),
        "failed": 0,
        "skipped": 0,
        "planned": 0,
    }
    text = shareferry("jobs", "show", job.job_id, env=env).stdout
    assert f"Files: {len(files)} in the plan: {len(files)} done, 0 failed, 0 skipped, 0 planned" in text


@pytest.mark.parametrize("trailing", ["", "/"])
def test_one_file_to_a_new_name_keeps_that_name_when_resumed(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, trailing: str
) -> None:
    """A single file to a path that does not exist is that file (with a trailing / a folder to
    put it in), on the first run and on every run after."""
    write_share(service.create_share("single"), {"report.csv": b"a,b\n1,2\n"})
    account = emulator.account()
    env = clean_environment(
        AZURE_STORAGE_CONNECTION_STRING=(
            f"DefaultEndpointsProtocol=http;AccountName={account.name};AccountKey={account.key};"
            f"FileEndpoint={emulator.account_url()};"
        ),
        SHAREFERRY_JOB_DIR=str(tmp_path / "jobs"),
    )
    target = tmp_path / "out" / "renamed.csv"
    copied = shareferry(
        "copy",
        f"{emulator.account_url()}/single/report.csv",
        f"{target}{trailing}",
        "--from-to",
        "FileLocal",
        env=env,
    )
    assert copied.returncode == 0, copied.stderr
    landed = target / "report.csv" if trailing else target
    assert landed.read_bytes() == b"a,b\n1,2\n"
    (job,) = list_jobs(tmp_path / "jobs")
    assert job.options["local_destination"] == ("directory" if trailing else "name")
    stamp = landed.stat().st_ino, landed.stat().st_mtime_ns
    again = shareferry("jobs", "resume", job.job_id, env=env)
    assert again.returncode == 0, again.stderr
    assert summary_value(again.stdout, "Files Completed by Earlier Runs") == "1"
    assert (landed.stat().st_ino, landed.stat().st_mtime_ns) == stamp
    assert read_local(tmp_path / "out").files == {
        landed.relative_to(tmp_path / "out").as_posix(): b"a,b\n1,2\n"
    }
