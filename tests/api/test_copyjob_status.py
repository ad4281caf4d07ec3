"""A CopyJob's status summed up from 1 or 3 shard reports: progress texts for the printer columns,
counters, failed files, MD5 results, and the phase in every situation a Job goes through."""

from __future__ import annotations

from typing import Any

import pytest

from shareferry.api.copyjob_status import (
    MAX_ERROR_LENGTH,
    MAX_FAILED_FILES,
    aggregate_status,
    phase_from,
)

GIB = 1024**3
MIB = 1024**2


def report(state: str = "Running", **fields: Any) -> dict[str, Any]:
    """A shard report as a worker writes it; unset counters are 0."""
    body: dict[str, Any] = {
        "state": state,
        "jobStatus": {"Running": "InProgress", "Succeeded": "Completed"}.get(state, state),
        "filesTotal": 0,
        "filesDone": 0,
        "filesFailed": 0,
        "filesSkipped": 0,
        "bytesTotal": 0,
        "bytesDone": 0,
        "throughputBytesPerSecond": 0,
        "failedFiles": [],
    }
    body.update(fields)
    return body


def done(files: int = 10, size: int = GIB, **fields: Any) -> dict[str, Any]:
    return report(
        "Succeeded",
        filesTotal=files,
        filesDone=files,
        bytesTotal=size,
        bytesDone=size,
        etaSeconds=0,
        **fields,
    )


def failures(shard: int, count: int) -> list[dict[str, str]]:
    return [{"path": f"s{shard}/f{n}.bin", "error": f"403 on f{n}"} for n in range(count)]


# -- one shard --------------------------------------------------------------------------------


def test_one_running_shard_gives_the_printer_column_texts() -> None:
    running = report(
        filesTotal=30,
        filesDone=12,
        bytesTotal=3 * GIB,
        bytesDone=int(1.3 * GIB),
        throughputBytesPerSecond=55 * MIB,
        etaSeconds=31,
    )
    status = aggregate_status({"0": running}, parallelism=1)
    progress = status["progress"]
    assert (progress["percentText"], progress["bytesText"], progress["throughputText"]) == (
        "43%",
        "1.3 GiB / 3.0 GiB",
        "55.0 MiB/s",
    )
    assert progress["percent"] == 43.3 and progress["etaSeconds"] == 31
    assert (progress["filesDone"], progress["filesTotal"]) == (12, 30)
    assert status["shards"] == [{"index": 0, "state": "Running", "percent": 43.3}]
    assert phase_from({"0": running}, parallelism=1, job_state="Active") == "Running"
    assert phase_from({"0": running}, parallelism=1, job_state=None) == "Running"


def test_a_shard_may_report_its_own_percent() -> None:
    status = aggregate_status({"0": report(percent=87.25, bytesTotal=100, bytesDone=10)}, parallelism=1)
    assert status["progress"]["percentText"] == "87%" and status["shards"][0]["percent"] == 87.2


def test_one_shard_done() -> None:
    status = aggregate_status({"0": done(files=4, size=2 * MIB, filesSkipped=1)}, parallelism=1)
    assert status["progress"]["percentText"] == "100%" and status["progress"]["etaSeconds"] == 0
    assert status["counters"] == {
        "filesTransferred": 4,
        "filesFailed": 0,
        "filesSkipped": 1,
        "bytesTransferred": 2 * MIB,
        "filesDeleted": 0,
        "filesNewerAtDestination": 0,
    }
    for job_state in (None, "Active", "Complete"):
        assert phase_from({"0": done()}, parallelism=1, job_state=job_state) == "Succeeded"


def test_one_failed_shard_says_why() -> None:
    failed = report("Failed", error="the source share does not exist: https://a.file.core.windows.net/nope")
    status = aggregate_status({"0": failed}, parallelism=1)
    assert status["shards"] == [
        {
            "index": 0,
            "state": "Failed",
            "percent": 100.0,
            "error": "the source share does not exist: https://a.file.core.windows.net/nope",
        }
    ]
    assert phase_from({"0": failed}, parallelism=1, job_state="Failed") == "Failed"
    assert phase_from({"0": failed}, parallelism=1, job_state=None) == "Failed"
    assert phase_from({"0": failed}, parallelism=1, job_state="Active") == "Running"  # a retry may come


