"""The engine's side of job plans: record each transfer, and recognise what an earlier run did.

A job with a plan (:class:`shareferry.core.jobplan.JobPlan`) records every file transfer as it is
dispatched (``planned``) and as it ends (``done``, ``failed``, ``skipped``). When the same job
runs again (``shareferry jobs resume``), a file the plan holds as done, from a source object of
the same size and modification time, is counted as completed without a single request: nothing
finished is sent twice. Folders are not recorded (creating one again is idempotent and cheap).

Each file's row is committed before its first byte is written and again as soon as it ends, so
a ``kill -9`` loses nothing: a file that ended is never sent again, and a file that was under way
is known to be partial at the destination. Commits are grouped (:class:`GroupCommit`): every file
that records something in the same turn of the event loop waits for one commit of them all, so
with many small files in flight a commit (about 80 µs) is shared instead of paid twice per file.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from shareferry.core.accounting import FileResult, Outcome
from shareferry.core.engine.context import EngineContext
from shareferry.core.jobplan import FileState, JobPlan, PlannedFile
from shareferry.core.objects import StoredObject
from shareferry.core.planning.copy_plan import Transfer

_STATES = {
    Outcome.COMPLETED: FileState.DONE,
    Outcome.FAILED: FileState.FAILED,
    Outcome.SKIPPED: FileState.SKIPPED,
}
EARLIER_RUN = "completed by an earlier run of this job"


class GroupCommit:
    """One commit of a job plan for every caller that asks in the same turn of the event loop.

    :meth:`commit` returns once what the caller buffered is committed: the first caller of a
    turn schedules the commit for the end of that turn (after every task already runnable has
    had its go), later callers of the turn wait for the same one. A failed commit raises in
    every caller that waited for it."""

    def __init__(self, plan: JobPlan) -> None:
        self._plan = plan
        self._pending: asyncio.Future[None] | None = None

    async def commit(self) -> None:
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.create_future()
            loop.call_soon(self._run)
        await asyncio.shield(self._pending)  # a cancelled waiter does not cancel the others'

    def _run(self) -> None:
        done, self._pending = self._pending, None
        assert done is not None
        try:
            self._plan.flush()
        except Exception as error:  # handed to every waiter
            done.set_exception(error)
        else:
            done.set_result(None)


@dataclass(frozen=True)
class PlanScope:
    """The part of a job plan one pair of backends writes: every destination path is keyed with
    ``prefix`` (an account-level copy keeps one pair per container, each under its name)."""

    plan: JobPlan
    prefix: str = ""
    _commits: GroupCommit = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_commits", GroupCommit(self.plan))

    @property
    def job_id(self) -> str:
        """The id of the job this plan belongs to (its directory's name)."""
        return self.plan.path.parent.name

    def previous(self, destination: str) -> PlannedFile | None:
        return self.plan.previous(self.prefix + destination)

    async def planned(self, *, destination: str, source: str, size: int, source_mtime: str | None) -> None:
        self.plan.planned(
            destination=self.prefix + destination,
            source=source,
            size=size,
            source_mtime=source_mtime,
            is_dir=False,
        )
        await self._commits.commit()  # durable before the first byte is written: a partial file is known

    async def finished(
        self, destination: str, *, state: FileState, md5: str | None, error: str | None
    ) -> None:
        self.plan.finished(self.prefix + destination, state=state, md5=md5, error=error)
        await self._commits.commit()  # durable at once: a kill right after never sends this file again


def mtime_text(obj: StoredObject) -> str | None:
    """The source's modification time as the plan stores it (to notice a changed source)."""
    return obj.last_modified.isoformat() if obj.last_modified is not None else None


def finished_earlier(ctx: EngineContext, destination: str, source: StoredObject) -> str | None:
    """The MD5 (hex, or ``""``) of a file an earlier run of this job completed from this very
    source object; None when it did not (or there is no plan)."""
    if ctx.plan is None:
        return None
    previous = ctx.plan.previous(destination)
    if previous is None or previous.state is not FileState.DONE or previous.is_dir:
        return None
    if previous.size != source.size or previous.source_mtime != mtime_text(source):
        return None
    return previous.md5 or ""


def unfinished_earlier(ctx: EngineContext, destination: str) -> bool:
    """An earlier run started this file and did not finish it: what is at the destination may
    be partial, whatever its time says."""
    if ctx.plan is None:
        return False
    previous = ctx.plan.previous(destination)
    return previous is not None and previous.state in (FileState.PLANNED, FileState.FAILED)


def resumed_result(ctx: EngineContext, transfer: Transfer) -> FileResult | None:
    """The result of a file transfer an earlier run of this job completed, or None."""
    if transfer.is_dir:
        return None
    md5 = finished_earlier(ctx, transfer.destination, transfer.source)
    if md5 is None:
        return None
    return FileResult(
        path=transfer.destination,
        size=transfer.source.size,
        outcome=Outcome.COMPLETED,
        md5=md5 or None,
        reason=EARLIER_RUN,
        source=ctx.source.describe(transfer.source.path),
        destination=ctx.destination.describe(transfer.destination),
        resumed=True,
    )


async def record_planned(ctx: EngineContext, transfer: Transfer) -> None:
    if ctx.plan is None or transfer.is_dir:
        return
    await ctx.plan.planned(
        destination=transfer.destination,
        source=transfer.source.path,
        size=transfer.source.size,
        source_mtime=mtime_text(transfer.source),
    )


async def record_result(ctx: EngineContext, result: FileResult, *, is_dir: bool) -> None:
    if ctx.plan is None or is_dir:
        return
    await ctx.plan.finished(result.path, state=_STATES[result.outcome], md5=result.md5, error=result.error)
