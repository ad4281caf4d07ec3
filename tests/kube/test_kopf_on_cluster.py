"""kopf runs for real against a real API server (the tests' own control plane): it logs in with
what the ``kubernetes`` package loads from KUBECONFIG, its handlers see our CRDs, their patches
land (status through the subresource), its finalizers hold deletions, its Events are posted, and
the garbage collector removes owned objects when the owner goes."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from shareferry.controller.login import login as package_login
from shareferry.kube import CONFIGMAPS, COPYJOBS, KubeClient
from tests.support.cluster_api import ClusterApi
from tests.support.kopf_runner import run_operator
from tests.support.operator_plane import Plane

GROUP, VERSION = "shareferry.dev", "v1alpha1"


@pytest.fixture(autouse=True)
def admin_kubeconfig(operator_plane: Plane, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(operator_plane.kubeconfig))
    for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)


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


async def test_a_kopf_handler_patches_a_copyjob_status(
    kube: KubeClient, api: ClusterApi, ns: str, operator_plane: Plane
) -> None:
    registry = kopf.OperatorRegistry()
    logins: list[str] = []

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo:
        info = package_login(**kwargs)
        logins.append(info.server)
        return info

    @kopf.on.create(GROUP, VERSION, "copyjobs", registry=registry)
    def created(patch: kopf.Patch, spec: kopf.Spec, **_: Any) -> None:
        patch.status["phase"] = "Pending"
        patch.status["observedMode"] = spec["mode"]

    async with run_operator(registry, namespaces=[ns]):
        await kube.create(COPYJOBS, ns, copyjob("first", mode="sync"))
        seen = await api.wait_for_object(
            COPYJOBS, ns, "first", lambda obj: (obj.get("status") or {}).get("phase") == "Pending"
        )

    assert logins == [operator_plane.state.server]
    assert seen["status"]["observedMode"] == "sync"  # read from the spec the handler was given
    assert seen["metadata"]["generation"] == 1
    # The server ignores a status sent to the main resource: it arrived through /status.
    status_writers = [
        entry["manager"]
        for entry in seen["metadata"].get("managedFields") or []
        if entry.get("subresource") == "status"
    ]
    assert status_writers, "kopf wrote the status through the status subresource"


async def test_kopf_finalizers_hold_deletion_and_owned_objects_follow(
    kube: KubeClient, api: ClusterApi, ns: str
) -> None:
    registry = kopf.OperatorRegistry()
    deleted: list[str] = []
    kopf.on.login(registry=registry)(package_login)

    @kopf.on.create(GROUP, VERSION, "copyjobs", registry=registry)
    async def created(body: kopf.Body, name: str, namespace: str, **_: Any) -> None:
        results = {"metadata": {"name": f"{name}-md5-0"}, "data": {"files": "0"}}
        kopf.adopt(results, owner=body)
        await kube.create(CONFIGMAPS, namespace, results)
        kopf.info(body, reason="Results", message="MD5 results ConfigMap created")

    @kopf.on.delete(GROUP, VERSION, "copyjobs", registry=registry)
    def removed(name: str, **_: Any) -> None:
        deleted.append(name)

    async with run_operator(registry, namespaces=[ns]):
        await kube.create(COPYJOBS, ns, copyjob("second"))
        await api.wait_for_object(CONFIGMAPS, ns, "second-md5-0")
        held = await api.wait_for_object(
            COPYJOBS, ns, "second", lambda obj: bool(obj["metadata"].get("finalizers"))
        )
        assert held["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]

        async def announced() -> bool:
            return any(
                "ConfigMap created" in event.get("message", "")
                for event in await api.events(ns, involving="second")
            )

        await api.wait_for(announced, what="kopf's Event about the ConfigMap")

        await kube.delete(COPYJOBS, ns, "second")
        await api.wait_for_absence(COPYJOBS, ns, "second")

    assert deleted == ["second"]
    await api.wait_for_absence(CONFIGMAPS, ns, "second-md5-0")  # the garbage collector's part


async def test_stopping_kopf_leaves_the_tests_own_tasks_alone(ns: str) -> None:
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(package_login)
    watching = asyncio.Event()

    @kopf.on.event("v1", "configmaps", registry=registry)
    def seen(**_: Any) -> None:  # the CA ConfigMap every namespace holds
        watching.set()

    release = asyncio.Event()
    async with run_operator(registry, namespaces=[ns]):
        bystander = asyncio.create_task(release.wait())  # created while kopf runs
        # Stopped while it still discovers the server's API groups, kopf waits 5 s for its own
        # retries before it gives up; that is kopf's, not the point here.
        await asyncio.wait_for(watching.wait(), timeout=30)
        started = asyncio.get_running_loop().time()
    assert asyncio.get_running_loop().time() - started < 2  # kopf did not wait for it
    assert not bystander.done()  # nor cancel it
    release.set()
    await bystander