@pytest.mark.parametrize(
    ("job_state", "phase"),
    [(None, "Pending"), ("Active", "Running"), ("Complete", "Succeeded"), ("Failed", "Failed")],
)
def test_one_shard_without_a_report(job_state: str | None, phase: str) -> None:
    assert phase_from({}, parallelism=1, job_state=job_state) == phase
    status = aggregate_status(None, parallelism=1)
    assert status["shards"] == [{"index": 0, "state": "Pending", "percent": 0.0}]
    assert status["progress"]["percentText"] == "0%" and status["progress"]["etaSeconds"] is None
    assert status["progress"]["bytesText"] == "0 B / 0 B"


# -- three shards -----------------------------------------------------------------------------


def test_three_shards_running_with_one_not_reported_yet() -> None:
    reports = {
        "0": done(files=10, size=GIB),
        "1": report(
            filesTotal=10,
            filesDone=5,
            bytesTotal=2 * GIB,
            bytesDone=GIB,
            throughputBytesPerSecond=10 * MIB,
            etaSeconds=100,
        ),
    }
    status = aggregate_status(reports, parallelism=3)
    assert [shard["state"] for shard in status["shards"]] == ["Succeeded", "Running", "Pending"]
    assert [shard["percent"] for shard in status["shards"]] == [100.0, 50.0, 0.0]
    assert status["progress"]["percentText"] == "50%"  # the mean: the missing shard counts 0
    assert status["progress"]["bytesText"] == "2.0 GiB / 3.0 GiB"
    assert status["progress"]["etaSeconds"] is None  # shard 2 has not said
    assert status["counters"]["filesTransferred"] == 15
    assert phase_from(reports, parallelism=3, job_state="Active") == "Running"
    assert phase_from(reports, parallelism=3, job_state=None) == "Running"
    assert phase_from(reports, parallelism=3, job_state="Failed") == "Failed"


