"""What the controller does for a CopyJob, against the Kubernetes API: start, refresh, stop.

Each function reads what it needs, decides with the pure functions of
:mod:`shareferry.controller.copyjob_logic` and :mod:`shareferry.controller.worker_job`, and
writes the result back. The kopf handlers in :mod:`shareferry.controller.handlers` call these in
a line or two; tests call them too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shareferry.api import names
from shareferry.api.copyjob import SpecError, parse_copyjob, spec_hash
from shareferry.controller.copyjob_logic import (
    TERMINAL_PHASES,
    Transition,
    copyjob_status,
    not_accepted_status,
    spec_change_refused,
    transitions,
)
from shareferry.controller.settings import OperatorSettings
from shareferry.controller.worker_job import SIDES, build_worker_job, referenced_fileshares, secret_for
from shareferry.kube import CONFIGMAPS, COPYJOBS, FILESHARES, JOBS, SECRETS, KubeClient, NotFound

RETRY_MISSING_SECONDS = 30.0
"""How soon a CopyJob waiting for a Secret or FileShare looks again."""
RETRY_JOB_NAME_SECONDS = 5.0
"""How soon a CopyJob whose worker Job name is taken by another Job looks again (most often a
Job of a deleted CopyJob of the same name, which the garbage collector is about to remove)."""
JOB_NAME_IN_USE = "JobNameInUse"


@dataclass
class Outcome:
    """What happened: events to post, a retry delay when waiting, the status now stored."""

    events: list[Transition] = field(default_factory=list)
    retry_after: float | None = None
    status: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    """True once, on the pass that moved the CopyJob into a terminal phase."""
    uid: str = ""
    mode: str = "copy"


async def _patch_status(kube: KubeClient, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
    meta = body["metadata"]
    await kube.patch(
        COPYJOBS, meta["namespace"], meta["name"], {"status": dict(status)}, subresource="status"
    )


async def get_or_none(kube: KubeClient, resource: Any, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return await kube.get(resource, namespace, name)
    except NotFound:
        return None


def owns(copyjob: Mapping[str, Any], job: Mapping[str, Any]) -> bool:
    """Whether ``job`` is this CopyJob's worker Job, not another one under the same name: a Job
    of an earlier CopyJob of that name (deleted, its Job not yet gone) or someone else's."""
    uid = copyjob.get("metadata", {}).get("uid")
    if not uid:
        return True  # no identity to compare (never so on a real API server)
    references = job.get("metadata", {}).get("ownerReferences") or []
    return any(reference.get("uid") == uid for reference in references)


async def start_copyjob(
    kube: KubeClient,
    body: Mapping[str, Any],
    *,
    settings: OperatorSettings,
    now: datetime,
    announce: Callable[[Transition], None] = lambda _event: None,
    missing_retry: float = RETRY_MISSING_SECONDS,
) -> Outcome:
    """Validate the CopyJob, check what it refers to, and create its worker Job if absent.

    ``announce`` gets the ``JobCreated`` event the moment the Job exists, so it is posted before
    anything the workers' first reports cause.

    A bad spec fails the CopyJob for good (no retry can fix it); a missing Secret or FileShare
    leaves it Pending and asks to be retried (someone may be about to create it).
    """
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    raw_spec: Mapping[str, Any] = body.get("spec") or {}
    if (body.get("status") or {}).get("jobName"):
        # Started before (perhaps finished, its Job removed by ttlSecondsAfterFinished): never
        # start it again, only bring the status up to date.
        return await refresh_copyjob(kube, namespace, name, now=now)
    try:
        parse_copyjob(raw_spec)
    except SpecError as error:
        status = not_accepted_status(
            body, reason=error.reason, message=error.message, now=now, permanent=True
        )
        await _patch_status(kube, body, status)
        return Outcome(
            events=[Transition("Warning", error.reason, error.message)], status=status, finished=True
        )

    fileshare_secrets: dict[str, str | None] = {}
    fileshare_identity: dict[str, bool] = {}
    for share_name in referenced_fileshares(raw_spec):
        share = await get_or_none(kube, FILESHARES, namespace, share_name)
        if share is None:
            return await _wait(
                missing_retry,
                kube,
                body,
                now,
                "FileShareNotFound",
                f"FileShare {share_name!r} does not exist in namespace {namespace}",
            )
        share_spec = share.get("spec") or {}
        fileshare_secrets[share_name] = (share_spec.get("credentials") or {}).get("secretName")
        fileshare_identity[share_name] = bool(share_spec.get("workloadIdentity", False))

    for side in SIDES:
        secret = secret_for(raw_spec[side], fileshare_secrets)
        if secret and await get_or_none(kube, SECRETS, namespace, secret) is None:
            return await _wait(
                missing_retry,
                kube,
                body,
                now,
                "MissingSecret",
                f"the {side}'s credentials Secret {secret!r} does not exist in namespace {namespace}",
            )

    job_name = names.worker_job_name(name)
    existing = await get_or_none(kube, JOBS, namespace, job_name)
    if existing is not None and not owns(body, existing):
        going = " (it is being deleted)" if existing["metadata"].get("deletionTimestamp") else ""
        return await _wait(
            min(missing_retry, RETRY_JOB_NAME_SECONDS),
            kube,
            body,
            now,
            JOB_NAME_IN_USE,
            f"the worker Job name is taken: Job {job_name!r} in namespace {namespace} belongs to "
            f"something else{going}; waiting for it to go",
        )
    if existing is None:
        job = build_worker_job(
            body,
            settings=settings,
            spec_hash=spec_hash(raw_spec),
            fileshare_secrets=fileshare_secrets,
            fileshare_identity=fileshare_identity,
        )
        await kube.create(JOBS, namespace, job)
        workers = int(raw_spec.get("parallelism", 1))
        announce(
            Transition(
                "Normal", "JobCreated", f"created Job {job_name} with {workers} worker{'s' * (workers != 1)}"
            )
        )
    return await refresh_copyjob(kube, namespace, name, now=now)


