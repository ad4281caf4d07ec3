"""Administration of one Azure Files share, as the FileShare controller needs it: read its state
(quota, usage, metadata, access tier), create or adopt it, change its quota, tier and metadata,
delete it.

The share is named by its URL (``https://acct.file.core.windows.net/share`` or path-style
``http://host:port/acct/share``) and authenticated exactly as a transfer is
(:func:`shareferry.core.credentials.resolve_credential` over ``environ``: a FileShare's Secret
gives ``AZURE_STORAGE_CONNECTION_STRING``, ``AZURE_STORAGE_ACCOUNT_NAME`` +
``AZURE_STORAGE_ACCOUNT_KEY`` or ``AZURE_STORAGE_SAS_TOKEN``; a SAS must be an account SAS, since
share-level operations are refused to a share SAS).

Every failure is a :class:`ShareError` whose ``reason`` a Kubernetes condition can carry and whose
``transient`` flag says a retry with backoff may succeed (5xx, throttling, timeouts, an endpoint
that does not answer). Messages name the share by its URL, never with a key or SAS. The SDK's own
retries are off: the caller decides when to try again.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from shareferry.core.backends.azfiles_client import share_service_client_for
from shareferry.core.credentials import Credential, resolve_credential
from shareferry.core.errors import CredentialError, NotFoundError, ShareFerryError, UsageError
from shareferry.core.humanize import human_bytes
from shareferry.core.locations import Location, parse_location
from shareferry.core.redact import redact

GIB = 1024**3
#: The quota range Azure Files accepts, in GiB (large file shares: 100 TiB).
MIN_QUOTA_GIB, MAX_QUOTA_GIB = 1, 102400
#: The share access tiers Azure Files knows (Premium is the only tier of a premium account).
ACCESS_TIERS = ("TransactionOptimized", "Hot", "Cool", "Premium")
#: Statuses worth another try, as Azure documents them.
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Error codes of a 400 that refuses a header's value (quota, tier) or the metadata.
_VALUE_REFUSED_CODES = frozenset(
    {"InvalidHeaderValue", "OutOfRangeInput", "InvalidMetadata", "MetadataTooLarge"}
)
_CONNECTION_TIMEOUT_SECONDS = 10
_READ_TIMEOUT_SECONDS = 60
_PUBLIC_FILES_SUFFIXES = (".core.windows.net", ".core.chinacloudapi.cn", ".core.usgovcloudapi.net")


# ---- state ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareState:
    """What the service says about a share. ``url`` never carries a SAS; ``usage_bytes`` is Get
    Share Stats' approximate figure (recent writes may be missing); ``etag`` changes with every
    change of properties or metadata."""

    url: str
    quota_gib: int
    usage_bytes: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    access_tier: str | None = None
    etag: str | None = None
    last_modified: datetime | None = None


# ---- errors -----------------------------------------------------------------------------------


class ShareError(ShareFerryError):
    """A share operation failed. ``reason`` is a CamelCase word for a condition; ``transient``
    says the same request may succeed later (then ``retry_after``, when the service gave one, is
    how many seconds it asked to wait); ``status`` and ``code`` are the service's HTTP status and
    error code when it answered. The message is redacted."""

    reason: ClassVar[str] = "ShareError"
    default_transient: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        transient: bool | None = None,
        retry_after: float | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(redact(message))
        self.transient = self.default_transient if transient is None else transient
        self.retry_after = retry_after
        self.status = status
        self.code = code


class InvalidShareUrl(ShareError, UsageError):
    """The URL does not name one Azure Files share."""

    reason = "InvalidURL"


class InvalidCredentials(ShareError, CredentialError):
    """No credential applies (the Secret names another account, a key is not base64...)."""

    reason = "InvalidCredentials"


class AuthenticationFailed(ShareError, CredentialError):
    """The service refused the credential (403: wrong key, expired or too narrow SAS)."""

    reason = "AuthenticationFailed"


class ShareNotFound(ShareError, NotFoundError):
    """The share does not exist."""

    reason = "ShareNotFound"


class QuotaInvalid(ShareError, UsageError):
    """The service (or the documented range) refuses the quota."""

    reason = "QuotaInvalid"


class QuotaBelowUsage(QuotaInvalid):
    """The quota is smaller than what the share already holds."""

    reason = "QuotaBelowUsage"


class AccessTierInvalid(ShareError, UsageError):
    """The account does not offer this access tier (Premium on a standard account, or back)."""

    reason = "AccessTierInvalid"


class MetadataInvalid(ShareError, UsageError):
    """The service refuses a metadata name or value."""

    reason = "MetadataInvalid"


class ShareBeingDeleted(ShareError):
    """The share was just deleted and Azure has not finished: it cannot be created yet."""

    reason = "ShareBeingDeleted"
    default_transient = True


class ShareLeased(ShareError):
    """A lease on the share blocks the change (break it or wait for its holder)."""

    reason = "ShareLeased"


class ShareHasSnapshots(ShareError):
    """The share has snapshots and the deletion was asked to keep them."""

    reason = "ShareHasSnapshots"


class AccountNotFound(ShareError):
    """The account's public host name does not resolve: there is no such storage account."""

    reason = "AccountNotFound"


