"""AzCopy 10.32 flags that ShareFerry takes so that scripts written for AzCopy run unchanged,
though they ask for nothing ShareFerry would do differently.

Each :class:`CompatFlag` names the values ShareFerry takes as they are (AzCopy's default, and
any other value whose effect ShareFerry already has) and why any other value is refused: a
value that would change behaviour ShareFerry does not have is one line and exit status 2
(:func:`check_compat_flags`), never silently ignored. Values are matched without regard to
letter case, as AzCopy does. Switches (``boolean``) also take AzCopy's ``--flag=true|false``.

AzCopy flags that ask for a feature ShareFerry lacks and that a script would only give to get
that feature (``--blob-tags``, ``--cpk-by-value``, ``--list-of-versions`` ...) are not here:
they stay unknown arguments, refused like any typo.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from shareferry.core.errors import UsageError
from shareferry.core.number_rules import NumberRule

ANY = ("*",)
"""``accepted`` of a flag every value of which is taken (it changes nothing here)."""


@dataclass(frozen=True)
class CompatFlag:
    """One AzCopy flag taken for compatibility: ``accepted`` values (any letter case; :data:`ANY`
    for all), ``why`` any other is refused (or, for :data:`ANY`, why none matters); ``default``
    is AzCopy's (``--preserve-last-modified-time``'s false is refused: ShareFerry has only true)."""

    flag: str
    commands: frozenset[str]
    accepted: tuple[str, ...]
    why: str
    boolean: bool = False
    default: str = ""

    @property
    def dest(self) -> str:
        return "compat_" + self.flag[2:].replace("-", "_")


COPY = frozenset({"copy"})
BOTH = frozenset({"copy", "sync"})

#: ``--put-blob-size-mb`` is read as a number (AzCopy refuses anything else), then has no effect.
PUT_BLOB_SIZE_MB = NumberRule("--put-blob-size-mb", 0, 5000, noun="a number of MiB")

COMPAT_FLAGS: tuple[CompatFlag, ...] = (
    CompatFlag(
        "--as-subdir",
        COPY,
        ("true",),
        "to copy a folder's contents without the folder, end the source with /*",
        boolean=True,
        default="true",
    ),
    CompatFlag(
        "--backup",
        COPY,
        ("false",),
        "it is Windows-only (it activates SeBackupPrivilege / SeRestorePrivilege)",
        boolean=True,
        default="false",
    ),
    CompatFlag(
        "--blob-type",
        COPY,
        ("Detect", "BlockBlob"),
        "ShareFerry writes block blobs only (Detect or BlockBlob)",
        default="Detect",
    ),
    CompatFlag(
        "--block-blob-tier",
        COPY,
        ("None",),
        "ShareFerry sets no access tier on upload (only None: blobs get the account's default tier)",
        default="None",
    ),
    CompatFlag(
        "--page-blob-tier",
        COPY,
        ("None",),
        "ShareFerry writes block blobs only (only None)",
        default="None",
    ),
    CompatFlag(
        "--hardlinks",
        BOTH,
        ("follow",),
        "hardlink handling is for NFS shares, which ShareFerry does not support (only follow: "
        "a hardlink is copied as a file of its own)",
        default="follow",
    ),
    CompatFlag(
        "--trailing-dot",
        BOTH,
        ("Enable",),
        "ShareFerry always keeps a trailing dot in an Azure Files name as it is (only Enable)",
        default="Enable",
    ),
    CompatFlag(
        "--output-level",
        BOTH,
        ("default",),
        "ShareFerry has only the default output level (no essential or quiet)",
        default="default",
    ),
    CompatFlag(
        "--preserve-last-modified-time",
        COPY,
        ("true",),
        "a download always gets its source's last-modified time (sync compares it)",
        boolean=True,
        default="false",
    ),
    CompatFlag(
        "--preserve-owner",
        COPY,
        ANY,
        "no effect: it matters only to Windows downloads with --preserve-permissions",
        boolean=True,
        default="true",
    ),
    CompatFlag(
        "--disable-auto-decoding",
        COPY,
        ANY,
        "no effect: it matters only on Windows",
        boolean=True,
        default="false",
    ),
    CompatFlag(
        "--check-version",
        BOTH,
        ANY,
        "no effect: ShareFerry never looks for updates",
        boolean=True,
        default="false",
    ),
    CompatFlag(
        "--put-blob-size-mb",
        BOTH,
        ANY,
        "no effect: ShareFerry picks how to upload a blob by itself",
        default="",
    ),
)


def compat_flags(command: str) -> list[CompatFlag]:
    return [flag for flag in COMPAT_FLAGS if command in flag.commands]


def add_compat_flags(parser: argparse.ArgumentParser, *, command: str, extra_booleans: set[str]) -> None:
    """Add ``command``'s compatibility flags to ``parser``; the switches go into
    ``extra_booleans`` (the parser's set of switches that take ``=true|false``)."""
    group = parser.add_argument_group(
        "accepted for AzCopy compatibility (other values are refused, saying why)"
    )
    for compat in compat_flags(command):
        help_text = (
            f"{compat.why}"
            if compat.accepted == ANY
            else f"accepted: {' or '.join(compat.accepted)} (AzCopy's default: {compat.default}); "
            f"otherwise refused: {compat.why}"
        )
        if compat.boolean:
            group.add_argument(
                compat.flag, dest=compat.dest, action="store_const", const="true", help=help_text
            )
            group.add_argument(
                "--no-" + compat.flag[2:], dest=compat.dest, action="store_const", const="false",
                help=argparse.SUPPRESS,
            )  # fmt: skip
            extra_booleans.add(compat.flag)
        else:
            group.add_argument(compat.flag, dest=compat.dest, metavar="VALUE", help=help_text)


def check_compat_flags(args: argparse.Namespace, *, command: str) -> None:
    """Refuse (:class:`UsageError`) a compatibility flag given a value ShareFerry cannot honour."""
    for compat in compat_flags(command):
        value = getattr(args, compat.dest, None)
        if value is None:
            continue
        if compat.flag == PUT_BLOB_SIZE_MB.flag:
            PUT_BLOB_SIZE_MB.check(PUT_BLOB_SIZE_MB.read(value))
            continue
        if compat.accepted != ANY and value.strip().lower() not in {v.lower() for v in compat.accepted}:
            raise UsageError(
                f"{_shown(compat.flag, value, boolean=compat.boolean)} is not supported: {compat.why}"
            )


def _shown(flag: str, value: str, *, boolean: bool) -> str:
    return f"{flag}={value}" if boolean else f"{flag} {value!r}"
