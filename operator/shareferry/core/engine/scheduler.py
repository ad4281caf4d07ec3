"""Running a stream of transfers with bounded concurrency until the plan is exhausted.

Transfers are pulled from the plan only as slots free up, so a plan of millions of files never
sits in memory. Results go to the job's accounting. A credential error stops the whole job (every
other request would fail the same way); any other failure is one failed file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from shareferry.core.engine.context import EngineContext
from shareferry.core.engine.copier import copy_one
from shareferry.core.planning.copy_plan import Transfer


async def run_transfers(ctx: EngineContext, plan: AsyncIterator[Transfer], *, last_plan: bool = True) -> None:
    """Copy every transfer of ``plan``; returns when all are done (or raises a fatal error).
    ``last_plan``: no other plan follows in this job, so its end is the end of enumeration."""
    slots = asyncio.Semaphore(max(1, ctx.options.concurrency))

    async def run(transfer: Transfer) -> None:
        try:
            ctx.accounting.done(await copy_one(ctx, transfer))
        finally:
            slots.release()

    async with asyncio.TaskGroup() as group:
        async for transfer in plan:
            if not transfer.is_dir:
                ctx.accounting.queued(transfer.destination, transfer.source.size)
            await slots.acquire()
            group.create_task(run(transfer))
        if last_plan:
            ctx.accounting.finish_enumeration()
