"""``shareferry jobs list|show|clean``: the job plans kept on this machine, read back and removed.

Every copy and sync is a job whose plan is kept in the job directory (``SHAREFERRY_JOB_DIR``,
default ``~/.shareferry/jobs``). ``list`` shows them newest first, ``show ID`` one of them with its
counters and failed files, ``clean`` removes finished ones. An ID may be shortened to a unique
prefix of at least 8 characters. ``--output-type json`` prints one JSON object per line.
``show`` names the job's log file (:mod:`shareferry.core.joblog`) when there is one; ``clean``
removes each job's log file with its plan.

Exit status: 0 done, 1 no such job (or its plan cannot be read or removed), 2 bad input; errors
are one line on stderr, ``shareferry jobs <subcommand>: <what is wrong>``. Sources, destinations,
file names and errors are printed with their control characters escaped
(:func:`~shareferry.core.printable.printable`); JSON keeps them exact.

More subcommands (``resume``) are added by other modules: :func:`register` returns the ``jobs``
subcommands, and :func:`add_jobs_subcommand` adds a parser to them with this module's conventions.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shareferry.cli.output import json_text, one_line
from shareferry.cli.transfer_flags import CommandParser, number_argument, parse_choice
from shareferry.core.errors import ShareFerryError, UsageError
from shareferry.core.joblog import job_log_path
from shareferry.core.jobowner import INTERRUPTED
from shareferry.core.jobplan import (
    RUNNING,
    FileState,
    JobPlan,
    JobRecord,
    PlannedFile,
    job_dir_from_env,
    list_jobs,
    remove_jobs,
)
from shareferry.core.number_rules import NumberRule
from shareferry.core.printable import printable
from shareferry.core.summary import JobStatus

COMMAND = "jobs"
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_MAX_FAILURES = 50
MAX_FAILURES = NumberRule("--max-failures", 0, 1_000_000_000, whole=True, note="0 lists none")
#: The oldest --older-than: nothing kept here is older, and a date further back cannot be reckoned.
MAX_AGE = timedelta(days=36500)
_AGE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*")
_SHOWN_STATES = (FileState.DONE, FileState.FAILED, FileState.SKIPPED, FileState.PLANNED)
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

DESCRIPTION = """\
List, inspect and remove the jobs kept on this machine. Every copy and sync is a job with an id;
its plan (what it has to do, what it finished) is kept so that a killed job can be resumed.
An ID may be shortened to a unique prefix of at least 8 characters."""

EPILOG = """\
environment:
  SHAREFERRY_JOB_DIR        where job plans are kept (default ~/.shareferry/jobs)
  SHAREFERRY_LOG_LOCATION   where job log files are kept (default SHAREFERRY_JOB_DIR)

exit status: 0 done, 1 no such job (or it cannot be read or removed), 2 bad input

examples:
  shareferry jobs list
  shareferry jobs show 3f2a9c1e --max-failures 10
  shareferry jobs clean --older-than 7d
  shareferry jobs clean --status Completed --status CompletedWithSkipped"""


def register(commands: Any) -> Any:
    """Add ``jobs`` to ``commands`` (the ``shareferry`` subcommands) and return the ``jobs``
    subcommands, so that another module can add its own with :func:`add_jobs_subcommand`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        COMMAND,
        help="list, show and clean up jobs (their plans make resuming possible)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        one_line_errors=True,
    )
    parser.set_defaults(run=lambda args: _no_subcommand(parser))
    subcommands = parser.add_subparsers(dest="jobs_command", metavar="SUBCOMMAND", parser_class=CommandParser)
    _register_list(subcommands)
    _register_show(subcommands)
    _register_clean(subcommands)
    return subcommands


def add_jobs_subcommand(
    subcommands: Any, name: str, *, help: str, description: str, epilog: str | None = None
) -> argparse.ArgumentParser:
    """A new ``shareferry jobs <name>`` parser in ``subcommands`` (what :func:`register`
    returned): one-line usage errors, exit status 2. The caller adds its arguments and
    ``set_defaults(run=...)``, a function of the parsed arguments returning the exit status."""
    parser: argparse.ArgumentParser = subcommands.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        one_line_errors=True,
    )
    return parser


def _no_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _add_output_type(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output-type",
        default="text",
        metavar="TYPE",
        help="text (default) or json: one JSON object per line",
    )


# ---- list ------------------------------------------------------------------------------------


def _register_list(subcommands: Any) -> None:
    parser = add_jobs_subcommand(
        subcommands,
        "list",
        help="the jobs kept on this machine, newest first",
        description="List the jobs kept on this machine, newest first: id, command, status, runs, "
        "files done of those planned, when it was created, source and destination.",
    )
    _add_output_type(parser)
    parser.set_defaults(run=_guarded("list", run_list))


