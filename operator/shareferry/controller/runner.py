"""Run the operator: kopf with ShareFerry's handlers, the metrics endpoint, one API client.

Single active operator: the Helm chart runs one replica (``strategy: Recreate``) and kopf runs
``standalone`` (no peering objects to install or clean up). Two operators watching the same
namespaces would each create Jobs only once (Job names are deterministic, a second create is a
conflict), but would post events twice; one replica avoids it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

import kopf

from shareferry.controller.context import ControllerContext, utc_now
from shareferry.controller.handlers import build_registry
from shareferry.controller.metrics import OperatorMetrics
from shareferry.controller.settings import OperatorSettings
from shareferry.kube import KubeClient


async def run_operator(
    *,
    namespaces: Sequence[str] = (),
    settings: OperatorSettings | None = None,
    metrics: OperatorMetrics | None = None,
    kube: KubeClient | None = None,
    clock: Callable[[], datetime] = utc_now,
    liveness_endpoint: str | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
) -> None:
    """Run until ``stop_flag`` is set (or the process is signalled).

    ``namespaces`` empty: every namespace (cluster-wide); otherwise only those (glob patterns
    as kopf accepts them). ``kube`` None: a client of the API server the environment names
    (in-cluster or kubeconfig), the one kopf logs in to as well.
    """
    context = ControllerContext(
        kube=kube or KubeClient.from_environment(),
        settings=settings or OperatorSettings.from_environment(),
        metrics=metrics or OperatorMetrics(),
        clock=clock,
    )
    settings_for_kopf = kopf.OperatorSettings()
    # Exact namespace names (all the Helm chart passes) or the whole cluster need no namespace
    # listing and no watch on CRDs, which the chart's least-privilege RBAC does not grant; only
    # glob patterns make kopf scan for matching namespaces.
    settings_for_kopf.scanning.disabled = not any(_is_pattern(namespace) for namespace in namespaces)
    try:
        await kopf.operator(
            settings=settings_for_kopf,
            registry=build_registry(),
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            standalone=True,
            memo=kopf.Memo(ctx=context),
            liveness_endpoint=liveness_endpoint,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        await context.kube.close()


def _is_pattern(namespace: str) -> bool:
    return any(char in namespace for char in "*?[!")
