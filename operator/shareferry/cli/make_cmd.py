"""``shareferry make URL``: create an Azure Files share or a Blob container, as ``azcopy make`` does.

The URL names the share or container and nothing below it. Whether it is Files or Blob comes
from a public host name (``*.file.core.windows.net``, ``*.blob.core.windows.net``); path-style
URLs (``http://HOST:PORT/ACCOUNT/NAME``: emulators, Azure Stack) need ``--kind file|blob``, the
counterpart of ``copy --from-to``. Like AzCopy, it prints ``Successfully created the resource.``
and exits 0, or says ``the file share already exists`` / ``the container already exists`` and
exits 1 when there is one already.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from shareferry.cli.output import json_line, one_line
from shareferry.cli.transfer_flags import number_argument, parse_choice
from shareferry.core.backends.factory import open_destination
from shareferry.core.errors import ShareFerryError, UsageError
from shareferry.core.locations import Location, RemoteKind, parse_location
from shareferry.core.number_rules import NumberRule
from shareferry.core.options import TransferOptions
from shareferry.core.printable import printable

COMMAND = "make"
SUCCESS = "Successfully created the resource."
EXISTS = {"file": "the file share already exists", "blob": "the container already exists"}
MAX_QUOTA_GB = 102400  # the largest quota Azure Files accepts (100 TiB)
QUOTA_GB = NumberRule(
    "--quota-gb", 0, MAX_QUOTA_GB, whole=True, noun="a whole number of GiB", note="0: the service's default"
)

EPILOG = """\
examples:
  shareferry make 'https://acct.file.core.windows.net/newshare?SAS' --quota-gb 100
  shareferry make 'https://acct.blob.core.windows.net/newcontainer?SAS'
  shareferry make 'http://127.0.0.1:10000/devstoreaccount1/newshare?SAS' --kind file

exit status: 0 created, 1 it exists already or the service refused, 2 bad input"""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        COMMAND,
        aliases=["mk"],
        help="create a file share or a blob container (like azcopy make)",
        description="Create the Azure Files share or Blob container the URL names.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        one_line_errors=True,
    )
    parser.add_argument("url", metavar="URL", help="the share or container URL (credentials as for copy)")
    parser.add_argument(
        "--quota-gb",
        type=number_argument(QUOTA_GB),
        default=0,
        metavar="GIB",
        help=f"the share's quota in GiB, 0 to {MAX_QUOTA_GB} (Azure Files only); 0 (default) takes the "
        "service's default",
    )
    parser.add_argument(
        "--kind",
        metavar="KIND",
        help="file or blob: what a path-style URL (http://HOST:PORT/ACCOUNT/NAME) points at",
    )
    parser.add_argument("--output-type", default="text", metavar="TYPE", help="text (default) or json")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    json_output = False
    try:
        json_output = parse_choice(args.output_type, ["text", "json"], "--output-type") == "json"
        location = target(args.url, kind=args.kind)
        quota = quota_gb(args.quota_gb, kind=cast(RemoteKind, location.kind))
    except UsageError as exc:
        return _fail(str(exc), status=2, json_output=json_output)
    try:
        created = asyncio.run(make(location, quota_gb=quota, environ=dict(os.environ)))
    except UsageError as exc:
        return _fail(str(exc), status=2, json_output=json_output)
    except ShareFerryError as exc:
        return _fail(str(exc), status=1, json_output=json_output)
    if not created:
        return _fail(EXISTS[location.kind], status=1, json_output=json_output)
    if json_output:
        print(json_line("EndOfJob", SUCCESS, now=datetime.now(UTC)))
    else:
        print(SUCCESS)
    return 0


def target(url: str, *, kind: str | None) -> Location:
    """The share or container ``url`` names; :class:`UsageError` for anything else."""
    hint = parse_choice(kind, ["file", "blob"], "--kind") if kind else None
    if not url.lower().startswith(("http://", "https://")):
        raise UsageError(f"{url!r} is not a URL: give the http(s) URL of a share or container")
    location = parse_location(url, kind_hint=cast(RemoteKind, hint)) if hint else _located_by_host(url)
    if location.container is None or location.path:
        raise UsageError(
            f"{location.describe()} is not a top-level resource: give the URL of a share or container, "
            "with nothing after its name"
        )
    return location


def _located_by_host(url: str) -> Location:
    """``url`` parsed without ``--kind``: only a public host says whether it is Files or Blob.

    The parser's own complaint is kept when it is about the URL whatever its kind (a bad port,
    a share name Files refuses on a Files host); when only the kind is missing (a path-style URL,
    which the parser would answer with copy's ``--from-to``), the answer names ``--kind``."""
    try:
        return parse_location(url)
    except UsageError as unhinted:
        as_kind: list[str] = []
        remote_kinds: tuple[RemoteKind, ...] = ("file", "blob")
        for remote_kind in remote_kinds:
            try:
                parse_location(url, kind_hint=remote_kind)
            except UsageError as hinted:
                as_kind.append(str(hinted))
        if str(unhinted) in as_kind:
            raise
    raise UsageError(
        f"cannot tell whether {_without_query(url)} is Files or Blob from its host: "
        "pass --kind file or --kind blob"
    )


def _without_query(url: str) -> str:
    """``url`` without its query (where a SAS would be)."""
    return url.split("?", 1)[0]


def quota_gb(value: int, *, kind: RemoteKind) -> int | None:
    """``--quota-gb`` as the backend takes it: None for the service's default."""
    QUOTA_GB.check(value)
    if value and kind != "file":
        raise UsageError("--quota-gb applies to file shares only, not to blob containers")
    return value or None


async def make(location: Location, *, quota_gb: int | None, environ: Mapping[str, str]) -> bool:
    """Create the share or container; False when it already existed."""
    opened = await open_destination(location, environ=environ, options=TransferOptions())
    backend: Any = opened.backend
    try:
        if location.kind == "file":
            created: bool = await backend.create_share(quota_gb=quota_gb)
        else:
            created = await backend.create_container()
    finally:
        await backend.close()
    return created


def _fail(message: str, *, status: int, json_output: bool) -> int:
    text = printable(one_line(message))
    if json_output:
        print(json_line("Error", text, now=datetime.now(UTC)))
    print(f"shareferry {COMMAND}: {text}", file=sys.stderr)
    return status
