"""Counting every file and byte of a job, per-file results, and progress to subscribers.

The engine reports here; subscribers (the terminal display, the JSON-lines writer, the report
file, the worker's status patcher) are told about each event. Everything runs on one event loop,
so no locking is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

#: Seconds from an arbitrary start (``time.monotonic``; a fake one in tests).
Clock = Callable[[], float]


class Outcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class FileResult:
    """What happened to one file (or folder): the line a ``--report`` file gets."""

    path: str
    size: int
    outcome: Outcome
    md5: str | None = None  # hex of the bytes that landed (or the source's for server-side)
    error: str | None = None
    is_dir: bool = False
    reason: str | None = None  # why skipped (exists, not newer, filtered...)
    source: str | None = None  # printable source (URL without SAS, or local path)
    destination: str | None = None  # printable destination
    resumed: bool = False  # completed by an earlier run of the same job (nothing sent now)


@dataclass
class Snapshot:
    """Counters at one moment, plus derived rates. Files and folders are counted apart (AzCopy
    reports them apart); ``bytes_settled`` are the bytes of files that finished without
    transferring (skipped or failed), so progress reaches 100 % when every file is settled."""

    files_enumerated: int
    bytes_enumerated: int
    files_completed: int
    files_failed: int
    files_skipped: int
    folders_completed: int
    bytes_transferred: int
    elapsed: float
    enumeration_done: bool
    folders_failed: int = 0
    folders_skipped: int = 0
    bytes_settled: int = 0
    files_resumed: int = 0
    bytes_resumed: int = 0
    sync: SyncCounts | None = None

    @property
    def files_settled(self) -> int:
        """Files that finished one way or another."""
        return self.files_completed + self.files_failed + self.files_skipped

    @property
    def file_transfers(self) -> int:
        """Files in the job as far as known: enumerated, or settled if more (never fewer)."""
        return max(self.files_enumerated, self.files_settled)

    @property
    def folder_transfers(self) -> int:
        """Folders that finished one way or another (folders are not enumerated ahead)."""
        return self.folders_completed + self.folders_failed + self.folders_skipped

    @property
    def throughput(self) -> float:
        """Bytes per second since the start (bytes an earlier run sent do not count)."""
        sent = self.bytes_transferred - self.bytes_resumed
        return sent / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def percent(self) -> float:
        """How much of what is known is settled: by bytes, or by files when there are none."""
        if self.bytes_enumerated > 0:
            done = self.bytes_transferred + self.bytes_settled
            return min(100.0, 100.0 * done / self.bytes_enumerated)
        if self.files_enumerated > 0:
            return min(100.0, 100.0 * self.files_settled / self.files_enumerated)
        return 100.0 if self.enumeration_done else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the average rate; None until enumeration is over or nothing moved."""
        rate = self.throughput
        if not self.enumeration_done or rate <= 0:
            return None
        left = self.bytes_enumerated - self.bytes_transferred - self.bytes_settled
        return max(0.0, left / rate)


@dataclass
class SyncCounts:
    """What a sync adds to the counters, in AzCopy's terms: files scanned on each side, files
    found unchanged, files left alone because the destination is newer and differs (not
    transfers, like unchanged ones), and deletions (candidates, done, failed)."""

    source_files_scanned: int = 0
    destination_files_scanned: int = 0
    files_unchanged: int = 0
    files_newer_at_destination: int = 0
    delete_total: int = 0
    delete_completed: int = 0
    delete_failed: int = 0


class Subscriber(Protocol):
    """Told about a job's events; every method is optional in spirit (implement as no-ops)."""

    def on_queued(self, path: str, size: int) -> None: ...

    def on_progress(self, nbytes: int) -> None: ...

    def on_done(self, result: FileResult) -> None: ...

    # Optional: ``on_enumerated(self) -> None`` is called once the whole plan has been listed,
    # and ``on_left_alone(self, result: FileResult) -> None`` for each file a sync kept without
    # a transfer for a reason worth a line of its own (see :meth:`Accounting.left_alone`), and
    # ``on_would_delete(self, shown: str, *, is_dir: bool) -> None`` for each object a dry-run
    # sync would delete at the destination (see :meth:`Accounting.would_delete`).


