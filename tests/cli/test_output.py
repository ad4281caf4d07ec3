"""The copy command's outputs fed with job events, as the engine would send them: the live line,
AzCopy's text summary, AzCopy's JSON lines (checked field by field against the names and types
AzCopy 10.32 prints) and the --report file."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from shareferry.cli.output import (
    MAX_FAILED_LINES,
    JsonOutput,
    ReportWriter,
    TextOutput,
    failure_lines,
    progress_line,
    summary_text,
)
from shareferry.core.accounting import Accounting, FileResult, Outcome, Subscriber
from shareferry.core.jobs import JobStatus, JobSummary

MIB = 1024 * 1024
SAS_SIG = "c2VjcmV0IHNpZ25hdHVyZQ%3D%3D"
URL_WITH_SAS = f"https://acct.file.core.windows.net/share/a.txt?sv=2024-01-01&sig={SAS_SIG}"

#: What AzCopy 10.32.2 puts in a Progress / EndOfJob MessageContent (ListJobSummaryResponse),
#: as printed by ``azcopy copy ... --output-type json``. 10.32 added the last four (10.18.1 ended
#: with IsCleanupJob); AzCopy counts them for NFS shares only (incEnumeration in its
#: transferProgressTracker.go), so they are "0" for every SMB and Blob transfer.
AZCOPY_SUMMARY_FIELDS = [
    "ErrorMsg", "JobID", "ActiveConnections", "CompleteJobOrdered", "JobStatus", "TotalTransfers",
    "FileTransfers", "FolderPropertyTransfers", "SymlinkTransfers", "FoldersCompleted",
    "TransfersCompleted", "FoldersFailed", "TransfersFailed", "FoldersSkipped", "TransfersSkipped",
    "BytesOverWire", "TotalBytesTransferred", "TotalBytesEnumerated", "TotalBytesExpected",
    "PercentComplete", "AverageIOPS", "AverageE2EMilliseconds", "ServerBusyPercentage",
    "NetworkErrorPercentage", "FailedTransfers", "SkippedTransfers", "PerfConstraint",
    "PerformanceAdvice", "IsCleanupJob", "SkippedSymlinkCount", "HardlinksConvertedCount",
    "SkippedHardlinkCount", "SkippedSpecialFileCount",
]  # fmt: skip
#: Fields AzCopy encodes as decimal strings (``json:",string"`` in its Go struct).
AZCOPY_STRING_COUNTERS = [
    "ActiveConnections", "TotalTransfers", "FileTransfers", "FolderPropertyTransfers", "SymlinkTransfers",
    "FoldersCompleted", "TransfersCompleted", "FoldersFailed", "TransfersFailed", "FoldersSkipped",
    "TransfersSkipped", "BytesOverWire", "TotalBytesTransferred", "TotalBytesEnumerated",
    "TotalBytesExpected", "SkippedSymlinkCount", "HardlinksConvertedCount", "SkippedHardlinkCount",
    "SkippedSpecialFileCount",
]  # fmt: skip
AZCOPY_TRANSFER_FIELDS = ["Src", "Dst", "IsFolderProperties", "TransferStatus", "TransferSize", "ErrorCode"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FlushCounter(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def completed(path: str, size: int, *, is_dir: bool = False) -> FileResult:
    return FileResult(path, size, Outcome.COMPLETED, md5=None if is_dir else "00" * 16, is_dir=is_dir)


def failed(path: str, size: int, error: str = "boom", *, is_dir: bool = False) -> FileResult:
    return FileResult(path, size, Outcome.FAILED, error=error, is_dir=is_dir)


def skipped(path: str, size: int, reason: str = "exists", *, is_dir: bool = False) -> FileResult:
    return FileResult(path, size, Outcome.SKIPPED, reason=reason, is_dir=is_dir)


class Feed:
    """Job events, subscriber-shaped, fed into an :class:`Accounting` as the engine feeds it."""

    def __init__(self, accounting: Accounting) -> None:
        self.accounting = accounting

    def on_queued(self, path: str, size: int) -> None:
        self.accounting.queued(path, size)

    def on_progress(self, nbytes: int) -> None:
        self.accounting.progress(nbytes)

    def on_done(self, result: FileResult) -> None:
        self.accounting.done(result)

    def on_enumerated(self) -> None:
        self.accounting.finish_enumeration()


def play(subscriber: Subscriber) -> None:
    """A small job: 2 folders, 4 files (8 MiB done, 2 MiB failed, 1 MiB skipped, 1 KiB done)."""
    subscriber.on_done(completed("tree", 0, is_dir=True))
    subscriber.on_queued("tree/big.bin", 8 * MIB)
    subscriber.on_queued("tree/bad.bin", 2 * MIB)
    subscriber.on_progress(4 * MIB)
    subscriber.on_done(completed("tree/sub", 0, is_dir=True))
    subscriber.on_queued("tree/sub/old.txt", MIB)
    subscriber.on_progress(4 * MIB)
    subscriber.on_done(completed("tree/big.bin", 8 * MIB))
    subscriber.on_done(failed("tree/bad.bin", 2 * MIB, f"MD5 mismatch for {URL_WITH_SAS}"))
    subscriber.on_done(skipped("tree/sub/old.txt", MIB))
    subscriber.on_queued("tree/sub/small.txt", 1024)
    subscriber.on_progress(1024)
    subscriber.on_done(completed("tree/sub/small.txt", 1024))


def summary_of(
    accounting: Accounting, *, status: JobStatus, error: str | None = None, elapsed: float = 90.0
) -> JobSummary:
    """The JobSummary the core would return for the events ``accounting`` counted."""
    counters = replace(accounting.snapshot(), elapsed=elapsed, enumeration_done=True)
    return JobSummary(
        job_id="job-1", status=status, counters=counters, error=error, failures=list(accounting.failures)
    )


# ---- counting and the live line ----------------------------------------------------------------


def test_accounting_keeps_files_and_folders_apart() -> None:
    accounting = Accounting()
    play(Feed(accounting))
    counters = accounting.snapshot()
    assert (
        counters.files_enumerated,
        counters.files_completed,
        counters.files_failed,
        counters.files_skipped,
    ) == (
        4,
        2,
        1,
        1,
    )
    assert (counters.folders_completed, counters.folders_failed, counters.folders_skipped) == (2, 0, 0)
    assert counters.bytes_enumerated == 11 * MIB + 1024
    assert counters.bytes_transferred == 8 * MIB + 1024


def test_percent_counts_skipped_and_failed_bytes_as_settled() -> None:
    accounting = Accounting()
    play(Feed(accounting))
    assert accounting.snapshot().percent == pytest.approx(100.0)
    accounting.queued("tree/later.bin", 11 * MIB + 1024)
    assert accounting.snapshot().percent == pytest.approx(50.0)


def test_percent_of_a_job_of_empty_files_goes_by_file_count() -> None:
    accounting = Accounting()
    accounting.queued("a", 0)
    accounting.queued("b", 0)
    accounting.done(completed("a", 0))
    assert accounting.snapshot().percent == 50.0


def test_eta_waits_for_the_end_of_enumeration() -> None:
    clock = FakeClock()
    accounting = Accounting(clock=clock)
    accounting.queued("a", 10 * MIB)
    clock.now += 2
    accounting.progress(4 * MIB)
    assert accounting.snapshot().eta_seconds is None
    accounting.finish_enumeration()
    assert accounting.snapshot().eta_seconds == pytest.approx(3.0)  # 6 MiB left at 2 MiB/s


def test_progress_line_while_enumerating_and_after() -> None:
    clock = FakeClock()
    accounting = Accounting(clock=clock)
    accounting.queued("a", 10 * MIB)
    accounting.queued("b", 10 * MIB)
    clock.now += 4
    accounting.progress(10 * MIB)
    accounting.done(completed("a", 10 * MIB))
    line = progress_line(accounting.snapshot())
    assert line == "50.0 %, 1 Done, 0 Failed, 0 Skipped, 2+ Total, 10.0 MiB, 2.5 MiB/s, ETA --"
    accounting.finish_enumeration()
    assert progress_line(accounting.snapshot()).endswith("2 Total, 10.0 MiB, 2.5 MiB/s, ETA 0:00:04")


def test_live_text_redraws_one_line_and_clears_it_for_messages() -> None:
    out, err = io.StringIO(), io.StringIO()
    text = TextOutput(out=out, err=err, live=True, command="copy", clock=FakeClock())
    assert text.tick_seconds is not None and text.tick_seconds >= 0.5  # at most twice a second
    text.started("job-1")
    text.on_queued("a", 100)
    text.tick()
    text.tick()
    assert out.getvalue().count("\r") == 2 and out.getvalue().endswith("\033[K")
    text.message("retry 1 in 0.5s: ServerBusy")
    assert out.getvalue().endswith("\r\033[K")  # the line was wiped before the warning
    assert err.getvalue() == "WARNING: retry 1 in 0.5s: ServerBusy\n"


def test_no_redraws_while_a_question_is_on_the_terminal() -> None:
    out = io.StringIO()
    text = TextOutput(out=out, err=io.StringIO(), live=True, command="copy")
    text.paused = True
    text.tick()
    assert out.getvalue() == ""
    text.paused = False
    text.tick()
    assert out.getvalue().startswith("\r0.0 %")


def test_text_off_a_terminal_prints_no_live_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    text = TextOutput(out=out, err=err, live=False, command="copy")
    assert text.tick_seconds is None
    text.started("job-1")
    text.tick()
    assert out.getvalue() == ""


# ---- the text summary --------------------------------------------------------------------------


def test_summary_text_is_azcopys_block() -> None:
    """AzCopy 10.32.2's block (GetCopyResult in its azcopy/output.go): 10.32 added the four
    NFS-only "Skipped"/"Converted" lines and renamed "TotalBytesTransferred" to "Total Number of
    Bytes Transferred"; its summary of a local-to-share copy prints them as here."""
    accounting = Accounting()
    play(Feed(accounting))
    summary = summary_of(accounting, status=JobStatus.COMPLETED_WITH_ERRORS, elapsed=90.0)
    assert summary_text(summary).splitlines() == [
        "Job job-1 summary",
        "Elapsed Time (Minutes): 1.5000",
        "Number of File Transfers: 4",
        "Number of Folder Property Transfers: 2",
        "Number of Symlink Transfers: 0",
        "Total Number of Transfers: 6",
        "Number of File Transfers Completed: 2",
        "Number of Folder Transfers Completed: 2",
        "Number of File Transfers Failed: 1",
        "Number of Folder Transfers Failed: 0",
        "Number of File Transfers Skipped: 1",
        "Number of Folder Transfers Skipped: 0",
        "Number of Symbolic Links Skipped: 0",
        "Number of Hardlinks Converted: 0",
        "Number of Hardlinks Skipped: 0",
        "Number of Special Files Skipped: 0",
        f"Total Number of Bytes Transferred: {8 * MIB + 1024}",
        "Final Job Status: CompletedWithErrors",
    ]


