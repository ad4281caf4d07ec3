"""Running one job from the command line: output, report file, progress ticks, exit status.

``copy``, ``sync`` and ``jobs resume`` differ only in how they build their request and which
core entry point they call; everything around it is here. Exit status: 0 when nothing failed
(skips are fine), 1 when a file failed or the job could not run, 2 for bad input, 130 when
interrupted. A bad input is one line on stderr, ``shareferry <command>: <what is wrong>``;
nothing printed ever holds a SAS signature or an account key.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import sys
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from shareferry.cli.output import JobOutput, JsonOutput, ReportWriter, TextOutput
from shareferry.cli.transfer_flags import add_transfer_flags, parse_choice
from shareferry.core.accounting import Subscriber
from shareferry.core.errors import ShareFerryError, UsageError
from shareferry.core.joblog import LEVEL_NAMES, JobLogSettings, LogLevel, job_log_path, parse_log_level
from shareferry.core.printable import printable
from shareferry.core.redact import REDACTED, redact

if TYPE_CHECKING:  # the job machinery (and the Azure SDKs) load only when a job runs
    from shareferry.core.jobs import JobSummary

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

R = TypeVar("R")

#: Starts the job: (request, output, subscribers, environ, job id) -> summary.
Start = Callable[[R, JobOutput, list[Subscriber], Mapping[str, str], str], Awaitable["JobSummary"]]


def add_transfer_command(
    commands: Any,
    name: str,
    *,
    verb: str,
    help: str,
    description: str,
    epilog: str,
    aliases: Sequence[str] = (),
) -> argparse.ArgumentParser:
    """A ``copy``-like subcommand: SOURCE, DESTINATION, AzCopy's transfer flags (``--flag=true``
    form included) and the output flags; one-line usage errors. The caller adds its own flags
    and ``set_defaults(run=...)``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        aliases=list(aliases),
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        one_line_errors=True,
        boolean_flags=True,
    )
    parser.add_argument("source", metavar="SOURCE", help=f"local path or URL to {verb} from")
    parser.add_argument("destination", metavar="DESTINATION", help=f"local path or URL to {verb} to")
    add_transfer_flags(parser)
    add_output_flags(parser)
    return parser


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    output = parser.add_argument_group("output")
    output.add_argument(
        "--output-type",
        default="text",
        metavar="TYPE",
        help="text (default) or json: AzCopy's JSON lines (Init, Progress, EndOfJob, ...)",
    )
    output.add_argument(
        "--report",
        metavar="FILE",
        help="write one JSON line per file (path, size, md5, result, error, reason) as each finishes",
    )
    output.add_argument(
        "--log-level",
        default="INFO",
        metavar="LEVEL",
        help="what the job's log file (<job id>.log in SHAREFERRY_LOG_LOCATION, default the job "
        "directory) holds: INFO (default: every request, the job's start and end), WARNING (retries, "
        "failed and slow requests), ERROR (failed files), NONE (no log file), DEBUG (everything)",
    )


#: Flags whose value is a secret as a whole (a SAS token without its URL).
_SECRET_FLAGS = ("--source-sas", "--destination-sas")


def job_log_settings(args: argparse.Namespace, argv: Sequence[str] | None = None) -> JobLogSettings:
    """``--log-level`` (a one-line :class:`UsageError` for a value not in
    ``INFO, WARNING, ERROR, NONE, DEBUG``) and the command line the log's start line names,
    with SAS tokens given as flags replaced (the log redacts what is left)."""
    level = parse_log_level(getattr(args, "log_level", LEVEL_NAMES[0]))
    words = list(sys.argv[1:] if argv is None else argv)
    shown = []
    hide_next = False
    for word in words:
        name, sep, _ = word.partition("=")
        if hide_next:
            shown.append(REDACTED)
        elif sep and name in _SECRET_FLAGS:
            shown.append(f"{name}={REDACTED}")
        else:
            shown.append(word)
        hide_next = word in _SECRET_FLAGS
    return JobLogSettings(level=level, command_line=shlex.join(["shareferry", *shown]))


def make_output(output_type: str, *, out: TextIO, err: TextIO, command: str) -> JobOutput:
    if output_type == "json":
        return JsonOutput(out=out, err=err, command=command)
    return TextOutput(out=out, err=err, live=out.isatty(), command=command)


def describe_job(output: JobOutput, request: Any) -> None:
    """Tell a JSON output what its ``Dryrun`` lines need: the job's resolved ``--from-to`` pair
    and whether it is a dry run (AzCopy's dry run prints no Init, no Progress, an empty EndOfJob)."""
    if not isinstance(output, JsonOutput):
        return
    from shareferry.core.locations import resolve

    output.dry_run = bool(request.options.dry_run)
    if output.dry_run:
        output.tick_seconds = None
    try:
        output.from_to = resolve(request.source, request.destination, request.from_to)[0].value
    except ShareFerryError:  # checked already by build; a resumed job's local source may be gone
        output.from_to = request.from_to or ""