def run_list(args: argparse.Namespace) -> int:
    json_output = _json_output(args)
    directory = job_dir_from_env()
    jobs = [(record, _counts(directory, record.job_id)) for record in list_jobs(directory)]
    if json_output:
        for record, counts in jobs:
            _print_json(job_json(record, counts))
        return 0
    if not jobs:
        _print(f"No jobs in {directory}.")
        return 0
    header = ("ID", "COMMAND", "STATUS", "RUNS", "DONE/TOTAL", "CREATED", "SOURCE -> DESTINATION")
    rows = [
        (
            record.job_id,
            record.command,
            record.status,
            str(record.runs),
            "?" if counts is None else f"{counts[FileState.DONE]}/{sum(counts.values())}",
            _time_text(record.created),
            f"{printable(record.source)} -> {printable(record.destination)}",
        )
        for record, counts in jobs
    ]
    _print(_table([header, *rows]))
    return 0


# ---- show ------------------------------------------------------------------------------------


def _register_show(subcommands: Any) -> None:
    parser = add_jobs_subcommand(
        subcommands,
        "show",
        help="one job: its last run, its files by state and its failed files",
        description="Show one job: what it copies, the status and counters of its last run, its "
        "files by state (planned, done, failed, skipped), the files that failed, with why, and its log file.",
    )
    parser.add_argument(
        "job_id", metavar="ID", help="the job's id, or a unique prefix of 8 characters or more"
    )
    parser.add_argument(
        "--max-failures",
        type=number_argument(MAX_FAILURES),
        default=DEFAULT_MAX_FAILURES,
        metavar="N",
        help=f"list at most N failed files (default {DEFAULT_MAX_FAILURES}; 0 lists none)",
    )
    _add_output_type(parser)
    parser.set_defaults(run=_guarded("show", run_show))


def run_show(args: argparse.Namespace) -> int:
    json_output = _json_output(args)
    MAX_FAILURES.check(args.max_failures)
    with JobPlan.open(job_dir_from_env(), args.job_id) as plan:
        record = plan.record
        counts = plan.counts()
        deletions = plan.count_delete_candidates()
        failed = (
            list(plan.files(state=FileState.FAILED, limit=args.max_failures)) if args.max_failures else []
        )
    log = _log_file(record.job_id)
    if json_output:
        document = job_json(record, counts)
        document["log_file"] = None if log is None else str(log)
        document["deletions_pending"] = {"files": deletions[0], "directories": deletions[1]}
        document["failed_files"] = [_failed_json(file) for file in failed]
        _print_json(document)
        return 0
    _print("\n".join(_show_lines(record, counts=counts, deletions=deletions, failed=failed, log=log)))
    return 0


def _show_lines(
    record: JobRecord,
    *,
    counts: Mapping[FileState, int],
    deletions: tuple[int, int],
    failed: list[PlannedFile],
    log: Path | None = None,
) -> list[str]:
    fields = [
        ("Command", record.command),
        ("Status", record.status),
        ("Runs", str(record.runs)),
        ("Created", _time_text(record.created)),
        ("Updated", _time_text(record.updated)),
        ("Source", printable(record.source)),
        ("Destination", printable(record.destination)),
    ]
    if record.from_to:
        fields.append(("From-to", printable(record.from_to)))
    if record.options:
        fields.append(("Options", printable(_compact(record.options))))
    if record.error:
        fields.append(("Error", printable(one_line(record.error))))
    if log is not None:
        fields.append(("Log file", printable(str(log))))
    width = max(len(name) for name, _ in fields) + 2
    lines = [f"Job {record.job_id}", *(f"{name + ':':<{width}}{value}" for name, value in fields), ""]
    by_state = ", ".join(f"{counts[state]} {state.value}" for state in _SHOWN_STATES)
    lines.append(f"Files: {sum(counts.values())} in the plan: {by_state} (not finished)")
    if any(deletions):
        lines.append(f"Deletions pending: {deletions[0]} files, {deletions[1]} directories")
    if record.summary:
        lines += ["", "Last run:"]
        lines += [f"  {printable(key)}: {printable(_scalar(value))}" for key, value in record.summary.items()]
    if failed:
        total = counts[FileState.FAILED]
        lines += ["", f"Failed files ({len(failed)} of {total}):" if len(failed) < total else "Failed files:"]
        lines += [
            f"  {printable(file.destination)}: {printable(one_line(file.error or 'failed'))}"
            for file in failed
        ]
    return lines


# ---- clean -----------------------------------------------------------------------------------


def _register_clean(subcommands: Any) -> None:
    parser = add_jobs_subcommand(
        subcommands,
        "clean",
        help="remove finished jobs (all of them, or those selected)",
        description="Remove jobs, their plans and their log files. With no selector, every finished job (any "
        "status but Running) is removed; selectors narrow that down and must all hold. A running "
        "job is removed only when named by its id.",
    )
    parser.add_argument(
        "job_ids",
        nargs="*",
        metavar="ID",
        help="remove these jobs (ids, or unique prefixes of 8+ characters)",
    )
    parser.add_argument(
        "--older-than",
        metavar="AGE",
        help="only jobs last updated longer ago than AGE: a number and a unit, s m h d w (30m, 12h, 7d), "
        "at most 36500d",
    )
    parser.add_argument(
        "--status",
        action="append",
        default=[],
        metavar="STATUS",
        help="only jobs whose last run ended so: Completed, CompletedWithErrors, CompletedWithSkipped, "
        "Failed, Cancelled, Interrupted (its process died mid-run) (repeatable, or comma-separated)",
    )
    _add_output_type(parser)
    parser.set_defaults(run=_guarded("clean", run_clean))


