"""Server-side copies: Copy File (start, status via properties, abort) and Put Range From URL.

A source on this emulator (any account) is read straight from the store after its SAS is
checked, or, for Copy File within one account, on the strength of the request's Shared Key.
Any other http(s) source, such as an Azurite blob SAS URL, is fetched with a GET. Copies
complete before the response, so ``x-ms-copy-status`` is ``success`` at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from shareferry.emulator.auth import AuthInput, authorize
from shareferry.emulator.context import MAX_RANGE_BYTES, Ctx, policy_lookup, reply, smb_from_headers
from shareferry.emulator.errors import StorageError, bad_request, invalid_header
from shareferry.emulator.model import CopyState, Directory, File, Share, Smb
from shareferry.emulator.ops_file import apply_content_headers, check_lease, mark_written, md5_b64
from shareferry.emulator.routing import classify
from shareferry.emulator.wire import now_ticks, parse_query, parse_range, ticks_to_rfc1123

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass
class Source:
    """What a copy reads: its bytes (possibly one range) and, for an emulated file, the file.

    For a whole emulated file ``data`` is empty: the copy clones ``file``'s content instead.
    """

    data: bytes
    size: int
    file: File | None
    content_type: str = "application/octet-stream"


def _is_self(ctx: Ctx, url: str) -> bool:
    parts = urlsplit(url)
    own = urlsplit(f"{ctx.request.scheme}://{ctx.request.host}")
    if parts.netloc == own.netloc:
        return True
    return (
        (parts.hostname or "") in _LOOPBACK and (own.hostname or "") in _LOOPBACK and parts.port == own.port
    )


async def read_source(
    ctx: Ctx, url: str, byte_range: tuple[int, int] | None, *, shared_key_ok: bool
) -> Source:
    """Read the copy source (whole, or ``[start, end]`` inclusive)."""
    if _is_self(ctx, url):
        return _read_local(ctx, url, byte_range, shared_key_ok=shared_key_ok)
    return await _read_remote(ctx, url, byte_range)


def _read_local(ctx: Ctx, url: str, byte_range: tuple[int, int] | None, *, shared_key_ok: bool) -> Source:
    parts = urlsplit(url)
    query = parse_query(parts.query)
    try:
        route = classify("GET", parts.path, query, {})
    except StorageError as exc:
        raise bad_request("InvalidHeaderValue", f"The copy source is not a file URL: {exc.message}") from exc
    if route.op != "GetFile" or route.share is None:
        raise bad_request("InvalidHeaderValue", "The copy source must name a file.")
    if "sig" in query:
        try:
            authorize(
                AuthInput(
                    "GET", parts.path, query, {}, parts.scheme or "http", ctx.request.remote or "127.0.0.1"
                ),
                route,
                ctx.config,
                policy_lookup(ctx.store),
            )
        except StorageError as exc:
            raise StorageError(
                403, "CannotVerifyCopySource", f"The copy source could not be authorized: {exc.message}"
            ) from exc
    elif not (shared_key_ok and route.account == ctx.account):
        raise StorageError(
            403, "CannotVerifyCopySource", "The copy source must carry a SAS (or be in the same account)."
        )
    try:
        share = ctx.store.share(route.account, route.share, route.snapshot)
        source = ctx.store.file(share, route.path)
    except StorageError as exc:
        raise StorageError(404, "CannotVerifyCopySource", f"The copy source: {exc.message}") from exc
    assert source.content is not None
    if byte_range is None:
        data = b""  # a whole emulated file is copied by cloning its content, never read into memory
    else:
        start, end = byte_range
        if end >= source.size:
            raise StorageError(416, "InvalidRange", "The source range is beyond the end of the source file.")
        data = source.content.read(start, end - start + 1)
    return Source(data=data, size=source.size, file=source, content_type=source.content_type)


async def _read_remote(ctx: Ctx, url: str, byte_range: tuple[int, int] | None) -> Source:
    headers = {"x-ms-version": "2021-08-06"}
    if byte_range is not None:
        headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
    session = await ctx.client()
    try:
        async with session.get(url, headers=headers) as response:
            data = await response.read()
            if response.status not in (200, 206):
                raise StorageError(
                    403 if response.status in (401, 403) else 400 if response.status != 404 else 404,
                    "CannotVerifyCopySource",
                    f"The copy source answered HTTP {response.status}.",
                )
            total = response.headers.get("Content-Range", "").rpartition("/")[2]
            size = int(total) if total.isdigit() else len(data)
            content_type = response.headers.get("Content-Type", "application/octet-stream")
    except aiohttp.ClientError as exc:
        raise StorageError(
            400, "CannotVerifyCopySource", f"The copy source could not be read: {type(exc).__name__}."
        ) from exc
    return Source(data=data, size=size, file=None, content_type=content_type)


async def put_range_from_url(ctx: Ctx) -> web.StreamResponse:
    source_url = ctx.header("x-ms-copy-source") or ""
    target = parse_range(ctx.header("x-ms-range"))
    source_range = parse_range(ctx.header("x-ms-source-range"), "x-ms-source-range")
    if target is None or target[1] is None:
        raise StorageError(400, "MissingRequiredHeader", "x-ms-range with bytes=START-END is required.")
    if source_range is None or source_range[1] is None:
        raise StorageError(
            400, "MissingRequiredHeader", "x-ms-source-range with bytes=START-END is required."
        )
    length = target[1] - target[0] + 1
    if source_range[1] - source_range[0] + 1 != length:
        raise invalid_header(
            "x-ms-source-range", ctx.header("x-ms-source-range"), "must be as long as x-ms-range"
        )
    if length > MAX_RANGE_BYTES:
        raise StorageError(413, "RequestBodyTooLarge", "Put Range From URL copies at most 4 MiB per call.")
    if (ctx.header("x-ms-write") or "update").lower() != "update":
        raise invalid_header("x-ms-write", ctx.header("x-ms-write"), "must be update")
    share = ctx.share()
    path = ctx.path
    file = ctx.store.file(share, path)
    check_lease(ctx, file)
    assert file.content is not None
    if target[1] >= file.size:
        raise StorageError(
            416, "InvalidRange", "The range specified is invalid for the current size of the resource."
        )
    source = await read_source(ctx, source_url, (source_range[0], source_range[1]), shared_key_ok=False)
    if len(source.data) != length:
        raise StorageError(
            400, "CannotVerifyCopySource", "The copy source returned fewer bytes than the range."
        )
    file = ctx.store.file(share, path)  # the source read awaited: look again
    assert file.content is not None
    file.content.write(target[0], source.data)
    mark_written(ctx, file)
    ctx.store.save_node(ctx.account, share, path, file)
    return reply(
        201,
        {
            "ETag": file.etag,
            "Last-Modified": ticks_to_rfc1123(file.last_modified),
            "Content-MD5": md5_b64(source.data),
            "x-ms-request-server-encrypted": "true",
        },
    )


def _copy_smb(ctx: Ctx, source: File | None, created: Smb) -> Smb:
    """Apply Copy File's SMB modes: ``source`` takes the source's value, else the header's."""
    smb = Smb(**created.__dict__)
    if source is None:
        return smb
    if (ctx.header("x-ms-file-permission-copy-mode") or "").lower() == "source":
        smb.permission_key = source.smb.permission_key
    for header, field in (
        ("x-ms-file-attributes", "attributes"),
        ("x-ms-file-creation-time", "creation"),
        ("x-ms-file-last-write-time", "last_write"),
        ("x-ms-file-change-time", "change"),
    ):
        if (ctx.header(header) or "").lower() == "source":
            setattr(smb, field, getattr(source.smb, field))
    return smb


