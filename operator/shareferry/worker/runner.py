"""Run one shard of a CopyJob through the core, report as it goes, and say how it ended.

:func:`run_shard` parses the spec, resolves both endpoints, builds the core request with the
API's options mapping, runs ``run_copy``/``run_sync`` with one environment per side and a
deterministic job id (resuming the plan an unfinished earlier attempt left, see
:mod:`shareferry.worker.resume`), sends ShardReports to its sinks while it runs, stores the MD5
results ConfigMap, sends the final report and returns it with the exit code:

* 0 every file done (skips are fine);
* 1 some files failed (a retry may finish them);
* 2 the spec cannot run as written (never worth a retry);
* 3 the job failed as a whole (credentials refused, share not found...).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shareferry.api.copyjob import build_request, parse_copyjob
from shareferry.api.errors import SpecError
from shareferry.core.accounting import Clock
from shareferry.core.errors import ShareFerryError, UsageError
from shareferry.core.jobowner import JobBusyError
from shareferry.core.jobs import CopyRequest, JobStatus, JobSummary, SyncRequest, run_copy, run_sync
from shareferry.core.redact import redact
from shareferry.worker.endpoints import resolve_endpoints, side_environs
from shareferry.worker.md5_results import Md5Collector, results_configmap
from shareferry.worker.reasons import INVALID_SPEC, reason_for_error
from shareferry.worker.reporter import (
    Log,
    Now,
    ShardReporter,
    ShardSink,
    ShardState,
    failed_report,
    shard_report,
    status_interval,
    utc_now,
)
from shareferry.worker.resume import should_resume

EXIT_SUCCEEDED = 0
EXIT_FILES_FAILED = 1
EXIT_BAD_SPEC = 2
EXIT_JOB_FAILED = 3

_JOB_ID_MAX = 128
_NOT_JOB_ID = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ShardOutcome:
    """The final report of the shard and the worker's exit code."""

    report: dict[str, Any]
    exit_code: int


def default_job_id(copyjob: Mapping[str, Any], shard_index: int) -> str:
    """``<uid>-<shard>``, or ``<namespace>-<name>-<shard>`` for a CopyJob that never met an API
    server; shortened with a hash to a valid job id."""
    meta = copyjob.get("metadata") or {}
    base = str(meta.get("uid") or f"{meta.get('namespace') or 'default'}-{meta.get('name') or 'copyjob'}")
    text = _NOT_JOB_ID.sub("-", base).strip("-._") or "copyjob"
    suffix = f"-{shard_index}"
    if len(text) + len(suffix) > _JOB_ID_MAX:
        digest = hashlib.sha256(base.encode()).hexdigest()[:12]
        text = f"{text[: _JOB_ID_MAX - len(suffix) - len(digest) - 1]}-{digest}"
    return text + suffix


def exit_code_of(summary: JobSummary) -> int:
    if summary.status in (JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_SKIPPED):
        return EXIT_SUCCEEDED
    if summary.error:
        return EXIT_JOB_FAILED
    return EXIT_FILES_FAILED


