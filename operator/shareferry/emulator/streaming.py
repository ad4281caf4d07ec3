"""Answer a read of a file's bytes without holding them in memory more than once.

A file may be as large as 4 TiB, so a Get File of a whole large file cannot be built in memory.
Up to :data:`BUFFERED_READ_LIMIT` bytes (the Azure SDKs' first download request asks for 32 MiB)
the answer is read at once, so it shows the file wholly before or wholly after any write: one
copy of the stored bytes (a snapshot), then sent in :data:`STREAM_PIECE` slices of it, so the
connection's send buffer never holds a second copy of the whole answer. A longer answer is read
and sent piece by piece; if the file changes or goes away between two pieces, the connection is
cut, so a client never takes a mix of two versions (or zeros) for the file's content.

A dropped-connection fault (:attr:`Ctx.cut_reads_halfway`) sends the headers and half the bytes,
then cuts the connection.
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
    if length <= STREAM_PIECE and not ctx.cut_reads_halfway:
        return reply(status, headers, file.content.read_buffer(start, length))
    snapshot = memoryview(file.content.read_buffer(start, length)) if length <= BUFFERED_READ_LIMIT else None
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = length
    ctx.stamp(response)
    await response.prepare(ctx.request)
    etag = file.etag
    stop = length // 2 if ctx.cut_reads_halfway else length
    for offset in range(0, stop, STREAM_PIECE):
        size = min(STREAM_PIECE, stop - offset)
        if snapshot is not None:
            await response.write(snapshot[offset : offset + size])
            continue
        if not _unchanged(ctx, file, etag):
            break
        await response.write(file.content.read_buffer(start + offset, size))
    else:
        if stop == length:
            return response
    if ctx.request.transport is not None:  # changed under the reader, or a dropped-connection fault
        ctx.request.transport.abort()
    return response


def _unchanged(ctx: Ctx, file: File, etag: str) -> bool:
    """The file is still at its path and has not been written since the answer began."""
    try:
        current = ctx.store.file(ctx.share(), ctx.path)
    except StorageError:
        return False
    return current is file and file.etag == etag and file.content is not None