def test_folder_failures_and_skips_are_not_counted_as_files() -> None:
    accounting = Accounting()
    accounting.done(failed("d1", 0, is_dir=True))
    accounting.done(skipped("d2", 0, is_dir=True))
    lines = summary_text(summary_of(accounting, status=JobStatus.FAILED)).splitlines()
    assert "Number of File Transfers Failed: 0" in lines
    assert "Number of Folder Transfers Failed: 1" in lines
    assert "Number of File Transfers Skipped: 0" in lines
    assert "Number of Folder Transfers Skipped: 1" in lines
    assert "Number of Folder Property Transfers: 2" in lines


def test_finished_lists_failures_then_the_summary_without_secrets() -> None:
    out, err = io.StringIO(), io.StringIO()
    text = TextOutput(out=out, err=err, live=False, command="copy")
    play(Feed(text.accounting))
    text.finished(summary_of(text.accounting, status=JobStatus.COMPLETED_WITH_ERRORS))
    printed = out.getvalue()
    assert "FAILED: tree/bad.bin: MD5 mismatch for https://acct.file.core.windows.net/share/a.txt" in printed
    assert SAS_SIG not in printed and "sig=REDACTED" in printed
    assert printed.index("FAILED:") < printed.index("Job job-1 summary")
    assert printed.rstrip().endswith("Final Job Status: CompletedWithErrors")
    assert err.getvalue() == ""


