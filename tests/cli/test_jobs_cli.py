"""``shareferry jobs list|show|clean`` run as a user runs them (``python -m shareferry jobs ...``)
on job plans written through the store's API, in a job directory given by SHAREFERRY_JOB_DIR.
Checked as a user would: what is printed, that JSON output parses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shareferry.core.jobplan import JOB_DIR_ENV, RUNNING, FileState, JobPlan, JobRecord, list_jobs

SECRET = "c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"


def shareferry(job_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AZURE_")}
    environment[JOB_DIR_ENV] = str(job_dir)
    return subprocess.run(
        [sys.executable, "-m", "shareferry", "jobs", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
        stdin=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class Job:
    """A job written through the API, and what it recorded."""

    job_id: str
    status: str
    source: str
    destination: str
    done: list[str]
    failed: dict[str, str]  # destination -> error
    planned: list[str]

    @property
    def total(self) -> int:
        return len(self.done) + len(self.failed) + len(self.planned)


def make_job(
    job_dir: Path,
    *,
    status: str,
    done: int = 3,
    failed: int = 0,
    planned: int = 0,
    age: timedelta | None = None,
    name: str = "data",
) -> Job:
    """A job whose one run ended with ``status`` (``Running``: has not ended), just now or, given
    ``age``, that long ago."""
    created = datetime.now(UTC) - (age or timedelta(0))
    summary = {"files_completed": done, "files_failed": failed}
    record = JobRecord(
        job_id=str(uuid.uuid4()),
        command="copy",
        source=f"./{name}",
        destination=f"https://acct.file.core.windows.net/share/{name}",
        from_to="LocalFile",
        options={"recursive": True},
        created=created,
        updated=created,
        status=RUNNING if age is None else status,
        runs=0 if age is None else 1,
        summary=None if age is None else summary,
        error=None,
    )
    job = Job(
        job_id=record.job_id,
        status=status,
        source=record.source,
        destination=record.destination,
        done=[f"{name}/done{index}.txt" for index in range(done)],
        failed={
            f"{name}/failed{index}.txt": f"403 AuthorizationFailure ({index})" for index in range(failed)
        },
        planned=[f"{name}/todo{index}.txt" for index in range(planned)],
    )
    with JobPlan.create(job_dir, record) as plan:
        if age is None:
            plan.start_run()
        for destination in [*job.done, *job.failed, *job.planned]:
            plan.planned(destination=destination, source=destination, size=5, source_mtime=None, is_dir=False)
        for destination in job.done:
            plan.finished(destination, state=FileState.DONE, md5="5d41402abc4b2a76b9719d911017c592")
        for destination, error in job.failed.items():
            plan.finished(destination, state=FileState.FAILED, error=error)
        if age is None and status != RUNNING:
            plan.end_run(status=status, summary=summary, error=None)
    return job


def listed_ids(job_dir: Path) -> set[str]:
    return {record.job_id for record in list_jobs(job_dir)}


def one_line_error(result: subprocess.CompletedProcess[str], *, code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("shareferry jobs ")
    return lines[0]


# ---- list --------------------------------------------------------------------------------------


def test_list_with_no_jobs_says_so(tmp_path: Path) -> None:
    text = shareferry(tmp_path / "jobs", "list")
    assert text.returncode == 0, text.stderr
    assert "No jobs" in text.stdout
    as_json = shareferry(tmp_path / "jobs", "list", "--output-type", "json")
    assert as_json.returncode == 0
    assert as_json.stdout.strip() == ""


def test_list_shows_every_job_newest_first(tmp_path: Path) -> None:
    oldest = make_job(tmp_path, status="Completed", done=4, age=timedelta(hours=3), name="oldest")
    middle = make_job(
        tmp_path, status="CompletedWithErrors", done=2, failed=1, age=timedelta(hours=2), name="mid"
    )
    newest = make_job(tmp_path, status=RUNNING, done=1, planned=5, name="newest")

    result = shareferry(tmp_path, "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    order = [
        next(i for i, line in enumerate(lines) if job.job_id in line) for job in (newest, middle, oldest)
    ]
    assert order == sorted(order)
    for job in (oldest, middle, newest):
        line = next(line for line in lines if job.job_id in line)
        assert job.status in line
        assert f"{len(job.done)}/{job.total}" in line
        assert f"{job.source} -> {job.destination}" in line
        assert "copy" in line


def test_list_as_json_is_one_object_per_job(tmp_path: Path) -> None:
    jobs = [
        make_job(tmp_path, status="Completed", done=2, name="a"),
        make_job(tmp_path, status="Failed", done=0, failed=2, name="b"),
    ]
    result = shareferry(tmp_path, "list", "--output-type", "json")
    assert result.returncode == 0, result.stderr
    objects = {document["job_id"]: document for document in map(json.loads, result.stdout.splitlines())}
    assert set(objects) == {job.job_id for job in jobs}
    for job in jobs:
        document = objects[job.job_id]
        assert document["status"] == job.status
        assert document["runs"] == 1
        assert document["source"] == job.source
        assert document["destination"] == job.destination
        assert document["files"]["total"] == job.total
        assert document["files"]["done"] == len(job.done)
        assert document["files"]["failed"] == len(job.failed)
        assert datetime.fromisoformat(document["created"]) <= datetime.now(UTC)


# ---- show --------------------------------------------------------------------------------------


def test_show_gives_the_counters_and_failed_files_with_their_errors(tmp_path: Path) -> None:
    job = make_job(tmp_path, status="CompletedWithErrors", done=3, failed=2, planned=1)
    result = shareferry(tmp_path, "show", job.job_id[:8])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert job.job_id in out
    assert job.status in out
    assert job.source in out and job.destination in out
    assert f"{len(job.done)} done" in out
    assert f"{len(job.failed)} failed" in out
    assert f"{len(job.planned)} planned" in out
    assert f"files_completed: {len(job.done)}" in out
    for destination, error in job.failed.items():
        assert any(destination in line and error in line for line in out.splitlines())


def test_show_lists_at_most_the_failures_asked_for(tmp_path: Path) -> None:
    job = make_job(tmp_path, status="CompletedWithErrors", done=1, failed=5)
    text = shareferry(tmp_path, "show", job.job_id, "--max-failures", "2")
    assert text.returncode == 0, text.stderr
    assert sum(destination in text.stdout for destination in job.failed) == 2
    assert "2 of 5" in text.stdout

    as_json = shareferry(tmp_path, "show", job.job_id, "--output-type", "json", "--max-failures", "3")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["job_id"] == job.job_id
    assert document["files"]["failed"] == 5
    assert document["summary"] == {"files_completed": 1, "files_failed": 5}
    assert len(document["failed_files"]) == 3
    for failure in document["failed_files"]:
        assert job.failed[failure["destination"]] == failure["error"]


def test_show_never_prints_a_sas_signature(tmp_path: Path) -> None:
    record = JobRecord(
        job_id=str(uuid.uuid4()),
        command="sync",
        source="./data",
        destination="https://acct.blob.core.windows.net/container",
        from_to=None,
        options={},
        created=datetime.now(UTC),
        updated=datetime.now(UTC),
        status=RUNNING,
        runs=0,
        summary=None,
        error=None,
    )
    with JobPlan.create(tmp_path, record) as plan:
        plan.start_run()
        plan.planned(destination="x.bin", source="x.bin", size=1, source_mtime=None, is_dir=False)
        plan.finished(
            "x.bin", state=FileState.FAILED, error=f"GET https://a.blob/c/x.bin?sv=1&sig={SECRET} 403"
        )
        plan.end_run(status="Failed", summary={}, error=f"cannot list https://a.blob/c?sig={SECRET}")
    for output_type in ("text", "json"):
        result = shareferry(tmp_path, "show", record.job_id, "--output-type", output_type)
        assert result.returncode == 0, result.stderr
        assert "403" in result.stdout and "cannot list" in result.stdout
        assert SECRET not in result.stdout + result.stderr


def test_show_of_an_unknown_job_is_one_line_and_exit_1(tmp_path: Path) -> None:
    make_job(tmp_path, status="Completed")
    result = shareferry(tmp_path, "show", "0badc0de-0000-0000-0000-000000000000")
    line = one_line_error(result, code=1)
    assert "0badc0de-0000-0000-0000-000000000000" in line
    assert result.stdout == ""


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    first = make_job(tmp_path, status="Completed")
    twin_id = first.job_id[:8] + "-ffff-4fff-8fff-ffffffffffff"
    JobPlan.create(
        tmp_path,
        JobRecord(
            job_id=twin_id,
            command="copy",
            source="./twin",
            destination="./out",
            from_to=None,
            options={},
            created=datetime.now(UTC),
            updated=datetime.now(UTC),
            status="Completed",
            runs=1,
            summary=None,
            error=None,
        ),
    ).close()
    assert "more of the id" in one_line_error(shareferry(tmp_path, "show", first.job_id[:8]), code=2)
    assert "--output-type" in one_line_error(shareferry(tmp_path, "list", "--output-type", "xml"), code=2)
    one_line_error(shareferry(tmp_path, "show"), code=2)
    one_line_error(shareferry(tmp_path, "list", "--bogus"), code=2)
    assert "--older-than" in one_line_error(shareferry(tmp_path, "clean", "--older-than", "soon"), code=2)
    assert "--status" in one_line_error(shareferry(tmp_path, "clean", "--status", "Finished"), code=2)
    assert listed_ids(tmp_path) == {first.job_id, twin_id}  # bad input removes nothing


def test_jobs_with_no_subcommand_shows_its_usage(tmp_path: Path) -> None:
    result = shareferry(tmp_path)
    assert result.returncode == 2
    for subcommand in ("list", "show", "clean"):
        assert subcommand in result.stderr


# ---- clean -------------------------------------------------------------------------------------


def test_clean_with_no_selector_removes_every_finished_job(tmp_path: Path) -> None:
    done = make_job(tmp_path, status="Completed", name="a")
    broken = make_job(tmp_path, status="Failed", failed=1, done=0, name="b")
    live = make_job(tmp_path, status=RUNNING, name="c")

    result = shareferry(tmp_path, "clean")
    assert result.returncode == 0, result.stderr
    assert done.job_id in result.stdout and broken.job_id in result.stdout
    assert live.job_id not in result.stdout
    assert listed_ids(tmp_path) == {live.job_id}
    listing = shareferry(tmp_path, "list")
    assert live.job_id in listing.stdout and done.job_id not in listing.stdout

    again = shareferry(tmp_path, "clean")
    assert again.returncode == 0
    assert "No jobs to remove" in again.stdout


def test_clean_by_status_age_and_id(tmp_path: Path) -> None:
    done = make_job(tmp_path, status="Completed", name="done")
    skipped = make_job(tmp_path, status="CompletedWithSkipped", name="skipped")
    broken = make_job(tmp_path, status="Failed", done=0, failed=1, name="broken")
    old = make_job(tmp_path, status="Completed", age=timedelta(days=10), name="old")
    live = make_job(tmp_path, status=RUNNING, name="live")

    by_status = shareferry(tmp_path, "clean", "--status", "failed")
    assert by_status.returncode == 0, by_status.stderr
    assert listed_ids(tmp_path) == {done.job_id, skipped.job_id, old.job_id, live.job_id}

    by_age = shareferry(tmp_path, "clean", "--older-than", "7d")
    assert by_age.returncode == 0, by_age.stderr
    assert old.job_id in by_age.stdout
    assert listed_ids(tmp_path) == {done.job_id, skipped.job_id, live.job_id}

    both = shareferry(tmp_path, "clean", "--status", "Completed,CompletedWithSkipped", "--older-than", "1h")
    assert both.returncode == 0, both.stderr
    assert listed_ids(tmp_path) == {done.job_id, skipped.job_id, live.job_id}  # not old enough

    named = shareferry(tmp_path, "clean", live.job_id[:8], "--output-type", "json")
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout) == {"removed": [live.job_id]}
    assert listed_ids(tmp_path) == {done.job_id, skipped.job_id}
    assert broken.job_id not in listed_ids(tmp_path)


def test_clean_of_an_unknown_job_removes_nothing_and_exits_1(tmp_path: Path) -> None:
    done = make_job(tmp_path, status="Completed")
    result = shareferry(tmp_path, "clean", done.job_id, "feedface-no-such-job")
    assert "feedface-no-such-job" in one_line_error(result, code=1)
    assert listed_ids(tmp_path) == {done.job_id}


@pytest.mark.parametrize("output_type", ["text", "json"])
def test_a_job_started_but_never_ended_shows_as_running(tmp_path: Path, output_type: str) -> None:
    live = make_job(tmp_path, status=RUNNING, done=2, planned=3)
    result = shareferry(tmp_path, "show", live.job_id, "--output-type", output_type)
    assert result.returncode == 0, result.stderr
    if output_type == "json":
        document = json.loads(result.stdout)
        assert document["status"] == RUNNING
        assert document["files"]["planned"] == len(live.planned)
    else:
        assert RUNNING in result.stdout
        assert f"{len(live.planned)} planned" in result.stdout
