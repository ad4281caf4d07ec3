"""Fixtures for the Kubernetes plumbing tests: a running test cluster (KMock over HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shareferry.kube import KubeClient
from tests.support.kube_cluster import KubeCluster


@pytest.fixture
async def cluster() -> AsyncIterator[KubeCluster]:
    async with KubeCluster.start(namespaces=("default", "other")) as running:
        yield running


@pytest.fixture
async def kube(cluster: KubeCluster) -> AsyncIterator[KubeClient]:
    async with cluster.client() as client:
        yield client
