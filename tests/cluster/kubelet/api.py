"""The kubelet's door to the API server: the ``kubernetes`` package's client, called off the loop.

Every call goes through the package's typed API methods with ``_preload_content=False`` and
returns the decoded JSON as plain dicts (the kubelet works on the wire shape, camelCase keys, as
the API serves it). Calls run in worker threads (``asyncio.to_thread``) so the event loop that
owns the pod processes never blocks. Errors stay the package's ``ApiException``;
:func:`describe` turns one into a short line that is safe to log (the server's ``Status``
message, never a request or response body, which could hold a Secret's data or a token).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
REQUEST_TIMEOUT = 30.0

Json = dict[str, Any]


class Api:
    """Typed API groups of one ``ApiClient`` built from a kubeconfig, plus :meth:`call`."""

    def __init__(self, kubeconfig: Path) -> None:
        self.client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        self.core = kubernetes.client.CoreV1Api(self.client)
        self.coordination = kubernetes.client.CoordinationV1Api(self.client)
        self.version = kubernetes.client.VersionApi(self.client)

    async def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Json:
        """Run one API method in a thread and return its JSON body as a dict."""
        return await asyncio.to_thread(call_sync, method, *args, **kwargs)


def call_sync(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Json:
    """Call ``method`` without the package's model decoding; non-2xx raises ``ApiException``."""
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    response = method(*args, _preload_content=False, **kwargs)
    try:
        data = response.data
    finally:
        response.release_conn()
    if not data:
        return {}
    decoded = json.loads(data)
    return decoded if isinstance(decoded, dict) else {}


def status_of(error: BaseException) -> int | None:
    """The HTTP status of an ``ApiException``, else None (a transport error)."""
    return error.status if isinstance(error, ApiException) else None


def describe(error: BaseException) -> str:
    """One loggable line for a failed call: status and the server's message only."""
    if isinstance(error, ApiException):
        message = error.reason or ""
        if error.body:
            try:
                body = json.loads(error.body)
            except (ValueError, TypeError):
                body = None
            if isinstance(body, dict) and isinstance(body.get("message"), str):
                message = body["message"]
        return f"HTTP {error.status}: {message}"
    return f"{type(error).__name__}: {error}"


def now() -> str:
    """A metav1.Time: RFC 3339 in UTC, whole seconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """A metav1.MicroTime (Lease renew times): RFC 3339 in UTC with microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse a metav1.Time or MicroTime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
