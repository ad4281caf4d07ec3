"""Public entry points of the core: ``run_copy``, ``run_sync`` and ``resume_request``.

A job resolves its locations and credentials, opens the two backends, streams the plan into the
engine and returns a :class:`JobSummary`. The CLI, the worker pods and the operator all call
these; nothing here prints (subscribers and the ``log`` callback do).

Every run that changes something is a job with a persisted plan (:mod:`shareferry.core.jobplan`)
in ``SHAREFERRY_JOB_DIR``: each file is recorded as it is dispatched and as it ends, so running
the same job again (``resume=True``) sends nothing an earlier run finished. A dry run keeps its
plan in a temporary directory; so does a job whose job directory cannot be written (with a
warning: it cannot be resumed).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from shareferry.core.accounting import Accounting, Subscriber
from shareferry.core.backends.factory import open_destination, open_source
from shareferry.core.backends.service import container_names
from shareferry.core.credentials import Environ, resolve_credential, settings_environ, side_environ
from shareferry.core.destination_layout import LAYOUT_KEY, Layout, decide_layout, stored_layout, with_layout
from shareferry.core.engine.context import EngineContext, Log, Prompt, buffer_bytes_from_env
from shareferry.core.engine.deleter import Confirm
from shareferry.core.engine.limits import ByteBudget
from shareferry.core.engine.resume import PlanScope
from shareferry.core.engine.scheduler import run_transfers
from shareferry.core.errors import ShareFerryError, UsageError
from shareferry.core.filters import ObjectFilter, check_attribute_source
from shareferry.core.joblog import JobLog, JobLogSettings, job_log_path, job_logging
from shareferry.core.jobplan import JobPlan, JobRecord
from shareferry.core.jobrun import JobRun, new_record
from shareferry.core.jobspec import options_from_json, options_to_json, stored_location, with_sas
from shareferry.core.leftovers import sweep_interrupted
from shareferry.core.locations import Location, resolve
from shareferry.core.options import SyncOptions, TransferOptions
from shareferry.core.overlap import Command, check_overlap
from shareferry.core.planning.copy_plan import plan_copy
from shareferry.core.planning.shard import Shard
from shareferry.core.redact import redact
from shareferry.core.summary import JobStatus, JobSummary, final_status
from shareferry.core.syncing import SyncSetup, sync_pair

__all__ = [
    "CopyRequest",
    "JobStatus",
    "JobSummary",
    "SyncRequest",
    "final_status",
    "resume_request",
    "run_copy",
    "run_sync",
]


@dataclass(frozen=True)
class CopyRequest:
    """One ``copy``: AzCopy-style source and destination strings, --from-to and options."""

    source: str
    destination: str
    from_to: str | None = None
    options: TransferOptions = field(default_factory=TransferOptions)
    logging: JobLogSettings = field(default_factory=JobLogSettings)  # the job's log file


@dataclass(frozen=True)
class SyncRequest:
    """One ``sync``: like a copy (recursive by default), plus what sync adds."""

    source: str
    destination: str
    from_to: str | None = None
    options: TransferOptions = field(default_factory=lambda: TransferOptions(recursive=True))
    sync: SyncOptions = field(default_factory=SyncOptions)
    logging: JobLogSettings = field(default_factory=JobLogSettings)


def _record(
    request: CopyRequest | SyncRequest,
    job_id: str,
    source: Location,
    destination: Location,
    from_to: str,
    layout: Layout | None,
) -> JobRecord:
    options = options_to_json(request.options)
    if isinstance(request, SyncRequest):
        options["sync"] = options_to_json(request.sync)
    if layout is not None:
        options[LAYOUT_KEY] = layout.value
    return new_record(
        job_id=job_id,
        command="sync" if isinstance(request, SyncRequest) else "copy",
        source=stored_location(source, request.source),
        destination=stored_location(destination, request.destination),
        from_to=from_to,
        options=options,
    )


def resume_request(
    record: JobRecord, *, source_sas: str | None = None, destination_sas: str | None = None
) -> CopyRequest | SyncRequest:
    """The request a job plan was started with, with SAS tokens given again (plans keep none)."""
    stored = dict(record.options)
    sync = stored.pop("sync", None)
    options = options_from_json(TransferOptions, stored)
    source = with_sas(record.source, source_sas)
    destination = with_sas(record.destination, destination_sas)
    if record.command == "sync":
        return SyncRequest(
            source, destination, record.from_to, options, options_from_json(SyncOptions, sync or {})
        )
    return CopyRequest(source, destination, record.from_to, options)


def _accounting(accounting: Accounting | None, subscribers: Sequence[Subscriber]) -> Accounting:
    if accounting is None:
        return Accounting(subscribers=list(subscribers))
    accounting.subscribers.extend(subscribers)
    return accounting


def _job_error(group: BaseExceptionGroup[ShareFerryError], accounting: Accounting) -> str:
    """The job's error line; bad input found before anything happened is raised as it is."""
    nothing_done = accounting.files_enumerated == 0 and accounting.folders_completed == 0
    if nothing_done and all(isinstance(e, UsageError) for e in group.exceptions):
        raise group.exceptions[0] from None
    return "; ".join(redact(str(e)) for e in group.exceptions)


