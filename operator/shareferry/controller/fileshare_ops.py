"""One FileShare pass against Azure: read the share, plan, apply, read it again, give the status.

The kopf handler parses the spec, reads the FileShare's Secret into ``environ`` (its keys,
decoded; ``{}`` with workload identity) and calls :func:`reconcile_fileshare` with the stored
status; then it patches ``outcome.status``, posts ``outcome.events`` and, when
``outcome.retry_after`` is set, asks kopf to try again after that many seconds (kopf's ``retry``
count, passed back as ``retry``, makes the delay grow). Failures the controller meets before
(a missing Secret, a spec that does not parse) go to
:func:`~shareferry.controller.fileshare_logic.fileshare_error_status` directly. On deletion,
:func:`delete_fileshare` removes the Azure share when the deletion policy says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shareferry.api.conditions import get_condition
from shareferry.api.fileshare import FileShareSpec, share_url
from shareferry.controller.copyjob_logic import Transition
from shareferry.controller.fileshare_logic import (
    READY,
    Action,
    FileSharePlan,
    action_event,
    error_event,
    fileshare_error_status,
    fileshare_status,
    is_drift,
    on_delete,
    plan_fileshare,
    share_known,
)
from shareferry.core.shares import ShareAdmin, ShareError, ShareNotFound, ShareState

RETRY_BASE_SECONDS = 10.0
"""The first retry of a transient failure; it doubles with each retry up to :data:`RETRY_MAX_SECONDS`."""
RETRY_MAX_SECONDS = 300.0


@dataclass(frozen=True)
class ReconcileOutcome:
    """What one pass found: the status fields to patch, the Events to post (in order), and the
    seconds after which to try again (``None``: nothing to retry soon; the periodic re-check
    every ``resyncSeconds`` still comes). ``reason`` is the ``Ready`` condition's."""

    status: dict[str, Any]
    events: list[Transition] = field(default_factory=list)
    retry_after: float | None = None
    ready: bool = False
    reason: str = ""


async def reconcile_fileshare(
    spec: FileShareSpec,
    environ: Mapping[str, str],
    *,
    generation: int | None,
    now: datetime,
    previous_conditions: Sequence[Mapping[str, Any]] | None,
    previous_status: Mapping[str, Any] | None = None,
    retry: int = 0,
) -> ReconcileOutcome:
    """Bring the Azure share to ``spec`` and report it. ``previous_status`` is the FileShare's
    stored status (it tells a share deleted behind our back from a new one, and drift from a
    spec change); ``retry`` is how many times kopf has retried this pass."""
    known = share_known(previous_status)
    events: list[Transition] = []
    try:
        async with ShareAdmin(share_url(spec), environ, allow_token=spec.workload_identity) as admin:
            after, adopted = await _converge(
                admin, spec, known=known, drift=is_drift(previous_status, generation), events=events
            )
    except ShareError as error:
        status = fileshare_error_status(
            spec,
            reason=error.reason,
            message=str(error),
            generation=generation,
            now=now,
            previous_conditions=previous_conditions,
        )
        events.extend(error_event(previous_conditions, error.reason, str(error)))
        delay = _backoff(retry, error.retry_after) if error.transient else None
        return ReconcileOutcome(status=status, events=events, retry_after=delay, reason=error.reason)
    status = fileshare_status(
        spec, after, adopted=adopted, generation=generation, now=now, previous_conditions=previous_conditions
    )
    ready = get_condition(status["conditions"], READY) or {}
    reason = str(ready.get("reason", ""))
    if ready.get("status") == "True":
        return ReconcileOutcome(status=status, events=events, ready=True, reason=reason)
    events.extend(error_event(previous_conditions, reason, str(ready.get("message", ""))))
    return ReconcileOutcome(status=status, events=events, retry_after=_backoff(retry, None), reason=reason)


async def delete_fileshare(spec: FileShareSpec, environ: Mapping[str, str]) -> list[Transition]:
    """On deletion of the FileShare: delete the Azure share (snapshots too) when the deletion
    policy is ``Delete``, else leave it. Raises :class:`ShareError` when Azure refuses (the
    finalizer then stays and the deletion is retried)."""
    url = share_url(spec)
    if not on_delete(spec):
        return [Transition("Normal", "Retained", f"kept share {url} (deletionPolicy: Retain)")]
    async with ShareAdmin(url, environ, allow_token=spec.workload_identity) as admin:
        deleted = await admin.delete(include_snapshots=True)
    if deleted:
        return [Transition("Normal", "Deleted", f"deleted share {url} and its snapshots")]
    return [Transition("Normal", "Deleted", f"share {url} was already gone")]


async def _converge(
    admin: ShareAdmin, spec: FileShareSpec, *, known: bool, drift: bool, events: list[Transition]
) -> tuple[ShareState, bool | None]:
    """Apply the plan; the share as read afterwards, and ``adopted`` when this pass decided it."""
    plan = plan_fileshare(spec, await admin.get(), known=known)
    if plan.create:
        created = await admin.create(
            quota_gib=plan.quota_gib, access_tier=plan.access_tier, metadata=plan.metadata
        )
        if created:
            events.append(action_event(plan, "create", url=admin.url))
            return await _read_back(admin), False
        # Created by someone else between our read and our create: take it as it is now.
        plan = plan_fileshare(spec, await _read_back(admin), known=known)
    for action in plan.actions:
        await _apply(admin, plan, action)
        events.append(action_event(plan, action, url=admin.url, drift=drift))
    after = await _read_back(admin) if plan.changes_share else plan.before
    assert after is not None
    return after, (True if plan.adopt else None)


async def _apply(admin: ShareAdmin, plan: FileSharePlan, action: Action) -> None:
    if action == "set-metadata":
        assert plan.metadata is not None
        await admin.set_metadata(plan.metadata)
    elif action == "set-access-tier":
        await admin.set_properties(access_tier=plan.access_tier)
    elif action == "set-quota":
        await admin.set_properties(quota_gib=plan.quota_gib)


async def _read_back(admin: ShareAdmin) -> ShareState:
    state = await admin.get()
    if state is None:  # deleted again while this pass ran: the next pass re-creates it
        raise ShareNotFound(
            f"read {admin.url}: the share disappeared while it was being set up", transient=True
        )
    return state


def _backoff(retry: int, asked: float | None) -> float:
    """Seconds before the next try: doubling from :data:`RETRY_BASE_SECONDS`, capped, and never
    less than what the service asked for."""
    delay = min(RETRY_BASE_SECONDS * 2.0 ** min(max(0, retry), 16), RETRY_MAX_SECONDS)
    return max(delay, asked or 0.0)
