"""Send one Azure Storage REST request without the SDK's pipeline: the service-neutral part of the
lean request paths (:mod:`.azfiles_wire`, :mod:`.azblob_wire`).

A :class:`WireSender` adds what every storage request carries (``x-ms-version``, ``x-ms-date``,
a client request id, a user agent), authorises it with a SAS (appended to the query) or an
account key (Shared Key, signed by :class:`SharedKeySigner` from the documented string to sign),
sends it through one azure-core :class:`AioHttpTransport` and raises failures as the azure-core
exceptions the SDK raises (404 as :class:`ResourceNotFoundError`, 401/403 as
:class:`ClientAuthenticationError`, other statuses as :class:`HttpResponseError`, each with the
response, whose ``x-ms-error-code`` header names the error; transport failures as azure-core
raises them), so a backend's one translation to the contract's errors applies unchanged. Listing
answers are read whole and parsed with the standard library (:func:`read_xml`); an answer that is
not XML raises azure-core's :class:`DecodeError`, as the SDK's deserialiser does.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import hashlib
import hmac
import itertools
import platform
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import AsyncHttpResponse, HttpRequest
from yarl import URL

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
#: Largest piece a response body is read in (a whole small file is one piece).
_READ_BLOCK_BYTES = 4 * 1024 * 1024


class SharedKeySigner:
    """Shared Key authorisation for one account (the ``Authorization`` header's value).

    The string to sign is the documented one (the same for Blob and Files): the verb, the
    standard headers above (an empty ``Content-Length`` for a zero length), the ``x-ms-*``
    headers in lower case, ordered as the service orders them (its collation ignores ``-`` and
    sorts ``_`` before digits and letters), and the canonical resource (``/account`` + the path
    exactly as sent, then each query parameter as ``name:value`` by name, ``query`` holding the
    decoded values: a listing's marker may itself contain ``%``)."""

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
            resource += f"\n{name.lower()}:{query[name]}"  # already decoded: never unquoted again
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


def signer_or_none(sas: str | None, account_name: str, account_key: str | None) -> SharedKeySigner | None:
    """The signer for a backend with no SAS but an account key; ``None`` otherwise.

    :class:`ValueError` for a malformed key (callers keep the SDK, which reports it when the key
    is first used)."""
    if sas is not None or account_key is None:
        return None
    return SharedKeySigner(account_name, account_key)


class WireSender:
    """Sends requests to one storage endpoint, authorised by exactly one of ``sas`` and
    ``signer``, with ``api_version`` as ``x-ms-version`` (the one the backend's SDK clients send)."""

    def __init__(
        self,
        *,
        api_version: str,
        sas: str | None = None,
        signer: SharedKeySigner | None = None,
        connection_timeout: float = 30,
    ) -> None:
        if (sas is None) == (signer is None):
            raise ValueError("exactly one of sas and signer is needed")
        self._api_version = api_version
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

    def _date_header(self) -> str:
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date = email.utils.formatdate(now, usegmt=True)
        return self._date

    async def send(
        self,
        method: str,
        url: str,
        query: Mapping[str, str],
        headers: dict[str, str],
        body: bytes | None = None,
        *,
        stream: bool = False,
    ) -> AsyncHttpResponse:
        """Send ``method`` to ``url`` (already quoted, no query) with ``query`` (unquoted values)
        and ``headers`` (completed here); the response when its status is below 300."""
        headers["x-ms-version"] = self._api_version
        headers["x-ms-date"] = self._date_header()
        headers["x-ms-client-request-id"] = f"{self._id_prefix}{next(self._id_counter) % 16**12:012x}"
        headers["User-Agent"] = _USER_AGENT
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
            raise storage_error(response)
        result: AsyncHttpResponse = response
        return result

    async def close(self) -> None:
        await self._transport.close()


async def read_raw(response: AsyncHttpResponse) -> bytes:
    """A streamed response's whole body as sent: stored bytes are never decompressed, whatever
    their ``Content-Encoding`` says."""
    try:
        return b"".join([chunk async for chunk in response.iter_raw()])
    finally:
        await response.close()


async def read_xml(response: AsyncHttpResponse) -> ET.Element:
    """A streamed response's XML document (a listing page), read whole; a body that is not XML
    raises :class:`DecodeError` with the response, as the SDK's deserialiser does."""
    body = await read_raw(response)
    try:
        # The storage service's own answer, parsed as the SDK parses it (expat: no external
        # entities, and entity expansion is bounded).
        return ET.fromstring(body)  # noqa: S314
    except ET.ParseError as exc:
        raise DecodeError(message=f"the answer is not XML ({exc})", response=response) from None


@functools.lru_cache(maxsize=4096)
def http_date(value: str) -> datetime | None:
    """An HTTP date (``Sat, 21 Nov 2026 11:53:38 GMT``) as an aware datetime, as the SDK reads it;
    ``None`` when it cannot be read. Cached: a listing's entries share few distinct seconds."""
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def storage_error(response: AsyncHttpResponse) -> HttpResponseError:
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
