"""A sync's last step: delete what the destination has and the source does not, safely.

Called only after both listings completed without error and every copy ended. The candidates
were spooled in the job plan while listing (memory does not grow with their number). In order:

1. The guard (:meth:`SyncOptions.refuses`): too large a share of the destination would go, so
   :class:`DeletionRefused` is raised and nothing is deleted.
2. ``--dry-run``: one ``DRYRUN: remove <destination>`` line per candidate; nothing is deleted.
3. ``--delete-destination prompt``: one question for the whole batch (no answer: nothing goes).
4. Files, concurrently; then directories, deepest first. A directory that is not empty (it holds
   files the filters excluded, which are never deleted) is kept. On a destination where names
   ignore letter case, a candidate whose name this job copied in another case is kept: it is
   the same file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from shareferry.core.accounting import FileResult, Outcome
from shareferry.core.engine.context import EngineContext
from shareferry.core.engine.copier import request
from shareferry.core.engine.scheduler import run_bounded
from shareferry.core.engine.syncer import sync_counts
from shareferry.core.errors import CredentialError, NotFoundError, ShareFerryError, TransferError
from shareferry.core.jobplan import JobPlan
from shareferry.core.options import DeleteDestination, SyncOptions

#: What a dry run logs for each object it would delete (AzCopy's words).
DRY_RUN_REMOVE = "DRYRUN: remove "

Confirm = Callable[[str], Awaitable[bool]]


class DeletionRefused(ShareFerryError):
    """The deletion guard stopped the sync before it deleted anything."""


async def delete_absent(
    ctx: EngineContext, spool: JobPlan, options: SyncOptions, *, confirm: Confirm | None
) -> None:
    """Delete the spooled candidates (see the module docstring)."""
    counts = sync_counts(ctx)
    files, directories = spool.count_delete_candidates()
    counts.delete_total = files + directories
    if files + directories == 0:
        return
    refusal = options.refuses(deleting=files, destination_files=counts.destination_files_scanned)
    if refusal is not None:
        raise DeletionRefused(refusal)
    if ctx.options.dry_run:
        for path, is_dir in spool.delete_candidates():
            shown = ctx.destination.describe(path)
            ctx.log(DRY_RUN_REMOVE + shown)
            ctx.accounting.would_delete(shown, is_dir=is_dir)
        return
    if options.delete_destination is DeleteDestination.PROMPT:
        question = (
            f"Delete {files} files and {directories} directories at the destination that are "
            "not at the source? [y/N] "
        )
        if confirm is None or not await confirm(question):
            ctx.log("nothing deleted: the deletions were not confirmed")
            return
    keep_case_twins = ctx.destination.capabilities.case_insensitive

    async def candidates(want_dirs: bool) -> AsyncIterator[str]:
        for path, is_dir in spool.delete_candidates():
            if is_dir != want_dirs:
                continue
            if keep_case_twins and spool.planned_in_another_case(path):
                ctx.log(
                    f"kept {ctx.destination.describe(path)}: this sync copied it under another letter case"
                )
                continue
            yield path

    await run_bounded(
        candidates(False), lambda path: _delete(ctx, spool, path, is_dir=False), limit=ctx.options.concurrency
    )
    async for path in candidates(True):  # deepest first: one at a time, parents after children
        await _delete(ctx, spool, path, is_dir=True)
    spool.flush()


async def _delete(ctx: EngineContext, spool: JobPlan, path: str, *, is_dir: bool) -> None:
    counts = sync_counts(ctx)
    shown = ctx.destination.describe(path)
    try:
        await request(ctx, lambda: ctx.destination.delete(path))
    except NotFoundError:
        pass  # already gone: the goal is met
    except CredentialError:
        raise
    except TransferError as error:
        if is_dir:
            ctx.log(f"kept {shown}: {error}")  # not empty: it holds files the filters excluded
            spool.deleted(path, error=str(error))
            return
        counts.delete_failed += 1
        spool.deleted(path, error=str(error))
        ctx.accounting.failures.append(
            FileResult(path, 0, Outcome.FAILED, error=f"delete failed: {error}", destination=shown)
        )
        ctx.log(f"could not delete {shown}: {error}")
        return
    counts.delete_completed += 1
    spool.deleted(path)
