"""The bytes of one emulated file: sparse in memory or in a sparse file on disk, plus its valid ranges.

Azure files have a fixed size set at create (or resize) time, up to 4 TiB; bytes never written
read as zeros, and List Ranges reports only the ranges that were written and not cleared. Neither
storage allocates what was never written, so a new 4 TiB file costs nothing; readers ask for
bounded pieces (a response is streamed piece by piece). Every method is
synchronous and is called from the event loop only, so one write is never interleaved with a
read: a reader sees a range either wholly before or wholly after a write.
"""

from __future__ import annotations

import bisect
import os
import uuid
from abc import ABC, abstractmethod
from pathlib import Path

#: Memory content is kept in pages of this many bytes, allocated on first write.
PAGE_BYTES = 64 * 1024
#: Disk content is zeroed and copied in pieces of at most this many bytes.
_IO_CHUNK = 4 * 1024 * 1024


class RangeSet:
    """Disjoint, sorted, half-open byte intervals ``[start, end)``."""

    def __init__(self, ranges: list[tuple[int, int]] | None = None) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges or []:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        i = bisect.bisect_left(self._ends, start)
        j = bisect.bisect_right(self._starts, end)
        if i < j:
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def remove(self, start: int, end: int) -> None:
        if end <= start:
            return
        i = bisect.bisect_right(self._ends, start)
        j = bisect.bisect_left(self._starts, end)
        if i >= j:
            return
        new_starts: list[int] = []
        new_ends: list[int] = []
        if self._starts[i] < start:
            new_starts.append(self._starts[i])
            new_ends.append(start)
        if self._ends[j - 1] > end:
            new_starts.append(end)
            new_ends.append(self._ends[j - 1])
        self._starts[i:j] = new_starts
        self._ends[i:j] = new_ends

    def truncate(self, size: int) -> None:
        self.remove(size, max(size, self._ends[-1] if self._ends else size))

    def within(self, start: int, end: int) -> list[tuple[int, int]]:
        """The valid intervals clipped to ``[start, end)``."""
        out: list[tuple[int, int]] = []
        i = bisect.bisect_right(self._ends, start)
        while i < len(self._starts) and self._starts[i] < end:
            out.append((max(start, self._starts[i]), min(end, self._ends[i])))
            i += 1
        return out

    def to_list(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends, strict=True))

    def copy(self) -> RangeSet:
        return RangeSet(self.to_list())


class Content(ABC):
    """Bytes of a file of a fixed size; writes inside the size only."""

    def __init__(self, size: int, ranges: RangeSet | None = None) -> None:
        self.size = size
        self.ranges = ranges or RangeSet()

    @abstractmethod
    def read_buffer(self, offset: int, length: int) -> bytes | bytearray:
        """Bytes ``[offset, offset+length)``, clipped to the size; holes read as zeros.

        The answer is built in memory with one copy of the stored bytes and is the caller's to
        keep (later writes do not change it): callers keep ``length`` bounded (a few MiB).
        """

    def read(self, offset: int, length: int) -> bytes:
        """:meth:`read_buffer` as immutable ``bytes``."""
        data = self.read_buffer(offset, length)
        return data if isinstance(data, bytes) else bytes(data)

    @abstractmethod
    def write(self, offset: int, data: bytes | memoryview) -> None:
        """Write ``data`` at ``offset``; the caller has checked it fits in the size."""

    @abstractmethod
    def clear(self, offset: int, length: int) -> None:
        """Turn a range back into zeros (and a hole for List Ranges)."""

    @abstractmethod
    def resize(self, size: int) -> None:
        """Grow with zeros or cut."""

    @abstractmethod
    def clone(self) -> Content:
        """An independent copy (for share snapshots and file copies)."""

    @abstractmethod
    def discard(self) -> None:
        """Release the storage; the object is not used again."""

    @property
    def location(self) -> str | None:
        """The on-disk name to persist, None in memory."""
        return None


