"""AzCopy's transfer flags, as ``copy`` and ``sync`` spell them, turned into TransferOptions.

Spellings and defaults follow ``azcopy copy --help`` and ``azcopy sync --help`` of AzCopy 10.32.2:

* Boolean flags are switches (``--recursive``) that also take AzCopy's ``--flag=true`` /
  ``--flag=false`` form (:func:`expand_boolean_flags` rewrites that form before argparse sees it).
  ``--check-length`` defaults to true, so ``--check-length=false`` turns it off.
* ``--overwrite`` is ``true``, ``false``, ``ifSourceNewer`` or ``prompt``; ``--check-md5`` is
  ``NoCheck``, ``LogOnly``, ``FailIfDifferent`` (the default) or ``FailIfDifferentOrMissing``.
  Both are matched without regard to letter case, as AzCopy does.
* ``--preserve-permissions`` and ``--preserve-smb-permissions`` (its older name, still accepted
  by AzCopy) are the same flag; so are ``--preserve-info`` (10.32's name) and
  ``--preserve-smb-info``. Both default to false, as AzCopy's do on Linux for SMB shares.
* ``--block-size-mb`` takes a decimal number of MiB (``0.25``) from 0 to 4000, at most 4
  towards Azure Files; 0 means the default. ``--cap-mbps`` is megabits per second; 0 means no
  cap. Numbers are plain decimals (no ``nan``, ``inf``, ``0x10`` or ``1_000``); every refusal
  names the flag and its range (:mod:`shareferry.core.number_rules`).
* Filters (``--include-pattern`` ... ``--exclude-regex``) take ``;``-separated lists and may be
  repeated; ``--include-after`` / ``--include-before`` take ISO 8601 date/times.
* ``--metadata "k=v;k2=v2"`` sets metadata on uploaded objects.
* ``--include-attributes`` / ``--exclude-attributes`` take AzCopy's attribute letters
  (``A;S;R``) and apply to Azure Files sources only; ``--s2s-preserve-access-tier`` (default
  true) matters for Blob to Blob only; ``--trusted-microsoft-suffixes`` adds domains an Entra ID
  token may be sent to (:mod:`shareferry.core.trusted_hosts`).
* ``--skip-version-check`` is accepted and ignored (ShareFerry never looks for updates), so
  scripts written for AzCopy run unchanged; more such flags, each taking only the values
  ShareFerry can honour, are in :mod:`shareferry.cli.azcopy_compat_flags`.

Concurrency is not a flag: it comes from ``SHAREFERRY_CONCURRENCY`` (AzCopy reads
``AZCOPY_CONCURRENCY_VALUE`` the same way). Every problem is a one-line :class:`UsageError`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, NoReturn

from shareferry.core.errors import UsageError
from shareferry.core.number_rules import NumberRule
from shareferry.core.option_values import (
    BLOCK_SIZE_MB,
    CAP_MBPS,
    SHARD_COUNT,
    SHARD_INDEX,
    TransferValues,
    block_size_bytes,
    build_transfer_options,
    cap_mbps,
    parse_choice,
    parse_metadata,
)
from shareferry.core.options import CheckMd5, TransferOptions, concurrency_from_env
from shareferry.core.printable import printable

__all__ = [  # the value parsers live in the core (the CopyJob spec model uses them too)
    "BOOLEAN_FLAGS",
    "CommandParser",
    "add_transfer_flags",
    "block_size_bytes",
    "cap_mbps",
    "expand_boolean_flags",
    "number_argument",
    "options_from_args",
    "parse_bool",
    "parse_choice",
    "parse_metadata",
    "transfer_values",
]

#: Boolean flags: option string -> argparse dest. Each also has a hidden ``--no-...`` twin.
BOOLEAN_FLAGS: dict[str, str] = {
    "--recursive": "recursive",
    "--put-md5": "put_md5",
    "--preserve-info": "preserve_smb_info",
    "--preserve-smb-info": "preserve_smb_info",
    "--preserve-permissions": "preserve_permissions",
    "--preserve-smb-permissions": "preserve_permissions",
    "--dry-run": "dry_run",
    "--check-length": "check_length",
    "--decompress": "decompress",
    "--follow-symlinks": "follow_symlinks",
    "--no-guess-mime-type": "no_guess_mime_type",
    "--skip-version-check": "skip_version_check",
    "--s2s-preserve-access-tier": "s2s_preserve_access_tier",
}
_BOOLEAN_DEFAULTS = {"check_length": True, "s2s_preserve_access_tier": True}
_TRUE = {"true", "t", "1", "yes"}
_FALSE = {"false", "f", "0", "no"}


def parse_bool(text: str, flag: str) -> bool:
    """``true`` / ``false`` (and Go's ``t``, ``1``, ``f``, ``0``), any letter case."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise UsageError(f"{flag} takes true or false, not {text!r}")


def _negated(flag: str) -> str:
    """The hidden switch that turns ``flag`` off: ``--no-recursive``, ``--guess-mime-type``."""
    return "--" + flag[5:] if flag.startswith("--no-") else "--no-" + flag[2:]


def expand_boolean_flags(argv: Sequence[str], extra: Collection[str] = ()) -> list[str]:
    """``argv`` with every ``--flag=true|false`` of a boolean flag (:data:`BOOLEAN_FLAGS`, and
    ``extra``) rewritten to ``--flag`` or its hidden negation (argparse switches take no value).
    Arguments after ``--`` are left alone."""
    expanded: list[str] = []
    rest = False
    for arg in argv:
        if rest or arg == "--":
            rest = True
            expanded.append(arg)
            continue
        name, sep, value = arg.partition("=")
        if sep and (name in BOOLEAN_FLAGS or name in extra):
            expanded.append(name if parse_bool(value, name) else _negated(name))
        else:
            expanded.append(arg)
    return expanded


class CommandParser(argparse.ArgumentParser):
    """The parser of one ``shareferry`` subcommand (``add_subparsers(parser_class=...)``).

    Plain :class:`argparse.ArgumentParser` behaviour unless asked: ``one_line_errors`` prints a
    usage error (unknown arguments included) as the single line ``<prog>: <message>`` with exit
    status 2 instead of the usage block; ``boolean_flags`` applies :func:`expand_boolean_flags`
    before parsing, so AzCopy's ``--flag=true|false`` form works for those switches. A
    :class:`UsageError` raised while reading a value (see :func:`number_argument`) is such a
    usage error, its message as it is. What the user typed is echoed escaped.
    """

    def __init__(
        self, *args: Any, one_line_errors: bool = False, boolean_flags: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.one_line_errors = one_line_errors
        self.boolean_flags = boolean_flags
        self.extra_boolean_flags: set[str] = set()  # a command's own switches that take =true|false

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self.boolean_flags and args is not None:
            try:
                args = expand_boolean_flags(args, self.extra_boolean_flags)
            except UsageError as exc:
                self.error(str(exc))
        try:
            parsed, extras = super().parse_known_args(args, namespace)
        except UsageError as exc:  # a value's own reader refused it (number_argument)
            self.error(str(exc))
        if extras and self.one_line_errors:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        if not self.one_line_errors:
            super().error(message)
        self.exit(2, printable(f"{self.prog}: {message}") + "\n")


def add_transfer_flags(parser: argparse.ArgumentParser) -> None:
    """Add AzCopy's transfer flags (shared by ``copy`` and ``sync``) to ``parser``."""
    _add_booleans(parser)
    parser.add_argument(
        "--from-to",
        metavar="PAIR",
        help="source and destination kinds, needed for path-style URLs (emulators, Azure Stack): "
        "LocalFile, FileLocal, FileFile, LocalBlob, BlobLocal, BlobBlob, BlobFile, FileBlob",
    )
    parser.add_argument(
        "--overwrite",
        default="true",
        metavar="MODE",
        help="what to do when the destination exists: true (default), false, ifSourceNewer, prompt "
        "(prompt needs a terminal)",
    )
    parser.add_argument(
        "--check-md5",
        default=CheckMd5.FAIL_IF_DIFFERENT.value,
        metavar="MODE",
        help="how strictly downloads check MD5 hashes: NoCheck, LogOnly, FailIfDifferent (default), "
        "FailIfDifferentOrMissing",
    )
    parser.add_argument(
        "--block-size-mb",
        type=number_argument(BLOCK_SIZE_MB),
        metavar="MIB",
        help="chunk size in MiB, 0 to 4000; decimals allowed (0.25); 0 or omitted: the default, 8; "
        "at most 4 towards Azure Files",
    )
    parser.add_argument(
        "--cap-mbps",
        type=number_argument(CAP_MBPS),
        metavar="MBPS",
        help="cap the transfer rate, in megabits per second, up to 1000000 (0 or omitted: no cap)",
    )
    filters = parser.add_argument_group("filters (';'-separated lists; each flag may be repeated)")
    for flag, text in (
        ("--include-pattern", "only files whose NAME matches one of these wildcards (*, ?, [abc])"),
        ("--exclude-pattern", "skip files whose name matches one of these wildcards"),
        ("--include-path", "only these paths relative to the source (no wildcards)"),
        ("--exclude-path", "skip these paths relative to the source"),
        ("--include-regex", "only relative paths matching one of these regular expressions"),
        ("--exclude-regex", "skip relative paths matching one of these regular expressions"),
    ):
        filters.add_argument(flag, action="append", default=[], metavar="LIST", help=text)
    filters.add_argument(
        "--include-after",
        metavar="ISO8601",
        help="only files modified on or after this date/time (2020-08-19T15:04:00Z; no zone: local time)",
    )
    filters.add_argument(
        "--include-before", metavar="ISO8601", help="only files modified on or before this date/time"
    )
    for flag, text in (
        ("--include-attributes", "only files having one of these attributes (Azure Files sources only)"),
        ("--exclude-attributes", "skip files having one of these attributes (Azure Files sources only)"),
    ):
        filters.add_argument(
            flag,
            action="append",
            default=[],
            metavar="LETTERS",
            help=text + ": R ReadOnly, A Archive, S System, H Hidden, C Compressed, N Normal, "
            "E Encrypted, T Temporary, O Offline, I NotContentIndexed (e.g. A;S;R)",
        )
    parser.add_argument(
        "--trusted-microsoft-suffixes",
        action="append",
        default=[],
        metavar="LIST",
        help="domains besides Microsoft's own (*.core.windows.net, *.core.chinacloudapi.cn, "
        "*.core.cloudapi.de, *.core.usgovcloudapi.net, *.storage.azure.net) that Microsoft Entra ID "
        "tokens may be sent to, ';'-separated: a host or any subdomain of it, port ignored",
    )
    properties = parser.add_argument_group("properties of uploaded files")
    properties.add_argument(
        "--metadata", metavar="K=V;K2=V2", help="metadata to set on every destination file"
    )
    properties.add_argument(
        "--content-type",
        metavar="TYPE",
        help="content type of every destination file (implies --no-guess-mime-type)",
    )
    sharding = parser.add_argument_group("sharding (one job split over several workers)")
    sharding.add_argument(
        "--shard-index",
        type=number_argument(SHARD_INDEX),
        default=0,
        metavar="N",
        help="this worker's shard, 0 to --shard-count - 1 (default 0)",
    )
    sharding.add_argument(
        "--shard-count",
        type=number_argument(SHARD_COUNT),
        default=1,
        metavar="N",
        help="how many shards the job is split into, 1 to 1000 (default 1)",
    )


_BOOLEAN_HELP = {
    "--recursive": "look into sub-directories",
    "--put-md5": "store an MD5 of each uploaded file as its Content-MD5",
    "--preserve-info": "keep SMB attributes and creation/last-write times between Azure Files shares "
    "(default false, as AzCopy's on Linux); --preserve-smb-info is the older name",
    "--preserve-permissions": "keep SMB permissions (ACLs); --preserve-smb-permissions is the older name",
    "--dry-run": "print what would be copied (DRYRUN: copy SRC to DST) and copy nothing",
    "--check-length": "fail a file whose length at the destination differs (default true; "
    "--check-length=false turns it off)",
    "--decompress": "inflate gzip/deflate content-encoded files when downloading",
    "--follow-symlinks": "follow symbolic links when uploading",
    "--no-guess-mime-type": "do not guess the content type from the file extension",
    "--s2s-preserve-access-tier": "Blob to Blob: give the destination the source blob's access tier "
    "(default true; =false leaves the account's default); no effect for other pairs",
}


def _add_booleans(parser: argparse.ArgumentParser) -> None:
    aliases: dict[str, list[str]] = {}
    for flag, dest in BOOLEAN_FLAGS.items():
        aliases.setdefault(dest, []).append(flag)
    for dest, flags in aliases.items():
        default = _BOOLEAN_DEFAULTS.get(dest, False)
        help_text = _BOOLEAN_HELP.get(flags[0], argparse.SUPPRESS)
        parser.add_argument(*flags, dest=dest, action="store_true", default=default, help=help_text)
        parser.add_argument(
            *(_negated(flag) for flag in flags), dest=dest, action="store_false", help=argparse.SUPPRESS
        )


def number_argument(rule: NumberRule) -> Callable[[str], Any]:
    """An argparse ``type`` for a flag's number: plain decimal notation (a whole number when
    the rule says so), refused with the rule's one line naming the flag and its range
    (:class:`CommandParser` prints it). The range itself is checked where the options are built,
    so that a flag and a CopyJob's field are checked by the same code."""

    def read(text: str) -> float | int:
        value = rule.read(text)
        return int(value) if rule.whole else value

    read.__name__ = rule.flag
    return read


def transfer_values(args: argparse.Namespace, *, environ: Mapping[str, str]) -> TransferValues:
    """The transfer options the parsed flags spell, not yet checked."""
    return TransferValues(
        recursive=args.recursive,
        overwrite=args.overwrite,
        put_md5=args.put_md5,
        check_md5=args.check_md5,
        preserve_smb_info=args.preserve_smb_info,
        preserve_smb_permissions=args.preserve_permissions,
        block_size_mb=args.block_size_mb,
        cap_mbps=args.cap_mbps,
        concurrency=concurrency_from_env(dict(environ)),
        dry_run=args.dry_run,
        check_length=args.check_length,
        decompress=args.decompress,
        follow_symlinks=args.follow_symlinks,
        shard_index=args.shard_index,
        shard_count=args.shard_count,
        include_pattern=args.include_pattern,
        exclude_pattern=args.exclude_pattern,
        include_path=args.include_path,
        exclude_path=args.exclude_path,
        include_regex=args.include_regex,
        exclude_regex=args.exclude_regex,
        include_after=args.include_after,
        include_before=args.include_before,
        metadata=parse_metadata(args.metadata) if args.metadata else None,
        content_type=args.content_type,
        guess_mime_type=not args.no_guess_mime_type,
        include_attributes=args.include_attributes,
        exclude_attributes=args.exclude_attributes,
        s2s_preserve_access_tier=args.s2s_preserve_access_tier,
        trusted_microsoft_suffixes=args.trusted_microsoft_suffixes,
    )


def options_from_args(args: argparse.Namespace, *, environ: Mapping[str, str]) -> TransferOptions:
    """The :class:`TransferOptions` the parsed flags describe (:class:`UsageError` if invalid)."""
    return build_transfer_options(transfer_values(args, environ=environ))
