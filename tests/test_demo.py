"""`make demo` keeps working: the demo script runs end to end against a real emulator process."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import repo_root


def test_demo_uploads_and_verifies_every_file() -> None:
    result = subprocess.run(
        [sys.executable, str(repo_root() / "scripts" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6/6 files verified" in result.stdout
    assert "MISMATCH" not in result.stdout
    assert "emulator stopped" in result.stdout