def test_at_most_twenty_failures_are_listed() -> None:
    failures = [failed(f"f{i}", 1) for i in range(MAX_FAILED_LINES + 5)]
    lines = failure_lines(failures, len(failures) + 100)
    assert len(lines) == MAX_FAILED_LINES + 1
    assert lines[0] == "FAILED: f0: boom"
    assert lines[-1] == "... and 105 more failed"


def test_a_job_that_never_started_is_one_line_on_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    text = TextOutput(out=out, err=err, live=False, command="copy")
    text.finished(
        summary_of(Accounting(), status=JobStatus.FAILED, error=f"no credential for {URL_WITH_SAS}\nhint")
    )
    assert out.getvalue() == ""
    assert err.getvalue().count("\n") == 1
    assert err.getvalue().startswith("shareferry copy: no credential for https://acct.file.core.windows.net")
    assert SAS_SIG not in err.getvalue()


def test_dry_run_lines_go_to_stdout_as_azcopy_prints_them() -> None:
    out, err = io.StringIO(), io.StringIO()
    text = TextOutput(out=out, err=err, live=False, command="copy")
    text.message("DRYRUN: copy /data/a.txt to https://acct.file.core.windows.net/share/a.txt")
    assert out.getvalue() == "DRYRUN: copy /data/a.txt to https://acct.file.core.windows.net/share/a.txt\n"
    assert err.getvalue() == ""


