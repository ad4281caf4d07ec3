"""``shareferry`` entry point: builds the argument parser from the subcommand modules."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shareferry import __version__
from shareferry.cli import (
    copy_cmd,
    emulator_cmd,
    jobs_cmd,
    make_cmd,
    operator_cmd,
    resume_cmd,
    run_cmd,
    sync_cmd,
    worker_cmd,
)
from shareferry.cli.streams import guarded_streams
from shareferry.cli.transfer_flags import CommandParser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shareferry",
        description="Move data in and out of Azure Files and Blob, the way AzCopy does, from Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"shareferry {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    copy_cmd.register(commands)
    sync_cmd.register(commands)
    make_cmd.register(commands)
    resume_cmd.register(jobs_cmd.register(commands))
    run_cmd.register(commands)
    worker_cmd.register(commands)
    operator_cmd.register(commands)
    emulator_cmd.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Its output may be piped into a reader that leaves early (``| head -1``):
    the command then goes on quietly and exits as it would have (see :mod:`shareferry.cli.streams`)."""
    with guarded_streams():
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        result: int = args.run(args)
        return result
