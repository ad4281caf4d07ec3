"""A control plane of their own for the tests that run ShareFerry's operator in-process (or the
worker as a child process): tests/operator, tests/worker and tests/kube. A pytest plugin that
tests/conftest.py loads.

Why not the session's ``control_plane`` (tests/cluster/fixtures.py)? The chart's operator that
``release`` installs there watches every namespace; an in-process operator on the same server
would race it for every CopyJob. So ``operator_plane`` starts a second one (etcd, API server,
controller manager, scheduler, process kubelet, in a temporary directory), installs ShareFerry's
CRDs, waits until the garbage collector knows them (it looks for new kinds every 30 s) and
renders the chart once to take from it what the tests install themselves. That costs about half
a minute, so it is done once per session (the three directories share it, one namespace per
test keeps them apart) and only when a test asks for it. From the chart:

* the worker ServiceAccount, Role and RoleBinding (``Plane.worker_manifests(namespace)``): worker
  pods run under the chart's own RBAC;
* the operator container's environment (``Plane.operator_env``), which
  ``OperatorSettings.from_environment`` reads as the operator pod would.

Every test works in a namespace of its own (``kube_namespace``), so no test sees another's
objects; at its end the finalizers the in-process operator can no longer remove are dropped and
the namespace is deleted (not waited for).
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import pytest

from shareferry.kube import CONFIGMAPS, COPYJOBS, FILESHARES, NAMESPACES, SYNCSCHEDULES, KubeClient, NotFound
from tests.cluster import build, controlplane, crds
from tests.cluster.controlplane import State
from tests.cluster.kubectl import Kubectl, wait_for
from tests.support import helm
from tests.support.cluster_api import ClusterApi, resource_of

RELEASE = "shareferry"
SYSTEM_NAMESPACE = "shareferry-system"
PLACEHOLDER = "worker-namespace-placeholder"
CHART_VALUES: dict[str, Any] = {
    "image": {"repository": "shareferry", "tag": "local", "pullPolicy": "Never"},
    "watchNamespaces": [PLACEHOLDER],
    "worker": {"statusIntervalSeconds": 0.2},  # status patches a test need not wait long for
}
WORKER_KINDS = ("ServiceAccount", "Role", "RoleBinding")


def configuration_of(kubeconfig: Path) -> kubernetes.client.Configuration:
    """The ``kubernetes`` package's configuration read from ``kubeconfig``."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(
        config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
    )
    return configuration


@dataclass(frozen=True)
class Plane:
    """The tests' own control plane and what the chart says about the operator and its workers."""

    state: State
    kubectl: Kubectl
    operator_env: dict[str, str] = field(default_factory=dict)
    worker_rbac: tuple[dict[str, Any], ...] = ()

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (``system:masters``)."""
        return self.state.kubeconfig

    @property
    def kubelet_dir(self) -> Path:
        return self.state.root / "kubelet"

    def client(self) -> KubeClient:
        """A new admin client (use ``async with``)."""
        return KubeClient(configuration_of(self.kubeconfig))

    def worker_manifests(self, namespace: str) -> list[dict[str, Any]]:
        """The chart's worker ServiceAccount, Role and RoleBinding, for ``namespace``."""
        manifests = copy.deepcopy(list(self.worker_rbac))
        for manifest in manifests:
            manifest["metadata"]["namespace"] = namespace
            for subject in manifest.get("subjects") or []:
                subject["namespace"] = namespace
        return manifests


