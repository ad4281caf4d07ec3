"""ShardReports from the core's progress: what a report says, how often one is sent (an injected
clock), and that a sink that fails never fails the copy."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shareferry.core.accounting import FileResult, Outcome, SyncCounts
from shareferry.core.summary import JobStatus, JobSummary
from shareferry.worker.reporter import (
    MAX_ERROR_CHARS,
    MAX_FAILED_FILES,
    ShardReporter,
    ShardState,
    state_of,
    status_interval,
)

SAS_URL = "https://acct.file.core.windows.net/share/a.txt?sv=2024&sig=c2VjcmV0LXNpZw%3D%3D"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self, *, fail: bool = False) -> None:
        self.reports: list[tuple[dict[str, Any], bool]] = []
        self.fail = fail

    async def send(self, report: Mapping[str, Any], *, final: bool) -> None:
        if self.fail:
            raise ConnectionError("the API server is away")
        self.reports.append((dict(report), final))

    async def store_results(self, configmap: Mapping[str, Any]) -> str | None:
        return None


def wall_clock() -> datetime:
    return datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_reports_are_sent_at_most_every_interval_and_always_at_start_and_end() -> None:
    clock, sink = FakeClock(), Recorder()
    reporter = ShardReporter(sinks=[sink], interval=5, clock=clock, now=wall_clock)
    await reporter.start()
    assert [r["state"] for r, _ in sink.reports] == ["Running"]
    accounting = reporter.accounting
    for second in range(12):  # an event every second for 12 seconds
        clock.now += 1
        accounting.queued(f"f{second}.bin", 1000)
        accounting.progress(400)
        await settle()
    # at 105 and 110 (5 s after the start, then 5 s after that): two more, not 24
    assert len(sink.reports) == 3
    assert [final for _, final in sink.reports] == [False, False, False]
    latest = sink.reports[-1][0]
    # as known at 110, when the 10th file was queued (its bytes not yet sent)
    assert (latest["filesTotal"], latest["bytesTotal"], latest["bytesDone"]) == (10, 10_000, 3600)
    assert latest["state"] == "Running" and latest["jobStatus"] == "InProgress"

    accounting.finish_enumeration()
    summary = JobSummary(job_id="j", status=JobStatus.COMPLETED, counters=accounting.snapshot())
    await reporter.finish(reporter.final(summary, md5=None))
    report, final = sink.reports[-1]
    assert final and report["state"] == "Succeeded" and report["jobStatus"] == "Completed"
    assert report["completionTime"] == "2025-03-01T12:00:00Z" and report["etaSeconds"] is None


async def test_a_report_in_flight_holds_back_the_next_one() -> None:
    clock = FakeClock()
    gate = asyncio.Event()
    delivered: list[dict[str, Any]] = []

    class SlowSink(Recorder):
        async def send(self, report: Mapping[str, Any], *, final: bool) -> None:
            if not final:
                await gate.wait()
            delivered.append(dict(report))

    reporter = ShardReporter(sinks=[SlowSink()], interval=1, clock=clock, now=wall_clock)
    for step in range(5):  # each event is past the interval, but the first is still being sent
        clock.now += 2
        reporter.accounting.queued(f"f{step}", 10)
        await settle()
    assert delivered == []
    gate.set()
    await reporter.settle()
    assert len(delivered) == 1
    summary = JobSummary(job_id="j", status=JobStatus.COMPLETED, counters=reporter.accounting.snapshot())
    await reporter.finish(reporter.final(summary, md5=None))
    assert [r["state"] for r in delivered] == ["Running", "Succeeded"]


async def test_failed_files_are_bounded_one_line_and_redacted() -> None:
    sink = Recorder()
    reporter = ShardReporter(sinks=[sink], interval=3600, clock=FakeClock(), now=wall_clock)
    long_error = f"PUT {SAS_URL} failed:\n" + "x" * 1000
    for index in range(MAX_FAILED_FILES + 5):
        reporter.accounting.queued(f"dir/f{index}", 1)
        reporter.accounting.done(FileResult(f"dir/f{index}", 1, Outcome.FAILED, error=long_error))
    reporter.accounting.done(FileResult("dir/ok", 1, Outcome.COMPLETED, md5="00"))
    reporter.accounting.finish_enumeration()
    counters = reporter.accounting.snapshot()
    summary = JobSummary(job_id="j", status=JobStatus.COMPLETED_WITH_ERRORS, counters=counters)
    report = reporter.final(summary, md5=None)
    assert report["state"] == "CompletedWithErrors" and report["filesFailed"] == MAX_FAILED_FILES + 5
    assert report["reason"] == "TransferFailed"
    assert len(report["failedFiles"]) == MAX_FAILED_FILES
    for item in report["failedFiles"]:
        assert len(item["error"]) <= MAX_ERROR_CHARS
        assert "\n" not in item["error"] and "c2VjcmV0LXNpZw" not in item["error"]
    assert report["failedFiles"][0]["path"] == "dir/f0"


async def test_a_job_error_is_one_redacted_line_with_a_reason() -> None:
    reporter = ShardReporter(sinks=[], clock=FakeClock(), now=wall_clock)
    error = f"list {SAS_URL}: access denied, AuthenticationFailed (HTTP 403): check the SAS, key or token"
    summary = JobSummary(
        job_id="j", status=JobStatus.FAILED, counters=reporter.accounting.snapshot(), error=error
    )
    report = reporter.final(summary, md5=None)
    assert report["state"] == "Failed" and report["reason"] == "AuthenticationFailed"
    assert "c2VjcmV0LXNpZw" not in report["error"] and "access denied" in report["error"]


async def test_a_sink_that_fails_is_logged_and_the_others_still_get_the_report() -> None:
    logged: list[str] = []
    good = Recorder()
    reporter = ShardReporter(
        sinks=[Recorder(fail=True), good], clock=FakeClock(), now=wall_clock, log=logged.append
    )
    await reporter.start()
    assert len(good.reports) == 1
    assert logged == ["status report not delivered: ConnectionError: the API server is away"]


def test_the_state_of_each_final_job_status() -> None:
    assert state_of(JobStatus.COMPLETED) is ShardState.SUCCEEDED
    assert state_of(JobStatus.COMPLETED_WITH_SKIPPED) is ShardState.SUCCEEDED
    assert state_of(JobStatus.COMPLETED_WITH_ERRORS) is ShardState.COMPLETED_WITH_ERRORS
    assert state_of(JobStatus.FAILED) is ShardState.FAILED
    assert state_of(JobStatus.CANCELLED) is ShardState.FAILED


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, 5.0), ("2", 2.0), ("0.5", 0.5), ("soon", 5.0), ("-1", 5.0)]
)
def test_the_status_interval_comes_from_the_environment(value: str | None, seconds: float) -> None:
    environ = {} if value is None else {"SHAREFERRY_STATUS_INTERVAL": value}
    assert status_interval(environ) == seconds


def test_timestamps_are_utc_rfc3339() -> None:
    berlin = datetime(2025, 3, 1, 13, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    reporter = ShardReporter(sinks=[], now=lambda: berlin)
    assert reporter.current()["startTime"] == "2025-03-01T12:00:00Z"


def test_a_sync_report_counts_the_files_kept_because_the_destination_is_newer() -> None:
    reporter = ShardReporter(sinks=[], now=wall_clock)
    assert reporter.current()["filesNewerAtDestination"] is None  # a copy has no such files
    reporter.accounting.sync = SyncCounts(files_unchanged=4, files_newer_at_destination=2)
    report = reporter.current()
    assert (report["filesUnchanged"], report["filesNewerAtDestination"]) == (4, 2)
    assert report["filesSkipped"] == 0  # not transfers
