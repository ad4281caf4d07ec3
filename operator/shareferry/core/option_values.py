"""Transfer options as a person spelled them (CLI flags or a CopyJob's ``options``), checked and
turned into :class:`~shareferry.core.options.TransferOptions` and
:class:`~shareferry.core.options.SyncOptions`.

The ``shareferry`` commands and the CopyJob spec model both build their options here, so both
accept the same values and refuse the same mistakes. Messages name the CLI flags
(``--include-after``); a caller that speaks another vocabulary (a spec's ``options.includeAfter``)
rewrites those names. Every problem is a one-line :class:`UsageError`; a number out of range is
refused by its :class:`~shareferry.core.number_rules.NumberRule`, which says the range.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from shareferry.core.errors import UsageError
from shareferry.core.filters import parse_iso8601
from shareferry.core.number_rules import NumberRule
from shareferry.core.options import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_CONCURRENCY,
    MIB,
    CheckMd5,
    DeleteDestination,
    Filters,
    Overwrite,
    SyncOptions,
    TransferOptions,
)
from shareferry.core.trusted_hosts import parse_trusted_suffixes

METADATA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_BLOCK_SIZE_MB = 4000  # Azure Blob's largest block
FILES_MAX_BLOCK_SIZE_MB = 4  # Azure Files' largest range
MAX_CAP_MBPS = 1_000_000  # 1 Tbit/s: anything above is surely a typo
MAX_SHARDS = 1000

BLOCK_SIZE_MB = NumberRule(
    "--block-size-mb",
    0,
    MAX_BLOCK_SIZE_MB,
    noun="a number of MiB",
    note=f"0: the default, {DEFAULT_BLOCK_SIZE // MIB} MiB",
)
#: ``--block-size-mb`` when the destination is Azure Files.
FILES_BLOCK_SIZE_MB = NumberRule(
    "--block-size-mb",
    0,
    FILES_MAX_BLOCK_SIZE_MB,
    noun="a number of MiB",
    note=f"towards Azure Files, whose ranges are at most {FILES_MAX_BLOCK_SIZE_MB} MiB; 0: the default",
)
CAP_MBPS = NumberRule("--cap-mbps", 0, MAX_CAP_MBPS, noun="a number of megabits per second", note="0: no cap")
SHARD_COUNT = NumberRule("--shard-count", 1, MAX_SHARDS, whole=True)
SHARD_INDEX = NumberRule("--shard-index", 0, MAX_SHARDS - 1, whole=True, note="less than --shard-count")
MAX_DELETE_PERCENT = NumberRule("--max-delete-percent", 0, 100, noun="a percentage")


@dataclass(frozen=True)
class TransferValues:
    """The values of the transfer options before checking: choices as text (any letter case),
    sizes as the numbers a person gives (0 or ``None`` for the default), filters as lists of
    ``;``-separated entries, dates as ISO 8601 text."""

    recursive: bool = False
    overwrite: str = Overwrite.TRUE.value
    put_md5: bool = False
    check_md5: str = CheckMd5.FAIL_IF_DIFFERENT.value
    preserve_smb_info: bool = False
    preserve_smb_permissions: bool = False
    block_size_mb: float | None = None
    cap_mbps: float | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    dry_run: bool = False
    check_length: bool = True
    decompress: bool = False
    follow_symlinks: bool = False
    shard_index: int = 0
    shard_count: int = 1
    include_pattern: Sequence[str] = ()
    exclude_pattern: Sequence[str] = ()
    include_path: Sequence[str] = ()
    exclude_path: Sequence[str] = ()
    include_regex: Sequence[str] = ()
    exclude_regex: Sequence[str] = ()
    include_after: str | None = None
    include_before: str | None = None
    metadata: Mapping[str, str] | None = None
    content_type: str | None = None
    guess_mime_type: bool = True
    include_attributes: Sequence[str] = ()
    exclude_attributes: Sequence[str] = ()
    s2s_preserve_access_tier: bool = True
    trusted_microsoft_suffixes: Sequence[str] = ()


@dataclass(frozen=True)
class SyncValues:
    """The values of what ``sync`` adds, before checking (choices as text, any letter case)."""

    delete_destination: str = DeleteDestination.FALSE.value
    compare_hash: str = "None"
    mirror_mode: bool = False
    max_delete_percent: float | None = None


def parse_choice(text: str, choices: Sequence[str], flag: str) -> str:
    """The member of ``choices`` equal to ``text`` ignoring letter case."""
    for choice in choices:
        if choice.lower() == text.strip().lower():
            return choice
    raise UsageError(f"{flag} must be one of {', '.join(choices)}, not {text!r}")


def parse_metadata(text: str) -> dict[str, str]:
    """``k=v;k2=v2`` as a dict. Keys must be valid identifiers (Azure's rule for metadata names);
    values may be empty and may contain ``=``."""
    metadata: dict[str, str] = {}
    for entry in text.split(";"):
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        key = key.strip()
        if not sep or not METADATA_NAME.fullmatch(key):
            raise UsageError(
                f"--metadata entry {entry!r} is not NAME=VALUE with NAME a letter or '_' followed by "
                "letters, digits or '_'"
            )
        _check_new_name(key, metadata)
        metadata[key] = value
    return metadata


def check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """``metadata`` given as a mapping, its names checked as :func:`parse_metadata` checks them."""
    checked: dict[str, str] = {}
    for key, value in metadata.items():
        if not METADATA_NAME.fullmatch(key):
            raise UsageError(
                f"--metadata name {key!r} must be a letter or '_' followed by letters, digits or '_'"
            )
        _check_new_name(key, checked)
        checked[key] = value
    return checked


def _check_new_name(key: str, seen: Iterable[str]) -> None:
    if key.lower() in (existing.lower() for existing in seen):
        raise UsageError(f"--metadata names {key!r} twice (names are case-insensitive)")


def block_size_bytes(mib: float | None) -> int:
    """``--block-size-mb`` in bytes; omitted or 0 is the default."""
    if mib is None or BLOCK_SIZE_MB.check(mib) == 0:
        return DEFAULT_BLOCK_SIZE
    size = round(mib * MIB)
    if size < 1:
        raise UsageError(
            f"--block-size-mb must be {BLOCK_SIZE_MB.allowed()} and at least one byte, not {mib:g}"
        )
    return size


def check_block_size_towards(mib: float | None, *, destination_kind: str) -> None:
    """Refuse a ``--block-size-mb`` the destination cannot take: Azure Files writes ranges of at
    most :data:`FILES_MAX_BLOCK_SIZE_MB` MiB (the default is cut to that size there)."""
    if mib is not None and destination_kind == "file":
        FILES_BLOCK_SIZE_MB.check(mib)


def cap_mbps(value: float | None) -> float | None:
    """``--cap-mbps``; omitted or 0 is no cap."""
    if value is None or CAP_MBPS.check(value) == 0:
        return None
    return value


def check_shards(*, index: int, count: int) -> None:
    """``--shard-index`` of ``--shard-count``: a whole number from 0 to one less than the count."""
    SHARD_COUNT.check(count)
    SHARD_INDEX.check(index)
    NumberRule("--shard-index", 0, count - 1, whole=True, note=f"one less than --shard-count {count}").check(
        index
    )


def build_filters(values: TransferValues) -> Filters:
    """The filters ``values`` give, dates parsed (an include-after later than include-before is
    refused: nothing could match). Entries and regexes are checked by
    :meth:`shareferry.core.filters.ObjectFilter.build`."""
    after = parse_iso8601(values.include_after, "--include-after") if values.include_after else None
    before = parse_iso8601(values.include_before, "--include-before") if values.include_before else None
    if after and before and after > before:
        raise UsageError("--include-after is later than --include-before: no file can match")
    return Filters(
        include_patterns=tuple(values.include_pattern),
        exclude_patterns=tuple(values.exclude_pattern),
        include_paths=tuple(values.include_path),
        exclude_paths=tuple(values.exclude_path),
        include_regex=tuple(values.include_regex),
        exclude_regex=tuple(values.exclude_regex),
        include_after=after,
        include_before=before,
        include_attributes=tuple(values.include_attributes),
        exclude_attributes=tuple(values.exclude_attributes),
    )


def build_transfer_options(values: TransferValues) -> TransferOptions:
    """The :class:`TransferOptions` ``values`` describe (:class:`UsageError` if invalid)."""
    overwrite = parse_choice(values.overwrite, [member.value for member in Overwrite], "--overwrite")
    check_md5 = parse_choice(values.check_md5, [member.value for member in CheckMd5], "--check-md5")
    filters = build_filters(values)
    check_shards(index=values.shard_index, count=values.shard_count)
    return TransferOptions(
        recursive=values.recursive,
        overwrite=Overwrite(overwrite),
        put_md5=values.put_md5,
        check_md5=CheckMd5(check_md5),
        preserve_smb_info=values.preserve_smb_info,
        preserve_smb_permissions=values.preserve_smb_permissions,
        block_size=block_size_bytes(values.block_size_mb),
        cap_mbps=cap_mbps(values.cap_mbps),
        concurrency=values.concurrency,
        dry_run=values.dry_run,
        check_length=values.check_length,
        decompress=values.decompress,
        follow_symlinks=values.follow_symlinks,
        shard_index=values.shard_index,
        shard_count=values.shard_count,
        filters=filters,
        metadata=check_metadata(values.metadata or {}),
        content_type=values.content_type or None,
        guess_mime_type=values.guess_mime_type and not values.content_type,
        s2s_preserve_access_tier=values.s2s_preserve_access_tier,
        trusted_suffixes=parse_trusted_suffixes(values.trusted_microsoft_suffixes),
    )


def build_sync_options(values: SyncValues) -> SyncOptions:
    """The :class:`SyncOptions` ``values`` describe (:class:`UsageError` if invalid)."""
    delete = parse_choice(
        values.delete_destination, [member.value for member in DeleteDestination], "--delete-destination"
    )
    compare = parse_choice(values.compare_hash, ["None", "MD5"], "--compare-hash")
    if values.max_delete_percent is not None:
        MAX_DELETE_PERCENT.check(values.max_delete_percent)
    return SyncOptions(
        delete_destination=DeleteDestination(delete),
        compare_hash=compare == "MD5",
        mirror_mode=values.mirror_mode,
        max_delete_percent=values.max_delete_percent,
    )
