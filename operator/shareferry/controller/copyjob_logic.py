"""A CopyJob's status, recomputed from the resource and its worker Job: pure functions.

On every pass the controller reads the CopyJob (with the ``status.shardReports`` its workers
patched) and its batch/v1 Job, and derives everything else here: the ``phase`` summary, the
``conditions`` (each with ``observedGeneration``), times, progress texts, counters and the MD5
results reference. Nothing is remembered between passes, so an operator restart loses nothing and
counts nothing twice: the transitions it reports (events, metrics) are the ones between the status
stored in the resource and the status computed now.

Conditions:

* ``Accepted``: the spec parsed and everything it refers to exists (False: ``InvalidSpec``,
  ``InvalidOptions``, ``MissingSecret``, ``FileShareNotFound``, ``FileShareNotReady``,
  ``JobNameInUse``: another Job, not this CopyJob's, has the worker Job's name).
* ``Running``: the worker Job has pods running and the copy has not ended.
* ``Complete``: every shard ended; reason ``Succeeded`` or ``CompletedWithErrors``.
* ``Failed``: the copy failed; reason from the worker (``AuthenticationFailed``,
  ``ShareNotFound``, ``QuotaExceeded``...) or the Job (``BackoffLimitExceeded``,
  ``DeadlineExceeded``).
* ``SpecChangeRefused``: the spec changed after the worker Job started; the workers keep running
  the spec they started with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shareferry.api.conditions import get_condition, parse_rfc3339, rfc3339, set_condition
from shareferry.api.copyjob_status import aggregate_status, phase_from

TERMINAL_PHASES = frozenset({"Succeeded", "CompletedWithErrors", "Failed"})
ACCEPTED, RUNNING, COMPLETE, FAILED, SPEC_CHANGE_REFUSED = (
    "Accepted",
    "Running",
    "Complete",
    "Failed",
    "SpecChangeRefused",
)


@dataclass(frozen=True)
class Transition:
    """One Kubernetes Event to post: ``type`` is Normal or Warning."""

    type: str
    reason: str
    message: str


def job_state(job: Mapping[str, Any] | None) -> str | None:
    """None (no Job yet), ``Active``, ``Complete`` or ``Failed``, from the Job's conditions."""
    if job is None:
        return None
    for condition in job.get("status", {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "Complete"
        if condition.get("type") in ("Failed", "FailureTarget"):
            return "Failed"
    return "Active"


def _job_failure(job: Mapping[str, Any] | None) -> tuple[str, str] | None:
    for condition in (job or {}).get("status", {}).get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            reason = str(condition.get("reason") or "JobFailed")
            message = str(condition.get("message") or "the worker Job failed")
            return reason, message
    return None


def _shard_failure(reports: Mapping[str, Mapping[str, Any]]) -> tuple[str, str] | None:
    for index in sorted(reports, key=_index_key):
        report = reports[index]
        if report.get("state") == "Failed":
            reason = str(report.get("reason") or "TransferFailed")
            error = str(report.get("error") or "the copy failed")
            return reason, f"shard {index}: {error}"
    return None


def _index_key(index: str) -> tuple[int, str]:
    return (int(index), index) if index.isdigit() else (1 << 30, index)


def _earliest(values: Sequence[Any]) -> str | None:
    present = sorted(str(value) for value in values if value)
    return present[0] if present else None


def _latest(values: Sequence[Any]) -> str | None:
    present = sorted(str(value) for value in values if value)
    return present[-1] if present else None


def copyjob_status(
    copyjob: Mapping[str, Any],
    job: Mapping[str, Any] | None,
    *,
    now: datetime,
) -> dict[str, Any]:
    """The status fields the controller owns (everything but ``shardReports``)."""
    spec = copyjob.get("spec", {})
    status = copyjob.get("status") or {}
    generation = copyjob.get("metadata", {}).get("generation")
    parallelism = int(spec.get("parallelism", 1))
    reports: Mapping[str, Mapping[str, Any]] = status.get("shardReports") or {}
    state = job_state(job)

    summary = aggregate_status(reports, parallelism=parallelism)
    phase = phase_from(reports, parallelism=parallelism, job_state=state)
    conditions: list[dict[str, Any]] = [dict(c) for c in status.get("conditions") or []]

    def put(kind: str, value: str, reason: str, message: str) -> None:
        nonlocal conditions
        conditions = set_condition(
            conditions,
            type=kind,
            status=value,
            reason=reason,
            message=message,
            generation=generation,
            now=now,
        )

    accepted = get_condition(conditions, ACCEPTED)
    if accepted is None or accepted.get("status") != "True":
        put(ACCEPTED, "True", "Accepted", "the spec is valid and its Secrets and FileShares exist")

    failure = _shard_failure(reports) or _job_failure(job) if phase == "Failed" else None
    running = phase == "Running"
    put(
        RUNNING,
        "True" if running else "False",
        "WorkersRunning" if running else phase,
        _running_message(summary, phase),
    )
    if phase in ("Succeeded", "CompletedWithErrors"):
        put(COMPLETE, "True", phase, _complete_message(summary, phase))
    else:
        put(COMPLETE, "False", phase, f"the copy is {phase.lower()}")
    if failure is not None:
        put(FAILED, "True", failure[0], failure[1][:1000])
    else:
        put(FAILED, "False", "NotFailed", "no failure")

    start = _earliest(
        [(job or {}).get("status", {}).get("startTime"), *(r.get("startTime") for r in reports.values())]
    )
    result: dict[str, Any] = {
        "phase": phase,
        "observedGeneration": generation,
        "jobName": (job or {}).get("metadata", {}).get("name"),
        "conditions": conditions,
        **summary,
    }
    if start:
        result["startTime"] = start
    if phase in TERMINAL_PHASES:
        end = (job or {}).get("status", {}).get("completionTime") or _latest(
            [r.get("completionTime") for r in reports.values()]
        )
        end = end or rfc3339(now)
        result["completionTime"] = end
        started, ended = parse_rfc3339(start), parse_rfc3339(end)
        if started and ended:
            result["durationSeconds"] = round(max(0.0, (ended - started).total_seconds()), 3)
    return {key: value for key, value in result.items() if value is not None}


def _running_message(summary: Mapping[str, Any], phase: str) -> str:
    progress = summary.get("progress") or {}
    if phase == "Running":
        return f"{progress.get('percentText', '0%')} done, {progress.get('bytesText', '')}".rstrip(", ")
    return f"the copy is {phase.lower()}"


def _complete_message(summary: Mapping[str, Any], phase: str) -> str:
    counters = summary.get("counters") or {}
    text = (
        f"{counters.get('filesTransferred', 0)} files transferred, {counters.get('filesFailed', 0)} failed, "
        f"{counters.get('filesSkipped', 0)} skipped"
    )
    return text if phase == "Succeeded" else f"{text}: see status.failedFiles"


def not_accepted_status(
    copyjob: Mapping[str, Any], *, reason: str, message: str, now: datetime, permanent: bool
) -> dict[str, Any]:
    """Status for a CopyJob that cannot start: ``Failed`` when no retry can help (a bad spec),
    ``Pending`` while waiting for something that may appear (a Secret, a FileShare)."""
    status = copyjob.get("status") or {}
    generation = copyjob.get("metadata", {}).get("generation")
    conditions = set_condition(
        status.get("conditions") or [],
        type=ACCEPTED,
        status="False",
        reason=reason,
        message=message,
        generation=generation,
        now=now,
    )
    if permanent:
        conditions = set_condition(
            conditions,
            type=FAILED,
            status="True",
            reason=reason,
            message=message,
            generation=generation,
            now=now,
        )
    result: dict[str, Any] = {
        "phase": "Failed" if permanent else "Pending",
        "observedGeneration": generation,
        "conditions": conditions,
    }
    if permanent:
        result["completionTime"] = rfc3339(now)
    return {key: value for key, value in result.items() if value is not None}


def spec_change_refused(
    copyjob: Mapping[str, Any], *, running_hash: str, new_hash: str, now: datetime
) -> list[dict[str, Any]]:
    """The conditions after a spec edit: refused while a Job runs another spec, cleared if the
    spec is back to the one running."""
    status = copyjob.get("status") or {}
    generation = copyjob.get("metadata", {}).get("generation")
    if running_hash == new_hash:
        return set_condition(
            status.get("conditions") or [],
            type=SPEC_CHANGE_REFUSED,
            status="False",
            reason="SpecUnchanged",
            message="the spec is the one the workers run",
            generation=generation,
            now=now,
        )
    return set_condition(
        status.get("conditions") or [],
        type=SPEC_CHANGE_REFUSED,
        status="True",
        reason="SpecImmutable",
        message=(
            "the spec cannot change once the copy has started: the workers keep running the spec they "
            "started with. Delete this CopyJob and create a new one to run a different copy."
        ),
        generation=generation,
        now=now,
    )


def transitions(old_phase: str | None, new_status: Mapping[str, Any]) -> list[Transition]:
    """The events a phase change is worth (none when the phase did not change)."""
    phase = new_status.get("phase")
    if phase == old_phase or phase is None:
        return []
    progress = new_status.get("progress") or {}
    if phase == "Running":
        return [Transition("Normal", "Started", "the workers started copying")]
    if phase == "Succeeded":
        return [
            Transition(
                "Normal",
                "Succeeded",
                _complete_message(new_status, phase) + f", {progress.get('bytesText', '')}",
            )
        ]
    if phase == "CompletedWithErrors":
        return [Transition("Warning", "CompletedWithErrors", _complete_message(new_status, phase))]
    if phase == "Failed":
        failed = get_condition(new_status.get("conditions") or [], FAILED) or {}
        return [
            Transition(
                "Warning",
                str(failed.get("reason") or "Failed"),
                str(failed.get("message") or "the copy failed"),
            )
        ]
    return []
