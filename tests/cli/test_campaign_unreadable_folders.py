"""A local folder that cannot be read, met inside a tree by ``shareferry copy`` and ``sync``.

``copy`` reports that folder as failed and copies the rest; ``sync`` stops before deleting
anything, since its listing of the source is incomplete.

How the folder is made unreadable: ``chmod 000``. Root reads such a folder anyway (the
``CAP_DAC_OVERRIDE`` and ``CAP_DAC_READ_SEARCH`` capabilities), and the interpreter here lives
where user ``nobody`` cannot run it, so when the tests run as root the command runs as root
without those two capabilities: they are dropped from its bounding set (``prctl``) just before
it starts, and root then obeys permission bits like any user. Run as another user, the command
runs unchanged.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.fileshare import ShareClient

from shareferry.emulator import RunningEmulator
from tests.cli.test_copy_cli import account_sas, clean_environment, share_url, summary_value
from tests.support.trees import read_share, write_local, write_share

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
READABLE = {"a.txt": b"alpha", "sub/b.txt": b"beta", "sub/deeper/c.txt": b"gamma"}
LOCKED = ("locked", "sub/locked too")


def _obey_permissions() -> None:
    """In the child, before it runs the command: give up reading what permissions forbid."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def shareferry_obeying_permissions(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shareferry", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=clean_environment(),
        stdin=subprocess.DEVNULL,
        preexec_fn=_obey_permissions if os.geteuid() == 0 else None,
    )


@pytest.fixture
def sas(emulator: RunningEmulator) -> str:
    return account_sas(emulator)


@pytest.fixture
def locked_tree(tmp_path: Path) -> Iterator[Path]:
    src = tmp_path / "src"
    write_local(src, READABLE)
    for name in LOCKED:
        write_local(src, {f"{name}/secret.txt": b"secret"})
        (src / name).chmod(0)
    yield src
    for name in LOCKED:
        (src / name).chmod(0o755)


def report_records(report: Path) -> dict[str, dict[str, object]]:
    return {str(r["path"]): r for r in map(json.loads, report.read_text().splitlines())}


@pytest.mark.parametrize("filters", [(), ("--exclude-path", "elsewhere")], ids=["whole", "path-filtered"])
def test_copy_reports_an_unreadable_folder_and_copies_the_rest(
    emulator: RunningEmulator,
    share: ShareClient,
    sas: str,
    locked_tree: Path,
    tmp_path: Path,
    filters: tuple[str, ...],
) -> None:
    report = tmp_path / "report.jsonl"
    result = shareferry_obeying_permissions(
        "copy", str(locked_tree), share_url(emulator, share, "", sas), "--recursive", "--from-to", "LocalFile",
        "--report", str(report), *filters,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1
    assert summary_value(result.stdout, "Final Job Status") == "CompletedWithErrors"
    assert read_share(share).files == {f"src/{path}": data for path, data in READABLE.items()}
    assert summary_value(result.stdout, "Number of Folder Transfers Failed") == str(len(LOCKED))
    assert summary_value(result.stdout, "Number of File Transfers Completed") == str(len(READABLE))
    failed = {path: str(r["error"]) for path, r in report_records(report).items() if r["result"] == "failed"}
    assert set(failed) == {f"src/{name}" for name in LOCKED}
    assert all("cannot list it" in error and "ermission denied" in error for error in failed.values())
    for name in LOCKED:
        assert f"FAILED: src/{name}: cannot list it" in result.stdout


def test_sync_stops_before_deleting_anything(
    emulator: RunningEmulator, share: ShareClient, sas: str, locked_tree: Path
) -> None:
    write_share(share, {"mirror/extra.txt": b"only here", "mirror/locked/secret.txt": b"secret"})
    result = shareferry_obeying_permissions(
        "sync", str(locked_tree), share_url(emulator, share, "mirror", sas), "--from-to", "LocalFile",
        "--delete-destination", "true",
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1
    assert summary_value(result.stdout, "Final Job Status") == "Failed"
    assert (
        f"{locked_tree / 'locked'}: cannot list it: Permission denied; the listing is incomplete, so the "
        "sync stops before deleting anything"
    ) in result.stdout + result.stderr
    files = read_share(share, "mirror").files
    assert files["mirror/extra.txt"] == b"only here"
    assert files["mirror/locked/secret.txt"] == b"secret"
