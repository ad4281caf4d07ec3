"""Carrying out a sync's verdicts: copy what must be copied, count what is unchanged, spool
what may be deleted.

Items come judged from :func:`shareferry.core.planning.sync_plan.plan_sync`. Copies go through
the same copier (and job plan) as ``copy``; a file whose verdict needs hashes is checked inside
a concurrency slot (a stat, or reading a local file) before it is copied or left alone.
Deletion candidates are only spooled into the job plan here: :mod:`shareferry.core.engine.deleter`
deletes them once both listings have completed.

A file whose destination is newer and differs (:data:`Verdict.NEWER_AT_DESTINATION`, also the
outcome of a hash check that falls back to the times) is left alone: no transfer, counted in the
sync's counters, and told to the subscribers (a ``--report`` line) through
:meth:`~shareferry.core.accounting.Accounting.left_alone`.

Resume: a file an earlier run of the same job completed is counted as completed again (nothing
is sent); a file an earlier run started but did not finish is copied again when the destination
is not newer, whatever the times say. Writes are staged (see
:mod:`shareferry.core.backends.staging`), so what sits at its final name is never the unfinished
file; a newer destination there is someone else's and is kept. Files left alone are never in the
plan: each run judges them afresh and counts them once.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from shareferry.core.accounting import FileResult, Outcome, SyncCounts
from shareferry.core.backends.base import Backend
from shareferry.core.engine.context import EngineContext
from shareferry.core.engine.copier import request
from shareferry.core.engine.resume import EARLIER_RUN, finished_earlier, unfinished_earlier
from shareferry.core.engine.scheduler import run_bounded, transfer_and_count
from shareferry.core.jobplan import JobPlan
from shareferry.core.objects import StoredObject
from shareferry.core.planning.copy_plan import Transfer
from shareferry.core.planning.sync_plan import (
    Compare,
    Judgement,
    SyncItem,
    Verdict,
    judge_hashes,
)

HASH_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class SyncTarget:
    """Where the judged paths live: each side's root, and whether to spool deletions."""

    source_root: str
    destination_root: str
    delete: bool
    compare: Compare


def _join(root: str, relative: str) -> str:
    return f"{root}/{relative}" if root and relative else root or relative


def sync_counts(ctx: EngineContext) -> SyncCounts:
    if ctx.accounting.sync is None:
        ctx.accounting.sync = SyncCounts()
    return ctx.accounting.sync


async def run_sync_items(
    ctx: EngineContext, items: AsyncIterator[SyncItem], *, target: SyncTarget, spool: JobPlan
) -> None:
    """Act on every item (see the module docstring); returns when every copy has ended.
    Raises what the listing raised: then nothing must be deleted."""
    counts = sync_counts(ctx)

    async def work() -> AsyncIterator[SyncItem]:
        async for item in items:
            if item.source is not None and not item.source.is_dir:
                counts.source_files_scanned += 1
            if item.destination is not None and not item.destination.is_dir:
                counts.destination_files_scanned += 1
            if item.verdict is Verdict.DELETE:
                if target.delete:
                    assert item.destination is not None
                    spool.delete_candidate(_join(target.destination_root, item.relative), is_dir=item.is_dir)
                continue
            if item.verdict is Verdict.NEWER_AT_DESTINATION:
                assert item.source is not None
                _leave_newer(ctx, item.source, _join(target.destination_root, item.relative), item.reason)
                continue
            if item.verdict is Verdict.UNCHANGED and (item.is_dir or not _needs_look(ctx, item, target)):
                if not item.is_dir:
                    counts.files_unchanged += 1
                continue
            yield item

    await run_bounded(
        work(),
        lambda item: _act(ctx, item, target),
        limit=ctx.options.concurrency,
        on_exhausted=ctx.accounting.finish_enumeration,
    )


def _needs_look(ctx: EngineContext, item: SyncItem, target: SyncTarget) -> bool:
    """An unchanged file still needs the plan's word when an earlier run of this job touched it."""
    if ctx.plan is None:
        return False
    destination = _join(target.destination_root, item.relative)
    return ctx.plan.previous(destination) is not None


