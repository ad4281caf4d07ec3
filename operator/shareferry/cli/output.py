"""What a transfer command prints: a live progress line, AzCopy's summary, JSON lines, a report.

Every output owns the job's :class:`~shareferry.core.accounting.Accounting` (``accounting``, which
the command hands to ``run_copy``), reads every counter from its snapshot and is one of its
subscribers (``on_queued`` / ``on_progress`` / ``on_done``). Around the job the command calls
:meth:`started`, :meth:`message` (the core's log lines), :meth:`tick` (every :attr:`tick_seconds`
while the job runs), :meth:`finished` and :meth:`fatal`. Nothing is printed unredacted, and no
name reaches a terminal or a log with a raw control character: text goes through
:func:`~shareferry.core.printable.printable` (``\x1b``, ``\n``, ``\u202e`` written as escapes),
JSON through :func:`~shareferry.core.printable.printable_json` (the exact name, JSON-escaped).

* :class:`TextOutput`: on a terminal a single line redrawn at most twice a second (percent,
  files done / failed / skipped of those enumerated so far, ``+`` while still enumerating,
  bytes, MiB/s, ETA); then AzCopy's ``Job <id> summary`` block. ``DRYRUN:`` lines go to stdout;
  other core messages (retries, MD5 mismatches under LogOnly, fallbacks: all warnings) go to
  stderr as ``WARNING: ...``; up to :data:`MAX_FAILED_LINES` failures are listed as
  ``FAILED: <path>: <error>``.
* :class:`JsonOutput`: AzCopy's ``--output-type json`` lines, ``{"TimeStamp", "MessageType",
  "MessageContent", "PromptDetails"}``: ``Init`` at the start, ``Progress`` at most every 2 s,
  ``EndOfJob`` at the end, ``Info`` for core messages (``WARNING: ...``), ``Error`` for a fatal
  error. ``Progress`` and ``EndOfJob`` carry AzCopy's ListJobSummaryResponse as a JSON-encoded
  string, counters as decimal strings (AzCopy encodes them with ``,string``). A dry run prints
  as AzCopy 10.32 does: no ``Init`` and no ``Progress``, one ``Dryrun`` per file, folder and (sync)
  deletion (:func:`dry_run_content`), and an ``EndOfJob`` whose content is empty.
* :class:`ReportWriter`: ``--report FILE``, one JSON object per file or folder as it finishes.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from shareferry.core.accounting import Accounting, Clock, FileResult, Outcome, Snapshot
from shareferry.core.humanize import human_bytes, human_duration
from shareferry.core.printable import printable, printable_json
from shareferry.core.redact import redact

if TYPE_CHECKING:
    from shareferry.core.jobs import JobSummary

MIB = 1024 * 1024
MAX_FAILED_LINES = 20
#: Failed and skipped transfers listed in a JSON summary (AzCopy lists all; a bound keeps a
#: job of millions of skips from building a message of gigabytes).
MAX_LISTED_TRANSFERS = 1000
LIVE_TICK_SECONDS = 0.5
JSON_TICK_SECONDS = 2.0

Now = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


# ---- formatting (pure) -----------------------------------------------------------------------


def progress_line(counters: Snapshot) -> str:
    """The live line: ``42.0 %, 10 Done, 1 Failed, 2 Skipped, 30+ Total, 12.0 MiB, 3.1 MiB/s, ETA 0:00:07``."""
    total = f"{counters.file_transfers}{'' if counters.enumeration_done else '+'}"
    eta = counters.eta_seconds
    return (
        f"{counters.percent:.1f} %, {counters.files_completed} Done, {counters.files_failed} Failed, "
        f"{counters.files_skipped} Skipped, {total} Total, {human_bytes(counters.bytes_transferred)}, "
        f"{counters.throughput / MIB:.1f} MiB/s, ETA {human_duration(eta) if eta is not None else '--'}"
    )


def summary_text(summary: JobSummary) -> str:
    """AzCopy's end-of-job block, counted from ``summary``."""
    counters = summary.counters
    file_transfers = counters.file_transfers
    folders = counters.folder_transfers
    lines = [
        f"Job {summary.job_id} summary",
        f"Elapsed Time (Minutes): {counters.elapsed / 60:.4f}",
        f"Number of File Transfers: {file_transfers}",
        f"Number of Folder Property Transfers: {folders}",
        "Number of Symlink Transfers: 0",
        f"Total Number of Transfers: {file_transfers + folders}",
        f"Number of File Transfers Completed: {counters.files_completed}",
        f"Number of Folder Transfers Completed: {counters.folders_completed}",
        f"Number of File Transfers Failed: {counters.files_failed}",
        f"Number of Folder Transfers Failed: {counters.folders_failed}",
        f"Number of File Transfers Skipped: {counters.files_skipped}",
        f"Number of Folder Transfers Skipped: {counters.folders_skipped}",
        # AzCopy 10.32 counts these four for NFS shares only; ShareFerry's SMB and Blob never have one.
        "Number of Symbolic Links Skipped: 0",
        "Number of Hardlinks Converted: 0",
        "Number of Hardlinks Skipped: 0",
        "Number of Special Files Skipped: 0",
        f"Total Number of Bytes Transferred: {counters.bytes_transferred}",
        f"Final Job Status: {summary.status.value}",
    ]
    if counters.files_resumed:
        lines.insert(-1, f"Files Completed by Earlier Runs: {counters.files_resumed}")
    sync = counters.sync
    if sync is not None:
        lines[1:1] = [
            f"Files Scanned at Source: {sync.source_files_scanned}",
            f"Files Scanned at Destination: {sync.destination_files_scanned}",
            f"Files Unchanged: {sync.files_unchanged}",
            f"Files Skipped Because the Destination Is Newer: {sync.files_newer_at_destination}",
        ]
        lines.insert(
            -1, f"Number of Deletions at Destination: {sync.delete_completed} of {sync.delete_total}"
        )
        if sync.delete_failed:
            lines.insert(-1, f"Number of Deletions Failed: {sync.delete_failed}")
    if summary.resumable and summary.exit_code != 0:
        lines.append(f"Resume it with: shareferry jobs resume {summary.job_id}")
    return "\n".join(lines)


