"""Copying one file or folder: overwrite rules, properties, bytes (streamed or server-side), MD5.

Streamed copies read ahead a window of chunks concurrently, hash them in order (so the MD5 is
computed while streaming, never by re-reading) and write them concurrently; every chunk holds
its bytes in the job's :class:`ByteBudget` from read until written. Server-side copies ask the
destination to pull each range from the source's URL. Downloads land under a temporary name and
become visible only after the length and MD5 checks pass (the local writer renames on commit).
"""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from shareferry.core.accounting import FileResult, Outcome
from shareferry.core.backends.base import Writer
from shareferry.core.engine.context import EngineContext
from shareferry.core.engine.props import write_props
from shareferry.core.engine.retry import with_retries
from shareferry.core.errors import (
    CopySourceError,
    CredentialError,
    NotFoundError,
    ShareFerryError,
    TransferError,
)
from shareferry.core.objects import ARCHIVE_TIER, StoredObject, WriteProps
from shareferry.core.options import CheckMd5, Overwrite
from shareferry.core.planning.copy_plan import Transfer

T = TypeVar("T")
READ_AHEAD = 8  # chunks of one file in flight at once
#: Pieces at least this large are hashed on a worker thread (hashlib lets go of the interpreter
#: lock while it hashes), so the event loop keeps the network busy meanwhile: MD5 costs about
#: 1.5 ms per MiB of one core. Smaller pieces hash faster than a hand-off to a thread costs.
THREAD_HASH_BYTES = 256 * 1024
#: What a dry run logs for each file or folder it would copy, in AzCopy's words:
#: ``DRYRUN: copy <source> to <destination>`` (both printable, never with a SAS).
DRY_RUN_PREFIX = "DRYRUN: copy "
DRY_RUN_SEPARATOR = " to "


class Md5Mismatch(TransferError):
    """The bytes that arrived do not hash to the source's stored MD5."""


async def copy_one(ctx: EngineContext, transfer: Transfer) -> FileResult:
    """Transfer one item; every failure becomes a FAILED result (credential errors propagate).
    The result names both ends in printable form (no SAS)."""
    try:
        _refuse_climbing(ctx, transfer)
        if transfer.is_dir:
            result = await _copy_folder(ctx, transfer)
        else:
            result = await _copy_file(ctx, transfer)
    except (TransferError, NotFoundError) as error:
        result = FileResult(
            path=transfer.destination,
            size=transfer.source.size,
            outcome=Outcome.FAILED,
            error=str(error),
            is_dir=transfer.is_dir,
        )
    return replace(
        result,
        source=ctx.source.describe(transfer.source.path),
        destination=ctx.destination.describe(result.path),
    )


def _refuse_climbing(ctx: EngineContext, transfer: Transfer) -> None:
    """Refuse a destination path with a ``..`` segment before anything is read or written.

    Blob names are free text, so a listing can hand out ``../x`` or ``a/../../x``; such a name
    would climb out of where the destination puts it (or, through URL normalisation, address
    another object). The local backend refuses them too; checking here gives every pair the same
    clear message and costs no download."""
    if ".." in transfer.destination.split("/"):
        raise TransferError(
            f"refusing to copy {ctx.source.describe(transfer.source.path)}: the '..' in its name "
            f"would lead outside the destination ({ctx.destination.describe(transfer.destination)})"
        )


async def request(ctx: EngineContext, operation: Callable[[], Awaitable[T]]) -> T:
    """One service call: holds a request slot per attempt and retries per the job's policy."""

    async def attempt() -> T:
        async with ctx.requests:
            return await operation()

    return await with_retries(
        attempt,
        policy=ctx.retry,
        on_retry=lambda error, n, delay: ctx.log(f"retry {n} in {delay:.1f}s: {error}"),
    )


def _log_dry_run(ctx: EngineContext, transfer: Transfer) -> None:
    source = ctx.source.describe(transfer.source.path)
    destination = ctx.destination.describe(transfer.destination)
    ctx.log(f"{DRY_RUN_PREFIX}{source}{DRY_RUN_SEPARATOR}{destination}")


