"""Neutral descriptions of stored objects, as every backend reports them and the engine uses them.

Paths are relative to a backend's root, ``/``-separated, never starting with ``/``; ``""`` is
the root itself. A listing yields objects in *tree order*: depth first, the entries of each
directory sorted by name (Python string order), a directory before its contents. Two listings in
tree order can be merged like a march (sync builds on this).

The one exception: a blob whose name has an empty segment (``/a``, ``a//b``) is listed under
that very name, refused (:class:`Refusal`); its empty segment sorts before every other name of
its level, which keeps tree order. Such a path is only reported, never read or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class ContentHeaders:
    """HTTP content headers stored with a file or blob."""

    content_type: str | None = None
    content_encoding: str | None = None
    content_language: str | None = None
    content_disposition: str | None = None
    cache_control: str | None = None


@dataclass(frozen=True, slots=True)
class SmbInfo:
    """SMB properties (Azure Files, and local files where the platform has them).

    Times are ISO 8601 UTC with 7 fraction digits (``2024-05-01T10:20:30.1234567Z``) so they
    round-trip exactly; ``attributes`` is Azure's ``ReadOnly | Archive`` form.
    """

    attributes: str | None = None
    creation_time: str | None = None
    last_write_time: str | None = None
    permission: str | None = None  # SDDL; None when not asked for or not available


#: The blob tier whose data is offline: it must be rehydrated before it can be read.
ARCHIVE_TIER = "Archive"


class Refused(StrEnum):
    """Why a listed object cannot be transferred (see :class:`Refusal`)."""

    SPECIAL = "special"  # not a regular file or directory (pipe, socket, device, symbolic link)
    NAME = "name"  # a name no path can carry (not valid UTF-8, an empty segment)
    UNREADABLE = "unreadable"  # could not be read: a directory's entries, a file's properties


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a listing says of an object it found but that must not be transferred: it is
    listed (so a sync pairs it and never deletes what stands at its path), reported with
    ``reason`` and never read or written. A special file is skipped; a name that cannot be
    carried and a directory that could not be listed are failures (something is not copied
    that should be)."""

    kind: Refused
    reason: str

    @property
    def failed(self) -> bool:
        return self.kind is not Refused.SPECIAL


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A file or directory as a listing or a stat reports it.

    ``md5``, ``content``, ``metadata`` and ``smb`` may be missing from listings (a listing gives
    names, sizes and times); :meth:`Backend.stat` fills what the backend knows. ``refusal``:
    the object is there but cannot be transferred (see :class:`Refusal`). ``access_tier``: a
    blob's tier (``Hot``, ``Cool``, ``Cold``, ``Archive``) when set on the blob itself; ``None``
    when it is only inferred from the account's default, or the object is not a blob.
    """

    path: str
    is_dir: bool
    size: int = 0
    last_modified: datetime | None = None
    md5: bytes | None = None
    content: ContentHeaders | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    smb: SmbInfo | None = None
    refusal: Refusal | None = None
    access_tier: str | None = None

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class WriteProps:
    """What a writer stores with a new object besides its bytes."""

    content: ContentHeaders = field(default_factory=ContentHeaders)
    metadata: dict[str, str] = field(default_factory=dict)
    smb: SmbInfo | None = None
    last_modified: datetime | None = None  # local files: set the mtime to this
    content_md5: bytes | None = None  # known before writing (small files): stored at creation
    access_tier: str | None = None  # Blob destinations: the tier to write the blob in


def parse_smb_time(text: str) -> datetime | None:
    """An SMB time (``2024-05-01T10:20:30.1234567Z``) as an aware datetime (to the microsecond);
    None when it cannot be read."""
    head, _, fraction = text.strip().rstrip("Z").partition(".")
    try:
        moment = datetime.fromisoformat(head)
    except ValueError:
        return None
    digits = (fraction + "000000")[:6]
    if not digits.isdigit():
        return None
    return moment.replace(microsecond=int(digits), tzinfo=UTC)


def modified_time(obj: StoredObject, *, smb_times: bool) -> datetime | None:
    """When the object's content last changed, as a sync compares it (AzCopy 10.32.2's
    ``StoredObject.IsMoreRecentThan``): the last modified time (an HTTP date, whole seconds, for
    an Azure file or a blob; a local file's mtime), or with ``smb_times`` (``--preserve-smb-info``)
    an Azure file's SMB last-write time (100 ns) when it has one. The SMB time is the client's
    word (an SMB client or a copy may set it to any past time); the last modified time is when
    the service last wrote the file."""
    if smb_times and obj.smb is not None and obj.smb.last_write_time:
        precise = parse_smb_time(obj.smb.last_write_time)
        if precise is not None:
            return precise
    return obj.last_modified
