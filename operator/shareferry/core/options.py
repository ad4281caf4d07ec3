"""One validated options object for a transfer, as AzCopy's flags define them.

Built by the CLI (or the worker from a CopyJob spec); the planner and the engine only read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shareferry.core.errors import UsageError

MIB = 1024 * 1024
DEFAULT_BLOCK_SIZE = 8 * MIB
#: Concurrent requests in flight by default: enough to fill a 10 Gbit link with 8 MiB blocks
#: and to hide per-request latency for small files, small enough for a 2-core pod.
DEFAULT_CONCURRENCY = 32
CONCURRENCY_ENV = "SHAREFERRY_CONCURRENCY"


class Overwrite(StrEnum):
    TRUE = "true"
    FALSE = "false"
    IF_SOURCE_NEWER = "ifSourceNewer"
    PROMPT = "prompt"


class CheckMd5(StrEnum):
    NO_CHECK = "NoCheck"
    LOG_ONLY = "LogOnly"
    FAIL_IF_DIFFERENT = "FailIfDifferent"
    FAIL_IF_DIFFERENT_OR_MISSING = "FailIfDifferentOrMissing"


@dataclass(frozen=True)
class Filters:
    """AzCopy's filters. Patterns match the file name only; paths are relative to the source
    root and match whole segments (a file, or a directory and everything below it); regexes are
    searched in the relative path. See :mod:`shareferry.core.filters` for the exact rules."""

    include_patterns: tuple[str, ...] = ()
    exclude_patterns: tuple[str, ...] = ()
    include_paths: tuple[str, ...] = ()
    exclude_paths: tuple[str, ...] = ()
    include_regex: tuple[str, ...] = ()
    exclude_regex: tuple[str, ...] = ()
    include_after: datetime | None = None
    include_before: datetime | None = None
    include_attributes: tuple[str, ...] = ()
    exclude_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TransferOptions:
    """Everything that shapes one copy job besides its source and destination."""

    recursive: bool = False
    overwrite: Overwrite = Overwrite.TRUE
    put_md5: bool = False
    check_md5: CheckMd5 = CheckMd5.FAIL_IF_DIFFERENT
    preserve_smb_info: bool = False
    preserve_smb_permissions: bool = False
    block_size: int = DEFAULT_BLOCK_SIZE
    cap_mbps: float | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    dry_run: bool = False
    check_length: bool = True
    decompress: bool = False
    follow_symlinks: bool = False
    shard_index: int = 0
    shard_count: int = 1
    filters: Filters = field(default_factory=Filters)
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    guess_mime_type: bool = True
    max_retries: int = 8
    #: Blob to Blob: the destination takes the source blob's access tier (when set on the blob).
    s2s_preserve_access_tier: bool = True
    #: Domains added to Microsoft's own that Entra ID tokens may be sent to (see trusted_hosts).
    trusted_suffixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.block_size < 1 or self.block_size > 4000 * MIB:
            raise UsageError("--block-size-mb must be more than 0 and at most 4000")
        if self.cap_mbps is not None and self.cap_mbps <= 0:
            raise UsageError("--cap-mbps must be a positive number of megabits per second")
        if self.concurrency < 1:
            raise UsageError(f"{CONCURRENCY_ENV} must be a positive whole number")
        if self.shard_count < 1 or not 0 <= self.shard_index < self.shard_count:
            raise UsageError("--shard-index must be between 0 and --shard-count - 1")
        if self.max_retries < 0:
            raise UsageError("the retry count must not be negative")


class DeleteDestination(StrEnum):
    TRUE = "true"
    FALSE = "false"
    PROMPT = "prompt"


#: Without ``--max-delete-percent``, a sync refuses to delete more than this share of the
#: destination's files once it would delete at least :data:`GUARD_MIN_FILES` of them.
DEFAULT_MAX_DELETE_PERCENT = 50.0
GUARD_MIN_FILES = 10


@dataclass(frozen=True)
class SyncOptions:
    """What ``sync`` adds to the transfer options (AzCopy's ``sync`` flags, plus the guard).

    ``compare_hash``: compare MD5s instead of times (times when a hash is missing).
    ``mirror_mode``: copy every file that is not known to be identical, older or not.
    ``max_delete_percent``: refuse every deletion when more than this percentage of the
    destination's files would go; ``None`` is the default guard (:data:`DEFAULT_MAX_DELETE_PERCENT`
    once at least :data:`GUARD_MIN_FILES` files would go); ``100`` turns the guard off.
    """

    delete_destination: DeleteDestination = DeleteDestination.FALSE
    compare_hash: bool = False
    mirror_mode: bool = False
    max_delete_percent: float | None = None

    def __post_init__(self) -> None:
        if self.max_delete_percent is not None and not 0 <= self.max_delete_percent <= 100:
            raise UsageError("--max-delete-percent must be a number from 0 to 100")
        if self.compare_hash and self.mirror_mode:
            raise UsageError("--compare-hash and --mirror-mode cannot be combined: choose one way to compare")

    def refuses(self, *, deleting: int, destination_files: int) -> str | None:
        """Why deleting ``deleting`` of ``destination_files`` files is refused, or None."""
        if deleting == 0:
            return None
        percent = 100.0 * deleting / max(1, destination_files)
        if self.max_delete_percent is not None:
            limit = self.max_delete_percent
            if percent <= limit:
                return None
            flag = f"--max-delete-percent {limit:g}"
        else:
            if deleting < GUARD_MIN_FILES or percent <= DEFAULT_MAX_DELETE_PERCENT:
                return None
            flag = f"the default guard of {DEFAULT_MAX_DELETE_PERCENT:g}%"
        return (
            f"refusing to delete {deleting} of the destination's {destination_files} files "
            f"({percent:.1f}%, more than {flag}); nothing was deleted. Check that the source is "
            "complete and is the one you meant, then run again with --max-delete-percent 100 "
            "(or a limit above this share) to allow it"
        )


def concurrency_from_env(environ: dict[str, str] | None = None) -> int:
    """``SHAREFERRY_CONCURRENCY`` or the default; a clear error for anything else."""
    text = (environ if environ is not None else dict(os.environ)).get(CONCURRENCY_ENV, "").strip()
    if not text:
        return DEFAULT_CONCURRENCY
    try:
        value = int(text)
    except ValueError as exc:
        raise UsageError(f"{CONCURRENCY_ENV}={text!r} is not a whole number") from exc
    if value < 1 or value > 1000:
        raise UsageError(f"{CONCURRENCY_ENV} must be 1 to 1000, got {value}")
    return value
