"""The per-request context handed to operation handlers, and helpers they share.

Handlers read headers and the body through :class:`Ctx`, change the :class:`Store`, and build
responses with :func:`reply`; common headers (request id, version, date) are added by the app.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import ClientSession, web
from multidict import CIMultiDict, CIMultiDictProxy

from shareferry.emulator.auth import PolicyLookup, StoredPolicy
from shareferry.emulator.body import read_body
from shareferry.emulator.config import EmulatorConfig
from shareferry.emulator.errors import StorageError, bad_request, invalid_header, invalid_query
from shareferry.emulator.model import (
    ATTRIBUTE_ORDER,
    Directory,
    File,
    Node,
    Share,
    Smb,
    format_attributes,
    parse_attributes,
)
from shareferry.emulator.names import normalize_path
from shareferry.emulator.routing import DIRECTORY_OPS, Route
from shareferry.emulator.store import Store
from shareferry.emulator.wire import iso_to_ticks, now_ticks, ticks_to_iso, ticks_to_rfc1123, xml_text

MAX_RANGE_BYTES = 4 * 1024 * 1024
#: Azure's limit on the names and values of a resource's metadata, together.
MAX_METADATA_BYTES = 8 * 1024
_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)


@dataclass
class Ctx:
    """One request: what it addresses, its headers and query, and the emulator it talks to."""

    request: web.Request
    route: Route
    query: Mapping[str, str]
    headers: CIMultiDictProxy[str]
    store: Store
    config: EmulatorConfig
    client: Callable[[], Awaitable[ClientSession]]
    #: Adds the headers every answer carries; a handler that streams calls it before ``prepare``.
    stamp: Callable[[web.StreamResponse], None] = lambda _response: None
    #: ``account/share/path`` of a file this request renamed (its write counts move with it).
    renamed_from: str | None = None
    #: A dropped-connection fault: a read sends its headers and half its bytes, then cuts.
    cut_reads_halfway: bool = False

    async def body(self, *, limit: int = MAX_RANGE_BYTES) -> bytes:
        """The request body: at most ``limit`` bytes, given up on when the client stalls."""
        return await read_body(self.request, limit=limit, idle_timeout=self.config.body_read_timeout)

    @property
    def account(self) -> str:
        return self.route.account

    def share(self) -> Share:
        assert self.route.share is not None
        return self.store.share(self.account, self.route.share, self.route.snapshot)

    @property
    def path(self) -> str:
        """The path inside the share, trailing dots trimmed unless the client allows them."""
        allow = self.headers.get("x-ms-allow-trailing-dot", "").lower() == "true"
        return normalize_path(
            self.route.path, allow_trailing_dot=allow, is_directory=self.route.op in DIRECTORY_OPS
        )

    def stored_key(self) -> str:
        """``account/share/path`` of the addressed file, the path spelled as stored."""
        share = self.share()
        return f"{self.account}/{share.name}/{self.store.stored_path(share, self.path)}"

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if value not in (None, "") else None

    def int_header(self, name: str, *, minimum: int = 0) -> int | None:
        value = self.header(name)
        if value is None:
            return None
        if not _INTEGER.fullmatch(value):  # int() would also take "+5", " 5", "5_0" and other digits
            raise invalid_header(name, value, "expected an integer")
        # A number of more than 19 digits is past every limit: keep its sign, not its digits
        # (int() refuses very long ones).
        huge = -(10**19) if value.startswith("-") else 10**19
        number = int(value) if len(value.lstrip("-")) <= 19 else huge
        if number < minimum:
            raise StorageError(400, "OutOfRangeInput", f"{name} must be at least {minimum}.")
        return number

    def max_results(self) -> int:
        """The ``maxresults`` of a listing: 1 to 5000, default 5000."""
        text = self.query.get("maxresults", "5000")
        try:
            limit = int(text)
        except ValueError as exc:
            raise invalid_query("maxresults", text) from exc
        if not 1 <= limit <= 5000:
            raise invalid_query("maxresults", text, "must be 1 to 5000")
        return limit

    def metadata(self) -> dict[str, str]:
        """``x-ms-meta-*`` headers, names as sent (the bare ``x-ms-meta`` header is ignored)."""
        out: dict[str, str] = {}
        for name, value in self.headers.items():
            lower = name.lower()
            if lower.startswith("x-ms-meta-") and len(name) > len("x-ms-meta-"):
                key = name[len("x-ms-meta-") :]
                if not (key[0].isalpha() or key[0] == "_") or not key.replace("_", "a").isalnum():
                    raise bad_request("InvalidMetadata", f"Metadata name {key!r} is not a valid identifier.")
                out[key] = value
        if sum(len(key.encode()) + len(value.encode()) for key, value in out.items()) > MAX_METADATA_BYTES:
            raise bad_request(
                "MetadataTooLarge",
                "The size of the specified metadata exceeds the maximum size permitted (8 KiB).",
            )
        return out

    def endpoint(self) -> str:
        return f"{self.request.scheme}://{self.request.host}/{self.account}"


def policy_lookup(store: Store) -> PolicyLookup:
    """Stored access policies of a store's shares, for service SAS ``si=``."""

    def lookup(account: str, share_name: str, identifier: str) -> StoredPolicy | None:
        try:
            share = store.share(account, share_name)
        except StorageError:
            return None
        for ident in share.identifiers:
            if ident.id == identifier:
                return StoredPolicy(ident.start, ident.expiry, ident.permission)
        return None

    return lookup


