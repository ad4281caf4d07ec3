"""ShareFerry's Kubernetes API access: an async facade (:class:`KubeClient`) over the
``kubernetes`` package, the configuration that package loads (in-cluster or kubeconfig), the
resources ShareFerry uses and the errors callers catch. Imports nothing else of ShareFerry."""

from shareferry.kube.client import KubeClient
from shareferry.kube.config import Credentials, credentials, load_configuration
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
    "Credentials",
    "KubeClient",
    "KubeError",
    "NotFound",
    "Resource",
    "credentials",
    "load_configuration",
]
