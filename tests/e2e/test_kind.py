"""End to end on a kind cluster: tests/e2e/run-kind.sh, run by pytest (marker ``e2e``).

It needs docker, kind and kubectl, and takes minutes, so it runs only when asked:
``make e2e`` (or ``SHAREFERRY_E2E=1 pytest -m e2e tests/e2e``); the GitHub workflow e2e.yml does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "run-kind.sh"
TOOLS = ("docker", "kind", "kubectl")


@pytest.mark.e2e
@pytest.mark.timeout(2400)
def test_chart_and_examples_on_kind() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"end-to-end on kind needs {', '.join(missing)} on PATH (not installed here)")
    if os.environ.get("SHAREFERRY_E2E") != "1":
        pytest.skip("the kind run takes minutes: set SHAREFERRY_E2E=1 or run `make e2e`")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.skip("docker is installed but its daemon does not answer (`docker info` fails)")
    completed = subprocess.run(["bash", str(SCRIPT)], check=False, timeout=2300)
    assert completed.returncode == 0, "tests/e2e/run-kind.sh failed: its output above says where"
