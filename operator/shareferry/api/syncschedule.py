"""The SyncSchedule spec model: parse a spec (CRD defaults applied) and evaluate its cron schedule.

Schedules are the cron dialect a Kubernetes CronJob accepts: five fields (minute, hour,
day-of-month, month, day-of-week; numbers, ``*``, ranges, lists, steps, ``?`` in the day fields,
JAN-DEC and SUN-SAT names) or one of ``@yearly @annually @monthly @weekly @daily @midnight
@hourly``, read in ``spec.timeZone`` (an IANA name, default UTC). Evaluation uses croniter.

croniter accepts more than a CronJob; these are refused with reason ``InvalidSchedule`` because
they would change what a schedule means or make it non-portable:

* a sixth (seconds) or seventh (year) field: runs are scheduled to the minute;
* ``H`` / ``R`` (hashed and random values: a random minute is not a schedule you can read);
* ``L``, ``W`` and ``#`` (last day, nearest weekday, nth weekday);
* ``TZ=`` / ``CRON_TZ=`` prefixes (use ``spec.timeZone``), ``@every <duration>``, ``@reboot``;
* a schedule that never fires (``0 0 30 2 *``).

Two small liberties are kept: ``7`` for Sunday and wrap-around ranges (``FRI-MON``).

Day-of-month and day-of-week combine as in a CronJob (and Vixie cron): when both are restricted
a day matching either fires, except that a field starting with ``*`` (``*/2``) makes it "both".

Daylight saving time (croniter's behaviour, pinned by the tests): on a spring-forward day a
wall-clock time that does not exist (02:30 in Europe/Berlin on the last Sunday of March) fires
at the first minute after the gap (03:00 CEST) -- a Kubernetes CronJob skips that day's run; on
a fall-back day a wall-clock time that happens twice (02:30 on the last Sunday of October) fires
twice, an hour apart, as a Kubernetes CronJob does. Schedules in UTC have no such days.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter  # type: ignore[import-untyped]

from shareferry.api import fields
from shareferry.api.copyjob import CopyJobSpec, parse_copyjob
from shareferry.api.errors import SpecError

INVALID_SCHEDULE = "InvalidSchedule"
DEFAULT_TIME_ZONE = "UTC"
DEFAULT_SUCCESSFUL_HISTORY = 3
DEFAULT_FAILED_HISTORY = 1
TRIGGER_MAX_LENGTH = 63

_SEARCH_YEARS = 10
"""A schedule with no fire time within this many years is refused (robfig/cron gives up at 5)."""

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_DAYS = "sun|mon|tue|wed|thu|fri|sat"


def _item_pattern(names: str | None, *, question: bool) -> re.Pattern[str]:
    value = rf"(?:[0-9]+|{names})" if names else "[0-9]+"
    start = rf"(?:\*|{value})"
    alone = r"|\?" if question else ""
    return re.compile(rf"^(?:{start}(?:-{value})?(?:/[0-9]+)?{alone})$", re.IGNORECASE)


_ITEMS = (
    _item_pattern(None, question=False),
    _item_pattern(None, question=False),
    _item_pattern(None, question=True),
    _item_pattern(_MONTHS, question=False),
    _item_pattern(_DAYS, question=True),
)

_TOP_KEYS = (
    "schedule",
    "timeZone",
    "suspend",
    "concurrencyPolicy",
    "startingDeadlineSeconds",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
    "trigger",
    "jobTemplate",
)


class ConcurrencyPolicy(StrEnum):
    """What a due run does while an earlier run of the same schedule is still active."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


def _invalid(message: str) -> SpecError:
    return SpecError(INVALID_SCHEDULE, message)


def _zone(name: str) -> ZoneInfo:
    hint = "use an IANA time zone name such as UTC or Europe/Berlin"
    if name.lower() in {"local", "localtime"}:
        raise _invalid(f'spec.timeZone "{name}" is not allowed: {hint}, not the machine\'s local zone')
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _invalid(f'spec.timeZone "{name}" is not a known time zone: {hint}') from None


