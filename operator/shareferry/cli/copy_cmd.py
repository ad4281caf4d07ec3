"""``shareferry copy SOURCE DESTINATION``: one copy job with AzCopy's flags and output.

Exit status: 0 when nothing failed (skips are fine), 1 when a file failed or the job could not
run (no credential, source not found), 2 for bad input (flags, URLs, dates, patterns). A bad
input is one line on stderr, ``shareferry copy: <what is wrong>``; nothing printed ever holds a
SAS signature or an account key.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from shareferry.cli.azcopy_compat_flags import add_compat_flags, check_compat_flags
from shareferry.cli.job_runner import TerminalQuestion, add_transfer_command, execute, job_log_settings
from shareferry.cli.output import JobOutput
from shareferry.cli.transfer_flags import options_from_args
from shareferry.core.accounting import Subscriber
from shareferry.core.errors import UsageError
from shareferry.core.filters import ObjectFilter, check_attribute_source
from shareferry.core.locations import resolve
from shareferry.core.option_values import check_block_size_towards
from shareferry.core.options import Overwrite

if TYPE_CHECKING:  # the job machinery (and the Azure SDKs) load only when a copy runs
    from shareferry.core.jobs import CopyRequest, JobSummary

COMMAND = "copy"

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
  SHAREFERRY_BUFFER_MB     cap on chunk buffers held in memory (default 64)
  SHAREFERRY_JOB_DIR       where job plans are kept for `shareferry jobs` (default ~/.shareferry/jobs)
  SHAREFERRY_LOG_LOCATION  where each job's log file <job id>.log is written (default SHAREFERRY_JOB_DIR)

exit status: 0 nothing failed, 1 a file failed or the job could not run, 2 bad input
  (output piped into a reader that leaves early, as `| head -1`, is dropped quietly: the job
  still finishes and the status is the same)

examples:
  shareferry copy ./photos 'https://acct.file.core.windows.net/share?SAS' --recursive --put-md5
  shareferry copy 'https://acct.file.core.windows.net/share/photos?SAS' ./restore --recursive
  shareferry copy ./data 'http://127.0.0.1:10000/devstoreaccount1/share?SAS' --from-to LocalFile --recursive"""


def register(commands: Any) -> None:
    parser = add_transfer_command(
        commands,
        COMMAND,
        verb="copy",
        aliases=["cp"],
        help="copy files between local paths, Azure Files and Azure Blob (like azcopy copy)",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    add_compat_flags(parser, command=COMMAND, extra_booleans=parser.extra_boolean_flags)  # type: ignore[attr-defined]
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return execute(args, command=COMMAND, build=_request, start=start)


def _request(args: argparse.Namespace, environ: Mapping[str, str]) -> CopyRequest:
    """The job the flags describe, checked as far as can be without touching storage."""
    check_compat_flags(args, command=COMMAND)
    options = options_from_args(args, environ=environ)
    logging = job_log_settings(args)
    if options.overwrite is Overwrite.PROMPT and not sys.stdin.isatty():
        raise UsageError(
            "--overwrite=prompt needs a terminal to ask on: use true, false or ifSourceNewer instead"
        )
    _, source, destination = resolve(args.source, args.destination, args.from_to)
    check_block_size_towards(args.block_size_mb, destination_kind=destination.kind)
    ObjectFilter.build(options.filters)
    check_attribute_source(options.filters, source_kind=source.kind)
    from shareferry.core.jobs import CopyRequest

    return CopyRequest(
        source=args.source,
        destination=args.destination,
        from_to=args.from_to,
        options=options,
        logging=logging,
    )


async def start(
    request: CopyRequest,
    output: JobOutput,
    subscribers: list[Subscriber],
    environ: Mapping[str, str],
    job_id: str,
    *,
    resume: bool = False,
) -> JobSummary:
    from shareferry.core.jobs import run_copy

    return await run_copy(
        request,
        accounting=output.accounting,  # the output reads its counters while the job runs
        subscribers=subscribers,
        prompt=OverwritePrompt(output) if request.options.overwrite is Overwrite.PROMPT else None,
        log=output.message,
        environ=environ,
        job_id=job_id,
        resume=resume,
    )


class OverwritePrompt:
    """``--overwrite=prompt``: asks on the terminal, one question at a time, and remembers
    "all" / "none" answers for the rest of the job (AzCopy's Yes / No / Yes for all / No for all)."""

    QUESTION = "{path} already exists at the destination. Overwrite it? [y]es, [n]o, [a]ll, [l] none: "

    def __init__(self, output: JobOutput, *, ask: Callable[[str], str] | None = None) -> None:
        self.terminal = TerminalQuestion(output, ask=ask)
        self.for_all: bool | None = None

    async def __call__(self, path: str) -> bool:
        async with self.terminal.lock:  # one question at a time; an "all" answer settles the rest
            while self.for_all is None:
                answer = await self.terminal.answer_holding_lock(self.QUESTION.format(path=path))
                if answer in ("y", "yes"):
                    return True
                if answer in ("n", "no", ""):
                    return False
                if answer in ("a", "all"):
                    self.for_all = True
                elif answer in ("l", "none"):
                    self.for_all = False
            return self.for_all
