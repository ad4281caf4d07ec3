"""Running a stream of work with bounded concurrency until the stream is exhausted.

Items are pulled from the stream only as slots free up, so a plan of millions of files never
sits in memory. :func:`run_transfers` runs a copy plan: each transfer is recorded in the job plan
(when the job has one), a transfer an earlier run of the same job completed is counted without
being sent again, and results go to the job's accounting. A credential error stops the whole job
(every other request would fail the same way); any other failure is one failed file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from shareferry.core.accounting import FileResult, Outcome
from shareferry.core.engine.context import EngineContext
from shareferry.core.engine.copier import copy_one
from shareferry.core.engine.resume import record_planned, record_result, resumed_result
from shareferry.core.objects import Refusal
from shareferry.core.planning.copy_plan import Transfer
from shareferry.core.printable import printable

T = TypeVar("T")


async def run_bounded(
    items: AsyncIterator[T],
    handle: Callable[[T], Awaitable[None]],
    *,
    limit: int,
    on_exhausted: Callable[[], None] | None = None,
) -> None:
    """Run ``handle`` on every item, at most ``limit`` at once; returns when all are done.
    ``on_exhausted`` is called once the stream has ended (while the last items still run).
    The first exception ``handle`` raises cancels the rest (and is raised in a group)."""
    slots = asyncio.Semaphore(max(1, limit))

    async def run(item: T) -> None:
        try:
            await handle(item)
        finally:
            slots.release()

    async with asyncio.TaskGroup() as group:
        async for item in items:
            await slots.acquire()
            group.create_task(run(item))
        if on_exhausted is not None:
            on_exhausted()


async def transfer_and_count(ctx: EngineContext, transfer: Transfer) -> None:
    """Copy one planned transfer (unless an earlier run did), recording it in the job plan.
    A transfer whose source was listed with a refusal is only reported (see :func:`refused`)."""
    if transfer.source.refusal is not None:
        ctx.accounting.done(refused(ctx, transfer, transfer.source.refusal))
        return
    if not transfer.is_dir:
        await _transfer(ctx, transfer)
        return
    with ctx.folders.creating(transfer.destination):  # marked before the first await
        await _transfer(ctx, transfer)


async def _transfer(ctx: EngineContext, transfer: Transfer) -> None:
    earlier = resumed_result(ctx, transfer)
    if earlier is not None:
        ctx.accounting.done(earlier)
        return
    await ctx.folders.wait_for_parent(transfer.destination)
    await record_planned(ctx, transfer)
    result = await copy_one(ctx, transfer)
    await record_result(ctx, result, is_dir=transfer.is_dir)
    ctx.accounting.done(result)


def refused(ctx: EngineContext, transfer: Transfer, refusal: Refusal) -> FileResult:
    """The result of an object the listing found but that cannot be copied (a pipe, a name that
    cannot be carried, a directory that cannot be read): skipped or failed with its reason,
    nothing read or written. The reason also goes to the log, so every output shows it."""
    source = ctx.source.describe(transfer.source.path)
    ctx.log(f"{'failed' if refusal.failed else 'skipped'}: {printable(source)}: {refusal.reason}")
    return FileResult(
        path=transfer.destination,
        size=transfer.source.size,
        outcome=Outcome.FAILED if refusal.failed else Outcome.SKIPPED,
        error=refusal.reason if refusal.failed else None,
        reason=None if refusal.failed else refusal.reason,
        is_dir=transfer.is_dir,
        source=source,
        destination=ctx.destination.describe(transfer.destination),
    )


async def run_transfers(ctx: EngineContext, plan: AsyncIterator[Transfer], *, last_plan: bool = True) -> None:
    """Copy every transfer of ``plan``; returns when all are done (or raises a fatal error).
    ``last_plan``: no other plan follows in this job, so its end is the end of enumeration."""

    async def queued() -> AsyncIterator[Transfer]:
        async for transfer in plan:
            if not transfer.is_dir:
                ctx.accounting.queued(transfer.destination, transfer.source.size)
            yield transfer

    await run_bounded(
        queued(),
        lambda transfer: transfer_and_count(ctx, transfer),
        limit=ctx.options.concurrency,
        on_exhausted=ctx.accounting.finish_enumeration if last_plan else None,
    )
