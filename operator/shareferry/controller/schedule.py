"""SyncSchedule decisions: from a schedule, what it has done so far and the time, what to do now.

Pure: no API calls and no clock of its own (``now`` is passed in), so every rule below is tested
with an injected clock. A handler calls :func:`decide` on a timer (after ``requeue_after``
seconds), on any spec change and whenever one of the schedule's CopyJobs changes phase, then
carries the decision out: delete ``delete_active`` (Replace), create ``run`` with
:func:`build_copyjob_from_template`, delete ``delete_finished`` (history), patch ``status``, post
``events``, and feed ``missed_runs`` / ``out_of_sync`` to the metrics.

Semantics follow the Kubernetes CronJob controller (v2, the one in kube-controller-manager):

* **Due times.** The scheduled times in ``(anchor, now]`` are due, where the anchor is the later
  of ``status.lastScheduleTime`` and ``status.lastMissedTime``, else the creation time (else,
  when the API server did not set one, the ``nextScheduleTime`` announced earlier, else ``now``).
  Only the latest due time can start; the earlier ones are missed.
* **startingDeadlineSeconds.** If the latest due time is more than that many seconds ago it does
  not start: every due time is missed (Event ``MissSchedule``). Without a deadline a late run
  starts however late it is (e.g. after a controller outage or when suspend is lifted).
* **More than 100 due times** (counted within the deadline window when there is one): a
  Warning Event ``TooManyMissedTimes``, and the latest still starts -- as the v2 controller does
  (the older controller and the CronJob docs say it refuses to start; the current code only warns).
* **concurrencyPolicy.** ``Allow`` starts regardless; ``Replace`` deletes the active CopyJobs and
  starts; ``Forbid`` with an active CopyJob does not start and does *not* advance
  ``lastScheduleTime``: the due time waits and starts as soon as the active run ends, if that
  is within the deadline and no later time has come due meanwhile (Event ``JobAlreadyActive``).
* **suspend.** No scheduled time starts and nothing is advanced: times that came due while
  suspended are handled when suspend is lifted (the latest starts if within the deadline, the
  rest are missed). History pruning, ``active`` and ``lastSuccessfulTime`` carry on.
* **Manual trigger.** ``spec.trigger`` non-empty and different from ``status.lastTrigger`` asks
  for one run now, **also while suspended** (like ``kubectl create job --from=cronjob/...``),
  within the concurrency policy: Replace deletes the active run, Forbid waits until it ends
  (``trigger_deferred``). A trigger that arrives while a scheduled run starts is answered by
  that run. The value is recorded in ``status.lastTrigger`` once handled; setting the same value
  again does nothing, a new value (a timestamp) runs again. The first value ever set runs too.
* **Names.** A scheduled run is ``<schedule>-<unix minutes of the scheduled time>`` (as a
  CronJob names its Jobs); a manual run is ``<schedule>-manual-<10 hex digits>`` (a hash of the
  schedule's uid, generation and trigger value). Both are deterministic: a CopyJob that already
  exists under the name is a run already started (its status write was lost), not a new one.
* **Missed runs** are counted exactly once, when they become certain (superseded by a later due
  time or past the deadline): ``missed_runs`` is the number newly missed by this decision (for
  the counter metric), ``status.missedRuns`` the running total. ``status.lastMissedTime`` (an
  addition to the CronJob's fields, the watermark the CronJob controller's own TODO asks for)
  keeps a missed time from being counted again.
* **History.** Finished CopyJobs beyond ``successfulJobsHistoryLimit`` (phase Succeeded) and
  ``failedJobsHistoryLimit`` (CompletedWithErrors or Failed) are deleted, oldest first.
  ``lastSuccessfulTime`` is the latest completion time of a Succeeded CopyJob (kept in status
  after the CopyJob is pruned).
* **CopyJobs of another owner** (a controller ownerReference with a different uid, e.g. left
  over from an earlier object of the same name) are ignored, as the CronJob controller does.
* **Out of sync** (the ``shareferry_schedule_out_of_sync`` gauge): not suspended, and at least
  two scheduled times have come due since the last success (``lastSuccessfulTime``, or the
  creation time when it never succeeded). One failed or still-running run is tolerated; two
  schedule periods without a success are not. Counting scheduled times instead of durations
  makes it right for irregular schedules (weekdays only, month ends).
* **Wake-up.** ``requeue_after`` is the time until ``nextScheduleTime`` plus 0.1 s, capped
  (default 300 s, so a skewed clock or a lost event heals); the cap when nothing is scheduled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shareferry.api import names
from shareferry.api.conditions import parse_rfc3339, rfc3339
from shareferry.api.syncschedule import ConcurrencyPolicy, CronSchedule, SyncScheduleSpec, parse_syncschedule

ACTIVE_PHASES = frozenset({"Pending", "Running"})
SUCCEEDED_PHASE = "Succeeded"
FAILED_PHASES = frozenset({"CompletedWithErrors", "Failed"})
TOO_MANY_MISSED = 100
MAX_WAKE_SECONDS = 300.0
WAKE_MARGIN_SECONDS = 0.1
_EXACT_COUNT_LIMIT = 1000
"""Due times are counted one by one up to this many; beyond it the count is estimated."""
_EPSILON = timedelta(microseconds=1)


class SkipReason(StrEnum):
    """Why a due scheduled time did not start a CopyJob."""

    SUSPENDED = "Suspended"
    CONCURRENCY_FORBID = "ConcurrencyForbid"
    DEADLINE_EXCEEDED = "DeadlineExceeded"


@dataclass(frozen=True)
class ChildCopyJob:
    """What a decision needs to know of one CopyJob the schedule created."""

    name: str
    created: datetime | None = None
    phase: str | None = None
    """None: no status yet (counts as Pending)."""
    completed: datetime | None = None
    scheduled: datetime | None = None
    owner_uid: str | None = None
    """The uid of its controller ownerReference, when it has one."""

    @property
    def succeeded(self) -> bool:
        return self.phase == SUCCEEDED_PHASE

    @property
    def failed(self) -> bool:
        return self.phase in FAILED_PHASES

    @property
    def active(self) -> bool:
        return not (self.succeeded or self.failed)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ChildCopyJob:
        metadata = body.get("metadata") or {}
        status = body.get("status") or {}
        annotations = metadata.get("annotations") or {}
        owner = next(
            (ref for ref in metadata.get("ownerReferences") or () if ref.get("controller")),
            None,
        )
        return cls(
            name=str(metadata.get("name", "")),
            created=parse_time(metadata.get("creationTimestamp")),
            phase=status.get("phase") or None,
            completed=parse_time(status.get("completionTime")),
            scheduled=parse_time(annotations.get(names.ANNOTATION_SCHEDULED_TIME)),
            owner_uid=(owner or {}).get("uid") or None,
        )


@dataclass(frozen=True)
class ScheduleState:
    """What the schedule has done so far: its metadata, its status, its CopyJobs."""

    name: str
    created: datetime | None = None
    uid: str | None = None
    generation: int | None = None
    last_schedule_time: datetime | None = None
    last_missed_time: datetime | None = None
    last_successful_time: datetime | None = None
    next_schedule_time: datetime | None = None
    last_trigger: str | None = None
    missed_runs: int = 0
    copyjobs: tuple[ChildCopyJob, ...] = ()

    @classmethod
    def from_body(cls, body: Mapping[str, Any], copyjobs: Iterable[Mapping[str, Any]] = ()) -> ScheduleState:
        """From the SyncSchedule object and the CopyJobs listed by its label."""
        metadata = body.get("metadata") or {}
        status = body.get("status") or {}
        generation = metadata.get("generation")
        missed = status.get("missedRuns")
        return cls(
            name=str(metadata.get("name", "")),
            created=parse_time(metadata.get("creationTimestamp")),
            uid=metadata.get("uid") or None,
            generation=generation if isinstance(generation, int) else None,
            last_schedule_time=parse_time(status.get("lastScheduleTime")),
            last_missed_time=parse_time(status.get("lastMissedTime")),
            last_successful_time=parse_time(status.get("lastSuccessfulTime")),
            next_schedule_time=parse_time(status.get("nextScheduleTime")),
            last_trigger=status.get("lastTrigger") or None,
            missed_runs=missed if isinstance(missed, int) and missed >= 0 else 0,
            copyjobs=tuple(ChildCopyJob.from_body(item) for item in copyjobs),
        )


@dataclass(frozen=True)
class PlannedRun:
    """A CopyJob to create now."""

    name: str
    scheduled_time: datetime
    """The scheduled time it runs for (UTC); for a manual run, ``now``."""
    trigger: str | None = None
    """The ``spec.trigger`` value a manual run answers; None for a scheduled run."""

    @property
    def manual(self) -> bool:
        return self.trigger is not None


@dataclass(frozen=True)
class ScheduleEvent:
    """A Kubernetes Event to post on the SyncSchedule."""

    type: str
    """Normal or Warning."""
    reason: str
    message: str


@dataclass(frozen=True)
class ScheduleDecision:
    run: PlannedRun | None
    delete_active: tuple[str, ...]
    """Active CopyJobs to delete before ``run`` is created (Replace)."""
    delete_finished: tuple[str, ...]
    """Finished CopyJobs beyond the history limits, oldest first."""
    skipped: SkipReason | None
    """Why a due scheduled time did not start (None: nothing was due, or it started)."""
    trigger_deferred: bool
    """A manual trigger waits for the active run to end (Forbid)."""
    missed_runs: int
    """Scheduled times this decision newly declared missed (add to the counter)."""
    too_many_missed: bool
    out_of_sync: bool
    next_schedule_time: datetime | None
    requeue_after: float
    """Seconds until the handler should decide again."""
    status: dict[str, Any]
    """The status fields to merge-patch (camelCase; None deletes a field)."""
    events: tuple[ScheduleEvent, ...] = field(default=())


@dataclass(frozen=True)
class _Due:
    count: int
    latest: datetime | None
    before_latest: datetime | None


@dataclass
class _Draft:
    """The decision being built."""

    last_schedule: datetime | None
    last_missed: datetime | None
    last_trigger: str | None
    run: PlannedRun | None = None
    delete_active: tuple[str, ...] = ()
    skipped: SkipReason | None = None
    trigger_deferred: bool = False
    missed: int = 0
    too_many: bool = False
    events: list[ScheduleEvent] = field(default_factory=list)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append(ScheduleEvent(type=type_, reason=reason, message=message))


def decide(
    spec: SyncScheduleSpec,
    state: ScheduleState,
    *,
    now: datetime,
    max_wake_seconds: float = MAX_WAKE_SECONDS,
) -> ScheduleDecision:
    """What to do now (see the module's docstring for the rules)."""
    now = _utc(now)
    owned = [job for job in state.copyjobs if _owned_by(job, state)]
    active = sorted((job for job in owned if job.active), key=_age)
    taken = {job.name for job in owned}
    draft = _Draft(
        last_schedule=state.last_schedule_time,
        last_missed=state.last_missed_time,
        last_trigger=state.last_trigger,
    )
    if spec.suspend:
        if spec.cron.times(after=_anchor(state, now), until=now, limit=1):
            draft.skipped = SkipReason.SUSPENDED
    else:
        _scheduled(spec, state, now=now, active=active, taken=taken, draft=draft)
    _manual(spec, state, now=now, active=active, taken=taken, draft=draft)

    last_success = _last_success(state, owned)
    next_time = None if spec.suspend else spec.cron.next_after(now)
    reference = last_success or state.created or _anchor(state, now)
    still_active = [job.name for job in active if job.name not in draft.delete_active]
    if draft.run is not None:
        still_active.append(draft.run.name)
    if next_time is None:
        wake = max_wake_seconds
    else:
        wake = min(max_wake_seconds, max(0.0, (next_time - now).total_seconds()) + WAKE_MARGIN_SECONDS)
    status: dict[str, Any] = {
        "lastScheduleTime": format_time(draft.last_schedule),
        "lastMissedTime": format_time(draft.last_missed),
        "nextScheduleTime": format_time(next_time),
        "lastSuccessfulTime": format_time(last_success),
        "active": still_active,
        "activeCount": len(still_active),
        "lastTrigger": draft.last_trigger,
        "missedRuns": state.missed_runs + draft.missed,
    }
    return ScheduleDecision(
        run=draft.run,
        delete_active=draft.delete_active,
        delete_finished=_beyond_history(spec, owned),
        skipped=draft.skipped,
        trigger_deferred=draft.trigger_deferred,
        missed_runs=draft.missed,
        too_many_missed=draft.too_many,
        out_of_sync=is_out_of_sync(spec, reference=reference, now=now),
        next_schedule_time=next_time,
        requeue_after=wake,
        status=status,
        events=tuple(draft.events),
    )


def _scheduled(
    spec: SyncScheduleSpec,
    state: ScheduleState,
    *,
    now: datetime,
    active: list[ChildCopyJob],
    taken: set[str],
    draft: _Draft,
) -> None:
    """The scheduled part of a decision (not suspended)."""
    anchor = _anchor(state, now)
    due = _due(spec.cron, after=anchor, until=now)
    if due.latest is None:
        return
    latest = due.latest
    deadline = spec.starting_deadline_seconds
    window_start = None if deadline is None else now - timedelta(seconds=deadline)
    if window_start is None:
        in_window = due.count
    else:
        in_window = len(
            spec.cron.times(after=max(anchor, window_start), until=now, limit=TOO_MANY_MISSED + 1)
        )
    if in_window > TOO_MANY_MISSED:
        draft.too_many = True
        shown = str(in_window) if window_start is None else f"more than {TOO_MANY_MISSED}"
        draft.event(
            "Warning",
            "TooManyMissedTimes",
            f"too many missed start times: {shown}. Set or decrease spec.startingDeadlineSeconds "
            "or check clock skew",
        )
    name = names.scheduled_copyjob_name(state.name, latest)
    if window_start is not None and latest < window_start:
        draft.skipped = SkipReason.DEADLINE_EXCEEDED
        _missed(draft, due.count, latest, f"more than startingDeadlineSeconds ({deadline} s) ago")
        draft.last_missed = latest
    elif name in taken:
        _missed(draft, due.count - 1, due.before_latest, "superseded by a later one")
        draft.last_schedule = latest
    elif spec.concurrency_policy is ConcurrencyPolicy.FORBID and active:
        draft.skipped = SkipReason.CONCURRENCY_FORBID
        draft.event(
            "Normal",
            "JobAlreadyActive",
            f"Not starting the run scheduled for {format_time(latest)}: {active[-1].name} is still "
            "running and concurrencyPolicy is Forbid; it starts when that run ends, within the deadline",
        )
        if due.count > 1:
            _missed(draft, due.count - 1, due.before_latest, "superseded by a later one")
            draft.last_missed = due.before_latest
    else:
        if spec.concurrency_policy is ConcurrencyPolicy.REPLACE:
            draft.delete_active = tuple(job.name for job in active)
        draft.run = PlannedRun(name=name, scheduled_time=latest)
        _missed(draft, due.count - 1, due.before_latest, "superseded by a later one")
        draft.last_schedule = latest


def _manual(
    spec: SyncScheduleSpec,
    state: ScheduleState,
    *,
    now: datetime,
    active: list[ChildCopyJob],
    taken: set[str],
    draft: _Draft,
) -> None:
    """The manual-trigger part of a decision (after the scheduled part)."""
    trigger = spec.trigger
    if not trigger or trigger == state.last_trigger:
        return
    name = names.manual_copyjob_name(state.name, trigger_token(state, trigger))
    if name in taken:
        draft.last_trigger = trigger
    elif draft.run is not None:
        draft.last_trigger = trigger
        draft.event(
            "Normal",
            "TriggerAnswered",
            f'Trigger "{trigger}" is answered by the scheduled run {draft.run.name}, starting now',
        )
    elif spec.concurrency_policy is ConcurrencyPolicy.FORBID and active:
        draft.trigger_deferred = True
        draft.event(
            "Normal",
            "TriggerDeferred",
            f'Trigger "{trigger}" waits: {active[-1].name} is still running and concurrencyPolicy is Forbid',
        )
    else:
        if spec.concurrency_policy is ConcurrencyPolicy.REPLACE:
            draft.delete_active = tuple(job.name for job in active)
        draft.run = PlannedRun(name=name, scheduled_time=now, trigger=trigger)
        draft.last_trigger = trigger


def _missed(draft: _Draft, count: int, latest: datetime | None, why: str) -> None:
    if count <= 0 or latest is None:
        return
    draft.missed += count
    times = "scheduled time" if count == 1 else f"{count} scheduled times"
    draft.event(
        "Warning",
        "MissSchedule",
        f"Missed {times} to start a CopyJob, the latest {format_time(latest)}: {why}",
    )


def _due(cron: CronSchedule, *, after: datetime, until: datetime) -> _Due:
    """The due times in ``(after, until]``: how many, the latest and the one before it. Counted
    exactly up to a limit, then estimated from the mean spacing of the counted ones."""
    times = cron.times(after=after, until=until, limit=_EXACT_COUNT_LIMIT + 1)
    if len(times) <= _EXACT_COUNT_LIMIT:
        return _Due(
            count=len(times),
            latest=times[-1] if times else None,
            before_latest=times[-2] if len(times) > 1 else None,
        )
    latest = cron.latest_at_or_before(until) or times[-1]
    spacing = (times[-1] - times[0]) / (len(times) - 1)
    rest = int((latest - times[-1]) / spacing) if spacing > timedelta(0) else 0
    return _Due(count=len(times) + rest, latest=latest, before_latest=cron.latest_before(latest))


def is_out_of_sync(spec: SyncScheduleSpec, *, reference: datetime, now: datetime) -> bool:
    """Not suspended and at least two scheduled times came due in ``(reference, now]``, where
    ``reference`` is the last success (or the creation time when there was none)."""
    if spec.suspend:
        return False
    return len(spec.cron.times(after=reference, until=now, limit=2)) >= 2


def _beyond_history(spec: SyncScheduleSpec, owned: list[ChildCopyJob]) -> tuple[str, ...]:
    doomed: list[str] = []
    for keep, jobs in (
        (spec.successful_jobs_history_limit, [job for job in owned if job.succeeded]),
        (spec.failed_jobs_history_limit, [job for job in owned if job.failed]),
    ):
        jobs.sort(key=_age)
        doomed.extend(job.name for job in jobs[: max(0, len(jobs) - keep)])
    return tuple(doomed)


def _last_success(state: ScheduleState, owned: list[ChildCopyJob]) -> datetime | None:
    found = [job.completed or job.created for job in owned if job.succeeded]
    candidates = [time for time in [state.last_successful_time, *found] if time is not None]
    return max(candidates) if candidates else None


def _anchor(state: ScheduleState, now: datetime) -> datetime:
    """Due times are those after this instant."""
    marks = [time for time in (state.last_schedule_time, state.last_missed_time) if time is not None]
    if marks:
        return max(marks)
    if state.created is not None:
        return state.created
    if state.next_schedule_time is not None:
        return state.next_schedule_time - _EPSILON
    return now


def _owned_by(job: ChildCopyJob, state: ScheduleState) -> bool:
    return job.owner_uid is None or state.uid is None or job.owner_uid == state.uid


_OLDEST = datetime.min.replace(tzinfo=UTC)


def _age(job: ChildCopyJob) -> tuple[datetime, str]:
    """Sort key, oldest first: creation time, else scheduled time; the name breaks ties."""
    return (job.created or job.scheduled or _OLDEST, job.name)


def trigger_token(state: ScheduleState, trigger: str) -> str:
    """The part of a manual run's name that identifies the trigger: a hash of the schedule's uid,
    its generation (so setting an old value again is a new run) and the value."""
    seed = f"{state.uid or ''}\n{'' if state.generation is None else state.generation}\n{trigger}"
    return hashlib.sha256(seed.encode()).hexdigest()[:10]


def build_copyjob_from_template(
    schedule_body: Mapping[str, Any],
    *,
    name: str,
    scheduled_time: datetime,
    trigger: str | None = None,
) -> dict[str, Any]:
    """The CopyJob a SyncSchedule creates: ``jobTemplate`` with mode sync, labelled with the
    schedule (LABEL_SYNCSCHEDULE, managed-by), annotated with the scheduled time (and the trigger
    of a manual run), owned by the schedule (controller, blockOwnerDeletion) when it has a uid.
    Raises SpecError when the schedule's spec is invalid."""
    metadata = schedule_body.get("metadata") or {}
    spec = parse_syncschedule(schedule_body.get("spec") or {})
    schedule_name = str(metadata.get("name", ""))
    labels = {
        **spec.template_labels,
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
        names.LABEL_SYNCSCHEDULE: names.label_value(schedule_name),
    }
    annotations = {**spec.template_annotations, names.ANNOTATION_SCHEDULED_TIME: format_time(scheduled_time)}
    if trigger is not None:
        annotations[names.ANNOTATION_TRIGGER] = trigger
    copyjob_metadata: dict[str, Any] = {"name": name, "labels": labels, "annotations": annotations}
    if metadata.get("namespace"):
        copyjob_metadata["namespace"] = metadata["namespace"]
    if metadata.get("uid"):
        copyjob_metadata["ownerReferences"] = [
            {
                "apiVersion": names.API_VERSION,
                "kind": names.SYNCSCHEDULE_KIND,
                "name": schedule_name,
                "uid": metadata["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.COPYJOB_KIND,
        "metadata": copyjob_metadata,
        "spec": spec.template_spec,
    }


parse_time = parse_rfc3339


def format_time(value: datetime | None) -> str | None:
    """As Kubernetes writes times (RFC 3339 in UTC, whole seconds); None stays None."""
    return None if value is None else rfc3339(value)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)
