"""Public entry points of the core: ``run_copy`` (and ``make_share``), one job each.

A job resolves its locations and credentials, opens the two backends, streams the plan into the
engine and returns a :class:`JobSummary`. The CLI, the worker pods and the operator all call
these; nothing here prints (subscribers and the ``log`` callback do).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from shareferry.core.accounting import Accounting, FileResult, Snapshot, Subscriber
from shareferry.core.backends.factory import open_destination, open_source
from shareferry.core.backends.service import container_names
from shareferry.core.credentials import resolve_credential
from shareferry.core.engine.context import EngineContext, Log, Prompt, buffer_bytes_from_env
from shareferry.core.engine.limits import ByteBudget
from shareferry.core.engine.scheduler import run_transfers
from shareferry.core.errors import ShareFerryError, UsageError
from shareferry.core.filters import ObjectFilter
from shareferry.core.locations import FromTo, Location, resolve
from shareferry.core.options import TransferOptions
from shareferry.core.planning.copy_plan import plan_copy
from shareferry.core.planning.shard import Shard
from shareferry.core.redact import redact


class JobStatus(StrEnum):
    """AzCopy's final job states."""

    COMPLETED = "Completed"
    COMPLETED_WITH_ERRORS = "CompletedWithErrors"
    COMPLETED_WITH_SKIPPED = "CompletedWithSkipped"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


@dataclass(frozen=True)
class CopyRequest:
    """One ``copy``: AzCopy-style source and destination strings, --from-to and options."""

    source: str
    destination: str
    from_to: str | None = None
    options: TransferOptions = field(default_factory=TransferOptions)


@dataclass
class JobSummary:
    """How a job ended, with its counters and (a bounded list of) failed files."""

    job_id: str
    status: JobStatus
    counters: Snapshot
    from_to: FromTo | None = None
    source: str = ""
    destination: str = ""
    error: str | None = None
    failures: list[FileResult] = field(default_factory=list)
    #: The most bytes held in chunk buffers at once: at most the job's buffer cap
    #: (``SHAREFERRY_BUFFER_MB``), unless a single chunk is larger than the cap.
    peak_buffer_bytes: int = 0

    @property
    def exit_code(self) -> int:
        """0 only when nothing failed (skips are not failures)."""
        return 0 if self.status in (JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_SKIPPED) else 1


def final_status(counters: Snapshot, *, error: str | None, cancelled: bool = False) -> JobStatus:
    """AzCopy's verdict: a failed file or folder makes the job CompletedWithErrors (Failed when
    nothing else finished), a skipped one CompletedWithSkipped."""
    if cancelled:
        return JobStatus.CANCELLED
    if error is not None:
        return JobStatus.FAILED
    failed = counters.files_failed + counters.folders_failed
    skipped = counters.files_skipped + counters.folders_skipped
    if failed:
        succeeded = counters.files_completed + counters.folders_completed
        return JobStatus.COMPLETED_WITH_ERRORS if succeeded or skipped else JobStatus.FAILED
    if skipped:
        return JobStatus.COMPLETED_WITH_SKIPPED
    return JobStatus.COMPLETED


