"""``shareferry sync SOURCE DESTINATION``: make the destination match the source, as ``azcopy sync``.

Takes ``copy``'s transfer flags (``--recursive`` is on by default: ``--recursive=false`` syncs only
the files directly in the source) and adds AzCopy's ``--delete-destination``, ``--compare-hash``
and ``--mirror-mode``, plus ``--max-delete-percent``, the guard that stops a sync before it
deletes a large share of the destination. Exit status as ``copy``; a refused deletion is 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shareferry.cli.azcopy_compat_flags import add_compat_flags, check_compat_flags
from shareferry.cli.job_runner import TerminalQuestion, add_transfer_command, execute, job_log_settings
from shareferry.cli.output import JobOutput
from shareferry.cli.transfer_flags import number_argument, options_from_args
from shareferry.core.accounting import Subscriber
from shareferry.core.errors import UsageError
from shareferry.core.filters import ObjectFilter, check_attribute_source
from shareferry.core.locations import resolve
from shareferry.core.option_values import (
    MAX_DELETE_PERCENT,
    SyncValues,
    build_sync_options,
    check_block_size_towards,
)
from shareferry.core.options import (
    DEFAULT_MAX_DELETE_PERCENT,
    GUARD_MIN_FILES,
    DeleteDestination,
    SyncOptions,
)

if TYPE_CHECKING:
    from shareferry.core.jobs import JobSummary, SyncRequest

COMMAND = "sync"

DESCRIPTION = """\
Make DESTINATION match SOURCE, the way `azcopy sync` does: a file is copied when it is missing at
the destination, when the source is newer (last modified time; an Azure file's SMB last-write
time with --preserve-smb-info), or when the times are equal and the sizes differ. A destination file
that is newer than the source is never overwritten (--mirror-mode does; --compare-hash MD5 copies
exactly the files whose MD5s differ): when it differs from the source it is counted as skipped
because the destination is newer, and listed in --report. With --delete-destination, files at the
destination that are not at the source are deleted, and then directories left empty (unless a
pattern or date filter is set: those act on files only, as in AzCopy); files the filters exclude
are never deleted. Nothing is deleted unless both listings completed."""

EPILOG = f"""\
deletion guard:
  Without --max-delete-percent a sync refuses to delete more than {DEFAULT_MAX_DELETE_PERCENT:g}% of the
  destination's files once it would delete {GUARD_MIN_FILES} or more; --max-delete-percent 100 allows it.
  A refused sync deletes nothing and exits 1 (its copies are kept).

environment:
  SHAREFERRY_CONCURRENCY   requests in flight at once (default 32)
  SHAREFERRY_BUFFER_MB     cap on chunk buffers held in memory (default 64)
  SHAREFERRY_JOB_DIR       where job plans are kept for `shareferry jobs` (default ~/.shareferry/jobs)
  SHAREFERRY_LOG_LOCATION  where each job's log file <job id>.log is written (default SHAREFERRY_JOB_DIR)

examples:
  shareferry sync ./site 'https://acct.file.core.windows.net/share/site?SAS' --delete-destination true
  shareferry sync 'https://a.file.core.windows.net/s1?SAS' 'https://b.file.core.windows.net/s2?SAS' \\
      --preserve-smb-info --preserve-permissions --dry-run"""


def register(commands: Any) -> None:
    parser = add_transfer_command(
        commands,
        COMMAND,
        verb="sync",
        help="make a destination match a source (like azcopy sync)",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    add_sync_flags(parser)
    parser.extra_boolean_flags.add("--mirror-mode")  # type: ignore[attr-defined]
    add_compat_flags(parser, command=COMMAND, extra_booleans=parser.extra_boolean_flags)  # type: ignore[attr-defined]
    parser.set_defaults(run=run, recursive=True)


def add_sync_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sync")
    group.add_argument(
        "--delete-destination",
        default="false",
        metavar="MODE",
        help="delete destination files absent from the source: false (default), true, prompt",
    )
    group.add_argument(
        "--compare-hash",
        default="None",
        metavar="HASH",
        help="MD5: compare content hashes instead of times (times when a hash is missing); None (default)",
    )
    group.add_argument(
        "--mirror-mode",
        dest="mirror_mode",
        action="store_true",
        default=False,
        help="copy every file not known to be identical, even when the destination is newer",
    )
    group.add_argument("--no-mirror-mode", dest="mirror_mode", action="store_false", help=argparse.SUPPRESS)
    group.add_argument(
        "--max-delete-percent",
        type=number_argument(MAX_DELETE_PERCENT),
        metavar="N",
        help=f"refuse to delete more than N%% of the destination's files (default guard: "
        f"{DEFAULT_MAX_DELETE_PERCENT:g}%% once {GUARD_MIN_FILES}+ files would go; 100 turns it off)",
    )


def sync_options_from_args(args: argparse.Namespace) -> SyncOptions:
    return build_sync_options(
        SyncValues(
            delete_destination=args.delete_destination,
            compare_hash=args.compare_hash,
            mirror_mode=args.mirror_mode,
            max_delete_percent=args.max_delete_percent,
        )
    )


def run(args: argparse.Namespace) -> int:
    return execute(args, command=COMMAND, build=_request, start=start)


def _request(args: argparse.Namespace, environ: Mapping[str, str]) -> SyncRequest:
    check_compat_flags(args, command=COMMAND)
    if args.overwrite.strip().lower() != "true":
        raise UsageError("--overwrite does not apply to sync: it copies what differs (see --mirror-mode)")
    options = options_from_args(args, environ=environ)
    sync = sync_options_from_args(args)
    logging = job_log_settings(args)
    if sync.delete_destination is DeleteDestination.PROMPT and not sys.stdin.isatty():
        raise UsageError("--delete-destination=prompt needs a terminal to ask on: use true or false instead")
    _, source, destination = resolve(args.source, args.destination, args.from_to)
    check_block_size_towards(args.block_size_mb, destination_kind=destination.kind)
    ObjectFilter.build(options.filters)
    check_attribute_source(options.filters, source_kind=source.kind)
    from shareferry.core.jobs import SyncRequest

    return SyncRequest(args.source, args.destination, args.from_to, options, sync, logging=logging)


async def start(
    request: SyncRequest,
    output: JobOutput,
    subscribers: list[Subscriber],
    environ: Mapping[str, str],
    job_id: str,
    *,
    resume: bool = False,
) -> JobSummary:
    from shareferry.core.jobs import run_sync

    prompt = request.sync.delete_destination is DeleteDestination.PROMPT
    return await run_sync(
        request,
        accounting=output.accounting,
        subscribers=subscribers,
        confirm=TerminalQuestion(output).confirm if prompt else None,
        log=output.message,
        environ=environ,
        job_id=job_id,
        resume=resume,
    )