def reply(
    status: int,
    headers: Mapping[str, str] | None = None,
    body: bytes | bytearray = b"",
    *,
    content_type: str | None = None,
) -> web.Response:
    out: CIMultiDict[str] = CIMultiDict(headers or {})
    if content_type:
        out["Content-Type"] = content_type
    return web.Response(status=status, headers=out, body=body)


def xml_reply(document: str, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return reply(
        status,
        headers,
        ('<?xml version="1.0" encoding="utf-8"?>' + document).encode(),
        content_type="application/xml",
    )


def metadata_headers(metadata: Mapping[str, str]) -> dict[str, str]:
    return {f"x-ms-meta-{key}": value for key, value in metadata.items()}


def metadata_xml(metadata: Mapping[str, str]) -> str:
    return "".join(f"<{key}>{xml_text(value)}</{key}>" for key, value in metadata.items())


def encoded_name(name: str) -> str:
    """``<Name>`` element: plain when XML can carry it, else percent-encoded with Encoded=true."""
    if all(_xml_char(ch) for ch in name):
        return f"<Name>{xml_text(name)}</Name>"
    return f'<Name Encoded="true">{quote(name, safe="")}</Name>'


def _xml_char(ch: str) -> bool:
    code = ord(ch)
    return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code > 0xFFFF


def node_headers(node: Node) -> dict[str, str]:
    """ETag, Last-Modified and the SMB properties of a directory or file."""
    return {
        "ETag": node.etag,
        "Last-Modified": ticks_to_rfc1123(node.last_modified),
        "x-ms-file-attributes": format_attributes(node.smb.attributes),
        "x-ms-file-creation-time": ticks_to_iso(node.smb.creation),
        "x-ms-file-last-write-time": ticks_to_iso(node.smb.last_write),
        "x-ms-file-change-time": ticks_to_iso(node.smb.change),
        "x-ms-file-permission-key": node.smb.permission_key,
        "x-ms-file-id": str(node.file_id),
        "x-ms-file-parent-id": str(node.parent_id),
    }


def _time_header(ctx: Ctx, name: str, current: int | None, now: int, *, keep: bool) -> int:
    """A time header: ``now``, ``preserve``, ISO 8601; absent means now, or keep when ``keep``."""
    value = ctx.header(name)
    if value is None:
        return current if keep and current is not None else now
    if value.lower() == "now":
        return now
    if value.lower() == "preserve":
        return current if current is not None else now
    return iso_to_ticks(value, name)


def _attributes(ctx: Ctx, is_directory: bool, current: tuple[str, ...] | None) -> tuple[str, ...]:
    value = ctx.header("x-ms-file-attributes")
    if value is None or value.lower() == "preserve":
        if current is not None:
            return current
        return ("Directory",) if is_directory else ("Archive",)
    parsed = parse_attributes(value)
    if parsed is None:
        raise invalid_header("x-ms-file-attributes", value, "unknown attribute name")
    if is_directory:
        chosen = {a for a in parsed if a != "None"} | {"Directory"}
    elif "Directory" in parsed:
        raise invalid_header("x-ms-file-attributes", value, "a file cannot have the Directory attribute")
    else:
        chosen = set(parsed) - {"None"} if len(parsed) > 1 else set(parsed) or {"None"}
    return tuple(a for a in ATTRIBUTE_ORDER if a in chosen)


def smb_from_headers(
    ctx: Ctx, share: Share, *, is_directory: bool, current: Smb | None, parent: Directory | None
) -> Smb:
    """SMB properties from ``x-ms-file-*`` headers: create (current None) or set (preserve)."""
    now = now_ticks()
    permission = ctx.header("x-ms-file-permission")
    key = ctx.header("x-ms-file-permission-key")
    if permission is not None and key is not None:
        raise bad_request(
            "InvalidHeaderValue", "x-ms-file-permission and x-ms-file-permission-key are exclusive."
        )
    inherited = parent.smb.permission_key if parent is not None else share.root.smb.permission_key
    if key is not None:
        ctx.store.get_permission(share, key)
        permission_key = key
    elif permission is None or permission.lower() == "preserve":
        permission_key = current.permission_key if current is not None else inherited
    elif permission.lower() == "inherit":
        permission_key = inherited
    else:
        fmt = (ctx.header("x-ms-file-permission-format") or "sddl").lower()
        stored = permission if fmt == "sddl" else f"binary:{permission}"
        permission_key = ctx.store.create_permission(ctx.account, share, stored)
    keep = current is not None
    return Smb(
        attributes=_attributes(ctx, is_directory, current.attributes if current else None),
        creation=_time_header(
            ctx, "x-ms-file-creation-time", current.creation if current else None, now, keep=keep
        ),
        last_write=_time_header(
            ctx, "x-ms-file-last-write-time", current.last_write if current else None, now, keep=keep
        ),
        change=_time_header(
            ctx, "x-ms-file-change-time", current.change if current else None, now, keep=False
        ),
        permission_key=permission_key,
    )


def file_content_headers(file: File) -> dict[str, str]:
    out = {"Content-Type": file.content_type or "application/octet-stream"}
    for header, value in (
        ("Content-Encoding", file.content_encoding),
        ("Content-Language", file.content_language),
        ("Cache-Control", file.cache_control),
        ("Content-Disposition", file.content_disposition),
    ):
        if value:
            out[header] = value
    return out
