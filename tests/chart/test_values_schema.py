"""values.schema.json and the chart's own checks refuse bad values with a message that names them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support import helm

SCHEMA_FAILURE = "values don't meet the specifications of the schema(s)"

#: --set assignment → the words helm must print.
BAD_SETTINGS = {
    "operator.replicas=2": "at '/operator': additional properties 'replicas' not allowed",
    "replicaCount=2": "at '': additional properties 'replicaCount' not allowed",
    "image.pullPolicy=Sometimes": "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
    "image.digest=latest": "at '/image/digest': 'latest' does not match pattern",
    "watchNamespaces={Team_A}": "at '/watchNamespaces/0': 'Team_A' does not match pattern",
    "workerNamespaces={a,a}": "at '/workerNamespaces': items at 0 and 1 are equal",
    "operator.logLevel=loud": "at '/operator/logLevel': value must be one of 'info', 'debug'",
    "operator.runAsUser=0": "at '/operator/runAsUser': minimum: got 0, want 1",
    "worker.statusIntervalSeconds=0": "at '/worker/statusIntervalSeconds': exclusiveMinimum: got 0, want 0",
    "metrics.port=70000": "at '/metrics/port': maximum: got 70,000, want 65,535",
    "metrics.serviceMonitor.interval=soon": "at '/metrics/serviceMonitor/interval': 'soon' does not match pattern",
    "rbac.create=maybe": "at '/rbac/create': got string, want boolean",
}

#: values file content → the words helm must print.
BAD_FILES = {
    "copyjob-without-spec": ({"copyJobs": [{"name": "a"}]}, "at '/copyJobs/0': missing property 'spec'"),
    "fileshare-bad-name": (
        {"fileShares": [{"name": "Reports", "spec": {"shareName": "reports"}}]},
        "at '/fileShares/0/name': 'Reports' does not match pattern",
    ),
    "syncschedule-unknown-key": (
        {"syncSchedules": [{"name": "a", "schedule": "* * * * *", "spec": {"schedule": "* * * * *"}}]},
        "at '/syncSchedules/0': additional properties 'schedule' not allowed",
    ),
}


def values_file(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    return path


@pytest.mark.parametrize("assignment", list(BAD_SETTINGS))
def test_schema_refuses_bad_setting(assignment: str) -> None:
    result = helm.template(set_values=[assignment])
    assert result.returncode != 0
    assert SCHEMA_FAILURE in result.stderr
    assert BAD_SETTINGS[assignment] in result.stderr


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_schema_refuses_bad_migration_values(tmp_path: Path, case: str) -> None:
    content, expected = BAD_FILES[case]
    result = helm.template(values_files=[values_file(tmp_path, content)])
    assert result.returncode != 0
    assert SCHEMA_FAILURE in result.stderr
    assert expected in result.stderr


def test_lint_refuses_bad_values_too() -> None:
    result = helm.lint(set_values=["operator.replicas=2"])
    assert result.returncode != 0
    assert "1 chart(s) failed" in result.output
    assert "at '/operator': additional properties 'replicas' not allowed" in result.output


def test_worker_namespaces_belong_to_cluster_wide_mode() -> None:
    result = helm.template(set_values=["watchNamespaces={a}", "workerNamespaces={b}"])
    assert result.returncode != 0
    assert "workerNamespaces is for cluster-wide mode only" in result.stderr


def test_migration_objects_must_be_in_watched_namespaces(tmp_path: Path) -> None:
    content = {
        "watchNamespaces": ["team-a"],
        "copyJobs": [{"name": "stray", "namespace": "team-b", "spec": {"mode": "copy"}}],
    }
    result = helm.template(values_files=[values_file(tmp_path, content)])
    assert result.returncode != 0
    assert (
        'CopyJob "stray" is in namespace "team-b", which the operator does not watch (watchNamespaces: team-a)'
        in (result.stderr)
    )
