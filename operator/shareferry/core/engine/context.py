"""The shared state of one running job that every transfer task reads.

Memory: chunk buffers held at once are capped by one :class:`ByteBudget` per job, 64 MiB unless
the environment variable ``SHAREFERRY_BUFFER_MB`` says otherwise (a whole number of MiB, 1 to
1048576; see :func:`buffer_bytes_from_env`). A budget smaller than one chunk still lets one chunk
through at a time, so the real floor is the chunk size (``--block-size-mb``, at most 4 MiB
towards Azure Files). 64 MiB is 16 ranges of 4 MiB or 8 blocks of 8 MiB in flight: measured on
one 1 GiB file, as fast as 256 MiB was, with 30 to 360 MiB less peak memory; a long fat link
(high latency, several Gbit/s) may want more.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shareferry.core.accounting import Accounting
from shareferry.core.backends.base import Backend, stage_for
from shareferry.core.engine.folders import FolderGate
from shareferry.core.engine.limits import ByteBudget, RateLimiter
from shareferry.core.engine.retry import RetryPolicy
from shareferry.core.errors import UsageError
from shareferry.core.options import MIB, TransferOptions

if TYPE_CHECKING:
    from shareferry.core.engine.resume import PlanScope

#: Default cap on bytes held in chunk buffers at once (``SHAREFERRY_BUFFER_MB`` overrides it).
DEFAULT_BUFFER_BYTES = 64 * MIB
BUFFER_ENV = "SHAREFERRY_BUFFER_MB"
MAX_BUFFER_MB = 1024 * 1024  # 1 TiB: anything above is surely a typo

Prompt = Callable[[str], Awaitable[bool]]
Log = Callable[[str], None]


def _no_log(_message: str) -> None:
    return None


def buffer_bytes_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The chunk-buffer cap in bytes: ``SHAREFERRY_BUFFER_MB`` (MiB) from ``environ`` (default
    ``os.environ``), or :data:`DEFAULT_BUFFER_BYTES` when unset or blank. :class:`UsageError`
    for anything but a whole number from 1 to :data:`MAX_BUFFER_MB`."""
    text = (os.environ if environ is None else environ).get(BUFFER_ENV, "").strip()
    if not text:
        return DEFAULT_BUFFER_BYTES
    try:
        value = int(text)
    except ValueError as exc:
        raise UsageError(f"{BUFFER_ENV}={text!r} is not a whole number of MiB") from exc
    if not 1 <= value <= MAX_BUFFER_MB:
        raise UsageError(f"{BUFFER_ENV} must be 1 to {MAX_BUFFER_MB} (MiB), got {value}")
    return value * MIB


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
    plan: PlanScope | None = None  # the job's persisted plan (None: a dry run, or no job directory)
    folders: FolderGate = field(default_factory=FolderGate)  # folders being created, to wait on

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
        budget: ByteBudget | None = None,
        plan: PlanScope | None = None,
    ) -> EngineContext:
        """A context with a new :class:`ByteBudget` of ``buffer_bytes``, or ``budget`` when
        several contexts of one job (one per container of an account copy) share one cap.
        The destination stages its unfinished files under names of this job (see
        :mod:`shareferry.core.backends.staging`)."""
        stage_for(destination, plan.job_id if plan is not None else None)
        return cls(
            source=source,
            destination=destination,
            options=options,
            accounting=accounting,
            retry=RetryPolicy(attempts=options.max_retries),
            requests=asyncio.Semaphore(options.concurrency),
            budget=budget if budget is not None else ByteBudget(buffer_bytes),
            limiter=RateLimiter.from_mbps(options.cap_mbps),
            prompt=prompt,
            log=log or _no_log,
            plan=plan,
        )

    @property
    def chunk_size(self) -> int:
        """Bytes per request: the block size, clamped to what the destination takes at once."""
        return max(1, min(self.options.block_size, self.destination.capabilities.max_range))

    @property
    def server_side(self) -> bool:
        return self.source.capabilities.source_url and self.destination.capabilities.write_from_url
