"""``shareferry copy SOURCE DESTINATION``: one copy job with AzCopy's flags and output.

Exit status: 0 when nothing failed (skips are fine), 1 when a file failed or the job could not
run (no credential, source not found), 2 for bad input (flags, URLs, dates, patterns). A bad
input is one line on stderr, ``shareferry copy: <what is wrong>``; nothing printed ever holds a
SAS signature or an account key.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from shareferry.cli.output import JobOutput, JsonOutput, ReportWriter, TextOutput
from shareferry.cli.transfer_flags import add_transfer_flags, options_from_args, parse_choice
from shareferry.core.accounting import Subscriber
from shareferry.core.errors import ShareFerryError, UsageError
from shareferry.core.filters import ObjectFilter
from shareferry.core.locations import resolve
from shareferry.core.options import Overwrite
from shareferry.core.redact import redact

if TYPE_CHECKING:  # the job machinery (and the Azure SDKs) load only when a copy runs
    from shareferry.core.jobs import CopyRequest, JobSummary

COMMAND = "copy"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
Copy files between a local path, Azure Files and Azure Blob, the way `azcopy copy` does.

SOURCE and DESTINATION are local paths or URLs: https://ACCOUNT.file.core.windows.net/SHARE/PATH,
https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH, or path-style http://HOST:PORT/ACCOUNT/SHARE/PATH
(emulators, Azure Stack: give --from-to). Credentials: a SAS in the URL, else
AZURE_STORAGE_CONNECTION_STRING, else AZURE_STORAGE_ACCOUNT_NAME + AZURE_STORAGE_ACCOUNT_KEY, else
Microsoft Entra ID (https only). Switches also take AzCopy's --flag=true / --flag=false form."""

EPILOG = """\
environment:
  SHAREFERRY_CONCURRENCY   requests in flight at once (default 32)
  SHAREFERRY_BUFFER_MB     cap on chunk buffers held in memory (default 256)

exit status: 0 nothing failed, 1 a file failed or the job could not run, 2 bad input

examples:
  shareferry copy ./photos 'https://acct.file.core.windows.net/share?SAS' --recursive --put-md5
  shareferry copy 'https://acct.file.core.windows.net/share/photos?SAS' ./restore --recursive
  shareferry copy ./data 'http://127.0.0.1:10000/devstoreaccount1/share?SAS' --from-to LocalFile --recursive"""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        COMMAND,
        aliases=["cp"],
        help="copy files between local paths, Azure Files and Azure Blob (like azcopy copy)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        one_line_errors=True,
        boolean_flags=True,
    )
    parser.add_argument("source", metavar="SOURCE", help="local path or URL to copy from")
    parser.add_argument("destination", metavar="DESTINATION", help="local path or URL to copy to")
    add_transfer_flags(parser)
    add_output_flags(parser)
    parser.set_defaults(run=run)


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


def make_output(output_type: str, *, out: TextIO, err: TextIO, command: str) -> JobOutput:
    if output_type == "json":
        return JsonOutput(out=out, err=err, command=command)
    return TextOutput(out=out, err=err, live=out.isatty(), command=command)


def run(args: argparse.Namespace) -> int:
    environ = dict(os.environ)
    text_output = TextOutput(out=sys.stdout, err=sys.stderr, live=False, command=COMMAND)
    try:
        output_type = parse_choice(args.output_type, ["text", "json"], "--output-type")
    except UsageError as exc:
        text_output.fatal(str(exc))
        return EXIT_USAGE
    output = make_output(output_type, out=sys.stdout, err=sys.stderr, command=COMMAND)
    try:
        request = _request(args, environ=environ)
    except UsageError as exc:
        output.fatal(str(exc))
        return EXIT_USAGE
    try:
        with _report(args.report) as report:
            subscribers: list[Subscriber] = [ReportWriter(report)] if report else []
            summary = asyncio.run(_run(request, output=output, subscribers=subscribers, environ=environ))
    except UsageError as exc:
        output.fatal(str(exc))
        return EXIT_USAGE
    except ShareFerryError as exc:
        output.fatal(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        output.clear()
        output.fatal("interrupted: the job was cancelled")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: show where, never a secret
        output.clear()
        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
        return EXIT_FAILED
    output.finished(summary)
    return summary.exit_code


def _request(args: argparse.Namespace, *, environ: Mapping[str, str]) -> CopyRequest:
    """The job the flags describe, checked as far as can be without touching storage."""
    options = options_from_args(args, environ=environ)
    if options.overwrite is Overwrite.PROMPT and not sys.stdin.isatty():
        raise UsageError(
            "--overwrite=prompt needs a terminal to ask on: use true, false or ifSourceNewer instead"
        )
    resolve(args.source, args.destination, args.from_to)
    ObjectFilter.build(options.filters)
    from shareferry.core.jobs import CopyRequest

    return CopyRequest(
        source=args.source, destination=args.destination, from_to=args.from_to, options=options
    )


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
    request: CopyRequest,
    *,
    output: JobOutput,
    subscribers: list[Subscriber],
    environ: Mapping[str, str],
) -> JobSummary:
    from shareferry.core.jobs import run_copy

    job_id = str(uuid.uuid4())
    output.started(job_id)
    ticker = asyncio.create_task(_tick(output)) if output.tick_seconds else None
    try:
        return await run_copy(
            request,
            accounting=output.accounting,  # the output reads its counters while the job runs
            subscribers=subscribers,
            prompt=OverwritePrompt(output) if request.options.overwrite is Overwrite.PROMPT else None,
            log=output.message,
            environ=environ,
            job_id=job_id,
        )
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker


async def _tick(output: JobOutput) -> None:
    assert output.tick_seconds is not None
    while True:
        await asyncio.sleep(output.tick_seconds)
        output.tick()


class OverwritePrompt:
    """``--overwrite=prompt``: asks on the terminal, one question at a time, and remembers
    "all" / "none" answers for the rest of the job (AzCopy's Yes / No / Yes for all / No for all)."""

    QUESTION = "{path} already exists at the destination. Overwrite it? [y]es, [n]o, [a]ll, [l] none: "

    def __init__(self, output: JobOutput, *, ask: Callable[[str], str] | None = None) -> None:
        self.output = output
        self.ask = ask or _ask_terminal
        self.lock = asyncio.Lock()
        self.for_all: bool | None = None

    async def __call__(self, path: str) -> bool:
        async with self.lock:
            if self.for_all is not None:
                return self.for_all
            self.output.clear()
            self.output.paused = True  # no progress redraws over the question
            try:
                return await self._answer(path)
            finally:
                self.output.paused = False

    async def _answer(self, path: str) -> bool:
        while True:
            answer = (await asyncio.to_thread(self.ask, self.QUESTION.format(path=path))).strip().lower()
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no", ""):
                return False
            if answer in ("a", "all"):
                self.for_all = True
                return True
            if answer in ("l", "none"):
                self.for_all = False
                return False


def _ask_terminal(question: str) -> str:
    """Ask on stderr (stdout may be JSON lines) and read the answer from stdin; EOF is "no"."""
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline() or "n"
