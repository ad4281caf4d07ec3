"""``helm lint`` and ``helm template`` of the chart: labels, the operator pod, Services, monitoring."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.chart.conftest import CONFIGURATIONS, NAMESPACE, RELEASE, Manifests, of_kind, one
from tests.support import helm

STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)


def chart_metadata() -> dict[str, Any]:
    metadata: dict[str, Any] = yaml.safe_load((helm.CHART / "Chart.yaml").read_text(encoding="utf-8"))
    return metadata


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_helm_lint_passes_strict(name: str) -> None:
    result = helm.lint(**CONFIGURATIONS[name])
    assert result.returncode == 0, result.output
    assert "0 chart(s) failed" in result.output


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_every_object_has_the_standard_labels(rendered: dict[str, Manifests], name: str) -> None:
    chart = chart_metadata()
    manifests = rendered[name]
    assert manifests
    for document in manifests:
        labels = document["metadata"].get("labels") or {}
        where = f"{document['kind']}/{document['metadata']['name']}"
        assert [key for key in STANDARD_LABELS if key not in labels] == [], where
        assert labels["app.kubernetes.io/name"] == "shareferry", where
        assert labels["app.kubernetes.io/instance"] == RELEASE, where
        assert labels["app.kubernetes.io/version"] == chart["appVersion"], where
        assert labels["app.kubernetes.io/managed-by"] == "Helm", where
        assert labels["helm.sh/chart"] == f"shareferry-{chart['version']}", where


def test_common_labels_reach_every_object(rendered: dict[str, Manifests]) -> None:
    for document in rendered["all-features"]:
        assert document["metadata"]["labels"].get("team") == "storage", document["metadata"]["name"]


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_operator_runs_as_one_restricted_replica(rendered: dict[str, Manifests], name: str) -> None:
    deployment = one(rendered[name], "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert "memory" in container["resources"]["limits"]
    # a read-only root filesystem, with /tmp writable in an emptyDir
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_liveness_probe_is_kopfs_endpoint(rendered: dict[str, Manifests], name: str) -> None:
    (container,) = one(rendered[name], "Deployment")["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    assert ports[probe["port"]] == 8081
    assert "--liveness-endpoint=http://0.0.0.0:8081/healthz" in container["command"]


def test_default_install_is_cluster_wide_with_image_from_app_version(rendered: dict[str, Manifests]) -> None:
    (container,) = one(rendered["default"], "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/shareferry/shareferry:{chart_metadata()['appVersion']}"
    assert "--all-namespaces" in container["command"]
    assert not any(arg.startswith("--namespace") for arg in container["command"])
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["SHAREFERRY_WORKER_IMAGE"] == container["image"]
    assert env["SHAREFERRY_WORKER_IMAGE_PULL_POLICY"] == "IfNotPresent"
    assert env["SHAREFERRY_STATUS_INTERVAL"] == "5"


def test_all_features_reach_the_operator_pod(rendered: dict[str, Manifests]) -> None:
    deployment = one(rendered["all-features"], "Deployment")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "registry.example.com/shareferry:0.1.0-rc1"
    assert container["imagePullPolicy"] == "Always"
    assert [arg for arg in container["command"] if arg.startswith("--namespace")] == [
        "--namespace=data-team",
        "--namespace=backups",
    ]
    assert "--verbose" in container["command"]
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod["metadata"]["annotations"] == {"example.com/owner": "storage"}
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry-example"}]
    assert pod["spec"]["priorityClassName"] == "storage-operators"
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["spec"]["tolerations"][0]["key"] == "dedicated"
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["SHAREFERRY_WORKER_IMAGE"] == (
        "registry.example.com/shareferry@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )
    assert env["SHAREFERRY_WORKER_IMAGE_PULL_POLICY"] == "IfNotPresent"
    assert env["SHAREFERRY_WORKER_SERVICE_ACCOUNT"] == "ferry-worker"
    assert env["SHAREFERRY_STATUS_INTERVAL"] == "2.5"
    assert env["TZ"] == "UTC"


def test_workload_identity_annotations_on_both_service_accounts(rendered: dict[str, Manifests]) -> None:
    accounts = of_kind(rendered["all-features"], "ServiceAccount")
    operator = [sa for sa in accounts if sa["metadata"]["namespace"] == NAMESPACE]
    workers = [sa for sa in accounts if sa["metadata"]["name"] == "ferry-worker"]
    assert len(operator) == 1
    assert operator[0]["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000001"
    }
    assert {sa["metadata"]["namespace"] for sa in workers} == {"data-team", "backups"}
    for worker in workers:
        assert worker["metadata"]["annotations"] == {
            "azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000002"
        }
        assert worker["imagePullSecrets"] == [{"name": "registry-example"}]


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_metrics_service_reaches_the_operator_pod(rendered: dict[str, Manifests], name: str) -> None:
    manifests = rendered[name]
    deployment = one(manifests, "Deployment")
    service = one(manifests, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {item["name"]: item["containerPort"] for item in container["ports"]}
    assert port["targetPort"] == "metrics"
    assert f"--metrics-port={ports['metrics']}" in container["command"]


def test_metrics_off_removes_port_and_service() -> None:
    manifests = helm.render(set_values=["metrics.enabled=false", "metrics.serviceMonitor.enabled=true"])
    assert of_kind(manifests, "Service") == []
    assert of_kind(manifests, "ServiceMonitor") == []
    (container,) = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--metrics-port=0" in container["command"]
    assert [port["name"] for port in container["ports"]] == ["healthz"]


def test_monitoring_objects_only_when_asked(rendered: dict[str, Manifests]) -> None:
    kinds = {document["kind"] for document in rendered["default"]}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    manifests = rendered["all-features"]
    monitor = one(manifests, "ServiceMonitor")
    service = one(manifests, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    dashboard = one(manifests, "ConfigMap")
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Storage"}
    assert one(manifests, "PrometheusRule")["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_release_name_with_chart_name_is_not_repeated() -> None:
    manifests = helm.render(release="shareferry")
    assert one(manifests, "Deployment")["metadata"]["name"] == "shareferry"
    names = {(document["kind"], document["metadata"]["name"]) for document in manifests}
    assert ("ServiceAccount", "shareferry-worker") in names
