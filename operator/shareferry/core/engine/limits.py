"""Global limits shared by every transfer of a job: bandwidth (``--cap-mbps``) and buffer memory."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """A token bucket of bytes: ``acquire(n)`` waits until ``n`` bytes may pass.

    One instance per job, so ``--cap-mbps`` is one global limit whatever the concurrency. The
    bucket starts with, and holds at most, one second of tokens, so bursts stay short. A request
    for more bytes than the bucket holds takes them on credit and waits until they are paid for
    before it returns, so ``X`` bytes never pass in less than ``(X - rate) / rate`` seconds,
    whatever the chunk size (large chunks are never let through ahead of the cap).
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
        async with self._lock:  # callers queue in order behind one that is paying off a debt
            now = time.monotonic()
            self._tokens = min(self.rate, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= nbytes
            if self._tokens < 0:
                await asyncio.sleep(-self._tokens / self.rate)


class ByteBudget:
    """Caps the bytes held in chunk buffers at once, so memory does not grow with file sizes,
    file counts or concurrency beyond ``limit`` (a single chunk larger than the limit is let
    through alone)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0  # the most bytes held at once so far
        self._waiting = 0
        self._changed = asyncio.Condition()

    def _fits(self, nbytes: int) -> bool:
        return self.used == 0 or self.used + nbytes <= self.limit

    def _add(self, nbytes: int) -> None:
        self.used += nbytes
        self.peak = max(self.peak, self.used)

    async def take(self, nbytes: int) -> None:
        """Wait until ``nbytes`` fit, then hold them. Never wait here while holding bytes that
        only the caller can release once this returns (chunks read but not yet handed to a
        writer): use :meth:`try_take` then, or two callers can wait on each other for ever."""
        async with self._changed:
            self._waiting += 1
            try:
                await self._changed.wait_for(lambda: self._fits(nbytes))
            finally:
                self._waiting -= 1
            self._add(nbytes)

    def try_take(self, nbytes: int) -> bool:
        """Hold ``nbytes`` if they fit now and nobody is waiting in :meth:`take` (waiters go
        first, so they are never starved); ``False`` otherwise, holding nothing."""
        if self._waiting or not self._fits(nbytes):
            return False
        self._add(nbytes)
        return True

    async def give(self, nbytes: int) -> None:
        async with self._changed:
            self.used -= nbytes
            self._changed.notify_all()