def test_three_shards_running_take_the_slowest_eta_and_sum_throughput() -> None:
    reports = {
        str(i): report(bytesTotal=GIB, bytesDone=GIB // 4, throughputBytesPerSecond=20 * MIB, etaSeconds=eta)
        for i, eta in enumerate((40, 90, 60))
    }
    progress = aggregate_status(reports, parallelism=3)["progress"]
    assert progress["etaSeconds"] == 90 and progress["throughputText"] == "60.0 MiB/s"
    assert progress["percentText"] == "25%"


def test_three_shards_with_a_partial_failure() -> None:
    reports = {
        "0": done(),
        "1": report(
            "CompletedWithErrors", filesTotal=10, filesDone=7, filesFailed=3, failedFiles=failures(1, 3)
        ),
        "2": done(),
    }
    status = aggregate_status(reports, parallelism=3)
    assert status["counters"]["filesFailed"] == 3 and status["counters"]["filesTransferred"] == 27
    assert [item["path"] for item in status["failedFiles"]] == ["s1/f0.bin", "s1/f1.bin", "s1/f2.bin"]
    assert status["progress"]["percentText"] == "100%"
    assert phase_from(reports, parallelism=3, job_state=None) == "CompletedWithErrors"
    assert phase_from(reports, parallelism=3, job_state="Failed") == "CompletedWithErrors"
    assert phase_from(reports, parallelism=3, job_state="Active") == "Running"


def test_three_shards_all_done_sum_their_md5_results() -> None:
    reports = {
        str(i): done(
            md5={"configMap": f"job-md5-{i}", "files": 10, "verified": 10 - i, "mismatched": i, "missing": 0}
        )
        for i in range(3)
    }
    status = aggregate_status(reports, parallelism=3)
    assert status["md5Results"] == {
        "configMaps": ["job-md5-0", "job-md5-1", "job-md5-2"],
        "files": 30,
        "verified": 27,
        "mismatched": 3,
        "missing": 0,
    }
    assert (
        status["progress"]["percentText"] == "100%" and status["progress"]["bytesText"] == "3.0 GiB / 3.0 GiB"
    )
    assert phase_from(reports, parallelism=3, job_state="Complete") == "Succeeded"
    assert phase_from(reports, parallelism=3, job_state="Active") == "Succeeded"


def test_a_truncated_md5_configmap_is_noted() -> None:
    reports = {"0": done(md5={"configMap": "j-md5-0", "files": 10, "truncated": True}), "1": done()}
    assert "truncated" in aggregate_status(reports, parallelism=2)["md5Results"]["note"]


def test_three_shards_with_a_failed_one() -> None:
    reports = {"0": done(), "1": report("Failed", error="403 AuthorizationFailure"), "2": done()}
    status = aggregate_status(reports, parallelism=3)
    assert status["shards"][1] == {
        "index": 1,
        "state": "Failed",
        "percent": 100.0,
        "error": "403 AuthorizationFailure",
    }
    assert phase_from(reports, parallelism=3, job_state="Failed") == "CompletedWithErrors"
    every_one_failed = {str(i): report("Failed", error="x") for i in range(3)}
    assert phase_from(every_one_failed, parallelism=3, job_state="Failed") == "Failed"


@pytest.mark.parametrize(
    ("job_state", "phase"),
    [(None, "Pending"), ("Active", "Running"), ("Complete", "Succeeded"), ("Failed", "Failed")],
)
def test_three_shards_without_reports(job_state: str | None, phase: str) -> None:
    assert phase_from({}, parallelism=3, job_state=job_state) == phase


def test_a_job_that_ended_with_a_report_missing() -> None:
    reports = {"0": done(), "1": done()}
    assert phase_from(reports, parallelism=3, job_state="Failed") == "Failed"
    assert phase_from(reports, parallelism=3, job_state="Complete") == "Succeeded"


def test_reports_outside_the_shards_are_ignored() -> None:
    reports = {"0": done(), "7": report("Failed", error="stale")}
    assert phase_from(reports, parallelism=1, job_state=None) == "Succeeded"
    assert len(aggregate_status(reports, parallelism=1)["shards"]) == 1


# -- bounds -----------------------------------------------------------------------------------


def test_failed_files_are_bounded_overall_and_each_error_is_one_redacted_line() -> None:
    secret = "https://a.file.core.windows.net/s/f?sv=2024&sig=TOPSECRET"
    long_error = f"copy failed\nfrom {secret} " + "because " * 100
    reports = {
        str(i): report(
            "CompletedWithErrors", failedFiles=[{"path": f"{i}/{n}", "error": long_error} for n in range(15)]
        )
        for i in range(3)
    }
    failed = aggregate_status(reports, parallelism=3)["failedFiles"]
    assert len(failed) == MAX_FAILED_FILES
    assert [item["path"] for item in failed[:16]] == [*(f"0/{n}" for n in range(15)), "1/0"]
    for item in failed:
        assert len(item["error"]) <= MAX_ERROR_LENGTH and "\n" not in item["error"]
        assert "TOPSECRET" not in item["error"]


def test_garbage_in_a_report_counts_as_nothing() -> None:
    odd = {"state": "Weird", "bytesDone": "lots", "bytesTotal": -5, "failedFiles": "none", "md5": "x"}
    status = aggregate_status({"0": odd}, parallelism=1)
    assert status["shards"][0]["state"] == "Running"
    assert status["progress"]["bytesText"] == "0 B / 0 B" and status["failedFiles"] == []


def test_bytes_transferred_counts_only_what_was_sent() -> None:
    # bytesDone counts skipped and failed files too (so progress reaches 100 %); the counter a
    # person reads as "bytes transferred" must not.
    reports = {
        "0": report(
            "Succeeded", filesDone=3, filesSkipped=1, bytesTotal=1000, bytesDone=1000, bytesTransferred=700
        ),
        "1": report("Succeeded", filesDone=2, bytesTotal=500, bytesDone=500),  # an older worker: no field
    }
    summary = aggregate_status(reports, parallelism=2)
    assert summary["counters"]["bytesTransferred"] == 700 + 500
    assert summary["progress"]["bytesDone"] == 1500
    assert summary["progress"]["percentText"] == "100%"


def test_files_kept_because_the_destination_is_newer_are_summed_over_the_shards() -> None:
    reports = {
        "0": done(files=3, filesNewerAtDestination=2),
        "1": done(files=5, filesNewerAtDestination=1),
        "2": done(files=1),  # an older worker's report has no such key
    }
    status = aggregate_status(reports, parallelism=3)
    assert status["counters"]["filesNewerAtDestination"] == 3
    assert status["counters"]["filesSkipped"] == 0  # not transfers: not skipped ones
