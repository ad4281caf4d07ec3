"""The alerts and the Grafana dashboard query metrics the operator really exports."""

from __future__ import annotations

import json
import re
from typing import Any

from prometheus_client.core import Metric

from shareferry.controller.metrics import OperatorMetrics
from tests.chart.conftest import Manifests, one
from tests.support.helm import CHART

METRIC_NAME = re.compile(r"\bshareferry_[a-z0-9_]+")

SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}


def exported_series() -> set[str]:
    """Every series name the operator's registry can expose (counters as ``_total``, ...)."""
    metrics = OperatorMetrics()
    families: list[Metric] = list(metrics.registry.collect())
    names = {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}
    assert names
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (CHART / "dashboards" / "shareferry.json").read_text(encoding="utf-8")
    )
    return loaded


def test_required_alerts(rendered: dict[str, Manifests]) -> None:
    rule = one(rendered["all-features"], "PrometheusRule")
    alerts = {item["alert"]: item for group in rule["spec"]["groups"] for item in group["rules"]}
    failed = alerts["ShareFerryCopyJobFailed"]
    assert failed["expr"] == 'increase(shareferry_copyjob_runs_total{result="Failed"}[15m]) > 0'
    out_of_sync = alerts["ShareFerryScheduleOutOfSync"]
    assert out_of_sync["expr"] == "shareferry_schedule_out_of_sync == 1"
    assert out_of_sync["for"] == "15m"
    for alert in alerts.values():
        assert alert["labels"]["severity"] == "critical"
        assert alert["annotations"]["summary"]
        assert "{{ $labels.namespace }}" in alert["annotations"]["description"]


def test_alerts_query_exported_metrics(rendered: dict[str, Manifests]) -> None:
    rule = one(rendered["all-features"], "PrometheusRule")
    used = {
        name
        for group in rule["spec"]["groups"]
        for item in group["rules"]
        for name in METRIC_NAME.findall(item["expr"])
    }
    assert used
    assert used <= exported_series(), used - exported_series()


def test_dashboard_is_valid_and_queries_exported_metrics(rendered: dict[str, Manifests]) -> None:
    board = dashboard()
    assert board["uid"] == "shareferry"
    panels = board["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(set(ids)) == len(ids)
    expressions = [target["expr"] for panel in panels for target in panel["targets"]]
    variables = [
        variable["definition"] for variable in board["templating"]["list"] if "definition" in variable
    ]
    used = {name for text in expressions + variables for name in METRIC_NAME.findall(text)}
    assert used <= exported_series(), used - exported_series()
    families = {
        name.removesuffix(suffix)
        for name in used
        for suffix in ("_total", "_bucket")
        if name.endswith(suffix)
    }
    assert {"shareferry_copyjob_runs", "shareferry_copyjob_duration_seconds"} <= families
    shipped = one(rendered["all-features"], "ConfigMap")
    assert json.loads(shipped["data"]["shareferry.json"]) == board
