"""Local files as a backend: one directory tree, read and written with plain OS calls.

Every path is taken relative to the root; ``..`` segments, absolute paths and NUL are refused,
and anything that changes the tree (writers, ``make_dir``, ``delete``) also refuses a path whose
parent resolves (through symlinks) outside the root. Writers stage into a hidden temporary file
in the target directory (``.<name>.shareferry-<token>.partial``, see :mod:`.staging`: never
listed, named alike by every run of one job) and rename it over the final
name on commit, so readers see either the old file or the whole new one. A character device
or named pipe at the final name (``/dev/null``, ``/dev/stdout``, a FIFO) is written into in
order instead (:class:`StreamWriter`), never replaced; any other special file is refused.

Blocking calls run in worker threads, one hop per operation (a whole directory is scanned and
stat-ed in one hop); writes small enough to land in the page cache at once run inline.

A permission failure on one object is a :class:`TransferError` (that object fails and the job
goes on); a directory that cannot be listed at all is an :class:`UnreadableError` (a
:class:`CredentialError`). Listings report what they cannot use instead of leaving it out (see
:meth:`LocalBackend.list`): special files, unfollowed or broken links, names that are not valid
UTF-8 (listed as :func:`carried_name` gives them) and directories that cannot be read in the
middle of the walk (the listing is incomplete there: sync stops, copy reports the folder).
"""

# This module is the OS layer: plain os calls on str paths and descriptors, once per file or
# chunk, without building Path objects on the hot path.
# ruff: noqa: PTH103, PTH105, PTH106, PTH108, PTH112, PTH114, PTH116, PTH118, PTH120

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat as stat_mode
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from shareferry.core.backends.base import BackendKind, Capabilities
from shareferry.core.backends.staging import (
    MAX_STALE_NOTED,
    STAGING_REFUSAL,
    is_staging_name,
    staging_name,
    staging_token,
    stale_after,
)
from shareferry.core.errors import NotFoundError, TransferError, UnreadableError
from shareferry.core.objects import Refusal, Refused, StoredObject, WriteProps
from shareferry.core.printable import carried_name

MIB = 1024 * 1024
#: The largest single write: local disks take big writes happily.
LOCAL_MAX_RANGE = 64 * MIB
#: Writes up to this size go straight to the page cache on the event loop (no thread hop).
INLINE_WRITE_LIMIT = 64 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WriterState = Literal["open", "committed", "discarded"]


def mtime_of(st: os.stat_result) -> datetime:
    """The modification time of ``st`` as a UTC datetime (exact to the microsecond)."""
    return _EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000)


def _ns_since_epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _segments(path: str, *, refusal: str) -> tuple[str, ...]:
    """The components of a relative path; raises for anything that could leave the root."""
    if "\x00" in path:
        raise TransferError(f"{refusal}: {path!r} contains a NUL character")
    if path.startswith("/"):
        raise TransferError(f"{refusal}: {path} is an absolute path")
    parts = tuple(part for part in path.split("/") if part not in ("", "."))
    if ".." in parts:
        raise TransferError(f"{refusal}: {path} climbs out with '..'")
    return parts


@dataclass(frozen=True, slots=True)
class _Entry:
    """One listed object and what the walk needs to descend into it."""

    obj: StoredObject
    full: str
    identity: tuple[int, int]  # (st_dev, st_ino): a directory seen twice on one branch is a loop


@dataclass(slots=True)
class _Level:
    """One open directory of a walk: its remaining entries, sorted by name."""

    entries: Iterator[_Entry]
    identity: tuple[int, int]


class _SharedFd:
    """A file descriptor used by concurrent threads and closed only once none is using it
    (closing it under a running ``pwrite`` could let the number be reused by another file)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._users = 0
        self._closing = False
        self._lock = threading.Lock()

    def acquire(self) -> int | None:
        """The descriptor for one use, or ``None`` once closing has begun."""
        with self._lock:
            if self._closing:
                return None
            self._users += 1
            return self._fd

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._closing and self._users == 0:
                os.close(self._fd)

    def close(self) -> None:
        """Close now, or when the last user releases it; idempotent."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            if self._users == 0:
                os.close(self._fd)


