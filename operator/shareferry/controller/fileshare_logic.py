"""What a FileShare needs done to its Azure share, and the status it then shows: pure functions.

One pass compares the spec with the share as Azure reports it (:class:`ShareState`, or ``None``
when there is none) and plans the changes (:func:`plan_fileshare`); after they are applied the
share is read again and :func:`fileshare_status` gives the status fields of the CRD. Failures give
:func:`fileshare_error_status`. Nothing is remembered between passes but the stored status:
whether the share was ever taken in hand (``status.adopted`` is set on the pass that created or
adopted it) tells a share deleted behind our back (re-created, a Warning event) from a new one.

What the spec manages: ``quotaGiB`` and ``accessTier`` when given; ``metadata`` when it has
names, and then exactly (names added in Azure are removed, changed values put back); an empty
``metadata`` leaves the share's own alone (an adopted share keeps what it had).

Condition ``Ready``: True (reason ``ShareReady``) once the share exists and matches the spec;
False with the failure's reason (``MissingSecret``, ``InvalidCredentials``,
``AuthenticationFailed``, ``ShareNotFound``, ``QuotaInvalid``, ``QuotaBelowUsage``,
``AccessTierInvalid``, ``AccountNotFound``, ``Unreachable``, ``ServiceUnavailable``...) or
``OutOfSync`` when the share still differs after the changes were applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shareferry.api.conditions import get_condition, rfc3339, set_condition
from shareferry.api.errors import SpecError
from shareferry.api.fileshare import FileShareSpec, share_url
from shareferry.controller.copyjob_logic import Transition
from shareferry.core.errors import CredentialError, ShareFerryError
from shareferry.core.humanize import human_bytes
from shareferry.core.redact import redact
from shareferry.core.shares import ShareError, ShareState

READY = "Ready"
SHARE_READY = "ShareReady"
OUT_OF_SYNC = "OutOfSync"

Action = Literal["create", "adopt", "set-metadata", "set-access-tier", "set-quota"]


@dataclass(frozen=True)
class FileSharePlan:
    """The changes one pass makes, in the order they are applied (:attr:`actions`).

    ``create``: the share is missing; it is created with ``quota_gib`` (``None``: the service's
    default), ``access_tier`` and ``metadata``. ``recreated``: it existed before (this FileShare
    had created or adopted it) and was deleted outside Kubernetes: worth a Warning. ``adopt``: it
    exists but this FileShare never had it. Otherwise ``quota_gib`` / ``access_tier`` /
    ``metadata`` are the values to set (``None``: leave). ``before`` is the share as found."""

    create: bool = False
    recreated: bool = False
    adopt: bool = False
    quota_gib: int | None = None
    access_tier: str | None = None
    metadata: Mapping[str, str] | None = None
    before: ShareState | None = None

    @property
    def actions(self) -> tuple[Action, ...]:
        if self.create:
            return ("create",)
        found: list[Action] = ["adopt"] if self.adopt else []
        if self.metadata is not None:
            found.append("set-metadata")
        if self.access_tier is not None:
            found.append("set-access-tier")
        if self.quota_gib is not None:
            found.append("set-quota")  # last: a refused quota leaves the other changes made
        return tuple(found)

    @property
    def changes_share(self) -> bool:
        """Whether applying the plan sends any request that changes the share."""
        return any(action != "adopt" for action in self.actions)

    @property
    def nothing(self) -> bool:
        return not self.actions


def plan_fileshare(spec: FileShareSpec, actual: ShareState | None, *, known: bool = False) -> FileSharePlan:
    """The plan that brings the share at ``actual`` to ``spec``. ``known``: this FileShare has
    created or adopted the share before (see :func:`share_known`)."""
    if actual is None:
        return FileSharePlan(
            create=True,
            recreated=known,
            quota_gib=spec.quota_gib,
            access_tier=spec.access_tier,
            metadata=dict(spec.metadata) if spec.metadata else None,
        )
    wanted_metadata = dict(spec.metadata) if spec.metadata else None
    return FileSharePlan(
        adopt=not known,
        quota_gib=spec.quota_gib if spec.quota_gib not in (None, actual.quota_gib) else None,
        access_tier=spec.access_tier if spec.access_tier not in (None, actual.access_tier) else None,
        metadata=wanted_metadata if wanted_metadata not in (None, dict(actual.metadata)) else None,
        before=actual,
    )


def share_known(previous_status: Mapping[str, Any] | None) -> bool:
    """Whether the FileShare whose status this is had its share already (``adopted`` is set on
    the pass that first created or adopted it, and kept)."""
    return previous_status is not None and previous_status.get("adopted") is not None


def is_drift(previous_status: Mapping[str, Any] | None, generation: int | None) -> bool:
    """Whether differences found now were made in Azure rather than in the spec: the spec is the
    one the last pass already handled."""
    if previous_status is None or generation is None:
        return False
    return share_known(previous_status) and previous_status.get("observedGeneration") == generation


def on_delete(spec: FileShareSpec) -> bool:
    """Whether deleting the FileShare deletes the Azure share (``deletionPolicy: Delete``)."""
    return spec.deletion_policy == "Delete"


# ---- status -----------------------------------------------------------------------------------


def fileshare_status(
    spec: FileShareSpec,
    actual_after: ShareState,
    *,
    adopted: bool | None,
    generation: int | None,
    now: datetime,
    previous_conditions: Sequence[Mapping[str, Any]] | None,
) -> dict[str, Any]:
    """The status fields for a share that exists (as read after this pass's changes).
    ``adopted`` None leaves the stored value (a status patch merges)."""
    remaining = plan_fileshare(spec, actual_after, known=True)
    if remaining.nothing:
        ready, reason = "True", SHARE_READY
        message = f"share {actual_after.url} is ready: {_summary(actual_after)}"
    else:
        ready, reason = "False", OUT_OF_SYNC
        message = (
            f"share {actual_after.url} still differs from the spec: {', '.join(_differences(remaining))}"
        )
    status: dict[str, Any] = {
        "url": actual_after.url,
        "quotaGiB": actual_after.quota_gib,
        "usageBytes": actual_after.usage_bytes,
        "usage": human_bytes(actual_after.usage_bytes),
        "lastCheckTime": rfc3339(now),
        "conditions": set_condition(
            previous_conditions,
            type=READY,
            status=ready,
            reason=reason,
            message=message,
            generation=generation,
            now=now,
        ),
    }
    if generation is not None:
        status["observedGeneration"] = generation
    if adopted is not None:
        status["adopted"] = adopted
    return status


def fileshare_error_status(
    spec: FileShareSpec | None,
    *,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
    previous_conditions: Sequence[Mapping[str, Any]] | None,
) -> dict[str, Any]:
    """The status fields after a failure: ``Ready`` False with ``reason`` and ``message``
    (redacted). The last known quota and usage stay as stored; ``spec`` None (it did not parse)
    leaves the URL too."""
    status: dict[str, Any] = {
        "lastCheckTime": rfc3339(now),
        "conditions": set_condition(
            previous_conditions,
            type=READY,
            status="False",
            reason=reason,
            message=redact(message),
            generation=generation,
            now=now,
        ),
    }
    if generation is not None:
        status["observedGeneration"] = generation
    if spec is not None:
        status["url"] = share_url(spec)
    return status


def error_reason(error: BaseException) -> tuple[str, str]:
    """``(reason, message)`` for a condition, from any error a pass may meet."""
    if isinstance(error, ShareError):
        return error.reason, str(error)
    if isinstance(error, SpecError):
        return error.reason, error.message
    if isinstance(error, CredentialError):
        return "InvalidCredentials", redact(str(error))
    if isinstance(error, ShareFerryError):
        return "Error", redact(str(error))
    return "InternalError", redact(f"{type(error).__name__}: {error}")


# ---- events -----------------------------------------------------------------------------------


def action_event(plan: FileSharePlan, action: Action, *, url: str, drift: bool = False) -> Transition:
    """The Event for one applied action of ``plan``. ``drift``: the difference was made in Azure,
    not in the spec (the message says it was put back)."""
    before = plan.before
    why = " (changed outside Kubernetes: put back)" if drift else ""
    if action == "create":
        settings = _create_settings(plan)
        if plan.recreated:
            return Transition(
                "Warning",
                "Recreated",
                f"share {url} was deleted outside Kubernetes: created it again{settings}",
            )
        return Transition("Normal", "Created", f"created share {url}{settings}")
    if action == "adopt":
        assert before is not None
        return Transition("Normal", "Adopted", f"adopted the existing share {url}: {_summary(before)}")
    if action == "set-quota":
        old = f"{before.quota_gib} GiB" if before is not None else "?"
        return Transition("Normal", "QuotaUpdated", f"quota of {url}: {old} -> {plan.quota_gib} GiB{why}")
    if action == "set-access-tier":
        old = (before.access_tier if before is not None else None) or "?"
        return Transition(
            "Normal", "AccessTierUpdated", f"access tier of {url}: {old} -> {plan.access_tier}{why}"
        )
    assert plan.metadata is not None
    return Transition(
        "Normal",
        "MetadataUpdated",
        f"metadata of {url}: {_metadata_change(before.metadata if before else {}, plan.metadata)}{why}",
    )


def error_event(
    previous_conditions: Sequence[Mapping[str, Any]] | None, reason: str, message: str
) -> list[Transition]:
    """A Warning for a failure, once: only when ``Ready`` was not already False for ``reason``."""
    ready = get_condition(previous_conditions, READY)
    if ready is not None and ready.get("status") == "False" and ready.get("reason") == reason:
        return []
    return [Transition("Warning", reason, redact(message))]


# ---- texts ------------------------------------------------------------------------------------


def _summary(state: ShareState) -> str:
    tier = f", tier {state.access_tier}" if state.access_tier else ""
    return f"quota {state.quota_gib} GiB, {human_bytes(state.usage_bytes)} used{tier}"


def _create_settings(plan: FileSharePlan) -> str:
    parts = [f"quota {plan.quota_gib} GiB" if plan.quota_gib is not None else "the service's default quota"]
    if plan.access_tier is not None:
        parts.append(f"tier {plan.access_tier}")
    if plan.metadata:
        parts.append(f"metadata {', '.join(sorted(plan.metadata))}")
    return f" ({', '.join(parts)})"


def _differences(plan: FileSharePlan) -> list[str]:
    before = plan.before
    found: list[str] = []
    if plan.quota_gib is not None and before is not None:
        found.append(f"quota {before.quota_gib} GiB, wanted {plan.quota_gib} GiB")
    if plan.access_tier is not None and before is not None:
        found.append(f"access tier {before.access_tier}, wanted {plan.access_tier}")
    if plan.metadata is not None and before is not None:
        found.append(f"metadata {_metadata_change(before.metadata, plan.metadata)}")
    return found


def _metadata_change(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    """``set team, removed owner``: the names that change (values may be long; names say enough)."""
    added = sorted(name for name in new if name not in old)
    changed = sorted(name for name in new if name in old and old[name] != new[name])
    removed = sorted(name for name in old if name not in new)
    parts = [
        f"{verb} {', '.join(names)}"
        for verb, names in (("added", added), ("changed", changed), ("removed", removed))
        if names
    ]
    return "; ".join(parts) or "unchanged"
