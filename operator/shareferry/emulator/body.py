"""Read a request's body with a size limit and a stall timeout, as Azure's front end does.

A client that announces a body and then stops sending must not hold its connection (and the
request's handler) forever: when no byte arrives for ``idle_timeout`` seconds the read gives up
with :class:`BodyStalled`, and the app cuts the connection without applying the operation. A
client that goes away in the middle of its body raises :class:`ClientGone`. A body larger than
``limit`` is the 413 ``RequestBodyTooLarge`` Azure answers, whether it announced its length or not.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from shareferry.emulator.errors import StorageError


class BodyStalled(Exception):
    """No byte of the body arrived within the timeout."""


class ClientGone(Exception):
    """The connection broke before the whole body arrived."""


def body_too_large(limit: int) -> StorageError:
    return StorageError(
        413,
        "RequestBodyTooLarge",
        f"The request body is too large and exceeds the maximum permissible limit ({limit} bytes).",
    )


async def read_body(request: web.BaseRequest, *, limit: int, idle_timeout: float) -> bytes:
    """The whole body (``b""`` when there is none), at most ``limit`` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise body_too_large(limit)
    if not request.body_exists:
        return b""
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            async with asyncio.timeout(idle_timeout):
                chunk = await request.content.readany()
        except TimeoutError as exc:
            raise BodyStalled from exc
        except (HttpProcessingError, web.RequestPayloadError, ConnectionError) as exc:
            raise ClientGone from exc
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    if declared is not None and size != declared:  # the stream ended short of its announced length
        raise ClientGone
    return b"".join(chunks)
