"""File operations: create, put range, get (ranges, MD5), properties, metadata, ranges, lease, delete."""

from __future__ import annotations

import base64
import hashlib
import uuid

from aiohttp import web

from shareferry.emulator.context import (
    MAX_RANGE_BYTES,
    Ctx,
    file_content_headers,
    metadata_headers,
    node_headers,
    reply,
    smb_from_headers,
    xml_reply,
)
from shareferry.emulator.errors import StorageError, bad_request, invalid_header
from shareferry.emulator.model import File
from shareferry.emulator.store import MAX_FILE_SIZE, check_file_lease
from shareferry.emulator.streaming import send_bytes
from shareferry.emulator.wire import now_ticks, parse_range, ticks_to_rfc1123

_CONTENT_HEADERS = (
    ("x-ms-content-type", "content_type"),
    ("x-ms-content-encoding", "content_encoding"),
    ("x-ms-content-language", "content_language"),
    ("x-ms-cache-control", "cache_control"),
    ("x-ms-content-disposition", "content_disposition"),
    ("x-ms-content-md5", "content_md5"),
)

#: Service SAS fields that override response headers of Get File and Get File Properties.
_SAS_HEADER_OVERRIDES = (
    ("rscc", "Cache-Control"),
    ("rscd", "Content-Disposition"),
    ("rsce", "Content-Encoding"),
    ("rscl", "Content-Language"),
    ("rsct", "Content-Type"),
)


def md5_b64(data: bytes | memoryview) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def check_lease(ctx: Ctx, file: File) -> None:
    """Writes to a leased file must carry its lease id."""
    check_file_lease(file, ctx.header("x-ms-lease-id"))


def _is_md5(value: str) -> bool:
    """``value`` is the base64 of 16 bytes."""
    try:
        return len(base64.b64decode(value, validate=True)) == 16
    except ValueError:
        return False


def apply_content_headers(ctx: Ctx, file: File) -> None:
    for header, attribute in _CONTENT_HEADERS:
        value = ctx.header(header) or ""
        if attribute == "content_md5" and value and not _is_md5(value):
            raise invalid_header(header, value, "expected the base64 of a 16-byte MD5")
        setattr(file, attribute, value)
    if not file.content_type:
        file.content_type = "application/octet-stream"


def file_headers(file: File) -> dict[str, str]:
    headers = {**node_headers(file), **metadata_headers(file.metadata), **file_content_headers(file)}
    headers["x-ms-type"] = "File"
    headers["x-ms-server-encrypted"] = "true"
    headers["Accept-Ranges"] = "bytes"
    if file.content_md5:
        headers["Content-MD5"] = file.content_md5
    if file.copy is not None:
        headers.update(
            {
                "x-ms-copy-id": file.copy.copy_id,
                "x-ms-copy-source": file.copy.source,
                "x-ms-copy-status": file.copy.status,
                "x-ms-copy-progress": file.copy.progress,
                "x-ms-copy-completion-time": ticks_to_rfc1123(file.copy.completion_time),
            }
        )
        if file.copy.status_description:
            headers["x-ms-copy-status-description"] = file.copy.status_description
    if file.lease_id:
        headers.update(
            {"x-ms-lease-state": "leased", "x-ms-lease-status": "locked", "x-ms-lease-duration": "infinite"}
        )
    else:
        headers.update({"x-ms-lease-state": "available", "x-ms-lease-status": "unlocked"})
    return headers


async def create_file(ctx: Ctx) -> web.StreamResponse:
    kind = ctx.header("x-ms-type")
    if kind is None:
        raise StorageError(
            400,
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified: x-ms-type.",
        )
    if kind.lower() != "file":
        raise invalid_header("x-ms-type", kind, "must be 'file'")
    size = ctx.int_header("x-ms-content-length")
    if size is None:
        raise StorageError(
            400,
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified: x-ms-content-length.",
        )
    if size > MAX_FILE_SIZE:
        raise StorageError(400, "OutOfRangeInput", "x-ms-content-length exceeds the 4 TiB file size limit.")
    body = await ctx.body()
    share = ctx.share()
    path = ctx.path
    parent, name = ctx.store.parent_of(share, path)
    existing = parent.get(name)
    if isinstance(existing, File):
        check_lease(ctx, existing)
    smb = smb_from_headers(ctx, share, is_directory=False, current=None, parent=parent)
    file = File(
        name=name,
        file_id=ctx.store.new_id(),
        parent_id=parent.file_id,
        smb=smb,
        metadata=ctx.metadata(),
        content=ctx.store.content.new(size),
    )
    apply_content_headers(ctx, file)
    if body:  # Create File with data (newer API versions): the body fills the file from offset 0
        if len(body) > size or len(body) > MAX_RANGE_BYTES:
            raise StorageError(400, "InvalidHeaderValue", "The body is larger than the file or 4 MiB.")
        assert file.content is not None
        file.content.write(0, body)
    ctx.store.add_node(
        ctx.account, share, path, file, replace_file=True, lease_id=ctx.header("x-ms-lease-id") or ""
    )
    return reply(201, {**node_headers(file), "x-ms-request-server-encrypted": "true"})


