"""``shareferry operator`` as a process, the way the Helm chart runs it: it finds the API server
from its environment (its own login handler, not the test harness's), watches one namespace,
builds the worker Job for a new CopyJob, serves /metrics and the liveness probe, and stops
cleanly on SIGTERM."""

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
from tests.support.kube_cluster import KubeCluster


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def cluster() -> AsyncIterator[KubeCluster]:
    async with KubeCluster.start(namespaces=("default", "elsewhere")) as running:
        yield running


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status), response.read().decode()


async def test_the_operator_process_creates_worker_jobs_in_its_namespace_only(cluster: KubeCluster) -> None:
    metrics_port, health_port = free_port(), free_port()
    env = {
        **os.environ,
        **cluster.environ(),
        "SHAREFERRY_WORKER_IMAGE": "registry.example/shareferry:9.9.9",
        "SHAREFERRY_WORKER_SERVICE_ACCOUNT": "copy-worker",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shareferry",
        "operator",
        "--namespace",
        "default",
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
        for namespace in ("default", "elsewhere"):
            await cluster.apply(
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
        job = await cluster.wait_for_object(JOBS, "default", names.worker_job_name("upload"), timeout=20)
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
        assert cluster.get(JOBS, "elsewhere", names.worker_job_name("upload")) is None
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
