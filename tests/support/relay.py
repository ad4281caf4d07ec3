"""Passing one request on and its answer back, for the test proxies (``fault_proxy``,
``forward_proxy``): method, path, query, headers and body unchanged (a Shared Key or SAS
signature stays valid), hop-by-hop headers dropped both ways; and serving such a proxy."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import ClientSession, web
from yarl import URL

HOP_BY_HOP = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-authorization"}
)


async def relay(session: ClientSession, request: web.Request, target: URL) -> web.Response:
    """Send ``request`` to ``target`` and answer with what came back."""
    headers = {name: value for name, value in request.headers.items() if name.lower() not in HOP_BY_HOP}
    async with session.request(
        request.method,
        target,
        headers=headers,
        data=await request.read() or None,
        skip_auto_headers=("Content-Type",),  # it is signed: only what the client sent
        allow_redirects=False,
    ) as answer:
        body = await answer.read()
        kept = {name: value for name, value in answer.headers.items() if name.lower() not in HOP_BY_HOP}
        return web.Response(status=answer.status, headers=kept, body=body)


@asynccontextmanager
async def serving(
    listener: socket.socket, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> AsyncIterator[None]:
    """Answer every request on ``listener`` (bound) with ``handler`` while the block runs."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, listener).start()
    try:
        yield
    finally:
        await runner.cleanup()
