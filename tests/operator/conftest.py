"""The operator for real: kopf running ShareFerry's handlers against the test Kubernetes API
(KMock over HTTP), the test kubelet running the worker Jobs as local ``shareferry worker``
processes, and the Files emulator (and Azurite when a test asks) as the storage.

``world`` gives a test everything at once: ``world.cluster`` (objects, events, waits),
``world.kubelet`` (pods run, their argv and exit codes), ``world.emulator``, ``world.metrics``
(the operator's Prometheus registry), ``world.clock`` (the time the controller sees: it follows
the real clock until a test moves it by hand), and helpers to seed Secrets and FileShares.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
import pytest
from azure.storage.fileshare import ShareServiceClient

from shareferry.controller.context import ControllerContext
from shareferry.controller.handlers import build_registry
from shareferry.controller.metrics import OperatorMetrics
from shareferry.controller.settings import OperatorSettings
from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.support.kube_cluster import KubeCluster, run_operator
from tests.support.kubelet import Kubelet

NAMESPACE = "default"
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


@dataclass
class World:
    cluster: KubeCluster
    kubelet: Kubelet
    emulator: RunningEmulator
    metrics: OperatorMetrics
    clock: Clock
    volumes: dict[str, Path] = field(default_factory=dict)

    @property
    def service(self) -> ShareServiceClient:
        account = self.emulator.account()
        return ShareServiceClient(
            account_url=self.emulator.account_url(),
            credential={"account_name": account.name, "account_key": account.key},
        )

    async def seed_secret(self, name: str = SECRET, *, key: str | None = None) -> None:
        """A Secret with the emulator account's name and key (or a wrong ``key``)."""
        account = self.emulator.account()
        await self.cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": NAMESPACE},
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
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "account": {"endpoint": self.emulator.account_url()},
                "credentials": {"secretName": SECRET},
                "shareName": share_name,
                **spec,
            },
        }

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample of the operator's metrics, as Prometheus would scrape it (None: absent)."""
        return self.metrics.registry.get_sample_value(name, labels)


@pytest.fixture
def claims(tmp_path: Path) -> dict[str, Path]:
    """PersistentVolumeClaims the kubelet can mount: claim name → local directory."""
    data = tmp_path / "claims" / "data"
    data.mkdir(parents=True)
    return {"data": data}


@pytest.fixture
def files_emulator() -> Iterator[RunningEmulator]:
    with RunningEmulator(EmulatorConfig()) as running:
        yield running


@pytest.fixture
async def world(files_emulator: RunningEmulator, claims: dict[str, Path]) -> AsyncIterator[World]:
    clock = Clock()
    metrics = OperatorMetrics()
    async with KubeCluster.start() as cluster, cluster.client() as kube:
        context = ControllerContext(
            kube=kube,
            settings=OperatorSettings(worker_image="shareferry:test", status_interval=0.2),
            metrics=metrics,
            clock=clock,
            missing_secret_retry_seconds=MISSING_SECRET_RETRY,
        )
        registry = build_registry(schedule_interval=SCHEDULE_INTERVAL, fileshare_interval=FILESHARE_INTERVAL)
        async with (
            run_operator(registry, cluster, namespaces=[NAMESPACE], memo=kopf.Memo(ctx=context)),
            Kubelet.run(cluster, volumes=claims) as kubelet,
        ):
            yield World(
                cluster=cluster,
                kubelet=kubelet,
                emulator=files_emulator,
                metrics=metrics,
                clock=clock,
                volumes=claims,
            )


def status_of(body: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict((body or {}).get("status") or {})


def condition(body: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
    for item in status_of(body).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return {}
