"""``shareferry emulator``: run the Azure Files REST emulator (options modelled on Azurite's)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "emulator",
        help="run the Azure Files REST emulator",
        description=(
            "Serve the Azure Files REST API path-style (http://HOST:PORT/<account>/<share>/<path>) "
            "so the Azure SDKs and AzCopy work against it. Prints one line with the endpoint and a "
            "connection string once listening. Admin endpoint: /_emulator/faults, /_emulator/counters."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: pick a free one and print it)")
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="NAME:BASE64KEY",
        help="an account to serve (repeatable); default: the well-known devstoreaccount1",
    )
    storage = parser.add_mutually_exclusive_group()
    storage.add_argument("--data-dir", type=Path, help="keep shares in DIR across restarts")
    storage.add_argument("--in-memory", action="store_true", help="keep nothing after exit (the default)")
    parser.add_argument(
        "--loose", action="store_true", help="ignore unknown query parameters instead of failing with 400"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject faults from the start: KIND[:OPS][:key=value,...], e.g. busy:PutRange:probability=0.2 "
        "(kinds: busy, error, drop, latency); change them at runtime with /_emulator/faults",
    )
    parser.add_argument("--fault-seed", type=int, help="seed for fault probabilities (reproducible runs)")
    parser.add_argument(
        "--body-read-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="cut the connection of a request that sends no byte of its body for SECONDS (default 60)",
    )
    parser.add_argument("--debug", action="store_true", help="log every request (SAS signatures redacted)")
    parser.set_defaults(run=run)


def _seconds(text: str) -> float:
    from shareferry.emulator.config import body_read_timeout  # loaded only when the option is given

    return body_read_timeout(text)


def run(args: argparse.Namespace) -> int:
    # Imported here so other commands do not pay for loading aiohttp's server and the emulator.
    from shareferry.emulator import Account, EmulatorConfig
    from shareferry.emulator.config import DEFAULT_BODY_READ_TIMEOUT, default_accounts
    from shareferry.emulator.faults import FaultInjector
    from shareferry.emulator.server import serve

    try:
        accounts = tuple(Account.parse(text) for text in args.account) or default_accounts()
        names = [account.name for account in accounts]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"account {twice[0]!r} is given twice")
        for spec in args.fault:
            FaultInjector.parse_spec(spec)
    except ValueError as exc:
        print(f"shareferry emulator: {exc}", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print("shareferry emulator: --port must be 0 to 65535", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING, format="%(asctime)s %(message)s"
    )
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        accounts=accounts,
        data_dir=args.data_dir,
        loose=args.loose,
        fault_specs=tuple(args.fault),
        fault_seed=args.fault_seed,
        body_read_timeout=args.body_read_timeout or DEFAULT_BODY_READ_TIMEOUT,
    )
    try:
        serve(config)
    except OSError as exc:
        print(
            f"shareferry emulator: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr
        )
        return 1
    return 0
