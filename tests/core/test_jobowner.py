"""The owner lock of a job directory: held while a run lasts, dropped by the kernel when its
process dies, and emptied by a run that ends, so a run that died is found with a ``stat``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shareferry.core.jobowner import LOCK_FILE, JobBusyError, OwnerLock, died_mid_run, owner_alive


def test_a_held_lock_refuses_a_second_owner_and_is_alive(tmp_path: Path) -> None:
    held = OwnerLock.acquire(tmp_path)
    try:
        with pytest.raises(
            JobBusyError, match=f"already running in another process \\(process {os.getpid()}\\)"
        ):
            OwnerLock.acquire(tmp_path)
        assert owner_alive(tmp_path) is True
        assert not died_mid_run(tmp_path)
    finally:
        held.release()


def test_a_run_that_ends_leaves_an_empty_lock_file(tmp_path: Path) -> None:
    OwnerLock.acquire(tmp_path).release()
    assert (tmp_path / LOCK_FILE).stat().st_size == 0
    assert owner_alive(tmp_path) is False
    assert not died_mid_run(tmp_path)


def test_a_process_killed_while_holding_the_lock_died_mid_run(tmp_path: Path) -> None:
    code = (
        "import os, sys; from pathlib import Path; from shareferry.core.jobowner import OwnerLock; "
        "OwnerLock.acquire(Path(sys.argv[1])); os.kill(os.getpid(), 9)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False, timeout=60)
    assert owner_alive(tmp_path) is False
    assert died_mid_run(tmp_path)
    OwnerLock.acquire(tmp_path).release()  # a resume takes it over


def test_no_lock_file_is_unknown_not_dead(tmp_path: Path) -> None:
    assert owner_alive(tmp_path) is None
    assert not died_mid_run(tmp_path)
