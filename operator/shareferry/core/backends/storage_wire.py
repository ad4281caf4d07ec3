"""Send one Azure Storage REST request without the SDK's pipeline: the service-neutral part of the
lean request paths (:mod:`.azfiles_wire`, :mod:`.azblob_wire`).

A :class:`WireSender` adds what every storage request carries (``x-ms-version``, ``x-ms-date``,
a client request id, a user agent), authorises it with a SAS (appended to the query) or an
account key (Shared Key, signed by :class:`SharedKeySigner` from the documented string to sign),
sends it on one aiohttp client session configured as the SDK's transport configures its own
(proxies from the environment, no cookies, bodies never decompressed, the same connect and read
timeouts; the proxy is looked up once per sender, where aiohttp's ``trust_env`` would look it up,
and read ``~/.netrc``, in a thread for every request) and raises failures as the azure-core exceptions the SDK raises (404 as
:class:`ResourceNotFoundError`, 401/403 as :class:`ClientAuthenticationError`, other statuses as
:class:`HttpResponseError`, each with the response, whose ``x-ms-error-code`` header names the
error; transport failures as azure-core's transport raises them), so a backend's one translation
to the contract's errors applies unchanged. Every answer is read whole (a small file's bytes, one
range, one listing page) into a :class:`WireResponse`. Listing answers are parsed with the
standard library (:func:`read_xml`); an answer that is not XML raises azure-core's
:class:`DecodeError`, as the SDK's deserialiser does.

This is the one module of the core that speaks HTTP itself, and the reason it exists: the SDK's
pipeline and transport cost about 650 µs of client CPU per request here, a plain aiohttp request
about 160 µs, and small files are made of little else.
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
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from urllib.parse import quote

import aiohttp
from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from yarl import URL

from shareferry.core.joblog import current_job_log

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
#: Headers aiohttp would add to a request without a body (a ``Content-Type`` is signed).
_NO_BODY_SKIPPED = frozenset({"Content-Type"})


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


def lean_sender(
    *,
    sas: str | None,
    account_name: str,
    account_key: str | None,
    api_version: str,
    connection_timeout: float,
) -> WireSender | None:
    """The sender of a backend's lean path: authorised by its SAS, else by its account key;
    ``None`` with neither (Entra ID tokens, anonymous access) or with a malformed key (the
    backend keeps the SDK for everything, which reports the key when it is first used)."""
    signer = None
    if sas is None:
        if account_key is None:
            return None
        try:
            signer = SharedKeySigner(account_name, account_key)
        except ValueError:
            return None
    return WireSender(api_version=api_version, sas=sas, signer=signer, connection_timeout=connection_timeout)


class WireResponse:
    """A whole answer: status, reason, headers (case-insensitive) and body. It offers what
    azure-core's exceptions and the backends read of an SDK response (``status_code``,
    ``reason``, ``headers``, ``text()``)."""

    __slots__ = ("body", "headers", "reason", "status_code")

    def __init__(self, status_code: int, reason: str, headers: Mapping[str, str], body: bytes) -> None:
        self.status_code = status_code
        self.reason = reason
        self.headers = headers
        self.body = body

    def text(self, encoding: str | None = None) -> str:
        return self.body.decode(encoding or "utf-8", errors="replace")


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
        self._timeout = aiohttp.ClientTimeout(sock_connect=connection_timeout, sock_read=READ_TIMEOUT_SECONDS)
        self._session: aiohttp.ClientSession | None = None
        self._proxy: Proxy | None = None
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

    def _open(self, target: URL) -> aiohttp.ClientSession:
        """The session, opened on first use (inside the running event loop) as the SDK's
        transport opens its own (no cookies, no decompression), and the proxy the environment
        names for ``target``'s host (one sender talks to one endpoint)."""
        if self._session is None:
            self._proxy = environment_proxy(target)
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False)
        return self._session

    def with_own_authorisation(self, url: str) -> str:
        """``url`` (quoted, no query) as a header may name it to the service: with this sender's
        SAS appended when it sends with one (Shared Key signs the request itself)."""
        return f"{url}?{self._sas}" if self._sas else url

    async def send(
        self,
        method: str,
        url: str,
        query: Mapping[str, str],
        headers: dict[str, str],
        body: bytes | None = None,
    ) -> WireResponse:
        """Send ``method`` to ``url`` (already quoted, no query) with ``query`` (unquoted values)
        and ``headers`` (completed here); the whole response when its status is below 300."""
        headers["x-ms-version"] = self._api_version
        headers["x-ms-date"] = self._date_header()
        headers["x-ms-client-request-id"] = f"{self._id_prefix}{next(self._id_counter) % 16**12:012x}"
        headers["User-Agent"] = _USER_AGENT
        own_query = "&".join(f"{name}={quote(value, safe='')}" for name, value in query.items())
        if self._signer is not None:
            url += f"?{own_query}" if own_query else ""
        else:
            url += f"?{own_query}&{self._sas}" if own_query else f"?{self._sas}"
        # Parsed once: signed and sent as this very URL (yarl re-normalises some escapes, %3B as ;).
        target = URL(url)
        if self._signer is not None:
            headers["Authorization"] = self._signer.authorization(method, target.raw_path, query, headers)
        response = await self._exchange(method, target, headers, body)
        if response.status_code >= 300:
            raise storage_error(response)
        return response

    async def _exchange(
        self, method: str, target: URL, headers: dict[str, str], body: bytes | None
    ) -> WireResponse:
        """One request and its whole answer, logged in the job's log when it keeps one
        (:mod:`shareferry.core.joblog`: the URL redacted there, never a header)."""
        log = current_job_log()
        if log is None:
            return await self._answer(method, target, headers, body)
        started = time.monotonic()
        try:
            response = await self._answer(method, target, headers, body)
        except Exception as exc:
            log.request_failed(method, str(target), error=exc, seconds=time.monotonic() - started)
            raise
        log.response(
            method,
            str(target),
            status=response.status_code,
            request_id=response.headers.get("x-ms-request-id"),
            seconds=time.monotonic() - started,
            client_request_id=headers.get("x-ms-client-request-id"),
        )
        return response

    async def _answer(
        self, method: str, target: URL, headers: dict[str, str], body: bytes | None
    ) -> WireResponse:
        """One request and its whole answer; transport failures raised as azure-core's
        transport raises them (so they are retried as the SDK's would be)."""
        session = self._open(target)
        proxy = self._proxy
        tunnel_headers = None
        if proxy is not None and proxy.headers:
            if target.scheme == "https":
                tunnel_headers = proxy.headers  # sent with CONNECT, never to the service
            else:
                headers.update(proxy.headers)  # a plain-HTTP proxy reads (and drops) it per request
        try:
            async with session.request(
                method,
                target,
                proxy=proxy.url if proxy is not None else None,
                proxy_headers=tunnel_headers,
                headers=headers,
                data=body or None,
                skip_auto_headers=None if body else _NO_BODY_SKIPPED,
                timeout=self._timeout,
                allow_redirects=False,
            ) as answer:
                data = await answer.read()  # raw: the session never decompresses
                return WireResponse(answer.status, answer.reason or "", answer.headers, data)
        except aiohttp.ClientResponseError as exc:
            raise ServiceResponseError(exc, error=exc) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise ServiceRequestTimeoutError(exc, error=exc) from exc
        except TimeoutError as exc:
            raise ServiceResponseTimeoutError(exc, error=exc) from exc
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            raise ServiceResponseError(exc, error=exc) from exc  # the answer broke off
        except aiohttp.ClientError as exc:
            raise ServiceRequestError(exc, error=exc) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass(frozen=True, slots=True)