def json_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def content(message: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(message["MessageContent"], str)
    parsed = json.loads(message["MessageContent"])
    assert isinstance(parsed, dict)
    return parsed


def json_output(out: io.StringIO, err: io.StringIO | None = None) -> JsonOutput:
    stamp = datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=UTC)
    return JsonOutput(out=out, err=err or io.StringIO(), command="copy", clock=FakeClock(), now=lambda: stamp)


def test_json_lines_have_azcopys_envelope() -> None:
    out = io.StringIO()
    output = json_output(out)
    assert output.tick_seconds == 2.0  # Progress at most every 2 s, as AzCopy
    output.started("job-1")
    output.tick()
    (init, progress) = json_lines(out)
    for message in (init, progress):
        assert list(message) == ["TimeStamp", "MessageType", "MessageContent", "PromptDetails"]
        assert message["TimeStamp"] == "2024-05-01T10:20:30.123456Z"
        assert message["PromptDetails"] == {"PromptType": "", "ResponseOptions": None, "PromptTarget": ""}
    assert init["MessageType"] == "Init"
    assert content(init) == {"LogFileLocation": "", "JobID": "job-1", "IsCleanupJob": False}
    assert progress["MessageType"] == "Progress"
    assert content(progress)["JobStatus"] == "InProgress"
    assert content(progress)["CompleteJobOrdered"] is False