async def _run_job(
    request: CopyRequest | SyncRequest,
    *,
    job_id: str | None,
    accounting: Accounting,
    environ: Environ | None,
    resume: bool,
    log: Log,
    work: Callable[[Location, Location, JobPlan, ByteBudget], Awaitable[None]],
) -> JobSummary:
    """What every job does around its ``work``: keep its log file (:mod:`.joblog`; none for a
    dry run), resolve the locations, open its plan, run, turn errors into the summary, record
    the outcome in the plan."""
    job_id = job_id or str(uuid.uuid4())
    path = None if request.options.dry_run else job_log_path(job_id, settings_environ(environ))
    with job_logging(job_id, request.logging, path=path) as job_log:
        return await _run_logged_job(
            request,
            job_id=job_id,
            accounting=accounting,
            environ=environ,
            resume=resume,
            log=log,
            work=work,
            job_log=job_log,
        )


async def _run_logged_job(
    request: CopyRequest | SyncRequest,
    *,
    job_id: str,
    accounting: Accounting,
    environ: Environ | None,
    resume: bool,
    log: Log,
    work: Callable[[Location, Location, JobPlan, ByteBudget], Awaitable[None]],
    job_log: JobLog | None,
) -> JobSummary:
    command: Command = "sync" if isinstance(request, SyncRequest) else "copy"
    from_to, source_location, destination_location = resolve(
        request.source, request.destination, request.from_to
    )
    check_overlap(source_location, destination_location, command=command)
    check_attribute_source(request.options.filters, source_kind=source_location.kind)
    settings = settings_environ(environ)
    budget = ByteBudget(buffer_bytes_from_env(settings))
    layout = await decide_layout(
        source_location, destination_location, command=command, options=request.options, environ=environ
    )
    run = JobRun.begin(
        _record(request, job_id, source_location, destination_location, from_to.value, layout),
        environ=settings,
        resume=resume,
        keep=not request.options.dry_run,
        log=log,
    )
    record = run.plan.record
    if job_log is not None:
        _start_log(job_log, record, accounting=accounting, log=log)
    # The first run's decision holds for every later run of the job (it is in the plan's record).
    destination_as_planned = with_layout(destination_location, stored_layout(record.options) or layout)
    error: str | None = None
    status = JobStatus.CANCELLED  # unless it ends otherwise: an interrupt, a kill
    try:
        if run.persistent and not resume:
            await sweep_interrupted(
                run.plan.path.parent.parent,
                record,
                destination_as_planned,
                options=request.options,
                environ=environ,
                log=log,
            )
        try:
            await work(source_location, destination_as_planned, run.plan, budget)
        except* ShareFerryError as group:
            error = _job_error(group, accounting)
            accounting.fail_unsettled()  # every enumerated file ends completed, skipped or failed
        accounting.finish_enumeration()
        counters = accounting.snapshot()
        status = final_status(counters, error=error)
    finally:
        if job_log is not None:
            job_log.ended(status=status.value, counters=accounting.snapshot(), error=error)
        run.end(status=status, counters=accounting.snapshot(), error=error)
    return JobSummary(
        job_id=job_id,
        status=status,
        counters=counters,
        from_to=from_to,
        source=source_location.describe(),
        destination=destination_location.describe(),
        error=error,
        failures=list(accounting.failures),
        peak_buffer_bytes=budget.peak,
        command=command,
        resumable=run.persistent,
    )


