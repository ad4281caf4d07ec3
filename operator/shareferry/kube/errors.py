"""Errors of the Kubernetes client: an API server Status becomes one of these exceptions.

They stay ours rather than ``kubernetes.client.ApiException``: callers catch ``NotFound`` and
``Conflict`` by class and print ``reason``/``message``, and an ApiException's text carries the
whole HTTP exchange (headers and body) where one line is wanted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import kubernetes.client


class KubeError(Exception):
    """The API server refused a request (or could not be reached, ``status`` 0).

    ``reason`` is the Status' CamelCase reason (``NotFound``, ``Conflict``, ``AlreadyExists``,
    ``Invalid``, ``Forbidden``...) and ``message`` its human text. The message never holds a
    credential: it is made from the server's answer, never from the request's headers.
    """

    def __init__(self, *, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}" if status else f"{reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(KubeError):
    """404: the object (or its resource type, or its namespace) does not exist."""


class Conflict(KubeError):
    """409: the object already exists, or a resourceVersion precondition failed."""


class ConfigError(Exception):
    """No usable way to reach an API server (missing kubeconfig, unsupported auth...): one line."""


_REASONS_BY_STATUS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def error_from_response(status: int, body: Any, *, fallback_text: str = "") -> KubeError:
    """The exception for an HTTP error ``status`` whose decoded JSON body is ``body`` (a
    Kubernetes Status object when the API server sent one; anything else otherwise)."""
    reason = _REASONS_BY_STATUS.get(status, "Unknown")
    message = fallback_text.strip()[:500] or f"HTTP {status}"
    if isinstance(body, Mapping):
        if isinstance(body.get("reason"), str) and body["reason"]:
            reason = body["reason"]
        if isinstance(body.get("message"), str) and body["message"]:
            message = body["message"]
    cls: type[KubeError] = KubeError
    if status == 404:
        cls = NotFound
    elif status == 409:
        cls = Conflict
    return cls(status=status, reason=reason, message=message)


def error_from_api_exception(exc: kubernetes.client.ApiException) -> KubeError:
    """Our exception for the ``kubernetes`` package's: the server's Status when the exception
    carries the answer's body; the ``Reason: message`` a watch ``ERROR`` event becomes; else
    (``status`` 0) a connection or TLS failure described by the package."""
    status = int(exc.status or 0)
    body = exc.body if isinstance(exc.body, str) else None
    if status and body is not None:
        return error_from_response(status, _decode(body), fallback_text=body)
    text = " ".join(str(exc.reason or "").split())
    if status:
        reason, separator, message = text.partition(": ")
        if separator and reason.isalnum():
            return error_from_response(status, {"reason": reason, "message": message})
        return error_from_response(status, None, fallback_text=text)
    return KubeError(
        status=0, reason="ServiceUnavailable", message=text or "the API server could not be reached"
    )


def _decode(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None