async def run_shard(
    copyjob: Mapping[str, Any],
    *,
    fileshares: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    shard_index: int,
    shard_count: int,
    sinks: Sequence[ShardSink],
    job_id: str | None = None,
    volumes: Mapping[str, str] | None = None,
    interval: float | None = None,
    log: Log | None = None,
    clock: Clock = time.monotonic,
    now: Now = utc_now,
) -> ShardOutcome:
    """Run shard ``shard_index`` of ``shard_count`` of the CopyJob object ``copyjob`` (see the
    module docstring).

    ``fileshares``: the FileShare objects it refers to, by name. ``environ``: the settings and
    both sides' credentials under their prefixes (the worker pod's environment). ``volumes``:
    claim name to local directory (``shareferry run``; None: the pod's mounts). ``interval``:
    seconds between reports (default ``SHAREFERRY_STATUS_INTERVAL`` or 5). ``log``: the core's
    warnings (retries, MD5 mismatches let through), one redacted line each.
    """
    say = log or (lambda _text: None)
    started = now()
    try:
        spec = parse_copyjob(copyjob.get("spec") or {})
        endpoints = resolve_endpoints(spec, fileshares=fileshares, environ=environ, volumes=volumes)
        request = build_request(
            spec,
            source=endpoints.source,
            destination=endpoints.destination,
            shard_index=shard_index,
            shard_count=shard_count,
            environ=environ,
        )
    except SpecError as exc:
        return await _fail(sinks, str(exc), exc.reason, EXIT_BAD_SPEC, started=started, now=now)
    except UsageError as exc:
        return await _fail(sinks, str(exc), INVALID_SPEC, EXIT_BAD_SPEC, started=started, now=now)

    job = job_id or default_job_id(copyjob, shard_index)
    reporter = ShardReporter(
        sinks=sinks,
        interval=status_interval(environ) if interval is None else interval,
        clock=clock,
        now=now,
        log=say,
    )
    reporter.start_time = started
    meta = copyjob.get("metadata") or {}
    with Md5Collector() as collector:

        def core_log(text: str) -> None:
            collector.on_log(text)
            say(redact(text))

        await reporter.start()
        try:
            summary = await _run(request, reporter, collector, core_log, environ=environ, job_id=job)
        except JobBusyError as exc:
            # The shard's plan is in use by another pod (one still stopping on the same state
            # volume): not a bad spec, so the Job retries this pod later.
            await reporter.settle()
            return await _fail(
                sinks, str(exc), reason_for_error(exc), EXIT_JOB_FAILED, started=started, now=now
            )
        except UsageError as exc:
            await reporter.settle()
            return await _fail(
                sinks, str(exc), reason_for_error(exc), EXIT_BAD_SPEC, started=started, now=now
            )
        except ShareFerryError as exc:
            await reporter.settle()
            return await _fail(
                sinks, str(exc), reason_for_error(exc), EXIT_JOB_FAILED, started=started, now=now
            )
        except (asyncio.CancelledError, KeyboardInterrupt):
            await _report_cancelled(reporter)
            raise
        built = results_configmap(
            collector,
            copyjob_name=str(meta.get("name") or "copyjob"),
            namespace=meta.get("namespace"),
            uid=meta.get("uid"),
            shard=shard_index,
        )
    stored = False
    for sink in sinks:
        try:
            stored = await sink.store_results(built.body) is not None or stored
        except Exception as exc:  # never fails the copy
            say(f"MD5 results not stored: {type(exc).__name__}: {redact(str(exc))}")
    md5 = {**built.summary, "configMap": built.body["metadata"]["name"] if stored else None}
    report = reporter.final(summary, md5=md5)
    await reporter.finish(report)
    return ShardOutcome(report, exit_code_of(summary))


async def _run(
    request: CopyRequest | SyncRequest,
    reporter: ShardReporter,
    collector: Md5Collector,
    log: Log,
    *,
    environ: Mapping[str, str],
    job_id: str,
) -> JobSummary:
    environs = side_environs(environ)
    resume = should_resume(request, job_id=job_id, environ=environ)
    if isinstance(request, SyncRequest):
        return await run_sync(
            request,
            subscribers=[collector],
            accounting=reporter.accounting,
            log=log,
            environ=environs,
            job_id=job_id,
            resume=resume,
        )
    return await run_copy(
        request,
        subscribers=[collector],
        accounting=reporter.accounting,
        log=log,
        environ=environs,
        job_id=job_id,
        resume=resume,
    )


async def _fail(
    sinks: Sequence[ShardSink], error: str, reason: str, exit_code: int, *, started: Any, now: Now
) -> ShardOutcome:
    """The shard could not run: one Failed report, sent once."""
    report = failed_report(redact(error), reason=reason, start_time=started, now=now())
    for sink in sinks:
        with contextlib.suppress(Exception):
            await sink.send(report, final=True)
    return ShardOutcome(report, exit_code)


async def _report_cancelled(reporter: ShardReporter) -> None:
    """Stopped from outside (the pod is being deleted): say so, if it can be said quickly."""
    moment = reporter.now()
    report = shard_report(
        reporter.accounting.snapshot(),
        state=ShardState.FAILED,
        job_status=JobStatus.CANCELLED.value,
        start_time=reporter.start_time,
        update_time=moment,
        completion_time=moment,
        failed_files=reporter.failed_files,
        error="the worker was stopped before the copy finished",
        reason="Cancelled",
    )
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(reporter.finish(report), timeout=10)
