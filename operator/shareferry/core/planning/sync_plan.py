"""Decide, path by path, what a sync does: copy, leave alone, delete, or look closer.

The two trees are marched (:mod:`shareferry.core.planning.march`) and every pair is judged by
the rules of ``azcopy sync``: "the file is skipped if the last modified time in the destination
is more recent". For a file present on both sides (:func:`judge_files`):

* **By time** (the default, :func:`judge_times`): copy when the source is newer, or when a time
  is unknown on either side. A destination that is newer is never overwritten, whatever the
  sizes: when it differs from the source (another size, or another MD5 where both listings
  carry one) it is :data:`Verdict.NEWER_AT_DESTINATION`, which the engine counts and reports
  (someone changed it there since the last sync); when it may be the source's own copy (same
  size: a blob's or an Azure file's time is the time it was written) it is unchanged. Equal
  precise times with different contents (sizes, or known MD5s) are copied: such a pair is not
  "more recent" on either side and cannot be identical (a downloaded file carries its source's
  time, so one that ever landed with another length is copied again). Times equal only to the
  second (one side knows whole seconds) with different contents are kept and counted like a
  newer destination (:data:`SAME_SECOND_AT_DESTINATION`): the destination may have been edited
  after the source within that second, and data safety comes before convergence (AzCopy keeps
  every equal pair).
* "Newer" compares the times AzCopy 10.32.2 compares (``StoredObject.IsMoreRecentThan`` with
  ``preferSMBTime`` = ``--preserve-info``): a local file's mtime, a blob's or an Azure file's
  last modified time (when the service last wrote it), and, only with ``--preserve-smb-info``
  (:attr:`SyncScope.smb_times`), an Azure file's SMB last-write time (100 ns) instead. The SMB
  time is whatever a client set (an SMB client keeping an older file's time, a copy that
  preserved it): compared by default, a share file written after the local edit would be taken
  for older and overwritten. A download sets the local file's time to the compared time. When
  one side only knows whole seconds (HTTP dates) both are compared to the second, so a file
  uploaded in the second it was written is not taken for newer than its copy: unchanged files
  are never copied again (AzCopy compares the nanoseconds and copies it again).
* ``--compare-hash MD5`` copies exactly the files whose MD5s differ, whatever the times (as
  AzCopy: "transfer only files which differ in their MD5 hash"). MD5s come from the listings
  (Blob carries them) or, for a local file or an Azure file, from a closer look
  (:data:`Verdict.CHECK`, then :func:`judge_hashes`). When either side has no MD5 the times
  decide, newer-destination rule included (AzCopy falls back only for a missing source hash and
  overwrites a destination without one; a newer destination without a hash is kept here).
* ``--mirror-mode`` copies every file not known to be identical (same size and same MD5, or same
  size and same write time), newer destination or not: AzCopy's "overwrite conflicting files".

Why a newer destination of another size is safe to keep. ShareFerry used to copy whenever the
sizes differed, because a crash could leave a partial file at the final name, with the right
time and the wrong size, which the time rule would then keep for ever. That cannot happen any
more, for any destination: a local file and an Azure file are written under a hidden staging
name and renamed over the final name only once every byte is in place
(:mod:`shareferry.core.backends.staging`), and a blob is staged as uncommitted blocks that only
the final Put Block List (or a single Put Blob) makes visible. So whatever sits at a final name
is whole: either the source's complete copy (same size) or somebody else's file. A run resumed
after a crash still copies again what its plan holds as unfinished when the destination is not
newer (:func:`~shareferry.core.engine.resume.unfinished_earlier`), and a fresh run removes the
staging files an interrupted run of the same transfer left
(:mod:`shareferry.core.leftovers`).

Filters: a pair is judged by the source object when there is one, else by the destination's,
so a destination file the filters exclude is never deleted. Without ``recursive`` only the files
directly in the roots take part. A path that is a file on one side and a directory on the other
is a :data:`Verdict.CONFLICT`; nothing below such a destination directory is deleted.

Objects a listing found but cannot transfer (a :class:`~shareferry.core.objects.Refusal`: a pipe,
a device, a name that cannot be carried) are :data:`Verdict.REFUSED` when at the source, with
the source's reason, or when the source has a file where the destination has such an object
(it is never replaced). One only at the destination is left alone (never deleted), and so is
everything at the destination below a refused source directory. A source directory that could
not be listed stops the sync: its listing is incomplete, so nothing may be deleted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from shareferry.core.backends.base import Backend
from shareferry.core.errors import NotFoundError, TransferError
from shareferry.core.filters import ObjectFilter
from shareferry.core.objects import Refusal, Refused, StoredObject, modified_time
from shareferry.core.planning.march import Pair, march
from shareferry.core.planning.shard import Shard
from shareferry.core.printable import printable


class Verdict(StrEnum):
    COPY = "copy"
    UNCHANGED = "unchanged"
    DELETE = "delete"
    CHECK = "check"  # compare hashes the listings did not carry
    CONFLICT = "conflict"
    REFUSED = "refused"  # listed but not copiable: reported (skipped or failed), never replaced
    NEWER_AT_DESTINATION = "newer at destination"  # differs and is newer there: kept, counted, reported


#: Why a file is left alone as :data:`Verdict.NEWER_AT_DESTINATION` (its ``--report`` reason).
NEWER_AT_DESTINATION = "skipped: the destination is newer"
#: The same, when the two times agree only to the second (one side knows whole seconds only) and
#: the files differ: the destination may have been written after the source in that second, so
#: it is kept (as AzCopy keeps it) rather than risk replacing an edit with an older version.
SAME_SECOND_AT_DESTINATION = (
    "skipped: the destination may be newer (written in the same second as the source)"
)


class Compare(StrEnum):
    TIME = "time"  # modification times (AzCopy's default)
    HASH = "hash"  # MD5, falling back to time
    MIRROR = "mirror"  # anything not known to be identical


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    reason: str


def write_time(obj: StoredObject, *, smb_times: bool) -> datetime | None:
    """The time that says which side is newer: the last modified time, or with ``smb_times`` an
    Azure file's SMB last-write time (see the module docstring)."""
    return modified_time(obj, smb_times=smb_times)


