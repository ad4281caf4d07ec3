"""Global limits shared by every transfer of a job: bandwidth (``--cap-mbps``) and buffer memory."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """A token bucket of bytes: ``acquire(n)`` waits until ``n`` bytes may pass.

    One instance per job, so ``--cap-mbps`` is one global limit whatever the concurrency. The
    bucket holds at most one second of tokens, so bursts stay short.
    """

    def __init__(self, bytes_per_second: float) -> None:
        self.rate = bytes_per_second
        self._tokens = bytes_per_second
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    @classmethod
    def from_mbps(cls, mbps: float | None) -> RateLimiter | None:
        """``--cap-mbps`` is megabits per second, as in AzCopy."""
        return cls(mbps * 1_000_000 / 8) if mbps else None

    async def acquire(self, nbytes: int) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.rate, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= min(nbytes, self.rate):
                    self._tokens -= nbytes  # may go negative for chunks larger than a second
                    return
                await asyncio.sleep((min(nbytes, self.rate) - self._tokens) / self.rate)


class ByteBudget:
    """Caps the bytes held in chunk buffers at once, so memory does not grow with file sizes,
    file counts or concurrency beyond ``limit`` (a single chunk larger than the limit is let
    through alone)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._changed = asyncio.Condition()

    async def take(self, nbytes: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.used == 0 or self.used + nbytes <= self.limit)
            self.used += nbytes
            self.peak = max(self.peak, self.used)

    async def give(self, nbytes: int) -> None:
        async with self._changed:
            self.used -= nbytes
            self._changed.notify_all()