@dataclass
class Accounting:
    """The job's counters and its subscribers. ``failures`` and ``skips`` keep the first
    ``max_kept_failures`` / ``max_kept_skips`` failed and skipped results (files and folders), so
    a job of millions of them stays small; the counters count them all."""

    subscribers: list[Subscriber] = field(default_factory=list)
    files_enumerated: int = 0
    bytes_enumerated: int = 0
    files_completed: int = 0
    files_failed: int = 0
    files_skipped: int = 0
    folders_completed: int = 0
    folders_failed: int = 0
    folders_skipped: int = 0
    bytes_transferred: int = 0
    bytes_settled: int = 0
    enumeration_done: bool = False
    failures: list[FileResult] = field(default_factory=list)
    skips: list[FileResult] = field(default_factory=list)
    clock: Clock = time.monotonic
    started: float = field(init=False)
    max_kept_failures: int = 1000
    max_kept_skips: int = 1000
    files_resumed: int = 0
    bytes_resumed: int = 0
    sync: SyncCounts | None = None  # set by a sync job

    def __post_init__(self) -> None:
        self.started = self.clock()

    def queued(self, path: str, size: int) -> None:
        self.files_enumerated += 1
        self.bytes_enumerated += size
        for subscriber in self.subscribers:
            subscriber.on_queued(path, size)

    def progress(self, nbytes: int) -> None:
        self.bytes_transferred += nbytes
        for subscriber in self.subscribers:
            subscriber.on_progress(nbytes)

    def done(self, result: FileResult) -> None:
        if result.resumed:
            self.files_completed += 1
            self.files_resumed += 1
            self.bytes_transferred += result.size
            self.bytes_resumed += result.size
        elif result.outcome is Outcome.COMPLETED:
            if result.is_dir:
                self.folders_completed += 1
            else:
                self.files_completed += 1
        else:
            if not result.is_dir:
                self.bytes_settled += result.size
            if result.outcome is Outcome.FAILED:
                self._count_failure(result)
            else:
                self._count_skip(result)
        for subscriber in self.subscribers:
            subscriber.on_done(result)

    def _count_failure(self, result: FileResult) -> None:
        if result.is_dir:
            self.folders_failed += 1
        else:
            self.files_failed += 1
        if len(self.failures) < self.max_kept_failures:
            self.failures.append(result)

    def _count_skip(self, result: FileResult) -> None:
        if result.is_dir:
            self.folders_skipped += 1
        else:
            self.files_skipped += 1
        if len(self.skips) < self.max_kept_skips:
            self.skips.append(result)

    def left_alone(self, result: FileResult) -> None:
        """A file a sync judged and kept as it is for a reason a user should see (the
        destination is newer): not a transfer, so no transfer counter moves (the sync counts
        it); subscribers with an ``on_left_alone`` hook (the ``--report`` file) are told."""
        for subscriber in self.subscribers:
            hook = getattr(subscriber, "on_left_alone", None)
            if hook is not None:
                hook(result)

    def would_delete(self, shown: str, *, is_dir: bool) -> None:
        """A dry-run sync would delete ``shown`` (printable, no SAS) at the destination: no
        counter moves; subscribers with an ``on_would_delete`` hook (JSON output) are told."""
        for subscriber in self.subscribers:
            hook = getattr(subscriber, "on_would_delete", None)
            if hook is not None:
                hook(shown, is_dir=is_dir)

    def fail_unsettled(self) -> int:
        """The job stopped on an error (a refused credential, a failed listing): every file that
        was enumerated but never settled counts as failed, so completed, skipped and failed add
        up to the files enumerated. Returns how many were failed so."""
        unsettled = self.files_enumerated - (self.files_completed + self.files_failed + self.files_skipped)
        if unsettled > 0:
            self.files_failed += unsettled
        return max(0, unsettled)

    def finish_enumeration(self) -> None:
        """Everything to transfer is known: totals are final, ETAs become possible."""
        if self.enumeration_done:
            return
        self.enumeration_done = True
        for subscriber in self.subscribers:
            hook = getattr(subscriber, "on_enumerated", None)
            if hook is not None:
                hook()

    def snapshot(self) -> Snapshot:
        return Snapshot(
            files_enumerated=self.files_enumerated,
            bytes_enumerated=self.bytes_enumerated,
            files_completed=self.files_completed,
            files_failed=self.files_failed,
            files_skipped=self.files_skipped,
            folders_completed=self.folders_completed,
            bytes_transferred=self.bytes_transferred,
            elapsed=max(0.0, self.clock() - self.started),
            enumeration_done=self.enumeration_done,
            folders_failed=self.folders_failed,
            folders_skipped=self.folders_skipped,
            bytes_settled=self.bytes_settled,
            files_resumed=self.files_resumed,
            bytes_resumed=self.bytes_resumed,
            sync=None if self.sync is None else replace(self.sync),
        )
