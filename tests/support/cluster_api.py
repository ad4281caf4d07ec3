"""What a test reads and writes on a real API server, through ShareFerry's own ``KubeClient``
(admin credentials): objects by resource, Events in the order they were posted, the pods of a
worker Job and their container logs as the process kubelet keeps them, and polling waits for the
asynchronous parts (the operator, the controllers, the kubelet).

Everything is a request to the server: there is no store to peek into, so every read is
``await``-ed and every wait polls."""

from __future__ import annotations

import asyncio
import copy
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from shareferry.kube import (
    CONFIGMAPS,
    COPYJOBS,
    EVENTS,
    FILESHARES,
    JOBS,
    NAMESPACES,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    SYNCSCHEDULES,
    KubeClient,
    NotFound,
    Resource,
)

T = TypeVar("T")

ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")
PVCS = Resource("", "v1", "persistentvolumeclaims")
PVS = Resource("", "v1", "persistentvolumes", namespaced=False)
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"

RESOURCES: dict[tuple[str, str], Resource] = {
    ("v1", "Namespace"): NAMESPACES,
    ("v1", "Secret"): SECRETS,
    ("v1", "ConfigMap"): CONFIGMAPS,
    ("v1", "ServiceAccount"): SERVICEACCOUNTS,
    ("v1", "Pod"): PODS,
    ("v1", "PersistentVolumeClaim"): PVCS,
    ("batch/v1", "Job"): JOBS,
    ("rbac.authorization.k8s.io/v1", "Role"): ROLES,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ROLEBINDINGS,
    ("shareferry.dev/v1alpha1", "CopyJob"): COPYJOBS,
    ("shareferry.dev/v1alpha1", "FileShare"): FILESHARES,
    ("shareferry.dev/v1alpha1", "SyncSchedule"): SYNCSCHEDULES,
}
STATUS_SUBRESOURCE = {COPYJOBS, FILESHARES, SYNCSCHEDULES, JOBS, PODS}
FINISHED_JOB = ("Complete", "Failed")


def resource_of(body: Mapping[str, Any]) -> Resource:
    """The resource of a manifest, from its apiVersion and kind."""
    return RESOURCES[str(body["apiVersion"]), str(body["kind"])]


def condition_true(body: Mapping[str, Any] | None, kind: str) -> bool:
    return any(
        item.get("type") == kind and item.get("status") == "True"
        for item in ((body or {}).get("status") or {}).get("conditions") or []
    )


