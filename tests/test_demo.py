"""`make demo` keeps working: the demo script runs end to end against a real emulator process,
running the examples/demo CopyJobs with `shareferry run` and checking the bytes that landed."""

from __future__ import annotations

import subprocess
import sys

from shareferry.emulator.config import default_accounts
from tests.support.paths import repo_root


def test_demo_runs_the_copyjobs_and_verifies_every_file() -> None:
    result = subprocess.run(
        [sys.executable, str(repo_root() / "scripts" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "shareferry run -f examples/demo/copyjob-upload.yaml" in out
    assert "shareferry run -f examples/demo/copyjob-sync.yaml" in out
    assert out.count("phase: Succeeded") == 2, out
    assert "filesDeleted: 1" in out  # the stale file in the backup share
    assert "6/6 files verified; old-report.txt deleted: True" in out
    assert "MISMATCH" not in out
    assert "emulator stopped" in out
    assert "demo-upload: Succeeded 100.0 %, 6/6 files" in result.stderr  # the upload's progress lines
    for account in default_accounts():
        assert account.key not in out + result.stderr
