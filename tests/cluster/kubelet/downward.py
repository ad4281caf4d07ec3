"""The downward API: a pod's own fields (``fieldRef``) and resources (``resourceFieldRef``).

Shared by environment variables and ``downwardAPI`` volume items. Pods run on the host's
network, so ``status.podIP`` and ``status.hostIP`` are both 127.0.0.1.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity

from tests.cluster.kubelet.api import Json

POD_IP = "127.0.0.1"
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


class FieldError(Exception):
    """A field or resource reference the kubelet cannot resolve."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _pairs(mapping: dict[str, str]) -> str:
    """A labels/annotations map as the kubelet writes it into a file: ``key="value"`` lines."""
    return "".join(f'{key}="{_escape(mapping[key])}"\n' for key in sorted(mapping)).rstrip("\n")


def field_value(pod: Json, path: str, *, whole_maps: bool = False) -> str:
    """The value of ``fieldRef.fieldPath`` for ``pod``; ``whole_maps`` allows ``metadata.labels``
    and ``metadata.annotations`` themselves (volumes only, as in Kubernetes)."""
    meta = pod.get("metadata", {})
    spec = pod.get("spec", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": POD_IP,
        "status.podIPs": POD_IP,
        "status.hostIP": POD_IP,
        "status.hostIPs": POD_IP,
    }
    if path in simple:
        return str(simple[path])
    match = _SUBSCRIPT.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if whole_maps and path in ("metadata.labels", "metadata.annotations"):
        return _pairs(meta.get(path.split(".")[1]) or {})
    raise FieldError(f"unsupported fieldPath: {path}")


def resource_value(pod: Json, ref: Json, *, container: str, allocatable: dict[str, str]) -> str:
    """The value of a ``resourceFieldRef``: the container's limit (the node's allocatable when it
    has none) or request, divided by ``divisor`` and rounded up, as the kubelet does."""
    name = ref.get("containerName") or container
    resource = str(ref.get("resource", ""))
    containers = [*pod.get("spec", {}).get("containers", []), *pod.get("spec", {}).get("initContainers", [])]
    spec = next((c for c in containers if c.get("name") == name), None)
    if spec is None:
        raise FieldError(f"resourceFieldRef: no container {name!r}")
    kind, _, resource_name = resource.partition(".")
    if kind not in ("limits", "requests") or not resource_name:
        raise FieldError(f"unsupported resource: {resource}")
    declared = (spec.get("resources") or {}).get(kind) or {}
    raw = declared.get(resource_name)
    if raw is None and kind == "limits":
        raw = allocatable.get(resource_name, "0")
    value = parse_quantity(str(raw if raw is not None else "0"))
    divisor = parse_quantity(str(ref.get("divisor") or "1"))
    if divisor == 0:
        raise FieldError(f"resourceFieldRef {resource}: divisor is zero")
    return str(math.ceil(Decimal(value) / Decimal(divisor)))
