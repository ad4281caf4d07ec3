"""Fixtures of the tests that run on the real control plane, a pytest plugin that tests/conftest.py
loads so that every test directory can use them: one control plane per test session (started in
a temporary directory, stopped at the end), kubectl and helm bound to it, ShareFerry installed on
it by Helm, a Files emulator on loopback the pods reach."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.cluster import build, controlplane, crds
from tests.cluster.controlplane import State
from tests.cluster.kubectl import Kubectl
from tests.cluster.release import NAMESPACE, SECRET, Release, free_port
from tests.support.paths import repo_root

ROOT = repo_root()


@pytest.fixture(scope="session")
def cluster_tools() -> build.Toolset:
    return build.ensure_built()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory, cluster_tools: build.Toolset) -> Iterator[State]:
    with controlplane.for_tests(tmp_path_factory.mktemp("cluster"), tools=cluster_tools) as state:
        yield state


@pytest.fixture(scope="session")
def kube(control_plane: State, cluster_tools: build.Toolset) -> Kubectl:
    return Kubectl(control_plane, cluster_tools)


@pytest.fixture(scope="session")
def crds_installed(kube: Kubectl) -> Kubectl:
    """``kube`` with ShareFerry's CRDs installed and Established (see tests/cluster/crds.py)."""
    return crds.install_crds(kube)


# -- ShareFerry installed on it ----------------------------------------------------------------

RELEASE = "shareferry"
SYSTEM_NAMESPACE = "shareferry-system"


@pytest.fixture(scope="session")
def files_emulator() -> Iterator[RunningEmulator]:
    """One Files emulator for the session, on loopback: pods are local processes and reach it."""
    with RunningEmulator(EmulatorConfig()) as running:
        yield running


@pytest.fixture(scope="session")
def release(
    kube: Kubectl, files_emulator: RunningEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    """``helm install`` of charts/shareferry, cluster-wide, with the worker ServiceAccount in
    NAMESPACE; pods share the host's network, so the operator's ports are chosen free."""
    values = tmp_path_factory.mktemp("values") / "values.yaml"
    metrics_port, health_port = free_port(), free_port()
    values.write_text(
        json.dumps(
            {
                "image": {"repository": "shareferry", "tag": "local", "pullPolicy": "Never"},
                "workerNamespaces": [NAMESPACE],
                "metrics": {"port": metrics_port, "service": {"port": metrics_port}},
                "operator": {
                    "livenessProbe": {"port": health_port, "initialDelaySeconds": 2, "periodSeconds": 5},
                    "logLevel": "debug",
                },
                "worker": {"statusIntervalSeconds": 1},
            }
        )
    )
    if kube.get("namespace", NAMESPACE) is None:
        kube.run("create", "namespace", NAMESPACE)
    kube.helm(
        "install", RELEASE, str(ROOT / "charts" / "shareferry"),
        "--namespace", SYSTEM_NAMESPACE, "--create-namespace",
        "-f", str(values), "--wait", "--timeout", "180s",
    )  # fmt: skip
    account = files_emulator.account()
    kube.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": SECRET, "namespace": NAMESPACE},
                "stringData": {
                    "AZURE_STORAGE_ACCOUNT_NAME": account.name,
                    "AZURE_STORAGE_ACCOUNT_KEY": account.key,
                },
            }
        )
    )
    yield Release(kube, files_emulator, metrics_port=metrics_port, health_port=health_port)
    kube.helm("uninstall", RELEASE, "--namespace", SYSTEM_NAMESPACE, "--wait", check=False)
