"""The test kubelet (kubelet + Job controller stand-in) running batch/v1 Jobs of the test
cluster as local processes: environment from Secrets, Indexed Jobs, retries to the back-off
limit, deadlines, volumes, and deletion stopping the processes."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from shareferry.kube import JOBS, PODS, SECRETS, KubeClient
from tests.support.kube_cluster import KubeCluster
from tests.support.kubelet import Kubelet, index_ranges


def job(
    name: str,
    code: str,
    *,
    env: list[dict[str, Any]] | None = None,
    indexed: int | None = None,
    backoff_limit: int = 0,
    deadline: int | None = None,
    volumes: list[dict[str, Any]] | None = None,
    mounts: list[dict[str, Any]] | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "backoffLimit": backoff_limit,
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "worker",
                        "image": "shareferry:test",
                        "command": command or [sys.executable, "-c", code],
                        "env": env or [],
                        "volumeMounts": mounts or [],
                    }
                ],
                "volumes": volumes or [],
            },
        },
    }
    if indexed is not None:
        spec.update(completionMode="Indexed", completions=indexed, parallelism=indexed)
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {"metadata": {"name": name}, "spec": spec}


def condition(job_body: dict[str, Any]) -> tuple[str, str]:
    (only,) = job_body["status"]["conditions"]
    return only["type"], only["reason"]


def test_index_ranges() -> None:
    assert index_ranges({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"
    assert index_ranges(set()) == ""


async def test_a_job_runs_with_its_secret_resolved_into_the_environment(
    cluster: KubeCluster, kube: KubeClient
) -> None:
    await cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "stringData": {"KEY": "s3cr3t-value"},
        }
    )
    env = [
        {"name": "ACCOUNT_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "KEY"}}},
        {"name": "ABSENT", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "NOPE", "optional": True}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "GREETING", "value": "hello from $(POD_NS)"},
    ]
    code = (
        "import os; print(os.environ['ACCOUNT_KEY'], os.environ.get('ABSENT', '-'), os.environ['GREETING'])"
    )
    async with Kubelet.run(cluster) as kubelet:
        await kube.create(JOBS, "default", job("hello", code, env=env))
        finished = await kubelet.wait_for_job("hello")

    assert condition(finished) == ("Complete", "CompletionsReached")
    assert finished["status"]["succeeded"] == 1 and finished["status"]["failed"] == 0
    assert finished["status"]["startTime"] and finished["status"]["completionTime"]
    (pod,) = kubelet.pods_of("hello")
    assert pod.stdout.strip() == "s3cr3t-value - hello from default"
    assert pod.exit_code == 0 and pod.phase == "Succeeded"
    assert not any("s3cr3t" in arg for arg in pod.argv)
    assert pod.env["KUBECONFIG"] == str(cluster.kubeconfig)
    assert "s3cr3t" not in repr(pod)
    stored = cluster.get(PODS, "default", pod.name)
    assert stored is not None
    assert stored["status"]["phase"] == "Succeeded"
    assert stored["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert stored["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "hello"
    assert stored["metadata"]["labels"]["app"] == "hello"
    assert stored["metadata"]["ownerReferences"][0]["uid"] == finished["metadata"]["uid"]


async def test_an_indexed_job_runs_one_process_per_index(cluster: KubeCluster, kube: KubeClient) -> None:
    code = "import os; print('index', os.environ['JOB_COMPLETION_INDEX'])"
    async with Kubelet.run(cluster) as kubelet:
        await kube.create(JOBS, "default", job("sharded", code, indexed=3))
        finished = await kubelet.wait_for_job("sharded")

    assert condition(finished)[0] == "Complete"
    assert finished["status"]["completedIndexes"] == "0-2"
    assert finished["status"]["succeeded"] == 3
    pods = kubelet.pods_of("sharded")
    assert sorted(pod.stdout.strip() for pod in pods) == ["index 0", "index 1", "index 2"]
    assert sorted(pod.index for pod in pods if pod.index is not None) == [0, 1, 2]
    labels = sorted(
        p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] for p in cluster.objects(PODS)
    )
    assert labels == ["0", "1", "2"]


async def test_a_failing_pod_is_retried_up_to_the_backoff_limit(
    cluster: KubeCluster, kube: KubeClient
) -> None:
    code = "import sys; print('cannot reach the share', file=sys.stderr); sys.exit(3)"
    async with Kubelet.run(cluster) as kubelet:
        await kube.create(JOBS, "default", job("doomed", code, backoff_limit=2))
        finished = await kubelet.wait_for_job("doomed")

    assert condition(finished) == ("Failed", "BackoffLimitExceeded")
    assert finished["status"]["failed"] == 3
    assert "completionTime" not in finished["status"]
    pods = kubelet.pods_of("doomed")
    assert [pod.exit_code for pod in pods] == [3, 3, 3]
    assert all(pod.stderr.strip() == "cannot reach the share" for pod in pods)


async def test_deleting_a_running_job_kills_its_process(cluster: KubeCluster, kube: KubeClient) -> None:
    code = "import time; print('working', flush=True); time.sleep(60)"
    async with Kubelet.run(cluster) as kubelet:
        await kube.create(JOBS, "default", job("long", code))
        (pod,) = await kubelet.wait_for_pods("long", phase="Running")
        await cluster.wait_for(lambda: "working" in pod.stdout or None, what="the process to print")
        started = time.monotonic()
        await kube.delete(JOBS, "default", "long", propagation="Foreground")
        await cluster.wait_for(lambda: pod.done, what="the process to end")

    assert time.monotonic() - started < 5
    assert pod.reason == "Deleted"
    assert pod.exit_code == 143  # 128 + SIGTERM
    assert cluster.get(JOBS, "default", "long") is None
    assert cluster.get(PODS, "default", pod.name) is None


async def test_the_active_deadline_fails_the_job(cluster: KubeCluster, kube: KubeClient) -> None:
    code = "import time; time.sleep(60)"
    async with Kubelet.run(cluster) as kubelet:
        await kube.create(JOBS, "default", job("slow", code, deadline=1))
        finished = await kubelet.wait_for_job("slow")

    assert condition(finished) == ("Failed", "DeadlineExceeded")
    (pod,) = kubelet.pods_of("slow")
    assert pod.phase == "Failed" and pod.reason == "DeadlineExceeded"
    assert pod.exit_code == 143


async def test_a_missing_secret_keeps_the_pod_pending_until_it_exists(
    cluster: KubeCluster, kube: KubeClient
) -> None:
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]
    async with Kubelet.run(cluster) as kubelet:
        await kube.create(JOBS, "default", job("waits", "import os; print(os.environ['TOKEN'])", env=env))
        (pod,) = await kubelet.wait_for_pods("waits", phase="Pending")
        await cluster.wait_for(lambda: pod.reason == "CreateContainerConfigError", what="the config error")
        stored = await cluster.wait_for_object(
            PODS, "default", pod.name, lambda p: "containerStatuses" in p["status"]
        )
        waiting = stored["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting == {"reason": "CreateContainerConfigError", "message": 'secret "later" not found'}

        await kube.create(SECRETS, "default", {"metadata": {"name": "later"}, "stringData": {"token": "now"}})
        finished = await kubelet.wait_for_job("waits")

    assert condition(finished)[0] == "Complete"
    assert pod.stdout.strip() == "now"


async def test_pvc_mounts_map_to_local_folders(
    cluster: KubeCluster, kube: KubeClient, tmp_path: Path
) -> None:
    claim = tmp_path / "claim"
    (claim / "exports").mkdir(parents=True)
    (claim / "exports" / "in.txt").write_text("payload")
    code = (
        "import os, pathlib; root = pathlib.Path(os.environ['SHAREFERRY_VOLUME_ROOT']);"
        "text = (root / 'source' / 'in.txt').read_text(); (root / 'source' / 'out.txt').write_text(text.upper())"
    )
    volumes = [{"name": "src", "persistentVolumeClaim": {"claimName": "reports-data"}}]
    mounts = [{"name": "src", "mountPath": "/mnt/shareferry/source", "subPath": "exports"}]
    async with Kubelet.run(cluster, volumes={"reports-data": claim}) as kubelet:
        await kube.create(JOBS, "default", job("pvc", code, volumes=volumes, mounts=mounts))
        finished = await kubelet.wait_for_job("pvc")

    assert condition(finished)[0] == "Complete", kubelet.pods_of("pvc")[0].stderr
    assert (claim / "exports" / "out.txt").read_text() == "PAYLOAD"


async def test_a_leading_shareferry_runs_this_projects_cli(cluster: KubeCluster, kube: KubeClient) -> None:
    async with Kubelet.run(cluster) as kubelet:
        await kube.create(JOBS, "default", job("version", "", command=["shareferry", "--version"]))
        finished = await kubelet.wait_for_job("version")

    assert condition(finished)[0] == "Complete"
    (pod,) = kubelet.pods_of("version")
    assert pod.argv == [sys.executable, "-m", "shareferry", "--version"]
    assert pod.stdout.startswith("shareferry ")
