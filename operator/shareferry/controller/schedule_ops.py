"""Carry out a SyncSchedule decision against the Kubernetes API.

Reads the schedule's CopyJobs (by label), asks :func:`shareferry.controller.schedule.decide`
what to do at ``now``, then does it in a safe order: delete the runs Replace supersedes, create
the new run (a name that exists already is a run already started), prune history, write status.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shareferry.api import names
from shareferry.api.conditions import get_condition, set_condition
from shareferry.api.errors import SpecError
from shareferry.api.syncschedule import parse_syncschedule
from shareferry.controller.copyjob_logic import Transition
from shareferry.controller.metrics import OperatorMetrics
from shareferry.controller.schedule import ScheduleState, build_copyjob_from_template, decide
from shareferry.kube import COPYJOBS, SYNCSCHEDULES, Conflict, KubeClient, NotFound

READY = "Ready"
RUN_WAITING = "RunWaiting"
"""The Ready condition's reason while a due run (or a manual trigger) waits for the active run."""
WAITING_REASONS = frozenset({"JobAlreadyActive", "TriggerDeferred"})


@dataclass
class ScheduleOutcome:
    events: list[Transition] = field(default_factory=list)
    requeue_after: float | None = None
    created: str | None = None


async def schedule_copyjobs(kube: KubeClient, namespace: str, name: str) -> list[dict[str, Any]]:
    """The CopyJobs this schedule created (by its label)."""
    selector = f"{names.LABEL_SYNCSCHEDULE}={names.label_value(name)}"
    return await kube.list(COPYJOBS, namespace, label_selector=selector)


async def tick_schedule(
    kube: KubeClient, body: Mapping[str, Any], *, now: datetime, metrics: OperatorMetrics
) -> ScheduleOutcome:
    """One pass over one SyncSchedule."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    status = body.get("status") or {}
    generation = meta.get("generation")
    try:
        spec = parse_syncschedule(body.get("spec") or {})
    except SpecError as error:
        conditions = set_condition(
            status.get("conditions") or [],
            type=READY,
            status="False",
            reason=error.reason,
            message=error.message,
            generation=generation,
            now=now,
        )
        await kube.patch(
            SYNCSCHEDULES,
            namespace,
            name,
            {"status": {"conditions": conditions, "observedGeneration": generation}},
            subresource="status",
        )
        already = any(
            c.get("reason") == error.reason and c.get("message") == error.message
            for c in status.get("conditions") or []
        )
        metrics.error_observed(namespace=namespace, kind="SyncSchedule", reason=error.reason)
        return ScheduleOutcome(events=[] if already else [Transition("Warning", error.reason, error.message)])

    children = await schedule_copyjobs(kube, namespace, name)
    decision = decide(spec, ScheduleState.from_body(body, children), now=now)
    events = [Transition(event.type, event.reason, event.message) for event in decision.events]

    for victim in decision.delete_active:
        with contextlib.suppress(NotFound):
            await kube.delete(COPYJOBS, namespace, victim, propagation="Foreground")
        events.append(
            Transition(
                "Normal", "SupersededRun", f"deleted the active run {victim} (concurrencyPolicy Replace)"
            )
        )
    created = None
    if decision.run is not None:
        copyjob = build_copyjob_from_template(
            body,
            name=decision.run.name,
            scheduled_time=decision.run.scheduled_time,
            trigger=decision.run.trigger,
        )
        try:
            await kube.create(COPYJOBS, namespace, copyjob)
            created = decision.run.name
            kind = "manual" if decision.run.manual else "scheduled"
            events.append(Transition("Normal", "SuccessfulCreate", f"created {kind} run {decision.run.name}"))
        except Conflict:
            pass  # created by an earlier pass whose status write was lost
    for old in decision.delete_finished:
        with contextlib.suppress(NotFound):
            await kube.delete(COPYJOBS, namespace, old)

    # A run that waits (Forbid) is decided again on every pass until it can start: say why once,
    # in an Event and in the Ready condition, not once per pass.
    waiting = [event for event in events if event.reason in WAITING_REASONS]
    told = get_condition(status.get("conditions") or [], READY) or {}
    if told.get("reason") == RUN_WAITING:
        events = [
            event
            for event in events
            if event.reason not in WAITING_REASONS or event.message not in str(told.get("message", ""))
        ]
    if spec.suspend:
        reason, message = "Suspended", "suspended: no scheduled run starts"
    elif waiting:
        reason, message = RUN_WAITING, "; ".join(event.message for event in waiting)
    else:
        reason, message = "Scheduled", f"next run at {decision.status.get('nextScheduleTime')}"
    conditions = set_condition(
        status.get("conditions") or [],
        type=READY,
        status="True",
        reason=reason,
        message=message,
        generation=generation,
        now=now,
    )
    conditions = set_condition(
        conditions,
        type="OutOfSync",
        status="True" if decision.out_of_sync else "False",
        reason="NoRecentSuccess" if decision.out_of_sync else "InSync",
        message=(
            "two or more scheduled runs have come due since the last successful sync"
            if decision.out_of_sync
            else "the last successful sync is recent"
        ),
        generation=generation,
        now=now,
    )
    new_status = {**decision.status, "conditions": conditions, "observedGeneration": generation}
    # None removes a field the status has (a merge patch deletes a key set to null), e.g.
    # nextScheduleTime once the schedule is suspended.
    changed = {key: value for key, value in new_status.items() if status.get(key) != value}
    if changed:
        await kube.patch(SYNCSCHEDULES, namespace, name, {"status": changed}, subresource="status")
    metrics.schedule_observed(
        namespace=namespace, schedule=name, missed_runs=decision.missed_runs, out_of_sync=decision.out_of_sync
    )
    return ScheduleOutcome(events=events, requeue_after=decision.requeue_after, created=created)


async def forget_schedule(kube: KubeClient, namespace: str, name: str, *, metrics: OperatorMetrics) -> int:
    """The schedule is being deleted: delete its CopyJobs (their workers stop) and its series."""
    deleted = 0
    for child in await schedule_copyjobs(kube, namespace, name):
        with contextlib.suppress(NotFound):
            await kube.delete(COPYJOBS, namespace, child["metadata"]["name"], propagation="Foreground")
            deleted += 1
    metrics.forget_schedule(namespace=namespace, schedule=name)
    return deleted
