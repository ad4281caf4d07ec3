"""``shareferry operator`` as a process, the way the Helm chart runs it, against a real API server
(the tests' own control plane): it finds the server from its environment (KUBECONFIG, read by its
own login handler), watches one namespace, builds the worker Job for a new CopyJob, serves
/metrics and the liveness probe, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shareferry.api import names
from shareferry.kube import JOBS
from tests.support.cluster_api import ClusterApi
from tests.support.operator_plane import Plane, fresh_namespace


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def elsewhere(operator_plane: Plane) -> AsyncIterator[str]:
    """A namespace the operator is not told to watch."""
    async with fresh_namespace(operator_plane, "elsewhere") as name:
        yield name


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status), response.read().decode()


async def test_the_operator_process_creates_worker_jobs_in_its_namespace_only(
    operator_plane: Plane, plane_api: ClusterApi, kube_namespace: str, elsewhere: str
) -> None:
    watched = kube_namespace
    metrics_port, health_port = free_port(), free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(operator_plane.kubeconfig),
        "SHAREFERRY_WORKER_IMAGE": "registry.example/shareferry:9.9.9",
        "SHAREFERRY_WORKER_SERVICE_ACCOUNT": "copy-worker",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shareferry",
        "operator",
        "--namespace",
        watched,
        "--metrics-port",
        str(metrics_port),
        "--metrics-address",
        "127.0.0.1",
        "--liveness-endpoint",
        f"http://127.0.0.1:{health_port}/healthz",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        for namespace in (watched, elsewhere):
            await plane_api.apply(
                {
                    "apiVersion": "shareferry.dev/v1alpha1",
                    "kind": "CopyJob",
                    "metadata": {"name": "upload", "namespace": namespace},
                    "spec": {
                        "source": {"pvc": {"claimName": "data"}},
                        "destination": {
                            "url": "https://contoso.blob.core.windows.net/backup",
                            "workloadIdentity": True,
                        },
                        "parallelism": 2,
                    },
                }
            )
        job = await plane_api.wait_for_object(JOBS, watched, names.worker_job_name("upload"), timeout=60)
        pod = job["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"] == "registry.example/shareferry:9.9.9"
        assert pod["serviceAccountName"] == "copy-worker"
        assert job["spec"]["completionMode"] == "Indexed"

        status, body = await asyncio.to_thread(fetch, f"http://127.0.0.1:{health_port}/healthz")
        assert status == 200
        status, body = await asyncio.to_thread(fetch, f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200
        assert "# TYPE shareferry_copyjob_runs_total counter" in body

        await asyncio.sleep(1.0)  # time enough to act on "elsewhere", which it must not watch
        assert await plane_api.get(JOBS, elsewhere, names.worker_job_name("upload")) is None
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]


async def test_the_operator_without_an_api_server_says_so_and_exits_2(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
    }
    env["HOME"] = str(tmp_path)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shareferry", "operator", "--metrics-port", "0", "--liveness-endpoint", "",
        env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert err.decode().strip().splitlines() == [
        "shareferry operator: no Kubernetes API server configured: run in a cluster, or provide a kubeconfig "
        "(KUBECONFIG or ~/.kube/config; no file at ~/.kube/config)"
    ]