def judge_files(
    source: StoredObject, destination: StoredObject, compare: Compare, *, smb_times: bool
) -> Judgement:
    """The verdict on a file present on both sides (pure: what the listings say; see the module
    docstring). ``smb_times``: compare Azure files' SMB last-write times (``--preserve-smb-info``)."""
    if compare is Compare.TIME:
        return judge_times(source, destination, smb_times=smb_times)
    if compare is Compare.MIRROR and source.size != destination.size:  # newer destination or not
        return Judgement(Verdict.COPY, f"sizes differ ({source.size} vs {destination.size} bytes)")
    if source.md5 is not None and destination.md5 is not None:
        return judge_hashes(
            source, destination, source_md5=source.md5, destination_md5=destination.md5, smb_times=smb_times
        )
    if compare is Compare.HASH:
        return Judgement(Verdict.CHECK, "MD5 not in the listing")
    source_time = write_time(source, smb_times=smb_times)
    if source_time is not None and source_time == write_time(destination, smb_times=smb_times):
        return Judgement(Verdict.UNCHANGED, "same size and write time")
    return Judgement(Verdict.COPY, "not known to be identical (--mirror-mode)")


def judge_hashes(
    source: StoredObject,
    destination: StoredObject,
    *,
    source_md5: bytes | None,
    destination_md5: bytes | None,
    smb_times: bool,
) -> Judgement:
    """``--compare-hash`` (and ``--mirror-mode`` where both listings carry MD5s): copy when the
    contents differ, whatever the times; the times decide when either MD5 is unknown. Files of
    different sizes differ whatever their MD5s (a caller may pass any non-``None`` value for an
    MD5 it knows exists but did not compute)."""
    if source_md5 is None or destination_md5 is None:
        return judge_times(source, destination, smb_times=smb_times)
    if source.size != destination.size:
        return Judgement(Verdict.COPY, f"MD5 differs (sizes {source.size} vs {destination.size} bytes)")
    if source_md5 == destination_md5:
        return Judgement(Verdict.UNCHANGED, "same MD5")
    return Judgement(Verdict.COPY, "MD5 differs")


