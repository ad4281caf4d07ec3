"""SyncSchedule specs: the example parses with the CRD's defaults; bad cron and zones are refused
with reason InvalidSchedule and a message naming the problem; cron meaning and DST behaviour."""

from __future__ import annotations

import calendar
import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from shareferry.api.errors import SpecError
from shareferry.api.syncschedule import ConcurrencyPolicy, CronSchedule, parse_syncschedule

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TEMPLATE = {"spec": {"source": {"fileShare": {"name": "a"}}, "destination": {"fileShare": {"name": "b"}}}}
BERLIN = ZoneInfo("Europe/Berlin")


def spec_with(**fields: Any) -> dict[str, Any]:
    return {"schedule": "0 * * * *", "jobTemplate": TEMPLATE, **fields}


def test_the_nightly_example_parses_as_written() -> None:
    manifest = yaml.safe_load((EXAMPLES / "syncschedule-nightly.yaml").read_text())
    written = manifest["spec"]
    parsed = parse_syncschedule(written)
    assert parsed.schedule == written["schedule"]
    assert parsed.time_zone == written["timeZone"]
    assert parsed.concurrency_policy == ConcurrencyPolicy(written["concurrencyPolicy"])
    assert parsed.starting_deadline_seconds == written["startingDeadlineSeconds"]
    assert parsed.successful_jobs_history_limit == written["successfulJobsHistoryLimit"]
    assert parsed.failed_jobs_history_limit == written["failedJobsHistoryLimit"]
    assert parsed.suspend is False
    assert parsed.trigger is None
    template = written["jobTemplate"]["spec"]
    assert parsed.template_spec == {**template, "mode": "sync"}
    assert parsed.template.mode == "sync"
    assert parsed.template.fileshare_names == [template["source"]["fileShare"]["name"]]
    assert parsed.template.secret_names == [template["destination"]["credentials"]["secretName"]]
    # 02:30 Berlin time is 00:30 UTC in summer
    after = datetime(2025, 6, 1, 12, tzinfo=UTC)
    assert parsed.cron.next_after(after) == datetime(2025, 6, 2, 0, 30, tzinfo=UTC)


def test_the_crd_defaults_are_applied() -> None:
    parsed = parse_syncschedule(spec_with(trigger=""))
    assert parsed.time_zone == "UTC"
    assert parsed.suspend is False
    assert parsed.concurrency_policy is ConcurrencyPolicy.FORBID
    assert parsed.starting_deadline_seconds is None
    assert (parsed.successful_jobs_history_limit, parsed.failed_jobs_history_limit) == (3, 1)
    assert parsed.trigger is None
    assert parsed.template_spec["mode"] == "sync"
    assert parsed.template_labels == {} and parsed.template_annotations == {}


def test_template_metadata_is_kept() -> None:
    template = {"metadata": {"labels": {"team": "data"}, "annotations": {"note": "nightly"}}, **TEMPLATE}
    parsed = parse_syncschedule(spec_with(jobTemplate=template))
    assert parsed.template_labels == {"team": "data"}
    assert parsed.template_annotations == {"note": "nightly"}


