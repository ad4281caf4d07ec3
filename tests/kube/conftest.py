"""Fixtures for the Kubernetes plumbing tests: the real API server of ``operator_plane``
(tests/support/operator_plane.py), an admin client of it, and two namespaces of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shareferry.kube import SERVICEACCOUNTS, KubeClient
from tests.support.cluster_api import ClusterApi
from tests.support.operator_plane import Plane, fresh_namespace


@pytest.fixture
async def kube(operator_plane: Plane) -> AsyncIterator[KubeClient]:
    async with operator_plane.client() as client:
        yield client


@pytest.fixture
def api(kube: KubeClient, operator_plane: Plane) -> ClusterApi:
    return ClusterApi(kube, kubelet_dir=operator_plane.kubelet_dir)


@pytest.fixture
def ns(kube_namespace: str) -> str:
    return kube_namespace


@pytest.fixture
async def other(operator_plane: Plane, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A second namespace of the test's own."""
    async with fresh_namespace(operator_plane, f"other-{request.node.name}") as name:
        yield name


async def default_service_account(api: ClusterApi, namespace: str) -> None:
    """Wait for the ServiceAccount controller's "default" account: without it the server refuses
    pods in the namespace."""
    await api.wait_for_object(SERVICEACCOUNTS, namespace, "default")