def judge_times(source: StoredObject, destination: StoredObject, *, smb_times: bool) -> Judgement:
    """AzCopy's rule: copy when the source is newer (or a time is unknown); a newer destination
    is never overwritten (see the module docstring)."""
    source_time = write_time(source, smb_times=smb_times)
    destination_time = write_time(destination, smb_times=smb_times)
    if source_time is None or destination_time is None:
        return Judgement(Verdict.COPY, "a modification time is unknown")
    coarse = source_time.microsecond == 0 or destination_time.microsecond == 0
    if coarse:
        # One side only knows whole seconds (an HTTP date): compare at that precision, so a
        # file uploaded in the second it was written is not found newer than its copy.
        source_time = source_time.replace(microsecond=0)
        destination_time = destination_time.replace(microsecond=0)
    if source_time > destination_time:
        return Judgement(Verdict.COPY, "source is newer")
    difference = _known_difference(source, destination)
    if source_time == destination_time:
        if difference is None:
            return Judgement(Verdict.UNCHANGED, "same write time")
        if coarse:  # which was written last in that second is unknown: never risk an edit
            return Judgement(Verdict.NEWER_AT_DESTINATION, SAME_SECOND_AT_DESTINATION)
        return Judgement(Verdict.COPY, f"same write time, but {difference}")
    if difference is not None:
        return Judgement(Verdict.NEWER_AT_DESTINATION, NEWER_AT_DESTINATION)
    return Judgement(Verdict.UNCHANGED, "destination is newer (same size)")


def _known_difference(source: StoredObject, destination: StoredObject) -> str | None:
    """How the two files are known to differ by what the listings say, or ``None``."""
    if source.size != destination.size:
        return f"sizes differ ({source.size} vs {destination.size} bytes)"
    if source.md5 is not None and destination.md5 is not None and source.md5 != destination.md5:
        return "MD5 differs"
    return None


@dataclass(frozen=True, slots=True)
class SyncItem:
    """One judged path (relative to both roots)."""

    relative: str
    source: StoredObject | None
    destination: StoredObject | None
    verdict: Verdict
    reason: str

    @property
    def is_dir(self) -> bool:
        present = self.source if self.source is not None else self.destination
        return present is not None and present.is_dir


@dataclass(frozen=True, slots=True)
class SyncScope:
    """What takes part: the filters, recursion, the shard, and whether folders count."""

    object_filter: ObjectFilter
    recursive: bool = True
    shard: Shard | None = None
    folders: bool = True  # both backends have real directories
    smb_times: bool = False  # compare Azure files' SMB last-write times (--preserve-smb-info)


async def _listing(
    backend: Backend, root: str, *, recursive: bool, missing_ok: bool
) -> AsyncIterator[StoredObject]:
    """``root``'s listing; with ``missing_ok`` (the destination) a missing ``root`` is an empty
    tree and a directory removed while it is walked is walked as empty (see
    :meth:`Backend.list`), but a missing share or container is still an error (nothing could be
    written there)."""
    started = False
    try:
        async for obj in backend.list(root, recursive=recursive, skip_vanished=missing_ok):
            started = True
            yield obj
    except NotFoundError:
        if not missing_ok or started:  # after the first entry: not the root, so never "empty"
            raise
        try:
            container = await backend.stat("")
        except NotFoundError:
            container = None
        if container is None:
            raise NotFoundError(
                f"{backend.describe('')} does not exist: create it first (shareferry make)"
            ) from None


async def plan_sync(
    source: Backend,
    source_root: str,
    *,
    destination: Backend,
    destination_root: str,
    scope: SyncScope,
    compare: Compare,
) -> AsyncIterator[SyncItem]:
    """Judge every path of the two trees, streaming (see the module docstring).

    The source root must be a directory (:class:`NotFoundError` otherwise, from the listing); a
    missing destination root is an empty tree. A listing error propagates: the caller must then
    delete nothing.
    """
    source_root = source_root.strip("/")
    destination_root = destination_root.strip("/")
    conflict_below: str | None = None
    pairs = march(
        _listing(source, source_root, recursive=scope.recursive, missing_ok=False),
        _listing(destination, destination_root, recursive=scope.recursive, missing_ok=True),
        source_root=source_root,
        destination_root=destination_root,
    )
    async for pair in pairs:
        if conflict_below is not None and pair.relative.startswith(conflict_below):
            if pair.source is not None:
                yield SyncItem(
                    pair.relative,
                    pair.source,
                    None,
                    Verdict.CONFLICT,
                    "a parent is a file at the destination",
                )
            continue
        conflict_below = None
        _refuse_incomplete(source, pair.source)
        _refuse_incomplete(destination, pair.destination)
        item = judge_pair(pair, scope, compare)
        if item is None:
            continue
        protect = item.verdict is Verdict.REFUSED and pair.source is not None and pair.source.is_dir
        conflicting = (
            item.verdict is Verdict.CONFLICT and pair.destination is not None and pair.destination.is_dir
        )
        if protect or conflicting:
            conflict_below = pair.relative + "/"
        yield item


