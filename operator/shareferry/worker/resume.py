"""Whether a shard's run continues the job plan an earlier attempt of it left behind.

A shard's job id is deterministic, so a retried pod (or ``shareferry run`` again after an
interruption) finds the plan its earlier attempt kept in ``SHAREFERRY_JOB_DIR``. That plan is
resumed, so no file it finished is sent again, when the earlier attempt did not complete
cleanly (it was killed, or some files failed) and it ran the very same request. Otherwise (it
completed, or it ran another request: a manifest edited since) the old plan is removed and the
shard starts afresh.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Mapping
from pathlib import Path

from shareferry.core.errors import ShareFerryError
from shareferry.core.jobowner import JobBusyError, owner_alive
from shareferry.core.jobplan import PLAN_FILE, JobPlan, JobRecord, job_dir_from_env
from shareferry.core.jobs import CopyRequest, SyncRequest, resume_request
from shareferry.core.jobspec import stored_location
from shareferry.core.locations import resolve
from shareferry.core.summary import JobStatus

#: An earlier attempt that ended so needs no resuming: the shard runs again from the start.
FINISHED = frozenset({JobStatus.COMPLETED.value, JobStatus.COMPLETED_WITH_SKIPPED.value})


def previous_record(directory: Path, job_id: str) -> JobRecord | None:
    """The record of ``job_id``'s plan, or None when there is none (or it cannot be read)."""
    if not (directory / job_id / PLAN_FILE).exists():
        return None
    try:
        with JobPlan.open(directory, job_id) as plan:
            return plan.record
    except Exception:  # damaged, or of another version: treated as no plan (it is removed)
        return None


def same_request(record: JobRecord, request: CopyRequest | SyncRequest) -> bool:
    """The plan ran ``request`` (locations without SAS, ``--from-to``, options; the concurrency,
    a setting of the pod, aside)."""
    try:
        previous = resume_request(record)
        from_to, source, destination = resolve(request.source, request.destination, request.from_to)
    except ShareFerryError:
        return False
    if type(previous) is not type(request) or record.from_to != from_to.value:
        return False
    if (record.source, record.destination) != (
        stored_location(source, request.source),
        stored_location(destination, request.destination),
    ):
        return False
    options = dataclasses.replace(previous.options, concurrency=request.options.concurrency)
    if options != request.options:
        return False
    if isinstance(request, SyncRequest):
        assert isinstance(previous, SyncRequest)
        return previous.sync == request.sync
    return True


def should_resume(
    request: CopyRequest | SyncRequest, *, job_id: str, environ: Mapping[str, str] | None
) -> bool:
    """True to resume ``job_id``'s plan; False to start afresh (an old plan is removed first)."""
    if request.options.dry_run:
        return False
    directory = job_dir_from_env(environ)
    job_dir = directory / job_id
    if not job_dir.exists():
        return False
    if owner_alive(job_dir):  # another pod still runs it: never remove a plan in use
        raise JobBusyError(f"job {job_id} is already running in another process; retrying later")
    record = previous_record(directory, job_id)
    if record is not None and record.status not in FINISHED and same_request(record, request):
        return True
    shutil.rmtree(job_dir, ignore_errors=True)  # by its exact path: never a prefix match
    return False
