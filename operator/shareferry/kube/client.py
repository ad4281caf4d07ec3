"""ShareFerry's async facade over the ``kubernetes`` package: get, list, create, replace,
merge-patch, delete and watch on :class:`Resource` descriptors, with JSON dicts in and out.

The package's ``ApiClient`` does the HTTP (urllib3: TLS, proxies, the Authorization header its
configuration refreshes), blocking; each call runs on a small thread pool of this client's own,
so the event loop never waits on the network and at most ``max_workers`` requests run at once.
Paths come from the descriptors and bodies stay plain dicts (no model classes): the callers
write merge patches and read ``status`` of custom resources the package has no model for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import kubernetes.client
import kubernetes.watch
import urllib3

from shareferry.kube.config import load_configuration
from shareferry.kube.errors import KubeError, error_from_api_exception
from shareferry.kube.resources import Resource

MERGE_PATCH = "application/merge-patch+json"
JSON = "application/json"
AUTH_SETTINGS = ["BearerToken"]
"""The package's name for the Authorization header its configuration fills in."""
WATCH_READ_MARGIN = 10.0
"""How much longer than its ``timeoutSeconds`` a watch waits for the server to end it."""
T = TypeVar("T")


class KubeClient:
    """One ``kubernetes.client.ApiClient`` to one API server. Use as ``async with KubeClient(c)``
    (or call ``close()``); ``KubeClient.from_environment()`` loads the configuration in-cluster
    or from the kubeconfig. Every error the server returns raises ``KubeError`` (``NotFound``,
    ``Conflict``) with the Status' code, reason and message; an unreachable server is
    ``KubeError`` with status 0. No credential ever appears in an error."""

    def __init__(
        self,
        configuration: kubernetes.client.Configuration,
        *,
        timeout: float = 30.0,
        max_workers: int = 4,
    ) -> None:
        self.configuration = configuration
        self._timeout = timeout
        self._max_workers = max_workers
        self._api: kubernetes.client.ApiClient | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    @classmethod
    def from_environment(cls, *, timeout: float = 30.0) -> KubeClient:
        """A client of this process's API server (see :func:`load_configuration`)."""
        return cls(load_configuration(), timeout=timeout)

    @property
    def server(self) -> str:
        return str(self.configuration.host)

    async def __aenter__(self) -> KubeClient:
        return self  # the connections open with the first request

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Wait for the requests under way, then drop the connections (a later call reopens)."""
        pool, api = self._pool, self._api
        self._pool = self._api = None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
        if api is not None:
            api.close()

    def _ensure(self) -> tuple[kubernetes.client.ApiClient, concurrent.futures.ThreadPoolExecutor]:
        if self._api is None:
            self._api = kubernetes.client.ApiClient(self.configuration)
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix="kube-api"
            )
        return self._api, self._pool

    async def _in_thread(self, call: Callable[[kubernetes.client.ApiClient], T]) -> T:
        api, pool = self._ensure()

        def guarded() -> T:
            with self._translated():
                return call(api)

        return await asyncio.get_running_loop().run_in_executor(pool, guarded)

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """Whatever the package or urllib3 raises inside becomes a KubeError."""
        try:
            yield
        except kubernetes.client.ApiException as exc:
            if exc.status:
                raise error_from_api_exception(exc) from None
            failure = " ".join(str(exc.reason or "").split())  # the package's own TLS error
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            failure = _describe(exc)
        else:
            return
        raise KubeError(
            status=0,
            reason="ServiceUnavailable",
            message=f"cannot reach the API server {self.server}: {failure}",
        )

    def _send(
        self,
        api: kubernetes.client.ApiClient,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        body: Any,
        content_type: str | None,
        timeout: float | tuple[float, float],
    ) -> urllib3.BaseHTTPResponse:
        """One request through the package (its auth header, TLS, proxy); returns urllib3's
        response, its body unread. An answer >= 400 raises ``ApiException`` with the body."""
        headers = {"Accept": JSON}
        if content_type is not None:
            headers["Content-Type"] = content_type
        request = api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((params or {}).items()) or None,
            header_params=headers,
            body=body,
            auth_settings=AUTH_SETTINGS,
        )
        answer = api.call_api(*request, _request_timeout=timeout)
        if not 200 <= answer.status <= 299:
            try:
                answer.read()
            finally:
                answer.response.release_conn()
            raise kubernetes.client.ApiException(http_resp=answer)
        raw: urllib3.BaseHTTPResponse = answer.response
        return raw

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str = JSON,
    ) -> Any:
        """One API call on ``path``; returns the decoded JSON answer (None when empty)."""

        def call(api: kubernetes.client.ApiClient) -> Any:
            answer = self._send(
                api,
                method,
                path,
                params=params,
                body=None if body is None else dict(body),
                content_type=content_type if body is not None else None,
                timeout=self._timeout,
            )
            try:
                data: bytes = answer.data
            finally:
                answer.release_conn()
            return _decode(data)

        return await self._in_thread(call)

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
        """The watch events (``{"type": ..., "object": ...}``) of a collection from
        ``resource_version`` (none: the current objects as ADDED first), until the server ends
        the stream after ``timeout_seconds``. An ``ERROR`` event raises ``KubeError`` with its
        Status: 410 Gone when ``resource_version`` is too old, and the caller lists again.

        ``kubernetes.watch.Watch`` reads the stream in a thread of its own that hands each event
        to this iterator; leaving the loop early stops that thread."""
        api, _ = self._ensure()
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        watcher = kubernetes.watch.Watch()
        stopping = threading.Event()

        def put(kind: str, value: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
                loop.call_soon_threadsafe(events.put_nowait, (kind, value))

        def listen(**kwargs: Any) -> urllib3.BaseHTTPResponse:
            """What ``Watch.stream`` calls, with ``resource_version`` the last one it saw. (No
            model class in this signature or docstring: the events stay dicts.)"""
            params = {"watch": "true", "timeoutSeconds": str(kwargs["timeout_seconds"])}
            if label_selector:
                params["labelSelector"] = label_selector
            if kwargs.get("resource_version"):
                params["resourceVersion"] = str(kwargs["resource_version"])
            return self._send(
                api,
                "GET",
                res.path(namespace),
                params=params,
                body=None,
                content_type=None,
                timeout=(self._timeout, timeout_seconds + WATCH_READ_MARGIN),
            )

        def pump() -> None:
            arguments: dict[str, Any] = {"timeout_seconds": timeout_seconds}
            if resource_version:
                arguments["resource_version"] = resource_version
            try:
                with self._translated():
                    for event in watcher.stream(listen, **arguments):
                        if stopping.is_set():
                            break
                        put("event", event)
            except KubeError as exc:
                put("error", exc)
            except Exception as exc:  # the watch thread always says how it ended
                put("error", KubeError(status=0, reason="InternalError", message=_describe(exc)))
            finally:
                put("end", None)

        thread = threading.Thread(target=pump, name="kube-watch", daemon=True)
        thread.start()
        try:
            while True:
                kind, value = await events.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                yield _event(value)
        finally:
            stopping.set()
            watcher.stop()


def _event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A watch event as the API server sent it (the package adds ``raw_object``)."""
    return {"type": event.get("type"), "object": event.get("raw_object", event.get("object"))}


def _describe(exc: BaseException) -> str:
    """One line about a transport failure: urllib3 wraps the cause in MaxRetryError."""
    cause = getattr(exc, "reason", None)
    if isinstance(cause, BaseException):
        exc = cause
    return f"{type(exc).__name__} {' '.join(str(exc).split())}".strip()


def _decode(data: bytes | None) -> Any:
    if not data or not data.strip():
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def _object(payload: Any) -> dict[str, Any]:
    if isinstance(payload, Mapping):
        return dict(payload)
    raise KubeError(status=0, reason="InvalidResponse", message="the API server answered with no JSON object")