class Unreachable(ShareError):
    """The endpoint did not answer (connection refused, host unknown, timeout)."""

    reason = "Unreachable"
    default_transient = True


class ServiceUnavailable(ShareError):
    """The service answered 5xx, 408 or 429: busy or in trouble."""

    reason = "ServiceUnavailable"
    default_transient = True


class ShareRequestFailed(ShareError):
    """Any other refusal; the message carries the service's error code and message.
    ``header_name`` is the header the service said it refused (its ``HeaderName``), if it did."""

    reason = "RequestFailed"

    def __init__(self, message: str, *, header_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.header_name = header_name


# ---- the administration client ----------------------------------------------------------------


def share_location(url: str) -> Location:
    """The Azure Files share ``url`` names (nothing below it); :class:`InvalidShareUrl` else."""
    try:
        location = parse_location(url, kind_hint="file")
    except UsageError as exc:
        raise InvalidShareUrl(str(exc)) from None
    if location.container is None or location.path or location.snapshot:
        raise InvalidShareUrl(
            f"{location.describe()} is not a share URL: give the URL of the share itself, with nothing "
            "after its name"
        )
    return location


class ShareAdmin:
    """Administration of the share at ``url`` through one SDK session; an async context manager
    (or call :meth:`close`). Resolving the credential contacts nothing. ``allow_token`` False
    never falls back to Microsoft Entra ID (a FileShare with a Secret must use that Secret)."""

    def __init__(self, url: str, environ: Mapping[str, str] | None, *, allow_token: bool = True) -> None:
        self.location = share_location(url)
        self.url = self.location.describe()
        try:
            self._credential: Credential = resolve_credential(
                self.location, environ=environ, allow_token=allow_token
            )
        except CredentialError as exc:
            raise InvalidCredentials(str(exc)) from None
        assert self.location.endpoint is not None and self.location.container is not None
        self._service = share_service_client_for(
            self.location.endpoint,
            self._credential,
            retry_total=0,
            connection_timeout=_CONNECTION_TIMEOUT_SECONDS,
            read_timeout=_READ_TIMEOUT_SECONDS,
        )
        self._share = self._service.get_share_client(self.location.container)

    @property
    def credential(self) -> Credential:
        return self._credential

    async def get(self) -> ShareState | None:
        """The share's state, or ``None`` when it does not exist."""
        try:
            with self._errors("read"):
                props = await self._share.get_share_properties()
            with self._errors("read the usage of"):
                usage = int(await self._share.get_share_stats())
        except ShareNotFound:
            return None
        return ShareState(
            url=self.url,
            quota_gib=int(props.quota),
            usage_bytes=usage,
            metadata=dict(props.metadata or {}),
            access_tier=str(props.access_tier) if props.access_tier else None,
            etag=str(props.etag) if props.etag else None,
            last_modified=props.last_modified,
        )

    async def create(
        self,
        *,
        quota_gib: int | None = None,
        access_tier: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> bool:
        """Create the share; ``False`` when it already exists (left as it is: adopt it). ``None``
        takes the service's default."""
        if quota_gib is not None:
            _check_quota(quota_gib, self.url)
        args: dict[str, Any] = {"quota": quota_gib, "access_tier": access_tier}
        if metadata is not None:
            args["metadata"] = dict(metadata)
        try:
            with self._errors("create"):
                await self._share.create_share(**args)
        except ShareRequestFailed as exc:
            if exc.code == "ShareAlreadyExists":
                return False
            if exc.header_name is None and exc.code not in _VALUE_REFUSED_CODES:
                raise  # e.g. a refused name: not about the values sent
            raise self._bad_request(exc, quota_gib=quota_gib, access_tier=access_tier) from None
        return True

    async def set_properties(self, *, quota_gib: int | None = None, access_tier: str | None = None) -> None:
        """Change the quota and/or the access tier (``None`` leaves it). Each goes in its own
        request, so a refusal names the one refused; a quota below the usage raises
        :class:`QuotaBelowUsage`."""
        if quota_gib is not None:
            _check_quota(quota_gib, self.url)
            try:
                with self._errors("set the quota of"):
                    await self._share.set_share_properties(quota=quota_gib)
            except ShareRequestFailed as exc:
                raise await self._quota_refused(exc, quota_gib) from None
        if access_tier is not None:
            try:
                with self._errors("set the access tier of"):
                    await self._share.set_share_properties(access_tier=access_tier)
            except ShareRequestFailed as exc:
                raise self._bad_request(exc, access_tier=access_tier) from None

    async def set_metadata(self, metadata: Mapping[str, str]) -> None:
        """Replace all of the share's metadata with ``metadata``."""
        try:
            with self._errors("set the metadata of"):
                await self._share.set_share_metadata(dict(metadata))
        except ShareRequestFailed as exc:
            raise self._bad_request(exc) from None

    async def delete(self, *, include_snapshots: bool = True) -> bool:
        """Delete the share (with its snapshots unless ``include_snapshots`` is False, which then
        fails with :class:`ShareHasSnapshots` when there are some); ``False`` when it did not
        exist. Azure finishes a deletion in the background: creating the same name again may be
        refused for a while (:class:`ShareBeingDeleted`, transient)."""
        try:
            with self._errors("delete"):
                await self._share.delete_share(delete_snapshots=include_snapshots)
        except ShareNotFound:
            return False
        return True

    async def close(self) -> None:
        """Close the SDK session (and an Entra ID credential, when one was made)."""
        await self._service.close()
        token: Any = self._credential.token_credential
        if token is not None:
            await token.close()

    async def __aenter__(self) -> ShareAdmin:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- errors ------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """SDK and network failures inside the block as :class:`ShareError` (bugs stay bugs)."""
        try:
            yield
        except ShareError:
            raise
        except Exception as exc:
            mapped = translate_share_error(exc, action=action, url=self.url, location=self.location)
            if mapped is None:
                raise
            raise mapped from None

    def _bad_request(
        self, exc: ShareRequestFailed, *, quota_gib: int | None = None, access_tier: str | None = None
    ) -> ShareError:
        """A 400 refusal as the error of what was refused (the service's ``HeaderName`` says
        which header, when it says; else the one value that was sent)."""
        if exc.status != 400:
            return exc
        header = exc.header_name
        if exc.code in ("InvalidMetadata", "MetadataTooLarge") or (header or "").startswith("x-ms-meta"):
            return MetadataInvalid(str(exc), status=exc.status, code=exc.code)
        quota_refused = header == "x-ms-share-quota" or (header is None and access_tier is None)
        if quota_gib is not None and quota_refused:
            return QuotaInvalid(str(exc), status=exc.status, code=exc.code)
        tier_refused = header == "x-ms-access-tier" or (header is None and quota_gib is None)
        if access_tier is not None and tier_refused:
            return AccessTierInvalid(
                f"{exc} (the tiers are {', '.join(ACCESS_TIERS)}; Premium only on premium accounts)",
                status=exc.status,
                code=exc.code,
            )
        return exc

    async def _quota_refused(self, exc: ShareRequestFailed, quota_gib: int) -> ShareError:
        """A refused quota: :class:`QuotaBelowUsage` when the share holds more than it."""
        mapped = self._bad_request(exc, quota_gib=quota_gib)
        if not isinstance(mapped, QuotaInvalid):
            return mapped
        try:
            with self._errors("read the usage of"):
                usage = int(await self._share.get_share_stats())
        except ShareError:
            return mapped
        if usage > quota_gib * GIB:
            return QuotaBelowUsage(
                f"set the quota of {self.url}: {quota_gib} GiB is below the {human_bytes(usage)} the share "
                "already holds: raise the quota or delete data first",
                status=exc.status,
                code=exc.code,
            )
        return mapped


def translate_share_error(
    exc: BaseException, *, action: str, url: str, location: Location | None = None
) -> ShareError | None:
    """The :class:`ShareError` for an SDK or network failure of ``action`` on the share at ``url``
    (SAS-free), or ``None`` when ``exc`` is neither (a bug)."""
    context = f"{action} {url}"
    if isinstance(exc, HttpResponseError):
        return _http_error(exc, context)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, TimeoutError, ConnectionError)):
        endpoint = (location.endpoint if location is not None else None) or url
        host = urlsplit(endpoint).hostname or endpoint
        if _host_not_found(exc):
            if location is not None and host.endswith(_PUBLIC_FILES_SUFFIXES):
                return AccountNotFound(
                    f"{context}: the host {host} does not resolve: is there a storage account "
                    f"{location.account!r}? (check the account name)"
                )
            return Unreachable(f"cannot reach {endpoint} ({context}): the host {host} does not resolve")
        if isinstance(exc, ServiceResponseError):
            return Unreachable(f"{context}: the connection broke: {_first_line(exc)}")
        return Unreachable(f"cannot reach {endpoint} ({context}): {_network_reason(exc)}")
    return None