def _body_too_large() -> StorageError:
    return StorageError(
        413,
        "RequestBodyTooLarge",
        "The request body is too large and exceeds the maximum permissible limit (4 MiB).",
    )


async def put_range(ctx: Ctx) -> web.StreamResponse:
    declared = ctx.request.content_length
    if declared is not None and declared > MAX_RANGE_BYTES:
        raise _body_too_large()
    sent_range = ctx.header("x-ms-range") or ctx.header("Range")
    bounds = parse_range(sent_range)
    if bounds is None:
        raise StorageError(400, "MissingRequiredHeader", "x-ms-range with bytes=START-END is required.")
    if bounds[1] is None:
        raise invalid_header("x-ms-range", sent_range, "Put Range needs an end: bytes=START-END")
    start, end = bounds[0], bounds[1]
    length = end - start + 1
    write = (ctx.header("x-ms-write") or "").lower()
    if write not in ("update", "clear"):
        raise invalid_header("x-ms-write", ctx.header("x-ms-write"), "must be update or clear")
    if write == "update" and length > MAX_RANGE_BYTES:
        raise _body_too_large()
    body = await ctx.body() if write == "update" else b""
    if write == "update" and len(body) != length:
        raise invalid_header("Content-Length", str(len(body)), f"the range names {length} bytes")
    digest = md5_b64(body) if write == "update" else ""
    sent_md5 = ctx.header("Content-MD5")
    if sent_md5 is not None and write == "update" and not _is_md5(sent_md5):
        raise StorageError(
            400,
            "InvalidMd5",
            "The MD5 value specified in the request is invalid. The MD5 value must be 128 bits and Base64-encoded.",
        )
    if sent_md5 is not None and write == "update" and sent_md5 != digest:
        raise StorageError(
            400,
            "Md5Mismatch",
            "The MD5 value specified in the request did not match the MD5 value calculated by the server.",
        )
    share = ctx.share()
    path = ctx.path
    file = ctx.store.file(share, path)
    check_lease(ctx, file)
    assert file.content is not None
    if end >= file.size:
        raise StorageError(
            416, "InvalidRange", "The range specified is invalid for the current size of the resource."
        )
    if write == "update":
        file.content.write(start, body)
    else:
        file.content.clear(start, length)
    mark_written(ctx, file)
    ctx.store.save_node(ctx.account, share, path, file)
    headers = {
        "ETag": file.etag,
        "Last-Modified": ticks_to_rfc1123(file.last_modified),
        "x-ms-request-server-encrypted": "true",
        "x-ms-file-last-write-time": node_headers(file)["x-ms-file-last-write-time"],
    }
    if digest:
        headers["Content-MD5"] = digest
    return reply(201, headers)


def mark_written(ctx: Ctx, file: File) -> None:
    """After a data write: a new ETag; the last-write time moves unless the client preserves it."""
    file.touch()
    if (ctx.header("x-ms-file-last-write-time") or "now").lower() != "preserve":
        file.smb.last_write = file.last_modified
    file.smb.change = now_ticks()


def read_headers(ctx: Ctx, file: File) -> dict[str, str]:
    """A file's headers for a read, with the overrides a service SAS signed (``rsct=``...)."""
    headers = file_headers(file)
    if ctx.query.get("sr") and ctx.query.get("sig"):
        for field, header in _SAS_HEADER_OVERRIDES:
            value = ctx.query.get(field)
            if value:
                headers[header] = value
    return headers


async def get_file(ctx: Ctx) -> web.StreamResponse:
    file = ctx.store.file(ctx.share(), ctx.path)
    assert file.content is not None
    headers = read_headers(ctx, file)
    bounds = parse_range(ctx.header("x-ms-range") or ctx.header("Range"))
    if bounds is None:
        return await send_bytes(ctx, file, 200, headers, 0, file.size - 1)
    start, end = bounds
    if start >= file.size:
        raise StorageError(
            416,
            "InvalidRange",
            "The range specified is invalid for the current size of the resource.",
            headers={"Content-Range": f"bytes */{file.size}"},
        )
    last = min(file.size - 1, end if end is not None else file.size - 1)
    headers.pop("Content-MD5", None)
    if file.content_md5:
        headers["x-ms-content-md5"] = file.content_md5
    if (ctx.header("x-ms-range-get-content-md5") or "").lower() == "true":
        if last - start + 1 > MAX_RANGE_BYTES:
            raise StorageError(
                400, "OutOfRangeInput", "x-ms-range-get-content-md5 needs a range of at most 4 MiB."
            )
        headers["Content-MD5"] = md5_b64(file.content.read(start, last - start + 1))
    headers["Content-Range"] = f"bytes {start}-{last}/{file.size}"
    return await send_bytes(ctx, file, 206, headers, start, last)


