"""One pass over one FileShare against the Kubernetes API: read its Secret, reconcile the Azure
share (:mod:`shareferry.controller.fileshare_ops`), write the status, feed the metrics.

The Secret's keys (:data:`~shareferry.api.names.CREDENTIAL_KEYS`) become the environment the
core resolves credentials from; with ``workloadIdentity: true`` the environment is empty and the
operator's own identity (azure-identity) is used. A missing Secret is a condition
(``MissingSecret``) and a retry, never an exception in the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shareferry.api.conditions import parse_rfc3339
from shareferry.api.errors import SpecError
from shareferry.api.fileshare import FileShareSpec, parse_fileshare
from shareferry.api.secrets import secret_credentials
from shareferry.controller.copyjob_logic import Transition
from shareferry.controller.fileshare_logic import error_event, fileshare_error_status
from shareferry.controller.fileshare_ops import delete_fileshare, reconcile_fileshare
from shareferry.controller.metrics import OperatorMetrics
from shareferry.kube import FILESHARES, SECRETS, KubeClient, NotFound

MISSING_SECRET_RETRY_SECONDS = 30.0
GIB = 1 << 30


class MissingSecret(Exception):
    """The Secret a FileShare names is not there (yet)."""


@dataclass
class PassOutcome:
    events: list[Transition] = field(default_factory=list)
    retry_after: float | None = None
    ready: bool = False


def secret_environ(secret: Mapping[str, Any]) -> dict[str, str]:
    """The credential keys of a Secret (``data`` is base64, ``stringData`` plain) as variables."""
    return secret_credentials(secret).values  # an undecodable key is left out


async def credentials_for(kube: KubeClient, namespace: str, spec: FileShareSpec) -> dict[str, str]:
    if spec.workload_identity or spec.secret_name is None:
        return {}
    try:
        secret = await kube.get(SECRETS, namespace, spec.secret_name)
    except NotFound as missing:
        raise MissingSecret(
            f"the credentials Secret {spec.secret_name!r} does not exist in namespace {namespace}"
        ) from missing
    return secret_environ(secret)


async def _patch(kube: KubeClient, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
    meta = body["metadata"]
    await kube.patch(
        FILESHARES, meta["namespace"], meta["name"], {"status": dict(status)}, subresource="status"
    )


async def fileshare_pass(
    kube: KubeClient,
    body: Mapping[str, Any],
    *,
    now: datetime,
    metrics: OperatorMetrics,
    retry: int = 0,
    missing_secret_retry: float = MISSING_SECRET_RETRY_SECONDS,
) -> PassOutcome:
    """Reconcile the FileShare ``body`` (as stored now) and write its status. ``retry``: how many
    times kopf has retried this pass; ``missing_secret_retry``: the seconds to wait before looking
    again for a missing Secret."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    status = body.get("status") or {}
    conditions = status.get("conditions") or []
    generation = meta.get("generation")
    try:
        spec = parse_fileshare(body.get("spec") or {})
    except SpecError as error:
        # The schema normally stops these; a server without CEL or an older CRD may not.
        await _patch(
            kube,
            body,
            fileshare_error_status(
                None,
                reason=error.reason,
                message=error.message,
                generation=generation,
                now=now,
                previous_conditions=conditions,
            ),
        )
        metrics.fileshare_observed(namespace=namespace, fileshare=name, ready=False)
        return PassOutcome(events=error_event(conditions, error.reason, error.message))
    try:
        environ = await credentials_for(kube, namespace, spec)
    except MissingSecret as missing:
        new_status = fileshare_error_status(
            spec,
            reason="MissingSecret",
            message=str(missing),
            generation=generation,
            now=now,
            previous_conditions=conditions,
        )
        await _patch(kube, body, new_status)
        metrics.fileshare_observed(namespace=namespace, fileshare=name, ready=False)
        metrics.error_observed(namespace=namespace, kind="FileShare", reason="MissingSecret")
        return PassOutcome(
            events=error_event(conditions, "MissingSecret", str(missing)),
            retry_after=missing_secret_retry,
        )
    outcome = await reconcile_fileshare(
        spec,
        environ,
        generation=generation,
        now=now,
        previous_conditions=conditions,
        previous_status=status,
        retry=retry,
    )
    await _patch(kube, body, outcome.status)
    quota = outcome.status.get("quotaGiB")
    metrics.fileshare_observed(
        namespace=namespace,
        fileshare=name,
        ready=outcome.ready,
        quota_bytes=int(quota) * GIB if quota is not None else None,
        usage_bytes=outcome.status.get("usageBytes"),
    )
    if not outcome.ready:
        metrics.error_observed(namespace=namespace, kind="FileShare", reason=outcome.reason)
    return PassOutcome(events=outcome.events, retry_after=outcome.retry_after, ready=outcome.ready)


NOT_READY_RECHECK_SECONDS = 60
"""A FileShare that is not Ready (a wrong key, a quota Azure refused) is looked at again this
often at most, not only every ``resyncSeconds``: nothing watches Secrets, so this is how a fixed
Secret is noticed within a minute."""


def resync_due(body: Mapping[str, Any], *, now: datetime) -> bool:
    """Whether the periodic check is due: ``spec.resyncSeconds`` since ``lastCheckTime``, or
    :data:`NOT_READY_RECHECK_SECONDS` while ``Ready`` is not True."""
    status = body.get("status") or {}
    last = status.get("lastCheckTime")
    if not last:
        return True
    checked = parse_rfc3339(last)
    if checked is None:
        return True
    interval = int((body.get("spec") or {}).get("resyncSeconds", 600))
    ready: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    if ready.get("status") != "True":
        interval = min(interval, NOT_READY_RECHECK_SECONDS)
    return (now - checked).total_seconds() >= interval


async def fileshare_deleted(
    kube: KubeClient, body: Mapping[str, Any], *, metrics: OperatorMetrics
) -> list[Transition]:
    """Delete (or retain) the Azure share as the policy says; raises when Azure refuses, so the
    finalizer stays and kopf retries."""
    meta = body["metadata"]
    metrics.forget_fileshare(namespace=meta["namespace"], fileshare=meta["name"])
    try:
        spec = parse_fileshare(body.get("spec") or {})
    except SpecError:
        return []  # never managed anything
    if spec.deletion_policy != "Delete":
        return await delete_fileshare(spec, {})
    environ = await credentials_for(kube, meta["namespace"], spec)
    return await delete_fileshare(spec, environ)
