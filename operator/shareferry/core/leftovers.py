"""Removing the staging files an interrupted earlier run of the same transfer left behind.

A run that dies (``kill -9``, an evicted pod, a power cut) cannot remove the staging files of the
files it was writing (see :mod:`shareferry.core.backends.staging`). They never look finished and
are never copied, but they hold space and litter the share. Its plan knows exactly which
files were in flight (planned, never settled) and its job id names their staging files, so a
later run of the same command between the same two places removes them before it starts:
``jobs resume`` reuses them by name, and a fresh run (a user running ``sync`` again, a new
CopyJob from a SyncSchedule with the same plan directory) sweeps them here.

Only jobs whose process is gone (:data:`~shareferry.core.jobowner.INTERRUPTED`) are swept: a job
that is still running owns its staging files. Finding them costs a ``stat`` per job directory
(:func:`~shareferry.core.jobowner.died_mid_run`); only their plans are opened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from shareferry.core.backends.factory import open_destination
from shareferry.core.credentials import Environ
from shareferry.core.errors import ShareFerryError
from shareferry.core.jobowner import INTERRUPTED, died_mid_run
from shareferry.core.jobplan import FileState, JobPlan, JobRecord, PlanUnreadableError, list_job_ids
from shareferry.core.locations import Location
from shareferry.core.options import TransferOptions

#: Files swept per earlier job at most (a plan holds at most the files in flight as planned;
#: this bounds the work if a damaged plan says otherwise).
MAX_SWEPT_PER_JOB = 100_000


def interrupted_runs_of(directory: Path, record: JobRecord) -> list[tuple[str, list[str]]]:
    """``(job id, destination paths in flight)`` of every interrupted job in ``directory`` that
    ran the same command from the same source to the same destination as ``record``."""
    found = []
    for earlier in _died_mid_run(directory):
        if earlier.job_id == record.job_id or earlier.status != INTERRUPTED:
            continue
        same = (earlier.command, earlier.source, earlier.destination, earlier.from_to) == (
            record.command,
            record.source,
            record.destination,
            record.from_to,
        )
        if not same:
            continue
        with (
            contextlib.suppress(PlanUnreadableError, OSError, ShareFerryError),
            JobPlan.open(directory, earlier.job_id) as plan,
        ):
            paths = [
                file.destination for file in plan.files(state=FileState.PLANNED, limit=MAX_SWEPT_PER_JOB)
            ]
            if paths:
                found.append((earlier.job_id, paths))
    return found


def _died_mid_run(directory: Path) -> list[JobRecord]:
    """The records of the jobs in ``directory`` whose last run died; only their plans are
    opened (a job directory that ended normally costs one ``stat``)."""
    records = []
    for job_id in list_job_ids(directory):
        if died_mid_run(directory / job_id):
            with (
                contextlib.suppress(PlanUnreadableError, OSError, ShareFerryError),
                JobPlan.open(directory, job_id) as plan,
            ):
                records.append(plan.record)
    return records


async def sweep_interrupted(
    directory: Path,
    record: JobRecord,
    destination: Location,
    *,
    options: TransferOptions,
    environ: Environ | None,
    log: Callable[[str], None],
) -> int:
    """Remove the staging files that interrupted runs of ``record``'s transfer left at
    ``destination``; returns how many were removed. Best effort: a failure is logged, never
    raised (the run itself is what matters)."""
    if options.dry_run or (destination.kind != "local" and destination.container is None):
        return 0  # nothing to write; account-level destinations keep one backend per container
    earlier = interrupted_runs_of(directory, record)
    if not earlier:
        return 0
    removed = 0
    try:
        opened = await open_destination(destination, environ=environ, options=options)
    except ShareFerryError as error:
        log(f"cannot remove unfinished files of an interrupted earlier run: {error}")
        return 0
    backend = opened.backend
    remover = getattr(backend, "remove_staged", None)
    try:
        if remover is None:
            return 0
        for job_id, paths in earlier:
            for path in paths:
                try:
                    removed += bool(await remover(path, job_key=job_id))
                except ShareFerryError as error:
                    log(f"cannot remove an unfinished file of job {job_id}: {error}")
    finally:
        await backend.close()
    if removed:
        log(f"removed {removed} unfinished file(s) left by interrupted earlier run(s)")
    return removed
