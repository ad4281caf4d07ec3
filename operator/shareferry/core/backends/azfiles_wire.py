"""Lean requests for the hot per-file Azure Files operations: Create File, Put Range, Put Range
From URL, Get File and Get File Properties.

The Azure SDK spends about 2 ms of client CPU per request in its pipeline (policies, header
building, response deserialisation); for small files that, not the service, limits a copy. The
few requests every small file needs are built here directly and sent through one shared
azure-core :class:`AioHttpTransport`, authorised with the backend's SAS (appended to the query)
or account key (Shared Key, signed here from the documented string to sign). Entra ID tokens,
and every other operation (listings, directories, shares, permissions, properties), stay with
the SDK.

Requests carry what the SDK would send for the same call: the same URL quoting, ``x-ms-version``
and headers (content headers and MD5 as ``x-ms-content-*``, metadata as ``x-ms-meta-<name>``,
SMB times). Failures are raised as the azure-core exceptions the SDK raises (404 as
:class:`ResourceNotFoundError`, 401/403 as :class:`ClientAuthenticationError`, other statuses
as :class:`HttpResponseError`, each with the response, whose ``x-ms-error-code`` header names
the error; transport failures as azure-core raises them), so the backend's one translation to
the contract's errors applies unchanged.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import itertools
import platform
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import AsyncHttpResponse, HttpRequest
from yarl import URL

from shareferry.core.objects import ContentHeaders, SmbInfo, StoredObject, WriteProps

#: Seconds to wait for a whole answer once the request is sent (the SDK's default).
READ_TIMEOUT_SECONDS = 60
_USER_AGENT = f"shareferry-wire Python/{platform.python_version()}"
#: The standard headers whose values open a Shared Key string to sign, in this order.
_SIGNED_STANDARD_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)
_META_PREFIX = "x-ms-meta-"
#: Largest piece a response body is read in (a whole small file is one piece).
_READ_BLOCK_BYTES = 4 * 1024 * 1024


class SharedKeySigner:
    """Shared Key authorisation for one account (the ``Authorization`` header's value).

    The string to sign is the documented one: the verb, the standard headers above (an empty
    ``Content-Length`` for a zero length), the ``x-ms-*`` headers in lower case, ordered as the
    service orders them (its collation ignores ``-`` and sorts ``_`` before digits and letters),
    and the canonical resource (``/account`` + the path exactly as sent, then each query
    parameter as ``name:value``, decoded, by name)."""

    def __init__(self, account_name: str, account_key: str) -> None:
        self.account_name = account_name
        try:
            self._key = base64.b64decode(account_key)  # as leniently as the SDK decodes it
        except binascii.Error as exc:
            raise ValueError("the account key is not base64") from exc

    def string_to_sign(
        self, method: str, wire_path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> str:
        lowered = {name.lower(): value for name, value in headers.items()}
        if lowered.get("content-length") == "0":
            lowered["content-length"] = ""
        lines = [method, *(lowered.get(name, "") for name in _SIGNED_STANDARD_HEADERS)]
        x_ms = sorted((name for name in lowered if name.startswith("x-ms-")), key=service_header_order)
        canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in x_ms)
        resource = f"/{self.account_name}{wire_path}"
        for name in sorted(query, key=str.lower):
            resource += f"\n{name.lower()}:{unquote(query[name])}"
        return "\n".join(lines) + "\n" + canonical_headers + resource

    def authorization(
        self, method: str, wire_path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> str:
        text = self.string_to_sign(method, wire_path, query, headers)
        digest = hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).digest()
        return f"SharedKey {self.account_name}:{base64.b64encode(digest).decode()}"


def service_header_order(name: str) -> tuple[str, str]:
    """Sort key of a lower-case ``x-ms-*`` header name in the service's collation: hyphens are
    ignored, ``_`` comes before digits, digits before letters; the name itself breaks ties."""
    return name.replace("-", "").replace("_", "!"), name


class FilesWire:
    """Lean Create File, Put Range and Get File requests on one share (or share snapshot).

    ``endpoint`` is the account URL (virtual-host or path-style); exactly one of ``sas`` and
    ``signer`` authorises every request. Paths are full paths inside the share. ``api_version``
    is the ``x-ms-version`` the backend's SDK clients send.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        share: str,
        api_version: str,
        snapshot: str | None = None,
        sas: str | None = None,
        signer: SharedKeySigner | None = None,
        connection_timeout: float = 30,
    ) -> None:
        if (sas is None) == (signer is None):
            raise ValueError("exactly one of sas and signer is needed")
        self._base = f"{endpoint.rstrip('/')}/{quote(share)}/"
        self._api_version = api_version
        self._snapshot = snapshot
        self._sas = sas.lstrip("?") if sas else None
        self._signer = signer
        self._transport = AioHttpTransport(
            connection_timeout=connection_timeout,
            read_timeout=READ_TIMEOUT_SECONDS,
            connection_data_block_size=_READ_BLOCK_BYTES,
        )
        self._date_second = -1
        self._date = ""
        # Request ids: one random UUID's first 20 hex digits, then a counter (a fresh random UUID
        # per request costs a system call that hands the interpreter to other threads).
        self._id_prefix = str(uuid.uuid4())[:24]
        self._id_counter = itertools.count()

    # ---- the three operations -----------------------------------------------------------------

    async def create_file(
        self, path: str, size: int, props: WriteProps, permission: str | None, permission_key: str | None
    ) -> None:
        """Create File (replacing any file there) with ``props``' content headers, MD5,
        metadata and SMB creation and last-write times, and a permission (inline SDDL or a key)."""
        content, md5, smb = props.content, props.content_md5, props.smb
        headers = {"x-ms-content-length": str(size), "x-ms-type": "file"}
        optional = (
            ("x-ms-content-type", content.content_type),
            ("x-ms-content-encoding", content.content_encoding),
            ("x-ms-content-language", content.content_language),
            ("x-ms-cache-control", content.cache_control),
            ("x-ms-content-disposition", content.content_disposition),
            ("x-ms-content-md5", base64.b64encode(md5).decode() if md5 is not None else None),
            ("x-ms-file-permission", permission),
            ("x-ms-file-permission-key", permission_key),
            ("x-ms-file-creation-time", smb.creation_time if smb else None),
            ("x-ms-file-last-write-time", smb.last_write_time if smb else None),
        )
        headers.update((name, value) for name, value in optional if value is not None)
        headers.update((_META_PREFIX + name, value) for name, value in props.metadata.items())
        await self._send("PUT", path, {}, headers)

    async def put_range(self, path: str, offset: int, data: bytes) -> None:
        """Put Range: write ``data`` at ``offset`` (nothing to send for no bytes)."""
        if not data:
            return
        headers = {
            "Content-Length": str(len(data)),
            "Content-Type": "application/octet-stream",
            "x-ms-range": f"bytes={offset}-{offset + len(data) - 1}",
            "x-ms-write": "update",
        }
        await self._send("PUT", path, {"comp": "range"}, headers, data)

    async def put_range_from_url(
        self, path: str, offset: int, url: str, source_offset: int, length: int
    ) -> None:
        """Put Range From URL: the service copies ``length`` bytes of ``url`` (which carries
        its own authorisation) from ``source_offset`` to ``offset``; no bytes pass through here."""
        if length <= 0:
            return
        headers = {
            "Content-Length": "0",
            "x-ms-copy-source": url,
            "x-ms-range": f"bytes={offset}-{offset + length - 1}",
            "x-ms-source-range": f"bytes={source_offset}-{source_offset + length - 1}",
            "x-ms-write": "update",
        }
        await self._send("PUT", path, {"comp": "range"}, headers, b"")

    async def head_file(self, path: str) -> Mapping[str, str]:
        """Get File Properties: the file's headers (404 raises as the SDK does)."""
        response = await self._send("HEAD", path, {}, {})
        return response.headers

    async def get_file(self, path: str, offset: int, length: int) -> tuple[bytes, Mapping[str, str]]:
        """Get File of ``[offset, offset+length)``: the bytes (raw) and the response's headers."""
        headers = {
            "Accept": "application/octet-stream",
            "x-ms-range": f"bytes={offset}-{offset + length - 1}",
        }
        response = await self._send("GET", path, {}, headers, stream=True)
        try:
            # Raw: stored bytes are never decompressed, whatever their Content-Encoding says.
            body = b"".join([chunk async for chunk in response.iter_raw()])
        finally:
            await response.close()
        return body, response.headers

    async def close(self) -> None:
        await self._transport.close()

    # ---- one request ----------------------------------------------------------------------------

    def _date_header(self) -> str:
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date = email.utils.formatdate(now, usegmt=True)
        return self._date

    async def _send(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes | None = None,
        *,
        stream: bool = False,
    ) -> AsyncHttpResponse:
        headers["x-ms-version"] = self._api_version
        headers["x-ms-allow-trailing-dot"] = "true"
        headers["x-ms-date"] = self._date_header()
        headers["x-ms-client-request-id"] = f"{self._id_prefix}{next(self._id_counter) % 16**12:012x}"
        headers["User-Agent"] = _USER_AGENT
        if self._snapshot:  # as the SDK addresses it: reads read the snapshot, writes are refused
            query["sharesnapshot"] = self._snapshot
        url = self._base + "/".join(quote(segment, safe="~") for segment in path.split("/"))
        own_query = "&".join(f"{name}={quote(value, safe='')}" for name, value in query.items())
        if self._signer is not None:
            url += f"?{own_query}" if own_query else ""
            # Signed as aiohttp sends it: its URL parsing re-normalises some escapes (%3B as ;).
            wire_path = URL(url).raw_path
            headers["Authorization"] = self._signer.authorization(method, wire_path, query, headers)
        else:
            url += f"?{own_query}&{self._sas}" if own_query else f"?{self._sas}"
        request = HttpRequest(method, url, headers=headers, content=body)
        response: Any = await self._transport.send(request, stream=stream)
        if response.status_code >= 300:
            if stream:
                await response.read()  # the error's small body, so the connection is reused
                await response.close()
            raise _error(response)
        result: AsyncHttpResponse = response
        return result