async def copy_file(ctx: Ctx) -> web.StreamResponse:
    source_url = ctx.header("x-ms-copy-source") or ""
    if not source_url.startswith(("http://", "https://")):
        raise invalid_header("x-ms-copy-source", "<not shown>", "must be an http(s) URL")
    share = ctx.share()
    path = ctx.path
    parent, name = ctx.store.parent_of(share, path)
    source = await read_source(ctx, source_url, None, shared_key_ok=True)
    if source.file is not None and source.file.smb.permission_key not in share.permissions:
        # a permission key from another share means nothing here: carry the permission itself
        source_share_permission = _source_permission(ctx, source_url, source.file)
        if source_share_permission is not None:
            ctx.store.create_permission(ctx.account, share, source_share_permission)
    parent, name = ctx.store.parent_of(share, path)  # the source read awaited: look again
    existing = parent.get(name)
    if isinstance(existing, File):
        check_lease(ctx, existing)
    created = _smb_for_copy(ctx, share, parent)
    if source.file is not None and source.file.content is not None:
        # sparse: written ranges stay ranges and holes stay holes, so a 4 TiB file costs nothing
        content = source.file.content.clone()
    else:
        content = ctx.store.content.new(len(source.data))
        content.write(0, source.data)
    file = File(
        name=name,
        file_id=ctx.store.new_id(),
        parent_id=parent.file_id,
        smb=_copy_smb(ctx, source.file, created),
        metadata=ctx.metadata(),
        content=content,
    )
    if source.file is not None:
        for attribute in (
            "content_type",
            "content_encoding",
            "content_language",
            "cache_control",
            "content_disposition",
            "content_md5",
        ):
            setattr(file, attribute, getattr(source.file, attribute))
        if not file.metadata:
            file.metadata = dict(source.file.metadata)
    else:
        file.content_type = source.content_type
    if ctx.header("x-ms-content-type") is not None:
        apply_content_headers(ctx, file)
    copy_id = str(uuid.uuid4())
    file.copy = CopyState(
        copy_id=copy_id,
        source=_redacted(source_url),
        status="success",
        progress=f"{content.size}/{content.size}",
        completion_time=now_ticks(),
    )
    ctx.store.add_node(
        ctx.account, share, path, file, replace_file=True, lease_id=ctx.header("x-ms-lease-id") or ""
    )
    return reply(
        202,
        {
            "ETag": file.etag,
            "Last-Modified": ticks_to_rfc1123(file.last_modified),
            "x-ms-copy-id": copy_id,
            "x-ms-copy-status": "success",
        },
    )


