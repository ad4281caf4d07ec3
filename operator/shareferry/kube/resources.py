"""The API resources ShareFerry talks to, and how each one's URL path is built.

These stay ours: the ``kubernetes`` package has a generated method per built-in kind (model
objects, no merge patch on the core API's generic path) and ``CustomObjectsApi`` only for
``/apis/<group>``; its ``dynamic`` client finds paths through discovery requests at start-up.
A descriptor names one resource in one line, builds its path with no request, and is what the
facade, the test cluster and the callers share."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Resource:
    """One API resource type: ``group`` is "" for the core API (``/api/v1``)."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """``group/version`` as written in a manifest's ``apiVersion`` (``v1`` for core)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        """The URL path of the collection (``name`` None), of one object, or of its subresource.

        ``namespace`` None on a namespaced resource means "all namespaces" (lists and watches).
        """
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [base]
        if self.namespaced and namespace is not None:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
            if subresource is not None:
                parts.append(subresource)
        elif subresource is not None:
            raise ValueError("a subresource needs an object name")
        return "/".join(parts)


JOBS = Resource("batch", "v1", "jobs")
PODS = Resource("", "v1", "pods")
SECRETS = Resource("", "v1", "secrets")
CONFIGMAPS = Resource("", "v1", "configmaps")
EVENTS = Resource("", "v1", "events")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
LEASES = Resource("coordination.k8s.io", "v1", "leases")

COPYJOBS = Resource("shareferry.dev", "v1alpha1", "copyjobs")
FILESHARES = Resource("shareferry.dev", "v1alpha1", "fileshares")
SYNCSCHEDULES = Resource("shareferry.dev", "v1alpha1", "syncschedules")
