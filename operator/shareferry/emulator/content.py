"""The bytes of one emulated file: in memory or in a sparse file on disk, plus its valid ranges.

Azure files have a fixed size set at create (or resize) time; bytes never written read as zeros,
and List Ranges reports only the ranges that were written and not cleared. Every method is
synchronous and is called from the event loop only, so one write is never interleaved with a
read: a reader sees a range either wholly before or wholly after a write.
"""

from __future__ import annotations

import bisect
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from pathlib import Path


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
    def read(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset+length)``, clipped to the size; holes read as zeros."""

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
    """Content in a bytearray: for ``--in-memory`` emulators."""

    def __init__(self, size: int, ranges: RangeSet | None = None, data: bytearray | None = None) -> None:
        super().__init__(size, ranges)
        self._data = data if data is not None else bytearray(size)

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self._data[offset : min(self.size, offset + length)])

    def write(self, offset: int, data: bytes | memoryview) -> None:
        self._data[offset : offset + len(data)] = data
        self.ranges.add(offset, offset + len(data))

    def clear(self, offset: int, length: int) -> None:
        end = min(self.size, offset + length)
        self._data[offset:end] = bytes(end - offset)
        self.ranges.remove(offset, end)

    def resize(self, size: int) -> None:
        if size < self.size:
            del self._data[size:]
            self.ranges.truncate(size)
        else:
            self._data.extend(bytes(size - self.size))
        self.size = size

    def clone(self) -> Content:
        return MemoryContent(self.size, self.ranges.copy(), bytearray(self._data))

    def discard(self) -> None:
        self._data = bytearray()


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

    def read(self, offset: int, length: int) -> bytes:
        length = max(0, min(self.size, offset + length) - offset)
        fd = os.open(self._path, os.O_RDONLY)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def write(self, offset: int, data: bytes | memoryview) -> None:
        fd = os.open(self._path, os.O_WRONLY)
        try:
            view = memoryview(data)
            while view:
                written = os.pwrite(fd, view, offset)
                view = view[written:]
                offset += written
        finally:
            os.close(fd)
        self.ranges.add(offset - len(data), offset)

    def clear(self, offset: int, length: int) -> None:
        end = min(self.size, offset + length)
        self.write(offset, bytes(end - offset))
        self.ranges.remove(offset, end)

    def resize(self, size: int) -> None:
        os.truncate(self._path, size)
        if size < self.size:
            self.ranges.truncate(size)
        self.size = size

    def clone(self) -> Content:
        copy = DiskContent(self._directory, self.size, self.ranges.copy(), uuid.uuid4().hex)
        shutil.copyfile(self._path, copy._path)
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
