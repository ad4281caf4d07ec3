"""How a job ended: its final status (AzCopy's words) and summary, for every front end."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from shareferry.core.accounting import FileResult, Snapshot
from shareferry.core.locations import FromTo


class JobStatus(StrEnum):
    """AzCopy's final job states."""

    COMPLETED = "Completed"
    COMPLETED_WITH_ERRORS = "CompletedWithErrors"
    COMPLETED_WITH_SKIPPED = "CompletedWithSkipped"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


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
    command: str = "copy"
    #: The job can be resumed (its plan is kept in the job directory).
    resumable: bool = False

    @property
    def exit_code(self) -> int:
        """0 only when nothing failed (skips are not failures)."""
        return 0 if self.status in (JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_SKIPPED) else 1


def final_status(counters: Snapshot, *, error: str | None, cancelled: bool = False) -> JobStatus:
    """AzCopy's verdict: a failed file or folder (or deletion) makes the job CompletedWithErrors
    (Failed when nothing else went right), a skipped one CompletedWithSkipped."""
    if cancelled:
        return JobStatus.CANCELLED
    if error is not None:
        return JobStatus.FAILED
    failed = counters.files_failed + counters.folders_failed
    succeeded = counters.files_completed + counters.folders_completed
    if counters.sync is not None:
        failed += counters.sync.delete_failed
        sync = counters.sync
        succeeded += sync.delete_completed + sync.files_unchanged + sync.files_newer_at_destination
    skipped = counters.files_skipped + counters.folders_skipped
    if failed:
        return JobStatus.COMPLETED_WITH_ERRORS if succeeded or skipped else JobStatus.FAILED
    if skipped:
        return JobStatus.COMPLETED_WITH_SKIPPED
    return JobStatus.COMPLETED
