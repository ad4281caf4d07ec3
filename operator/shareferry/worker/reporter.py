"""Turn the core's progress into ShardReports and hand them to sinks, at most every interval.

A :class:`ShardReporter` is a core subscriber with its own :class:`Accounting` (the runner passes
it to ``run_copy``/``run_sync``). Every event may send the current report, but never sooner than
``interval`` seconds after the last one and never while one is still being sent; :meth:`start`
sends the first (Running) report and :meth:`finish` the final one, after any report in flight.

A report is the ShardReport of the design (camelCase, every key present, ``None`` where nothing
applies, so a JSON merge patch removes what an earlier attempt of the same shard left there):
``state, jobStatus, filesTotal, filesDone, filesFailed, filesSkipped, bytesTotal, bytesDone,
throughputBytesPerSecond, etaSeconds, startTime, updateTime, completionTime, failedFiles, md5,
error, reason, deleted``, plus ``percent``, ``bytesTransferred``, ``filesUnchanged``,
``filesNewerAtDestination`` (a sync's files kept because the destination is newer) and
``enumerationDone``. ``bytesDone`` counts the bytes of every settled file (skipped and failed
included) so progress reaches 100 %; ``bytesTransferred`` only what was sent. ``reason`` (see
:mod:`shareferry.worker.reasons`) is set when the shard failed or some of its files did.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from shareferry.api.conditions import rfc3339
from shareferry.api.names import ENV_STATUS_INTERVAL
from shareferry.core.accounting import Accounting, Clock, FileResult, Outcome, Snapshot
from shareferry.core.redact import redact
from shareferry.core.summary import JobStatus, JobSummary
from shareferry.worker.reasons import failure_reason

DEFAULT_STATUS_INTERVAL = 5.0
MAX_FAILED_FILES = 20
MAX_ERROR_CHARS = 300
MAX_JOB_ERROR_CHARS = 1000

Now = Callable[[], datetime]
Log = Callable[[str], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ShardState(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    COMPLETED_WITH_ERRORS = "CompletedWithErrors"
    FAILED = "Failed"


IN_PROGRESS = "InProgress"


def state_of(status: JobStatus) -> ShardState:
    """The shard's state for the core's final job status (skips are a success)."""
    if status in (JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_SKIPPED):
        return ShardState.SUCCEEDED
    if status is JobStatus.COMPLETED_WITH_ERRORS:
        return ShardState.COMPLETED_WITH_ERRORS
    return ShardState.FAILED


def status_interval(environ: Mapping[str, str]) -> float:
    """``SHAREFERRY_STATUS_INTERVAL`` in seconds (default 5; anything unreadable is the default)."""
    text = environ.get(ENV_STATUS_INTERVAL, "").strip()
    try:
        value = float(text) if text else DEFAULT_STATUS_INTERVAL
    except ValueError:
        return DEFAULT_STATUS_INTERVAL
    return value if value >= 0 else DEFAULT_STATUS_INTERVAL


def one_line(text: str, limit: int) -> str:
    """``text`` redacted, on one line, at most ``limit`` characters (an ellipsis when cut)."""
    folded = " ".join(part.strip() for part in redact(text).splitlines() if part.strip())
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


def failed_file(result: FileResult) -> dict[str, str]:
    return {"path": result.path, "error": one_line(result.error or "failed", MAX_ERROR_CHARS)}


def shard_report(
    counters: Snapshot,
    *,
    state: ShardState,
    job_status: str,
    start_time: datetime,
    update_time: datetime,
    completion_time: datetime | None = None,
    failed_files: Sequence[Mapping[str, str]] = (),
    md5: Mapping[str, Any] | None = None,
    error: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """One ShardReport (see the module docstring) from the counters at one moment."""
    eta = counters.eta_seconds if state is ShardState.RUNNING else None
    sync = counters.sync
    return {
        "state": state.value,
        "jobStatus": job_status,
        "percent": round(counters.percent, 1),
        "filesTotal": counters.file_transfers,
        "filesDone": counters.files_completed,
        "filesFailed": counters.files_failed,
        "filesSkipped": counters.files_skipped,
        "filesUnchanged": sync.files_unchanged if sync is not None else None,
        "filesNewerAtDestination": sync.files_newer_at_destination if sync is not None else None,
        "bytesTotal": max(counters.bytes_enumerated, counters.bytes_transferred + counters.bytes_settled),
        "bytesDone": counters.bytes_transferred + counters.bytes_settled,
        "bytesTransferred": counters.bytes_transferred,
        "enumerationDone": counters.enumeration_done,
        "throughputBytesPerSecond": int(counters.throughput),
        "etaSeconds": round(eta) if eta is not None else None,
        "startTime": rfc3339(start_time),
        "updateTime": rfc3339(update_time),
        "completionTime": rfc3339(completion_time) if completion_time is not None else None,
        "failedFiles": [dict(item) for item in failed_files[:MAX_FAILED_FILES]],
        "md5": dict(md5) if md5 is not None else None,
        "error": one_line(error, MAX_JOB_ERROR_CHARS) if error else None,
        "reason": reason,
        "deleted": sync.delete_completed if sync is not None else None,
    }


def failed_report(error: str, *, reason: str, start_time: datetime, now: datetime) -> dict[str, Any]:
    """The report of a shard that could not run at all (bad spec, no credentials...)."""
    counters = Accounting(clock=lambda: 0.0).snapshot()
    return shard_report(
        counters,
        state=ShardState.FAILED,
        job_status=JobStatus.FAILED.value,
        start_time=start_time,
        update_time=now,
        completion_time=now,
        error=error,
        reason=reason,
    )


class ShardSink(Protocol):
    """Where reports (and the MD5 results ConfigMap) go: the API server, a terminal, memory."""

    async def send(self, report: Mapping[str, Any], *, final: bool) -> None:
        """Deliver one report; a failure is the sink's to log, never the copy's."""

    async def store_results(self, configmap: Mapping[str, Any]) -> str | None:
        """Keep the results ConfigMap; where it went (a name, a file), or None when nowhere."""


class ShardReporter:
    """A core subscriber that sends the shard's report to ``sinks`` (see the module docstring).

    ``clock`` measures the interval and the job's rates (a fake one in tests), ``now`` stamps the
    reports."""

    def __init__(
        self,
        *,
        sinks: Sequence[ShardSink],
        interval: float = DEFAULT_STATUS_INTERVAL,
        clock: Clock = time.monotonic,
        now: Now = utc_now,
        log: Log | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self.interval = interval
        self.clock = clock
        self.now = now
        self.log = log or (lambda _text: None)
        self.accounting = Accounting(subscribers=[self], clock=clock)
        self.start_time = now()
        self.failed_files: list[dict[str, str]] = []
        self.sent = 0
        self._last_sent: float | None = None
        self._sending: asyncio.Task[None] | None = None

    # -- the core's events ----------------------------------------------------------------------

    def on_queued(self, path: str, size: int) -> None:
        self._maybe_send()

    def on_progress(self, nbytes: int) -> None:
        self._maybe_send()

    def on_done(self, result: FileResult) -> None:
        if result.outcome is Outcome.FAILED and len(self.failed_files) < MAX_FAILED_FILES:
            self.failed_files.append(failed_file(result))
        self._maybe_send()

    def on_enumerated(self) -> None:
        self._maybe_send()

    # -- reports ----------------------------------------------------------------------------------

    def current(self) -> dict[str, Any]:
        """The Running report for the counters now."""
        return shard_report(
            self.accounting.snapshot(),
            state=ShardState.RUNNING,
            job_status=IN_PROGRESS,
            start_time=self.start_time,
            update_time=self.now(),
            failed_files=self.failed_files,
        )

    def final(self, summary: JobSummary, *, md5: Mapping[str, Any] | None) -> dict[str, Any]:
        """The report of the finished job."""
        failed = self.failed_files or [failed_file(result) for result in summary.failures]
        reason = failure_reason(error=summary.error, file_errors=(item["error"] for item in failed))
        now = self.now()
        return shard_report(
            summary.counters,
            state=state_of(summary.status),
            job_status=summary.status.value,
            start_time=self.start_time,
            update_time=now,
            completion_time=now,
            failed_files=failed,
            md5=md5,
            error=summary.error,
            reason=reason,
        )

    async def start(self) -> None:
        """Send the first report: the shard is running."""
        self._last_sent = self.clock()
        await self._send(self.current(), final=False)

    async def finish(self, report: Mapping[str, Any]) -> None:
        """Send the final ``report``, after any report still in flight."""
        await self.settle()
        await self._send(report, final=True)

    async def settle(self) -> None:
        """Wait for the report in flight, if any."""
        if self._sending is not None:
            with contextlib.suppress(Exception):
                await self._sending
            self._sending = None

    def _maybe_send(self) -> None:
        if self._sending is not None and not self._sending.done():
            return
        moment = self.clock()
        if self._last_sent is not None and moment - self._last_sent < self.interval:
            return
        self._last_sent = moment
        self._sending = asyncio.get_running_loop().create_task(self._send(self.current(), final=False))

    async def _send(self, report: Mapping[str, Any], *, final: bool) -> None:
        self.sent += 1
        for sink in self.sinks:
            try:
                await sink.send(report, final=final)
            except Exception as exc:  # a sink must never fail the copy
                self.log(one_line(f"status report not delivered: {type(exc).__name__}: {exc}", 500))
