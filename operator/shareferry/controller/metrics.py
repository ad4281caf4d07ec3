"""The operator's Prometheus metrics: one registry of its own, methods the handlers call, ``/metrics``.

Every series carries only low-cardinality labels: a namespace, a mode, a result, an object kind,
a CamelCase reason, and the name of a SyncSchedule or FileShare (one series per object, removed
by :meth:`OperatorMetrics.forget_schedule` / :meth:`OperatorMetrics.forget_fileshare` when the
object goes away). Never a CopyJob name (a schedule makes new ones forever), a path, a URL, an
account or a key: a label value that does not look like what its label promises is replaced by
``other`` (or ``Other`` for the CamelCase labels) rather than exported.

The metrics live in their own :class:`~prometheus_client.CollectorRegistry`, not the process-wide
default, so every :class:`OperatorMetrics` (one per operator, one per test) starts from zero.

Exported series (counters also get the client's ``_created`` companion):

=============================================  ======================================  =========
name                                           labels                                  type
=============================================  ======================================  =========
shareferry_copyjob_runs_total                  namespace, mode, result                 counter
shareferry_copyjob_duration_seconds            namespace, mode, result                 histogram
shareferry_transferred_bytes_total             namespace, mode                         counter
shareferry_transferred_files_total             namespace, mode                         counter
shareferry_md5_mismatches_total                namespace                               counter
shareferry_errors_total                        namespace, kind, reason                 counter
shareferry_schedule_missed_runs_total          namespace, schedule                     counter
shareferry_schedule_out_of_sync                namespace, schedule                     gauge 0/1
shareferry_fileshare_ready                     namespace, fileshare                    gauge 0/1
shareferry_fileshare_quota_bytes               namespace, fileshare                    gauge
shareferry_fileshare_usage_bytes               namespace, fileshare                    gauge
=============================================  ======================================  =========
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

DURATION_BUCKETS: tuple[float, ...] = (
    1,
    5,
    15,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
    7200,
    14400,
    28800,
    43200,
    86400,
)
"""Seconds: from a one-second copy of a few files to a day-long migration (then +Inf)."""

RESULTS = frozenset({"Succeeded", "CompletedWithErrors", "Failed"})
MODES = frozenset({"copy", "sync"})
KINDS = frozenset({"CopyJob", "FileShare", "SyncSchedule"})

_OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_REASON = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")


def _object_name(value: str) -> str:
    """A Kubernetes namespace or object name; anything else (a path, a URL) becomes ``other``."""
    return value if _OBJECT_NAME.match(value) else "other"


def _one_of(value: str, allowed: frozenset[str], fallback: str) -> str:
    return value if value in allowed else fallback


def _reason(value: str) -> str:
    """A condition-style CamelCase reason ("MissingSecret"); free text becomes ``Other``."""
    return value if _REASON.match(value) else "Other"


@dataclass
class MetricsServer:
    """The running ``/metrics`` endpoint (a daemon thread); :meth:`close` stops it."""

    address: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class OperatorMetrics:
    """The operator's metrics. Methods are safe to call from any thread or coroutine."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._runs = Counter(
            "shareferry_copyjob_runs",
            "Finished CopyJob runs by mode and result (Succeeded, CompletedWithErrors, Failed).",
            ["namespace", "mode", "result"],
            registry=r,
        )
        self._duration = Histogram(
            "shareferry_copyjob_duration_seconds",
            "Wall-clock duration of finished CopyJob runs.",
            ["namespace", "mode", "result"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self._bytes = Counter(
            "shareferry_transferred_bytes",
            "Bytes transferred by finished CopyJob runs.",
            ["namespace", "mode"],
            registry=r,
        )
        self._files = Counter(
            "shareferry_transferred_files",
            "Files transferred by finished CopyJob runs.",
            ["namespace", "mode"],
            registry=r,
        )
        self._md5_mismatches = Counter(
            "shareferry_md5_mismatches",
            "Files whose MD5 did not match after a transfer.",
            ["namespace"],
            registry=r,
        )
        self._errors = Counter(
            "shareferry_errors",
            "Errors the operator reported as conditions, by object kind and reason.",
            ["namespace", "kind", "reason"],
            registry=r,
        )
        self._missed = Counter(
            "shareferry_schedule_missed_runs",
            "Scheduled SyncSchedule runs that never started (missed deadline, superseded, suspended).",
            ["namespace", "schedule"],
            registry=r,
        )
        self._out_of_sync = Gauge(
            "shareferry_schedule_out_of_sync",
            "1 when two or more scheduled times of a SyncSchedule came due since its last success "
            "(or its creation) and it is not suspended, else 0.",
            ["namespace", "schedule"],
            registry=r,
        )
        self._share_ready = Gauge(
            "shareferry_fileshare_ready",
            "1 when a FileShare's Azure share exists and matches its spec, else 0.",
            ["namespace", "fileshare"],
            registry=r,
        )
        self._share_quota = Gauge(
            "shareferry_fileshare_quota_bytes",
            "The quota of a FileShare's Azure share, in bytes.",
            ["namespace", "fileshare"],
            registry=r,
        )
        self._share_usage = Gauge(
            "shareferry_fileshare_usage_bytes",
            "The bytes stored in a FileShare's Azure share, as Azure reports it.",
            ["namespace", "fileshare"],
            registry=r,
        )

    # -- CopyJobs ---------------------------------------------------------------------------

    def copy_run_finished(
        self,
        *,
        namespace: str,
        mode: str,
        result: str,
        duration_seconds: float | None,
        bytes_transferred: int,
        files_transferred: int,
        md5_mismatches: int = 0,
    ) -> None:
        """Record one CopyJob run that reached a terminal phase (call once per run)."""
        ns = _object_name(namespace)
        mode_label = _one_of(mode, MODES, "other")
        result_label = _one_of(result, RESULTS, "Other")
        self._runs.labels(ns, mode_label, result_label).inc()
        if duration_seconds is not None and duration_seconds >= 0:
            self._duration.labels(ns, mode_label, result_label).observe(duration_seconds)
        self._bytes.labels(ns, mode_label).inc(max(0, bytes_transferred))
        self._files.labels(ns, mode_label).inc(max(0, files_transferred))
        self._md5_mismatches.labels(ns).inc(max(0, md5_mismatches))

    def error_observed(self, *, namespace: str, kind: str, reason: str) -> None:
        """Count an error condition (``reason`` as in the condition: "MissingSecret", ...)."""
        self._errors.labels(_object_name(namespace), _one_of(kind, KINDS, "Other"), _reason(reason)).inc()

    # -- SyncSchedules ----------------------------------------------------------------------

    def schedule_observed(
        self, *, namespace: str, schedule: str, missed_runs: int, out_of_sync: bool
    ) -> None:
        """After a schedule decision: add the runs it newly declared missed, set the gauge."""
        labels = (_object_name(namespace), _object_name(schedule))
        self._missed.labels(*labels).inc(max(0, missed_runs))
        self._out_of_sync.labels(*labels).set(1 if out_of_sync else 0)

    def forget_schedule(self, *, namespace: str, schedule: str) -> None:
        """The SyncSchedule is gone: drop its series."""
        labels = (_object_name(namespace), _object_name(schedule))
        for metric in (self._missed, self._out_of_sync):
            with contextlib.suppress(KeyError):
                metric.remove(*labels)

    # -- FileShares -------------------------------------------------------------------------

    def fileshare_observed(
        self,
        *,
        namespace: str,
        fileshare: str,
        ready: bool,
        quota_bytes: int | None = None,
        usage_bytes: int | None = None,
    ) -> None:
        """Set a FileShare's gauges; an unknown quota or usage (None) removes that series."""
        labels = (_object_name(namespace), _object_name(fileshare))
        self._share_ready.labels(*labels).set(1 if ready else 0)
        for metric, value in ((self._share_quota, quota_bytes), (self._share_usage, usage_bytes)):
            if value is None:
                with contextlib.suppress(KeyError):
                    metric.remove(*labels)
            else:
                metric.labels(*labels).set(value)

    def forget_fileshare(self, *, namespace: str, fileshare: str) -> None:
        """The FileShare is gone: drop its series."""
        labels = (_object_name(namespace), _object_name(fileshare))
        for metric in (self._share_ready, self._share_quota, self._share_usage):
            with contextlib.suppress(KeyError):
                metric.remove(*labels)

    # -- exposition -------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The text exposition of this registry and its content type (for an own HTTP handler)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def serve(self, *, port: int, address: str = "0.0.0.0") -> MetricsServer:
        """Serve this registry over HTTP on ``address:port`` (``port=0``: a free port) in a daemon
        thread, with prometheus_client's own server: ``GET /metrics`` (any path answers the
        same; gzip when asked). Returns the running server; :meth:`MetricsServer.close` stops it."""
        server, thread = start_http_server(port, addr=address, registry=self.registry)
        bound_address, bound_port = server.server_address[:2]
        return MetricsServer(address=str(bound_address), port=int(bound_port), _server=server, _thread=thread)
