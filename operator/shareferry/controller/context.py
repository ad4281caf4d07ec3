"""What every handler needs, built once when the operator starts: the API client, the settings,
the metrics and the clock (tests pass a clock they move by hand)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shareferry.controller.fileshare_pass import MISSING_SECRET_RETRY_SECONDS
from shareferry.controller.metrics import OperatorMetrics
from shareferry.controller.settings import OperatorSettings
from shareferry.kube import KubeClient


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ControllerContext:
    """Shared by all handlers through kopf's ``memo`` (``memo.ctx``)."""

    kube: KubeClient
    settings: OperatorSettings
    metrics: OperatorMetrics
    clock: Callable[[], datetime] = field(default=utc_now)
    locks: defaultdict[tuple[str, str], asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )
    """One lock per CopyJob: its status is recomputed from two watches (the CopyJob's and its
    Job's), and two passes at once would both see the same transition and report it twice."""
    share_locks: defaultdict[tuple[str, str], asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )
    """One lock per FileShare: its change handlers and its resync timer run concurrently, and two
    passes at once would both find the share missing (or never taken in hand) and both create or
    adopt it."""
    schedule_locks: defaultdict[tuple[str, str], asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )
    """One lock per SyncSchedule: its timer, its change handlers and the ends of its runs all
    trigger a pass, and two passes at once would both count the same missed times, post the same
    Events and (Replace) delete and create the same runs."""
    missing_secret_retry_seconds: float = MISSING_SECRET_RETRY_SECONDS
    """How long a FileShare whose Secret is missing waits before it looks again."""
