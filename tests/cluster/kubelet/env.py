"""A container's environment and command line, built as the kubelet builds them.

Order, as in the kubelet: the ``kubernetes`` service's variables, then ``envFrom`` sources in
order (keys that are not valid variable names are skipped), then ``env`` entries in order, each
``value`` expanded with ``$(VAR)`` against what is defined so far. A missing Secret, ConfigMap or
key that is not optional raises :class:`~tests.cluster.kubelet.objects.ObjectError`; the pod
worker reports it as ``CreateContainerConfigError`` and retries.

The image's own environment (ShareFerry's image sets PATH, HOME, PYTHONUNBUFFERED and
PYTHONDONTWRITEBYTECODE) sits below everything the pod defines, and the runtime's ``HOSTNAME``
is the pod's name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.cluster.kubelet.api import Json
from tests.cluster.kubelet.downward import FieldError, field_value, resource_value
from tests.cluster.kubelet.objects import ObjectError, Objects

_REFERENCE = re.compile(r"\$\$|\$\(([^)]*)\)")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: a defined variable is replaced, an undefined reference
    stays as written, ``$$`` is a literal ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _REFERENCE.sub(replace, text)


@dataclass(frozen=True)
class NodeContext:
    """What the environment needs from the node: the API address and the node's resources."""

    api_host: str
    api_port: int
    allocatable: Mapping[str, str]


def service_env(node: NodeContext) -> dict[str, str]:
    """The variables of the ``kubernetes`` service, as every container gets them."""
    host, port = node.api_host, node.api_port
    url = f"tcp://{host}:{port}"
    prefix = f"KUBERNETES_PORT_{port}_TCP"
    return {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": str(port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
        "KUBERNETES_PORT": url,
        prefix: url,
        f"{prefix}_PROTO": "tcp",
        f"{prefix}_PORT": str(port),
        f"{prefix}_ADDR": host,
    }


def image_env(*, home: Path, entrypoint_bin: Path | None, python_path: str | None) -> dict[str, str]:
    """The environment ShareFerry's image declares (PATH leads to its ``shareferry``)."""
    path = f"{entrypoint_bin}:{SYSTEM_PATH}" if entrypoint_bin else SYSTEM_PATH
    env = {"PATH": path, "HOME": str(home), "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    if python_path:
        env["PYTHONPATH"] = python_path
    return env


async def _from_source(source: Json, objects: Objects) -> dict[str, str]:
    if "secretRef" in source:
        kind, ref = "secret", source["secretRef"]
    elif "configMapRef" in source:
        kind, ref = "configmap", source["configMapRef"]
    else:
        return {}
    data = await objects.require(kind, str(ref.get("name", "")), optional=bool(ref.get("optional")))
    prefix = str(source.get("prefix") or "")
    return {prefix + key: value.decode(errors="replace") for key, value in (data or {}).items()}


async def _value_from(
    pod: Json, container: str, spec: Json, objects: Objects, node: NodeContext
) -> str | None:
    if "secretKeyRef" in spec or "configMapKeyRef" in spec:
        kind = "secret" if "secretKeyRef" in spec else "configmap"
        ref = spec["secretKeyRef" if kind == "secret" else "configMapKeyRef"]
        value = await objects.key(
            kind, str(ref.get("name", "")), str(ref.get("key", "")), optional=bool(ref.get("optional"))
        )
        return None if value is None else value.decode(errors="replace")
    try:
        if "fieldRef" in spec:
            return field_value(pod, str(spec["fieldRef"].get("fieldPath", "")))
        if "resourceFieldRef" in spec:
            return resource_value(
                pod, spec["resourceFieldRef"], container=container, allocatable=dict(node.allocatable)
            )
    except FieldError as error:
        raise ObjectError(str(error)) from None
    return None


async def container_env(pod: Json, container: Json, objects: Objects, node: NodeContext) -> dict[str, str]:
    """The variables the kubelet hands the runtime for ``container`` (without the image's)."""
    services = service_env(node)
    env: dict[str, str] = dict(services)
    for source in container.get("envFrom") or []:
        for key, value in (await _from_source(source, objects)).items():
            if _ENV_NAME.match(key):
                env[key] = value
    name = str(container.get("name", ""))
    for entry in container.get("env") or []:
        var = str(entry.get("name", ""))
        if entry.get("valueFrom"):
            resolved = await _value_from(pod, name, entry["valueFrom"], objects, node)
            if resolved is None:
                continue
            env[var] = resolved
        else:
            env[var] = expand(str(entry.get("value") or ""), env)
    return env


def command_line(container: Json, env: Mapping[str, str], *, entrypoint: list[str]) -> list[str]:
    """``command`` + ``args`` with ``$(VAR)`` expanded; without ``command``, the image's
    ENTRYPOINT (``entrypoint``) with ``args``, or with the image's CMD (``--help``) when there
    are no ``args`` either."""
    command = [expand(str(part), env) for part in container.get("command") or []]
    args = [expand(str(part), env) for part in container.get("args") or []]
    if command:
        return command + args
    return [*entrypoint, *(args or ["--help"])]