async def _act(ctx: EngineContext, item: SyncItem, target: SyncTarget) -> None:
    source = item.source
    assert source is not None
    destination = _join(target.destination_root, item.relative)
    transfer = Transfer(source=source, destination=destination, is_dir=source.is_dir)
    if item.verdict is Verdict.CONFLICT:
        if not source.is_dir:
            ctx.accounting.queued(destination, source.size)
        ctx.accounting.done(
            FileResult(
                destination,
                source.size,
                Outcome.FAILED,
                error=f"cannot sync {ctx.source.describe(source.path)}: {item.reason}",
                is_dir=source.is_dir,
                source=ctx.source.describe(source.path),
                destination=ctx.destination.describe(destination),
            )
        )
        return
    if source.is_dir:
        await transfer_and_count(ctx, transfer)
        return
    if item.verdict is Verdict.REFUSED:  # reported as the source's refusal says, nothing copied
        ctx.accounting.queued(destination, source.size)
        await transfer_and_count(ctx, transfer)
        return
    verdict: Verdict = item.verdict
    reason = item.reason
    if verdict is Verdict.CHECK:
        assert item.destination is not None
        judgement = await _compare_hashes(ctx, source, item.destination)
        verdict, reason = judgement.verdict, judgement.reason
    if verdict is Verdict.NEWER_AT_DESTINATION:
        _leave_newer(ctx, source, destination, reason)
        return
    if verdict is Verdict.UNCHANGED:
        earlier = finished_earlier(ctx, destination, source)
        if earlier is not None:
            ctx.accounting.queued(destination, source.size)
            ctx.accounting.done(
                FileResult(
                    destination,
                    source.size,
                    Outcome.COMPLETED,
                    md5=earlier or None,
                    reason=EARLIER_RUN,
                    source=ctx.source.describe(source.path),
                    destination=ctx.destination.describe(destination),
                    resumed=True,
                )
            )
            return
        if not unfinished_earlier(ctx, destination):
            sync_counts(ctx).files_unchanged += 1
            return
    ctx.accounting.queued(destination, source.size)
    await transfer_and_count(ctx, transfer)


def _leave_newer(ctx: EngineContext, source: StoredObject, destination: str, reason: str) -> None:
    """Keep a destination file that is (or may be) newer than the source and differs from it:
    counted, and a line for the report saying why; nothing is read or written."""
    sync_counts(ctx).files_newer_at_destination += 1
    ctx.accounting.left_alone(
        FileResult(
            destination,
            source.size,
            Outcome.SKIPPED,
            reason=reason,
            source=ctx.source.describe(source.path),
            destination=ctx.destination.describe(destination),
        )
    )


async def _compare_hashes(ctx: EngineContext, source: StoredObject, destination: StoredObject) -> Judgement:
    """``--compare-hash``: MD5 against MD5; the times decide when either is unknown (see
    :func:`~shareferry.core.planning.sync_plan.judge_hashes`). Files of different sizes differ:
    then only whether each side has an MD5 matters, and a local file is not read."""
    read = source.size == destination.size
    source_md5 = await _md5(ctx, ctx.source, source, read_local=read)
    destination_md5 = await _md5(ctx, ctx.destination, destination, read_local=read)
    return judge_hashes(
        source,
        destination,
        source_md5=source_md5,
        destination_md5=destination_md5,
        smb_times=ctx.options.preserve_smb_info,
    )


async def _md5(ctx: EngineContext, backend: Backend, obj: StoredObject, *, read_local: bool) -> bytes | None:
    """The object's MD5: from its listing, its stored properties, or (local) its bytes; without
    ``read_local`` a local file's is not computed (``b""``: it has one, not needed)."""
    if obj.md5 is not None:
        return obj.md5
    if backend.kind != "local":
        stat = await request(ctx, lambda: backend.stat(obj.path))
        return stat.md5 if stat is not None else None
    if not read_local:
        return b""
    digest = hashlib.md5(usedforsecurity=False)
    offset = 0

    def reader(at: int) -> Callable[[], Awaitable[bytes]]:
        return lambda: backend.read(obj.path, at, HASH_CHUNK)

    while offset < obj.size:
        data = await request(ctx, reader(offset))
        if not data:
            break
        digest.update(data)
        offset += len(data)
    return digest.digest()
