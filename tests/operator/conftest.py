"""The operator for real: kopf running ShareFerry's handlers in the test's event loop against a
real API server (the tests' own control plane, ``operator_plane``), watching one namespace of the
test's own; the real Job controller turning the worker Jobs the operator builds into pods, the
real scheduler placing them and the process kubelet running them (``shareferry worker`` under the
chart's worker ServiceAccount and Role); the Files emulator as the storage.

The operator logs in as the ``kubernetes`` package finds it (KUBECONFIG: the plane's admin
kubeconfig), with the settings the chart's Deployment gives it (its environment), its own metrics
registry and a clock the test moves by hand.

``world`` gives a test everything at once: ``world.api`` (objects, Events, pods, logs, waits),
``world.namespace``, ``world.emulator``, ``world.metrics`` (the operator's Prometheus registry),
``world.clock`` (the time the controller sees: it follows the real clock until a test moves it),
``world.lists`` (the label-selected lists the operator's own client made), and helpers to seed
Secrets, FileShares and volumes. When the test ends, no container log of its namespace may say
Forbidden (the workers run under the chart's Role; a refusal they log and survive still fails).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
import kubernetes.client
import pytest
from azure.storage.fileshare import ShareServiceClient

from shareferry.controller.context import ControllerContext
from shareferry.controller.handlers import build_registry
from shareferry.controller.metrics import OperatorMetrics
from shareferry.controller.settings import OperatorSettings
from shareferry.emulator import EmulatorConfig, RunningEmulator
from shareferry.kube import KubeClient, Resource, load_configuration
from tests.support.cluster_api import PVCS, PVS, ClusterApi
from tests.support.emulator_admin import service_client
from tests.support.kopf_runner import run_operator
from tests.support.operator_plane import Plane, install_worker_rbac

SECRET = "emulator-credentials"
SCHEDULE_INTERVAL = 0.2
FILESHARE_INTERVAL = 0.5
MISSING_SECRET_RETRY = 0.3


class Clock:
    """The controller's clock: real time plus an offset a test can move, or a fixed time."""

    def __init__(self) -> None:
        self._fixed: datetime | None = None
        self._offset = timedelta()

    def __call__(self) -> datetime:
        if self._fixed is not None:
            return self._fixed
        return datetime.now(UTC) + self._offset

    def set(self, moment: datetime) -> None:
        """Stop the clock at ``moment`` (time stands still until set again)."""
        self._fixed = moment

    def advance(self, delta: timedelta) -> None:
        if self._fixed is not None:
            self._fixed += delta
        else:
            self._offset += delta


class ObservedKubeClient(KubeClient):
    """The operator's own client, counting its label-selected lists: a SyncSchedule pass lists
    the schedule's CopyJobs, so the count says how many passes have begun."""

    def __init__(self, configuration: kubernetes.client.Configuration) -> None:
        super().__init__(configuration)
        self.lists: Counter[tuple[str, str]] = Counter()

    async def list(
        self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        if label_selector:
            self.lists[res.plural, label_selector] += 1
        return await super().list(res, namespace, label_selector=label_selector)


@dataclass
class World:
    api: ClusterApi
    plane: Plane
    namespace: str
    emulator: RunningEmulator
    metrics: OperatorMetrics
    clock: Clock
    operator_kube: ObservedKubeClient

    @property
    def service(self) -> ShareServiceClient:
        return service_client(self.emulator)

    def lists(self, res: Resource, label_selector: str) -> int:
        """How many times the operator listed ``res`` with ``label_selector``."""
        return self.operator_kube.lists[res.plural, label_selector]

    async def seed_secret(self, name: str = SECRET, *, key: str | None = None) -> None:
        """A Secret with the emulator account's name and key (or a wrong ``key``)."""
        account = self.emulator.account()
        await self.api.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": self.namespace},
                "stringData": {
                    "AZURE_STORAGE_ACCOUNT_NAME": account.name,
                    "AZURE_STORAGE_ACCOUNT_KEY": key if key is not None else account.key,
                },
            }
        )

    def fileshare(self, name: str, share_name: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": "shareferry.dev/v1alpha1",
            "kind": "FileShare",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "account": {"endpoint": self.emulator.account_url()},
                "credentials": {"secretName": SECRET},
                "shareName": share_name,
                **spec,
            },
        }

    def copyjob(self, name: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": "shareferry.dev/v1alpha1",
            "kind": "CopyJob",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }

    async def volume(self, claim: str, size: str = "1Gi") -> Path:
        """A PersistentVolumeClaim, bound by the real PV controller to a volume of the local
        provisioner: the directory on this machine that pods see at their mount path."""
        await self.api.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": self.namespace},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
            }
        )
        bound = await self.api.wait_for_object(
            PVCS,
            self.namespace,
            claim,
            lambda pvc: (pvc.get("status") or {}).get("phase") == "Bound",
            what=f"PVC {claim} bound",
        )
        volume = await self.api.get(PVS, None, bound["spec"]["volumeName"])
        assert volume is not None
        spec = volume["spec"]
        return Path((spec.get("hostPath") or spec.get("local"))["path"])

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample of the operator's metrics, as Prometheus would scrape it (None: absent)."""
        return self.metrics.registry.get_sample_value(name, labels)