def run_clean(args: argparse.Namespace) -> int:
    json_output = _json_output(args)
    older_than = None if args.older_than is None else parse_age(args.older_than)
    directory = job_dir_from_env()
    records = {record.job_id: record for record in list_jobs(directory)}
    statuses = _statuses(args.status, known=(record.status for record in records.values()))
    if any(status == RUNNING for status in statuses) and not args.job_ids:
        raise UsageError("a running job is removed only when named: give its id (jobs list shows it)")
    removed = remove_jobs(directory, job_ids=args.job_ids, older_than=older_than, statuses=statuses)
    for job_id in removed:  # each job's log goes with its plan
        job_log_path(job_id).unlink(missing_ok=True)
    if json_output:
        _print_json({"removed": removed})
        return 0
    for job_id in removed:
        record = records.get(job_id)
        details = (
            f" ({record.status}, {printable(record.source)} -> {printable(record.destination)})"
            if record
            else ""
        )
        _print(f"Removed job {job_id}{details}")
    _print(
        f"Removed {len(removed)} job{'' if len(removed) == 1 else 's'}." if removed else "No jobs to remove."
    )
    return 0


def parse_age(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d``, ``2w``, ``90s`` (decimals allowed) as a duration, at most
    :data:`MAX_AGE`."""
    match = _AGE.fullmatch(text)
    refusal = UsageError(
        "--older-than must be a number and a unit (s, m, h, d or w) from 0s to "
        f"{MAX_AGE.days}d, such as 7d or 12h, not {text!r}"
    )
    if match is None:
        raise refusal
    amount = float(match.group(1))
    unit = _AGE_UNITS[match.group(2).lower()]
    if amount > MAX_AGE / timedelta(**{unit: 1}):
        raise refusal
    return timedelta(**{unit: amount})


def _statuses(values: Iterable[str], *, known: Iterable[str]) -> list[str]:
    """The ``--status`` values, spelled as the statuses are; a :class:`UsageError` for others."""
    wanted = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if not wanted:
        return []
    choices = list(dict.fromkeys([*(status.value for status in JobStatus), RUNNING, INTERRUPTED, *known]))
    return [parse_choice(status, choices, "--status") for status in wanted]


# ---- shared ----------------------------------------------------------------------------------


def _guarded(name: str, run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``run`` with the core's errors turned into one line on stderr and an exit status."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except UsageError as exc:
            return _fail(name, str(exc), status=EXIT_USAGE)
        except ShareFerryError as exc:
            return _fail(name, str(exc), status=EXIT_FAILED)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            return _fail(name, f"{where}{exc.strerror or exc}", status=EXIT_FAILED)

    return guarded


def _fail(name: str, message: str, *, status: int) -> int:
    sys.stderr.write(printable(f"shareferry {COMMAND} {name}: {one_line(message)}") + "\n")
    sys.stderr.flush()
    return status


def _json_output(args: argparse.Namespace) -> bool:
    return parse_choice(args.output_type, ["text", "json"], "--output-type") == "json"


def _log_file(job_id: str) -> Path | None:
    """The job's log file, when it has one."""
    path = job_log_path(job_id)
    return path if path.is_file() else None


def _counts(directory: Path, job_id: str) -> dict[FileState, int] | None:
    """How many files the job has in each state; None when its plan went away or is unreadable."""
    try:
        with JobPlan.open(directory, job_id) as plan:
            return plan.counts()
    except (ShareFerryError, OSError):
        return None


def job_json(record: JobRecord, counts: Mapping[FileState, int] | None) -> dict[str, Any]:
    """One job as ``--output-type json`` prints it."""
    files = (
        None if counts is None else {"total": sum(counts.values())} | {s.value: n for s, n in counts.items()}
    )
    return {
        "job_id": record.job_id,
        "command": record.command,
        "status": record.status,
        "runs": record.runs,
        "created": _iso(record.created),
        "updated": _iso(record.updated),
        "source": record.source,
        "destination": record.destination,
        "from_to": record.from_to,
        "files": files,
        "options": record.options,
        "summary": record.summary,
        "error": record.error,
    }


def _failed_json(file: PlannedFile) -> dict[str, Any]:
    return {"destination": file.destination, "source": file.source, "size": file.size, "error": file.error}


def _time_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else _compact(value)


def _table(rows: list[tuple[str, ...]]) -> str:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    )


def _print(text: str) -> None:
    """Lines of text whose names were escaped as they were put in (escaped again here, line by
    line, in case one was not: escaping twice changes nothing)."""
    sys.stdout.write("\n".join(printable(line) for line in text.split("\n")) + "\n")


def _print_json(document: Mapping[str, Any]) -> None:
    sys.stdout.write(json_text(document, separators=None) + "\n")
