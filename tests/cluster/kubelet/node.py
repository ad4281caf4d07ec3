"""The Node object and its heartbeats: registration, the Ready condition and the node Lease.

The kubelet registers its Node with the machine's capacity, keeps the Ready condition's
heartbeat fresh through ``nodes/status`` and renews its Lease in ``kube-node-lease`` every
:data:`HEARTBEAT_SECONDS`, so the node lifecycle controller keeps it Ready. It never touches the
Node's taints after registering it (NodeRestriction forbids it, and taints given with
``--register-with-taints`` are set only at creation, as the kubelet does): the
``node.kubernetes.io/not-ready`` taint that the API server puts on a new Node
is removed by the node lifecycle controller once the Node reports Ready, as in a real cluster.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from pathlib import Path

from tests.cluster.kubelet.api import MERGE, STRATEGIC_MERGE, Api, Json, describe, now, now_micro, status_of

LOG = logging.getLogger("kubelet.node")
HEARTBEAT_SECONDS = 10.0
LEASE_DURATION_SECONDS = 40
LEASE_NAMESPACE = "kube-node-lease"
MAX_PODS = 110
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _memory() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return f"{line.split()[1]}Ki"
    return "0"


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')
    return "Linux"


def node_resources(state_dir: Path) -> dict[str, str]:
    disk = os.statvfs(state_dir)
    return {
        "cpu": str(os.cpu_count() or 1),
        "memory": _memory(),
        "pods": str(MAX_PODS),
        "ephemeral-storage": str(disk.f_blocks * disk.f_frsize),
    }


def parse_taints(text: str) -> list[Json]:
    """``key=value:Effect,key:Effect`` (the kubelet's ``--register-with-taints`` syntax)."""
    taints: list[Json] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        pair, sep, effect = item.rpartition(":")
        if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ValueError(f"invalid taint {item!r}: expected key=value:Effect")
        key, _, value = pair.partition("=")
        taints.append({"key": key, "effect": effect, **({"value": value} if value else {})})
    return taints


class NodeAgent:
    """Registers Node ``name`` and keeps it Ready until :meth:`shutting_down`."""

    def __init__(self, api: Api, *, name: str, state_dir: Path, taints: list[Json] | None = None) -> None:
        self.api = api
        self.name = name
        self.state_dir = state_dir
        self.taints = taints or []
        self.node_uid = ""
        self._ready_since = now()

    def _conditions(self, *, ready: bool) -> list[Json]:
        stamp = now()
        pressure = [
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ]
        conditions: list[Json] = [
            {
                "type": kind,
                "status": "False",
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": self._ready_since,
            }
            for kind, reason, message in pressure
        ]
        conditions.append(
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "KubeletReady" if ready else "KubeletNotReady",
                "message": "kubelet is posting ready status" if ready else "node is shutting down",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": self._ready_since,
            }
        )
        return conditions

    async def _status(self) -> Json:
        version = await self.api.call(self.api.version.get_code)
        resources = node_resources(self.state_dir)
        uname = os.uname()
        return {
            "capacity": resources,
            "allocatable": dict(resources),
            "conditions": self._conditions(ready=True),
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.name},
            ],
            "nodeInfo": {
                "machineID": _read("/etc/machine-id"),
                "systemUUID": _read("/etc/machine-id"),
                "bootID": _read("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": uname.release,
                "osImage": _os_image(),
                "containerRuntimeVersion": "process://1.0.0",
                "kubeletVersion": str(version.get("gitVersion", "")),
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": _ARCH.get(platform.machine(), platform.machine()),
            },
        }

    async def register(self) -> None:
        """Create the Node (or, when it exists, refresh its status) and its Lease."""
        arch = _ARCH.get(platform.machine(), platform.machine())
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch,
        }
        status = await self._status()
        body: Json = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels},
            "spec": {"taints": self.taints} if self.taints else {},
            "status": status,
        }
        try:
            node = await self.api.call(self.api.core.create_node, body)
            LOG.info("registered node %s", self.name)
        except Exception as error:
            if status_of(error) != 409:
                raise
            node = await self.api.call(
                self.api.core.patch_node_status, self.name, {"status": status}, _content_type=STRATEGIC_MERGE
            )
            LOG.info("node %s already registered: status refreshed", self.name)
        self.node_uid = str(node.get("metadata", {}).get("uid", ""))
        await self._renew_lease()

    async def _renew_lease(self) -> None:
        patch = {
            "spec": {
                "holderIdentity": self.name,
                "renewTime": now_micro(),
                "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            }
        }
        try:
            await self.api.call(
                self.api.coordination.patch_namespaced_lease,
                self.name,
                LEASE_NAMESPACE,
                patch,
                _content_type=MERGE,
            )
            return
        except Exception as error:
            if status_of(error) != 404:
                raise
        lease: Json = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": LEASE_NAMESPACE,
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.node_uid}
                ],
            },
            "spec": patch["spec"],
        }
        await self.api.call(self.api.coordination.create_namespaced_lease, LEASE_NAMESPACE, lease)

    async def heartbeat(self) -> None:
        """Renew the Lease and the Ready condition's heartbeat forever (cancel to stop)."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self._renew_lease()
                await self.api.call(
                    self.api.core.patch_node_status,
                    self.name,
                    {"status": {"conditions": self._conditions(ready=True)}},
                    _content_type=STRATEGIC_MERGE,
                )
            except Exception as error:
                LOG.warning("heartbeat failed: %s", describe(error))

    async def shutting_down(self) -> None:
        """Report the node NotReady, as the kubelet's graceful node shutdown does."""
        self._ready_since = now()
        try:
            await self.api.call(
                self.api.core.patch_node_status,
                self.name,
                {"status": {"conditions": self._conditions(ready=False)}},
                _content_type=STRATEGIC_MERGE,
            )
        except Exception as error:
            LOG.warning("could not report the node NotReady: %s", describe(error))