@pytest.mark.parametrize(
    ("macro", "fields"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_macros_fire_like_their_five_fields(macro: str, fields: str) -> None:
    start = datetime(2025, 2, 27, 13, 17, tzinfo=UTC)
    until = start + timedelta(days=800)
    limit = 50
    assert CronSchedule.parse(macro).times(after=start, until=until, limit=limit) == CronSchedule.parse(
        fields
    ).times(after=start, until=until, limit=limit)


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("0 0 * *", "has 4 field"),
        ("*/15 * * * * *", "seconds"),
        ("0 0 1 1 * 2030", "seconds and year"),
        ("H * * * *", "H and R"),
        ("R 0 * * *", "not supported in the minute field"),
        ("0 0 L * *", "day-of-month"),
        ("0 0 15W * *", "day-of-month"),
        ("0 0 * * 1#2", "day-of-week"),
        ("0 0 * * foo", "day-of-week"),
        ("CRON_TZ=Europe/Berlin 0 * * * *", "spec.timeZone"),
        ("TZ=UTC 0 * * * *", "spec.timeZone"),
        ("@every 1h", "@every"),
        ("@reboot", "unknown macro"),
        ("60 * * * *", "not a valid cron schedule"),
        ("0 0 30 2 *", "never fires"),
        ("*/0 * * * *", "not a valid cron schedule"),
    ],
)
def test_an_invalid_schedule_is_refused_with_a_reason(schedule: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_syncschedule(spec_with(schedule=schedule))
    assert caught.value.reason == "InvalidSchedule"
    assert f'"{schedule}"' in caught.value.message
    assert words in caught.value.message


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Local", "localtime", "../etc/passwd", "", "Europe/"])
def test_an_unknown_time_zone_is_refused(zone: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_syncschedule(spec_with(timeZone=zone))
    assert caught.value.reason == "InvalidSchedule"
    assert "spec.timeZone" in caught.value.message
    assert "IANA" in caught.value.message


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy"),
        ({"startingDeadlineSeconds": 0}, "spec.startingDeadlineSeconds"),
        ({"successfulJobsHistoryLimit": -1}, "spec.successfulJobsHistoryLimit"),
        ({"suspend": "yes"}, "spec.suspend"),
        ({"trigger": "x" * 64}, "spec.trigger"),
        ({"schedules": "0 * * * *"}, "spec.schedules"),
        ({"jobTemplate": {"spec": {**TEMPLATE["spec"], "mode": "copy"}}}, "spec.jobTemplate.spec.mode"),
        (
            {"jobTemplate": {"spec": {"source": {"fileShare": {"name": "a"}}}}},
            "spec.jobTemplate.spec.destination",
        ),
        ({"jobTemplate": {}}, "spec.jobTemplate.spec"),
    ],
)
def test_other_invalid_fields_are_refused_naming_the_field(fields: dict[str, Any], where: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_syncschedule(spec_with(**fields))
    assert caught.value.reason == "InvalidSpec"
    assert where in caught.value.message


@pytest.mark.parametrize(
    ("template_fields", "reason", "where"),
    [
        ({"parallelism": 0}, "InvalidSpec", "spec.jobTemplate.spec.parallelism"),
        (
            {"options": {"includeRegex": ["("]}},
            "InvalidOptions",
            "spec.jobTemplate.spec.options.includeRegex",
        ),
        (
            {"source": {"fileShare": {"name": "a"}, "pvc": {"claimName": "c"}}},
            "InvalidSpec",
            "spec.jobTemplate.spec.source",
        ),
    ],
)
def test_the_template_is_checked_as_a_copyjob_spec(
    template_fields: dict[str, Any], reason: str, where: str
) -> None:
    """A bad template is refused when the schedule is applied, not at its first run."""
    template = {"spec": {**TEMPLATE["spec"], **template_fields}}
    with pytest.raises(SpecError) as caught:
        parse_syncschedule(spec_with(jobTemplate=template))
    assert caught.value.reason == reason
    assert caught.value.message.startswith(where)


def test_a_missing_schedule_is_refused() -> None:
    with pytest.raises(SpecError, match=r"spec\.schedule: Required value"):
        parse_syncschedule({"jobTemplate": TEMPLATE})


def _days(schedule: str, year: int, month: int) -> set[int]:
    start = datetime(year, month, 1, tzinfo=UTC) - timedelta(seconds=1)
    end = datetime(year, month, calendar.monthrange(year, month)[1], 23, 59, tzinfo=UTC)
    return {t.day for t in CronSchedule.parse(schedule).times(after=start, until=end, limit=100)}


def test_day_of_month_and_day_of_week_combine_as_in_a_cronjob() -> None:
    mondays = {d for d in range(1, 32) if date(2025, 1, 1).replace(day=d).weekday() == 0}
    assert _days("0 0 1 * 1", 2025, 1) == {1} | mondays  # both restricted: either
    odd_days = set(range(1, 32, 2))
    assert _days("0 0 */2 * 1", 2025, 1) == odd_days & mondays  # a "*..." field: both
    assert _days("0 0 ? * MON", 2025, 1) == mondays
    sundays = {d for d in range(1, 32) if date(2025, 1, d).weekday() == 6}
    assert _days("0 0 * * 7", 2025, 1) == sundays == _days("0 0 * JAN SUN", 2025, 1)


def test_berlin_spring_forward_runs_once_after_the_gap() -> None:
    """02:30 does not exist on 30 March 2025 in Berlin: the run happens at 03:00 CEST."""
    cron = CronSchedule.parse("30 2 * * *", "Europe/Berlin")
    runs = cron.times(
        after=datetime(2025, 3, 28, 12, tzinfo=BERLIN),
        until=datetime(2025, 4, 1, 12, tzinfo=BERLIN),
        limit=10,
    )
    local = [t.astimezone(BERLIN) for t in runs]
    assert [(t.day, t.hour, t.minute) for t in local] == [(29, 2, 30), (30, 3, 0), (31, 2, 30), (1, 2, 30)]
    assert local[1].utcoffset() == timedelta(hours=2)
    assert all(t.tzinfo is UTC for t in runs)


def test_berlin_fall_back_runs_at_both_0230s() -> None:
    """02:30 happens twice on 26 October 2025 in Berlin (CEST, then CET): two runs, an hour apart."""
    cron = CronSchedule.parse("30 2 * * *", "Europe/Berlin")
    runs = cron.times(
        after=datetime(2025, 10, 25, 12, tzinfo=BERLIN),
        until=datetime(2025, 10, 27, 12, tzinfo=BERLIN),
        limit=10,
    )
    assert [t.astimezone(BERLIN).strftime("%d %H:%M %Z") for t in runs] == [
        "26 02:30 CEST",
        "26 02:30 CET",
        "27 02:30 CET",
    ]
    assert runs[1] - runs[0] == timedelta(hours=1)
    # asking from inside the repeated hour gives the same answers
    assert cron.next_after(runs[0]) == runs[1]
    assert cron.latest_before(runs[1]) == runs[0]
    assert cron.latest_at_or_before(runs[1]) == runs[1]


def test_hourly_across_dst_in_berlin_keeps_real_hours() -> None:
    cron = CronSchedule.parse("0 * * * *", "Europe/Berlin")
    spring = cron.times(
        after=datetime(2025, 3, 29, 23, tzinfo=UTC), until=datetime(2025, 3, 30, 3, tzinfo=UTC), limit=10
    )
    fall = cron.times(
        after=datetime(2025, 10, 25, 22, tzinfo=UTC), until=datetime(2025, 10, 26, 3, tzinfo=UTC), limit=10
    )
    for runs in (spring, fall):
        assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(runs))
    assert len(spring) == 4 and len(fall) == 5