def test_end_of_job_has_every_azcopy_field_with_its_type() -> None:
    out = io.StringIO()
    output = json_output(out)
    output.started("job-1")
    play(Feed(output.accounting))
    output.finished(summary_of(output.accounting, status=JobStatus.COMPLETED_WITH_ERRORS))
    end = json_lines(out)[-1]
    assert end["MessageType"] == "EndOfJob"
    summary = content(end)
    assert list(summary) == AZCOPY_SUMMARY_FIELDS
    for name in AZCOPY_STRING_COUNTERS:
        assert isinstance(summary[name], str) and re.fullmatch(r"\d+", summary[name]), name
    assert summary["JobID"] == "job-1"
    assert summary["JobStatus"] == "CompletedWithErrors"
    assert summary["CompleteJobOrdered"] is True
    assert (summary["TotalTransfers"], summary["FileTransfers"], summary["FolderPropertyTransfers"]) == (
        "6",
        "4",
        "2",
    )
    assert (summary["TransfersCompleted"], summary["FoldersCompleted"]) == ("4", "2")
    assert (summary["TransfersFailed"], summary["TransfersSkipped"]) == ("1", "1")
    assert summary["TotalBytesTransferred"] == str(8 * MIB + 1024)
    assert summary["TotalBytesEnumerated"] == str(11 * MIB + 1024)
    assert summary["PercentComplete"] == "100"
    assert isinstance(summary["PerfConstraint"], int) and summary["PerformanceAdvice"] == []
    (failure,) = summary["FailedTransfers"]
    assert list(failure) == [*AZCOPY_TRANSFER_FIELDS, "Reason"]  # AzCopy's fields, then why
    assert failure["Dst"] == "tree/bad.bin" and failure["TransferStatus"] == "Failed"
    assert "sig=REDACTED" in failure["Reason"] and "secret" not in failure["Reason"]
    assert failure["TransferSize"] == 2 * MIB and failure["IsFolderProperties"] is False
    (skip,) = summary["SkippedTransfers"]
    assert skip["Dst"] == "tree/sub/old.txt" and skip["TransferStatus"].startswith("Skipped")


def test_empty_transfer_lists_are_null_as_in_azcopy() -> None:
    out = io.StringIO()
    output = json_output(out)
    output.started("job-1")
    feed = Feed(output.accounting)
    feed.on_queued("a", 1)
    feed.on_progress(1)
    feed.on_done(completed("a", 1))
    output.finished(summary_of(output.accounting, status=JobStatus.COMPLETED))
    summary = content(json_lines(out)[-1])
    assert summary["FailedTransfers"] is None and summary["SkippedTransfers"] is None
    assert summary["ErrorMsg"] == ""


def dry_run_result(
    path: str, size: int, *, source: str, destination: str, is_dir: bool = False
) -> FileResult:
    return FileResult(
        path, size, Outcome.SKIPPED, is_dir=is_dir, reason="dry-run", source=source, destination=destination
    )


def test_a_dry_run_prints_azcopy_1032_dryrun_lines_and_an_empty_end_of_job() -> None:
    """Each line is told by the result itself (source and destination included), so lines that
    finish out of order still name the right file (log lines are ignored)."""
    out = io.StringIO()
    output = JsonOutput(
        out=out, err=io.StringIO(), command="sync", from_to="LocalFile", dry_run=True, clock=FakeClock()
    )
    assert output.tick_seconds is None  # no Progress lines in a dry run
    output.started("job-1")
    output.message("DRYRUN: copy /data/sub/a.txt to https://a.file.core.windows.net/s/sub/a.txt")
    output.message("DRYRUN: copy /data/sub to https://a.file.core.windows.net/s/sub")
    output.on_done(
        dry_run_result(
            "sub", 0, source="/data/sub", destination="https://a.file.core.windows.net/s/sub", is_dir=True
        )
    )
    output.on_done(
        dry_run_result(
            "sub/e", 0, source="/data/sub/e", destination="https://a.file.core.windows.net/s/sub/e"
        )
    )
    output.on_done(
        dry_run_result(
            "sub/a.txt",
            42,
            source="/data/sub/a.txt",
            destination="https://a.file.core.windows.net/s/sub/a.txt",
        )
    )
    output.message("DRYRUN: remove https://a.file.core.windows.net/s/old")
    output.on_would_delete("https://a.file.core.windows.net/s/old", is_dir=True)
    output.finished(summary_of(output.accounting, status=JobStatus.COMPLETED))
    lines = json_lines(out)
    assert [line["MessageType"] for line in lines] == ["Dryrun"] * 4 + ["EndOfJob"]
    folder, empty, file, removal = (json.loads(line["MessageContent"]) for line in lines[:4])
    assert list(folder.items()) == [
        ("EntityType", "Folder"),
        ("BlobType", "Detect"),
        ("FromTo", "LocalFile"),
        ("Source", "/data/sub"),
        ("Destination", "https://a.file.core.windows.net/s/sub"),
    ]
    assert empty["EntityType"] == "File" and "SourceSize" not in empty  # left out when 0, as AzCopy
    assert file["Source"] == "/data/sub/a.txt" and file["SourceSize"] == 42
    assert removal == {
        "EntityType": "Folder",
        "BlobType": "Detect",
        "FromTo": "FileSMBTrash",
        "Source": "https://a.file.core.windows.net/s/old",
        "Destination": "",
    }
    assert lines[-1]["MessageContent"] == ""


