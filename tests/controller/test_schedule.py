"""SyncSchedule decisions with an injected clock: when runs start, what is missed, skipped,
replaced, pruned and written to status, and when the handler wakes up next."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shareferry.api import names
from shareferry.api.syncschedule import SyncScheduleSpec, parse_syncschedule
from shareferry.controller.schedule import (
    ChildCopyJob,
    ScheduleDecision,
    ScheduleState,
    SkipReason,
    build_copyjob_from_template,
    decide,
    format_time,
    parse_time,
)

TEMPLATE = {
    "metadata": {"labels": {"team": "data"}, "annotations": {"note": "from the template"}},
    "spec": {
        "source": {"fileShare": {"name": "reports"}},
        "destination": {
            "url": "https://dr.file.core.windows.net/reports",
            "credentials": {"secretName": "dr"},
        },
        "options": {"deleteDestination": "true"},
    },
}
UID = "8a4c6f7e-1111-2222-3333-444455556666"
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def at(hh_mm: str, day: int = 1) -> datetime:
    """A time on 2025-06-<day> in UTC."""
    hour, minute = (int(part) for part in hh_mm.split(":"))
    return datetime(2025, 6, day, hour, minute, tzinfo=UTC)


def make_spec(schedule: str = "0 * * * *", **fields: Any) -> SyncScheduleSpec:
    return parse_syncschedule({"schedule": schedule, "jobTemplate": TEMPLATE, **fields})


def state(**fields: Any) -> ScheduleState:
    defaults: dict[str, Any] = {"name": "hourly", "created": at("00:10"), "uid": UID, "generation": 1}
    return ScheduleState(**{**defaults, **fields})


def child(name: str, created: datetime, phase: str | None = "Running", **fields: Any) -> ChildCopyJob:
    return ChildCopyJob(name=name, created=created, phase=phase, owner_uid=UID, **fields)


def cronjob_style_name(schedule: str, scheduled: datetime) -> str:
    return f"{schedule}-{int(scheduled.timestamp()) // 60}"


# -- the scheduled part, as a table --------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    now: datetime
    state: dict[str, Any]
    spec: dict[str, Any]
    run_at: datetime | None
    skipped: SkipReason | None
    missed: int
    last_schedule: datetime | None
    delete_active: tuple[str, ...] = ()


RUNNING = child("hourly-old", at("02:00"))
CASES = [
    Case("not due yet after creation", at("00:59"), {}, {}, None, None, 0, None),
    Case("first run", at("01:00"), {}, {}, at("01:00"), None, 0, at("01:00")),
    Case("on time", at("03:00"), {"last_schedule_time": at("02:00")}, {}, at("03:00"), None, 0, at("03:00")),
    Case(
        "late within the deadline",
        at("03:09"),
        {"last_schedule_time": at("02:00")},
        {"startingDeadlineSeconds": 600},
        at("03:00"),
        None,
        0,
        at("03:00"),
    ),
    Case(
        "missed beyond the deadline",
        at("03:11"),
        {"last_schedule_time": at("02:00")},
        {"startingDeadlineSeconds": 600},
        None,
        SkipReason.DEADLINE_EXCEEDED,
        1,
        at("02:00"),
    ),
    Case(
        "controller down for hours: the latest runs, the rest are missed",
        at("06:30"),
        {"last_schedule_time": at("02:00")},
        {},
        at("06:00"),
        None,
        3,
        at("06:00"),
    ),
    Case(
        "Forbid with an active run skips and keeps lastScheduleTime",
        at("03:00"),
        {"last_schedule_time": at("02:00"), "copyjobs": (RUNNING,)},
        {"concurrencyPolicy": "Forbid"},
        None,
        SkipReason.CONCURRENCY_FORBID,
        0,
        at("02:00"),
    ),
    Case(
        "Replace deletes the active run",
        at("03:00"),
        {"last_schedule_time": at("02:00"), "copyjobs": (RUNNING,)},
        {"concurrencyPolicy": "Replace"},
        at("03:00"),
        None,
        0,
        at("03:00"),
        ("hourly-old",),
    ),
    Case(
        "Allow runs beside the active run",
        at("03:00"),
        {"last_schedule_time": at("02:00"), "copyjobs": (RUNNING,)},
        {"concurrencyPolicy": "Allow"},
        at("03:00"),
        None,
        0,
        at("03:00"),
    ),
    Case(
        "suspended: nothing starts, nothing advances",
        at("05:30"),
        {"last_schedule_time": at("02:00")},
        {"suspend": True},
        None,
        SkipReason.SUSPENDED,
        0,
        at("02:00"),
    ),
    Case(
        "a finished run does not block Forbid",
        at("03:00"),
        {"last_schedule_time": at("02:00"), "copyjobs": (replace(RUNNING, phase="Failed"),)},
        {},
        at("03:00"),
        None,
        0,
        at("03:00"),
    ),
    Case(
        "a CopyJob of another owner is ignored",
        at("03:00"),
        {"last_schedule_time": at("02:00"), "copyjobs": (replace(RUNNING, owner_uid="someone-else"),)},
        {},
        at("03:00"),
        None,
        0,
        at("03:00"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_scheduled_runs(case: Case) -> None:
    decision = decide(make_spec(**case.spec), state(**case.state), now=case.now)
    if case.run_at is None:
        assert decision.run is None
    else:
        assert decision.run is not None
        assert decision.run.scheduled_time == case.run_at
        assert decision.run.name == cronjob_style_name("hourly", case.run_at)
        assert not decision.run.manual
    assert decision.skipped == case.skipped
    assert decision.missed_runs == case.missed
    assert decision.status["missedRuns"] == case.missed
    assert decision.status["lastScheduleTime"] == format_time(case.last_schedule)
    assert decision.delete_active == case.delete_active
    expected_active = [
        job.name for job in case.state.get("copyjobs", ()) if job.active and job.owner_uid == UID
    ]
    expected_active = [name for name in expected_active if name not in case.delete_active]
    if decision.run is not None:
        expected_active.append(decision.run.name)
    assert decision.status["active"] == expected_active
    assert decision.status["activeCount"] == len(expected_active)


def after(decision: ScheduleDecision, previous: ScheduleState, *jobs: ChildCopyJob) -> ScheduleState:
    """The state the next decision sees once this one was carried out (status written, the run
    created, deletions done) plus ``jobs`` replacing CopyJobs of the same name."""
    status = decision.status
    copyjobs = {job.name: job for job in previous.copyjobs}
    for name in (*decision.delete_active, *decision.delete_finished):
        copyjobs.pop(name, None)
    if decision.run is not None:
        copyjobs[decision.run.name] = child(decision.run.name, decision.run.scheduled_time, None)
    for job in jobs:
        copyjobs[job.name] = job
    return replace(
        previous,
        last_schedule_time=parse_time(status["lastScheduleTime"]),
        last_missed_time=parse_time(status["lastMissedTime"]),
        last_successful_time=parse_time(status["lastSuccessfulTime"]),
        next_schedule_time=parse_time(status["nextScheduleTime"]),
        last_trigger=status["lastTrigger"],
        missed_runs=status["missedRuns"],
        copyjobs=tuple(copyjobs.values()),
    )


def test_a_missed_time_is_counted_once() -> None:
    spec = make_spec(startingDeadlineSeconds=600)
    first = state(last_schedule_time=at("02:00"))
    missed = decide(spec, first, now=at("03:11"))
    assert missed.missed_runs == 1
    assert missed.status["lastMissedTime"] == format_time(at("03:00"))
    assert [event.reason for event in missed.events] == ["MissSchedule"]
    second = after(missed, first)
    for minute in ("03:12", "03:40", "03:59"):
        again = decide(spec, second, now=at(minute))
        assert (again.run, again.missed_runs, again.events) == (None, 0, ())
        assert again.status["missedRuns"] == 1
    assert decide(spec, second, now=at("04:00")).run is not None


def test_more_than_100_missed_times_warn_and_the_latest_still_runs() -> None:
    now = at("12:00", day=10)
    last = now - timedelta(hours=150)
    decision = decide(make_spec(concurrencyPolicy="Allow"), state(last_schedule_time=last), now=now)
    assert decision.too_many_missed
    assert decision.run is not None and decision.run.scheduled_time == now
    assert decision.missed_runs == 149
    warning = next(event for event in decision.events if event.reason == "TooManyMissedTimes")
    assert (
        warning.type == "Warning"
        and "150" in warning.message
        and "startingDeadlineSeconds" in warning.message
    )


def test_a_deadline_bounds_the_too_many_rule() -> None:
    now = at("12:00", day=10)
    spec = make_spec(startingDeadlineSeconds=3600)
    decision = decide(spec, state(last_schedule_time=now - timedelta(hours=150)), now=now)
    assert not decision.too_many_missed
    assert decision.run is not None and decision.run.scheduled_time == now
    assert decision.missed_runs == 149  # still counted as missed, but no clock-skew warning


def test_years_of_missed_minutes_are_counted_quickly() -> None:
    now = datetime(2025, 6, 1, 12, 0, 30, tzinfo=UTC)
    last = datetime(2022, 6, 1, 12, 0, tzinfo=UTC)
    started = time.monotonic()
    decision = decide(make_spec("* * * * *"), state(last_schedule_time=last), now=now)
    assert time.monotonic() - started < 2
    assert decision.run is not None and decision.run.scheduled_time == now.replace(second=0)
    minutes = int((now.replace(second=0) - last).total_seconds() // 60)
    assert decision.missed_runs == minutes - 1
    assert decision.too_many_missed


def test_forbid_waits_then_counts_superseded_times_then_runs_late() -> None:
    spec = make_spec(concurrencyPolicy="Forbid")
    start = state(last_schedule_time=at("02:00"), copyjobs=(RUNNING,))
    blocked = decide(spec, start, now=at("03:00"))
    assert (blocked.run, blocked.skipped, blocked.missed_runs) == (None, SkipReason.CONCURRENCY_FORBID, 0)
    assert [event.reason for event in blocked.events] == ["JobAlreadyActive"]
    # 04:00 comes while 02:00's run still runs: 03:00 is now certainly missed, 04:00 waits
    still = decide(spec, after(blocked, start), now=at("04:00"))
    assert (still.run, still.missed_runs) == (None, 1)
    assert still.status["lastMissedTime"] == format_time(at("03:00"))
    assert still.status["lastScheduleTime"] == format_time(at("02:00"))
    # the old run ends at 04:20: 04:00 starts late (no deadline), nothing more is missed
    ended = after(still, after(blocked, start), replace(RUNNING, phase="Succeeded", completed=at("04:20")))
    late = decide(spec, ended, now=at("04:20"))
    assert late.run is not None and late.run.scheduled_time == at("04:00")
    assert (late.missed_runs, late.status["missedRuns"]) == (0, 1)
    assert late.status["lastScheduleTime"] == format_time(at("04:00"))


def test_forbid_with_a_deadline_gives_up_on_a_waiting_time() -> None:
    spec = make_spec(concurrencyPolicy="Forbid", startingDeadlineSeconds=300)
    start = state(last_schedule_time=at("02:00"), copyjobs=(RUNNING,))
    blocked = decide(spec, start, now=at("03:00"))
    ended = after(blocked, start, replace(RUNNING, phase="Succeeded", completed=at("03:10")))
    decision = decide(spec, ended, now=at("03:10"))
    assert (decision.run, decision.skipped, decision.missed_runs) == (None, SkipReason.DEADLINE_EXCEEDED, 1)


def test_suspended_times_are_handled_when_resumed() -> None:
    suspended = make_spec(suspend=True)
    start = state(last_schedule_time=at("02:00"))
    paused = decide(suspended, start, now=at("05:30"))
    assert paused.status["nextScheduleTime"] is None and paused.next_schedule_time is None
    resumed = decide(make_spec(), after(paused, start), now=at("05:31"))
    assert resumed.run is not None and resumed.run.scheduled_time == at("05:00")
    assert resumed.missed_runs == 2  # 03:00 and 04:00
    deadline = decide(make_spec(startingDeadlineSeconds=60), after(paused, start), now=at("05:31"))
    assert (deadline.run, deadline.missed_runs) == (None, 3)


def test_an_existing_copyjob_for_the_time_is_not_created_again() -> None:
    """The CopyJob was created but the status write was lost: advance, do not create."""
    existing = child(cronjob_style_name("hourly", at("03:00")), at("03:00"))
    decision = decide(
        make_spec(), state(last_schedule_time=at("02:00"), copyjobs=(existing,)), now=at("03:01")
    )
    assert decision.run is None and decision.skipped is None
    assert decision.status["lastScheduleTime"] == format_time(at("03:00"))
    assert decision.status["active"] == [existing.name]


# -- manual trigger ----------------------------------------------------------------------


def test_a_manual_trigger_runs_once_and_not_twice() -> None:
    spec = make_spec(trigger="2025-06-01T01:20:00Z")
    start = state(last_schedule_time=at("01:00"))
    first = decide(spec, start, now=at("01:20"))
    assert first.run is not None and first.run.manual
    assert first.run.trigger == "2025-06-01T01:20:00Z"
    assert first.run.scheduled_time == at("01:20")
    assert first.run.name.startswith("hourly-manual-")
    assert first.run.name != cronjob_style_name("hourly", at("01:20"))
    assert first.status["lastTrigger"] == "2025-06-01T01:20:00Z"
    assert first.status["lastScheduleTime"] == format_time(at("01:00"))  # a manual run is not scheduled
    second = decide(spec, after(first, start), now=at("01:21"))
    assert second.run is None
    # the status write was lost: the CopyJob by that name answers the trigger
    lost = replace(after(first, start), last_trigger=None)
    assert decide(spec, lost, now=at("01:22")).run is None
    assert decide(spec, lost, now=at("01:22")).status["lastTrigger"] == "2025-06-01T01:20:00Z"


def test_a_new_trigger_value_runs_again_and_an_old_value_again_too() -> None:
    start = state(last_schedule_time=at("01:00"), generation=2)
    first = decide(make_spec(trigger="a", concurrencyPolicy="Allow"), start, now=at("01:10"))
    second_state = replace(after(first, start), generation=3)
    second = decide(make_spec(trigger="b", concurrencyPolicy="Allow"), second_state, now=at("01:20"))
    third = decide(
        make_spec(trigger="a", concurrencyPolicy="Allow"),
        replace(after(second, second_state), generation=4),
        now=at("01:30"),
    )
    runs = [decision.run for decision in (first, second, third)]
    assert all(run is not None for run in runs)
    assert len({run.name for run in runs if run is not None}) == 3


def test_a_manual_trigger_runs_while_suspended() -> None:
    decision = decide(make_spec(suspend=True, trigger="now"), state(), now=at("05:30"))
    assert decision.run is not None and decision.run.manual
    assert decision.skipped is SkipReason.SUSPENDED


def test_a_manual_trigger_waits_for_forbid_and_replaces_for_replace() -> None:
    start = state(last_schedule_time=at("02:00"), copyjobs=(RUNNING,))
    waiting = decide(make_spec(trigger="t", concurrencyPolicy="Forbid"), start, now=at("02:20"))
    assert (waiting.run, waiting.trigger_deferred, waiting.status["lastTrigger"]) == (None, True, None)
    assert [event.reason for event in waiting.events] == ["TriggerDeferred"]
    ended = after(waiting, start, replace(RUNNING, phase="Succeeded", completed=at("02:30")))
    now_runs = decide(make_spec(trigger="t", concurrencyPolicy="Forbid"), ended, now=at("02:30"))
    assert now_runs.run is not None and now_runs.run.manual
    replacing = decide(make_spec(trigger="t", concurrencyPolicy="Replace"), start, now=at("02:20"))
    assert replacing.run is not None and replacing.delete_active == ("hourly-old",)
    assert replacing.status["active"] == [replacing.run.name]


def test_a_trigger_due_with_a_scheduled_run_is_answered_by_it() -> None:
    decision = decide(make_spec(trigger="t"), state(last_schedule_time=at("02:00")), now=at("03:00"))
    assert decision.run is not None and not decision.run.manual
    assert decision.status["lastTrigger"] == "t"
    assert "TriggerAnswered" in [event.reason for event in decision.events]


# -- history, success, out of sync ------------------------------------------------------


def test_history_limits_prune_the_oldest_finished_runs() -> None:
    hours = ["05:00", "01:00", "04:00", "02:00", "03:00"]  # not in age order on purpose
    succeeded = [
        child(f"ok-{h[:2]}", at(h), "Succeeded", completed=at(h) + timedelta(minutes=5)) for h in hours
    ]
    failed = [
        child("bad-06", at("06:00"), "CompletedWithErrors"),
        child("bad-08", at("08:00"), "Failed"),
        child("bad-07", at("07:00"), "CompletedWithErrors"),
    ]
    running = child("now-09", at("09:00"), "Running")
    jobs = (*succeeded, *failed, running)
    spec = make_spec(successfulJobsHistoryLimit=3, failedJobsHistoryLimit=1, concurrencyPolicy="Allow")
    decision = decide(spec, state(last_schedule_time=at("09:00"), copyjobs=jobs), now=at("09:30"))
    assert decision.delete_finished == ("ok-01", "ok-02", "bad-06", "bad-07")
    assert decision.status["lastSuccessfulTime"] == format_time(at("05:05"))
    assert decision.status["active"] == ["now-09"]
    none_kept = make_spec(successfulJobsHistoryLimit=0, failedJobsHistoryLimit=0)
    everything = decide(none_kept, state(last_schedule_time=at("09:00"), copyjobs=jobs), now=at("09:30"))
    assert set(everything.delete_finished) == {job.name for job in (*succeeded, *failed)}


def test_last_success_survives_pruning() -> None:
    earlier = state(last_schedule_time=at("09:00"), last_successful_time=at("08:05"))
    decision = decide(make_spec(), earlier, now=at("09:30"))
    assert decision.status["lastSuccessfulTime"] == format_time(at("08:05"))


@pytest.mark.parametrize(
    ("last_success", "now", "out_of_sync"),
    [
        (None, at("01:30"), False),  # first due run (01:00) may still be running
        (None, at("02:00"), True),  # two due times since creation and no success
        (at("02:05"), at("03:59"), False),  # one due time (03:00) since the success
        (at("02:05"), at("04:00"), True),  # 03:00 and 04:00
    ],
)
def test_out_of_sync_after_two_due_times_without_success(
    last_success: datetime | None, now: datetime, out_of_sync: bool
) -> None:
    current = state(last_schedule_time=now.replace(minute=0), last_successful_time=last_success)
    assert decide(make_spec(), current, now=now).out_of_sync is out_of_sync
    assert decide(make_spec(suspend=True), current, now=now).out_of_sync is False


def test_a_succeeded_copyjob_brings_the_schedule_back_in_sync() -> None:
    done = child("hourly-x", at("03:00"), "Succeeded", completed=at("03:40"))
    current = state(last_schedule_time=at("03:00"), copyjobs=(done,))
    assert decide(make_spec(), current, now=at("03:50")).out_of_sync is False


# -- time zones, wake-up, missing metadata ------------------------------------------------


def test_berlin_nightly_across_spring_forward_and_fall_back() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    spec = make_spec("30 2 * * *", timeZone="Europe/Berlin")
    spring = state(name="nightly", last_schedule_time=datetime(2025, 3, 29, 2, 30, tzinfo=berlin))
    decision = decide(spec, spring, now=datetime(2025, 3, 30, 3, 0, 30, tzinfo=berlin))
    assert decision.run is not None
    assert decision.run.scheduled_time == datetime(2025, 3, 30, 3, 0, tzinfo=berlin)  # 02:30 does not exist
    fall = state(name="nightly", last_schedule_time=datetime(2025, 10, 25, 2, 30, tzinfo=berlin))
    first = decide(spec, fall, now=datetime(2025, 10, 26, 0, 30, 30, tzinfo=UTC))  # 02:30 CEST
    assert first.run is not None and first.run.scheduled_time == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    assert first.requeue_after == 300.0  # an hour away, capped
    assert first.next_schedule_time == datetime(2025, 10, 26, 1, 30, tzinfo=UTC)  # 02:30 CET
    finished = child(
        first.run.name, first.run.scheduled_time, "Succeeded", completed=first.run.scheduled_time
    )
    second = decide(spec, after(first, fall, finished), now=datetime(2025, 10, 26, 1, 30, 30, tzinfo=UTC))
    assert second.run is not None and second.run.scheduled_time == datetime(2025, 10, 26, 1, 30, tzinfo=UTC)
    assert second.run.name != first.run.name
    assert second.next_schedule_time == datetime(2025, 10, 27, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "cap", "expected"),
    [
        (at("02:59").replace(second=30), 300.0, 30.1),
        (at("02:01"), 300.0, 300.0),
        (at("02:01"), 7200.0, 59 * 60 + 0.1),
    ],
)
def test_next_wake_up_is_the_next_time_capped(now: datetime, cap: float, expected: float) -> None:
    decision = decide(make_spec(), state(last_schedule_time=at("02:00")), now=now, max_wake_seconds=cap)
    assert decision.next_schedule_time == at("03:00")
    assert decision.status["nextScheduleTime"] == format_time(at("03:00"))
    assert decision.requeue_after == pytest.approx(expected)


def test_a_suspended_schedule_wakes_at_the_cap() -> None:
    assert (
        decide(make_spec(suspend=True), state(), now=at("02:01"), max_wake_seconds=120).requeue_after == 120
    )


def test_without_a_creation_time_the_announced_next_time_anchors() -> None:
    """An API server that sets no creationTimestamp: the first decision announces the next time,
    the one after it runs that time."""
    bare = ScheduleState(name="hourly")
    first = decide(make_spec(), bare, now=at("01:10"))
    assert first.run is None and first.status["nextScheduleTime"] == format_time(at("02:00"))
    second = decide(make_spec(), after(first, bare), now=at("02:00"))
    assert second.run is not None and second.run.scheduled_time == at("02:00")


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(make_spec(), state(), now=datetime(2025, 6, 1, 2))


# -- bodies in and out ---------------------------------------------------------------------


def schedule_body(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.SYNCSCHEDULE_KIND,
        "metadata": {
            "name": "hourly",
            "namespace": "data",
            "uid": UID,
            "generation": 4,
            "creationTimestamp": "2025-06-01T00:10:00Z",
        },
        "spec": {"schedule": "0 * * * *", "jobTemplate": TEMPLATE},
        "status": status,
    }


def test_the_copyjob_built_from_the_template() -> None:
    scheduled = at("03:00")
    name = names.scheduled_copyjob_name("hourly", scheduled)
    body = build_copyjob_from_template(schedule_body(), name=name, scheduled_time=scheduled)
    assert (body["apiVersion"], body["kind"]) == ("shareferry.dev/v1alpha1", "CopyJob")
    metadata = body["metadata"]
    assert (metadata["name"], metadata["namespace"]) == (name, "data")
    assert metadata["labels"] == {
        "team": "data",
        names.LABEL_SYNCSCHEDULE: "hourly",
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
    }
    assert metadata["annotations"]["note"] == "from the template"
    assert parse_time(metadata["annotations"][names.ANNOTATION_SCHEDULED_TIME]) == scheduled
    assert names.ANNOTATION_TRIGGER not in metadata["annotations"]
    assert metadata["ownerReferences"] == [
        {
            "apiVersion": "shareferry.dev/v1alpha1",
            "kind": "SyncSchedule",
            "name": "hourly",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert body["spec"] == {**TEMPLATE["spec"], "mode": "sync"}
    # what the next decision reads back from it
    back = ChildCopyJob.from_body(body)
    assert (back.name, back.scheduled, back.owner_uid, back.phase, back.active) == (
        name,
        scheduled,
        UID,
        None,
        True,
    )


def test_a_manual_copyjob_carries_its_trigger() -> None:
    body = build_copyjob_from_template(
        schedule_body(), name="hourly-manual-0123456789", scheduled_time=at("03:07"), trigger="please"
    )
    assert body["metadata"]["annotations"][names.ANNOTATION_TRIGGER] == "please"


def test_the_state_is_read_from_the_bodies() -> None:
    body = schedule_body(
        lastScheduleTime="2025-06-01T02:00:00Z",
        lastMissedTime="2025-06-01T01:00:00Z",
        lastSuccessfulTime="2025-06-01T02:30:00Z",
        nextScheduleTime="2025-06-01T03:00:00Z",
        lastTrigger="x",
        missedRuns=4,
    )
    jobs = [
        {
            "metadata": {
                "name": "hourly-29145720",
                "creationTimestamp": "2025-06-01T02:00:01Z",
                "ownerReferences": [{"kind": "SyncSchedule", "uid": UID, "controller": True}],
            },
            "status": {"phase": "Succeeded", "completionTime": "2025-06-01T02:30:00Z"},
        }
    ]
    current = ScheduleState.from_body(body, jobs)
    assert (current.name, current.uid, current.generation, current.missed_runs) == ("hourly", UID, 4, 4)
    assert current.created == at("00:10")
    assert current.last_schedule_time == at("02:00") and current.last_missed_time == at("01:00")
    assert current.next_schedule_time == at("03:00") and current.last_trigger == "x"
    (job,) = current.copyjobs
    assert (job.created, job.completed, job.succeeded, job.owner_uid) == (
        at("02:00").replace(second=1),
        at("02:30"),
        True,
        UID,
    )
    decision = decide(make_spec(), current, now=at("03:00"))
    assert decision.run is not None and decision.status["missedRuns"] == 4


def test_names_are_cronjob_style_and_always_valid() -> None:
    scheduled = at("03:00")
    assert names.scheduled_copyjob_name("hourly", scheduled) == f"hourly-{int(scheduled.timestamp()) // 60}"
    long_name = "a" * 200 + "." + "b" * 52
    for name in (
        names.scheduled_copyjob_name(long_name, scheduled),
        names.manual_copyjob_name(long_name, "0123456789"),
    ):
        assert len(name) <= 253 and DNS_SUBDOMAIN.match(name)
    assert names.scheduled_copyjob_name(long_name, scheduled) != names.scheduled_copyjob_name(
        long_name[:-1] + "c", scheduled
    )
    assert len(names.label_value(long_name)) <= 63
    decision = decide(make_spec(trigger="t"), state(name=long_name), now=at("00:20"))
    assert decision.run is not None and len(decision.run.name) <= 253
