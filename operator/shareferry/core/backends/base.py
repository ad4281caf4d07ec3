"""The backend contract: what the planner and the engine may ask of any storage.

A backend is rooted at one place (a local directory, a share or share snapshot, a container)
and addresses everything below it by relative ``/``-separated paths. Methods are coroutines;
a backend must be safe to call concurrently from many tasks. Contracts are stated per method
(what it raises, what it guarantees); every backend passes the same conformance suite
(``tests/core/test_backend_conformance.py``).

Errors: a missing object is ``None`` from :meth:`Backend.stat` and :class:`NotFoundError` from
other calls; an authentication or permission failure is :class:`CredentialError`; anything the
engine may retry (throttling, 5xx, dropped connections, timeouts) is
:class:`TransferError` with ``retryable=True``; other failures are ``TransferError``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

from shareferry.core.objects import StoredObject, WriteProps

BackendKind = Literal["local", "file", "blob", "memory"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Optional abilities, detected once per backend.

    ``folders``: directories are real objects (they can be empty, carry properties).
    ``smb``: SMB info and permissions can be read and written.
    ``source_url``: :meth:`Backend.source_url` gives a URL another service can read by itself.
    ``write_from_url``: :meth:`Writer.write_from_url` copies server-side (bytes never pass
    through this process). ``stored_md5``: objects carry a stored Content-MD5.
    ``max_range``: the largest single write (and server-side range) in bytes.
    ``case_insensitive``: names differing only in letter case are the same object (Azure Files).
    """

    folders: bool
    smb: bool = False
    source_url: bool = False
    write_from_url: bool = False
    stored_md5: bool = False
    max_range: int = 4 * 1024 * 1024
    case_insensitive: bool = False


class Writer(Protocol):
    """One object being written. Nothing is visible at the final path until :meth:`commit`
    succeeds, and whatever was there stays whole until then (local files and Azure Files: a
    hidden staging file renamed over it, see :mod:`.staging`; blob: uncommitted blocks)."""

    async def write(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` (< ``max_range`` bytes; calls may run concurrently and
        out of order)."""

    async def write_from_url(self, offset: int, url: str, source_offset: int, length: int) -> None:
        """Server-side: copy ``length`` bytes from ``url`` at ``source_offset`` to ``offset``.
        Only called when ``Capabilities.write_from_url``."""

    async def commit(self, md5: bytes | None) -> None:
        """Make the object final with its properties and (when given) its Content-MD5."""

    async def abort(self) -> None:
        """Discard a partial object (best effort, never raises)."""


class Backend(Protocol):
    """One storage root. See the module docstring for the error contract."""

    kind: BackendKind
    capabilities: Capabilities

    def describe(self, path: str = "") -> str:
        """A printable name for ``path`` (URLs without secrets, local paths as given)."""

    async def stat(self, path: str) -> StoredObject | None:
        """The object at ``path`` with everything the backend knows (size, time, MD5, content
        headers, metadata, SMB info when the backend has it); ``None`` when nothing is there.
        The root (``""``) of a backend with folders is a directory."""

    def list(self, path: str, *, recursive: bool, skip_vanished: bool = False) -> AsyncIterator[StoredObject]:
        """Objects below the directory ``path`` in tree order (see :mod:`objects`), not the
        directory itself; one level when not recursive. Streams: memory does not grow with the
        number of objects beyond one page per open directory level. Raises
        :class:`NotFoundError` when ``path`` is not a directory.

        A directory below ``path`` that is listed and then removed before the walk reaches its
        entries makes the listing incomplete, unless ``skip_vanished``: then it is walked as
        empty, which it now is. A sync's destination is listed that way (the other shards of
        the same sync remove directories while it is walked); a source never is, so a sync never
        deletes on an incomplete listing of its source. An incomplete listing either fails, or
        (local files: a directory that vanished or cannot be read) yields that directory with an
        ``UNREADABLE`` :class:`~shareferry.core.objects.Refusal` and goes on; a sync stops at
        it, a copy reports it failed.

        Objects that exist but cannot be transferred (pipes, devices, symbolic links not
        followed, names that cannot be carried) are listed with a ``Refusal`` rather than left
        out, so they are reported and a sync never deletes what stands at their path. A walk
        holds one open level per depth and never recurses, so no depth of tree breaks it."""

    async def read(self, path: str, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset+length)`` of a file (short only at its end)."""

    def source_url(self, path: str) -> str | None:
        """A URL with its own authorisation that a service can read server-side, or None."""

    async def open_writer(self, path: str, *, size: int, props: WriteProps) -> Writer:
        """Start writing a file of ``size`` bytes at ``path``; parent directories are created
        as needed. An existing file is replaced when the writer commits."""

    async def make_dir(self, path: str, props: WriteProps | None = None) -> None:
        """Create directory ``path`` (and parents) with ``props`` (SMB info) when the backend
        has folders; idempotent; a no-op without folders."""

    async def delete(self, path: str) -> None:
        """Remove a file, or an empty directory; :class:`NotFoundError` when missing."""

    async def close(self) -> None:
        """Release connections."""


def stage_for(backend: object, job_key: str | None) -> None:
    """Tell a backend that stages its writes (see :mod:`.staging`) which job it writes for, so
    every run of one job names its unfinished files alike; other backends ignore it."""
    if hasattr(backend, "staging_key"):
        backend.staging_key = job_key
