"""When the FileShare timer looks at a share again: every resyncSeconds while Ready, within a
minute while not (nothing watches Secrets, so a fixed key must be noticed this way)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shareferry.controller.fileshare_pass import NOT_READY_RECHECK_SECONDS, resync_due

CHECKED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def body(*, ready: str | None, resync: int = 600, checked: datetime | None = CHECKED) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if checked is not None:
        status["lastCheckTime"] = checked.strftime("%Y-%m-%dT%H:%M:%SZ")
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, "reason": "X"}]
    return {"spec": {"resyncSeconds": resync}, "status": status}


def test_a_ready_share_waits_for_its_resync_interval() -> None:
    share = body(ready="True", resync=600)
    assert not resync_due(share, now=CHECKED + timedelta(seconds=599))
    assert resync_due(share, now=CHECKED + timedelta(seconds=600))


def test_a_share_that_is_not_ready_is_looked_at_within_a_minute() -> None:
    for ready in ("False", "Unknown", None):
        share = body(ready=ready, resync=600)
        assert not resync_due(share, now=CHECKED + timedelta(seconds=NOT_READY_RECHECK_SECONDS - 1))
        assert resync_due(share, now=CHECKED + timedelta(seconds=NOT_READY_RECHECK_SECONDS))


def test_a_short_resync_interval_still_wins_and_a_first_check_is_due_at_once() -> None:
    assert resync_due(body(ready="False", resync=30), now=CHECKED + timedelta(seconds=30))
    assert resync_due(body(ready=None, checked=None), now=CHECKED)
