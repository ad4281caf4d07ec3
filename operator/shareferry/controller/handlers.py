"""The kopf handlers: each a few lines that call the functions doing the work.

:func:`build_registry` makes a fresh :class:`kopf.OperatorRegistry` so an operator (or a test)
runs exactly these handlers and nothing registered elsewhere. The handlers find what they share
(API client, settings, metrics, clock) in ``memo.ctx`` (:class:`ControllerContext`).

Who triggers what:

* CopyJob created or found at start-up → :func:`copyjob_ops.start_copyjob` (validate, check
  Secrets and FileShares, create the worker Job).
* Any change to a CopyJob (its workers patch ``status.shardReports``) or to a worker Job →
  :func:`copyjob_ops.refresh_copyjob` recomputes the status; transitions become Events and, once
  per finished run, metrics.
* CopyJob spec edited → refused with a condition once its Job exists.
* CopyJob deleted → its worker Job is deleted (foreground: the pods go first); the CopyJob's
  finalizer holds it until the Job is gone, so no worker outlives it.
* FileShare created, changed or found at start-up, and every ``spec.resyncSeconds`` (a timer
  that looks every ``fileshare_interval`` seconds) → :func:`fileshare_pass.fileshare_pass`;
  deleted → the Azure share is deleted or kept as ``deletionPolicy`` says (a finalizer holds the
  FileShare until that is done).
* SyncSchedule: a timer every ``schedule_interval`` seconds, any spec change and any change of
  one of its CopyJobs → :func:`schedule_ops.tick_schedule` (decide, then create / delete runs and
  write status); deleted → its CopyJobs are deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, cast

import kopf

from shareferry.api import names
from shareferry.controller import copyjob_ops, fileshare_pass, login, schedule_ops
from shareferry.controller.context import ControllerContext
from shareferry.controller.copyjob_logic import Transition
from shareferry.core.shares import ShareError
from shareferry.kube import FILESHARES, SYNCSCHEDULES

FINALIZER = "shareferry.dev/finalizer"
COPYJOB = (names.GROUP, names.VERSION, names.COPYJOBS)
SYNCSCHEDULE = (names.GROUP, names.VERSION, names.SYNCSCHEDULES)
FILESHARE = (names.GROUP, names.VERSION, names.FILESHARES)
FILESHARE_INTERVAL_SECONDS = 30.0
"""How often FileShares are looked at for a due drift check (each has its own resyncSeconds)."""
STOP_RECHECK_SECONDS = 1.0
"""How often a deleted CopyJob looks whether its workers have stopped."""
SCHEDULE_INTERVAL_SECONDS = 10.0
"""How often every SyncSchedule is looked at: a run starts at most this late."""
WORKER_JOB_LABELS: dict[str, Any] = {
    names.LABEL_MANAGED_BY: names.MANAGED_BY,
    names.LABEL_COPYJOB: kopf.PRESENT,
}


def _ctx(memo: Any) -> ControllerContext:
    context: ControllerContext = memo["ctx"]
    return context


def post_events(body: Mapping[str, Any], events: Iterable[Transition]) -> None:
    for event in events:
        # kopf reads only apiVersion, kind and metadata from the body it is given.
        kopf.event(cast(kopf.Body, dict(body)), type=event.type, reason=event.reason, message=event.message)


def _record_finished(
    context: ControllerContext, body: Mapping[str, Any], outcome: copyjob_ops.Outcome
) -> None:
    """Metrics once per run that ended, and the error counter for a failure or a wait."""
    namespace = body["metadata"]["namespace"]
    status = outcome.status
    for event in outcome.events:
        if event.type == "Warning" and event.reason not in ("CompletedWithErrors",):
            context.metrics.error_observed(namespace=namespace, kind="CopyJob", reason=event.reason)
    if not outcome.finished:
        return
    counters = status.get("counters") or {}
    md5 = status.get("md5Results") or {}
    context.metrics.copy_run_finished(
        namespace=namespace,
        mode=str((body.get("spec") or {}).get("mode", "copy")),
        result=str(status.get("phase")),
        duration_seconds=float(status.get("durationSeconds") or 0.0),
        bytes_transferred=int(counters.get("bytesTransferred") or 0),
        files_transferred=int(counters.get("filesTransferred") or 0),
        md5_mismatches=int(md5.get("mismatched") or 0),
    )


def build_registry(
    *,
    schedule_interval: float = SCHEDULE_INTERVAL_SECONDS,
    fileshare_interval: float = FILESHARE_INTERVAL_SECONDS,
) -> kopf.OperatorRegistry:
    """All of ShareFerry's handlers in a registry of their own."""
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="shareferry.dev")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="shareferry.dev", key="last-handled-configuration"
        )
        settings.posting.level = logging.WARNING  # our own events are posted explicitly

    kopf.on.login(registry=registry)(login.login)

    @kopf.on.resume(*COPYJOB, registry=registry)
    @kopf.on.create(*COPYJOB, registry=registry)
    async def copyjob_created(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        context = _ctx(memo)
        async with context.locks[body["metadata"]["namespace"], body["metadata"]["name"]]:
            outcome = await copyjob_ops.start_copyjob(
                context.kube,
                body,
                settings=context.settings,
                now=context.clock(),
                announce=lambda event: post_events(body, [event]),
                missing_retry=context.missing_secret_retry_seconds,
            )
        post_events(body, outcome.events)
        _record_finished(context, body, outcome)
        if outcome.retry_after is not None:
            raise kopf.TemporaryError("waiting for a Secret or FileShare", delay=outcome.retry_after)

    @kopf.on.update(*COPYJOB, field="spec", registry=registry)
    async def copyjob_edited(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        context = _ctx(memo)
        outcome = await copyjob_ops.refuse_spec_change(context.kube, body, now=context.clock())
        post_events(body, outcome.events)

    @kopf.on.event(*COPYJOB, registry=registry)
    async def copyjob_changed(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
        if type in (None, "DELETED"):
            return
        await _refresh(body, memo)

    @kopf.on.event("batch", "v1", "jobs", labels=WORKER_JOB_LABELS, registry=registry)
    async def worker_job_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        owner = body.get("metadata", {}).get("labels", {}).get(names.LABEL_COPYJOB)
        namespace = body.get("metadata", {}).get("namespace")
        if owner and namespace:
            await _refresh_named(namespace, owner, memo)

    @kopf.on.delete(*COPYJOB, registry=registry)
    async def copyjob_deleted(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
        meta = body["metadata"]
        context = _ctx(memo)
        stopping = await copyjob_ops.stop_copyjob(context.kube, body)
        if stopping.requested:
            logger.info("stopping the workers of CopyJob %s/%s", meta["namespace"], meta["name"])
        if stopping.pending:  # the finalizer holds the CopyJob until its workers are gone
            raise kopf.TemporaryError("waiting for the workers to stop", delay=STOP_RECHECK_SECONDS)
        context.locks.pop((meta["namespace"], meta["name"]), None)

    @kopf.on.resume(*FILESHARE, registry=registry)
    @kopf.on.create(*FILESHARE, registry=registry)
    @kopf.on.update(*FILESHARE, field="spec", registry=registry)
    async def fileshare_changed(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
        await _fileshare(body, memo, retry=retry)

    @kopf.timer(*FILESHARE, interval=fileshare_interval, registry=registry)
    async def fileshare_resync(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        if fileshare_pass.resync_due(body, now=_ctx(memo).clock()):
            await _fileshare(body, memo, retry=0, only_when_due=True)

    @kopf.on.delete(*FILESHARE, registry=registry)
    async def fileshare_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        context = _ctx(memo)
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        async with context.share_locks[key]:  # no pass of this FileShare runs meanwhile
            try:
                events = await fileshare_pass.fileshare_deleted(context.kube, body, metrics=context.metrics)
            except fileshare_pass.MissingSecret as error:
                kopf.warn(body, reason="MissingSecret", message=str(error))
                raise kopf.TemporaryError(str(error), delay=context.missing_secret_retry_seconds) from error
            except ShareError as error:
                kopf.warn(body, reason=error.reason, message=str(error))
                raise kopf.TemporaryError(str(error), delay=30) from error
        context.share_locks.pop(key, None)
        post_events(body, events)

    @kopf.timer(*SYNCSCHEDULE, interval=schedule_interval, registry=registry)
    async def schedule_timer(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        await _tick(body, memo)

    @kopf.on.resume(*SYNCSCHEDULE, registry=registry)
    @kopf.on.create(*SYNCSCHEDULE, registry=registry)
    @kopf.on.update(*SYNCSCHEDULE, field="spec", registry=registry)
    async def schedule_tick(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        await _tick(body, memo)

    @kopf.on.event(*COPYJOB, labels={names.LABEL_SYNCSCHEDULE: kopf.PRESENT}, registry=registry)
    async def schedule_run_changed(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
        if type in (None, "ADDED"):
            return  # the schedule created it, or the operator (re)started: the timer covers both
        phase = (body.get("status") or {}).get("phase")
        if type != "DELETED" and phase not in ("Succeeded", "CompletedWithErrors", "Failed"):
            return  # only the end of a run can change what the schedule does next
        for owner in body.get("metadata", {}).get("ownerReferences") or []:
            if owner.get("kind") == names.SYNCSCHEDULE_KIND:
                await _tick(
                    {"metadata": {"namespace": body["metadata"]["namespace"], "name": owner["name"]}}, memo
                )

    @kopf.on.delete(*SYNCSCHEDULE, registry=registry)
    async def schedule_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        context = _ctx(memo)
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        async with context.schedule_locks[key]:  # no pass of this schedule runs meanwhile
            await schedule_ops.forget_schedule(context.kube, *key, metrics=context.metrics)
        context.schedule_locks.pop(key, None)

    return registry


async def _fileshare(body: Mapping[str, Any], memo: Any, *, retry: int, only_when_due: bool = False) -> None:
    """One pass over a FileShare, never two at once for the same one (its change handlers and its
    timer run concurrently). The pass works on the object as stored when it gets its turn, not on
    kopf's copy: a pass that ran meanwhile may have created or adopted the share and said so in
    status. A FileShare being deleted is left to the deletion handler (a pass would create the
    share again after a ``Delete`` policy removed it)."""
    context = _ctx(memo)
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    async with context.share_locks[namespace, name]:
        current = await copyjob_ops.get_or_none(context.kube, FILESHARES, namespace, name)
        if current is None or current["metadata"].get("deletionTimestamp"):
            return
        if only_when_due and not fileshare_pass.resync_due(current, now=context.clock()):
            return  # another pass checked it meanwhile
        outcome = await fileshare_pass.fileshare_pass(
            context.kube,
            current,
            now=context.clock(),
            metrics=context.metrics,
            retry=retry,
            missing_secret_retry=context.missing_secret_retry_seconds,
        )
    post_events(current, outcome.events)
    if outcome.retry_after is not None:
        raise kopf.TemporaryError("the share is not ready yet", delay=outcome.retry_after)


async def _tick(body: Mapping[str, Any], memo: Any) -> None:
    """One pass over a SyncSchedule, never two at once for the same one, on the object as stored
    when the pass gets its turn (kopf's copy may predate the status the previous pass wrote: its
    missed times would be counted again). A schedule being deleted starts nothing more."""
    context = _ctx(memo)
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    async with context.schedule_locks[namespace, name]:
        current = await copyjob_ops.get_or_none(context.kube, SYNCSCHEDULES, namespace, name)
        if current is None or current["metadata"].get("deletionTimestamp"):
            return
        outcome = await schedule_ops.tick_schedule(
            context.kube, current, now=context.clock(), metrics=context.metrics
        )
    post_events(current, outcome.events)


async def _refresh(body: Mapping[str, Any], memo: Any) -> None:
    meta = body.get("metadata", {})
    await _refresh_named(meta["namespace"], meta["name"], memo)


async def _refresh_named(namespace: str, name: str, memo: Any) -> None:
    context = _ctx(memo)
    async with context.locks[namespace, name]:
        outcome = await copyjob_ops.refresh_copyjob(context.kube, namespace, name, now=context.clock)
    if outcome.events or outcome.finished:
        body = {
            "apiVersion": names.API_VERSION,
            "kind": names.COPYJOB_KIND,
            "metadata": {"namespace": namespace, "name": name, "uid": outcome.uid},
        }
        post_events(body, outcome.events)
        _record_finished(context, {**body, "spec": {"mode": outcome.mode}}, outcome)