def _chart_parts(values: Path) -> tuple[dict[str, str], tuple[dict[str, Any], ...]]:
    values.write_text(json.dumps(CHART_VALUES))
    rendered = helm.render(release=RELEASE, namespace=SYSTEM_NAMESPACE, values_files=[values])
    [deployment] = [doc for doc in rendered if doc["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: str(item["value"]) for item in container.get("env") or [] if "value" in item}
    worker = tuple(
        doc
        for doc in rendered
        if doc["kind"] in WORKER_KINDS
        and doc["metadata"].get("namespace") == PLACEHOLDER
        and doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "worker"
    )
    assert sorted(doc["kind"] for doc in worker) == sorted(WORKER_KINDS), rendered
    return env, worker


def _wait_for_garbage_collector(kubectl: Kubectl) -> None:
    """Wait until the garbage collector collects what a CopyJob owns. It discovers new resource
    types (the CRDs just installed) every 30 s; until then an owner of our kinds is ignored and
    its dependents stay. One probe here, instead of a first test that waits for no reason it
    can see."""
    namespace = crds.NAMESPACE
    owner = {
        "apiVersion": "shareferry.dev/v1alpha1",
        "kind": "CopyJob",
        "metadata": {"name": "gc-probe", "namespace": namespace},
        "spec": {"source": {"pvc": {"claimName": "none"}}, "destination": {"fileShare": {"name": "none"}}},
    }
    kubectl.apply(json.dumps(owner))
    uid = (kubectl.get("copyjob", "gc-probe", namespace) or {})["metadata"]["uid"]
    reference = {"apiVersion": owner["apiVersion"], "kind": "CopyJob", "name": "gc-probe", "uid": uid}
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "gc-probe", "namespace": namespace, "ownerReferences": [reference]},
    }
    kubectl.apply(json.dumps(dependent))
    kubectl.run("delete", "copyjob", "gc-probe", "-n", namespace, "--wait=true")
    wait_for(
        lambda: kubectl.get("configmap", "gc-probe", namespace) is None,
        timeout=90,
        interval=0.5,
        what="the garbage collector to know ShareFerry's kinds",
    )


@pytest.fixture(scope="session")
def operator_plane(tmp_path_factory: pytest.TempPathFactory, cluster_tools: build.Toolset) -> Iterator[Plane]:
    root = tmp_path_factory.mktemp("operator-plane")
    with controlplane.for_tests(root, tools=cluster_tools) as state:
        kubectl = crds.install_crds(Kubectl(state, cluster_tools))
        env, worker = _chart_parts(root / "values.json")
        _wait_for_garbage_collector(kubectl)
        yield Plane(state=state, kubectl=kubectl, operator_env=env, worker_rbac=worker)


def _namespace_name(test_name: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")
    return f"{words[:40].rstrip('-')}-{secrets.token_hex(3)}"


@contextlib.asynccontextmanager
async def fresh_namespace(plane: Plane, base: str) -> AsyncIterator[str]:
    """A new namespace named after ``base``; on exit the finalizers nobody is left to remove
    (the in-process operator's, a test's own) are dropped and the namespace is deleted."""
    name = _namespace_name(base)
    async with plane.client() as kube:
        await kube.create(NAMESPACES, None, {"metadata": {"name": name}})
    try:
        yield name
    finally:
        async with plane.client() as kube:
            for res in (COPYJOBS, FILESHARES, SYNCSCHEDULES, CONFIGMAPS):
                for item in await kube.list(res, name):
                    if item["metadata"].get("finalizers"):
                        with contextlib.suppress(NotFound):
                            await kube.patch(
                                res, name, item["metadata"]["name"], {"metadata": {"finalizers": None}}
                            )
            await kube.delete(NAMESPACES, None, name)


@pytest.fixture
async def kube_namespace(operator_plane: Plane, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A namespace of this test's own on ``operator_plane``, deleted at its end."""
    async with fresh_namespace(operator_plane, request.node.name) as name:
        yield name


@pytest.fixture
async def plane_api(operator_plane: Plane) -> AsyncIterator[ClusterApi]:
    """An admin's :class:`ClusterApi` of ``operator_plane``."""
    async with operator_plane.client() as kube:
        yield ClusterApi(kube, kubelet_dir=operator_plane.kubelet_dir)


async def install_worker_rbac(api: ClusterApi, plane: Plane, namespace: str) -> None:
    """The chart's worker ServiceAccount, Role and RoleBinding in ``namespace``."""
    for manifest in plane.worker_manifests(namespace):
        await api.kube.create(resource_of(manifest), namespace, manifest)