def failure_lines(
    failures: list[FileResult], total_failed: int, *, limit: int = MAX_FAILED_LINES
) -> list[str]:
    """``FAILED: <path>: <error>`` for the first ``limit`` failures, and how many more there are;
    each one line, its path escaped (:func:`~shareferry.core.printable.printable`)."""
    lines = [
        f"FAILED: {printable(result.path)}: {printable(one_line(result.error or 'failed'))}"
        for result in failures[:limit]
    ]
    more = total_failed - len(lines)
    if more > 0:
        lines.append(f"... and {more} more failed")
    return lines


@functools.cache
def dry_run_markers() -> tuple[str, str, str]:
    """The engine's ``DRYRUN: copy ``, `` to `` and ``DRYRUN: remove ``, imported when a job
    first prints (a usage error never loads the engine, so the command answers sooner)."""
    from shareferry.core.engine.copier import DRY_RUN_PREFIX, DRY_RUN_SEPARATOR
    from shareferry.core.engine.deleter import DRY_RUN_REMOVE

    return DRY_RUN_PREFIX, DRY_RUN_SEPARATOR, DRY_RUN_REMOVE


# ---- AzCopy's JSON shapes --------------------------------------------------------------------

_COMPACT = (",", ":")
_NO_PROMPT: dict[str, Any] = {"PromptType": "", "ResponseOptions": None, "PromptTarget": ""}
_TRANSFER_STATUS = {Outcome.FAILED: "Failed", Outcome.SKIPPED: "SkippedEntityAlreadyExists"}


