"""The operator's metrics as Prometheus scrapes them: over HTTP from ``serve()``, parsed as text
exposition, with the names, labels and values the handlers recorded and nothing sensitive."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from shareferry.controller.metrics import DURATION_BUCKETS, MetricsServer, OperatorMetrics

ALLOWED_LABELS = {"namespace", "mode", "result", "kind", "reason", "schedule", "fileshare", "le"}


@pytest.fixture
def metrics() -> OperatorMetrics:
    return OperatorMetrics()


@pytest.fixture
def server(metrics: OperatorMetrics) -> Iterator[MetricsServer]:
    running = metrics.serve(port=0, address="127.0.0.1")
    yield running
    running.close()


def scrape(server: MetricsServer) -> tuple[str, list[Sample]]:
    with urllib.request.urlopen(server.url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    return text, samples


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    found = [
        s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, f"{name} {labels} matches {len(found)} series"
    return found[0] if found else None


def test_copy_runs_are_counted_with_duration_bytes_files_and_md5(
    metrics: OperatorMetrics, server: MetricsServer
) -> None:
    metrics.copy_run_finished(
        namespace="data",
        mode="sync",
        result="Succeeded",
        duration_seconds=90.0,
        bytes_transferred=3 * 1024**3,
        files_transferred=1200,
        md5_mismatches=0,
    )
    metrics.copy_run_finished(
        namespace="data",
        mode="sync",
        result="CompletedWithErrors",
        duration_seconds=4000.0,
        bytes_transferred=10,
        files_transferred=2,
        md5_mismatches=2,
    )
    metrics.copy_run_finished(
        namespace="data",
        mode="copy",
        result="Failed",
        duration_seconds=None,
        bytes_transferred=0,
        files_transferred=0,
    )
    _, samples = scrape(server)
    assert (
        value(samples, "shareferry_copyjob_runs_total", namespace="data", mode="sync", result="Succeeded")
        == 1
    )
    assert value(samples, "shareferry_copyjob_runs_total", mode="sync", result="CompletedWithErrors") == 1
    assert value(samples, "shareferry_copyjob_runs_total", mode="copy", result="Failed") == 1
    histogram = "shareferry_copyjob_duration_seconds"
    succeeded = {"namespace": "data", "mode": "sync", "result": "Succeeded"}
    assert value(samples, f"{histogram}_count", **succeeded) == 1
    assert value(samples, f"{histogram}_sum", **succeeded) == 90.0
    assert value(samples, f"{histogram}_bucket", le="60.0", **succeeded) == 0
    assert value(samples, f"{histogram}_bucket", le="120.0", **succeeded) == 1
    assert value(samples, f"{histogram}_bucket", le="+Inf", **succeeded) == 1
    assert value(samples, f"{histogram}_count", mode="copy", result="Failed") is None  # no duration known
    assert (
        value(samples, "shareferry_transferred_bytes_total", namespace="data", mode="sync")
        == 3 * 1024**3 + 10
    )
    assert value(samples, "shareferry_transferred_files_total", namespace="data", mode="sync") == 1202
    assert value(samples, "shareferry_md5_mismatches_total", namespace="data") == 2


def test_duration_buckets_reach_from_a_second_to_a_day() -> None:
    assert DURATION_BUCKETS[0] == 1 and DURATION_BUCKETS[-1] == 24 * 3600
    assert list(DURATION_BUCKETS) == sorted(set(DURATION_BUCKETS))


def test_errors_schedules_and_fileshares(metrics: OperatorMetrics, server: MetricsServer) -> None:
    metrics.error_observed(namespace="data", kind="CopyJob", reason="MissingSecret")
    metrics.error_observed(namespace="data", kind="CopyJob", reason="MissingSecret")
    metrics.error_observed(namespace="data", kind="FileShare", reason="QuotaExceeded")
    metrics.schedule_observed(namespace="data", schedule="nightly", missed_runs=2, out_of_sync=True)
    metrics.schedule_observed(namespace="data", schedule="nightly", missed_runs=1, out_of_sync=False)
    metrics.schedule_observed(namespace="data", schedule="hourly", missed_runs=0, out_of_sync=False)
    metrics.fileshare_observed(
        namespace="data", fileshare="reports", ready=True, quota_bytes=100 * 1024**3, usage_bytes=5 * 1024**2
    )
    metrics.fileshare_observed(namespace="data", fileshare="pending", ready=False)
    _, samples = scrape(server)
    assert value(samples, "shareferry_errors_total", kind="CopyJob", reason="MissingSecret") == 2
    assert value(samples, "shareferry_errors_total", kind="FileShare", reason="QuotaExceeded") == 1
    assert value(samples, "shareferry_schedule_missed_runs_total", namespace="data", schedule="nightly") == 3
    assert value(samples, "shareferry_schedule_missed_runs_total", schedule="hourly") == 0
    assert value(samples, "shareferry_schedule_out_of_sync", schedule="nightly") == 0
    assert value(samples, "shareferry_fileshare_ready", fileshare="reports") == 1
    assert value(samples, "shareferry_fileshare_quota_bytes", fileshare="reports") == 100 * 1024**3
    assert value(samples, "shareferry_fileshare_usage_bytes", fileshare="reports") == 5 * 1024**2
    assert value(samples, "shareferry_fileshare_ready", fileshare="pending") == 0
    assert value(samples, "shareferry_fileshare_quota_bytes", fileshare="pending") is None


def test_forgotten_objects_leave_the_exposition(metrics: OperatorMetrics, server: MetricsServer) -> None:
    metrics.schedule_observed(namespace="data", schedule="nightly", missed_runs=1, out_of_sync=True)
    metrics.fileshare_observed(
        namespace="data", fileshare="reports", ready=True, quota_bytes=1, usage_bytes=1
    )
    metrics.fileshare_observed(namespace="data", fileshare="other-share", ready=True)
    metrics.forget_schedule(namespace="data", schedule="nightly")
    metrics.forget_fileshare(namespace="data", fileshare="reports")
    metrics.forget_fileshare(namespace="data", fileshare="never-seen")  # no error
    _, samples = scrape(server)
    assert not [
        s for s in samples if s.labels.get("schedule") == "nightly" or s.labels.get("fileshare") == "reports"
    ]
    assert value(samples, "shareferry_fileshare_ready", fileshare="other-share") == 1


def test_no_sensitive_or_unbounded_label_ever_reaches_the_exposition(
    metrics: OperatorMetrics, server: MetricsServer
) -> None:
    url = "https://acct.file.core.windows.net/share/dir?sv=2022&sig=c2VjcmV0"
    metrics.copy_run_finished(
        namespace=url,
        mode="/mnt/data",
        result="it broke: AuthenticationFailed",
        duration_seconds=1.0,
        bytes_transferred=1,
        files_transferred=1,
    )
    metrics.error_observed(namespace="data", kind="Secret/acct-key", reason="failed to read /etc/secret/key")
    metrics.schedule_observed(namespace="data", schedule="C:\\share\\path", missed_runs=1, out_of_sync=False)
    text, samples = scrape(server)
    for forbidden in ("sig=", "://", "/mnt", "/etc", "acct", "\\\\"):
        assert forbidden not in text
    assert (
        value(samples, "shareferry_copyjob_runs_total", namespace="other", mode="other", result="Other") == 1
    )
    assert value(samples, "shareferry_errors_total", kind="Other", reason="Other") == 1
    names = {name for sample in samples for name in sample.labels}
    assert names <= ALLOWED_LABELS
    families = {s.name for s in samples}
    assert all(name.startswith("shareferry_") for name in families)


def test_every_documented_metric_is_exported(metrics: OperatorMetrics, server: MetricsServer) -> None:
    metrics.copy_run_finished(
        namespace="n",
        mode="copy",
        result="Succeeded",
        duration_seconds=1,
        bytes_transferred=1,
        files_transferred=1,
    )
    metrics.error_observed(namespace="n", kind="CopyJob", reason="X")
    metrics.schedule_observed(namespace="n", schedule="s", missed_runs=0, out_of_sync=False)
    metrics.fileshare_observed(namespace="n", fileshare="f", ready=True, quota_bytes=1, usage_bytes=1)
    _, samples = scrape(server)
    exported = {s.name for s in samples}
    for name in (
        "shareferry_copyjob_runs_total",
        "shareferry_copyjob_duration_seconds_bucket",
        "shareferry_transferred_bytes_total",
        "shareferry_transferred_files_total",
        "shareferry_md5_mismatches_total",
        "shareferry_errors_total",
        "shareferry_schedule_missed_runs_total",
        "shareferry_schedule_out_of_sync",
        "shareferry_fileshare_ready",
        "shareferry_fileshare_quota_bytes",
        "shareferry_fileshare_usage_bytes",
    ):
        assert name in exported


def test_each_instance_has_a_registry_of_its_own() -> None:
    first, second = OperatorMetrics(), OperatorMetrics()
    first.error_observed(namespace="n", kind="CopyJob", reason="X")
    body, content_type = second.render()
    assert b"shareferry_errors_total{" not in body
    assert content_type.startswith("text/plain")
    assert b'shareferry_errors_total{kind="CopyJob",namespace="n",reason="X"} 1.0' in first.render()[0]


def test_close_stops_serving(metrics: OperatorMetrics) -> None:
    running = metrics.serve(port=0, address="127.0.0.1")
    url = running.url
    assert url.endswith("/metrics")
    running.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)
