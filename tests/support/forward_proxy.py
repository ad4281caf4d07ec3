"""A forward HTTP proxy on a free loopback port, for tests of clients configured by
``HTTP_PROXY``: it passes every request on to the host the request names and records what it
saw (method, absolute URL, ``Proxy-Authorization``).

Clients speak to a forward proxy with an absolute request target (``GET http://host:port/path``)
and the target's ``Host`` header; the proxy forwards method, path, query, headers and body
unchanged (a Shared Key or SAS signature stays valid) and passes the answer back.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import ClientSession, web
from yarl import URL

from tests.support.relay import relay, serving


@dataclass(frozen=True)
class Seen:
    method: str
    url: str
    proxy_authorization: str | None


@dataclass
class ForwardProxy:
    """A running proxy at ``url``; ``seen`` lists the requests it forwarded, in order."""

    url: str
    seen: list[Seen] = field(default_factory=list)


@asynccontextmanager
async def forward_proxy() -> AsyncIterator[ForwardProxy]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    proxy = ForwardProxy(url=f"http://127.0.0.1:{listener.getsockname()[1]}")
    session = ClientSession(auto_decompress=False)

    async def forward(request: web.Request) -> web.StreamResponse:
        target = URL(f"http://{request.headers['Host']}{request.rel_url.raw_path_qs}", encoded=True)
        proxy.seen.append(Seen(request.method, str(target), request.headers.get("Proxy-Authorization")))
        return await relay(session, request, target)

    try:
        async with serving(listener, forward):
            yield proxy
    finally:
        await session.close()
