"""The job plan store: what a job records survives a killed process, is read back as written
(buffered writes included), never holds a secret, and stays fast and small for huge trees."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shareferry.core.engine.resume import PlanScope
from shareferry.core.errors import NotFoundError, UsageError
from shareferry.core.jobplan import (
    JOB_DIR_ENV,
    PLAN_FILE,
    RUNNING,
    Batching,
    FileState,
    JobPlan,
    JobRecord,
    PlanUnreadableError,
    job_dir_from_env,
    list_jobs,
    remove_jobs,
)

SECRET = "c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
#: Nothing is committed until flush() (or close()): what is seen before is the buffer.
MANUAL = Batching(size=10**9, seconds=10**9)


def new_record(job_id: str | None = None, **changes: Any) -> JobRecord:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "job_id": job_id or str(uuid.uuid4()),
        "command": "copy",
        "source": "./data",
        "destination": "https://acct.file.core.windows.net/share/dir",
        "from_to": "LocalFile",
        "options": {"recursive": True, "block_size": 8388608, "include_patterns": ["*.txt"]},
        "created": now,
        "updated": now,
        "status": RUNNING,
        "runs": 0,
        "summary": None,
        "error": None,
    }
    values.update(changes)
    return JobRecord(**values)


@pytest.fixture
def plan(tmp_path: Path) -> Iterator[JobPlan]:
    with JobPlan.create(tmp_path, new_record(), batching=MANUAL) as opened:
        yield opened


def reader(plan: JobPlan) -> JobPlan:
    """Another connection to the same plan, as another process (``jobs show``) would open it."""
    job_dir = plan.path.parent
    return JobPlan.open(job_dir.parent, job_dir.name)


def plan_file(
    plan: JobPlan, name: str, *, size: int = 10, mtime: str | None = "2024-05-01T10:00:00+00:00"
) -> None:
    plan.planned(destination=name, source=f"src/{name}", size=size, source_mtime=mtime, is_dir=False)


# ---- where plans live, creating and opening ----------------------------------------------------


def test_job_dir_comes_from_the_environment_or_the_home_directory(tmp_path: Path) -> None:
    chosen = tmp_path / "jobs-here"
    assert job_dir_from_env({JOB_DIR_ENV: str(chosen)}) == chosen
    assert job_dir_from_env({}) == Path.home() / ".shareferry" / "jobs"
    assert not chosen.exists()  # looking it up creates nothing


def test_a_created_plan_reopens_with_the_same_record(tmp_path: Path) -> None:
    record = new_record(summary={"files_completed": 0})
    JobPlan.create(tmp_path, record).close()

    assert (tmp_path / record.job_id / PLAN_FILE).is_file()
    with JobPlan.open(tmp_path, record.job_id) as reopened:
        assert reopened.record == record
    assert [job.job_id for job in list_jobs(tmp_path)] == [record.job_id]


def test_an_existing_job_id_is_refused(tmp_path: Path) -> None:
    record = new_record()
    JobPlan.create(tmp_path, record).close()
    with pytest.raises(FileExistsError):
        JobPlan.create(tmp_path, new_record(record.job_id, source="./other"))
    with JobPlan.open(tmp_path, record.job_id) as reopened:
        assert reopened.record.source == record.source


def test_a_missing_job_is_not_found_with_its_id_and_directory(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as raised:
        JobPlan.open(tmp_path / "no-such-dir", "0123456789abcdef")
    assert "0123456789abcdef" in str(raised.value)
    assert str(tmp_path / "no-such-dir") in str(raised.value)


def test_a_unique_prefix_of_eight_characters_opens_a_job(tmp_path: Path) -> None:
    first = new_record("aaaa1111-0000-4000-8000-000000000001")
    twin = new_record("aaaa1111-ffff-4000-8000-000000000002")
    other = new_record("bbbb2222-0000-4000-8000-000000000003")
    for record in (first, twin, other):
        JobPlan.create(tmp_path, record).close()

    with JobPlan.open(tmp_path, other.job_id[:8]) as opened:
        assert opened.record.job_id == other.job_id
    with JobPlan.open(tmp_path, first.job_id[:12]) as opened:
        assert opened.record.job_id == first.job_id
    with pytest.raises(UsageError, match="matches 2 jobs"):
        JobPlan.open(tmp_path, first.job_id[:8])
    with pytest.raises(NotFoundError):
        JobPlan.open(tmp_path, other.job_id[:7])  # too short to stand for an id
    with pytest.raises(UsageError):
        JobPlan.open(tmp_path, "../" + other.job_id)


@pytest.mark.parametrize(
    "changes",
    [
        {"source": f"https://acct.blob.core.windows.net/c?sv=2022-11-02&sig={SECRET}"},
        {"destination": f"https://acct.file.core.windows.net/share?SIG={SECRET}"},
        {"destination": f"https://acct.file.core.windows.net/share?x=sig%3D{SECRET}"},
    ],
)
def test_a_source_or_destination_with_a_sas_is_refused(tmp_path: Path, changes: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="SAS"):
        JobPlan.create(tmp_path, new_record(**changes))
    assert list_jobs(tmp_path) == []


def test_options_that_are_not_json_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="options must be JSON"):
        JobPlan.create(tmp_path, new_record(options={"after": datetime.now(UTC)}))
    with pytest.raises(ValueError, match="timezone"):
        JobPlan.create(tmp_path, new_record(created=datetime.now()))
    assert list_jobs(tmp_path) == []


# ---- runs --------------------------------------------------------------------------------------


def test_runs_are_counted_and_their_outcome_recorded(tmp_path: Path) -> None:
    record = new_record()
    with JobPlan.create(tmp_path, record) as plan:
        plan.start_run()
        assert plan.record.status == RUNNING
        assert plan.record.runs == 1
        plan.end_run(status="CompletedWithErrors", summary={"files_failed": 1, "elapsed": 0.5}, error=None)
    with JobPlan.open(tmp_path, record.job_id) as plan:
        plan.start_run()  # a resume
        plan.end_run(status="Failed", summary={"files_failed": 0}, error=f"403 for https://a/b?sig={SECRET}")
        ended = plan.record
    assert ended.runs == 2
    assert ended.status == "Failed"
    assert ended.summary == {"files_failed": 0}
    assert ended.error is not None and "403" in ended.error and SECRET not in ended.error
    assert ended.created == record.created
    assert ended.updated > record.updated
    assert list_jobs(tmp_path)[0].status == "Failed"


def test_a_run_ends_with_json_counters_and_a_final_status(plan: JobPlan) -> None:
    plan.start_run()
    with pytest.raises(TypeError, match="summary must be JSON"):
        plan.end_run(status="Completed", summary={"path": Path("x")}, error=None)
    with pytest.raises(ValueError):
        plan.end_run(status=RUNNING, summary={}, error=None)
    assert plan.record.status == RUNNING


# ---- files ---------------------------------------------------------------------------------------


def test_buffered_writes_are_seen_by_the_writer_and_committed_on_flush(plan: JobPlan) -> None:
    plan_file(plan, "a.txt", size=3)
    plan.finished("a.txt", state=FileState.DONE, md5="900150983cd24fb0d6963f7d28e17f72")
    plan_file(plan, "b.txt")

    other = reader(plan)
    try:
        assert other.previous("a.txt") is None  # not committed yet
        seen = plan.previous("a.txt")
        assert seen is not None
        assert (seen.state, seen.size, seen.source, seen.md5) == (
            FileState.DONE,
            3,
            "src/a.txt",
            "900150983cd24fb0d6963f7d28e17f72",
        )
        plan.flush()
        assert other.previous("a.txt") == seen
        assert other.previous("b.txt") == plan.previous("b.txt")
    finally:
        other.close()


def test_a_full_batch_is_committed_without_a_flush(tmp_path: Path) -> None:
    with JobPlan.create(tmp_path, new_record(), batching=Batching(size=10, seconds=10**9)) as plan:
        other = reader(plan)
        try:
            for index in range(9):
                plan_file(plan, f"f{index}")
            assert other.counts()[FileState.PLANNED] == 0
            plan_file(plan, "f9")
            assert other.counts()[FileState.PLANNED] == 10
        finally:
            other.close()


def test_buffered_writes_are_committed_once_the_interval_has_passed(tmp_path: Path) -> None:
    with JobPlan.create(tmp_path, new_record(), batching=Batching(size=10**9, seconds=0.2)) as plan:
        other = reader(plan)
        try:
            plan.flush()
            plan_file(plan, "early")
            assert other.previous("early") is None
            time.sleep(0.3)
            plan_file(plan, "late")  # the first call after the interval commits both
            assert other.previous("early") is not None
            assert other.previous("late") is not None
        finally:
            other.close()


def test_closing_commits_what_is_buffered(tmp_path: Path) -> None:
    record = new_record()
    with JobPlan.create(tmp_path, record, batching=MANUAL) as plan:
        plan_file(plan, "kept")
        plan.finished("kept", state=FileState.SKIPPED)
    with JobPlan.open(tmp_path, record.job_id) as reopened:
        kept = reopened.previous("kept")
        assert kept is not None and kept.state is FileState.SKIPPED


@pytest.mark.parametrize("commit_first", [False, True], ids=["buffered", "committed"])
def test_planning_again_keeps_done_files_of_an_unchanged_source(plan: JobPlan, commit_first: bool) -> None:
    for name in ("same", "resized", "touched", "failed", "skipped"):
        plan_file(plan, name)
    for name in ("same", "resized", "touched"):
        plan.finished(name, state=FileState.DONE, md5="d41d8cd98f00b204e9800998ecf8427e")
    plan.finished("failed", state=FileState.FAILED, error="connection reset")
    plan.finished("skipped", state=FileState.SKIPPED)
    if commit_first:
        plan.flush()

    plan_file(plan, "same")
    plan_file(plan, "resized", size=11)
    plan_file(plan, "touched", mtime="2024-06-01T00:00:00+00:00")
    plan_file(plan, "failed")
    plan_file(plan, "skipped")
    before_flush = {name: plan.previous(name) for name in ("same", "resized", "touched", "failed", "skipped")}
    plan.flush()
    after_flush = {name: plan.previous(name) for name in before_flush}

    assert before_flush == after_flush
    same = after_flush["same"]
    assert (
        same is not None and same.state is FileState.DONE and same.md5 == "d41d8cd98f00b204e9800998ecf8427e"
    )
    for name in ("resized", "touched", "failed", "skipped"):
        again = after_flush[name]
        assert again is not None and again.state is FileState.PLANNED and again.error is None, name
    resized = after_flush["resized"]
    assert resized is not None and resized.size == 11
    assert plan.counts() == {
        FileState.DONE: 1,
        FileState.PLANNED: 4,
        FileState.FAILED: 0,
        FileState.SKIPPED: 0,
    }


def test_files_are_listed_by_state_and_errors_hold_no_secret(plan: JobPlan) -> None:
    names = [f"dir/file{index:04d}.bin" for index in range(2500)]
    for index, name in enumerate(names):
        plan_file(plan, name, size=index)
        if index % 10 == 0:
            plan.finished(name, state=FileState.FAILED, error=f"403 on https://a/b?sv=1&sig={SECRET}")
        else:
            plan.finished(name, state=FileState.DONE, md5="00" * 16)
    plan.finished("never/planned.txt", state=FileState.DONE)

    failed = list(plan.files(state=FileState.FAILED))
    assert [file.destination for file in failed] == [name for i, name in enumerate(names) if i % 10 == 0]
    assert all(file.error and "403" in file.error and SECRET not in file.error for file in failed)
    assert len(list(plan.files(state=FileState.FAILED, limit=7))) == 7
    everything = list(plan.files())
    assert [file.destination for file in everything] == sorted([*names, "never/planned.txt"])
    assert plan.counts()[FileState.DONE] == len(names) - len(failed) + 1
    plan.close()
    stored = b"".join(path.read_bytes() for path in plan.path.parent.iterdir())
    assert SECRET.encode() not in stored


def test_paths_planned_under_another_letter_case_are_recognised(plan: JobPlan) -> None:
    plan_file(plan, "Photos/Été.JPG")
    assert plan.planned_in_another_case("photos/été.jpg")
    assert not plan.planned_in_another_case("Photos/Été.JPG")  # itself: not a twin
    assert not plan.planned_in_another_case("photos/ete.jpg")
    plan_file(plan, "Later/README.md")  # planned after the first question
    assert plan.planned_in_another_case("later/readme.MD")
    assert not reader(plan).planned_in_another_case("nothing")


# ---- sync deletions ----------------------------------------------------------------------------


def test_deletion_candidates_come_files_first_then_deepest_directories_first(plan: JobPlan) -> None:
    found = [("a", True), ("a/x.txt", False), ("a/b", True), ("a/b/y.txt", False), ("c.txt", False)]
    for path, is_dir in found:
        plan.delete_candidate(path, is_dir=is_dir)
    plan.delete_candidate("a/x.txt", is_dir=False)  # found twice: keeps its first place

    assert plan.count_delete_candidates() == (3, 2)
    assert list(plan.delete_candidates()) == [
        ("a/x.txt", False),
        ("a/b/y.txt", False),
        ("c.txt", False),
        ("a/b", True),
        ("a", True),
    ]
    plan.deleted("a/x.txt")
    plan.deleted("c.txt", error="409 DirectoryNotEmpty")
    assert plan.count_delete_candidates() == (1, 2)
    assert [path for path, _ in plan.delete_candidates()] == ["a/b/y.txt", "a/b", "a"]
    plan.clear_delete_candidates()
    assert plan.count_delete_candidates() == (0, 0)
    assert list(plan.delete_candidates()) == []


def test_deleting_while_iterating_many_candidates_visits_each_once(tmp_path: Path) -> None:
    with JobPlan.create(tmp_path, new_record(), batching=Batching(size=64, seconds=10**9)) as plan:
        directories = [f"d{index:05d}" for index in range(1500)]
        files = [f"{directory}/f.txt" for directory in directories]
        for directory, file in zip(directories, files, strict=True):
            plan.delete_candidate(directory, is_dir=True)
            plan.delete_candidate(file, is_dir=False)
        visited = []
        for path, _ in plan.delete_candidates():
            visited.append(path)
            plan.deleted(path)  # commits every 64 calls, in the middle of the iteration
        assert visited == files + directories[::-1]
        assert plan.count_delete_candidates() == (0, 0)


# ---- a killed process --------------------------------------------------------------------------

KILLED_CHILD = textwrap.dedent(
    """
    import os, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from shareferry.core.jobplan import Batching, FileState, JobPlan, JobRecord

    now = datetime.now(UTC)
    record = JobRecord(job_id=sys.argv[2], command="copy", source="./src", destination="./dst",
                       from_to=None, options={}, created=now, updated=now, status="Running", runs=0,
                       summary=None, error=None)
    plan = JobPlan.create(Path(sys.argv[1]), record, batching=Batching(size=10**9, seconds=10**9))
    plan.start_run()
    for index in range(1050):
        name = f"file{index:05d}"
        plan.planned(destination=name, source=name, size=index, source_mtime=None, is_dir=False)
        plan.finished(name, state=FileState.DONE, md5=f"{index:032x}")
        if (index + 1) % 100 == 0:
            plan.flush()
    os.kill(os.getpid(), 9)
    """
)


def test_a_killed_process_loses_nothing_it_flushed(tmp_path: Path) -> None:
    job_id = str(uuid.uuid4())
    child = subprocess.run(
        [sys.executable, "-c", KILLED_CHILD, str(tmp_path), job_id],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr

    with JobPlan.open(tmp_path, job_id) as plan:
        done = list(plan.files(state=FileState.DONE))
        assert 1000 <= len(done) <= 1050
        assert all(file.md5 == f"{file.size:032x}" for file in done)
        assert plan.record.status == RUNNING  # it never ended
        plan.start_run()  # and it can run again
        assert plan.record.runs == 2
    with sqlite3.connect(tmp_path / job_id / PLAN_FILE) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert [record.job_id for record in list_jobs(tmp_path)] == [job_id]


# ---- every job of a directory ------------------------------------------------------------------


def test_listing_is_newest_first_and_skips_what_cannot_be_read(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    records = [new_record(created=now - timedelta(hours=hours)) for hours in (5, 1, 3)]
    for record in records:
        JobPlan.create(tmp_path, record).close()
    (tmp_path / "garbage-0001").mkdir()
    (tmp_path / "garbage-0001" / PLAN_FILE).write_bytes(b"this is not a database" * 100)
    (tmp_path / "empty-00002").mkdir()
    (tmp_path / "empty-00003").mkdir()
    (tmp_path / "empty-00003" / PLAN_FILE).write_bytes(b"")
    (tmp_path / "stray-file.txt").write_text("not a job")

    listed = list_jobs(tmp_path)
    assert [record.job_id for record in listed] == [
        record.job_id for record in sorted(records, key=lambda r: r.created, reverse=True)
    ]
    assert list_jobs(tmp_path / "missing") == []
    with pytest.raises(PlanUnreadableError, match="garbage-0001"):
        JobPlan.open(tmp_path, "garbage-0001")


def _jobs(tmp_path: Path, **statuses: str) -> dict[str, str]:
    """One job per name, ending with the status given (``Running``: never ended); name -> id."""
    ids = {}
    for name, status in statuses.items():
        record = new_record()
        with JobPlan.create(tmp_path, record) as plan:
            plan.start_run()
            if status != RUNNING:
                plan.end_run(status=status, summary={}, error=None)
        ids[name] = record.job_id
    return ids


def test_cleaning_with_no_selector_removes_every_finished_job(tmp_path: Path) -> None:
    ids = _jobs(tmp_path, done="Completed", broken="Failed", live=RUNNING)
    removed = remove_jobs(tmp_path)
    assert sorted(removed) == sorted([ids["done"], ids["broken"]])
    assert [record.job_id for record in list_jobs(tmp_path)] == [ids["live"]]
    assert not (tmp_path / ids["done"]).exists()


def test_cleaning_by_status_and_age(tmp_path: Path) -> None:
    ids = _jobs(tmp_path, done="Completed", broken="Failed", cancelled="Cancelled")
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    old = new_record(created=ten_days_ago, updated=ten_days_ago, status="Completed")
    JobPlan.create(tmp_path, old).close()

    assert remove_jobs(tmp_path, statuses=["failed"]) == [ids["broken"]]
    assert remove_jobs(tmp_path, older_than=timedelta(days=7)) == [old.job_id]
    assert remove_jobs(tmp_path, older_than=timedelta(days=7), statuses=["Cancelled"]) == []
    left = {record.job_id for record in list_jobs(tmp_path)}
    assert left == {ids["done"], ids["cancelled"]}
    later = datetime.now(UTC) + timedelta(days=8)
    assert sorted(remove_jobs(tmp_path, older_than=timedelta(days=7), now=later)) == sorted(left)


def test_a_running_job_is_removed_only_when_named(tmp_path: Path) -> None:
    ids = _jobs(tmp_path, live=RUNNING, done="Completed")
    assert remove_jobs(tmp_path, statuses=[RUNNING]) == []
    assert remove_jobs(tmp_path, job_ids=[ids["live"][:8]]) == [ids["live"]]
    with pytest.raises(NotFoundError):
        remove_jobs(tmp_path, job_ids=[ids["done"], "ffffffff-no-such-job"])
    assert [record.job_id for record in list_jobs(tmp_path)] == [ids["done"]]  # nothing removed


def test_a_named_unreadable_job_can_be_removed(tmp_path: Path) -> None:
    (tmp_path / "broken-job-1").mkdir()
    (tmp_path / "broken-job-1" / PLAN_FILE).write_bytes(b"\0" * 4096)
    assert remove_jobs(tmp_path) == []
    assert remove_jobs(tmp_path, job_ids=["broken-job-1"]) == ["broken-job-1"]
    assert not (tmp_path / "broken-job-1").exists()


# ---- scale ------------------------------------------------------------------------------------


def _record_files(plan: JobPlan, count: int, *, start: int = 0) -> None:
    for index in range(start, start + count):
        name = f"tree/{index // 1000:04d}/file{index:07d}.dat"
        plan.planned(
            destination=name, source=name, size=index, source_mtime="2024-05-01T10:00:00+00:00", is_dir=False
        )
        plan.finished(name, state=FileState.DONE, md5="d41d8cd98f00b204e9800998ecf8427e")


@pytest.mark.slow
def test_two_hundred_thousand_files_take_seconds(tmp_path: Path) -> None:
    count = 200_000
    with JobPlan.create(tmp_path, new_record()) as plan:
        started = time.perf_counter()
        _record_files(plan, count)
        plan.flush()
        elapsed = time.perf_counter() - started
        assert plan.counts()[FileState.DONE] == count
    assert elapsed < 20, f"{count} files took {elapsed:.1f} s"  # about 1.5 s on one core


@pytest.mark.slow
def test_memory_stays_flat_however_many_files(tmp_path: Path) -> None:
    with JobPlan.create(tmp_path, new_record()) as plan:
        _record_files(plan, 5_000)  # warm up: caches, compiled statements
        tracemalloc.start()
        try:
            _record_files(plan, 10_000, start=5_000)
            _, peak_small = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            _record_files(plan, 100_000, start=15_000)
            current, peak_large = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    mib = 1024 * 1024
    assert peak_large < 4 * mib, f"peak {peak_large / mib:.1f} MiB"
    assert peak_large < peak_small + mib  # ten times the files, no more memory
    assert current < mib


# ---- the engine's grouped commits ------------------------------------------------------------


async def test_each_file_is_durable_when_its_grouped_commit_returns(plan: JobPlan) -> None:
    """Files recorded in the same turn share one commit, and none returns before its row can be
    read from another connection (as a resumed run, or a second process, reads it)."""
    scope = PlanScope(plan)
    other = reader(plan)
    seen_after_return: list[bool] = []
    commits = 0
    real_flush = plan.flush

    def counting_flush() -> None:
        nonlocal commits
        commits += 1
        real_flush()

    plan.flush = counting_flush  # type: ignore[method-assign]

    async def one(index: int) -> None:
        name = f"dir/{index:03d}.bin"
        await scope.planned(destination=name, source=f"src/{name}", size=index, source_mtime=None)
        seen_after_return.append(other.previous(name) is not None)
        await scope.finished(name, state=FileState.DONE, md5=None, error=None)
        row = other.previous(name)
        seen_after_return.append(row is not None and row.state is FileState.DONE)

    try:
        await asyncio.gather(*(one(index) for index in range(100)))
    finally:
        other.close()
    assert seen_after_return == [True] * 200
    assert commits == 2  # 100 files planned in one turn, finished in the next


async def test_a_failed_grouped_commit_fails_every_file_that_waited_for_it(tmp_path: Path) -> None:
    plan = JobPlan.create(tmp_path, new_record(), batching=MANUAL)
    scope = PlanScope(plan)
    plan.close()  # the database is gone: the commit cannot happen

    async def one(index: int) -> None:
        await scope.planned(destination=f"{index}.bin", source=f"s/{index}", size=1, source_mtime=None)

    outcomes = await asyncio.gather(*(one(index) for index in range(5)), return_exceptions=True)
    assert all(isinstance(outcome, sqlite3.ProgrammingError) for outcome in outcomes), outcomes