async def get_file_properties(ctx: Ctx) -> web.StreamResponse:
    file = ctx.store.file(ctx.share(), ctx.path)
    headers = read_headers(ctx, file)
    headers["Content-Length"] = str(file.size)
    return web.Response(status=200, headers=headers)


async def delete_file(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    file = ctx.store.file(share, ctx.path)
    check_lease(ctx, file)
    ctx.store.remove_node(ctx.account, share, ctx.path, lease_id=file.lease_id)
    return reply(202)


async def set_file_properties(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    path = ctx.path
    file = ctx.store.file(share, path)
    check_lease(ctx, file)
    parent = ctx.store.parent_of(share, path)[0]
    smb = smb_from_headers(ctx, share, is_directory=False, current=file.smb, parent=parent)
    size = ctx.int_header("x-ms-content-length")
    if size is not None:
        if size > MAX_FILE_SIZE:
            raise StorageError(
                400, "OutOfRangeInput", "x-ms-content-length exceeds the 4 TiB file size limit."
            )
        assert file.content is not None
        file.content.resize(size)
    apply_content_headers(ctx, file)
    file.smb = smb
    file.touch()
    ctx.store.save_node(ctx.account, share, path, file)
    return reply(200, {**node_headers(file), "x-ms-request-server-encrypted": "true"})


async def set_file_metadata(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    file = ctx.store.file(share, ctx.path)
    check_lease(ctx, file)
    file.metadata = ctx.metadata()
    file.touch()
    ctx.store.save_node(ctx.account, share, ctx.path, file)
    return reply(
        200,
        {
            "ETag": file.etag,
            "Last-Modified": ticks_to_rfc1123(file.last_modified),
            "x-ms-request-server-encrypted": "true",
        },
    )


async def list_ranges(ctx: Ctx) -> web.StreamResponse:
    file = ctx.store.file(ctx.share(), ctx.path)
    assert file.content is not None
    bounds = parse_range(ctx.header("x-ms-range") or ctx.header("Range"))
    start, end = (
        (0, file.size)
        if bounds is None
        else (bounds[0], (bounds[1] + 1) if bounds[1] is not None else file.size)
    )
    ranges = file.content.ranges.within(start, min(end, file.size))
    items = "".join(f"<Range><Start>{a}</Start><End>{b - 1}</End></Range>" for a, b in ranges)
    return xml_reply(
        f"<Ranges>{items}</Ranges>",
        headers={
            "ETag": file.etag,
            "Last-Modified": ticks_to_rfc1123(file.last_modified),
            "x-ms-content-length": str(file.size),
        },
    )


async def file_lease(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    file = ctx.store.file(share, ctx.path)
    action = (ctx.header("x-ms-lease-action") or "").lower()
    given = ctx.header("x-ms-lease-id")
    headers = {"ETag": file.etag, "Last-Modified": ticks_to_rfc1123(file.last_modified)}
    if action == "acquire":
        duration = ctx.header("x-ms-lease-duration") or "-1"
        if duration != "-1":
            raise invalid_header("x-ms-lease-duration", duration, "file leases are infinite (-1)")
        proposed = ctx.header("x-ms-proposed-lease-id") or str(uuid.uuid4())
        if file.lease_id and file.lease_id != proposed:
            raise StorageError(409, "LeaseAlreadyPresent", "There is already a lease present.")
        file.lease_id = proposed
        result = reply(201, {**headers, "x-ms-lease-id": proposed})
    elif action in ("release", "change"):
        if not file.lease_id or given != file.lease_id:
            raise StorageError(
                409, "LeaseIdMismatchWithLeaseOperation", "The lease ID specified did not match."
            )
        if action == "release":
            file.lease_id = ""
            result = reply(200, headers)
        else:
            file.lease_id = ctx.header("x-ms-proposed-lease-id") or file.lease_id
            result = reply(200, {**headers, "x-ms-lease-id": file.lease_id})
    elif action == "break":
        file.lease_id = ""
        result = reply(202, {**headers, "x-ms-lease-time": "0"})
    else:
        raise bad_request("InvalidHeaderValue", f"Unknown x-ms-lease-action {action!r}.")
    ctx.store.save_node(ctx.account, share, ctx.path, file)
    return result