class MemoryContent(Content):
    """Content in memory, stored sparsely: for ``--in-memory`` emulators.

    The file is cut into pages of :data:`PAGE_BYTES`; a page is allocated when a write first
    touches it (the last page only as long as the file needs), so a new file of 4 TiB costs
    nothing and a 1 KiB file costs 1 KiB. Reads copy only the ranges that were written; every
    other byte reads as zero without being stored. Pages left with no written byte are freed.
    """

    def __init__(
        self, size: int, ranges: RangeSet | None = None, pages: dict[int, bytearray] | None = None
    ) -> None:
        super().__init__(size, ranges)
        self._pages: dict[int, bytearray] = pages if pages is not None else {}

    @property
    def stored_bytes(self) -> int:
        """Bytes held in memory (for tests and diagnostics)."""
        return sum(len(page) for page in self._pages.values())

    def read_buffer(self, offset: int, length: int) -> bytearray:
        end = min(self.size, offset + length)
        if end <= offset:
            return bytearray()
        out = bytearray(end - offset)  # zeros: the holes are done
        for start, stop in self.ranges.within(offset, end):
            position = start
            while position < stop:
                index, inner = divmod(position, PAGE_BYTES)
                take = min(stop - position, PAGE_BYTES - inner)
                page = self._pages.get(index)
                held = min(take, len(page) - inner) if page is not None else 0
                if page is not None and held > 0:  # always there for a written range; zeros otherwise
                    with memoryview(page) as view:  # no interim copy of the page's slice
                        out[position - offset : position - offset + held] = view[inner : inner + held]
                position += take
        return out

    def write(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        position = offset
        while view:
            index, inner = divmod(position, PAGE_BYTES)
            take = min(len(view), PAGE_BYTES - inner)
            page = self._page_for(index, inner + take)
            page[inner : inner + take] = view[:take]
            view = view[take:]
            position += take
        self.ranges.add(offset, position)

    def _page_for(self, index: int, needed: int) -> bytearray:
        """Page ``index``, allocated (or grown) to hold at least ``needed`` bytes."""
        page = self._pages.get(index)
        want = min(PAGE_BYTES, self.size - index * PAGE_BYTES)
        if page is None:
            page = self._pages[index] = bytearray(max(want, needed))
        elif len(page) < needed:
            page.extend(bytes(max(want, needed) - len(page)))
        return page

    def clear(self, offset: int, length: int) -> None:
        end = min(self.size, offset + length)
        if end <= offset:
            return
        self.ranges.remove(offset, end)
        self._free_pages(offset // PAGE_BYTES, (end - 1) // PAGE_BYTES)

    def _free_pages(self, first: int, last: int) -> None:
        """Free the pages in ``[first, last]`` that no longer hold a written byte."""
        if last - first + 1 > len(self._pages):
            candidates = [index for index in self._pages if first <= index <= last]
        else:
            candidates = [index for index in range(first, last + 1) if index in self._pages]
        for index in candidates:
            start = index * PAGE_BYTES
            if not self.ranges.within(start, start + PAGE_BYTES):
                del self._pages[index]

    def resize(self, size: int) -> None:
        if size < self.size:
            self.ranges.truncate(size)
            cut, inner = divmod(size, PAGE_BYTES)
            for index in [index for index in self._pages if index > cut or (index == cut and not inner)]:
                del self._pages[index]
            page = self._pages.get(cut)
            if page is not None:
                del page[inner:]  # growing again later must read zeros, not the old tail
                if not self.ranges.within(cut * PAGE_BYTES, size):
                    del self._pages[cut]
        self.size = size

    def clone(self) -> Content:
        pages = {index: bytearray(page) for index, page in self._pages.items()}
        return MemoryContent(self.size, self.ranges.copy(), pages)

    def discard(self) -> None:
        self._pages = {}
        self.ranges = RangeSet()


class DiskContent(Content):
    """Content in a sparse file under the data directory: for persistent emulators."""

    def __init__(
        self, directory: Path, size: int, ranges: RangeSet | None = None, name: str | None = None
    ) -> None:
        super().__init__(size, ranges)
        self._directory = directory
        self._name = name or uuid.uuid4().hex
        self._path = directory / self._name
        if name is None:
            with self._path.open("wb") as handle:
                handle.truncate(size)

    @property
    def location(self) -> str | None:
        return self._name

    def read_buffer(self, offset: int, length: int) -> bytes:
        length = max(0, min(self.size, offset + length) - offset)
        fd = os.open(self._path, os.O_RDONLY)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def write(self, offset: int, data: bytes | memoryview) -> None:
        self._pwrite(offset, data)
        self.ranges.add(offset, offset + len(data))

    def clear(self, offset: int, length: int) -> None:
        """Zero only what was written: the rest of the range is a hole already."""
        end = min(self.size, offset + length)
        for start, stop in self.ranges.within(offset, end):
            for piece in range(start, stop, _IO_CHUNK):
                self._pwrite(piece, bytes(min(_IO_CHUNK, stop - piece)))
        self.ranges.remove(offset, end)

    def _pwrite(self, offset: int, data: bytes | memoryview) -> None:
        fd = os.open(self._path, os.O_WRONLY)
        try:
            view = memoryview(data)
            while view:
                written = os.pwrite(fd, view, offset)
                view = view[written:]
                offset += written
        finally:
            os.close(fd)

    def resize(self, size: int) -> None:
        os.truncate(self._path, size)
        if size < self.size:
            self.ranges.truncate(size)
        self.size = size

    def clone(self) -> Content:
        """A sparse copy: only the written ranges are copied, holes stay holes."""
        copy = DiskContent(self._directory, self.size, self.ranges.copy())
        for start, stop in self.ranges.to_list():
            for piece in range(start, stop, _IO_CHUNK):
                copy._pwrite(piece, self.read(piece, min(_IO_CHUNK, stop - piece)))
        return copy

    def discard(self) -> None:
        self._path.unlink(missing_ok=True)


class ContentFactory:
    """Makes new content in the emulator's storage mode (memory, or files under a directory)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def new(self, size: int) -> Content:
        if self.directory is None:
            return MemoryContent(size)
        return DiskContent(self.directory, size)

    def reopen(self, name: str | None, size: int, ranges: list[tuple[int, int]]) -> Content:
        """Content persisted earlier under ``name``."""
        if self.directory is None or name is None:
            return MemoryContent(size, RangeSet(ranges))
        return DiskContent(self.directory, size, RangeSet(ranges), name)
