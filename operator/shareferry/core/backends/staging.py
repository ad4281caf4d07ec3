"""Where an unfinished file lives: the hidden staging name a writer fills before it commits.

Every backend that writes a file in more than one step stages it under a hidden name in the
target directory, ``.<name>.shareferry-<token>.partial``, and moves it over the final name only
once every byte is in place (a local rename, Azure Files' Rename File). A file that a killed,
cancelled or evicted run left unfinished therefore never carries its final name: no later run,
listing or user can mistake it for a finished one, and an older finished file at that name stays
intact until the new one is whole.

The token is derived from the job and the destination path (:func:`staging_token`), so

* two jobs writing the same path at once stage into different files (each final file is wholly
  one writer's, never a mix), and
* a resumed job (or a rerun that knows the job it follows) can name, reuse and remove exactly the
  staging files the earlier run left behind.

Listings show a staging file refused (:data:`STAGING_REFUSAL`): it is never copied on nor
compared, a source reports it as skipped, and a sync leaves it alone at its destination (it
removes the stale ones it meets there, see :data:`STALE_AFTER`).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from datetime import timedelta
from typing import Final

from shareferry.core.objects import Refusal, Refused

MARK: Final = ".shareferry-"
SUFFIX: Final = ".partial"
#: Bytes in one file name on Linux file systems and characters in one Azure Files name.
NAME_MAX: Final = 255
#: A staging file untouched for this long belongs to no live writer (a writer refreshes its
#: file's time with every range it writes); sync removes such files from its destination.
STALE_AFTER: Final = timedelta(hours=1)
#: Overrides :data:`STALE_AFTER` (whole seconds, at least 1): for tests, and for a site whose
#: slowest single range write could take longer than an hour.
STALE_AFTER_ENV: Final = "SHAREFERRY_STALE_STAGING_SECONDS"
#: Stale staging files one backend notes per job at most (the rest wait for the next sync).
MAX_STALE_NOTED: Final = 10_000
#: How a listing shows a staging file: present (so it is never taken for data, nor silently
#: dropped from a source: it is reported as skipped) and never transferred.
STAGING_REFUSAL: Final = Refusal(
    Refused.SPECIAL, "an unfinished file of a ShareFerry run (a staging file), never copied"
)
_TOKEN_LENGTH = 12
_STAGING = re.compile(r"\..+\.shareferry-[0-9a-f]{12}\.partial", re.DOTALL)


def staging_token(job_key: str | None, path: str) -> str:
    """The token of ``path``'s staging file for job ``job_key``: the same for every run of one
    job, different between jobs; random when there is no job (a one-off write)."""
    if job_key is None:
        return secrets.token_hex(_TOKEN_LENGTH // 2)
    digest = hashlib.sha256(f"{job_key}\x00{path}".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:_TOKEN_LENGTH]


def staging_name(name: str, token: str, *, max_bytes: int = NAME_MAX) -> str:
    """The hidden name ``name`` is staged under, cut to fit ``max_bytes`` (UTF-8) if needed."""
    tail = f"{MARK}{token}{SUFFIX}"
    room = max_bytes - 1 - len(tail)
    encoded = os.fsencode(name)
    if len(encoded) > room:
        encoded = encoded[:room]
        while encoded and (encoded[-1] & 0xC0) == 0x80:  # never cut a character in half
            encoded = encoded[:-1]
        if encoded and encoded[-1] >= 0xC0:
            encoded = encoded[:-1]
        name = os.fsdecode(encoded)
    return f".{name}{tail}"


def staging_path(path: str, token: str) -> str:
    """``path`` with its last segment replaced by its staging name (same directory)."""
    head, _, name = path.rpartition("/")
    staged = staging_name(name, token)
    return f"{head}/{staged}" if head else staged


def is_staging_name(name: str) -> bool:
    """Whether ``name`` (one path segment) is a staging file's name."""
    return name.startswith(".") and name.endswith(SUFFIX) and _STAGING.fullmatch(name) is not None


def stale_after() -> timedelta:
    """How long a staging file must be untouched before a sync removes it (see
    :data:`STALE_AFTER_ENV`); a malformed value keeps the default."""
    text = os.environ.get(STALE_AFTER_ENV, "").strip()
    if text.isdigit() and int(text) >= 1:
        return timedelta(seconds=int(text))
    return STALE_AFTER
