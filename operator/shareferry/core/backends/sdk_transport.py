"""The HTTP transport every Azure SDK client of the core gets.

azure-core's aiohttp transport trusts the environment per request: aiohttp then hands two
lookups (``~/.netrc`` and the proxy variables) to a thread for every request, each a wait for
the interpreter lock, about 0.5 ms of client CPU per request on a small machine. The clients
here get the same transport told not to (``use_env_settings=False``), with the proxy the
environment names for their endpoint looked up once (:func:`environment_proxy_address`, as the
lean path does) and given to the client as ``proxies``. Timeouts given for the client go to the
transport, which is where the SDK would have put them.

The transport also logs every request it sends in the job's log, when the job keeps one
(:mod:`shareferry.core.joblog`): it sees the request as sent (a SAS in its URL, redacted by the
log) and reads no header but the client request id, so no ``Authorization`` value or bearer token
can reach it.
"""

from __future__ import annotations

import time
from typing import Any

from azure.core.pipeline.transport import AioHttpTransport
from yarl import URL

from shareferry.core.backends.storage_wire import environment_proxy_address
from shareferry.core.joblog import current_job_log

_TRANSPORT_OPTIONS = ("connection_timeout", "read_timeout")


def sdk_client_options(endpoint: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for an SDK client of ``endpoint`` with the transport above added (and the
    timeouts moved into it); a ``transport`` already given is kept as it is."""
    if "transport" in options:
        return options
    rest = {name: value for name, value in options.items() if name not in _TRANSPORT_OPTIONS}
    timeouts = {name: options[name] for name in _TRANSPORT_OPTIONS if name in options}
    rest["transport"] = LoggedTransport(use_env_settings=False, **timeouts)
    target = URL(endpoint)
    address = environment_proxy_address(target)
    if address is not None and "proxies" not in rest:
        rest["proxies"] = {target.scheme: address}
    return rest


class LoggedTransport(AioHttpTransport):  # type: ignore[misc]  # azure-core ships no types here
    """azure-core's aiohttp transport, each request logged in the job's log (if it keeps one):
    method, URL, status, ``x-ms-request-id`` and the time until the answer's headers."""

    async def send(self, request: Any, **config: Any) -> Any:
        log = current_job_log()
        if log is None:
            return await super().send(request, **config)
        started = time.monotonic()
        try:
            response = await super().send(request, **config)
        except Exception as exc:
            log.request_failed(request.method, request.url, error=exc, seconds=time.monotonic() - started)
            raise
        log.response(
            request.method,
            request.url,
            status=response.status_code,
            request_id=response.headers.get("x-ms-request-id"),
            seconds=time.monotonic() - started,
            client_request_id=request.headers.get("x-ms-client-request-id"),
        )
        return response
