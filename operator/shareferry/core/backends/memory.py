"""An in-memory backend: the reference implementation of the backend contract.

It keeps files (bytes, properties, Content-MD5, time) and directories in dictionaries and is
as strict as a service would be: writes larger than ``max_range`` are refused, writers stage in
a buffer and commit atomically, a file and a directory cannot share a path. The conformance
suite holds the other backends to what this one does; the engine's unit tests use it as a fast,
inspectable source or destination. Listings report names, sizes and times only (as Azure Files
does); :meth:`MemoryBackend.stat` reports everything stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from shareferry.core.backends.base import BackendKind, Capabilities
from shareferry.core.errors import NotFoundError, TransferError
from shareferry.core.objects import StoredObject, WriteProps

_WriterState = Literal["open", "committed", "discarded"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _segments(path: str) -> tuple[str, ...]:
    """The components of a relative path; the same refusals as the local backend."""
    if "\x00" in path or path.startswith("/"):
        raise TransferError(f"refusing a path outside the root: {path!r}")
    parts = tuple(part for part in path.split("/") if part not in ("", "."))
    if ".." in parts:
        raise TransferError(f"refusing a path outside the root: {path!r}")
    return parts


@dataclass(slots=True)
class _File:
    data: bytes
    props: WriteProps
    last_modified: datetime
    md5: bytes | None


@dataclass(slots=True)
class _Dir:
    props: WriteProps | None
    last_modified: datetime
    children: set[str] = field(default_factory=set)


class MemoryWriter:
    """A file staged in a buffer until :meth:`commit`; see :class:`~.base.Writer`."""

    def __init__(self, *, backend: MemoryBackend, path: str, size: int, props: WriteProps) -> None:
        self._backend = backend
        self._path = path
        self._buffer = bytearray(size)
        self._props = props
        self._state: _WriterState = "open"

    async def write(self, offset: int, data: bytes) -> None:
        if offset < 0:
            raise ValueError(f"negative offset {offset}")
        if len(data) > self._backend.capabilities.max_range:
            raise ValueError(f"a write of {len(data)} bytes exceeds max_range")
        self._check_open("write")
        await asyncio.sleep(0)  # let concurrent writers interleave, as they would over a network
        end = offset + len(data)
        if end > len(self._buffer):
            self._buffer.extend(bytes(end - len(self._buffer)))
        self._buffer[offset:end] = data

    async def write_from_url(self, offset: int, url: str, source_offset: int, length: int) -> None:
        raise TransferError(f"cannot write {self._backend.describe(self._path)} from a URL")

    async def commit(self, md5: bytes | None) -> None:
        self._check_open("commit")
        self._backend.put(self._path, bytes(self._buffer), props=self._props, md5=md5)
        self._state = "committed"
        self._buffer = bytearray()

    async def abort(self) -> None:
        if self._state == "open":
            self._state = "discarded"
            self._buffer = bytearray()

    def _check_open(self, action: str) -> None:
        if self._state != "open":
            raise TransferError(
                f"cannot {action} {self._backend.describe(self._path)}: the writer is already {self._state}"
            )


class MemoryBackend:
    """Files and directories in dictionaries. ``clock`` gives the time stamped on each change
    (tests pass a fixed or stepping one)."""

    kind: BackendKind = "memory"
    capabilities: Capabilities = Capabilities(folders=True, smb=True, stored_md5=True)

    def __init__(self, *, name: str = "memory", clock: Callable[[], datetime] = _utc_now) -> None:
        self._name = name
        self._clock = clock
        self._files: dict[str, _File] = {}
        self._dirs: dict[str, _Dir] = {"": _Dir(props=None, last_modified=clock())}

    def describe(self, path: str = "") -> str:
        return f"memory://{self._name}/{path}"

    def source_url(self, path: str) -> str | None:
        return None

    async def close(self) -> None:
        return None

    # ---- seeding, for tests

    def put(
        self,
        path: str,
        data: bytes,
        *,
        props: WriteProps | None = None,
        md5: bytes | None = None,
        last_modified: datetime | None = None,
    ) -> None:
        """Store a whole file at once (creating parents), as a committed writer would; tests use
        it to seed a source. ``last_modified`` defaults to the clock."""
        parts = _segments(path)
        if not parts:
            raise TransferError("cannot write a file at the root")
        key = "/".join(parts)
        if key in self._dirs:
            raise TransferError(f"cannot write {self.describe(key)}: a directory is in the way")
        self._ensure_dirs(parts[:-1], props=None)
        when = last_modified or self._clock()
        self._files[key] = _File(data=data, props=props or WriteProps(), last_modified=when, md5=md5)
        self._dirs["/".join(parts[:-1])].children.add(parts[-1])

    # ---- the contract

    async def stat(self, path: str) -> StoredObject | None:
        key = "/".join(_segments(path))
        if (file := self._files.get(key)) is not None:
            return StoredObject(
                path=key,
                is_dir=False,
                size=len(file.data),
                last_modified=file.last_modified,
                md5=file.md5,
                content=file.props.content,
                metadata=dict(file.props.metadata),
                smb=file.props.smb,
            )
        if (folder := self._dirs.get(key)) is not None:
            props = folder.props or WriteProps()
            return StoredObject(
                path=key,
                is_dir=True,
                last_modified=folder.last_modified,
                metadata=dict(props.metadata),
                smb=props.smb,
            )
        return None

    async def read(self, path: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"negative range {offset}+{length}")
        key = "/".join(_segments(path))
        file = self._files.get(key)
        if file is None:
            if key in self._dirs:
                raise TransferError(f"cannot read {self.describe(key)}: it is a directory")
            raise NotFoundError(f"no such file: {self.describe(key)}")
        await asyncio.sleep(0)
        return file.data[offset : offset + length]

    async def list(
        self, path: str, *, recursive: bool, skip_vanished: bool = False
    ) -> AsyncIterator[StoredObject]:
        top = "/".join(_segments(path))
        if top not in self._dirs:
            raise NotFoundError(f"no such directory: {self.describe(top)}")
        levels = [self._children(top)]
        while levels:
            child = next(levels[-1], None)
            if child is None:
                levels.pop()
                continue
            if (file := self._files.get(child)) is not None:
                yield StoredObject(
                    path=child, is_dir=False, size=len(file.data), last_modified=file.last_modified
                )
            elif (folder := self._dirs.get(child)) is not None:
                yield StoredObject(path=child, is_dir=True, last_modified=folder.last_modified)
                if recursive and child in self._dirs:
                    levels.append(self._children(child))
                elif recursive and not skip_vanished:  # gone while the caller worked
                    raise NotFoundError(f"no such directory: {self.describe(child)}")
            await asyncio.sleep(0)

    async def open_writer(self, path: str, *, size: int, props: WriteProps) -> MemoryWriter:
        parts = _segments(path)
        if not parts:
            raise TransferError("cannot write a file at the root")
        key = "/".join(parts)
        if key in self._dirs:
            raise TransferError(f"cannot write {self.describe(key)}: a directory is in the way")
        self._check_no_file_above(parts[:-1])
        return MemoryWriter(backend=self, path=key, size=size, props=props)

    async def make_dir(self, path: str, props: WriteProps | None = None) -> None:
        self._ensure_dirs(_segments(path), props=props)

    async def delete(self, path: str) -> None:
        parts = _segments(path)
        if not parts:
            raise TransferError(f"refusing to delete the root {self.describe()}")
        key = "/".join(parts)
        parent = self._dirs.get("/".join(parts[:-1]))
        if key in self._files:
            del self._files[key]
        elif (folder := self._dirs.get(key)) is not None:
            if folder.children:
                raise TransferError(f"cannot delete {self.describe(key)}: the directory is not empty")
            del self._dirs[key]
        else:
            raise NotFoundError(f"nothing to delete at {self.describe(key)}")
        if parent is not None:
            parent.children.discard(parts[-1])

    # ---- internals

    def _children(self, key: str) -> Iterator[str]:
        """The paths of a directory's entries, sorted by name, as they are now."""
        prefix = f"{key}/" if key else ""
        return iter([prefix + name for name in sorted(self._dirs[key].children)])

    def _check_no_file_above(self, parts: tuple[str, ...]) -> None:
        for depth in range(1, len(parts) + 1):
            above = "/".join(parts[:depth])
            if above in self._files:
                raise TransferError(f"cannot create directory {self.describe(above)}: a file is in the way")

    def _ensure_dirs(self, parts: tuple[str, ...], *, props: WriteProps | None) -> None:
        """Create the directory ``parts`` and its parents; ``props`` go on the last one."""
        self._check_no_file_above(parts)
        for depth in range(1, len(parts) + 1):
            key = "/".join(parts[:depth])
            if key not in self._dirs:
                self._dirs[key] = _Dir(props=None, last_modified=self._clock())
                self._dirs["/".join(parts[: depth - 1])].children.add(parts[depth - 1])
        if props is not None:
            self._dirs["/".join(parts)].props = props