async def _copy_folder(ctx: EngineContext, transfer: Transfer) -> FileResult:
    if ctx.options.dry_run:
        _log_dry_run(ctx, transfer)
        return FileResult(transfer.destination, 0, Outcome.SKIPPED, is_dir=True, reason="dry-run")
    source = transfer.source
    smb_both = ctx.source.capabilities.smb and ctx.destination.capabilities.smb
    if smb_both and (ctx.options.preserve_smb_info or ctx.options.preserve_smb_permissions):
        stat = await request(ctx, lambda: ctx.source.stat(source.path))
        source = stat or source
    permission = await _permission(ctx, source) if smb_both else None
    props = write_props(
        source,
        source_is_local=ctx.source.kind == "local",
        smb_both_sides=smb_both,
        permission=permission,
        options=ctx.options,
    )
    await request(ctx, lambda: ctx.destination.make_dir(transfer.destination, props))
    return FileResult(transfer.destination, 0, Outcome.COMPLETED, is_dir=True)


async def _permission(ctx: EngineContext, source: StoredObject) -> str | None:
    """The source's SDDL when ``--preserve-smb-permissions`` and the backend can read it."""
    if not ctx.options.preserve_smb_permissions:
        return None
    if source.smb is not None and source.smb.permission:
        return source.smb.permission
    getter = getattr(ctx.source, "get_permission", None)
    if getter is None:
        return None
    permission: str | None = await request(ctx, lambda: getter(source.path))
    return permission


async def _skip_reason(ctx: EngineContext, transfer: Transfer) -> str | None:
    """Why an existing destination file is kept, per ``--overwrite``; None to copy."""
    policy = ctx.options.overwrite
    if policy is Overwrite.TRUE:
        return None
    existing = await request(ctx, lambda: ctx.destination.stat(transfer.destination))
    if existing is None or existing.is_dir:
        return None
    if policy is Overwrite.FALSE:
        return "exists at the destination (--overwrite=false)"
    if policy is Overwrite.IF_SOURCE_NEWER:
        newer = (
            transfer.source.last_modified is not None
            and existing.last_modified is not None
            and transfer.source.last_modified > existing.last_modified
        )
        return None if newer else "destination is not older than the source (--overwrite=ifSourceNewer)"
    if ctx.prompt is not None and await ctx.prompt(transfer.destination):
        return None
    return "kept at the prompt"


async def _copy_file(ctx: EngineContext, transfer: Transfer) -> FileResult:
    reason = await _skip_reason(ctx, transfer)
    if reason is not None:
        return FileResult(transfer.destination, transfer.source.size, Outcome.SKIPPED, reason=reason)
    if ctx.options.dry_run:
        _log_dry_run(ctx, transfer)
        return FileResult(transfer.destination, transfer.source.size, Outcome.SKIPPED, reason="dry-run")
    source = transfer.source
    if ctx.source.kind == "local" or source.content is not None:
        return await _copy_described(ctx, transfer, source, prefetched=None)
    reader = getattr(ctx.source, "read_whole", None)
    held = source.size
    if reader is None or ctx.server_side or not 0 < held <= ctx.chunk_size:
        stat = await request(ctx, lambda: ctx.source.stat(transfer.source.path))
        if stat is None:
            raise NotFoundError(f"{ctx.source.describe(transfer.source.path)} no longer exists")
        return await _copy_described(ctx, transfer, stat, prefetched=None)
    # A small remote file: one GET brings its bytes and its properties (no separate HEAD).
    await ctx.budget.take(held)
    try:
        data, stat = await request(ctx, lambda: reader(transfer.source.path, held))
        return await _copy_described(ctx, transfer, stat, prefetched=data)
    finally:
        await ctx.budget.give(held)


