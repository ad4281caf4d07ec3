"""Secrets and ConfigMaps as a kubelet reads them: one ``get`` each, under the Node authorizer.

The Node authorizer lets a node read a Secret or ConfigMap only while a pod bound to it refers
to it; a 404 is "does not exist" (the caller decides whether that is optional). Values are
decoded here (Secret ``data`` is base64; ConfigMap ``binaryData`` too) and never logged.
"""

from __future__ import annotations

import base64

from tests.cluster.kubelet.api import Api, Json, describe, status_of


class ObjectError(Exception):
    """A Secret or ConfigMap (or one of its keys) that a pod needs cannot be had."""


class Objects:
    """Reads Secrets and ConfigMaps of one namespace, each at most once per instance."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self._cache: dict[tuple[str, str], dict[str, bytes] | None] = {}

    async def get(self, kind: str, name: str) -> dict[str, bytes] | None:
        """``kind`` is ``secret`` or ``configmap``; None when it does not exist."""
        key = (kind, name)
        if key not in self._cache:
            method = (
                self.api.core.read_namespaced_secret
                if kind == "secret"
                else self.api.core.read_namespaced_config_map
            )
            try:
                body = await self.api.call(method, name, self.namespace)
            except Exception as error:
                if status_of(error) != 404:
                    raise ObjectError(
                        f"cannot read {kind} {self.namespace}/{name}: {describe(error)}"
                    ) from None
                self._cache[key] = None
            else:
                self._cache[key] = _decode(kind, body)
        return self._cache[key]

    async def require(self, kind: str, name: str, *, optional: bool) -> dict[str, bytes] | None:
        """The object's data; a missing object raises unless ``optional`` (then None)."""
        data = await self.get(kind, name)
        if data is None and not optional:
            raise ObjectError(f'{kind} "{name}" not found')
        return data

    async def key(self, kind: str, name: str, key: str, *, optional: bool) -> bytes | None:
        """One key's value, with the kubelet's wording when it or its object is missing."""
        data = await self.require(kind, name, optional=optional)
        if data is None:
            return None
        if key not in data:
            if optional:
                return None
            title = "Secret" if kind == "secret" else "ConfigMap"
            raise ObjectError(f"couldn't find key {key} in {title} {self.namespace}/{name}")
        return data[key]


def _decode(kind: str, body: Json) -> dict[str, bytes]:
    values: dict[str, bytes] = {}
    if kind == "secret":
        for key, value in (body.get("data") or {}).items():
            values[key] = base64.b64decode(value)
        for key, value in (body.get("stringData") or {}).items():
            values[key] = str(value).encode()
        return values
    for key, value in (body.get("binaryData") or {}).items():
        values[key] = base64.b64decode(value)
    for key, value in (body.get("data") or {}).items():
        values[key] = str(value).encode()
    return values