def _http_error(exc: HttpResponseError, context: str) -> ShareError:
    status = exc.status_code
    code = _code(exc)
    detail = f"{code or 'no error code'} (HTTP {status})"
    said = _service_message(exc)
    known: dict[str, type[ShareError]] = {
        "ShareNotFound": ShareNotFound,
        "ShareBeingDeleted": ShareBeingDeleted,
        "ShareHasSnapshots": ShareHasSnapshots,
    }
    args: dict[str, Any] = {"status": status, "code": code}
    if code in known:
        return known[code](f"{context}: {_plain(code)}", **args)
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        return AuthenticationFailed(
            f"{context}: access denied, {detail}{said}: check the account key, connection string or SAS "
            "token (a SAS must be an account SAS allowing service and container operations)",
            **args,
        )
    if status == 404:
        return ShareNotFound(f"{context}: not found, {detail}", **args)
    if status == 412 or (code or "").startswith("Lease"):
        return ShareLeased(f"{context}: the share has a lease, {detail}{said}", **args)
    if status is None or status in _TRANSIENT_STATUSES or status >= 500:
        return ServiceUnavailable(f"{context}: {detail}{said}", retry_after=_retry_after(exc), **args)
    header = str((getattr(exc, "additional_info", None) or {}).get("headername") or "").lower() or None
    return ShareRequestFailed(f"{context}: refused, {detail}{said}", header_name=header, **args)


