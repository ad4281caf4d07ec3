"""kopf runs for real against the test cluster over HTTP: its handlers see our CRDs, their
patches land (status through the subresource), its finalizers hold deletions, its Events are
posted, and owned objects are garbage-collected when the owner goes."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from shareferry.kube import CONFIGMAPS, COPYJOBS, KubeClient
from tests.support.kube_cluster import KubeCluster, run_operator

GROUP, VERSION = "shareferry.dev", "v1alpha1"


def copyjob(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "CopyJob",
        "metadata": {"name": name},
        "spec": {
            "source": {"pvc": {"claimName": "data"}},
            "destination": {"fileShare": {"name": "reports"}},
            **spec,
        },
    }


async def test_a_kopf_handler_patches_a_copyjob_status(cluster: KubeCluster, kube: KubeClient) -> None:
    registry = kopf.OperatorRegistry()
    logins: list[str] = []

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        logins.append(cluster.url)
        return kopf.ConnectionInfo(server=cluster.url, default_namespace="default")

    @kopf.on.create(GROUP, VERSION, "copyjobs", registry=registry)
    def created(patch: kopf.Patch, spec: kopf.Spec, **_: Any) -> None:
        patch.status["phase"] = "Pending"
        patch.status["observedMode"] = spec["mode"]

    async with run_operator(registry, cluster, namespaces=["default"], credentials=False):
        await kube.create(COPYJOBS, "default", copyjob("first", mode="sync"))
        seen = await cluster.wait_for_object(
            COPYJOBS, "default", "first", lambda obj: (obj.get("status") or {}).get("phase") == "Pending"
        )

    assert logins == [cluster.url]
    assert seen["status"]["observedMode"] == "sync"  # read from the spec the handler was given
    assert seen["metadata"]["generation"] == 1
    status_patches = [
        request
        for request in cluster.requests()
        if request.method == "PATCH" and request.subresource == "status" and request.name == "first"
    ]
    assert status_patches, "kopf wrote the status through the status subresource"


async def test_kopf_finalizers_hold_deletion_and_owned_objects_follow(
    cluster: KubeCluster, kube: KubeClient
) -> None:
    registry = kopf.OperatorRegistry()
    deleted: list[str] = []

    @kopf.on.create(GROUP, VERSION, "copyjobs", registry=registry)
    async def created(body: kopf.Body, name: str, namespace: str, **_: Any) -> None:
        results = {"metadata": {"name": f"{name}-md5-0"}, "data": {"files": "0"}}
        kopf.adopt(results, owner=body)
        await kube.create(CONFIGMAPS, namespace, results)
        kopf.info(body, reason="Results", message="MD5 results ConfigMap created")

    @kopf.on.delete(GROUP, VERSION, "copyjobs", registry=registry)
    def removed(name: str, **_: Any) -> None:
        deleted.append(name)

    async with run_operator(registry, cluster, namespaces=["default"]):
        await kube.create(COPYJOBS, "default", copyjob("second"))
        await cluster.wait_for_object(CONFIGMAPS, "default", "second-md5-0")
        held = await cluster.wait_for_object(
            COPYJOBS, "default", "second", lambda obj: bool(obj["metadata"].get("finalizers"))
        )
        assert held["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
        await cluster.wait_for(
            lambda: any(
                "ConfigMap created" in event.get("message", "")
                for event in cluster.events("default", involving="second")
            ),
            what="kopf's Event about the ConfigMap",
        )

        await kube.delete(COPYJOBS, "default", "second")
        await cluster.wait_for_absence(COPYJOBS, "default", "second")

    assert deleted == ["second"]
    assert cluster.get(CONFIGMAPS, "default", "second-md5-0") is None


async def test_stopping_kopf_leaves_the_tests_own_tasks_alone(cluster: KubeCluster) -> None:
    registry = kopf.OperatorRegistry()
    release = asyncio.Event()
    async with run_operator(registry, cluster, namespaces=["default"]):
        bystander = asyncio.create_task(release.wait())  # created while kopf runs
        started = asyncio.get_running_loop().time()
    assert asyncio.get_running_loop().time() - started < 2  # kopf did not wait for it
    assert not bystander.done()  # nor cancel it
    release.set()
    await bystander
