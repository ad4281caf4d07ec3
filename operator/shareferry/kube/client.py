"""An async Kubernetes API client on aiohttp: get, list, create, merge-patch, delete, watch."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any

import aiohttp

from shareferry.kube.config import KubeConfig
from shareferry.kube.errors import ConfigError, KubeError, error_from_response
from shareferry.kube.resources import Resource

MERGE_PATCH = "application/merge-patch+json"
JSON = "application/json"


def _ssl_context(config: KubeConfig) -> ssl.SSLContext | bool:
    if not config.server.startswith("https:"):
        return True  # plain http: aiohttp ignores it
    if config.insecure:
        return False
    try:
        context = ssl.create_default_context(cafile=config.ca_path, cadata=config.ca_data)
        if config.client_cert_path and config.client_key_path:
            context.load_cert_chain(config.client_cert_path, config.client_key_path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS files for {config.server}: {exc}") from None
    return context


class KubeClient:
    """One aiohttp session to one API server. Use as ``async with KubeClient.from_config(c) as k``
    (or call ``close()``). Every error the server returns raises ``KubeError`` (``NotFound``,
    ``Conflict``) with the Status' reason and message; the bearer token is read anew for every
    request and never appears in an error or a log."""

    def __init__(self, config: KubeConfig, *, timeout: float = 30.0) -> None:
        self.config = config
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(cls, config: KubeConfig) -> KubeClient:
        return cls(config)

    async def __aenter__(self) -> KubeClient:
        return self  # the session opens with the first request

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=_ssl_context(self.config))
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        return self._session

    def _prepare(self, content_type: str | None = None) -> tuple[aiohttp.ClientSession, dict[str, str]]:
        """The session and the headers of one request (a TLS or token file problem becomes a
        KubeError like any other failed request)."""
        try:
            return self._ensure_session(), self._headers(content_type)
        except ConfigError as exc:
            raise KubeError(status=0, reason="Unauthorized", message=str(exc)) from None

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": JSON}
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str = JSON,
    ) -> Any:
        """One API call; returns the decoded JSON answer (None when empty)."""
        data = None if body is None else json.dumps(body)
        session, headers = self._prepare(content_type if data is not None else None)
        try:
            async with session.request(
                method, self.config.server + path, params=params, data=data, headers=headers
            ) as response:
                text = await response.text()
                payload = _decode(text)
                if response.status >= 400:
                    raise error_from_response(response.status, payload, fallback_text=text)
                return payload
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeError(
                status=0,
                reason="ServiceUnavailable",
                message=f"cannot reach the API server {self.config.server}: {type(exc).__name__} {exc}".strip(),
            ) from None

    async def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return _object(await self.request("GET", res.path(namespace, name)))

    async def list(
        self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """The items of a collection (all namespaces when ``namespace`` is None)."""
        params = {"labelSelector": label_selector} if label_selector else None
        answer = _object(await self.request("GET", res.path(namespace), params=params))
        items = answer.get("items") or []
        return [dict(item) for item in items if isinstance(item, Mapping)]

    async def create(self, res: Resource, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        return _object(await self.request("POST", res.path(namespace), body=body))

    async def replace(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """PUT the whole object (with its resourceVersion for an optimistic update)."""
        return _object(await self.request("PUT", res.path(namespace, name, subresource), body=body))

    async def patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386): ``None`` values delete keys, lists are replaced whole."""
        return _object(
            await self.request(
                "PATCH", res.path(namespace, name, subresource), body=patch, content_type=MERGE_PATCH
            )
        )

    async def delete(
        self, res: Resource, namespace: str | None, name: str, *, propagation: str = "Background"
    ) -> None:
        """Delete one object; ``propagation`` is Background, Foreground or Orphan."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        await self.request(
            "DELETE", res.path(namespace, name), params={"propagationPolicy": propagation}, body=body
        )

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 60,
    ) -> AsyncIterator[dict[str, Any]]:
        """The watch events (``{"type": ..., "object": ...}``) of a collection, until the server
        ends the stream (after ``timeout_seconds``). An ``ERROR`` event raises ``KubeError``."""
        session, headers = self._prepare()
        params = {"watch": "true", "timeoutSeconds": str(timeout_seconds)}
        if label_selector:
            params["labelSelector"] = label_selector
        if resource_version:
            params["resourceVersion"] = resource_version
        try:
            async with session.get(
                self.config.server + res.path(namespace),
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 10),
            ) as response:
                if response.status >= 400:
                    text = await response.text()
                    raise error_from_response(response.status, _decode(text), fallback_text=text)
                async for line in response.content:
                    event = _decode(line.decode("utf-8"))
                    if not isinstance(event, Mapping):
                        continue
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        code = status.get("code", 500) if isinstance(status, Mapping) else 500
                        raise error_from_response(int(code), status)
                    yield dict(event)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeError(
                status=0,
                reason="ServiceUnavailable",
                message=f"watch on {self.config.server} failed: {type(exc).__name__} {exc}".strip(),
            ) from None


def _decode(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _object(payload: Any) -> dict[str, Any]:
    if isinstance(payload, Mapping):
        return dict(payload)
    raise KubeError(status=0, reason="InvalidResponse", message="the API server answered with no JSON object")
