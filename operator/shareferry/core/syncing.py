"""One sync between two locations: march the trees, copy what differs, then delete safely.

``azcopy sync`` semantics (see :mod:`shareferry.core.planning.sync_plan` for how files are
compared): the source directory's *contents* are mirrored into the destination directory (no
extra level named after the source), recursively unless ``recursive`` is false. A source naming a
file syncs that one file (into the destination when it is a directory). On Blob, a trailing
``/`` says "the virtual directory", as in AzCopy, when a blob has the same name.

Order of work, and why it is safe:

1. Both trees are listed as streams and marched; copies start while listing goes on; deletion
   candidates are only spooled in the job plan.
2. If either listing fails, or a listing is out of order, the sync stops: nothing is deleted.
3. After every copy has ended, :func:`shareferry.core.engine.deleter.delete_absent` applies the
   guard, ``--dry-run`` and ``prompt``, then deletes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from shareferry.core.accounting import Accounting
from shareferry.core.backends.factory import open_destination, open_source
from shareferry.core.credentials import Environ
from shareferry.core.engine.context import EngineContext, Log
from shareferry.core.engine.deleter import Confirm, delete_absent
from shareferry.core.engine.limits import ByteBudget
from shareferry.core.engine.resume import PlanScope
from shareferry.core.engine.syncer import SyncTarget, run_sync_items
from shareferry.core.errors import ShareFerryError, UsageError
from shareferry.core.filters import ObjectFilter
from shareferry.core.jobplan import JobPlan
from shareferry.core.locations import Location
from shareferry.core.options import DeleteDestination, SyncOptions, TransferOptions
from shareferry.core.planning.march import Pair
from shareferry.core.planning.shard import Shard
from shareferry.core.planning.sync_plan import Compare, SyncItem, SyncScope, judge_pair, plan_sync


@dataclass(frozen=True)
class SyncSetup:
    """A sync's checked inputs."""

    source: Location
    destination: Location
    options: TransferOptions
    sync: SyncOptions
    object_filter: ObjectFilter

    @classmethod
    def check(
        cls, source: Location, destination: Location, options: TransferOptions, sync: SyncOptions
    ) -> SyncSetup:
        """:class:`UsageError` for what ``sync`` cannot do, before anything is touched: a whole
        account, wildcards, ``--decompress`` (a destination that overlaps the source is refused
        for every job, in :func:`shareferry.core.jobs.run_sync`'s common path)."""
        for side, location in (("source", source), ("destination", destination)):
            if location.kind != "local" and location.container is None:
                raise UsageError(
                    f"sync needs a share or container in the {side} URL ({location.describe()}): "
                    "sync one share or container at a time"
                )
        shown = source.local_path if source.kind == "local" else source.path
        if shown is not None and "*" in shown:
            raise UsageError(
                "sync takes no wildcards in the source: sync the directory and use "
                "--include-pattern / --exclude-pattern to choose files"
            )
        if options.decompress:
            raise UsageError("--decompress is not available for sync (it would never find a file unchanged)")
        return cls(source, destination, options, sync, ObjectFilter.build(options.filters))


def _compare(setup: SyncSetup) -> Compare:
    if setup.sync.compare_hash:
        return Compare.HASH
    if setup.sync.mirror_mode:
        return Compare.MIRROR
    return Compare.TIME


async def sync_pair(
    setup: SyncSetup,
    *,
    accounting: Accounting,
    plan: JobPlan,
    budget: ByteBudget,
    confirm: Confirm | None,
    log: Log,
    environ: Environ | None,
) -> None:
    """Sync ``setup.source`` into ``setup.destination`` (see the module docstring)."""
    options = setup.options
    source = await open_source(setup.source, environ=environ, options=options)
    try:
        destination = await open_destination(setup.destination, environ=environ, options=options)
        try:
            ctx = EngineContext.create(
                source=source.backend,
                destination=destination.backend,
                options=options,
                accounting=accounting,
                log=log,
                budget=budget,
                plan=PlanScope(plan),
            )
            compare = _compare(setup)
            plan.clear_delete_candidates()  # a new run lists again
            items, target = await _items(
                setup, ctx, source.path, destination.path, destination.is_dir_hint, compare
            )
            await run_sync_items(ctx, items, target=target, spool=plan)
            plan.flush()
            await remove_stale_staging(ctx)
            if target.delete:
                await delete_absent(ctx, plan, setup.sync, confirm=confirm)
        finally:
            await destination.backend.close()
    finally:
        await source.backend.close()


async def _items(
    setup: SyncSetup,
    ctx: EngineContext,
    source_path: str,
    destination_path: str,
    destination_is_dir: bool,
    compare: Compare,
) -> tuple[AsyncIterator[SyncItem], SyncTarget]:
    """The judged items and where they live: a whole tree, or one file."""
    source, destination = ctx.source, ctx.destination
    options = setup.options
    source_path = source_path.strip("/")
    destination_path = destination_path.strip("/")
    delete = setup.sync.delete_destination is not DeleteDestination.FALSE
    single = None if setup.source.trailing_slash else await source.stat(source_path)
    if single is not None and not single.is_dir:
        found = await destination.stat(destination_path) if destination_path else None
        into = destination_is_dir or not destination_path or (found is not None and found.is_dir)
        target_path = f"{destination_path}/{single.name}".lstrip("/") if into else destination_path
        existing = await destination.stat(target_path)
        name = target_path.rpartition("/")[2]
        target = SyncTarget(
            source_root="", destination_root=target_path.rpartition("/")[0], delete=False, compare=compare
        )
        scope = SyncScope(
            object_filter=ObjectFilter(), recursive=False, folders=False, smb_times=options.preserve_smb_info
        )
        judged = judge_pair(Pair(name, single, existing), scope, compare)
        return _one(judged), target
    scope = SyncScope(
        object_filter=setup.object_filter,
        recursive=options.recursive,
        shard=Shard(options.shard_index, options.shard_count) if options.shard_count > 1 else None,
        folders=source.capabilities.folders
        and destination.capabilities.folders
        and not setup.object_filter.file_only,
        smb_times=options.preserve_smb_info,
    )
    items = plan_sync(
        source,
        source_path,
        destination=destination,
        destination_root=destination_path,
        scope=scope,
        compare=compare,
    )
    target = SyncTarget(
        source_root=source_path, destination_root=destination_path, delete=delete, compare=compare
    )
    return items, target


async def _one(item: SyncItem | None) -> AsyncIterator[SyncItem]:
    if item is not None:
        yield item


async def remove_stale_staging(ctx: EngineContext) -> int:
    """Remove the stale staging files the destination's listing met (unfinished files of runs
    that died long ago, whose plans this machine does not have: a worker pod without a state
    volume). Only after the destination was listed whole; never in a dry run. Returns how many
    went."""
    stale: list[str] = list(getattr(ctx.destination, "stale_staging", ()))
    if ctx.options.dry_run or not stale:
        return 0
    removed = 0
    for path in stale:
        with contextlib.suppress(ShareFerryError):
            await ctx.destination.delete(path)
            removed += 1
    if removed:
        ctx.log(f"removed {removed} stale unfinished file(s) left by runs that ended long ago")
    return removed