def _source_permission(ctx: Ctx, url: str, source: File) -> str | None:
    parts = urlsplit(url)
    try:
        route = classify("GET", parts.path, parse_query(parts.query), {})
        assert route.share is not None
        return ctx.store.share(route.account, route.share, route.snapshot).permissions.get(
            source.smb.permission_key
        )
    except (StorageError, AssertionError):
        return None


def _smb_for_copy(ctx: Ctx, share: Share, parent: Directory) -> Smb:
    """SMB properties for the copy target from the headers, ignoring the ``source`` keyword."""
    mode = (ctx.header("x-ms-file-permission-copy-mode") or "").lower()
    if (
        mode == "override"
        and ctx.header("x-ms-file-permission") is None
        and ctx.header("x-ms-file-permission-key") is None
    ):
        raise bad_request(
            "MissingRequiredHeader", "x-ms-file-permission-copy-mode=override needs a permission."
        )
    return smb_from_headers(_SourceBlind(ctx), share, is_directory=False, current=None, parent=parent)


class _SourceBlind(Ctx):
    """A view of the request where header values ``source`` read as absent."""

    def __init__(self, ctx: Ctx) -> None:
        super().__init__(ctx.request, ctx.route, ctx.query, ctx.headers, ctx.store, ctx.config, ctx.client)

    def header(self, name: str) -> str | None:
        value = super().header(name)
        if value is not None and value.lower() == "source":
            return None
        if (
            name.lower() == "x-ms-file-permission"
            and (super().header("x-ms-file-permission-copy-mode") or "").lower() == "source"
        ):
            return None
        return value


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    query = "&".join(
        "sig=REDACTED" if p.lower().startswith("sig=") else p for p in parts.query.split("&") if p
    )
    return parts._replace(query=query).geturl()


async def abort_copy(ctx: Ctx) -> web.StreamResponse:
    file = ctx.store.file(ctx.share(), ctx.path)
    copy_id = ctx.query.get("copyid", "")
    if (ctx.header("x-ms-copy-action") or "").lower() != "abort":
        raise invalid_header("x-ms-copy-action", ctx.header("x-ms-copy-action"), "must be abort")
    if file.copy is None or file.copy.copy_id != copy_id:
        raise StorageError(409, "NoPendingCopyOperation", "There is currently no pending copy operation.")
    if file.copy.status != "pending":
        raise StorageError(409, "NoPendingCopyOperation", "There is currently no pending copy operation.")
    return reply(204)