@pytest.fixture
def files_emulator() -> Iterator[RunningEmulator]:
    """A Files emulator of this test's own, on loopback (the worker pods reach it there)."""
    with RunningEmulator(EmulatorConfig()) as running:
        yield running


@pytest.fixture
async def world(
    files_emulator: RunningEmulator,
    operator_plane: Plane,
    kube_namespace: str,
    plane_api: ClusterApi,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[World]:
    monkeypatch.setenv("KUBECONFIG", str(operator_plane.kubeconfig))
    for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    await install_worker_rbac(plane_api, operator_plane, kube_namespace)
    clock = Clock()
    metrics = OperatorMetrics()
    async with ObservedKubeClient(load_configuration()) as kube:
        context = ControllerContext(
            kube=kube,
            settings=OperatorSettings.from_environment(operator_plane.operator_env),
            metrics=metrics,
            clock=clock,
            missing_secret_retry_seconds=MISSING_SECRET_RETRY,
        )
        registry = build_registry(schedule_interval=SCHEDULE_INTERVAL, fileshare_interval=FILESHARE_INTERVAL)
        async with run_operator(registry, namespaces=[kube_namespace], memo=kopf.Memo(ctx=context)):
            yield World(
                api=plane_api,
                plane=operator_plane,
                namespace=kube_namespace,
                emulator=files_emulator,
                metrics=metrics,
                clock=clock,
                operator_kube=kube,
            )
    assert forbidden_in_worker_logs(operator_plane, kube_namespace) == {}


def forbidden_in_worker_logs(plane: Plane, namespace: str) -> dict[str, list[str]]:
    """The lines of this namespace's container logs that say Forbidden: a worker the chart's
    Role does not allow something (it may log and carry on, so the test itself may not see it)."""
    offenders: dict[str, list[str]] = {}
    for path in sorted((plane.kubelet_dir / "pods").glob(f"{namespace}_*/*.log")):
        lines = [
            line for line in path.read_text(errors="replace").splitlines() if "forbidden" in line.lower()
        ]
        if lines:
            offenders[path.parent.name] = lines[:5]
    return offenders


def status_of(body: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict((body or {}).get("status") or {})


def condition(body: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
    for item in status_of(body).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return {}


async def reasons_of(
    world: World, name: str, *, until: str, times: int = 1, timeout: float = 20.0
) -> list[str]:
    """The reasons of the Events about ``name`` in the order they were posted, once ``until`` is
    among them ``times`` times (kopf posts Events in the background, a moment after the status
    is written)."""

    async def ordered() -> list[str] | None:
        reasons = [str(event["reason"]) for event in await world.api.events(world.namespace, involving=name)]
        return reasons if reasons.count(until) >= times else None

    found: list[str] = await world.api.wait_for(
        ordered, timeout=timeout, what=f"{times} {until} event(s) about {name}"
    )
    return found


async def messages_of(world: World, name: str, reason: str) -> list[str]:
    return [
        str(event["message"])
        for event in await world.api.events(world.namespace, involving=name)
        if event["reason"] == reason
    ]