def _five_fields(expression: str) -> str:
    """The schedule as five cron fields, or a SpecError saying what is not supported."""
    text = expression.strip()
    where = f'spec.schedule "{expression}"'
    upper = text.upper()
    if upper.startswith(("TZ=", "CRON_TZ=")):
        raise _invalid(f"{where}: a time zone in the schedule is not supported; put it in spec.timeZone")
    if text.startswith("@"):
        alias = text.split()[0].lower()
        if alias in _ALIASES and len(text.split()) == 1:
            return _ALIASES[alias]
        if alias == "@every":
            raise _invalid(f"{where}: @every intervals are not supported; write the times as 5 cron fields")
        raise _invalid(f"{where}: unknown macro; use one of {', '.join(sorted(_ALIASES))} or 5 cron fields")
    parts = re.findall(r"[^ \t]+", text)
    if any(not part.isascii() or not part.isprintable() for part in parts):
        raise _invalid(f"{where}: separate the fields with spaces (found another character)")
    if len(parts) in (6, 7):
        raise _invalid(
            f"{where} has {len(parts)} fields: seconds and year fields are not supported; "
            "use 5 fields (minute hour day-of-month month day-of-week)"
        )
    if len(parts) != 5:
        raise _invalid(
            f"{where} has {len(parts)} field(s); a cron schedule has 5 "
            "(minute hour day-of-month month day-of-week)"
        )
    for index, part in enumerate(parts):
        for item in part.split(","):
            if not _ITEMS[index].match(item):
                raise _invalid(
                    f'{where}: "{item}" is not supported in the {_FIELD_NAMES[index]} field '
                    "(use numbers, *, ranges a-b, lists a,b, steps /n"
                    + (", month names" if index == 3 else ", day names" if index == 4 else "")
                    + "; L, W, #, H and R are not supported)"
                )
    return " ".join(parts)