def _plain(code: str) -> str:
    return {
        "ShareNotFound": "the share does not exist",
        "ShareBeingDeleted": "the share is being deleted; it can be created again once Azure has finished",
        "ShareHasSnapshots": "the share has snapshots (delete them with it, or first)",
    }[code]


def _code(exc: HttpResponseError) -> str | None:
    code = getattr(exc, "error_code", None)
    if code is None:
        headers = getattr(exc.response, "headers", None) or {}
        code = headers.get("x-ms-error-code")
    return None if code is None else str(getattr(code, "value", code))


def _service_message(exc: HttpResponseError) -> str:
    """``: <the service's message>``, its first line, when there is one."""
    line = _first_line(exc)
    if not line or line.startswith(("Operation returned an invalid status", "ErrorCode:")):
        return ""
    return f": {line}"


def _retry_after(exc: HttpResponseError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    try:
        return max(0.0, float(str(headers.get("Retry-After"))))
    except ValueError:
        return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what it wraps (the SDK's ``inner_exception``, ``__cause__``, ``__context__``)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (getattr(current, "inner_exception", None), current.__cause__, current.__context__):
            if isinstance(inner, BaseException):
                stack.append(inner)


def _host_not_found(exc: BaseException) -> bool:
    """The request failed because the host name did not resolve."""
    return any(isinstance(cause, socket.gaierror) for cause in _causes(exc))


def _network_reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is the endpoint right, and is the service running?)"
        if isinstance(cause, TimeoutError):
            return "timed out"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return redact(lines[0]) if lines else type(exc).__name__


def _check_quota(quota_gib: int, url: str) -> None:
    if not MIN_QUOTA_GIB <= quota_gib <= MAX_QUOTA_GIB:
        raise QuotaInvalid(
            f"quota of {url}: {quota_gib} GiB is outside what Azure Files accepts "
            f"({MIN_QUOTA_GIB} to {MAX_QUOTA_GIB} GiB)"
        )


# ---- one call, one session --------------------------------------------------------------------


async def get_share(
    url: str, environ: Mapping[str, str] | None, *, allow_token: bool = True
) -> ShareState | None:
    """The share's state, or ``None`` when it does not exist (see :meth:`ShareAdmin.get`)."""
    async with ShareAdmin(url, environ, allow_token=allow_token) as admin:
        return await admin.get()


async def create_share(
    url: str,
    environ: Mapping[str, str] | None,
    *,
    quota_gib: int | None = None,
    access_tier: str | None = None,
    metadata: Mapping[str, str] | None = None,
    allow_token: bool = True,
) -> bool:
    """Create the share; ``False`` when it existed already (see :meth:`ShareAdmin.create`)."""
    async with ShareAdmin(url, environ, allow_token=allow_token) as admin:
        return await admin.create(quota_gib=quota_gib, access_tier=access_tier, metadata=metadata)


async def set_share_properties(
    url: str,
    environ: Mapping[str, str] | None,
    *,
    quota_gib: int | None = None,
    access_tier: str | None = None,
    allow_token: bool = True,
) -> None:
    """Change the quota and/or access tier (see :meth:`ShareAdmin.set_properties`)."""
    async with ShareAdmin(url, environ, allow_token=allow_token) as admin:
        await admin.set_properties(quota_gib=quota_gib, access_tier=access_tier)


async def set_share_metadata(
    url: str, environ: Mapping[str, str] | None, metadata: Mapping[str, str], *, allow_token: bool = True
) -> None:
    """Replace the share's metadata (see :meth:`ShareAdmin.set_metadata`)."""
    async with ShareAdmin(url, environ, allow_token=allow_token) as admin:
        await admin.set_metadata(metadata)


async def delete_share(
    url: str, environ: Mapping[str, str] | None, *, include_snapshots: bool = True, allow_token: bool = True
) -> bool:
    """Delete the share; ``False`` when it did not exist (see :meth:`ShareAdmin.delete`)."""
    async with ShareAdmin(url, environ, allow_token=allow_token) as admin:
        return await admin.delete(include_snapshots=include_snapshots)