class ClusterApi:
    """An admin's client of one API server, with the helpers tests need (see the module doc).
    ``kubelet_dir`` is the process kubelet's state directory (for container logs)."""

    def __init__(self, kube: KubeClient, *, kubelet_dir: Path) -> None:
        self.kube = kube
        self.kubelet_dir = kubelet_dir

    # -- reading ----------------------------------------------------------------------------

    async def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object as the server has it now, or None when it does not exist."""
        try:
            return await self.kube.get(res, namespace, name)
        except NotFound:
            return None

    async def objects(
        self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """The objects of ``res`` (in ``namespace``, or all), sorted by namespace and name."""
        items = await self.kube.list(res, namespace, label_selector=label_selector)
        return sorted(
            items, key=lambda obj: (obj["metadata"].get("namespace") or "", obj["metadata"]["name"])
        )

    async def events(self, namespace: str, *, involving: str | None = None) -> list[dict[str, Any]]:
        """The core v1 Events of ``namespace`` (optionally about one object name) in the order they
        were created. The server keeps ``firstTimestamp`` to the second only, so two Events of one
        second cannot be ordered by it; the order of creation is that of their resourceVersions
        (each Event is written once)."""
        params = {"fieldSelector": f"involvedObject.name={involving}"} if involving else None
        answer = await self.kube.request("GET", EVENTS.path(namespace), params=params)
        items = [dict(item) for item in (answer or {}).get("items") or []]
        return sorted(items, key=lambda event: int(event["metadata"]["resourceVersion"]))

    async def pods_of(self, namespace: str, job: str) -> list[dict[str, Any]]:
        """The pods the Job controller made for ``job``, by completion index, then name."""
        pods = await self.objects(PODS, namespace, label_selector=f"{JOB_NAME_LABEL}={job}")
        return sorted(
            pods,
            key=lambda pod: (
                int(pod["metadata"].get("annotations", {}).get(COMPLETION_INDEX, "0")),
                pod["metadata"]["name"],
            ),
        )

    def log_of(self, pod: Mapping[str, Any], container: str | None = None) -> str:
        """A container's log, as the process kubelet keeps it (kept after the pod is gone)."""
        meta = pod["metadata"]
        name = container or pod["spec"]["containers"][0]["name"]
        path = self.kubelet_dir / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- writing ----------------------------------------------------------------------------

    async def apply(self, body: Mapping[str, Any], *, namespace: str | None = None) -> dict[str, Any]:
        """Create the object, or merge-patch it when it exists; a ``status`` in ``body`` is then
        written through the status subresource (as a controller would). Returns what the server
        stored."""
        res = resource_of(body)
        body = copy.deepcopy(dict(body))
        meta = body.setdefault("metadata", {})
        ns = (namespace or meta.get("namespace")) if res.namespaced else None
        if res.namespaced:
            assert ns, f"{body['kind']} {meta.get('name')} needs a namespace"
            meta["namespace"] = ns
        status = body.pop("status", None)
        current = await self.get(res, ns, meta["name"])
        if current is None:
            current = await self.kube.create(res, ns, body)
        else:
            current = await self.kube.patch(res, ns, meta["name"], body)
        if status is not None and res in STATUS_SUBRESOURCE:
            current = await self.kube.patch(res, ns, meta["name"], {"status": status}, subresource="status")
        return current

    async def delete(
        self, res: Resource, namespace: str | None, name: str, *, propagation: str = "Background"
    ) -> None:
        await self.kube.delete(res, namespace, name, propagation=propagation)

    # -- waiting ----------------------------------------------------------------------------

    @staticmethod
    async def wait_for(
        probe: Callable[[], T | None] | Callable[[], Awaitable[T | None]],
        *,
        timeout: float = 30.0,
        interval: float = 0.1,
        what: str = "the condition",
    ) -> T:
        """Poll ``probe`` (plain or async) until it returns something truthy, and return that;
        TimeoutError (with ``what`` and the last answer) after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result  # type: ignore[return-value]
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout:g}s waiting for {what} (last: {result!r})")
            await asyncio.sleep(interval)

    async def wait_for_object(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda obj: True,
        *,
        timeout: float = 30.0,
        what: str | None = None,
    ) -> dict[str, Any]:
        """The object once it exists and satisfies ``predicate``."""

        async def probe() -> dict[str, Any] | None:
            obj = await self.get(res, namespace, name)
            return obj if obj is not None and predicate(obj) else None

        found: dict[str, Any] = await self.wait_for(
            probe, timeout=timeout, what=what or f"{res.plural}/{name} in {namespace}"
        )
        return found

    async def wait_for_absence(
        self, res: Resource, namespace: str | None, name: str, *, timeout: float = 30.0
    ) -> None:
        async def gone() -> bool:
            return await self.get(res, namespace, name) is None

        await self.wait_for(gone, timeout=timeout, what=f"{res.plural}/{name} in {namespace} to be gone")

    async def wait_for_job(
        self, namespace: str, name: str, *, conditions: tuple[str, ...] = FINISHED_JOB, timeout: float = 60.0
    ) -> dict[str, Any]:
        """The Job once one of ``conditions`` is True (the real Job controller sets them after
        its pods have terminated)."""
        return await self.wait_for_object(
            JOBS,
            namespace,
            name,
            lambda job: any(condition_true(job, kind) for kind in conditions),
            timeout=timeout,
            what=f"Job {namespace}/{name} to be {' or '.join(conditions)}",
        )


def exit_code(pod: Mapping[str, Any], container: str | None = None) -> int | None:
    """The exit code of a pod's (first) container once it has terminated, else None."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if container is None or status.get("name") == container:
            terminated = (status.get("state") or {}).get("terminated")
            return None if terminated is None else int(terminated["exitCode"])
    return None


def pod_condition(pod: Mapping[str, Any], kind: str) -> dict[str, Any]:
    for item in (pod.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return {}