async def _copy_described(
    ctx: EngineContext, transfer: Transfer, source: StoredObject, *, prefetched: bytes | None
) -> FileResult:
    """Copy a file whose properties are known (and, for a small remote one, its bytes)."""
    if source.access_tier == ARCHIVE_TIER:
        raise TransferError(
            f"{ctx.source.describe(source.path)} is in the Archive tier: its data is offline and cannot "
            "be read; rehydrate it to the Hot, Cool or Cold tier first"
        )
    source_is_local = ctx.source.kind == "local"
    smb_both = ctx.source.capabilities.smb and ctx.destination.capabilities.smb
    permission = await _permission(ctx, source) if smb_both else None
    props = write_props(
        source,
        source_is_local=source_is_local,
        smb_both_sides=smb_both,
        permission=permission,
        options=ctx.options,
    )
    check = ctx.options.check_md5 if ctx.destination.kind == "local" else CheckMd5.NO_CHECK
    if ctx.options.decompress and ctx.destination.kind == "local" and _encoding(source) in _DECODERS:
        return await _copy_decompressed(ctx, transfer, source, props, check)
    url = ctx.source.source_url(source.path) if ctx.server_side else None
    hash_bytes = url is None and (ctx.options.put_md5 or check is not CheckMd5.NO_CHECK)
    if url is None and 0 < source.size <= ctx.chunk_size:
        return await _copy_small(ctx, transfer, source, props, check, hash_bytes=hash_bytes, data=prefetched)
    if url is not None:
        props = replace(props, content_md5=source.md5)  # carried as is: known before the copy
    writer = await request(
        ctx, lambda: ctx.destination.open_writer(transfer.destination, size=source.size, props=props)
    )
    try:
        if url is not None:
            try:
                await _server_side(ctx, writer, url, source.size)
            except* CopySourceError as refused:
                ctx.log(
                    f"server-side copy refused ({refused.exceptions[0]}); copying "
                    f"{ctx.source.describe(source.path)} through this process instead"
                )
                url = None
                hash_bytes = ctx.options.put_md5
        if url is not None:
            digest = source.md5
        else:
            digest = await _streamed(ctx, writer, source, want_md5=hash_bytes)
            if digest is None:
                digest = source.md5
        _verify_md5(ctx, transfer, source, digest if hash_bytes else None, check)
        stored = digest if (ctx.options.put_md5 or url is not None or source.md5 is not None) else None
        await request(ctx, lambda: writer.commit(stored))
        await _check_length(ctx, transfer.destination, source.size)
    except BaseException:
        await writer.abort()
        raise
    return FileResult(
        transfer.destination, source.size, Outcome.COMPLETED, md5=digest.hex() if digest is not None else None
    )


async def _copy_small(
    ctx: EngineContext,
    transfer: Transfer,
    source: StoredObject,
    props: WriteProps,
    check: CheckMd5,
    *,
    hash_bytes: bool,
    data: bytes | None = None,
) -> FileResult:
    """A file of one chunk: read and check it before touching the destination, so its MD5 is
    known when the destination object is created (one request fewer on Azure Files, and a bad
    download never creates anything). ``data``: the bytes, already read (and budgeted) along
    with the properties."""
    size = source.size
    held = 0 if data is not None else size
    if held:
        await ctx.budget.take(held)
    try:
        if data is None:
            data = await request(ctx, lambda: ctx.source.read(source.path, 0, size))
        if len(data) != size:
            raise TransferError(
                f"{ctx.source.describe(source.path)} changed while being copied "
                f"(expected {size} bytes, got {len(data)})"
            )
        digest = await _md5_of(data) if hash_bytes else source.md5
        _verify_md5(ctx, transfer, source, digest if hash_bytes else None, check)
        stored = digest if (ctx.options.put_md5 or source.md5 is not None) else None
        props = replace(props, content_md5=stored)
        whole = getattr(ctx.destination, "write_whole", None)
        if whole is not None:  # one request (or one hand-off to a thread) for the whole file
            if ctx.limiter is not None:
                await ctx.limiter.acquire(size)
            landed: int = await request(ctx, lambda: whole(transfer.destination, data, props))
            ctx.accounting.progress(size)
            if ctx.options.check_length and landed != size:
                raise _length_error(ctx, transfer.destination, landed, size)
            return FileResult(
                transfer.destination, size, Outcome.COMPLETED, md5=digest.hex() if digest else None
            )
        writer = await request(
            ctx, lambda: ctx.destination.open_writer(transfer.destination, size=size, props=props)
        )
        try:
            if ctx.limiter is not None:
                await ctx.limiter.acquire(size)
            await request(ctx, lambda: writer.write(0, data))
            ctx.accounting.progress(size)
            await request(ctx, lambda: writer.commit(stored))
            await _check_length(ctx, transfer.destination, size)
        except BaseException:
            await writer.abort()
            raise
    finally:
        if held:
            await ctx.budget.give(held)
    return FileResult(transfer.destination, size, Outcome.COMPLETED, md5=digest.hex() if digest else None)


