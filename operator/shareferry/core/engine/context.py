"""The shared state of one running job that every transfer task reads."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shareferry.core.accounting import Accounting
from shareferry.core.backends.base import Backend
from shareferry.core.engine.limits import ByteBudget, RateLimiter
from shareferry.core.engine.retry import RetryPolicy
from shareferry.core.options import TransferOptions

#: Default cap on bytes held in chunk buffers at once (``SHAREFERRY_BUFFER_MB`` overrides it).
DEFAULT_BUFFER_BYTES = 256 * 1024 * 1024

Prompt = Callable[[str], Awaitable[bool]]
Log = Callable[[str], None]


def _no_log(_message: str) -> None:
    return None


@dataclass
class EngineContext:
    """Backends, options, limits and accounting of one job."""

    source: Backend
    destination: Backend
    options: TransferOptions
    accounting: Accounting
    retry: RetryPolicy
    requests: asyncio.Semaphore
    budget: ByteBudget
    limiter: RateLimiter | None = None
    prompt: Prompt | None = None
    log: Log = field(default=_no_log)

    @classmethod
    def create(
        cls,
        *,
        source: Backend,
        destination: Backend,
        options: TransferOptions,
        accounting: Accounting,
        prompt: Prompt | None = None,
        log: Log | None = None,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    ) -> EngineContext:
        return cls(
            source=source,
            destination=destination,
            options=options,
            accounting=accounting,
            retry=RetryPolicy(attempts=options.max_retries),
            requests=asyncio.Semaphore(options.concurrency),
            budget=ByteBudget(buffer_bytes),
            limiter=RateLimiter.from_mbps(options.cap_mbps),
            prompt=prompt,
            log=log or _no_log,
        )

    @property
    def chunk_size(self) -> int:
        """Bytes per request: the block size, clamped to what the destination takes at once."""
        return max(1, min(self.options.block_size, self.destination.capabilities.max_range))

    @property
    def server_side(self) -> bool:
        return self.source.capabilities.source_url and self.destination.capabilities.write_from_url