@dataclass(frozen=True)
class CronSchedule:
    """A validated five-field cron expression read in an IANA time zone. Every method takes and
    returns timezone-aware datetimes; results are in UTC."""

    expression: str
    """As written in the spec."""
    time_zone: str
    cron_fields: str = field(repr=False)
    """The five fields croniter evaluates (macros expanded)."""
    zone: ZoneInfo = field(repr=False, compare=False)

    @classmethod
    def parse(cls, expression: str, time_zone: str = DEFAULT_TIME_ZONE) -> CronSchedule:
        """Validate; a :class:`SpecError` with reason ``InvalidSchedule`` says what is wrong."""
        zone = _zone(time_zone)
        five = _five_fields(expression)
        try:
            croniter(five, datetime(2000, 1, 1, tzinfo=zone), implement_cron_bug=True)
        except CroniterError as error:
            raise _invalid(f'spec.schedule "{expression}" is not a valid cron schedule: {error}') from None
        schedule = cls(expression=expression, time_zone=time_zone, cron_fields=five, zone=zone)
        if schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC)) is None:
            raise _invalid(
                f'spec.schedule "{expression}" never fires (no matching date in {_SEARCH_YEARS} years)'
            )
        return schedule

    def _iter(self, start: datetime) -> croniter:
        return croniter(
            self.cron_fields,
            _aware(start).astimezone(self.zone),
            implement_cron_bug=True,
            max_years_between_matches=_SEARCH_YEARS,
        )

    def next_after(self, instant: datetime) -> datetime | None:
        """The first fire time strictly after ``instant`` (None: none within the search window)."""
        try:
            found: datetime = self._iter(instant).get_next(datetime)
        except CroniterBadDateError:
            return None
        return found.astimezone(UTC)

    def latest_before(self, instant: datetime) -> datetime | None:
        """The last fire time strictly before ``instant``."""
        try:
            found: datetime = self._iter(instant).get_prev(datetime)
        except CroniterBadDateError:
            return None
        return found.astimezone(UTC)

    def latest_at_or_before(self, instant: datetime) -> datetime | None:
        """The last fire time at or before ``instant``."""
        return self.latest_before(_aware(instant) + timedelta(microseconds=1))

    def times(self, *, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """Fire times in ``(after, until]``, oldest first, at most ``limit`` of them."""
        found: list[datetime] = []
        until = _aware(until)
        if limit <= 0 or _aware(after) >= until:
            return found
        iterator = self._iter(after)
        while len(found) < limit:
            try:
                candidate: datetime = iterator.get_next(datetime)
            except CroniterBadDateError:
                break
            if candidate > until:
                break
            found.append(candidate.astimezone(UTC))
        return found


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return instant


@dataclass(frozen=True)
class SyncScheduleSpec:
    """A SyncSchedule's spec with the CRD's defaults applied."""

    cron: CronSchedule
    template: CopyJobSpec
    """``jobTemplate.spec`` parsed as a CopyJob spec (mode sync), so a bad template is refused
    when the schedule is applied, not at its first run."""
    suspend: bool = False
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.FORBID
    starting_deadline_seconds: int | None = None
    successful_jobs_history_limit: int = DEFAULT_SUCCESSFUL_HISTORY
    failed_jobs_history_limit: int = DEFAULT_FAILED_HISTORY
    trigger: str | None = None
    """None when absent or empty."""
    template_labels: dict[str, str] = field(default_factory=dict)
    template_annotations: dict[str, str] = field(default_factory=dict)
    template_spec: dict[str, Any] = field(default_factory=dict)
    """``jobTemplate.spec`` as plain data, ``mode`` set to ``sync``."""

    @property
    def schedule(self) -> str:
        return self.cron.expression

    @property
    def time_zone(self) -> str:
        return self.cron.time_zone


def parse_syncschedule(spec: Mapping[str, Any]) -> SyncScheduleSpec:
    """Validate a SyncSchedule ``spec`` and apply the CRD's defaults.

    Raises :class:`SpecError`: reason ``InvalidSchedule`` for the cron expression or time zone,
    ``InvalidSpec`` / ``InvalidOptions`` for anything else (wrong types, bounds, unknown fields, a
    template mode other than sync, a template the CopyJob parser refuses)."""
    if not isinstance(spec, Mapping):
        raise fields.wrong_type("spec", spec, "an object")
    fields.reject_unknown(spec, _TOP_KEYS, "spec")
    expression = fields.required_string(spec, "schedule", "spec")
    time_zone = fields.string(spec, "timeZone", "spec")
    cron = CronSchedule.parse(expression, DEFAULT_TIME_ZONE if time_zone is None else time_zone)
    policy = fields.choice(spec, "concurrencyPolicy", "spec", [p.value for p in ConcurrencyPolicy])
    successful = fields.integer(spec, "successfulJobsHistoryLimit", "spec", minimum=0)
    failed = fields.integer(spec, "failedJobsHistoryLimit", "spec", minimum=0)
    trigger = fields.string(spec, "trigger", "spec")
    if trigger is not None and len(trigger) > TRIGGER_MAX_LENGTH:
        raise SpecError(fields.INVALID_SPEC, f"spec.trigger is longer than {TRIGGER_MAX_LENGTH} characters")
    labels, annotations, template_spec, template = _job_template(spec)
    return SyncScheduleSpec(
        cron=cron,
        template=template,
        suspend=bool(fields.boolean(spec, "suspend", "spec")),
        concurrency_policy=ConcurrencyPolicy(policy or ConcurrencyPolicy.FORBID),
        starting_deadline_seconds=fields.integer(spec, "startingDeadlineSeconds", "spec", minimum=1),
        successful_jobs_history_limit=DEFAULT_SUCCESSFUL_HISTORY if successful is None else successful,
        failed_jobs_history_limit=DEFAULT_FAILED_HISTORY if failed is None else failed,
        trigger=trigger or None,
        template_labels=labels,
        template_annotations=annotations,
        template_spec=template_spec,
    )


def _job_template(
    spec: Mapping[str, Any],
) -> tuple[dict[str, str], dict[str, str], dict[str, Any], CopyJobSpec]:
    """The template's labels, annotations, spec (plain data, mode sync) and parsed CopyJob spec."""
    path = "spec.jobTemplate"
    template = fields.mapping(spec, "jobTemplate", "spec")
    if template is None:
        raise SpecError(fields.INVALID_SPEC, f"{path}: Required value")
    fields.reject_unknown(template, ("metadata", "spec"), path)
    metadata = fields.mapping(template, "metadata", path) or {}
    fields.reject_unknown(metadata, ("labels", "annotations"), f"{path}.metadata")
    labels = fields.string_map(metadata, "labels", f"{path}.metadata")
    annotations = fields.string_map(metadata, "annotations", f"{path}.metadata")
    job_spec = fields.mapping(template, "spec", path)
    if job_spec is None:
        raise SpecError(fields.INVALID_SPEC, f"{path}.spec: Required value")
    fields.choice(job_spec, "mode", f"{path}.spec", ["sync"])
    plain: dict[str, Any] = fields.plain(job_spec)
    plain["mode"] = "sync"
    return labels, annotations, plain, parse_copyjob(plain, path=f"{path}.spec")