def json_line(message_type: str, content: str, *, now: datetime, prompt: dict[str, Any] | None = None) -> str:
    """One line of AzCopy's JSON output; ``content`` is a plain string (often itself JSON)."""
    return json_text(
        {
            "TimeStamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "MessageType": message_type,
            "MessageContent": redact(content),
            "PromptDetails": prompt if prompt is not None else _NO_PROMPT,
        },
    )


def json_text(value: Any, *, separators: tuple[str, str] | None = _COMPACT, indent: int | None = None) -> str:
    """``value`` as JSON (compact unless told otherwise), non-ASCII text as it is but every
    control character escaped (:func:`~shareferry.core.printable.printable_json`), secrets redacted."""
    return printable_json(json.dumps(value, ensure_ascii=False, separators=separators, indent=indent))


def _transfer_detail(result: FileResult) -> dict[str, Any]:
    """One entry of ``FailedTransfers`` / ``SkippedTransfers``: AzCopy's fields, and (ours)
    ``Reason``, why the file failed or was skipped (no SAS: results are printable)."""
    return {
        "Src": result.source or "",
        "Dst": result.destination or result.path,
        "IsFolderProperties": result.is_dir,
        "TransferStatus": _TRANSFER_STATUS.get(result.outcome, "Success"),
        "TransferSize": result.size,
        "ErrorCode": "0",
        "Reason": redact(result.error or result.reason or ""),
    }


def _percent_text(value: float) -> str:
    return f"{round(value, 4):g}"


def job_summary_content(
    counters: Snapshot,
    *,
    failed: list[FileResult],
    skipped: list[FileResult],
    job_id: str,
    status: str,
    error: str | None,
    complete: bool,
) -> dict[str, Any]:
    """AzCopy's ListJobSummaryResponse for ``counters``, listing (at most
    :data:`MAX_LISTED_TRANSFERS` of) the ``failed`` and ``skipped`` results."""
    folders = counters.folder_transfers
    transfers_total = counters.file_transfers + folders
    content: dict[str, Any] = {
        "ErrorMsg": redact(error or ""),
        "JobID": job_id,
        "ActiveConnections": "0",
        "CompleteJobOrdered": complete,
        "JobStatus": status,
        "TotalTransfers": str(transfers_total),
        "FileTransfers": str(counters.file_transfers),
        "FolderPropertyTransfers": str(folders),
        "SymlinkTransfers": "0",
        "FoldersCompleted": str(counters.folders_completed),
        "TransfersCompleted": str(counters.files_completed + counters.folders_completed),
        "FoldersFailed": str(counters.folders_failed),
        "TransfersFailed": str(counters.files_failed + counters.folders_failed),
        "FoldersSkipped": str(counters.folders_skipped),
        "TransfersSkipped": str(counters.files_skipped + counters.folders_skipped),
        "BytesOverWire": str(counters.bytes_transferred),
        "TotalBytesTransferred": str(counters.bytes_transferred),
        "TotalBytesEnumerated": str(counters.bytes_enumerated),
        "TotalBytesExpected": str(counters.bytes_enumerated),
        "PercentComplete": _percent_text(counters.percent),
        "AverageIOPS": "0",
        "AverageE2EMilliseconds": "0",
        "ServerBusyPercentage": "0",
        "NetworkErrorPercentage": "0",
        "FailedTransfers": [_transfer_detail(r) for r in failed[:MAX_LISTED_TRANSFERS]] or None,
        "SkippedTransfers": [_transfer_detail(r) for r in skipped[:MAX_LISTED_TRANSFERS]] or None,
        "PerfConstraint": 0,
        "PerformanceAdvice": [],
        "IsCleanupJob": False,
        # AzCopy 10.32's NFS-only counters (see summary_text): always zero here.
        "SkippedSymlinkCount": "0",
        "HardlinksConvertedCount": "0",
        "SkippedHardlinkCount": "0",
        "SkippedSpecialFileCount": "0",
    }
    if counters.sync is not None:  # what AzCopy's sync adds to its summary
        content["SourceFilesScanned"] = str(counters.sync.source_files_scanned)
        content["DestinationFilesScanned"] = str(counters.sync.destination_files_scanned)
        # ours: files kept because the destination is newer (not transfers, not TransfersSkipped)
        content["FilesSkippedNewerAtDestination"] = str(counters.sync.files_newer_at_destination)
        content["DeleteTotalTransfers"] = str(counters.sync.delete_total)
        content["DeleteTransfersCompleted"] = str(counters.sync.delete_completed)
    return content


