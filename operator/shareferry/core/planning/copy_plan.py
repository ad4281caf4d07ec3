"""Expand a copy's source into a stream of transfers, laid out the way ``azcopy copy`` does.

Where things land (the ``azcopy copy`` reference, checked against AzCopy's path logic):

* A source naming a FILE is one transfer. It goes INTO the destination under its own name when
  the destination is a directory: an existing one (``stat`` says so), one the caller marks with
  ``destination_is_dir_hint`` (a trailing ``/``, a share or container root), or the destination
  root itself. Otherwise the destination path is the new file's name.
* A source naming a DIRECTORY needs ``recursive`` and is recreated below the destination:
  ``dir`` copied to ``dest`` gives ``dest/dir/...`` whether or not ``dest`` exists yet. The root
  of a backend (``source_path == ""``) is recreated under its own name too: a container
  ``photos`` downloaded to ``/data`` gives ``/data/photos/...``. The name comes from
  ``source_root_name``, else from ``describe("")`` (the last segment of a URL's path, or its
  host when the path is empty; a local path's last segment). One exception, as in AzCopy: a
  share or container root copied to a share or container root puts the contents straight in.
  Every non-local backend counts as a service for that rule.
* ``dir/*`` copies the CONTENTS of ``dir`` without the directory itself; without ``recursive``
  only the files directly in ``dir``.
* Other wildcards (``*`` only; ``?`` and ``[`` are ordinary characters in a source) match names
  one segment at a time. In the last segment (``dir/my*.txt``) they work for any source (AzCopy
  takes only a trailing ``/*`` in a URL; matching a last segment costs one listing, so
  ShareFerry allows it); before it (``my*/*.txt``) for local sources only, as in AzCopy.
  Matches land below the destination (always taken as a directory) by their path relative to
  the part before the first wildcard: ``logs/2024*/a.txt`` to ``dest`` gives
  ``dest/2024-01/a.txt``. A matched directory brings the files directly in it, and with
  ``recursive`` everything below it. ``--include-path`` cannot be combined with such wildcards
  (AzCopy refuses that too).

Filters see paths relative to the source root: the named directory, the directory before
``/*``, or the part before the first wildcard; a single file is judged by its name. Folders
(``is_dir`` transfers, which recreate empty directories and carry folder properties) are
planned only when both backends have folders, ``recursive`` is set and no file-only filter
(pattern, date) is in force; the root of a ``/*`` or wildcard copy is not one of them. A folder
comes before its contents.

Streaming: transfers are yielded while the source is listed; nothing accumulates. With path
filters the walk goes one directory level at a time so excluded subtrees are never listed;
without them it uses the backend's recursive listing (one flat listing is far cheaper on Blob).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

from shareferry.core.backends.base import Backend
from shareferry.core.errors import NotFoundError, ShareFerryError, TransferError, UnreadableError, UsageError
from shareferry.core.filters import ObjectFilter
from shareferry.core.objects import Refusal, Refused, StoredObject
from shareferry.core.planning.shard import Shard
from shareferry.core.redact import redact

WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class Transfer:
    """One object to create at the destination."""

    source: StoredObject  # path relative to the source backend root
    destination: str  # path relative to the destination backend root
    is_dir: bool


def _join(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def _below(directory: str, path: str) -> str:
    """``path`` relative to ``directory`` (both relative to the same backend root)."""
    return path[len(directory) + 1 :] if directory else path


def _name_matcher(segment: str) -> Callable[[str], bool]:
    """A case-sensitive matcher for one path segment where ``*`` is any run of characters."""
    regex = re.compile("".join(".*" if char == WILDCARD else re.escape(char) for char in segment), re.DOTALL)
    return lambda name: regex.fullmatch(name) is not None


def _root_name(backend: Backend, explicit: str | None) -> str:
    """The name a backend's root directory takes when it is recreated at a destination."""
    if explicit is not None:
        return explicit.strip("/")
    described = backend.describe("")
    if "://" not in described:
        return described.rstrip("/").rpartition("/")[2]
    url = urlsplit(described)
    return unquote(url.path.rstrip("/").rpartition("/")[2]) or url.netloc


def _not_found(backend: Backend, path: str) -> NotFoundError:
    return NotFoundError(f"source not found: {redact(backend.describe(path))}")


#: What makes one directory of a walk fail without failing the walk (a credential refused by
#: a service still stops the job: every other request would be refused too).
_UNWALKABLE = (TransferError, NotFoundError, UnreadableError)


@dataclass(slots=True)
class _Level:
    """One open directory of a pruned walk: its listing, its path relative to the root and the
    first entry, read ahead to learn whether the directory can be read at all."""

    listing: AsyncIterator[StoredObject]
    relative: str
    directory: StoredObject | None = None
    top: bool = False
    pending: StoredObject | None = None

    def take_pending(self) -> StoredObject | None:
        pending, self.pending = self.pending, None
        return pending


async def _close(listing: AsyncIterator[StoredObject]) -> None:
    close = getattr(listing, "aclose", None)
    if close is not None:
        await close()