async def run_copy(
    request: CopyRequest,
    *,
    subscribers: Sequence[Subscriber] = (),
    accounting: Accounting | None = None,
    prompt: Prompt | None = None,
    log: Log | None = None,
    environ: Environ | None = None,
    job_id: str | None = None,
    resume: bool = False,
) -> JobSummary:
    """Run one copy job to the end. Bad input and credential problems raise
    :class:`ShareFerryError` before anything is touched; failures after that are in the summary.
    ``environ`` (default ``os.environ``) supplies the credentials, ``SHAREFERRY_BUFFER_MB`` (the
    cap on chunk buffers held at once, see :mod:`shareferry.core.engine.context`) and
    ``SHAREFERRY_JOB_DIR`` (where the job's plan is kept); a
    :class:`~shareferry.core.credentials.SideEnvirons` gives each side its own credentials.

    ``accounting`` counts the job: pass one to read its counters while the job runs (a progress
    display); ``subscribers`` are added to its subscribers. Default: a new one for them.
    ``resume``: run job ``job_id`` again from its plan, sending nothing it already finished.

    An account-level source (no share or container in the URL) copies every share or container:
    into same-named ones at an account-level destination (created when missing), or into
    directories named after them otherwise.
    """
    counting = _accounting(accounting, subscribers)
    options = request.options
    object_filter = ObjectFilter.build(options.filters)

    async def work(
        source_location: Location, destination_location: Location, plan: JobPlan, budget: ByteBudget
    ) -> None:
        account_level = source_location.kind != "local" and source_location.container is None
        async for source, destination, create in _pairs(
            source_location, destination_location, environ, options
        ):
            await _copy_pair(
                source,
                destination,
                options,
                object_filter,
                counting,
                create_container=create,
                single=not account_level,
                budget=budget,
                prompt=prompt,
                log=log,
                environ=environ,
                plan=PlanScope(plan, f"{source.container}/" if account_level else ""),
            )

    return await _run_job(
        request,
        job_id=job_id,
        accounting=counting,
        environ=environ,
        resume=resume,
        log=log or _quiet,
        work=work,
    )


async def run_sync(
    request: SyncRequest,
    *,
    subscribers: Sequence[Subscriber] = (),
    accounting: Accounting | None = None,
    confirm: Confirm | None = None,
    log: Log | None = None,
    environ: Environ | None = None,
    job_id: str | None = None,
    resume: bool = False,
) -> JobSummary:
    """Run one sync job to the end (see :mod:`shareferry.core.syncing` for the rules).

    As :func:`run_copy` for the arguments; ``confirm`` asks once before deleting when
    ``--delete-destination prompt`` (without it nothing is deleted). Nothing is deleted unless
    both listings completed, every copy ended, and the deletion guard allows it.
    """
    counting = _accounting(accounting, subscribers)
    say = log or _quiet
    _, source_location, destination_location = resolve(request.source, request.destination, request.from_to)
    setup = SyncSetup.check(source_location, destination_location, request.options, request.sync)

    async def work(_source: Location, destination: Location, plan: JobPlan, budget: ByteBudget) -> None:
        await sync_pair(
            replace(setup, destination=destination),  # a local destination as the job first took it
            accounting=counting,
            plan=plan,
            budget=budget,
            confirm=confirm,
            log=say,
            environ=environ,
        )

    return await _run_job(
        request, job_id=job_id, accounting=counting, environ=environ, resume=resume, log=say, work=work
    )


def _start_log(job_log: JobLog, record: JobRecord, *, accounting: Accounting, log: Log) -> None:
    """Open the job's log file (a warning when it cannot be: the job then logs nothing), note the
    start of this run in it, and log each file that ends there."""
    try:
        job_log.attach()
    except OSError as exc:
        job_log.detach()
        log(f"the job log {job_log.path} cannot be written ({exc.strerror or exc}); this job logs nothing")
        return
    job_log.started(
        command=record.command, source=record.source, destination=record.destination, run=record.runs
    )
    accounting.subscribers.append(job_log)


def _quiet(_text: str) -> None:
    return None


async def _pairs(
    source: Location, destination: Location, environ: Environ | None, options: TransferOptions
) -> AsyncIterator[tuple[Location, Location, bool]]:
    """The (source, destination, create the destination container) triples a job copies: one,
    or one per container of an account-level source."""
    if source.kind == "local" or source.container is not None:
        yield source, destination, False
        return
    if not options.recursive:
        raise UsageError(f"{source.describe()} names a whole account: use --recursive")
    credential = resolve_credential(
        source, environ=side_environ(environ, "source"), trusted_suffixes=options.trusted_suffixes
    )
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
    environ: Environ | None,
    plan: PlanScope,
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
                plan=plan,
            )
            transfers = plan_copy(
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
            await run_transfers(ctx, transfers, last_plan=single)
        finally:
            await destination.backend.close()
    finally:
        await source.backend.close()