#: AzCopy's FromTo of a deletion, by where the deleted object lives. AzCopy 10.32.2 names the
#: Files and Blob ones; a local deletion it prints as the bare number "256" (Local to Unknown,
#: a value without a name), for which ShareFerry prints the name the other two suggest.
TRASH_FROM_TO = {"file": "FileSMBTrash", "blob": "BlobTrash", "local": "LocalTrash"}


def dry_run_content(
    *, is_dir: bool, from_to: str, source: str, destination: str, size: int, blob_source: bool
) -> dict[str, Any]:
    """One ``Dryrun`` message's content, AzCopy 10.32's DryrunTransfer: ``EntityType`` ``File``
    or ``Folder``, ``BlobType`` (``BlockBlob`` when the object listed is a blob, else
    ``Detect``), ``FromTo``, ``Source``, ``Destination`` (empty for a deletion, whose object is
    the ``Source``), and ``SourceSize`` only when not 0. AzCopy adds the source's HTTP headers
    (``ContentType``, ``ContentMD5`` ...) when it has read them; a dry run here reads none."""
    content: dict[str, Any] = {
        "EntityType": "Folder" if is_dir else "File",
        "BlobType": "BlockBlob" if blob_source else "Detect",
        "FromTo": from_to,
        "Source": source,
        "Destination": destination,
    }
    if size:
        content["SourceSize"] = size
    return content


# ---- outputs ---------------------------------------------------------------------------------


class JobOutput(Protocol):
    """What a transfer command drives (see the module docstring)."""

    tick_seconds: float | None
    paused: bool  # while True, tick() draws nothing (a question is on the terminal)
    accounting: Accounting  # the job's counters, with this output among its subscribers

    def on_queued(self, path: str, size: int) -> None: ...

    def on_progress(self, nbytes: int) -> None: ...

    def on_done(self, result: FileResult) -> None: ...

    def started(self, job_id: str, *, log_file: str = "") -> None: ...

    def message(self, text: str) -> None: ...

    def tick(self) -> None: ...

    def clear(self) -> None: ...

    def finished(self, summary: JobSummary) -> None: ...

    def fatal(self, text: str) -> None: ...


class _Reading:
    """Owns the job's :class:`Accounting` (subscribed to it) and reads its counters."""

    def __init__(self, clock: Clock) -> None:
        self.accounting = Accounting(subscribers=[self], clock=clock)
        self._ended = False

    def on_queued(self, path: str, size: int) -> None:
        return None

    def on_progress(self, nbytes: int) -> None:
        return None

    def on_done(self, result: FileResult) -> None:
        return None

    def _start_clock(self) -> None:
        """The job starts now: rates and elapsed time count from here, not from construction."""
        self.accounting.started = self.accounting.clock()

    def _counters(self) -> Snapshot:
        """The counters now; once the job has finished, its totals are final."""
        counters = self.accounting.snapshot()
        return replace(counters, enumeration_done=True) if self._ended else counters


