"""Answer a read of a file's bytes: from one buffer when short, piece by piece when long.

A file may be as large as 4 TiB, so a Get File of a whole large file cannot be built in memory.
Up to :data:`BUFFERED_READ_LIMIT` bytes (the Azure SDKs' first download request asks for 32 MiB)
the answer is read at once, so it shows the file wholly before or wholly after any write. A longer
answer is streamed in pieces of :data:`STREAM_PIECE` bytes; if the file changes or goes away
between two pieces, the connection is cut, so a client never takes a mix of two versions (or
zeros) for the file's content.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from shareferry.emulator.context import Ctx, reply
from shareferry.emulator.errors import StorageError
from shareferry.emulator.model import File

BUFFERED_READ_LIMIT = 32 * 1024 * 1024
STREAM_PIECE = 4 * 1024 * 1024


async def send_bytes(
    ctx: Ctx, file: File, status: int, headers: Mapping[str, str], start: int, last: int
) -> web.StreamResponse:
    """Answer ``status`` with the bytes ``[start, last]`` (inclusive) of ``file``."""
    assert file.content is not None
    length = last - start + 1 if last >= start else 0
    if length <= BUFFERED_READ_LIMIT:
        return reply(status, headers, file.content.read(start, length))
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = length
    ctx.stamp(response)
    await response.prepare(ctx.request)
    etag = file.etag
    for piece in range(start, last + 1, STREAM_PIECE):
        if not _unchanged(ctx, file, etag):
            if ctx.request.transport is not None:
                ctx.request.transport.abort()
            return response
        await response.write(file.content.read(piece, min(STREAM_PIECE, last + 1 - piece)))
    return response


def _unchanged(ctx: Ctx, file: File, etag: str) -> bool:
    """The file is still at its path and has not been written since the answer began."""
    try:
        current = ctx.store.file(ctx.share(), ctx.path)
    except StorageError:
        return False
    return current is file and file.etag == etag and file.content is not None