@dataclass(frozen=True, slots=True)
class _Planner:
    source: Backend
    object_filter: ObjectFilter
    shard: Shard | None
    recursive: bool
    folders: bool

    def file(self, obj: StoredObject, relative: str, dest_root: str) -> Transfer | None:
        if not self.object_filter.accepts_file(obj, relative):
            return None
        if self.shard is not None and not self.shard.owns(obj.path):
            return None
        return Transfer(source=obj, destination=_join(dest_root, relative), is_dir=False)

    def folder(self, obj: StoredObject, relative: str, dest_root: str) -> Transfer | None:
        if obj.refusal is not None:
            return self.refused_folder(obj, relative, dest_root)
        if not self.folders or not self.object_filter.accepts_dir(relative):
            return None
        return Transfer(source=obj, destination=_join(dest_root, relative), is_dir=True)

    def refused_folder(self, obj: StoredObject, relative: str, dest_root: str) -> Transfer | None:
        """A directory that cannot be copied (or walked) is reported whether or not folders are
        copied, when something below it could have passed the filters; by one shard only."""
        if not self.object_filter.may_contain(relative):
            return None
        if self.shard is not None and not self.shard.owns(obj.path):
            return None
        return Transfer(source=obj, destination=_join(dest_root, relative), is_dir=True)

    def planned(self, obj: StoredObject, relative: str, dest_root: str) -> Transfer | None:
        return (self.folder if obj.is_dir else self.file)(obj, relative, dest_root)

    async def walk(
        self, directory: str, relative: str, dest_root: str, *, recursive: bool
    ) -> AsyncIterator[Transfer]:
        """Everything below ``directory`` (whose path relative to the source root is
        ``relative``): the whole tree when ``recursive``, else only the files directly in it.
        With path filters, one level at a time (excluded subtrees are never listed), from a
        stack of open levels: no depth of tree makes the walk recurse."""
        if recursive and not self.object_filter.prunes:
            # No path filters: may_contain is always true, so one flat listing serves.
            async for obj in self.source.list(directory, recursive=True):
                planned = self.planned(obj, _join(relative, _below(directory, obj.path)), dest_root)
                if planned is not None:
                    yield planned
            return
        levels = [_Level(self.source.list(directory, recursive=False), relative, top=True)]
        try:
            while levels:
                level = levels[-1]
                pending = level.take_pending()
                try:
                    obj = pending if pending is not None else await anext(level.listing)
                except StopAsyncIteration:
                    levels.pop()
                    continue
                except _UNWALKABLE as error:
                    if level.top or level.directory is None:
                        raise
                    levels.pop()  # failed part-way: report the directory, go on with the rest
                    planned = self.unwalkable(level.directory, level.relative, dest_root, error)
                    if planned is not None:
                        yield planned
                    continue
                path = _join(level.relative, obj.name)
                if not obj.is_dir:
                    planned = self.file(obj, path, dest_root)
                    if planned is not None:
                        yield planned
                    continue
                if not (recursive and self.object_filter.may_contain(path)):
                    continue
                below: _Level | None = None
                if obj.refusal is None:  # read into it before planning it: it may not be readable
                    below = _Level(self.source.list(obj.path, recursive=False), path, directory=obj)
                    try:
                        below.pending = await anext(below.listing)
                    except StopAsyncIteration:
                        below = None  # empty
                    except _UNWALKABLE as error:
                        await _close(below.listing)
                        planned = self.unwalkable(obj, path, dest_root, error)
                        if planned is not None:
                            yield planned
                        continue
                planned = self.folder(obj, path, dest_root)
                if planned is not None:
                    yield planned
                if below is not None:
                    levels.append(below)
        finally:
            for level in reversed(levels):
                await _close(level.listing)

    def unwalkable(
        self, directory: StoredObject, relative: str, dest_root: str, error: ShareFerryError
    ) -> Transfer | None:
        """The failed transfer of a directory whose listing failed (the rest of the walk goes on)."""
        unread = replace(directory, refusal=Refusal(Refused.UNREADABLE, f"cannot list it: {error}"))
        return self.refused_folder(unread, relative, dest_root)

    async def glob(
        self, directory: str, relative: str, segments: list[str], dest_root: str
    ) -> AsyncIterator[Transfer]:
        """Objects below ``directory`` matching ``segments`` one level each, expanded."""
        head, rest = segments[0], segments[1:]
        if WILDCARD in head:
            matches = _name_matcher(head)
            async for obj in self.source.list(directory, recursive=False):
                if matches(obj.name):
                    async for transfer in self.matched(obj, _join(relative, obj.name), rest, dest_root):
                        yield transfer
            return
        found = await self.source.stat(_join(directory, head))
        if found is not None:
            async for transfer in self.matched(found, _join(relative, head), rest, dest_root):
                yield transfer

    async def matched(
        self, obj: StoredObject, relative: str, rest: list[str], dest_root: str
    ) -> AsyncIterator[Transfer]:
        if rest:
            if obj.is_dir and self.object_filter.may_contain(relative):
                async for transfer in self.glob(obj.path, relative, rest, dest_root):
                    yield transfer
            return
        if not obj.is_dir:
            planned = self.file(obj, relative, dest_root)
            if planned is not None:
                yield planned
            return
        if not self.object_filter.may_contain(relative):
            return
        planned = self.folder(obj, relative, dest_root)
        if planned is not None:
            yield planned
        if obj.refusal is None:
            async for transfer in self.walk(obj.path, relative, dest_root, recursive=self.recursive):
                yield transfer