class TextOutput(_Reading):
    """Text for people: a live line when ``live`` (a terminal), the summary at the end."""

    def __init__(
        self, *, out: TextIO, err: TextIO, live: bool, command: str, clock: Clock = time.monotonic
    ) -> None:
        super().__init__(clock)
        self.out = out
        self.err = err
        self.live = live
        self.command = command
        self.tick_seconds: float | None = LIVE_TICK_SECONDS if live else None
        self.paused = False
        self._drawn = False

    def started(self, job_id: str, *, log_file: str = "") -> None:
        self._start_clock()
        if self.live:
            self._write_out(f"Job {job_id} has started\n")

    def message(self, text: str) -> None:
        self.clear()
        prefix, _, remove = dry_run_markers()
        if text.startswith((prefix, remove)):
            self._write_out(printable(text) + "\n")
        else:
            self.err.write(printable(f"WARNING: {text}") + "\n")
            self.err.flush()

    def tick(self) -> None:
        if self.live and not self.paused:
            self.out.write("\r" + progress_line(self._counters()) + "\033[K")
            self.out.flush()
            self._drawn = True

    def clear(self) -> None:
        if self._drawn:
            self.out.write("\r\033[K")
            self.out.flush()
            self._drawn = False

    def finished(self, summary: JobSummary) -> None:
        if summary.error and never_started(summary):
            self.fatal(summary.error)
            return
        self._ended = True
        if self.live:
            self.tick()
            self.out.write("\n")
            self._drawn = False
        counters = summary.counters
        lines = failure_lines(summary.failures, counters.files_failed + counters.folders_failed)
        if lines:
            self._write_out("\n".join(lines) + "\n")
        self._write_out("\n" + summary_text(summary) + "\n")
        if summary.error:
            self.fatal(summary.error)

    def fatal(self, text: str) -> None:
        self.clear()
        self.err.write(printable(f"shareferry {self.command}: {one_line(text)}") + "\n")
        self.err.flush()

    def _write_out(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


class JsonOutput(_Reading):
    """AzCopy's ``--output-type json``: one JSON object per line on ``out``."""

    def __init__(
        self,
        *,
        out: TextIO,
        err: TextIO,
        command: str,
        from_to: str = "",
        dry_run: bool = False,
        clock: Clock = time.monotonic,
        now: Now = _utc_now,
    ) -> None:
        super().__init__(clock)
        self.out = out
        self.err = err
        self.command = command
        self.from_to = from_to  # the job's resolved pair (LocalFile ...), for Dryrun messages
        self.dry_run = dry_run
        self.now = now
        # a dry run prints no Progress, as AzCopy's; other Progress lines never share a line
        # with a question, so they go on while one is asked
        self.tick_seconds: float | None = None if dry_run else JSON_TICK_SECONDS
        self.paused = False
        self.job_id = ""

    def emit(self, message_type: str, content: str, *, prompt: dict[str, Any] | None = None) -> None:
        self.out.write(json_line(message_type, content, now=self.now(), prompt=prompt) + "\n")
        self.out.flush()

    def started(self, job_id: str, *, log_file: str = "") -> None:
        self._start_clock()
        self.job_id = job_id
        if self.dry_run:  # AzCopy's dry run starts no job, so says no Init
            return
        self.emit(
            "Init",
            json.dumps(
                {"LogFileLocation": log_file, "JobID": job_id, "IsCleanupJob": False}, separators=_COMPACT
            ),
        )

    def message(self, text: str) -> None:
        if text.startswith(dry_run_markers()[::2]):  # told again, with more, by on_done / on_would_delete
            return
        self.emit("Info", f"WARNING: {text}")

    def _kinds(self) -> tuple[str, str]:
        """The source's and the destination's kind (``local``, ``file``, ``blob``), from ``from_to``."""
        from shareferry.core.locations import FromTo

        try:
            pair = FromTo(self.from_to)
        except ValueError:
            return "", ""
        return pair.source_kind, pair.destination_kind

    def on_done(self, result: FileResult) -> None:
        if result.reason == "dry-run":
            content = dry_run_content(
                is_dir=result.is_dir,
                from_to=self.from_to,
                source=result.source or "",
                destination=result.destination or result.path,
                size=0 if result.is_dir else result.size,
                blob_source=self._kinds()[0] == "blob",
            )
            self.emit("Dryrun", json_text(content))

    def on_would_delete(self, shown: str, *, is_dir: bool) -> None:
        """A dry-run sync would delete ``shown``: AzCopy's deletion line, the object as its
        ``Source``, an empty ``Destination``."""
        kind = self._kinds()[1]
        content = dry_run_content(
            is_dir=is_dir,
            from_to=TRASH_FROM_TO.get(kind, ""),
            source=shown,
            destination="",
            size=0,
            blob_source=kind == "blob",
        )
        self.emit("Dryrun", json_text(content))

    def tick(self) -> None:
        self._summary("Progress", status="InProgress", error=None, complete=False)

    def clear(self) -> None:
        return None

    def finished(self, summary: JobSummary) -> None:
        if summary.error and never_started(summary):
            self.fatal(summary.error)
            return
        self._ended = True
        self.job_id = summary.job_id
        if self.dry_run:  # AzCopy ends a dry run with an empty EndOfJob
            self.emit("EndOfJob", "")
        else:
            self._summary("EndOfJob", status=summary.status.value, error=summary.error, complete=True)
        if summary.error:
            self.err.write(printable(f"shareferry {self.command}: {one_line(summary.error)}") + "\n")
            self.err.flush()

    def fatal(self, text: str) -> None:
        self.emit("Error", one_line(text))
        self.err.write(printable(f"shareferry {self.command}: {one_line(text)}") + "\n")
        self.err.flush()

    def _summary(self, message_type: str, *, status: str, error: str | None, complete: bool) -> None:
        content = job_summary_content(
            self._counters(),
            failed=self.accounting.failures,
            skipped=self.accounting.skips,
            job_id=self.job_id,
            status=status,
            error=error,
            complete=complete,
        )
        self.emit(message_type, json_text(content))


def never_started(summary: JobSummary) -> bool:
    """Nothing was listed or touched: the job failed before its first file (no credential,
    source not found), so a summary of zeros would only hide the one line that matters."""
    counters = summary.counters
    scanned = counters.sync is not None and (
        counters.sync.source_files_scanned or counters.sync.destination_files_scanned
    )
    return not (counters.files_enumerated or counters.files_settled or counters.folder_transfers or scanned)


_NEWLINE = re.compile(r"\r?\n")


def one_line(text: str) -> str:
    """``text`` with its newlines folded into spaces (a service's message spread over lines
    reads as one). Other control characters are left for
    :func:`~shareferry.core.printable.printable` to escape, so a name keeps them visibly."""
    return " ".join(part.strip(" \t") for part in _NEWLINE.split(text) if part.strip(" \t")) or text


# ---- --report --------------------------------------------------------------------------------


class ReportWriter:
    """``--report FILE``: one JSON object per finished file or folder, flushed as it is written:
    ``{"path", "size", "md5", "result", "error", "reason", "is_dir", "source", "destination"}``
    (``path`` relative to the destination root; ``source``/``destination`` printable, no SAS;
    ``result`` is ``completed``, ``failed`` or ``skipped``; ``md5`` hex of the bytes that landed).
    A file a sync kept because the destination is newer gets a ``skipped`` line too, with the
    reason ``skipped: the destination is newer``, though it is no transfer."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def on_queued(self, path: str, size: int) -> None:
        return None

    def on_progress(self, nbytes: int) -> None:
        return None

    def on_left_alone(self, result: FileResult) -> None:
        """A file a sync kept without a transfer (the destination is newer): a line like a
        skipped file's, with its reason."""
        self.on_done(result)

    def on_done(self, result: FileResult) -> None:
        record = {
            "path": result.path,
            "size": result.size,
            "md5": result.md5,
            "result": result.outcome.value,
            "error": redact(result.error) if result.error else None,
            "reason": result.reason,
            "is_dir": result.is_dir,
            "source": redact(result.source) if result.source else None,
            "destination": redact(result.destination) if result.destination else None,
        }
        self.stream.write(printable_json(json.dumps(record, ensure_ascii=False)) + "\n")
        self.stream.flush()