async def _check_length(ctx: EngineContext, destination: str, expected: int) -> None:
    """``--check-length`` (on by default): the file that landed has the source's length.

    Checked where it costs nothing (a local ``stat``); an Azure file or blob gets its length at
    creation and every range write is acknowledged, so a short object cannot pass silently."""
    if not ctx.options.check_length or ctx.destination.kind != "local":
        return
    landed = await ctx.destination.stat(destination)
    if landed is None or landed.size != expected:
        raise _length_error(ctx, destination, None if landed is None else landed.size, expected)


def _length_error(ctx: EngineContext, destination: str, landed: int | None, expected: int) -> TransferError:
    found = "nothing" if landed is None else f"{landed} bytes"
    return TransferError(
        f"{ctx.destination.describe(destination)} has {found} after the copy, expected {expected}"
    )


def _verify_md5(
    ctx: EngineContext, transfer: Transfer, source: StoredObject, computed: bytes | None, check: CheckMd5
) -> None:
    if check is CheckMd5.NO_CHECK or computed is None:
        return
    where = ctx.source.describe(transfer.source.path)
    if source.md5 is None:
        if check is CheckMd5.FAIL_IF_DIFFERENT_OR_MISSING:
            raise Md5Mismatch(f"{where} has no stored MD5 (--check-md5=FailIfDifferentOrMissing)")
        return
    if computed != source.md5:
        message = f"MD5 mismatch for {where}: stored {source.md5.hex()}, received {computed.hex()}"
        if check is CheckMd5.LOG_ONLY:
            ctx.log(message)
            return
        raise Md5Mismatch(message)


_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_COMPRESSED_SUFFIXES = (".gz", ".gzip", ".zz")


def _encoding(source: StoredObject) -> str:
    return ((source.content.content_encoding if source.content else None) or "").strip().lower()


def decompressed_name(path: str) -> str:
    """AzCopy's ``--decompress`` naming: ``.gz``, ``.gzip`` and ``.zz`` are dropped if present."""
    head, _, name = path.rpartition("/")
    for suffix in _COMPRESSED_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return f"{head}/{name}" if head else name


async def _copy_decompressed(
    ctx: EngineContext, transfer: Transfer, source: StoredObject, props: WriteProps, check: CheckMd5
) -> FileResult:
    """``--decompress``: inflate a gzip/deflate-encoded download while streaming it.

    Reads are sequential (inflating is), the stored MD5 is checked against the compressed bytes
    as they arrived, and no inflated piece is larger than one chunk, so a small file that inflates
    enormously never needs more memory than that.
    """
    target = decompressed_name(transfer.destination)
    inflater = zlib.decompressobj(_DECODERS[_encoding(source)])
    hasher = hashlib.md5() if check is not CheckMd5.NO_CHECK else None
    chunk = ctx.chunk_size
    writer = await request(ctx, lambda: ctx.destination.open_writer(target, size=0, props=props))
    written = 0
    try:
        for offset in range(0, source.size, chunk):
            length = min(chunk, source.size - offset)
            data = await request(ctx, lambda o=offset, n=length: ctx.source.read(source.path, o, n))  # type: ignore[misc]
            if hasher is not None:
                hasher.update(data)
            pending = data
            while pending:
                try:
                    piece = inflater.decompress(pending, chunk)
                except zlib.error as exc:
                    raise TransferError(
                        f"{ctx.source.describe(source.path)} is not valid {_encoding(source)}: {exc}"
                    ) from exc
                pending = inflater.unconsumed_tail
                if piece:
                    await request(ctx, lambda p=piece, at=written: writer.write(at, p))  # type: ignore[misc]
                    written += len(piece)
            ctx.accounting.progress(length)
        tail = inflater.flush()
        if tail:
            await request(ctx, lambda: writer.write(written, tail))
            written += len(tail)
        if not inflater.eof:
            raise TransferError(f"{ctx.source.describe(source.path)} ends before its compressed stream does")
        _verify_md5(ctx, transfer, source, hasher.digest() if hasher else None, check)
        await request(ctx, lambda: writer.commit(None))
    except BaseException:
        await writer.abort()
        raise
    return FileResult(target, written, Outcome.COMPLETED, md5=source.md5.hex() if source.md5 else None)