async def _wait(
    retry_after: float, kube: KubeClient, body: Mapping[str, Any], now: datetime, reason: str, message: str
) -> Outcome:
    status = not_accepted_status(body, reason=reason, message=message, now=now, permanent=False)
    await _patch_status(kube, body, status)
    previous = ((body.get("status") or {}).get("conditions")) or []
    already = any(c.get("type") == "Accepted" and c.get("reason") == reason for c in previous)
    events = [] if already else [Transition("Warning", reason, message)]
    return Outcome(events=events, retry_after=retry_after, status=status)


async def refresh_copyjob(
    kube: KubeClient, namespace: str, name: str, *, now: datetime | Callable[[], datetime]
) -> Outcome:
    """Recompute the CopyJob's status from its shard reports and its Job; patch it if it changed."""
    moment = now() if callable(now) else now
    body = await get_or_none(kube, COPYJOBS, namespace, name)
    if body is None or body.get("metadata", {}).get("deletionTimestamp"):
        return Outcome()
    old = body.get("status") or {}
    job = await get_or_none(kube, JOBS, namespace, names.worker_job_name(name))
    if job is not None and not owns(body, job):
        job = None  # another Job under the name (see start_copyjob): nothing of this run
    if job is None and (old.get("phase") in TERMINAL_PHASES or not old.get("shardReports")):
        # Not started (or refused) yet, or finished with its Job since removed by
        # ttlSecondsAfterFinished: the stored status is the last word.
        return Outcome(status=dict(old))
    status = copyjob_status(body, job, now=moment)
    if old.get("phase") in TERMINAL_PHASES and status.get("phase") == old.get("phase"):
        status["completionTime"] = old.get("completionTime", status.get("completionTime"))
        if "durationSeconds" in old:
            status["durationSeconds"] = old["durationSeconds"]
    changed = {key: value for key, value in status.items() if old.get(key) != value}
    events = transitions(old.get("phase"), status)
    if changed:
        await _patch_status(kube, body, changed)
    finished = status.get("phase") in TERMINAL_PHASES and old.get("phase") != status.get("phase")
    return Outcome(
        events=events,
        status=status,
        finished=finished,
        uid=str(body.get("metadata", {}).get("uid", "")),
        mode=str((body.get("spec") or {}).get("mode", "copy")),
    )


async def refuse_spec_change(kube: KubeClient, body: Mapping[str, Any], *, now: datetime) -> Outcome:
    """After a spec edit: refuse it (a condition and an event) if a Job runs another spec."""
    meta = body["metadata"]
    job = await get_or_none(kube, JOBS, meta["namespace"], names.worker_job_name(meta["name"]))
    if job is None or not owns(body, job):
        return Outcome()
    running = (job.get("metadata", {}).get("annotations") or {}).get(names.ANNOTATION_SPEC_HASH, "")
    new = spec_hash(body.get("spec") or {})
    conditions = spec_change_refused(body, running_hash=running, new_hash=new, now=now)
    await _patch_status(kube, body, {"conditions": conditions})
    if running == new:
        return Outcome(status={"conditions": conditions})
    message = next(c["message"] for c in conditions if c["type"] == "SpecChangeRefused")
    return Outcome(
        events=[Transition("Warning", "SpecImmutable", message)], status={"conditions": conditions}
    )


@dataclass(frozen=True)
class Stopping:
    """Where the stop of a deleted CopyJob's workers stands."""

    requested: bool
    """This call asked for the worker Job's deletion (it was there and not yet being deleted)."""
    pending: bool
    """The worker Job still exists: its pods are still stopping. Ask again later."""


async def stop_copyjob(kube: KubeClient, copyjob: Mapping[str, Any]) -> Stopping:
    """Stop a deleted CopyJob's workers: delete its worker Job (foreground: the Job stays until
    its pods are gone), and once the Job is gone, the results ConfigMaps.

    The caller keeps the CopyJob (its finalizer) while ``pending``: a CopyJob that is gone has no
    worker left writing to its destination, and a new CopyJob of the same name finds the worker
    Job name free. A real cluster's garbage collector would also delete the Job through its
    ownerReference, in the background and after the CopyJob is gone; deleting it here stops the
    workers at once. Another Job under the name (not this CopyJob's) is left alone.
    """
    meta = copyjob["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    job_name = names.worker_job_name(name)
    job = await get_or_none(kube, JOBS, namespace, job_name)
    if job is not None and owns(copyjob, job):
        if job["metadata"].get("deletionTimestamp"):
            return Stopping(requested=False, pending=True)
        with contextlib.suppress(NotFound):
            await kube.delete(JOBS, namespace, job_name, propagation="Foreground")
        return Stopping(requested=True, pending=True)
    for config_map in await kube.list(CONFIGMAPS, namespace, label_selector=f"{names.LABEL_COPYJOB}={name}"):
        with contextlib.suppress(NotFound):
            await kube.delete(CONFIGMAPS, namespace, config_map["metadata"]["name"])
    return Stopping(requested=False, pending=False)
