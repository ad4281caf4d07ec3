"""A CopyJob's status summed up from its shards' reports, and its phase.

Each worker shard patches only ``status.shardReports["<index>"]`` (so the merge patches of N
workers never collide). A report (camelCase) holds ``state`` (Running, Succeeded,
CompletedWithErrors, Failed), ``jobStatus`` (AzCopy's word), ``filesTotal``, ``filesDone``,
``filesFailed``, ``filesSkipped``, ``bytesTotal``, ``bytesDone``, ``throughputBytesPerSecond``,
``etaSeconds``, ``startTime``, ``updateTime``, ``completionTime``, ``failedFiles`` ([{path,
error}], at most :data:`MAX_FAILED_FILES`, errors at most :data:`MAX_ERROR_LENGTH` characters),
``md5`` ({configMap, files, verified, mismatched, missing, truncated, note}), ``error`` (one
line, for a Failed shard), ``deleted`` (sync deletions), ``filesNewerAtDestination`` (a sync's
files kept because the destination is newer) and, optionally, ``percent`` (the shard's own
progress; else it is derived from bytes, then files).

The controller and ``shareferry run`` both call :func:`aggregate_status` and :func:`phase_from`;
both are pure and tolerate missing or partial reports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from shareferry.core.humanize import human_bytes
from shareferry.core.redact import redact

SHARD_RUNNING = "Running"
SHARD_SUCCEEDED = "Succeeded"
SHARD_COMPLETED_WITH_ERRORS = "CompletedWithErrors"
SHARD_FAILED = "Failed"
SHARD_PENDING = "Pending"  # no report yet (shown in ``shards``; never written by a worker)
SHARD_STATES = (SHARD_RUNNING, SHARD_SUCCEEDED, SHARD_COMPLETED_WITH_ERRORS, SHARD_FAILED)
TERMINAL_SHARD_STATES = (SHARD_SUCCEEDED, SHARD_COMPLETED_WITH_ERRORS, SHARD_FAILED)

PENDING, RUNNING, SUCCEEDED, COMPLETED_WITH_ERRORS, FAILED = (
    "Pending",
    "Running",
    "Succeeded",
    "CompletedWithErrors",
    "Failed",
)
PHASES = (PENDING, RUNNING, SUCCEEDED, COMPLETED_WITH_ERRORS, FAILED)
TERMINAL_PHASES = (SUCCEEDED, COMPLETED_WITH_ERRORS, FAILED)

#: The batch Job's state, from its conditions: None (no Job, or no condition yet).
JOB_ACTIVE, JOB_COMPLETE, JOB_FAILED = "Active", "Complete", "Failed"

MAX_FAILED_FILES = 20
MAX_ERROR_LENGTH = 300


def one_line(text: str, limit: int = MAX_ERROR_LENGTH) -> str:
    """``text`` redacted, on one line, at most ``limit`` characters (cut with "…")."""
    flat = redact(" ".join(str(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def bounded_failed_files(
    items: Iterable[Mapping[str, Any]], limit: int = MAX_FAILED_FILES
) -> list[dict[str, str]]:
    """At most ``limit`` ``{path, error}`` entries, each error one bounded, redacted line."""
    bounded: list[dict[str, str]] = []
    for item in items:
        if len(bounded) >= limit:
            break
        bounded.append({"path": str(item.get("path", "")), "error": one_line(str(item.get("error") or ""))})
    return bounded


def aggregate_status(
    shard_reports: Mapping[str, Mapping[str, Any]] | None, *, parallelism: int
) -> dict[str, Any]:
    """The CopyJob's summary fields from the reports of its ``parallelism`` shards: ``progress``
    (percent: the mean of the shards' percents, a missing shard counting 0; texts for the
    printer columns), ``counters``, ``shards`` ([{index, state, percent}], plus ``error`` for a
    failed shard), ``failedFiles`` (at most :data:`MAX_FAILED_FILES` overall) and ``md5Results``."""
    reports = _reports(shard_reports, parallelism)
    present = [report for report in reports if report is not None]
    percents = [_shard_percent(report) for report in reports]
    percent = math.floor(10 * sum(percents) / max(1, parallelism)) / 10
    bytes_done, bytes_total = _sum(present, "bytesDone"), _sum(present, "bytesTotal")
    throughput = sum(_number(report, "throughputBytesPerSecond") for report in present)
    return {
        "progress": {
            "percent": percent,
            "percentText": f"{math.floor(percent)}%",
            "bytesText": f"{human_bytes(bytes_done)} / {human_bytes(bytes_total)}",
            "throughputText": f"{human_bytes(throughput)}/s",
            "etaSeconds": _eta(reports),
            "filesDone": _sum(present, "filesDone"),
            "filesTotal": _sum(present, "filesTotal"),
            "bytesDone": bytes_done,
            "bytesTotal": bytes_total,
        },
        "counters": {
            "filesTransferred": _sum(present, "filesDone"),
            "filesFailed": _sum(present, "filesFailed"),
            "filesSkipped": _sum(present, "filesSkipped"),
            # Only what was sent: bytesDone also counts skipped and failed files' bytes, so that
            # progress reaches 100 %. Reports without the field (older workers) fall back to it.
            "bytesTransferred": int(
                sum(
                    _number(report, "bytesTransferred" if "bytesTransferred" in report else "bytesDone")
                    for report in present
                )
            ),
            "filesDeleted": _sum(present, "deleted"),
            "filesNewerAtDestination": _sum(present, "filesNewerAtDestination"),
        },
        "shards": [_shard_entry(index, report, percents[index]) for index, report in enumerate(reports)],
        "failedFiles": bounded_failed_files(
            item for report in present for item in _failed_files(report) if isinstance(item, Mapping)
        ),
        "md5Results": _md5_results(present),
    }


def phase_from(
    shard_reports: Mapping[str, Mapping[str, Any]] | None, *, parallelism: int, job_state: str | None
) -> str:
    """The CopyJob's phase from its shards' reports and its batch Job's state (None, "Active",
    "Complete" or "Failed").

    When every shard has ended, the reports decide (all Succeeded: Succeeded; all Failed:
    Failed; otherwise CompletedWithErrors), except while the Job is still Active: a shard that
    did not succeed exits non-zero and may be retried, so it is Running until the Job ends. A
    Job that ended without every report: Complete is Succeeded (every worker exited 0), Failed
    is Failed. No Job state and no report: Pending; some report: Running.
    """
    reports = _reports(shard_reports, parallelism)
    states = [_state(report) for report in reports]
    ended = all(state in TERMINAL_SHARD_STATES for state in states)
    if job_state == JOB_ACTIVE:
        return SUCCEEDED if all(state == SHARD_SUCCEEDED for state in states) else RUNNING
    if ended:
        return _verdict(states)
    if job_state == JOB_COMPLETE:
        return SUCCEEDED
    if job_state == JOB_FAILED:
        return FAILED
    return RUNNING if any(report is not None for report in reports) else PENDING


def _verdict(states: list[str]) -> str:
    if all(state == SHARD_SUCCEEDED for state in states):
        return SUCCEEDED
    if all(state == SHARD_FAILED for state in states):
        return FAILED
    return COMPLETED_WITH_ERRORS


def _reports(
    shard_reports: Mapping[str, Mapping[str, Any]] | None, parallelism: int
) -> list[Mapping[str, Any] | None]:
    """One report (or None) per shard index, 0 .. parallelism - 1; other keys are ignored."""
    given: Mapping[Any, Any] = shard_reports or {}
    found: list[Mapping[str, Any] | None] = []
    for index in range(max(1, parallelism)):
        report = given.get(str(index), given.get(index))
        found.append(report if isinstance(report, Mapping) else None)
    return found


def _state(report: Mapping[str, Any] | None) -> str:
    if report is None:
        return SHARD_PENDING
    state = report.get("state")
    return state if state in SHARD_STATES else SHARD_RUNNING


def _number(report: Mapping[str, Any], key: str) -> float:
    value = report.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return max(0.0, float(value))


def _sum(reports: Iterable[Mapping[str, Any]], key: str) -> int:
    return int(sum(_number(report, key) for report in reports))


def _shard_percent(report: Mapping[str, Any] | None) -> float:
    """100 for a shard that ended; else its own ``percent``, or bytes done of bytes known, or
    files settled of files known."""
    if report is None:
        return 0.0
    if _state(report) in TERMINAL_SHARD_STATES:
        return 100.0
    if "percent" in report:
        return min(100.0, _number(report, "percent"))
    bytes_total = _number(report, "bytesTotal")
    if bytes_total > 0:
        return min(100.0, 100.0 * _number(report, "bytesDone") / bytes_total)
    files_total = _number(report, "filesTotal")
    if files_total > 0:
        settled = sum(_number(report, key) for key in ("filesDone", "filesFailed", "filesSkipped"))
        return min(100.0, 100.0 * settled / files_total)
    return 0.0


def _eta(reports: list[Mapping[str, Any] | None]) -> float | None:
    """Seconds until the last shard ends: 0 when all ended; None while any shard has not
    reported or a running one has no estimate."""
    etas: list[float] = []
    for report in reports:
        if report is None:
            return None
        if _state(report) in TERMINAL_SHARD_STATES:
            continue
        if not isinstance(report.get("etaSeconds"), int | float):
            return None
        etas.append(_number(report, "etaSeconds"))
    return max(etas, default=0.0)


def _shard_entry(index: int, report: Mapping[str, Any] | None, percent: float) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "index": index,
        "state": _state(report),
        "percent": math.floor(10 * percent) / 10,
    }
    if report is not None and report.get("error"):
        entry["error"] = one_line(str(report["error"]))
    return entry


def _failed_files(report: Mapping[str, Any]) -> list[Any]:
    items = report.get("failedFiles")
    return list(items) if isinstance(items, list | tuple) else []


def _md5_results(reports: list[Mapping[str, Any]]) -> dict[str, Any]:
    md5s = [report["md5"] for report in reports if isinstance(report.get("md5"), Mapping)]
    notes = [str(md5["note"]) for md5 in md5s if md5.get("note")]
    if any(md5.get("truncated") for md5 in md5s) and not notes:
        notes.append("some MD5 results were truncated: the ConfigMaps hold the first files only")
    results: dict[str, Any] = {
        "configMaps": [str(md5["configMap"]) for md5 in md5s if md5.get("configMap")],
        "files": _sum(md5s, "files"),
        "verified": _sum(md5s, "verified"),
        "mismatched": _sum(md5s, "mismatched"),
        "missing": _sum(md5s, "missing"),
    }
    if notes:
        results["note"] = one_line("; ".join(dict.fromkeys(notes)))
    return results
