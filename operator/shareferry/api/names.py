"""Names shared by the operator and its workers: API group, kinds, labels, env vars, object names."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

GROUP = "shareferry.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

COPYJOB_KIND, FILESHARE_KIND, SYNCSCHEDULE_KIND = "CopyJob", "FileShare", "SyncSchedule"
COPYJOBS, FILESHARES, SYNCSCHEDULES = "copyjobs", "fileshares", "syncschedules"

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "shareferry"
LABEL_COPYJOB = "shareferry.dev/copyjob"
"""On the worker Job, its pods and the MD5 results ConfigMaps."""
LABEL_SYNCSCHEDULE = "shareferry.dev/syncschedule"
"""On the CopyJobs a SyncSchedule created."""
ANNOTATION_SPEC_HASH = "shareferry.dev/spec-hash"
"""On the worker Job: the hash of the CopyJob spec it runs."""
ANNOTATION_SCHEDULED_TIME = "shareferry.dev/scheduled-time"
"""On a CopyJob a SyncSchedule created: the scheduled time it runs for (RFC 3339, UTC)."""
ANNOTATION_TRIGGER = "shareferry.dev/trigger"
"""On a CopyJob a SyncSchedule's manual trigger created: the ``spec.trigger`` value it answers."""

ENV_COPYJOB_NAMESPACE = "SHAREFERRY_COPYJOB_NAMESPACE"
ENV_COPYJOB_NAME = "SHAREFERRY_COPYJOB_NAME"
ENV_SHARD_COUNT = "SHAREFERRY_SHARD_COUNT"
ENV_SHARD_INDEX = "JOB_COMPLETION_INDEX"
"""Set by Kubernetes in each pod of an Indexed Job."""

SOURCE_ENV_PREFIX = "SHAREFERRY_SOURCE_"
DESTINATION_ENV_PREFIX = "SHAREFERRY_DESTINATION_"
CREDENTIAL_KEYS = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
)
"""The Secret keys the operator injects, each under a side's prefix (secretKeyRef, optional)."""

ENV_VOLUME_ROOT = "SHAREFERRY_VOLUME_ROOT"
DEFAULT_VOLUME_ROOT = "/mnt/shareferry"
"""A pvc endpoint is mounted at <root>/source or <root>/destination (its `path` inside)."""
ENV_STATUS_INTERVAL = "SHAREFERRY_STATUS_INTERVAL"
"""Seconds between worker status patches (default 5)."""

DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
_HASH_LENGTH = 8
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
_NOT_SUBDOMAIN = re.compile(r"[^a-z0-9.-]+")


def worker_job_name(copyjob_name: str) -> str:
    """The worker Job's name: "<name>-worker", shortened with a stable hash to a DNS label."""
    return _bounded(copyjob_name, "-worker", DNS_LABEL_MAX, dots=False)


def md5_configmap_name(copyjob_name: str, shard: int) -> str:
    """The MD5 results ConfigMap of one shard: "<name>-md5-<shard>", at most 253 characters."""
    return _bounded(copyjob_name, f"-md5-{shard}", DNS_SUBDOMAIN_MAX, dots=True)


def scheduled_copyjob_name(schedule_name: str, scheduled_time: datetime) -> str:
    """The CopyJob a SyncSchedule creates for one scheduled time: "<schedule>-<unix minutes>" (as
    a Kubernetes CronJob names its Jobs), so creating it twice is a conflict, never a second run.
    At most 253 characters (a long schedule name is shortened with a stable hash)."""
    if scheduled_time.tzinfo is None:
        raise ValueError("scheduled_time must be timezone-aware")
    minutes = int(scheduled_time.timestamp()) // 60
    return _bounded(schedule_name, f"-{minutes}", DNS_SUBDOMAIN_MAX, dots=True)


def manual_copyjob_name(schedule_name: str, token: str) -> str:
    """The CopyJob a SyncSchedule's manual trigger creates: "<schedule>-manual-<token>" (``token``:
    a short lowercase hex digest naming that trigger), at most 253 characters."""
    return _bounded(schedule_name, f"-manual-{token}", DNS_SUBDOMAIN_MAX, dots=True)


def label_value(name: str) -> str:
    """An object name as a label value (at most 63 characters): unchanged when it fits, else a
    readable prefix and a stable hash (e.g. the value of LABEL_SYNCSCHEDULE for a long name)."""
    return _bounded(name, "", DNS_LABEL_MAX, dots=True)


def _bounded(base: str, suffix: str, limit: int, *, dots: bool) -> str:
    """`base + suffix` when it fits and is valid; else a readable prefix of base, a hash, suffix."""
    clean = _dns_text(base, dots=dots)
    name = clean + suffix
    if len(name) <= limit and clean == base:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:_HASH_LENGTH]
    room = limit - len(suffix) - _HASH_LENGTH - 1
    prefix = clean[:room].rstrip("-.")
    return f"{prefix}-{digest}{suffix}" if prefix else f"{digest}{suffix}"


def _dns_text(text: str, *, dots: bool) -> str:
    """Lowercase letters, digits, hyphens (and dots if allowed), alphanumeric at both ends."""
    lowered = (_NOT_SUBDOMAIN if dots else _NOT_LABEL).sub("-", text.lower())
    return lowered.strip("-.")
