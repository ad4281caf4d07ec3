"""Kubernetes-style status conditions: set one (keeping its transition time while its status
holds) and read one back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shareferry.core.redact import redact

STATUSES = ("True", "False", "Unknown")
MAX_MESSAGE = 1024


def rfc3339(moment: datetime) -> str:
    """``moment`` as the API server writes times: UTC, whole seconds, ``Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: object) -> datetime | None:
    """A time as the API gives it (RFC 3339 text, or a datetime from YAML) as an aware UTC
    datetime; None when absent or unreadable."""
    if isinstance(value, datetime):
        found = value
    elif isinstance(value, str) and value:
        try:
            found = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if found.tzinfo is None:
        found = found.replace(tzinfo=UTC)
    return found.astimezone(UTC)


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    *,
    type: str,
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """``conditions`` with condition ``type`` set (added at the end when new). Its
    ``lastTransitionTime`` is ``now`` when the status changes and kept while it holds; the
    message is redacted (no SAS signature or key) and bounded; ``observedGeneration`` is
    ``generation`` when given. ``status`` is "True", "False" or "Unknown"."""
    if status not in STATUSES:
        raise ValueError(f"a condition status is True, False or Unknown, not {status!r}")
    updated: list[dict[str, Any]] = []
    found = False
    for condition in conditions or ():
        if condition.get("type") != type:
            updated.append(dict(condition))
            continue
        found = True
        same = condition.get("status") == status and condition.get("lastTransitionTime")
        since = condition["lastTransitionTime"] if same else rfc3339(now)
        updated.append(_condition(type, status, reason, message, generation, since))
    if not found:
        updated.append(_condition(type, status, reason, message, generation, rfc3339(now)))
    return updated


def get_condition(conditions: Sequence[Mapping[str, Any]] | None, type: str) -> dict[str, Any] | None:
    """The condition ``type``, or ``None``."""
    for condition in conditions or ():
        if condition.get("type") == type:
            return dict(condition)
    return None


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type: str) -> bool:
    """Whether condition ``type`` is there with status "True"."""
    condition = get_condition(conditions, type)
    return condition is not None and condition.get("status") == "True"


def _condition(
    type_: str, status: str, reason: str, message: str, generation: int | None, since: str
) -> dict[str, Any]:
    text = redact(" ".join(message.split()))
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 1] + "…"
    condition: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": text,
        "lastTransitionTime": since,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    return condition
