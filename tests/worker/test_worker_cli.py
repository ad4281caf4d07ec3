"""``shareferry worker`` as a worker pod runs it: a child process given only the environment the
operator sets (the CopyJob's name, the shard, each side's credentials as the operator injects
them from the Secret), against a real API server (the tests' own control plane), as the chart's
worker ServiceAccount (a token of it, under the chart's worker Role), and the Files emulator.
Checked: the CopyJob's ``status.shardReports``, the MD5 results ConfigMap owned by the CopyJob,
the bytes in the share, the exit status, and that no credential reaches the log."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.storage.fileshare import ShareClient

from shareferry.emulator import RunningEmulator
from shareferry.kube import CONFIGMAPS, COPYJOBS, SECRETS, SERVICEACCOUNTS, KubeClient, NotFound
from shareferry.worker.md5_results import read_results
from shareferry.worker.sinks import ApiStatusSink
from tests.support.cluster_api import ClusterApi
from tests.support.emulator_admin import add_fault
from tests.support.operator_plane import Plane, configuration_of, install_worker_rbac
from tests.support.trees import md5, read_share, write_local

TREE = {f"batch/part-{index}.csv": os.urandom(2000 + index) for index in range(12)} | {"README": b"read me\n"}


@dataclass
class Cluster:
    """The test's namespace, an admin's view of the server, and the kubeconfig a worker pod's
    identity amounts to (the worker ServiceAccount's token)."""

    api: ClusterApi
    namespace: str
    worker_kubeconfig: Path

    def worker_client(self) -> KubeClient:
        return KubeClient(configuration_of(self.worker_kubeconfig))

    async def copyjob(self) -> dict[str, Any]:
        found = await self.api.get(COPYJOBS, self.namespace, "ingest")
        assert found is not None
        return found


async def worker_kubeconfig(api: ClusterApi, plane: Plane, namespace: str, path: Path) -> Path:
    """A kubeconfig with a token of the chart's worker ServiceAccount (TokenRequest API)."""
    account = plane.operator_env["SHAREFERRY_WORKER_SERVICE_ACCOUNT"]
    answer = await api.kube.request(
        "POST",
        SERVICEACCOUNTS.path(namespace, account, "token"),
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "worker",
                "contexts": [{"name": "worker", "context": {"cluster": "plane", "user": "worker"}}],
                "clusters": [
                    {
                        "name": "plane",
                        "cluster": {
                            "server": plane.state.server,
                            "certificate-authority": str(plane.state.pki.ca_cert),
                        },
                    }
                ],
                "users": [{"name": "worker", "user": {"token": answer["status"]["token"]}}],
            }
        )
    )
    return path


@pytest.fixture
async def cluster(
    operator_plane: Plane, plane_api: ClusterApi, kube_namespace: str, tmp_path: Path
) -> AsyncIterator[Cluster]:
    await install_worker_rbac(plane_api, operator_plane, kube_namespace)
    kubeconfig = await worker_kubeconfig(
        plane_api, operator_plane, kube_namespace, tmp_path / "worker.kubeconfig"
    )
    yield Cluster(plane_api, kube_namespace, kubeconfig)


async def seed(cluster: Cluster, emulator: RunningEmulator, *, parallelism: int = 1) -> dict[str, Any]:
    account = emulator.account()
    ns = cluster.namespace
    await cluster.api.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "emulator-credentials", "namespace": ns},
            "stringData": {
                "AZURE_STORAGE_ACCOUNT_NAME": account.name,
                "AZURE_STORAGE_ACCOUNT_KEY": account.key,
            },
        }
    )
    await cluster.api.apply(
        {
            "apiVersion": "shareferry.dev/v1alpha1",
            "kind": "FileShare",
            "metadata": {"name": "landing", "namespace": ns},
            "spec": {
                "account": {"endpoint": emulator.account_url()},
                "credentials": {"secretName": "emulator-credentials"},
                "shareName": "share1",
            },
        }
    )
    return await cluster.api.apply(
        {
            "apiVersion": "shareferry.dev/v1alpha1",
            "kind": "CopyJob",
            "metadata": {"name": "ingest", "namespace": ns},
            "spec": {
                "source": {"pvc": {"claimName": "exports", "readOnly": True}},
                "destination": {"fileShare": {"name": "landing", "path": "in"}},
                "options": {"putMd5": True},
                "parallelism": parallelism,
            },
        }
    )


async def injected_credentials(cluster: Cluster, prefix: str) -> dict[str, str]:
    """What the operator's secretKeyRef variables hold: each key of the Secret under the prefix."""
    secret = await cluster.api.get(SECRETS, cluster.namespace, "emulator-credentials")
    assert secret is not None
    return {
        prefix + key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()
    }