async def _server_side(ctx: EngineContext, writer: Writer, url: str, size: int) -> None:
    chunk = ctx.chunk_size

    async def one(offset: int) -> None:
        length = min(chunk, size - offset)
        if ctx.limiter is not None:
            await ctx.limiter.acquire(length)
        await request(ctx, lambda: writer.write_from_url(offset, url, offset, length))
        ctx.accounting.progress(length)

    try:
        async with asyncio.TaskGroup() as group:
            for offset in range(0, size, chunk):
                group.create_task(one(offset))
    except BaseExceptionGroup as failed:
        raise _one_error(failed) from None


class _Held:
    """Budget held for one chunk, released exactly once."""

    def __init__(self, ctx: EngineContext, nbytes: int) -> None:
        self.ctx = ctx
        self.nbytes = nbytes
        self.released = False

    async def release(self) -> None:
        if not self.released:
            self.released = True
            await self.ctx.budget.give(self.nbytes)


async def _streamed(
    ctx: EngineContext, writer: Writer, source: StoredObject, *, want_md5: bool
) -> bytes | None:
    """Read ahead concurrently, hash in order, write concurrently; returns the MD5 when asked."""
    hasher = hashlib.md5() if want_md5 else None
    chunk = ctx.chunk_size
    size = source.size
    offsets = deque(range(0, size, chunk))
    window: deque[tuple[int, _Held, asyncio.Task[bytes]]] = deque()  # read, not yet writing

    async def read(offset: int, length: int) -> bytes:
        data = await request(ctx, lambda: ctx.source.read(source.path, offset, length))
        if len(data) != length:
            raise TransferError(
                f"{ctx.source.describe(source.path)} changed while being copied "
                f"(expected {length} bytes at offset {offset}, got {len(data)})"
            )
        return data

    async def write(offset: int, data: bytes, hold: _Held) -> None:
        try:
            if ctx.limiter is not None:
                await ctx.limiter.acquire(len(data))
            await request(ctx, lambda: writer.write(offset, data))
            ctx.accounting.progress(len(data))
        finally:
            await hold.release()

    try:
        async with asyncio.TaskGroup() as group:
            while offsets or window:
                while offsets and len(window) < READ_AHEAD:
                    length = min(chunk, size - offsets[0])
                    # Wait for budget only with an empty window: chunks held in the window are
                    # released only by this loop, so waiting with them could wait for ever.
                    if window and not ctx.budget.try_take(length):
                        break
                    if not window:
                        await ctx.budget.take(length)
                    offset = offsets.popleft()
                    window.append((offset, _Held(ctx, length), group.create_task(read(offset, length))))
                offset, hold, task = window[0]
                data = await task
                if hasher is not None:
                    await _hash_into(hasher, data)
                group.create_task(write(offset, data, hold))  # the write releases the hold
                window.popleft()
    except BaseExceptionGroup as failed:
        raise _one_error(failed) from None
    finally:
        for _offset, hold, _task in window:
            await hold.release()
    return hasher.digest() if hasher is not None else None


async def _md5_of(data: bytes) -> bytes:
    """The MD5 of ``data``, computed off the event loop when it is large."""
    if len(data) < THREAD_HASH_BYTES:
        return hashlib.md5(data).digest()
    return await asyncio.to_thread(lambda: hashlib.md5(data).digest())


async def _hash_into(hasher: hashlib._Hash, data: bytes) -> None:
    """``hasher.update(data)``, off the event loop when ``data`` is large (in order: the caller
    awaits each piece before the next)."""
    if len(data) < THREAD_HASH_BYTES:
        hasher.update(data)
    else:
        await asyncio.to_thread(hasher.update, data)


def _one_error(failed: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error to report for a file whose concurrent requests failed: a credential error
    first (it stops the job), else the first of the core's errors. A group holding anything
    else (a bug) is kept whole, so bugs are never disguised as failed transfers."""
    leaves: list[BaseException] = []

    def collect(group: BaseExceptionGroup[BaseException]) -> None:
        for error in group.exceptions:
            if isinstance(error, BaseExceptionGroup):
                collect(error)
            else:
                leaves.append(error)

    collect(failed)
    if not leaves or not all(isinstance(error, ShareFerryError) for error in leaves):
        return failed
    return next((error for error in leaves if isinstance(error, CredentialError)), leaves[0])
