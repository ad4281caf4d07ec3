"""Standing campaign: signals at awkward moments, concurrent writers, counters that add up.

Every case runs the real CLI as a subprocess against the real Files emulator (and Azurite for
Blob) and checks what a user would check afterwards:

* **Signals** (SIGINT, SIGTERM, kill -9) at several points of an upload: no file at its final
  name ever holds anything but the source's bytes (an unfinished file lives under a hidden staging
  name), a clean interrupt names the job and how to resume it and leaves no staging file behind,
  a killed job shows as Interrupted (not Running for ever), and a *fresh* ``sync`` (not ``jobs
  resume``) ends byte-identical with no staging file left anywhere.
* **Concurrent writers**: two syncs of different folders into one share or container at once;
  every file that lands is wholly one source's version, never a mix of both.
* **Two runs of one job** at once: the second is refused.
* **Counters**: every enumerated file ends in exactly one of completed, skipped, failed, also
  when the destination refuses every write.

Kill points are chosen by what the emulator has counted (writes so far, ranges of the big file),
not by sleeping, so they land in the same phase on a slow or a fast machine.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.storage.blob import BlobServiceClient
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareClient,
    ShareServiceClient,
    generate_account_sas,
)

from shareferry.core.jobplan import list_jobs
from shareferry.emulator import RunningEmulator
from tests.cli.test_copy_cli import clean_environment, emulator_environment, shareferry, summary_value
from tests.support.emulator_admin import add_fault, counters
from tests.support.shared_azurite import shared_azurite
from tests.support.trees import read_container, read_local, read_share, write_local
from tests.support.trees import write_share as write_share_files

KIB = 1024
MIB = 1024 * KIB
BIG = "a/big.bin"  # 4 MiB in 0.5 MiB ranges: 9 ranges, long enough to be hit mid-way
STAGING_MARK = ".shareferry-"


def source_tree(seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {f"d{d}/f{i:02d}.bin": rng.randbytes(20 * KIB + i) for d in range(4) for i in range(12)}
    files[BIG] = rng.randbytes(4 * MIB + 17)
    files["z/empty.txt"] = b""
    return files


Condition = Callable[[dict[str, Any]], bool]


def writes_so_far(snapshot: dict[str, Any]) -> int:
    return sum(sum(per_op.values()) for per_op in snapshot["paths"].values())


def big_ranges(snapshot: dict[str, Any]) -> int:
    return sum(
        per_op.get("PutRange", 0)
        for path, per_op in snapshot["paths"].items()
        if path.endswith("/big.bin") or (".big.bin" + STAGING_MARK in path)
    )


#: Where to strike, in what the emulator has seen of this run.
POINTS: dict[str, Condition] = {
    "big file part way": lambda seen: 1 <= big_ranges(seen) <= 6,
    "after 10 writes": lambda seen: writes_so_far(seen) >= 10,
    "after 40 writes": lambda seen: writes_so_far(seen) >= 40,
}


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shareferry", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def strike(
    process: subprocess.Popen[str], emulator: RunningEmulator, when: Condition, signum: int
) -> subprocess.CompletedProcess[str]:
    """Send ``signum`` once ``when`` holds; the process's end (it must not finish before)."""
    while process.poll() is None:
        if when(counters(emulator, paths=True)):
            os.kill(process.pid, signum)
            break
        time.sleep(0.003)
    else:
        pytest.fail("the run finished before the signal could land")
    out, err = process.communicate(timeout=60)
    settle(emulator)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def settle(emulator: RunningEmulator) -> None:
    """Wait until requests a killed client left in flight have been answered (a Rename File
    sent just before a kill -9 still lands): the counters hold still for a while."""
    quiet_since = time.monotonic()
    last = counters(emulator)["total"]
    deadline = quiet_since + 30
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = counters(emulator)["total"]
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= 0.5:
            return