def execute(
    args: argparse.Namespace,
    *,
    command: str,
    build: Callable[[argparse.Namespace, Mapping[str, str]], R],
    start: Start[R],
    job_id_from: Callable[[], str] | None = None,
) -> int:
    """Build the request from ``args``, run it with the chosen output, return the exit status.
    ``job_id_from``: the id of the job (known once the request is built), else a new one."""
    environ = dict(os.environ)
    text_output = TextOutput(out=sys.stdout, err=sys.stderr, live=False, command=command)
    try:
        output_type = parse_choice(args.output_type, ["text", "json"], "--output-type")
    except UsageError as exc:
        text_output.fatal(str(exc))
        return EXIT_USAGE
    output = make_output(output_type, out=sys.stdout, err=sys.stderr, command=command)
    try:
        request = build(args, environ)
        describe_job(output, request)
        job_id = (job_id_from() if job_id_from is not None else None) or str(uuid.uuid4())
    except UsageError as exc:
        output.fatal(str(exc))
        return EXIT_USAGE
    except ShareFerryError as exc:
        output.fatal(str(exc))
        return EXIT_FAILED
    try:
        with _report(getattr(args, "report", None)) as report:
            subscribers: list[Subscriber] = [ReportWriter(report)] if report else []
            summary = asyncio.run(
                _run(request, start, output=output, subscribers=subscribers, environ=environ, job_id=job_id)
            )
    except UsageError as exc:
        output.fatal(str(exc))
        return EXIT_USAGE
    except ShareFerryError as exc:
        output.fatal(str(exc))
        return EXIT_FAILED
    except (KeyboardInterrupt, asyncio.CancelledError):
        output.clear()
        output.fatal(_interrupted(job_id, resumable=not getattr(args, "dry_run", False)))
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: show where, never a secret
        output.clear()
        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
        return EXIT_FAILED
    output.finished(summary)
    return summary.exit_code


@contextlib.contextmanager
def _report(path: str | None) -> Iterator[TextIO | None]:
    """The ``--report`` file, opened (and truncated) before the job starts."""
    if not path:
        yield None
        return
    try:
        stream = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise UsageError(f"--report {path}: {exc.strerror or exc}") from None
    try:
        yield stream
    finally:
        stream.close()


async def _run(
    request: Any,
    start: Start[Any],
    *,
    output: JobOutput,
    subscribers: list[Subscriber],
    environ: Mapping[str, str],
    job_id: str,
) -> JobSummary:
    output.started(job_id, log_file=_log_file(request, job_id, environ))
    ticker = asyncio.create_task(_tick(output)) if output.tick_seconds else None
    _terminate_like_interrupt()
    try:
        return await start(request, output, subscribers, environ, job_id)
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker


def _log_file(request: Any, job_id: str, environ: Mapping[str, str]) -> str:
    """Where the job's log file will be (AzCopy's ``LogFileLocation``); empty when it keeps none."""
    if request.logging.level is LogLevel.NONE or request.options.dry_run:
        return ""
    return str(job_log_path(job_id, environ))


def _terminate_like_interrupt() -> None:
    """SIGTERM (what Kubernetes, systemd and ``kill`` send) cancels the job as Ctrl-C does: every
    file in flight is discarded (its staging file removed), the plan records the job as
    cancelled, and the process exits 130 with the resume hint."""
    task = asyncio.current_task()
    if task is None:
        return
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def _interrupted(job_id: str, *, resumable: bool) -> str:
    """The one line an interrupted job ends with: which job, and how to go on."""
    line = f"interrupted: job {job_id} was cancelled; files in flight were discarded"
    if resumable:
        line += f"; resume it with: shareferry jobs resume {job_id}"
    return line


async def _tick(output: JobOutput) -> None:
    assert output.tick_seconds is not None
    while True:
        await asyncio.sleep(output.tick_seconds)
        output.tick()


class TerminalQuestion:
    """Asks yes/no questions on the terminal, one at a time, with progress redraws paused."""

    def __init__(self, output: JobOutput, *, ask: Callable[[str], str] | None = None) -> None:
        self.output = output
        self.ask = ask or ask_terminal
        self.lock = asyncio.Lock()

    async def answer(self, question: str) -> str:
        """Ask ``question`` once the terminal is free; the answer stripped and in lower case."""
        async with self.lock:
            return await self.answer_holding_lock(question)

    async def answer_holding_lock(self, question: str) -> str:
        """Ask ``question`` (the caller holds :attr:`lock`, e.g. to check first whether an
        earlier answer settled it)."""
        self.output.clear()
        self.output.paused = True  # no progress redraws over the question
        try:
            return (await asyncio.to_thread(self.ask, question)).strip().lower()
        finally:
            self.output.paused = False

    async def confirm(self, question: str) -> bool:
        """One yes/no question; anything but yes is no."""
        return await self.answer(question) in ("y", "yes")


def ask_terminal(question: str) -> str:
    """Ask on stderr (stdout may be JSON lines) and read the answer from stdin; EOF is "no".
    The question's names are shown escaped."""
    sys.stderr.write(printable(question))
    sys.stderr.flush()
    return sys.stdin.readline() or "n"