def _refuse_incomplete(backend: Backend, obj: StoredObject | None) -> None:
    """Stop the sync at a directory its listing could not read: what is below it is unknown,
    so nothing may be judged absent (and deleted) on the strength of that listing."""
    if obj is None or not obj.is_dir or obj.refusal is None or obj.refusal.kind is not Refused.UNREADABLE:
        return
    raise TransferError(
        f"{printable(backend.describe(obj.path))}: {obj.refusal.reason}; the listing is incomplete, "
        "so the sync stops before deleting anything"
    )


def judge_pair(pair: Pair, scope: SyncScope, compare: Compare) -> SyncItem | None:
    present = pair.source if pair.source is not None else pair.destination
    assert present is not None
    if not _in_scope(present, pair.relative, scope):
        return None
    source, destination = pair.source, pair.destination
    if source is None and destination is not None and destination.refusal is not None:
        return None  # only at the destination, and not something to delete: left alone
    refused = _judge_refused(pair)
    if refused is not None:
        return refused
    if source is not None and destination is not None and source.is_dir != destination.is_dir:
        what = "a directory" if source.is_dir else "a file"
        other = "a directory" if destination.is_dir else "a file"
        return SyncItem(
            pair.relative,
            source,
            destination,
            Verdict.CONFLICT,
            f"{what} at the source, {other} at the destination",
        )
    if source is None:
        # Every shard meets every directory; one deletes it (and counts it): its owner by the
        # same hash as files. Another shard may still be emptying it then; the owner keeps it,
        # and the next sync removes it.
        if (
            destination is not None
            and destination.is_dir
            and scope.shard is not None
            and not scope.shard.owns(pair.relative)
        ):
            return None
        return SyncItem(pair.relative, None, destination, Verdict.DELETE, "not at the source")
    if destination is None:
        return SyncItem(pair.relative, source, None, Verdict.COPY, "not at the destination")
    if source.is_dir:
        return SyncItem(pair.relative, source, destination, Verdict.UNCHANGED, "directory exists")
    judgement = judge_files(source, destination, compare, smb_times=scope.smb_times)
    return SyncItem(pair.relative, source, destination, judgement.verdict, judgement.reason)


def _judge_refused(pair: Pair) -> SyncItem | None:
    """The verdict when either side is an object that cannot be transferred (see the module
    docstring); ``None`` when neither is."""
    source, destination = pair.source, pair.destination
    if source is not None and source.refusal is not None:
        return SyncItem(pair.relative, source, destination, Verdict.REFUSED, source.refusal.reason)
    if source is None or destination is None or destination.refusal is None:
        return None
    if source.is_dir:
        return _conflict(pair, source, destination)
    reason = f"not replaced: the destination is {destination.refusal.reason}"
    kept = replace(source, refusal=Refusal(Refused.SPECIAL, reason))
    return SyncItem(pair.relative, kept, destination, Verdict.REFUSED, reason)


def _conflict(pair: Pair, source: StoredObject, destination: StoredObject) -> SyncItem:
    return SyncItem(
        pair.relative,
        source,
        destination,
        Verdict.CONFLICT,
        f"a directory at the source, an object that cannot be replaced at the destination "
        f"({destination.refusal.reason if destination.refusal else 'a file'})",
    )


def _in_scope(obj: StoredObject, relative: str, scope: SyncScope) -> bool:
    if obj.is_dir and obj.refusal is not None:  # reported whether or not folders are copied
        owned = scope.shard is None or scope.shard.owns(relative)
        return scope.recursive and owned and scope.object_filter.may_contain(relative)
    if obj.is_dir:
        return scope.recursive and scope.folders and scope.object_filter.accepts_dir(relative)
    if scope.shard is not None and not scope.shard.owns(relative):
        return False
    return scope.object_filter.accepts_file(obj, relative)