def staging_files(paths: Any) -> list[str]:
    return [path for path in paths if STAGING_MARK in path and path.endswith(".partial")]


def assert_no_final_name_is_damaged(share: ShareClient, files: dict[str, bytes]) -> None:
    """Every file at a final name holds the source's exact bytes (absent is fine)."""
    landed = read_share(share)
    for path, data in landed.files.items():
        if STAGING_MARK in path:
            continue
        assert path in files, f"unexpected file {path}"
        assert data == files[path], f"{path} at its final name holds other bytes than the source"


@pytest.fixture
def env(emulator: RunningEmulator, tmp_path: Path) -> dict[str, str]:
    # Latency on the writes keeps each phase of a job long enough to be hit.
    add_fault(emulator, "latency:CreateFile+PutRange+RenameFile:latency_ms=25")
    return emulator_environment(emulator, tmp_path / "jobs", SHAREFERRY_CONCURRENCY="2")


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "kill -9": signal.SIGKILL}


@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("signal_name", list(SIGNALS))
def test_a_signal_mid_sync_never_leaves_a_damaged_file_and_a_fresh_sync_repairs_all(
    emulator: RunningEmulator,
    service: ShareServiceClient,
    tmp_path: Path,
    env: dict[str, str],
    signal_name: str,
    point: str,
) -> None:
    files = source_tree(seed=len(point) + len(signal_name))
    write_local(tmp_path / "src", files)
    share = service.create_share("signals")
    url = f"{emulator.account_url()}/signals"
    args = [
        "sync",
        str(tmp_path / "src"),
        url,
        "--from-to",
        "LocalFile",
        "--put-md5",
        "--block-size-mb",
        "0.5",
    ]

    struck = strike(start(args, env), emulator, POINTS[point], SIGNALS[signal_name])

    assert_no_final_name_is_damaged(share, files)
    (job,) = list_jobs(tmp_path / "jobs")
    if signal_name == "kill -9":
        assert struck.returncode == -signal.SIGKILL
        assert job.status == "Interrupted", "a killed job must not show as Running for ever"
        listed = shareferry("jobs", "list", env=env)
        assert "Interrupted" in listed.stdout and "Running" not in listed.stdout
    else:
        assert struck.returncode == 130, struck.stderr
        assert "Traceback" not in struck.stderr
        assert f"job {job.job_id} was cancelled" in struck.stderr
        assert f"shareferry jobs resume {job.job_id}" in struck.stderr
        assert job.status == "Cancelled"
        assert staging_files(read_share(share).files) == [], "a clean cancel removes its unfinished files"

    again = shareferry(*args, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    landed = read_share(share)
    assert landed.files == files, "the fresh sync did not end byte-identical (or left staging files)"


def test_sigterm_then_jobs_resume_finishes_without_resending_done_files(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, env: dict[str, str]
) -> None:
    files = source_tree(seed=7)
    write_local(tmp_path / "src", files)
    share = service.create_share("resumed")
    url = f"{emulator.account_url()}/resumed"
    args = ["copy", str(tmp_path / "src"), url, "--from-to", "LocalFile", "--recursive", "--put-md5"]
    struck = strike(start(args, env), emulator, POINTS["after 40 writes"], signal.SIGTERM)
    assert struck.returncode == 130
    (job,) = list_jobs(tmp_path / "jobs")
    resumed = shareferry("jobs", "resume", job.job_id, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert summary_value(resumed.stdout, "Final Job Status") == "Completed"
    assert read_share(share, "src").files == {f"src/{path}": data for path, data in files.items()}


def test_a_second_run_of_a_running_job_is_refused(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, env: dict[str, str]
) -> None:
    files = source_tree(seed=11)
    write_local(tmp_path / "src", files)
    service.create_share("twice")
    url = f"{emulator.account_url()}/twice"
    first = start(["copy", str(tmp_path / "src"), url, "--from-to", "LocalFile", "--recursive"], env)
    try:
        deadline = time.monotonic() + 30
        while not list_jobs(tmp_path / "jobs") and time.monotonic() < deadline:
            time.sleep(0.01)
        (job,) = list_jobs(tmp_path / "jobs")
        second = shareferry("jobs", "resume", job.job_id, env=env)
        assert first.poll() is None, "the first run ended before the second could start"
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"job {job.job_id} is already running in another process" in second.stderr
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err


def test_two_syncs_into_one_share_at_once_never_mix_a_file(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, env: dict[str, str]
) -> None:
    # The same names with other bytes and other sizes in each source.
    one = {f"f{i:02d}.bin": bytes([1]) * (7000 + 13 * i) for i in range(12)}
    two = {f"f{i:02d}.bin": bytes([2]) * (5000 + 7 * i) for i in range(12)}
    one["big.bin"] = bytes([1]) * (2 * MIB + 5)
    two["big.bin"] = bytes([2]) * (2 * MIB + 99)
    write_local(tmp_path / "one", one)
    write_local(tmp_path / "two", two)
    share = service.create_share("together")
    url = f"{emulator.account_url()}/together"
    runs = [
        start(
            ["copy", str(tmp_path / name) + "/*", url, "--from-to", "LocalFile", "--block-size-mb", "0.25"],
            env,
        )
        for name in ("one", "two")
    ]
    results = [run.communicate(timeout=120) for run in runs]
    for run, (out, err) in zip(runs, results, strict=True):
        assert run.returncode == 0, out + err
    landed = read_share(share).files
    assert set(landed) == set(one), f"staging files or strays left: {sorted(set(landed) - set(one))}"
    for path, data in landed.items():
        assert data in (one[path], two[path]), f"{path} holds a mix of both writers"


@pytest.mark.azurite
def test_two_uploads_into_one_container_at_once_never_mix_a_blob(tmp_path: Path) -> None:
    azurite = shared_azurite()
    container = BlobServiceClient(azurite.endpoint, azurite.credential).create_container(
        f"mix{os.urandom(4).hex()}"
    )
    one = {"big.bin": bytes([1]) * (3 * MIB + 5), "small.bin": bytes([1]) * 9000}
    two = {"big.bin": bytes([2]) * (3 * MIB + 5), "small.bin": bytes([2]) * 9000}
    write_local(tmp_path / "one", one)
    write_local(tmp_path / "two", two)
    env = clean_environment(
        AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string, SHAREFERRY_CONCURRENCY="2"
    )
    url = f"{azurite.endpoint}/{container.container_name}"
    for _attempt in range(3):  # several rounds: the blocks of both writers interleave each time
        runs = [
            start(
                [
                    "copy",
                    str(tmp_path / name) + "/*",
                    url,
                    "--from-to",
                    "LocalBlob",
                    "--block-size-mb",
                    "0.25",
                ],
                env,
            )
            for name in ("one", "two")
        ]
        for run in runs:
            out, err = run.communicate(timeout=120)
            # The later commit may find its blocks discarded by the earlier one (Azure drops a
            # blob's other uncommitted blocks when a block list is committed): that file fails,
            # said so, and nothing of it lands. Any other failure is a bug.
            failed = [line for line in out.splitlines() if line.startswith("FAILED")]
            assert run.returncode == 0 or all("InvalidBlockList" in line for line in failed), out + err
        landed = read_container(container).files
        for path, data in landed.items():
            assert data in (one[path], two[path]), f"{path} holds blocks of both writers"


def read_only_sas(emulator: RunningEmulator, *, expired: bool) -> str:
    account = emulator.account()
    return generate_account_sas(
        account.name,
        account.key,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + (timedelta(hours=-1) if expired else timedelta(hours=1)),
        start=datetime.now(UTC) - timedelta(hours=2),
    )


@pytest.mark.parametrize("refusal", ["read-only SAS", "expired SAS"])
def test_counters_add_up_when_the_destination_refuses_every_write(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, refusal: str
) -> None:
    files = {f"f{i}.txt": b"x" * (i + 1) for i in range(6)}
    write_local(tmp_path / "src", files)
    service.create_share("refusing")
    token = read_only_sas(emulator, expired=refusal == "expired SAS")
    url = f"{emulator.account_url()}/refusing?{token}"
    result = shareferry(
        "copy",
        str(tmp_path / "src") + "/*",
        url,
        "--from-to",
        "LocalFile",
        "--output-type",
        "json",
        env=clean_environment(),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    end = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    summary = next(line for line in end if line.get("MessageType") == "EndOfJob")["MessageContent"]
    summary = json.loads(summary) if isinstance(summary, str) else summary
    total = int(summary["TotalTransfers"])
    settled = sum(int(summary[key]) for key in ("TransfersCompleted", "TransfersSkipped", "TransfersFailed"))
    assert total == settled, f"{total} transfers but {settled} settled: {summary}"
    assert summary["JobStatus"] == "Failed"
    assert read_local(tmp_path / "src").files == files  # the source is untouched


def test_a_fresh_copy_after_kill_9_removes_the_staging_files_the_killed_run_left(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, env: dict[str, str]
) -> None:
    files = source_tree(seed=23)
    write_local(tmp_path / "src", files)
    # On a loaded machine the last ranges of the big file can land between the look at the
    # counters and the kill; then nothing is left to sweep, and the run is tried again on a
    # fresh share (at most three times) rather than passing without proving anything.
    for attempt in range(3):
        share = service.create_share(f"swept{attempt}")
        url = f"{emulator.account_url()}/swept{attempt}"
        args = ["copy", str(tmp_path / "src"), url, "--from-to", "LocalFile", "--recursive"]
        strike(start(args, env), emulator, POINTS["big file part way"], signal.SIGKILL)
        left = staging_files(read_share(share).files)
        if left:
            break
    assert left, "three kills landed with no file in flight: nothing to sweep"
    again = shareferry(*args, env=env)  # the same command: a new job, not a resume
    assert again.returncode == 0, again.stdout + again.stderr
    assert read_share(share, "src").files == {f"src/{path}": data for path, data in files.items()}


def test_sync_removes_staging_files_untouched_for_longer_than_the_stale_age(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, env: dict[str, str]
) -> None:
    # A worker pod without a state volume died long ago: no plan on this machine names its
    # staging files, so only their age tells they are nobody's.
    write_local(tmp_path / "src", {"a.txt": b"a"})
    share = service.create_share("aged")
    share.get_directory_client("d").create_directory()
    orphan = "d/.lost.bin.shareferry-0123456789ab.partial"
    share.get_file_client(orphan).upload_file(b"\0" * 100)
    url = f"{emulator.account_url()}/aged"
    args = ["sync", str(tmp_path / "src"), url, "--from-to", "LocalFile"]
    young = shareferry(*args, env={**env, "SHAREFERRY_STALE_STAGING_SECONDS": "3600"})
    assert young.returncode == 0, young.stdout + young.stderr
    assert orphan in read_share(share).files, "a young staging file may belong to a live writer"
    time.sleep(2.1)
    old = shareferry(*args, env={**env, "SHAREFERRY_STALE_STAGING_SECONDS": "2"})
    assert old.returncode == 0, old.stdout + old.stderr
    assert read_share(share).files == {"a.txt": b"a"}


def local_staging(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob(f"*{STAGING_MARK}*.partial"))


def test_a_download_killed_mid_file_leaves_only_a_hidden_staging_file_that_a_rerun_removes(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, env: dict[str, str]
) -> None:
    files = source_tree(seed=31)
    share = service.create_share("down")
    write_share_files(share, files)
    add_fault(emulator, "latency:GetFile:latency_ms=25")
    url = f"{emulator.account_url()}/down"
    target = tmp_path / "restore"
    args = [
        "copy",
        url + "/*",
        str(target),
        "--from-to",
        "FileLocal",
        "--recursive",
        "--block-size-mb",
        "0.5",
    ]

    def big_file_reading(seen: dict[str, Any]) -> bool:
        return int(seen["operations"].get("GetFile", {}).get("total", 0)) >= 3 and any(
            STAGING_MARK in path.name for path in (target / "a").glob(".*")
        )

    strike(start(args, env), emulator, big_file_reading, signal.SIGKILL)
    assert local_staging(target), "the kill landed with no file in flight"
    landed = read_local(target).files
    for path, data in landed.items():
        if STAGING_MARK not in path:
            assert data == files[path], f"{path} at its final name holds other bytes than the source"

    # A listing never shows the staging file: an upload of the half-restored folder skips it.
    share_back = service.create_share("back")
    up = shareferry(
        "copy",
        str(target) + "/*",
        f"{emulator.account_url()}/back",
        "--from-to",
        "LocalFile",
        "--recursive",
        env=env,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    assert staging_files(read_share(share_back).files) == []

    again = shareferry(*args, env=env)  # the same command again: a new job that sweeps first
    assert again.returncode == 0, again.stdout + again.stderr
    assert read_local(target).files == files
    assert local_staging(target) == []


def test_sigterm_stops_run_f_cleanly_and_the_same_command_finishes_the_copy(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, env: dict[str, str]
) -> None:
    files = source_tree(seed=41)
    write_local(tmp_path / "exports", files)
    share = service.create_share("fromrun")
    account = emulator.account()
    documents = [
        {
            "apiVersion": "shareferry.dev/v1alpha1",
            "kind": "CopyJob",
            "metadata": {"name": "upload"},
            "spec": {
                "source": {"pvc": {"claimName": "exports"}},
                "destination": {"fileShare": {"name": "fromrun"}},
                "options": {"blockSizeMb": 0.5},
            },
        },
        {
            "apiVersion": "shareferry.dev/v1alpha1",
            "kind": "FileShare",
            "metadata": {"name": "fromrun"},
            "spec": {
                "account": {"endpoint": emulator.account_url()},
                "credentials": {"secretName": "account"},
                "shareName": "fromrun",
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "account"},
            "stringData": {
                "AZURE_STORAGE_ACCOUNT_NAME": account.name,
                "AZURE_STORAGE_ACCOUNT_KEY": account.key,
            },
        },
    ]
    manifest = tmp_path / "upload.yaml"
    manifest.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    args = ["run", "-f", str(manifest), "--pvc", f"exports={tmp_path / 'exports'}"]

    struck = strike(start(args, env), emulator, POINTS["after 10 writes"], signal.SIGTERM)
    assert struck.returncode == 130, struck.stdout + struck.stderr
    assert "interrupted: the copy was cancelled" in struck.stderr and "Traceback" not in struck.stderr
    assert staging_files(read_share(share).files) == [], "a clean cancel removes its unfinished files"
    assert_no_final_name_is_damaged(share, files)

    again = shareferry(*args, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert read_share(share).files == files


def test_a_staging_file_in_a_source_is_reported_skipped_never_copied(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path, env: dict[str, str]
) -> None:
    staged = "d/.half.bin.shareferry-0123456789ab.partial"
    write_local(tmp_path / "src", {"d/whole.bin": b"whole", staged: b"\0" * 64})
    share = service.create_share("planted")
    url = f"{emulator.account_url()}/planted"
    result = shareferry("copy", str(tmp_path / "src"), url, "--from-to", "LocalFile", "--recursive", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary_value(result.stdout, "Number of File Transfers Skipped") == "1"
    assert f"{tmp_path / 'src' / staged}: an unfinished file of a ShareFerry run" in result.stderr
    assert read_share(share).files == {"src/d/whole.bin": b"whole"}
