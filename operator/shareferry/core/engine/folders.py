"""Folders before their contents: a transfer into a folder that is still being created waits.

A plan lists a folder before what is in it, but the engine runs many transfers at once, so a
folder's contents (and the folders below it) would otherwise race its creation. On Azure Files
each loser meets ``ParentNotFound`` and creates the whole chain above it again, which costs
requests in proportion to the depth for every folder of a deep tree (its square in all).
Waiting for the one creation under way keeps that to one request per folder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class FolderGate:
    """The folders being created right now (by destination path), for others to wait on.
    Only folders in flight are held: memory does not grow with the tree."""

    def __init__(self) -> None:
        self._creating: dict[str, asyncio.Event] = {}

    async def wait_for_parent(self, path: str) -> None:
        """Return once the folder ``path`` is in is no longer being created (at once if not)."""
        parent = path.rpartition("/")[0]
        event = self._creating.get(parent)
        if event is not None:
            await event.wait()

    @contextmanager
    def creating(self, path: str) -> Iterator[None]:
        """Mark folder ``path`` as being created for the duration (whatever the outcome)."""
        event = asyncio.Event()
        self._creating[path] = event
        try:
            yield
        finally:
            if self._creating.get(path) is event:
                del self._creating[path]
            event.set()