async def _existing_dir(source: Backend, path: str) -> StoredObject:
    """The directory at ``path``; :class:`NotFoundError` when there is none."""
    obj = await source.stat(path)
    if obj is None and path == "":
        return StoredObject(path="", is_dir=True)  # a root without folders still lists
    if obj is None or not obj.is_dir:
        raise _not_found(source, path)
    return obj


async def plan_copy(
    source: Backend,
    source_path: str,
    *,
    destination: Backend,
    destination_path: str,
    destination_is_dir_hint: bool,
    recursive: bool,
    object_filter: ObjectFilter,
    shard: Shard | None = None,
    source_root_name: str | None = None,
) -> AsyncGenerator[Transfer, None]:
    """The transfers that copy ``source_path`` to ``destination_path`` (see the module rules).

    An async generator: ``aclose()`` it to stop early and release the open listings.

    Raises :class:`NotFoundError` when the source (or the directory before a wildcard) is
    missing, :class:`UsageError` for a directory without ``recursive`` and for wildcards a
    source cannot take. Files outside ``shard`` are left out; folders are in every shard.
    """
    source_path = source_path.strip("/")
    dest_is_dir = destination_is_dir_hint or destination_path.endswith("/")
    destination_path = destination_path.strip("/")
    planner = _Planner(
        source=source,
        object_filter=object_filter,
        shard=shard,
        recursive=recursive,
        folders=recursive
        and source.capabilities.folders
        and destination.capabilities.folders
        and not object_filter.file_only,
    )
    segments = source_path.split("/") if source_path else []
    wild = [index for index, segment in enumerate(segments) if WILDCARD in segment]

    if not wild:
        async for transfer in _plan_plain(
            planner,
            source_path,
            destination=destination,
            destination_path=destination_path,
            dest_is_dir=dest_is_dir,
            source_root_name=source_root_name,
        ):
            yield transfer
        return

    first = wild[0]
    base = "/".join(segments[:first])
    if first == len(segments) - 1 and segments[-1] == WILDCARD:
        await _existing_dir(source, base)  # dir/*: the contents, without the directory
        async for transfer in planner.walk(base, "", destination_path, recursive=recursive):
            yield transfer
        return
    if first < len(segments) - 1 and source.kind != "local":
        raise UsageError(
            f"wildcards in {redact(source.describe(source_path))} are only allowed in the last "
            "segment of a URL (or as a trailing /*): encode a literal * as %2A"
        )
    if object_filter.include_paths:
        raise UsageError("--include-path cannot be combined with wildcards in the source")
    await _existing_dir(source, base)
    async for transfer in planner.glob(base, "", segments[first:], destination_path):
        yield transfer


async def _plan_plain(
    planner: _Planner,
    source_path: str,
    *,
    destination: Backend,
    destination_path: str,
    dest_is_dir: bool,
    source_root_name: str | None,
) -> AsyncIterator[Transfer]:
    """A source without wildcards: one file, or a directory recreated at the destination."""
    source = planner.source
    obj = await source.stat(source_path)
    if obj is None and source_path == "":
        obj = StoredObject(path="", is_dir=True)
    if obj is None:
        raise _not_found(source, source_path)
    if obj.refusal is not None:  # named but not copiable (a pipe, a bad name): say why
        if obj.is_dir:
            planned = planner.refused_folder(obj, "", _join(destination_path, obj.name))
        else:
            planned = planner.file(obj, obj.name, destination_path)
        if planned is not None:
            yield planned
        return

    if not obj.is_dir:
        if not dest_is_dir and destination_path:
            found = await destination.stat(destination_path)
            dest_is_dir = found is not None and found.is_dir
        target = (
            _join(destination_path, obj.name) if dest_is_dir or not destination_path else destination_path
        )
        planned = planner.file(obj, obj.name, "")
        if planned is not None:
            yield Transfer(source=obj, destination=target, is_dir=False)
        return

    if not planner.recursive:
        raise UsageError(
            f"{redact(source.describe(source_path))} is a directory: use --recursive "
            "(or end the source with /* to copy only the files directly in it)"
        )
    if source_path:
        top = obj.name
    elif source.kind != "local" and not destination_path and destination.kind != "local":
        top = ""  # share/container root to share/container root: the contents go straight in
    else:
        top = _root_name(source, source_root_name)
    dest_root = _join(destination_path, top)
    if top:
        planned = planner.folder(obj, "", dest_root)
        if planned is not None:
            yield planned
    async for transfer in planner.walk(source_path, "", dest_root, recursive=True):
        yield transfer
