"""The operator's settings, read once from its environment (the Helm chart sets them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_WORKER_IMAGE = "ghcr.io/shareferry/shareferry:0.1.0"
DEFAULT_PULL_POLICY = "IfNotPresent"
DEFAULT_WORKER_SERVICE_ACCOUNT = "shareferry-worker"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")


class SettingsError(ValueError):
    """A setting the operator cannot start with; the message names the variable."""


@dataclass(frozen=True, kw_only=True)
class OperatorSettings:
    """What the operator puts into the worker Jobs it builds.

    ``worker_image`` / ``worker_pull_policy``: the image running ``shareferry worker``
    (``SHAREFERRY_WORKER_IMAGE``, ``SHAREFERRY_WORKER_IMAGE_PULL_POLICY``).
    ``worker_service_account``: the least-privilege account the worker pods run as
    (``SHAREFERRY_WORKER_SERVICE_ACCOUNT``): it may read its CopyJob, patch its status and write
    its results ConfigMap, nothing else.
    ``status_interval``: seconds between a worker's status patches (``SHAREFERRY_STATUS_INTERVAL``).
    """

    worker_image: str = DEFAULT_WORKER_IMAGE
    worker_pull_policy: str = DEFAULT_PULL_POLICY
    worker_service_account: str = DEFAULT_WORKER_SERVICE_ACCOUNT
    status_interval: float = 5.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        env = os.environ if environ is None else environ
        policy = env.get("SHAREFERRY_WORKER_IMAGE_PULL_POLICY", DEFAULT_PULL_POLICY)
        if policy not in PULL_POLICIES:
            raise SettingsError(
                f"SHAREFERRY_WORKER_IMAGE_PULL_POLICY must be one of {', '.join(PULL_POLICIES)}, not {policy!r}"
            )
        interval_text = env.get("SHAREFERRY_STATUS_INTERVAL", "5")
        try:
            interval = float(interval_text)
        except ValueError:
            interval = -1.0
        if interval <= 0:
            raise SettingsError(
                f"SHAREFERRY_STATUS_INTERVAL must be a positive number of seconds, not {interval_text!r}"
            )
        return cls(
            worker_image=env.get("SHAREFERRY_WORKER_IMAGE", DEFAULT_WORKER_IMAGE),
            worker_pull_policy=policy,
            worker_service_account=env.get(
                "SHAREFERRY_WORKER_SERVICE_ACCOUNT", DEFAULT_WORKER_SERVICE_ACCOUNT
            ),
            status_interval=interval,
        )
