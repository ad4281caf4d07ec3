"""The life of one run of a job around its plan: open or create the plan, start, end.

A plan lives in the job directory (``SHAREFERRY_JOB_DIR``, default ``~/.shareferry/jobs``) so a
killed job can be resumed. A dry run, or a job whose directory cannot be written, keeps its plan
in a temporary directory removed at the end (a sync still needs it to spool deletions).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shareferry.core.accounting import Snapshot
from shareferry.core.engine.context import Log
from shareferry.core.jobowner import OwnerLock
from shareferry.core.jobplan import JobPlan, JobRecord, job_dir_from_env
from shareferry.core.summary import JobStatus


@dataclass
class JobRun:
    """One run of a job: its plan and whether that plan outlives the run."""

    plan: JobPlan
    persistent: bool
    _temporary: Path | None = None
    _owner: OwnerLock | None = None

    @classmethod
    def begin(
        cls,
        record: JobRecord,
        *,
        environ: Mapping[str, str] | None,
        resume: bool,
        keep: bool,
        log: Log,
    ) -> JobRun:
        """Open the plan of ``record.job_id`` (``resume``) or create it. ``keep``: false for a dry
        run. Raises :class:`NotFoundError` when resuming a job that does not exist,
        :class:`JobBusyError` when another process is running the job."""
        directory = job_dir_from_env(environ)
        if resume:
            run = cls(JobPlan.open(directory, record.job_id), persistent=True)
        elif keep:
            try:
                directory.mkdir(parents=True, exist_ok=True)
                run = cls(JobPlan.create(directory, record), persistent=True)
            except OSError as exc:
                log(
                    f"the job plan cannot be kept in {directory} ({exc.strerror or exc}); "
                    "this job cannot be resumed"
                )
                run = cls._temporary_run(record)
        else:
            run = cls._temporary_run(record)
        try:
            run._owner = OwnerLock.acquire(run.plan.path.parent)
        except BaseException:
            run.plan.close()
            raise
        run.plan.start_run()
        return run

    @classmethod
    def _temporary_run(cls, record: JobRecord) -> JobRun:
        temporary = Path(tempfile.mkdtemp(prefix="shareferry-job-"))
        return cls(JobPlan.create(temporary, record), persistent=False, _temporary=temporary)

    def end(self, *, status: JobStatus, counters: Snapshot, error: str | None) -> None:
        try:
            self.plan.end_run(status=status.value, summary=summary_json(counters), error=error)
        finally:
            self.plan.close()
            if self._owner is not None:
                self._owner.release()
            if self._temporary is not None:
                shutil.rmtree(self._temporary, ignore_errors=True)


def new_record(
    *, job_id: str, command: str, source: str, destination: str, from_to: str | None, options: dict[str, Any]
) -> JobRecord:
    now = datetime.now(UTC)
    return JobRecord(
        job_id=job_id,
        command=command,
        source=source,
        destination=destination,
        from_to=from_to,
        options=options,
        created=now,
        updated=now,
        status="Running",
        runs=0,
        summary=None,
        error=None,
    )


def summary_json(counters: Snapshot) -> dict[str, Any]:
    """The counters of a run, as the plan keeps them."""
    return dataclasses.asdict(counters)
