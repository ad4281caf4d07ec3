"""`make cluster` / `make cluster-down` as a user runs them (``python -m tests.cluster``): one line
``KUBECONFIG=<path>`` on stdout, a Ready node (also when a control plane without the kubelet was
already up), two starts at once giving one control plane, and nothing left running after
``down``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.cluster import build
from tests.cluster.controlplane import State, _alive
from tests.support.paths import repo_root


def cluster_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.cluster", *args],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_up_prints_one_kubeconfig_line_starts_once_and_down_stops_everything(
    tmp_path: Path, cluster_tools: build.Toolset
) -> None:
    state_dir = tmp_path / "cluster"
    # A control plane started without the kubelet first: asking for one then gets it.
    alone = cluster_cli("up", "--no-kubelet", "--state-dir", str(state_dir))
    assert alone.returncode == 0, alone.stderr
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: cluster_cli("up", "--state-dir", str(state_dir)), range(2))
    try:
        for result in (first, second):
            assert result.returncode == 0, result.stderr
            assert result.stdout == f"KUBECONFIG={state_dir / 'admin.kubeconfig'}\n"
        state = State.load(state_dir)
        assert state is not None
        assert set(state.pids) == {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet",
        }
        assert all(_alive(pid) for pid in state.pids.values())

        kubectl = repo_root() / ".cache" / "bin" / "kubectl"
        env = {**os.environ, "KUBECONFIG": str(state_dir / "admin.kubeconfig")}
        nodes = json.loads(
            subprocess.run(
                [str(kubectl), "get", "nodes", "-o", "json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        [node] = nodes["items"]
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"
        status = cluster_cli("status", "--state-dir", str(state_dir))
        assert (status.returncode, status.stdout) == (0, first.stdout)
    finally:
        stopped = cluster_cli("down", "--state-dir", str(state_dir))
    assert stopped.returncode == 0, stopped.stderr
    assert not any(_alive(pid) for pid in state.pids.values())
    status = cluster_cli("status", "--state-dir", str(state_dir))
    assert status.returncode == 1 and "not running" in status.stderr


def test_a_control_plane_started_for_tests_dies_with_the_process_that_started_it(
    tmp_path: Path, cluster_tools: build.Toolset
) -> None:
    """A test run killed with SIGKILL (a CI timeout) leaves no etcd, API server or kubelet behind."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tests.cluster import controlplane\n"
        "state = controlplane.up(Path(sys.argv[1]), tied=True)\n"
        "print(' '.join(str(pid) for pid in state.pids.values()), flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "tied")],
        cwd=repo_root(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert owner.stdout is not None
        pids = [int(pid) for pid in owner.stdout.readline().split()]
        assert len(pids) == 5 and all(_alive(pid) for pid in pids)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in pids)