class LocalWriter:
    """One file being staged under its temporary name; see :class:`~.base.Writer`."""

    def __init__(self, *, fd: int, temp: str, final: str, props: WriteProps, fsync: bool) -> None:
        self._fd = _SharedFd(fd)
        self._temp = temp
        self._final = final
        self._props = props
        self._fsync = fsync
        self._state: _WriterState = "open"
        self._lock = threading.Lock()

    @property
    def temp_path(self) -> str:
        """Where the bytes are staged until commit."""
        return self._temp

    async def write(self, offset: int, data: bytes) -> None:
        if offset < 0:
            raise ValueError(f"negative offset {offset}")
        if len(data) <= INLINE_WRITE_LIMIT:
            self._pwrite(offset, data)
        else:
            await asyncio.to_thread(self._pwrite, offset, data)

    async def write_from_url(self, offset: int, url: str, source_offset: int, length: int) -> None:
        raise TransferError(f"cannot write {self._final} from a URL: local files take bytes only")

    async def commit(self, md5: bytes | None) -> None:
        # Local files keep no Content-MD5; the engine reports the one it computed.
        await asyncio.to_thread(self._commit)

    async def abort(self) -> None:
        with contextlib.suppress(Exception):  # best effort by contract
            if self._lock.acquire(blocking=False):
                try:
                    self._discard_locked()
                finally:
                    self._lock.release()
            else:  # a commit is running in a thread (its caller was cancelled): wait off the loop
                await asyncio.to_thread(self._discard)

    def _pwrite(self, offset: int, data: bytes) -> None:
        fd = self._fd.acquire()
        if fd is None:
            raise TransferError(f"cannot write {self._final}: the writer is already {self._state}")
        try:
            view = memoryview(data)
            done = 0
            while done < len(view):
                done += os.pwrite(fd, view[done:], offset + done)
        except OSError as exc:
            self._discard()
            raise TransferError(f"cannot write {self._final}: {exc.strerror}") from exc
        finally:
            self._fd.release()

    def _commit(self) -> None:
        with self._lock:
            if self._state != "open":
                raise TransferError(f"cannot commit {self._final}: the writer is already {self._state}")
            fd = self._fd.acquire()
            if fd is None:  # a failed write closed it
                raise TransferError(f"cannot commit {self._final}: an earlier write failed")
            try:
                if self._fsync:
                    os.fsync(fd)
                if self._props.last_modified is not None:
                    os.utime(fd, ns=(time.time_ns(), _ns_since_epoch(self._props.last_modified)))
            except OSError as exc:
                self._fd.release()
                self._discard_locked()
                raise TransferError(f"cannot commit {self._final}: {exc.strerror}") from exc
            self._fd.release()
            self._fd.close()
            try:
                os.replace(self._temp, self._final)
            except OSError as exc:
                self._discard_locked()
                raise TransferError(f"cannot commit {self._final}: {exc.strerror}") from exc
            self._state = "committed"
            if self._fsync:
                _fsync_dir(os.path.dirname(self._final))

    def _discard(self) -> None:
        with self._lock:
            self._discard_locked()

    def _discard_locked(self) -> None:
        if self._state != "open":
            return
        self._state = "discarded"
        self._fd.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp)


