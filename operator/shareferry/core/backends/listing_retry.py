"""Retrying a listing that failed part-way: throttling, 5xx and dropped connections.

Listings are not single requests the engine can retry (they stream), so backends retry each
listing call themselves: a whole directory for Azure Files, one page (from its continuation
token) for Blob. A listing that still fails raises, and a sync then deletes nothing.
"""

from __future__ import annotations

import asyncio

from shareferry.core.errors import TransferError
from shareferry.core.joblog import current_job_log

#: Attempts per listing call, and the first pause (doubling, at most :data:`MAX_PAUSE`).
LIST_ATTEMPTS = 5
FIRST_PAUSE = 0.25
MAX_PAUSE = 10.0


async def retry_or_raise(error: TransferError, attempt: int) -> None:
    """Pause before attempt ``attempt + 1`` (Retry-After when the service gave one), or raise
    ``error`` when it is not retryable or the attempts are spent."""
    if not error.retryable or attempt + 1 >= LIST_ATTEMPTS:
        raise error
    pause = min(MAX_PAUSE, error.retry_after if error.retry_after is not None else FIRST_PAUSE * 2**attempt)
    log = current_job_log()
    if log is not None:
        log.retry(f"listing: {error}", attempt=attempt + 1, attempts=LIST_ATTEMPTS - 1, delay=pause)
    await asyncio.sleep(pause)
