"""Directory operations: create, properties, metadata, delete, list (paged), handles, rename."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from shareferry.emulator.context import (
    Ctx,
    encoded_name,
    metadata_headers,
    node_headers,
    reply,
    smb_from_headers,
    xml_reply,
)
from shareferry.emulator.errors import StorageError, invalid_header
from shareferry.emulator.model import Directory, File, Node, format_attributes
from shareferry.emulator.names import normalize_path
from shareferry.emulator.routing import split_path
from shareferry.emulator.wire import ticks_to_iso, ticks_to_rfc1123, xml_text


async def create_directory(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    path = ctx.path
    parent, name = ctx.store.parent_of(share, path)
    smb = smb_from_headers(ctx, share, is_directory=True, current=None, parent=parent)
    node = Directory(
        name=name, file_id=ctx.store.new_id(), parent_id=parent.file_id, smb=smb, metadata=ctx.metadata()
    )
    ctx.store.add_node(ctx.account, share, path, node, replace_file=False)
    return reply(201, {**node_headers(node), "x-ms-request-server-encrypted": "true"})


async def get_directory_properties(ctx: Ctx) -> web.StreamResponse:
    node = ctx.store.directory(ctx.share(), ctx.path)
    return reply(
        200, {**node_headers(node), **metadata_headers(node.metadata), "x-ms-server-encrypted": "true"}
    )


async def delete_directory(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    ctx.store.directory(share, ctx.path)
    ctx.store.remove_node(ctx.account, share, ctx.path)
    return reply(202)


async def set_directory_properties(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    path = ctx.path
    node = ctx.store.directory(share, path)
    parent = ctx.store.parent_of(share, path)[0] if path else None
    node.smb = smb_from_headers(ctx, share, is_directory=True, current=node.smb, parent=parent)
    node.touch()
    ctx.store.save_node(ctx.account, share, path, node)
    return reply(200, {**node_headers(node), "x-ms-request-server-encrypted": "true"})


async def set_directory_metadata(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    node = ctx.store.directory(share, ctx.path)
    node.metadata = ctx.metadata()
    node.touch()
    ctx.store.save_node(ctx.account, share, ctx.path, node)
    return reply(200, {"ETag": node.etag, "x-ms-request-server-encrypted": "true"})


def _entry(node: Node, include: set[str], extended: bool) -> str:
    parts = [encoded_name(node.name)]
    if extended or include:
        parts.append(f"<FileId>{node.file_id}</FileId>")
    props = []
    if isinstance(node, File):
        props.append(f"<Content-Length>{node.size}</Content-Length>")
    if "timestamps" in include:
        props.append(
            f"<CreationTime>{ticks_to_iso(node.smb.creation)}</CreationTime>"
            f"<LastAccessTime>{ticks_to_iso(node.smb.last_write)}</LastAccessTime>"
            f"<LastWriteTime>{ticks_to_iso(node.smb.last_write)}</LastWriteTime>"
            f"<ChangeTime>{ticks_to_iso(node.smb.change)}</ChangeTime>"
            f"<Last-Modified>{ticks_to_rfc1123(node.last_modified)}</Last-Modified>"
        )
    if "etag" in include:
        props.append(f"<Etag>{xml_text(node.etag)}</Etag>")
    parts.append(f"<Properties>{''.join(props)}</Properties>")
    if "attributes" in include:
        parts.append(f"<Attributes>{format_attributes(node.smb.attributes)}</Attributes>")
    if "permissionkey" in include:
        parts.append(f"<PermissionKey>{node.smb.permission_key}</PermissionKey>")
    tag = "Directory" if isinstance(node, Directory) else "File"
    return f"<{tag}>{''.join(parts)}</{tag}>"


async def list_directory(ctx: Ctx) -> web.StreamResponse:
    share = ctx.share()
    path = ctx.path
    directory = ctx.store.directory(share, path)
    prefix = ctx.query.get("prefix", "")
    marker = ctx.query.get("marker", "")
    include = {p.strip().lower() for p in ctx.query.get("include", "").split(",") if p.strip()}
    extended = (ctx.header("x-ms-file-extended-info") or "").lower() == "true"
    limit = ctx.max_results()
    nodes, next_marker = directory.page(prefix, marker or None, limit)
    snapshot = f' ShareSnapshot="{xml_text(share.snapshot)}"' if share.snapshot else ""
    document = (
        f'<EnumerationResults ServiceEndpoint="{xml_text(ctx.endpoint())}/" '
        f'ShareName="{xml_text(share.name)}"{snapshot} DirectoryPath="{xml_text(path)}">'
        f"<Prefix>{xml_text(prefix)}</Prefix><Marker>{xml_text(marker)}</Marker>"
        f"<MaxResults>{limit}</MaxResults><DirectoryId>{directory.file_id}</DirectoryId><Entries>"
        + "".join(_entry(node, include, extended) for node in nodes)
        + f"</Entries><NextMarker>{xml_text(next_marker or '')}</NextMarker></EnumerationResults>"
    )
    return xml_reply(document)


async def list_handles(ctx: Ctx) -> web.StreamResponse:
    ctx.store.lookup(ctx.share(), ctx.path)
    return xml_reply("<EnumerationResults><Entries /><NextMarker /></EnumerationResults>")


async def force_close_handles(ctx: Ctx) -> web.StreamResponse:
    ctx.store.lookup(ctx.share(), ctx.path)
    return reply(200, {"x-ms-number-of-handles-closed": "0", "x-ms-number-of-handles-failed": "0"})


async def rename(ctx: Ctx) -> web.StreamResponse:
    """Rename File / Rename Directory: ``x-ms-file-rename-source`` names the source in this share.

    The renamed resource keeps its content, content headers (Content-MD5 included), metadata,
    SMB times, attributes and permission, unless the request sets new ones (``x-ms-content-type``,
    ``x-ms-meta-*``, ``x-ms-file-*``); its change time moves to now unless given, as on Azure.
    With ``x-ms-file-rename-replace-if-exists: true`` an existing destination file is replaced in
    the same step (its lease id in ``x-ms-destination-lease-id``, ReadOnly only with
    ``x-ms-file-rename-ignore-readonly: true``); without it, 409 ``ResourceAlreadyExists``.
    """
    share = ctx.share()
    is_directory = ctx.route.op == "RenameDirectory"
    source = _rename_source(ctx, share.name, is_directory=is_directory)
    replace = _flag(ctx, "x-ms-file-rename-replace-if-exists")
    ignore_read_only = _flag(ctx, "x-ms-file-rename-ignore-readonly")
    if ignore_read_only and not replace:
        raise invalid_header(
            "x-ms-file-rename-ignore-readonly", "true", "needs x-ms-file-rename-replace-if-exists: true"
        )
    node = ctx.store.lookup(share, source)
    if is_directory and not isinstance(node, Directory):
        raise StorageError(409, "ResourceTypeMismatch", "The rename source is not a directory.")
    if not is_directory and not isinstance(node, File):
        raise StorageError(409, "ResourceTypeMismatch", "The rename source is not a file.")
    destination = ctx.path
    if isinstance(node, File):
        ctx.renamed_from = f"{ctx.account}/{share.name}/{ctx.store.stored_path(share, source)}"
    # Everything the request sets is worked out before the move, so a bad header changes nothing.
    new_parent = ctx.store.parent_of(share, destination)[0]
    smb = smb_from_headers(ctx, share, is_directory=is_directory, current=node.smb, parent=new_parent)
    metadata = ctx.metadata()
    content_type = ctx.header("x-ms-content-type")
    moved = ctx.store.move_node(
        ctx.account,
        share,
        source,
        destination,
        replace=replace,
        source_lease=ctx.header("x-ms-source-lease-id") or "",
        destination_lease=ctx.header("x-ms-destination-lease-id") or "",
        ignore_read_only=ignore_read_only,
    )
    moved.smb = smb
    if metadata:
        moved.metadata = metadata
    if content_type is not None and isinstance(moved, File):
        moved.content_type = content_type
    ctx.store.save_node(ctx.account, share, destination, moved)
    return reply(200, node_headers(moved))


def _flag(ctx: Ctx, name: str) -> bool:
    return (ctx.header(name) or "").lower() == "true"


def _rename_source(ctx: Ctx, share_name: str, *, is_directory: bool) -> str:
    """The source path inside this share, from ``x-ms-file-rename-source`` (a URL or a path)."""
    source_url = ctx.header("x-ms-file-rename-source")
    if source_url is None:
        raise StorageError(
            400,
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified: x-ms-file-rename-source.",
        )
    try:
        source_parts = split_path(urlsplit(source_url).path)
    except (StorageError, ValueError) as exc:
        raise invalid_header(
            "x-ms-file-rename-source", _shown(source_url), "not a path in this share"
        ) from exc
    if source_url.startswith(("http://", "https://")):
        if len(source_parts) < 2 or source_parts[1] != share_name:
            raise invalid_header(
                "x-ms-file-rename-source", _shown(source_url), "the source must be in the same share"
            )
        source_parts = source_parts[2:]  # account and share
    elif source_parts and source_parts[0].casefold() == share_name.casefold():
        source_parts = source_parts[1:]
    allow = ctx.headers.get("x-ms-allow-source-trailing-dot", "").lower() == "true"
    return normalize_path("/".join(source_parts), allow_trailing_dot=allow, is_directory=is_directory)


def _shown(url: str) -> str:
    """The URL without its query: a SAS signature is never echoed back."""
    return url.partition("?")[0]
