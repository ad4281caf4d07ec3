"""RBAC is the real authorizer's: tokens of the chart's ServiceAccounts, obtained with the
TokenRequest API as the kubelet obtains them for pods, do what the chart grants and nothing more."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.release import NAMESPACE, Release

OTHER = "ferry-other"


@pytest.fixture(scope="module")
def other_namespace(release: Release) -> Iterator[str]:
    kube = release.kube
    if kube.get("namespace", OTHER) is None:
        kube.run("create", "namespace", OTHER)
    kube.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "their-secret", "namespace": OTHER},
                "stringData": {"AZURE_STORAGE_ACCOUNT_KEY": "not yours"},
            }
        )
    )
    for namespace, name in ((NAMESPACE, "rbac-target"), (OTHER, "rbac-target")):
        kube.apply(
            json.dumps(
                release.copyjob(
                    name,
                    source={
                        "url": "https://example.file.core.windows.net/a",
                        "credentials": {"secretName": "absent"},
                    },
                    destination={
                        "url": "https://example.file.core.windows.net/b",
                        "credentials": {"secretName": "absent"},
                    },
                )
                | {"metadata": {"name": name, "namespace": namespace}}
            )
        )
    yield OTHER
    kube.run("delete", "namespace", OTHER, "--wait=false", check=False)


def token_of(release: Release, service_account: str, namespace: str) -> str:
    """A bound token of ``service_account`` (TokenRequest, 10 minutes), as a kubelet gets one."""
    return release.kube.run(
        "create", "token", service_account, "-n", namespace, "--duration=10m"
    ).stdout.strip()


def status_patch(release: Release, token: str, namespace: str, name: str) -> int:
    """PATCH a CopyJob's status the way the worker does (one merge patch, no read first); the
    HTTP status the API server answers."""
    url = f"{release.kube.state.server}/apis/shareferry.dev/v1alpha1/namespaces/{namespace}/copyjobs/{name}/status"
    request = urllib.request.Request(
        url,
        data=json.dumps({"status": {"message": "from the worker"}}).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/merge-patch+json"},
    )
    context = ssl.create_default_context(cafile=str(release.kube.state.pki.ca_cert))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def as_token(release: Release, service_account: str, namespace: str, tmp_path: Path) -> Path:
    """A kubeconfig holding a bound token of ``service_account``."""
    token = token_of(release, service_account, namespace)
    config = json.loads(release.kube.state.kubeconfig.read_text())
    config["users"] = [{"name": service_account, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = service_account
    path = tmp_path / f"{service_account}.kubeconfig"
    path.write_text(json.dumps(config))
    return path


def refused(release: Release, kubeconfig: Path, *args: str) -> str:
    result = release.kube.run(*args, kubeconfig=kubeconfig, check=False)
    assert result.returncode != 0, f"kubectl {' '.join(args)} was allowed"
    assert "Forbidden" in result.stderr or "forbidden" in result.stderr, result.stderr
    return result.stderr


def allowed(release: Release, kubeconfig: Path, *args: str) -> str:
    result = release.kube.run(*args, kubeconfig=kubeconfig, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_worker_token_reaches_its_own_copyjob_status_only(
    release: Release, other_namespace: str, tmp_path: Path
) -> None:
    worker = as_token(release, "shareferry-worker", NAMESPACE, tmp_path)
    token = token_of(release, "shareferry-worker", NAMESPACE)
    # What the chart grants: read its CopyJob, report into its status.
    allowed(release, worker, "get", "copyjob", "rbac-target", "-n", NAMESPACE)
    assert status_patch(release, token, NAMESPACE, "rbac-target") == 200
    assert status_patch(release, token, other_namespace, "rbac-target") == 403
    # Nothing else.
    refused(release, worker, "get", "secret", "their-secret", "-n", other_namespace)
    refused(release, worker, "get", "secret", "emulator-credentials", "-n", NAMESPACE)
    refused(release, worker, "patch", "copyjob", "rbac-target", "-n", NAMESPACE, "--type=merge", "-p", '{"spec":{"parallelism":2}}')  # fmt: skip
    refused(release, worker, "delete", "copyjob", "rbac-target", "-n", NAMESPACE)
    refused(release, worker, "create", "job", "sneaky", "-n", NAMESPACE, "--image=x")
    refused(release, worker, "get", "pods", "-n", NAMESPACE)


def test_the_operator_token_does_only_what_the_chart_granted(
    release: Release, other_namespace: str, tmp_path: Path
) -> None:
    operator = as_token(release, "shareferry", "shareferry-system", tmp_path)
    allowed(release, operator, "get", "copyjobs", "-A")
    allowed(
        release, operator, "get", "secret", "their-secret", "-n", other_namespace
    )  # FileShare credentials
    refused(release, operator, "get", "secrets", "-n", other_namespace)  # get, never list
    refused(
        release, operator, "create", "secret", "generic", "planted", "-n", NAMESPACE, "--from-literal=a=b"
    )
    refused(release, operator, "delete", "pods", "--all", "-n", NAMESPACE)
    refused(release, operator, "get", "nodes")
    refused(release, operator, "create", "clusterrolebinding", "escalate", "--clusterrole=cluster-admin", "--serviceaccount=shareferry-system:shareferry")  # fmt: skip
