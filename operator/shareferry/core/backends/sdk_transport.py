"""The HTTP transport every Azure SDK client of the core gets.

azure-core's aiohttp transport trusts the environment per request: aiohttp then hands two
lookups (``~/.netrc`` and the proxy variables) to a thread for every request, each a wait for
the interpreter lock, about 0.5 ms of client CPU per request on a small machine. The clients
here get the same transport told not to (``use_env_settings=False``), with the proxy the
environment names for their endpoint looked up once (:func:`environment_proxy_address`, as the
lean path does) and given to the client as ``proxies``. Timeouts given for the client go to the
transport, which is where the SDK would have put them.
"""

from __future__ import annotations

from typing import Any

from azure.core.pipeline.transport import AioHttpTransport
from yarl import URL

from shareferry.core.backends.storage_wire import environment_proxy_address

_TRANSPORT_OPTIONS = ("connection_timeout", "read_timeout")


def sdk_client_options(endpoint: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for an SDK client of ``endpoint`` with the transport above added (and the
    timeouts moved into it); a ``transport`` already given is kept as it is."""
    if "transport" in options:
        return options
    rest = {name: value for name, value in options.items() if name not in _TRANSPORT_OPTIONS}
    timeouts = {name: options[name] for name in _TRANSPORT_OPTIONS if name in options}
    rest["transport"] = AioHttpTransport(use_env_settings=False, **timeouts)
    target = URL(endpoint)
    address = environment_proxy_address(target)
    if address is not None and "proxies" not in rest:
        rest["proxies"] = {target.scheme: address}
    return rest
