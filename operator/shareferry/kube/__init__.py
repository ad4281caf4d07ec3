"""A small async Kubernetes API client (aiohttp) and its configuration; imports nothing of ours."""

from shareferry.kube.client import KubeClient
from shareferry.kube.config import KubeConfig, load_config
from shareferry.kube.errors import ConfigError, Conflict, KubeError, NotFound
from shareferry.kube.resources import (
    CONFIGMAPS,
    COPYJOBS,
    EVENTS,
    FILESHARES,
    JOBS,
    LEASES,
    NAMESPACES,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    SYNCSCHEDULES,
    Resource,
)

__all__ = [
    "CONFIGMAPS",
    "COPYJOBS",
    "EVENTS",
    "FILESHARES",
    "JOBS",
    "LEASES",
    "NAMESPACES",
    "PODS",
    "SECRETS",
    "SERVICEACCOUNTS",
    "SYNCSCHEDULES",
    "ConfigError",
    "Conflict",
    "KubeClient",
    "KubeConfig",
    "KubeError",
    "NotFound",
    "Resource",
    "load_config",
]