class StreamWriter:
    """Bytes written in order into a character device or named pipe that stays where it is
    (``/dev/null``, ``/dev/stdout``, a FIFO): nothing is staged, renamed, truncated or timed,
    and each write waits for the one before it (a pipe cannot seek). See :class:`~.base.Writer`."""

    def __init__(self, *, fd: int, final: str, on_commit: Callable[[int], None]) -> None:
        self._fd: int | None = fd
        self._final = final
        self._on_commit = on_commit
        self._written = 0
        self._failed = False
        self._turn: asyncio.Condition | None = None

    async def write(self, offset: int, data: bytes) -> None:
        if self._turn is None:
            self._turn = asyncio.Condition()
        async with self._turn:
            await self._turn.wait_for(lambda: self._failed or self._written >= offset)
            try:
                if self._failed or self._written != offset:
                    raise TransferError(f"cannot write {self._final}: an earlier write failed")
                await asyncio.to_thread(self._write, data)
            finally:
                self._turn.notify_all()

    async def write_from_url(self, offset: int, url: str, source_offset: int, length: int) -> None:
        raise TransferError(f"cannot write {self._final} from a URL: local files take bytes only")

    async def commit(self, md5: bytes | None) -> None:
        self._close()
        if self._failed:
            raise TransferError(f"cannot commit {self._final}: an earlier write failed")
        self._on_commit(self._written)

    async def abort(self) -> None:
        self._close()

    def write_all(self, data: bytes) -> int:
        """Write ``data`` and close (blocking, for a whole small file); the length written."""
        try:
            self._write(data)
        finally:
            self._close()
        self._on_commit(self._written)
        return self._written

    def _write(self, data: bytes) -> None:
        fd = self._fd
        if fd is None:
            raise TransferError(f"cannot write {self._final}: the writer is closed")
        view = memoryview(data)
        try:
            while view:
                done = os.write(fd, view)
                view = view[done:]
                self._written += done
        except OSError as exc:
            self._failed = True
            raise TransferError(f"cannot write {self._final}: {exc.strerror}") from exc

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBackend:
    """A local directory tree. ``follow_symlinks`` makes listings and reads follow symbolic
    links (loops are skipped); without it symlinks are not listed and stat as missing.
    ``fsync`` makes each commit flush the file and its directory to disk."""

    kind: BackendKind = "local"
    capabilities: Capabilities = Capabilities(folders=True, smb=False, max_range=LOCAL_MAX_RANGE)

    def __init__(self, root: Path, *, follow_symlinks: bool = False, fsync: bool = False) -> None:
        self._root = root
        self._real_root = os.path.realpath(root)
        self._follow = follow_symlinks
        self._fsync = fsync
        #: The job this backend writes for: it names the staging files (see :mod:`.staging`).
        self.staging_key: str | None = None
        #: Stale staging files its listings met (paths below the root), for a sync to remove.
        self.stale_staging: list[str] = []
        self._stale_after = stale_after()
        #: Bytes written into each device or pipe (by real path): what :meth:`stat` reports as
        #: its size, so a length check after the copy sees what the reader was given.
        self._streamed: dict[str, int] = {}

    @property
    def root(self) -> Path:
        return self._root

    def describe(self, path: str = "") -> str:
        return os.path.join(self._root, path) if path else str(self._root)

    def source_url(self, path: str) -> str | None:
        return None

    async def close(self) -> None:
        return None

    # ---- reading

    async def stat(self, path: str) -> StoredObject | None:
        parts = _segments(path, refusal="refusing to read outside the source")
        return await asyncio.to_thread(self._stat, parts)

    async def read(self, path: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"negative range {offset}+{length}")
        parts = _segments(path, refusal="refusing to read outside the source")
        return await asyncio.to_thread(self._read, parts, offset, length)

    async def list(
        self, path: str, *, recursive: bool, skip_vanished: bool = False
    ) -> AsyncIterator[StoredObject]:
        """See :meth:`Backend.list`. Iterative (one open level per depth, however deep the tree).
        Every entry is listed, usable or not: a pipe, socket, device or unfollowed (or broken)
        symbolic link, a name that is not valid UTF-8 (listed under :func:`carried_name`) and a
        directory that cannot be read (or that vanished, unless ``skip_vanished``) come with a
        :class:`Refusal` and nothing below them, so the walk goes on past them."""
        parts = _segments(path, refusal="refusing to read outside the source")
        first, identity = await asyncio.to_thread(self._scan_top, parts)
        levels = [_Level(entries=iter(first), identity=identity)]
        while levels:
            entry = next(levels[-1].entries, None)
            if entry is None:
                levels.pop()
                continue
            obj = entry.obj
            if not (obj.is_dir and obj.refusal is None):
                yield obj
                continue
            if any(level.identity == entry.identity for level in levels):
                yield replace(obj, refusal=_LOOP)  # following it would never end
                continue
            if not recursive:
                yield obj
                continue
            try:
                below = await asyncio.to_thread(self._scan_nested, obj.path, entry.full, skip_vanished)
            except _Unreadable as unreadable:
                yield replace(obj, refusal=Refusal(Refused.UNREADABLE, str(unreadable)))
                continue
            yield obj
            levels.append(_Level(entries=iter(below), identity=entry.identity))

    # ---- writing

    async def open_writer(self, path: str, *, size: int, props: WriteProps) -> LocalWriter | StreamWriter:
        return await asyncio.to_thread(self._open_writer, path, size, props)

    async def write_whole(self, path: str, data: bytes, props: WriteProps) -> int:
        """Write a whole small file in one hand-off to a thread (what :meth:`open_writer`,
        one write and a commit do, with a discard on failure); the length that landed, read back.
        A small file otherwise costs three hand-offs, each a wait for the interpreter lock."""
        return await asyncio.to_thread(self._write_whole, path, data, props)

    async def make_dir(self, path: str, props: WriteProps | None = None) -> None:
        await asyncio.to_thread(self._make_dir, path)

    async def delete(self, path: str) -> None:
        await asyncio.to_thread(self._delete, path)

    async def remove_staged(self, path: str, *, job_key: str) -> bool:
        """Remove the staging file job ``job_key`` used for ``path`` (see :mod:`.staging`);
        ``False`` when there is none."""
        head, _, name = path.rpartition("/")
        staged = staging_name(name, staging_token(job_key, path))
        target = f"{head}/{staged}" if head else staged

        def remove() -> bool:
            try:
                return self._unlink_staged(self._inside(target, whole=False))
            except TransferError:
                return False

        return await asyncio.to_thread(remove)

    def _staged_entry(self, rel: str, dirent: os.DirEntry[str]) -> _Entry | None:
        """A staging file as listed: refused (never copied, reported by a source); a stale one
        is also noted in :attr:`stale_staging`. ``None`` once it is gone (committed meanwhile)."""
        path = f"{rel}/{dirent.name}" if rel else dirent.name
        try:
            st = dirent.stat(follow_symlinks=False)
        except OSError:
            return None
        modified = mtime_of(st)
        if datetime.now(UTC) - modified > self._stale_after and len(self.stale_staging) < MAX_STALE_NOTED:
            self.stale_staging.append(path)
        obj = StoredObject(
            path=carried_name(path),
            is_dir=False,
            size=st.st_size,
            last_modified=modified,
            refusal=STAGING_REFUSAL,
        )
        return _Entry(obj=obj, full=dirent.path, identity=_NO_IDENTITY)

    @staticmethod
    def _unlink_staged(full: str) -> bool:
        """Unlink the staging file at ``full`` if it is a regular file (never anything else)."""
        try:
            if not stat_mode.S_ISREG(os.lstat(full).st_mode):
                return False
            os.unlink(full)
        except FileNotFoundError:
            return False
        return True

    # ---- blocking parts, run in worker threads

    def _full(self, parts: Sequence[str]) -> str:
        return os.path.join(self._root, *parts)

    def _stat(self, parts: Sequence[str]) -> StoredObject | None:
        full = self._full(parts)
        path = "/".join(parts)
        if carried_name(path) != path:  # a name given as bytes that are not valid UTF-8
            if not os.path.lexists(full):
                return None
            is_dir = os.path.isdir(full)
            return StoredObject(
                path=carried_name(path), is_dir=is_dir, refusal=_bad_name(parts[-1], is_dir=is_dir)
            )
        follow = self._follow or not parts
        try:
            st = os.stat(full, follow_symlinks=follow)
        except (FileNotFoundError, NotADirectoryError):
            return self._link_refused(path, full) if follow and parts else None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return _refused(path, _LINK_LOOP)
            raise TransferError(f"cannot stat {full}: {exc.strerror}") from exc
        streamed = self._streamed.get(os.path.realpath(full))
        if stat_mode.S_ISLNK(st.st_mode):
            if streamed is None:
                return _refused(path, _UNFOLLOWED)
            st = os.stat(full)  # a link this backend wrote through to a device (/dev/stdout)
        return _object(path, st, streamed=streamed)

    def _link_refused(self, path: str, full: str) -> StoredObject | None:
        """A broken symbolic link as a refused object; ``None`` when nothing is at ``full``."""
        return _refused(path, _BROKEN_LINK) if os.path.islink(full) else None

    def _read(self, parts: Sequence[str], offset: int, length: int) -> bytes:
        full = self._full(parts)
        flags = os.O_RDONLY | os.O_CLOEXEC | (0 if self._follow else os.O_NOFOLLOW)
        try:
            fd = os.open(full, flags)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFoundError(f"no such file: {full}") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotFoundError(f"no such file: {full} (a symbolic link, not followed)") from exc
            raise TransferError(f"cannot read {full}: {exc.strerror}") from exc
        try:
            chunks = []
            got = 0
            while got < length:
                chunk = os.pread(fd, length - got, offset + got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        except OSError as exc:
            raise TransferError(f"cannot read {full}: {exc.strerror}") from exc
        finally:
            os.close(fd)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _scan_top(self, parts: Sequence[str]) -> tuple[Sequence[_Entry], tuple[int, int]]:
        full = self._full(parts)
        if carried_name(full) != full:
            raise TransferError(f"cannot list {carried_name(full)}: its name is not valid UTF-8")
        try:
            st = os.stat(full, follow_symlinks=self._follow or not parts)
            if not stat_mode.S_ISDIR(st.st_mode):
                raise NotFoundError(f"not a directory: {full}")
            return self._scan("/".join(parts), full), (st.st_dev, st.st_ino)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFoundError(f"no such directory: {full}") from exc
        except PermissionError as exc:
            raise UnreadableError(f"cannot list {full}: permission denied") from exc
        except OSError as exc:
            raise TransferError(f"cannot list {full}: {exc.strerror}") from exc

    def _scan_nested(self, rel: str, full: str, skip_vanished: bool) -> Sequence[_Entry]:
        try:
            return self._scan(rel, full)
        except (FileNotFoundError, NotADirectoryError) as exc:
            if skip_vanished:
                return ()  # removed (or replaced by a file) since its parent was read
            raise _Unreadable(f"cannot list it: {exc.strerror} (it changed while being listed)") from exc
        except OSError as exc:
            raise _Unreadable(f"cannot list it: {exc.strerror}") from exc

    def _scan(self, rel: str, full: str) -> Sequence[_Entry]:
        """The entries of one directory, sorted by name (raises OSError if unreadable)."""
        entries = []
        with os.scandir(full) as found:
            for dirent in found:
                entry = self._entry(rel, dirent)
                if entry is not None:
                    entries.append(entry)
        entries.sort(key=lambda entry: entry.obj.name)
        return entries

    def _entry(self, rel: str, dirent: os.DirEntry[str]) -> _Entry | None:
        """One listed entry; ``None`` for one removed since the directory was read. A staging
        file is listed refused (see :meth:`_staged_entry`)."""
        if is_staging_name(dirent.name) and dirent.is_file(follow_symlinks=False):
            return self._staged_entry(rel, dirent)
        name = carried_name(dirent.name)
        path = f"{rel}/{name}" if rel else name
        try:
            if dirent.is_symlink():
                if not self._follow:
                    return _Entry(obj=_refused(path, _UNFOLLOWED), full=dirent.path, identity=_NO_IDENTITY)
                st = os.stat(dirent.path)
            else:
                st = dirent.stat(follow_symlinks=False)
        except FileNotFoundError:
            if not (self._follow and os.path.islink(dirent.path)):
                return None  # removed since the directory was read
            return _Entry(obj=_refused(path, _BROKEN_LINK), full=dirent.path, identity=_NO_IDENTITY)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return _Entry(obj=_refused(path, _LINK_LOOP), full=dirent.path, identity=_NO_IDENTITY)
            unreadable = Refusal(Refused.UNREADABLE, f"cannot read its properties: {exc.strerror}")
            is_dir = dirent.is_dir(follow_symlinks=False)
            obj = StoredObject(path=path, is_dir=is_dir, refusal=unreadable)
            return _Entry(obj=obj, full=dirent.path, identity=_NO_IDENTITY)
        obj = _object(path, st, streamed=None)
        if name != dirent.name:
            obj = replace(obj, refusal=_bad_name(dirent.name, is_dir=obj.is_dir))
        return _Entry(obj=obj, full=dirent.path, identity=(st.st_dev, st.st_ino))

    def _inside(self, path: str, *, whole: bool) -> str:
        """The real path to change for ``path``: its parent (or, with ``whole``, itself)
        resolved through symlinks, which must stay inside the root."""
        refusal = "refusing to write outside the destination"
        parts = _segments(path, refusal=refusal)
        if not parts:
            return self._real_root
        if whole:
            resolved = os.path.realpath(self._full(parts))
        else:
            resolved = os.path.join(os.path.realpath(self._full(parts[:-1])), parts[-1])
        if os.path.commonpath([self._real_root, resolved]) != self._real_root:
            raise TransferError(f"{refusal}: {self.describe('/'.join(parts))} leads to {resolved}")
        return resolved

    def _make_dirs(self, real: str, path: str) -> None:
        try:
            os.makedirs(real, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise TransferError(
                f"cannot create directory {self.describe(path)}: a file is in the way"
            ) from exc
        except OSError as exc:
            raise TransferError(f"cannot create directory {self.describe(path)}: {exc.strerror}") from exc

    def _open_writer(self, path: str, size: int, props: WriteProps) -> LocalWriter | StreamWriter:
        final = self._inside(path, whole=False)
        if final == self._real_root:
            raise TransferError(f"cannot write a file at the root of {self.describe()}")
        parent, name = os.path.split(final)
        self._make_dirs(parent, path.rpartition("/")[0])
        stream = self._open_special(final, path)
        if stream is not None:
            return stream
        if os.path.isdir(final) and not os.path.islink(final):
            raise TransferError(f"cannot write {self.describe(path)}: a directory is in the way")
        temp = os.path.join(parent, staging_name(name, staging_token(self.staging_key, path)))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            try:
                fd = os.open(temp, flags, 0o666)
            except FileExistsError:
                # An earlier run of this job died while staging this file: start it afresh
                # (only this job's runs use this name, and only one runs at a time).
                self._unlink_staged(temp)
                fd = os.open(temp, flags, 0o666)
        except OSError as exc:
            raise TransferError(f"cannot write {self.describe(path)}: {exc.strerror}") from exc
        try:
            if size > 0:
                os.ftruncate(fd, size)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise TransferError(f"cannot write {self.describe(path)}: {exc.strerror}") from exc
        return LocalWriter(fd=fd, temp=temp, final=final, props=props, fsync=self._fsync)

    def _open_special(self, final: str, path: str) -> StreamWriter | None:
        """A writer into the character device or named pipe at ``final`` (through a symbolic
        link too: ``/dev/stdout``), which stays where it is; :class:`TransferError` for any
        other special file (it is never replaced); ``None`` for a regular file, a directory or
        nothing (the usual staged write)."""
        try:
            st = os.stat(final)
        except OSError:
            return None  # nothing there, or a dangling link: replaced by the staged file
        mode = st.st_mode
        if stat_mode.S_ISREG(mode) or stat_mode.S_ISDIR(mode):
            return None
        shown = self.describe(path)
        if not (stat_mode.S_ISCHR(mode) or stat_mode.S_ISFIFO(mode)):
            raise TransferError(
                f"cannot write {shown}: it is {special_kind(mode)}, not a regular file "
                "(only regular files, character devices and named pipes are written)"
            )
        try:  # not blocking: a pipe nobody reads is an error, not a job that hangs
            fd = os.open(final, os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise TransferError(f"cannot write {shown}: no process is reading the named pipe") from exc
            raise TransferError(f"cannot write {shown}: {exc.strerror}") from exc
        os.set_blocking(fd, True)
        real = os.path.realpath(final)
        self._streamed.pop(real, None)
        return StreamWriter(
            fd=fd, final=shown, on_commit=lambda count: self._streamed.__setitem__(real, count)
        )

    def _write_whole(self, path: str, data: bytes, props: WriteProps) -> int:
        writer = self._open_writer(path, len(data), props)  # the writer's blocking steps, in turn
        if isinstance(writer, StreamWriter):
            return writer.write_all(data)
        try:
            writer._pwrite(0, data)
            writer._commit()
        except BaseException:
            writer._discard()
            raise
        try:
            return os.stat(writer._final).st_size
        except OSError as exc:
            raise TransferError(f"cannot read back {self.describe(path)}: {exc.strerror}") from exc

    def _make_dir(self, path: str) -> None:
        self._make_dirs(self._inside(path, whole=True), path)

    def _delete(self, path: str) -> None:
        real = self._inside(path, whole=False)
        if real == self._real_root:
            raise TransferError(f"refusing to delete the root {self.describe()}")
        try:
            st = os.lstat(real)
            if stat_mode.S_ISDIR(st.st_mode):
                os.rmdir(real)
            elif stat_mode.S_ISREG(st.st_mode) or stat_mode.S_ISLNK(st.st_mode):
                os.unlink(real)
            else:
                raise TransferError(
                    f"refusing to delete {self.describe(path)}: it is {special_kind(st.st_mode)}, "
                    "not a regular file"
                )
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFoundError(f"nothing to delete at {self.describe(path)}") from exc
        except OSError as exc:
            reason = "the directory is not empty" if exc.errno == errno.ENOTEMPTY else exc.strerror
            raise TransferError(f"cannot delete {self.describe(path)}: {reason}") from exc


class _Unreadable(TransferError):
    """A directory below the listed one could not be read (the reason is the message)."""


_NO_IDENTITY = (-1, -1)
_UNFOLLOWED = "not a regular file (a symbolic link; --follow-symlinks copies what it points to)"
_BROKEN_LINK = "not a regular file (a broken symbolic link)"
_LINK_LOOP = "not a regular file (a loop of symbolic links)"
_LOOP = Refusal(Refused.SPECIAL, "a symbolic link to a directory above it (following it would never end)")
#: What a file that is neither a directory nor a regular file is, by its mode.
_SPECIAL_KINDS = (
    (stat_mode.S_ISFIFO, "a named pipe"),
    (stat_mode.S_ISSOCK, "a socket"),
    (stat_mode.S_ISCHR, "a character device"),
    (stat_mode.S_ISBLK, "a block device"),
    (stat_mode.S_ISLNK, "a symbolic link"),
)


def special_kind(mode: int) -> str:
    """What a non-regular, non-directory file is, in words (``a named pipe``)."""
    return next((words for test, words in _SPECIAL_KINDS if test(mode)), "not a regular file")


def _refused(path: str, reason: str) -> StoredObject:
    return StoredObject(path=path, is_dir=False, refusal=Refusal(Refused.SPECIAL, reason))


def _bad_name(name: str, *, is_dir: bool) -> Refusal:
    shown = repr(os.fsencode(name))
    below = "; nothing below it is copied" if is_dir else ""
    return Refusal(Refused.NAME, f"its name is not valid UTF-8: {shown}{below}")


def _object(path: str, st: os.stat_result, *, streamed: int | None) -> StoredObject:
    """The listed object for ``st``: a directory, a regular file, or (anything else: devices,
    sockets, pipes) a refused one. A device or pipe has no length of its own: its size is what
    this backend wrote into it (``streamed``), else 0."""
    if stat_mode.S_ISDIR(st.st_mode):
        return StoredObject(path=path, is_dir=True, last_modified=mtime_of(st))
    if stat_mode.S_ISREG(st.st_mode):
        return StoredObject(path=path, is_dir=False, size=st.st_size, last_modified=mtime_of(st))
    refusal = Refusal(Refused.SPECIAL, f"not a regular file ({special_kind(st.st_mode)})")
    return StoredObject(
        path=path, is_dir=False, size=streamed or 0, last_modified=mtime_of(st), refusal=refusal
    )