def _error(response: AsyncHttpResponse) -> HttpResponseError:
    """The azure-core exception the SDK raises for this error answer."""
    status = response.status_code
    code = response.headers.get("x-ms-error-code")
    message = f"{code or 'no error code'} (HTTP {status})"
    error_type = HttpResponseError
    if status == 404:
        error_type = ResourceNotFoundError
    elif status in (401, 403):
        error_type = ClientAuthenticationError
    # The error code stays readable as the SDK's is: the response's x-ms-error-code header.
    return error_type(message=message, response=response)


def stored_from_get(path: str, data: bytes, headers: Mapping[str, str]) -> StoredObject:
    """A file's properties from a Get File answer (or a HEAD's, with no ``data``), as
    :meth:`AzureFilesBackend.stat` gives them: the size after ``/`` in ``Content-Range`` (a
    HEAD's ``Content-Length``; else the bytes' length), the stored MD5 from
    ``x-ms-content-md5`` (ranged) or ``Content-MD5``, content headers, metadata, SMB info."""
    total = (headers.get("content-range") or "").rpartition("/")[2] or (
        headers.get("content-length", "") if not data else ""
    )
    stored = headers.get("x-ms-content-md5") or headers.get("content-md5")
    modified = headers.get("last-modified")
    metadata = {
        name[len(_META_PREFIX) :]: value
        for name, value in headers.items()
        if name.lower().startswith(_META_PREFIX)
    }
    smb = SmbInfo(
        attributes=headers.get("x-ms-file-attributes") or None,
        creation_time=headers.get("x-ms-file-creation-time") or None,
        last_write_time=headers.get("x-ms-file-last-write-time") or None,
    )
    return StoredObject(
        path=path,
        is_dir=False,
        size=int(total) if total.isdigit() else len(data),
        last_modified=_http_date(modified) if modified else None,
        md5=base64.b64decode(stored) if stored else None,
        content=ContentHeaders(
            content_type=headers.get("content-type"),
            content_encoding=headers.get("content-encoding"),
            content_language=headers.get("content-language"),
            content_disposition=headers.get("content-disposition"),
            cache_control=headers.get("cache-control"),
        ),
        metadata=metadata,
        smb=smb if smb != SmbInfo() else None,
    )


def _http_date(value: str) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def wire_for(
    *,
    endpoint: str,
    share: str,
    snapshot: str | None,
    sas: str | None,
    account_name: str,
    account_key: str | None,
    api_version: str,
    connection_timeout: float,
) -> FilesWire | None:
    """The lean path for a backend authorised by a SAS or an account key; ``None`` otherwise
    (Entra ID tokens, anonymous access and malformed keys keep the SDK for everything)."""
    signer = None
    if sas is None:
        if account_key is None:
            return None
        try:
            signer = SharedKeySigner(account_name, account_key)
        except ValueError:
            return None  # the SDK reports a malformed key when it is first used
    return FilesWire(
        endpoint=endpoint,
        share=share,
        api_version=api_version,
        snapshot=snapshot,
        sas=sas,
        signer=signer,
        connection_timeout=connection_timeout,
    )
