"""Walk two tree-ordered listings side by side and pair up the objects with the same path.

Both listings come from backends in *tree order* (see :mod:`shareferry.core.objects`): depth
first, each directory's entries sorted by name, a directory before its contents. Comparing paths
as tuples of segments gives exactly that order, so the two streams merge like a march: hold one
object from each side, emit the smaller (or both when equal), advance. Memory holds two objects
here, whatever the size of the trees; the backends hold at most one page or one directory level
per open depth.

A listing that goes backwards would make the march pair things wrongly and a sync delete files
that exist; :class:`ListingOrderError` stops the march instead (and with it every deletion).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from shareferry.core.errors import TransferError
from shareferry.core.objects import StoredObject


class ListingOrderError(TransferError):
    """A listing was not in tree order; nothing may be concluded from the comparison."""


@dataclass(frozen=True, slots=True)
class Pair:
    """The objects found at ``relative`` (a path relative to both roots) on each side."""

    relative: str
    source: StoredObject | None
    destination: StoredObject | None


def tree_key(relative: str) -> tuple[str, ...]:
    """The sort key of tree order: the path's segments."""
    return tuple(relative.split("/"))


class _Side:
    """One listing, its objects made relative to its root, checked to advance in tree order."""

    def __init__(self, listing: AsyncIterator[StoredObject], root: str, name: str) -> None:
        self._listing = listing
        self._cut = len(root) + 1 if root else 0
        self._name = name
        self.head: StoredObject | None = None
        self.relative = ""
        self.key: tuple[str, ...] = ()
        self.count = 0

    async def advance(self) -> None:
        try:
            obj = await anext(self._listing)
        except StopAsyncIteration:
            self.head = None
            return
        relative = obj.path[self._cut :]
        key = tree_key(relative)
        if self.count and key <= self.key:
            raise ListingOrderError(
                f"the {self._name} listing is not in tree order ({self.relative!r} came before "
                f"{relative!r}); stopping, nothing is deleted"
            )
        self.head, self.relative, self.key = obj, relative, key
        self.count += 1


async def march(
    source: AsyncIterator[StoredObject],
    destination: AsyncIterator[StoredObject],
    *,
    source_root: str = "",
    destination_root: str = "",
) -> AsyncIterator[Pair]:
    """Every path found on either side, once, in tree order, with what each side has there.

    ``source_root`` / ``destination_root``: the directory each listing lists (its objects'
    paths start with it), so the pairs carry paths relative to both roots.
    """
    left = _Side(source, source_root, "source")
    right = _Side(destination, destination_root, "destination")
    await left.advance()
    await right.advance()
    while left.head is not None or right.head is not None:
        if right.head is None or (left.head is not None and left.key < right.key):
            assert left.head is not None
            yield Pair(left.relative, left.head, None)
            await left.advance()
        elif left.head is None or right.key < left.key:
            yield Pair(right.relative, None, right.head)
            await right.advance()
        else:
            yield Pair(left.relative, left.head, right.head)
            await left.advance()
            await right.advance()
