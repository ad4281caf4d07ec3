"""A reverse proxy in front of a storage server that answers chosen listing requests with a fault,
for services that cannot inject faults themselves (Azurite).

Every request is passed on unchanged (method, path, query, headers, body: a Shared Key or SAS
signature stays valid, since neither signs the host), and the answer is passed back. Listing
requests (``comp=list`` in the query) are numbered from 1; those whose number is in
``busy_listings`` are answered ``503 ServerBusy`` with ``Retry-After: 0`` instead, without
reaching the server. ``listing_markers`` records each listing request's ``marker`` (``None``
for none), in order, faulted ones included.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import ClientSession, web
from yarl import URL

from tests.support.relay import relay, serving


@dataclass
class FaultProxy:
    """A running proxy: ``url`` replaces the upstream's ``scheme://host:port``."""

    url: str
    busy_listings: Collection[int]
    listing_markers: list[str | None] = field(default_factory=list)


@asynccontextmanager
async def fault_proxy(upstream: str, *, busy_listings: Collection[int] = ()) -> AsyncIterator[FaultProxy]:
    """Run a proxy to ``upstream`` (``http://host:port``) on a free loopback port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    proxy = FaultProxy(url=f"http://127.0.0.1:{listener.getsockname()[1]}", busy_listings=busy_listings)
    session = ClientSession(auto_decompress=False)

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.query.get("comp") == "list":
            proxy.listing_markers.append(request.query.get("marker"))
            if len(proxy.listing_markers) in proxy.busy_listings:
                return web.Response(
                    status=503,
                    headers={"Retry-After": "0", "x-ms-error-code": "ServerBusy"},
                    text="<?xml version='1.0'?><Error><Code>ServerBusy</Code><Message>busy</Message></Error>",
                    content_type="application/xml",
                )
        return await relay(
            session, request, URL(upstream.rstrip("/") + request.rel_url.raw_path_qs, encoded=True)
        )

    try:
        async with serving(listener, forward):
            yield proxy
    finally:
        await session.close()