async def run_copy(
    request: CopyRequest,
    *,
    subscribers: Sequence[Subscriber] = (),
    accounting: Accounting | None = None,
    prompt: Prompt | None = None,
    log: Log | None = None,
    environ: Mapping[str, str] | None = None,
    job_id: str | None = None,
) -> JobSummary:
    """Run one copy job to the end. Bad input and credential problems raise
    :class:`ShareFerryError` before anything is touched; failures after that are in the summary.
    ``environ`` (default ``os.environ``) supplies the credentials and ``SHAREFERRY_BUFFER_MB``,
    the cap on chunk buffers held at once (see :mod:`shareferry.core.engine.context`).

    ``accounting`` counts the job: pass one to read its counters while the job runs (a progress
    display); ``subscribers`` are added to its subscribers. Default: a new one for them.

    An account-level source (no share or container in the URL) copies every share or container:
    into same-named ones at an account-level destination (created when missing), or into
    directories named after them otherwise.
    """
    job_id = job_id or str(uuid.uuid4())
    if accounting is None:
        accounting = Accounting(subscribers=list(subscribers))
    else:
        accounting.subscribers.extend(subscribers)
    from_to, source_location, destination_location = resolve(
        request.source, request.destination, request.from_to
    )
    options = request.options
    object_filter = ObjectFilter.build(options.filters)
    budget = ByteBudget(buffer_bytes_from_env(environ))
    error: str | None = None
    try:
        async for source, destination, create in _pairs(
            source_location, destination_location, environ, options
        ):
            await _copy_pair(
                source,
                destination,
                options,
                object_filter,
                accounting,
                create_container=create,
                single=source_location.kind == "local" or source_location.container is not None,
                budget=budget,
                prompt=prompt,
                log=log,
                environ=environ,
            )
    except* ShareFerryError as group:
        nothing_done = accounting.files_enumerated == 0 and accounting.folders_completed == 0
        if nothing_done and all(isinstance(e, UsageError) for e in group.exceptions):
            raise group.exceptions[0] from None  # bad input found while planning: still bad input
        error = "; ".join(redact(str(e)) for e in group.exceptions)
    accounting.finish_enumeration()
    counters = accounting.snapshot()
    return JobSummary(
        job_id=job_id,
        status=final_status(counters, error=error),
        counters=counters,
        from_to=from_to,
        source=source_location.describe(),
        destination=destination_location.describe(),
        error=error,
        failures=list(accounting.failures),
        peak_buffer_bytes=budget.peak,
    )


async def _pairs(
    source: Location, destination: Location, environ: Mapping[str, str] | None, options: TransferOptions
) -> AsyncIterator[tuple[Location, Location, bool]]:
    """The (source, destination, create the destination container) triples a job copies: one,
    or one per container of an account-level source."""
    if source.kind == "local" or source.container is not None:
        yield source, destination, False
        return
    if not options.recursive:
        raise UsageError(f"{source.describe()} names a whole account: use --recursive")
    credential = resolve_credential(source, environ=environ)
    async for name in container_names(source, credential):
        container_source = replace(source, container=name, path="", trailing_slash=False)
        if destination.kind != "local" and destination.container is None:
            yield container_source, replace(destination, container=name, path="", trailing_slash=True), True
        else:
            yield container_source, destination, False


async def _copy_pair(
    source_location: Location,
    destination_location: Location,
    options: TransferOptions,
    object_filter: ObjectFilter,
    accounting: Accounting,
    *,
    create_container: bool,
    single: bool,
    budget: ByteBudget,
    prompt: Prompt | None,
    log: Log | None,
    environ: Mapping[str, str] | None,
) -> None:
    source = await open_source(source_location, environ=environ, options=options)
    try:
        destination = await open_destination(destination_location, environ=environ, options=options)
        try:
            if create_container and not options.dry_run:
                create = getattr(destination.backend, "create_share", None) or getattr(
                    destination.backend, "create_container", None
                )
                if create is not None:
                    await (create(quota_gb=None) if destination_location.kind == "file" else create())
            ctx = EngineContext.create(
                source=source.backend,
                destination=destination.backend,
                options=options,
                accounting=accounting,
                prompt=prompt,
                log=log,
                budget=budget,
            )
            plan = plan_copy(
                source.backend,
                source.path,
                destination=destination.backend,
                destination_path=destination.path,
                destination_is_dir_hint=destination.is_dir_hint,
                recursive=options.recursive,
                object_filter=object_filter,
                shard=Shard(options.shard_index, options.shard_count) if options.shard_count > 1 else None,
                source_root_name=source_location.container if source_location.kind != "local" else None,
            )
            await run_transfers(ctx, plan, last_plan=single)
        finally:
            await destination.backend.close()
    finally:
        await source.backend.close()