@pytest.mark.parametrize(
    ("from_to", "copy_from_to", "blob_type", "trash"),
    [
        ("BlobFile", "BlobFile", "BlockBlob", "FileSMBTrash"),
        ("FileBlob", "FileBlob", "Detect", "BlobTrash"),
        ("FileLocal", "FileLocal", "Detect", "LocalTrash"),
    ],
)
def test_dry_run_from_to_and_blob_type_follow_where_each_object_lives(
    from_to: str, copy_from_to: str, blob_type: str, trash: str
) -> None:
    out = io.StringIO()
    output = JsonOutput(out=out, err=io.StringIO(), command="sync", from_to=from_to, dry_run=True)
    output.on_done(dry_run_result("a", 1, source="src/a", destination="dst/a"))
    output.on_would_delete("dst/b", is_dir=False)
    copy, removal = (json.loads(line["MessageContent"]) for line in json_lines(out))
    assert (copy["FromTo"], copy["BlobType"]) == (copy_from_to, blob_type)
    assert removal["FromTo"] == trash
    assert removal["BlobType"] == ("BlockBlob" if trash == "BlobTrash" else "Detect")


def test_warnings_are_info_messages_and_secrets_are_redacted() -> None:
    out = io.StringIO()
    output = json_output(out)
    output.message(f"MD5 mismatch for {URL_WITH_SAS}")
    (info,) = json_lines(out)
    assert info["MessageType"] == "Info"
    assert info["MessageContent"] == (
        "WARNING: MD5 mismatch for https://acct.file.core.windows.net/share/a.txt?sv=2024-01-01&sig=REDACTED"
    )


def test_a_fatal_error_is_an_error_message_and_one_stderr_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    output = json_output(out, err)
    output.fatal(f"no credential for {URL_WITH_SAS}")
    (error,) = json_lines(out)
    assert error["MessageType"] == "Error"
    assert SAS_SIG not in out.getvalue() + err.getvalue()
    assert (
        err.getvalue().startswith("shareferry copy: no credential for ") and err.getvalue().count("\n") == 1
    )


# ---- --report ----------------------------------------------------------------------------------


def test_report_writes_and_flushes_a_line_per_result() -> None:
    stream = FlushCounter()
    report = ReportWriter(stream)
    play(report)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(records) == 6 == stream.flushes
    by_path = {record["path"]: record for record in records}
    assert by_path["tree/big.bin"] == {
        "path": "tree/big.bin",
        "size": 8 * MIB,
        "md5": "00" * 16,
        "result": "completed",
        "error": None,
        "reason": None,
        "is_dir": False,
        "source": None,
        "destination": None,
    }
    assert by_path["tree/bad.bin"]["result"] == "failed"
    assert SAS_SIG not in by_path["tree/bad.bin"]["error"]
    assert by_path["tree/sub/old.txt"]["result"] == "skipped"
    assert by_path["tree/sub/old.txt"]["reason"] == "exists"
    assert by_path["tree"]["is_dir"] is True