class Proxy:
    """A proxy to send through, its credentials apart from its URL."""

    url: URL
    headers: Mapping[str, str] | None  # Proxy-Authorization, when the URL had credentials


def environment_proxy_address(target: URL) -> str | None:
    """The proxy URL (credentials included) the environment names for ``target``
    (``HTTPS_PROXY`` / ``HTTP_PROXY`` by its scheme, in either case, as the standard library
    reads them), or ``None`` when none is set or ``NO_PROXY`` exempts its host."""
    address = urllib.request.getproxies_environment().get(target.scheme)
    if not address or (target.host and urllib.request.proxy_bypass(target.host)):
        return None
    return address if "://" in address else f"http://{address}"


def environment_proxy(target: URL) -> Proxy | None:
    """:func:`environment_proxy_address` as aiohttp takes it: the URL without its credentials,
    which become a ``Proxy-Authorization`` header."""
    address = environment_proxy_address(target)
    if address is None:
        return None
    url = URL(address)
    if not url.user:
        return Proxy(url=url, headers=None)
    pair = base64.b64encode(f"{url.user}:{url.password or ''}".encode()).decode()
    return Proxy(url=url.with_user(None), headers={"Proxy-Authorization": f"Basic {pair}"})


def read_xml(response: WireResponse) -> ET.Element:
    """A response's XML document (a listing page); a body that is not XML raises
    :class:`DecodeError` with the response, as the SDK's deserialiser does."""
    try:
        # The storage service's own answer, parsed as the SDK parses it (expat: no external
        # entities, and entity expansion is bounded).
        return ET.fromstring(response.body)  # noqa: S314
    except ET.ParseError as exc:
        raise DecodeError(message=f"the answer is not XML ({exc})", response=cast(Any, response)) from None


@functools.lru_cache(maxsize=4096)
def http_date(value: str) -> datetime | None:
    """An HTTP date (``Sat, 21 Nov 2026 11:53:38 GMT``) as an aware datetime, as the SDK reads it;
    ``None`` when it cannot be read. Cached: a listing's entries share few distinct seconds."""
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def storage_error(response: WireResponse) -> HttpResponseError:
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
    return error_type(message=message, response=cast(Any, response))
