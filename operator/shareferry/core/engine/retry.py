"""Retrying one request: exponential backoff with jitter, honouring the service's Retry-After.

Only :class:`TransferError` with ``retryable=True`` is retried (throttling, 5xx, dropped
connections, timeouts, as the backends classify them); anything else fails at once. Each retry
is a warning in the job's log (:mod:`shareferry.core.joblog`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from shareferry.core.errors import TransferError
from shareferry.core.joblog import current_job_log

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` retries after the first try; delays grow from ``initial`` by ``factor`` up to
    ``maximum`` seconds, with up to 50% jitter; a Retry-After from the service wins if longer."""

    attempts: int = 8
    initial: float = 0.25
    factor: float = 2.0
    maximum: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        base = min(self.maximum, self.initial * self.factor**attempt)
        jittered = base * (0.5 + random.random() / 2)
        return max(jittered, min(retry_after, self.maximum * 4)) if retry_after else jittered


async def with_retries(
    operation: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    on_retry: Callable[[TransferError, int, float], None] | None = None,
) -> T:
    """Run ``operation`` until it succeeds, fails for good, or the retries run out."""
    attempt = 0
    while True:
        try:
            return await operation()
        except TransferError as error:
            if not error.retryable or attempt >= policy.attempts:
                raise
            delay = policy.delay(attempt, error.retry_after)
            log = current_job_log()
            if log is not None:
                log.retry(str(error), attempt=attempt + 1, attempts=policy.attempts, delay=delay)
            if on_retry is not None:
                on_retry(error, attempt + 1, delay)
            attempt += 1
            await asyncio.sleep(delay)