def pod_environment(cluster: Cluster, volumes: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AZURE_", "SHAREFERRY_", "KUBERNETES_")) or key == "SHAREFERRY_JOB_DIR"
    }
    env.update(
        {
            "KUBECONFIG": str(cluster.worker_kubeconfig),
            "NO_PROXY": "127.0.0.1,localhost",
            "SHAREFERRY_COPYJOB_NAMESPACE": cluster.namespace,
            "SHAREFERRY_COPYJOB_NAME": "ingest",
            "SHAREFERRY_VOLUME_ROOT": str(volumes),
            "SHAREFERRY_STATUS_INTERVAL": "0",
        }
    )
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def shard_states(cluster: Cluster, shard: str = "0") -> AsyncIterator[list[str]]:
    """Every state of one shard's report, in the order the server stored them (a watch on the
    CopyJob, started before the worker)."""
    states: list[str] = []
    listing = await cluster.api.kube.request("GET", COPYJOBS.path(cluster.namespace))
    since = listing["metadata"]["resourceVersion"]

    async def follow() -> None:
        async for event in cluster.api.kube.watch(
            COPYJOBS, cluster.namespace, resource_version=since, timeout_seconds=120
        ):
            report = ((event["object"].get("status") or {}).get("shardReports") or {}).get(shard)
            if report and (not states or states[-1] != report.get("state")):
                states.append(str(report.get("state")))

    follower = asyncio.create_task(follow())
    try:
        yield states
    finally:
        await asyncio.sleep(0.5)  # the last change reaches the watch
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower


async def worker(env: Mapping[str, str]) -> tuple[int, str, str]:
    """Run ``shareferry worker`` without blocking this event loop (the API server runs in it)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shareferry", "worker",
        env=dict(env), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_worker_copies_and_writes_its_report_and_md5_configmap(
    cluster: Cluster, emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    copyjob = await seed(cluster, emulator)
    write_local(tmp_path / "volumes" / "source", TREE)
    credentials = await injected_credentials(cluster, "SHAREFERRY_DESTINATION_")
    async with shard_states(cluster) as states:
        code, out, err = await worker(pod_environment(cluster, tmp_path / "volumes", **credentials))
    assert code == 0, err

    assert read_share(share, "in").files == {f"in/{path}": data for path, data in TREE.items()}
    stored = await cluster.copyjob()
    report = stored["status"]["shardReports"]["0"]
    assert (report["state"], report["jobStatus"]) == ("Succeeded", "Completed")
    assert report["filesDone"] == report["filesTotal"] == len(TREE)
    assert report["bytesTransferred"] == sum(map(len, TREE.values()))
    assert report["md5"]["configMap"] == "ingest-md5-0" and report["md5"]["verified"] == len(TREE)
    assert "error" not in report and "etaSeconds" not in report  # nulls are not stored
    assert states[0] == "Running" and states[-1] == "Succeeded", states

    configmap = await cluster.api.get(CONFIGMAPS, cluster.namespace, "ingest-md5-0")
    assert configmap is not None
    (owner,) = configmap["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("CopyJob", "ingest", copyjob["metadata"]["uid"])
    assert configmap["metadata"]["labels"]["shareferry.dev/copyjob"] == "ingest"
    lines = {line["path"]: line["md5"] for line in read_results(configmap)}
    assert lines == {f"in/{path}": md5(data).hex() for path, data in TREE.items()}

    assert emulator.account().key not in out + err
    assert "Succeeded 100.0 %" in err  # its log: a line per report


async def test_two_shards_report_side_by_side(
    cluster: Cluster, emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    await seed(cluster, emulator, parallelism=2)
    write_local(tmp_path / "volumes" / "source", TREE)
    credentials = await injected_credentials(cluster, "SHAREFERRY_DESTINATION_")
    results = await asyncio.gather(
        *(
            worker(
                pod_environment(
                    cluster,
                    tmp_path / "volumes",
                    JOB_COMPLETION_INDEX=str(index),
                    SHAREFERRY_SHARD_COUNT="2",
                    **credentials,
                )
            )
            for index in range(2)
        )
    )
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    reports = (await cluster.copyjob())["status"]["shardReports"]
    assert set(reports) == {"0", "1"}
    assert sum(report["filesDone"] for report in reports.values()) == len(TREE)
    assert all(report["state"] == "Succeeded" for report in reports.values())
    assert await cluster.api.get(CONFIGMAPS, cluster.namespace, "ingest-md5-1") is not None
    assert read_share(share, "in").files == {f"in/{path}": data for path, data in TREE.items()}


async def test_a_worker_without_its_copyjob_or_credentials_says_why(
    cluster: Cluster, emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    code, _, err = await worker(pod_environment(cluster, tmp_path, SHAREFERRY_COPYJOB_NAME="nothing"))
    assert code == 2
    assert err.strip().splitlines() == [f"shareferry worker: CopyJob {cluster.namespace}/nothing not found"]

    await seed(cluster, emulator)
    write_local(tmp_path / "source", TREE)
    code, _, err = await worker(pod_environment(cluster, tmp_path))  # no credentials injected
    assert code == 3
    report = (await cluster.copyjob())["status"]["shardReports"]["0"]
    assert (report["state"], report["reason"]) == ("Failed", "AuthenticationFailed")
    assert "no credential" in report["error"] and "shareferry worker: " in err

    env = pod_environment(cluster, tmp_path)
    del env["SHAREFERRY_COPYJOB_NAME"]
    code, _, err = await worker(env)
    assert code == 2 and "SHAREFERRY_COPYJOB_NAME" in err


async def test_a_worker_that_cannot_find_or_reach_its_api_server_says_so(
    cluster: Cluster, tmp_path: Path, unused_tcp_port: int
) -> None:
    env = pod_environment(cluster, tmp_path)
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        env.pop(name, None)
    env["HOME"] = str(tmp_path)  # no ~/.kube/config there
    code, _, err = await worker(env)
    assert code == 3
    assert err.strip().splitlines() == [
        "shareferry worker: no Kubernetes API server configured: run in a cluster, or provide a kubeconfig "
        "(KUBECONFIG or ~/.kube/config; no file at ~/.kube/config)"
    ]

    kubeconfig = tmp_path / "unreachable.yaml"
    kubeconfig.write_text(
        "current-context: c\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
        f"clusters: [{{name: k, cluster: {{server: 'http://127.0.0.1:{unused_tcp_port}'}}}}]\n"
        "users: [{name: u, user: {token: worker-s3cr3t}}]\n"
    )
    env["KUBECONFIG"] = str(kubeconfig)
    code, _, err = await worker(env)
    assert code == 3
    (line,) = err.strip().splitlines()
    assert line.startswith(
        f"shareferry worker: cannot read CopyJob {cluster.namespace}/ingest: ServiceUnavailable: "
        f"cannot reach the API server http://127.0.0.1:{unused_tcp_port}: "
    )
    assert "Connection refused" in line and "s3cr3t" not in err


async def test_the_status_sink_replaces_a_configmap_and_survives_a_deleted_copyjob(
    cluster: Cluster, emulator: RunningEmulator
) -> None:
    await seed(cluster, emulator)
    ns = cluster.namespace
    logged: list[str] = []
    async with cluster.worker_client() as kube:  # what the worker pod may do, under its Role
        sink = ApiStatusSink(kube, namespace=ns, name="ingest", shard_index=3, log=logged.append)
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ingest-md5-3"},
            "data": {"files": "1"},
        }
        assert await sink.store_results(body) == "ingest-md5-3"
        assert await sink.store_results({**body, "data": {"files": "2"}}) == "ingest-md5-3"  # a retried pod
        stored = await cluster.api.get(CONFIGMAPS, ns, "ingest-md5-3")
        assert stored is not None and stored["data"] == {"files": "2"}
        await sink.send({"state": "Running", "filesDone": 1}, final=False)
        await sink.send({"state": "Succeeded", "filesDone": 2, "error": None}, final=True)
        assert (await cluster.copyjob())["status"]["shardReports"]["3"] == {
            "state": "Succeeded",
            "filesDone": 2,
        }
        await cluster.api.delete(COPYJOBS, ns, "ingest")
        await cluster.api.wait_for_absence(COPYJOBS, ns, "ingest")
        await sink.send({"state": "Succeeded"}, final=True)  # logged, never raised
        with pytest.raises(NotFound):
            await kube.get(COPYJOBS, ns, "ingest")
    assert logged == [f"status not written: CopyJob {ns}/ingest no longer exists"]


async def test_a_stopped_worker_reports_that_it_was_cancelled(
    cluster: Cluster, emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    await seed(cluster, emulator)
    write_local(tmp_path / "volumes" / "source", TREE)
    add_fault(emulator, "latency:PutRange:latency_ms=2000")  # slow enough to be stopped mid-way
    credentials = await injected_credentials(cluster, "SHAREFERRY_DESTINATION_")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shareferry", "worker",
        env=pod_environment(cluster, tmp_path / "volumes", **credentials), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip

    async def running() -> bool:
        report = ((await cluster.copyjob()).get("status") or {}).get("shardReports", {}).get("0") or {}
        return report.get("state") == "Running" and report.get("filesTotal", 0) > 0

    await cluster.api.wait_for(running, timeout=30, what="a running report")
    process.send_signal(signal.SIGTERM)  # what the kubelet does to a pod being deleted
    _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 143, err.decode()
    report = (await cluster.copyjob())["status"]["shardReports"]["0"]
    assert (report["state"], report["jobStatus"], report["reason"]) == ("Failed", "Cancelled", "Cancelled")
    assert report["filesDone"] < len(TREE)
