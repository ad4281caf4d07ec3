"""Choose how to authenticate to a remote location, in a fixed, AzCopy-like order.

1. A SAS in the URL.
2. ``AZURE_STORAGE_SAS_TOKEN``: a SAS (the query of a SAS URL, a leading ``?`` tolerated) for a
   location whose URL carries none. It is a secret: never printed.
3. ``AZURE_STORAGE_CONNECTION_STRING``, when its ``AccountName`` (or its ``FileEndpoint`` /
   ``BlobEndpoint``) is the location's: its ``AccountKey``, else its ``SharedAccessSignature``.
4. ``AZURE_STORAGE_ACCOUNT_NAME`` + ``AZURE_STORAGE_ACCOUNT_KEY``, then AzCopy's ``ACCOUNT_NAME`` +
   ``ACCOUNT_KEY``, when the name is the location's account.
5. Microsoft Entra ID through ``azure.identity.aio.DefaultAzureCredential`` (https endpoints only:
   the Azure SDK refuses bearer tokens over http), and only for hosts under a trusted Microsoft
   domain (:mod:`shareferry.core.trusted_hosts`, ``--trusted-microsoft-suffixes``): any other
   host is a :class:`CredentialError` before a token is asked for.

Nothing is contacted while resolving: the Entra ID credential is created on its first use.

The environment is one mapping for both sides of a transfer, or a :class:`SideEnvirons` giving
each side its own (two accounts with two Secrets, as an operator worker has): the source is then
opened with the source's variables only, and the destination with the destination's.

Notes for backend authors:

* :meth:`Credential.sdk_credential` is what the SDK clients take as ``credential=`` (a SAS string,
  an ``AzureNamedKeyCredential``, the token credential, or ``None``). A named key credential also
  works for path-style hosts that are not loopback, where the SDK cannot read the account from
  the URL.
* Azure Files with Entra ID (OAuth) needs ``token_intent="backup"`` on every
  ``ShareServiceClient`` / ``ShareClient`` / ``ShareDirectoryClient`` / ``ShareFileClient`` (the SDK
  sends it as ``x-ms-file-request-intent``); without it the service refuses the token. Blob
  clients take no such argument.
* The token credential is async (for the ``aio`` clients) and must be closed with
  ``await credential.token_credential.close()`` when the backend closes.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import parse_qsl, urlsplit

from shareferry.core.errors import CredentialError
from shareferry.core.locations import Location
from shareferry.core.redact import REDACTED, redact
from shareferry.core.trusted_hosts import check_token_host

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
    from azure.core.credentials_async import AsyncTokenCredential

CredentialKind = Literal["sas", "shared_key", "token", "anonymous"]

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
SAS_TOKEN_ENV = "AZURE_STORAGE_SAS_TOKEN"  # noqa: S105 (a variable name, not a secret)
ACCOUNT_KEY_ENVS = (
    ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY"),
    ("ACCOUNT_NAME", "ACCOUNT_KEY"),  # AzCopy's names
)
_ENDPOINT_SETTING = {"file": "FILEENDPOINT", "blob": "BLOBENDPOINT"}

Side = Literal["source", "destination"]


@dataclass(frozen=True, repr=False)
class SideEnvirons:
    """One environment per side of a transfer: ``source`` holds the variables the source's
    credential is found in, ``destination`` the destination's (neither falls back to the other,
    nor to ``os.environ``). ``settings`` is where the rest is read (``SHAREFERRY_JOB_DIR``,
    ``SHAREFERRY_BUFFER_MB``); ``None`` is ``os.environ``. Its repr shows variable names only."""

    source: Mapping[str, str]
    destination: Mapping[str, str]
    settings: Mapping[str, str] | None = None

    @classmethod
    def from_prefixes(
        cls, environ: Mapping[str, str], *, source_prefix: str, destination_prefix: str
    ) -> SideEnvirons:
        """Each side's variables are ``environ``'s with that side's prefix, the prefix removed
        (``SHAREFERRY_SOURCE_AZURE_STORAGE_ACCOUNT_KEY`` -> ``AZURE_STORAGE_ACCOUNT_KEY``);
        ``environ`` itself supplies the settings."""

        def strip(prefix: str) -> dict[str, str]:
            return {name[len(prefix) :]: value for name, value in environ.items() if name.startswith(prefix)}

        return cls(source=strip(source_prefix), destination=strip(destination_prefix), settings=environ)

    def side(self, side: Side) -> Mapping[str, str]:
        return self.source if side == "source" else self.destination

    def __repr__(self) -> str:
        return f"SideEnvirons(source={sorted(self.source)!r}, destination={sorted(self.destination)!r})"


#: What the job entry points take as ``environ``: one mapping for both sides, or one per side.
Environ: TypeAlias = Mapping[str, str] | SideEnvirons


def side_environ(environ: Environ | None, side: Side) -> Mapping[str, str] | None:
    """The variables ``side``'s credential is looked up in (``None``: ``os.environ``)."""
    return environ.side(side) if isinstance(environ, SideEnvirons) else environ


def settings_environ(environ: Environ | None) -> Mapping[str, str] | None:
    """The variables a job's settings are read from (``None``: ``os.environ``)."""
    return environ.settings if isinstance(environ, SideEnvirons) else environ


@dataclass(frozen=True, repr=False)
class Credential:
    """How to authenticate to one location. ``origin`` says where it was found (for messages).

    ``account_key`` is a secret and ``sas`` holds one (its ``sig``): neither appears in
    :meth:`describe` or ``repr``.
    """

    kind: CredentialKind
    sas: str | None = None
    account_name: str | None = None
    account_key: str | None = None
    token_credential: object | None = None
    origin: str | None = None

    def describe(self) -> str:
        """What a person needs to know, e.g. ``shared key for account x (from ACCOUNT_KEY)``."""
        text = {
            "sas": "SAS token",
            "shared_key": f"shared key for account {self.account_name}",
            "token": "Microsoft Entra ID (DefaultAzureCredential)",
            "anonymous": "anonymous access",
        }[self.kind]
        return f"{text} (from {self.origin})" if self.origin else text

    def __repr__(self) -> str:
        fields = [f"kind={self.kind!r}"]
        if self.account_name is not None:
            fields.append(f"account_name={self.account_name!r}")
        if self.account_key is not None:
            fields.append(f"account_key={REDACTED!r}")
        if self.sas is not None:
            fields.append(f"sas={redact('?' + self.sas)[1:]!r}")
        if self.token_credential is not None:
            fields.append(f"token_credential={type(self.token_credential).__name__}")
        if self.origin is not None:
            fields.append(f"origin={self.origin!r}")
        return f"Credential({', '.join(fields)})"

    def sdk_credential(self) -> object | None:
        """The value to pass as ``credential=`` to an Azure SDK client."""
        if self.kind == "sas":
            return self.sas
        if self.kind == "shared_key":
            from azure.core.credentials import AzureNamedKeyCredential

            assert self.account_name is not None and self.account_key is not None
            return AzureNamedKeyCredential(self.account_name, self.account_key)
        if self.kind == "token":
            return self.token_credential
        return None


def resolve_credential(
    location: Location,
    *,
    environ: Mapping[str, str] | None = None,
    allow_token: bool = True,
    trusted_suffixes: Sequence[str] = (),
) -> Credential:
    """The credential for a remote ``location`` (see the module docstring for the order).

    ``environ`` defaults to ``os.environ``. ``allow_token`` False skips Entra ID (for callers
    that must not sign in, e.g. a worker given only a Secret). ``trusted_suffixes`` are added
    to the Microsoft domains a token may be sent to; another host is refused. Raises :class:`CredentialError`
    when nothing applies or a key is not base64 (the key itself is never shown).
    """
    if location.kind == "local":
        raise ValueError("local locations need no credential")
    env = os.environ if environ is None else environ
    if location.sas:
        return Credential(kind="sas", sas=location.sas, account_name=location.account, origin="the URL")
    sas = _sas_token(env)
    if sas is not None:
        return Credential(kind="sas", sas=sas, account_name=location.account, origin=SAS_TOKEN_ENV)
    found = _from_connection_string(location, env) or _from_account_key(location, env)
    if found is not None:
        return found
    if allow_token and (location.endpoint or "").startswith("https://"):
        check_token_host(urlsplit(location.endpoint or "").hostname or "", trusted_suffixes)
        return Credential(
            kind="token", account_name=location.account, token_credential=LazyDefaultAzureCredential()
        )
    raise CredentialError(
        f"no credential for {location.describe()}: add a SAS to the URL (or set {SAS_TOKEN_ENV}), "
        f"or set {CONNECTION_STRING_ENV} / "
        "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY, or sign in for Microsoft Entra ID "
        "(https endpoints only)"
    )


def _sas_token(env: Mapping[str, str]) -> str | None:
    """``AZURE_STORAGE_SAS_TOKEN`` without its leading ``?``; ``None`` when unset or blank.
    :class:`CredentialError` (never showing the value) when it is not a SAS query."""
    text = env.get(SAS_TOKEN_ENV, "").strip().removeprefix("?")
    if not text:
        return None
    if "://" in text:
        raise CredentialError(
            f"{SAS_TOKEN_ENV} holds a URL: give only the SAS, the part after '?' (sv=...&sig=...)"
        )
    names = {name.lower() for name, _ in parse_qsl(text, keep_blank_values=True)}
    if "sig" not in names:
        raise CredentialError(
            f"{SAS_TOKEN_ENV} is not a SAS token: it has no sig= (give the part of a SAS URL after '?')"
        )
    return text


def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;...`` as a dict with upper-case keys (the SDK's reading: keys are
    case-insensitive, values may contain ``=``). :class:`CredentialError` when malformed."""
    settings: dict[str, str] = {}
    for part in text.strip().split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise CredentialError(
                f"{CONNECTION_STRING_ENV} is malformed: it must be Key=Value pairs separated by ';'"
            )
        settings[key.strip().upper()] = value.strip()
    return settings


def _from_connection_string(location: Location, env: Mapping[str, str]) -> Credential | None:
    text = env.get(CONNECTION_STRING_ENV, "")
    if not text.strip():
        return None
    settings = parse_connection_string(text)
    if not _connection_string_matches(settings, location):
        return None
    key = settings.get("ACCOUNTKEY")
    name = settings.get("ACCOUNTNAME") or location.account
    if key:
        _check_key(key, f"the AccountKey in {CONNECTION_STRING_ENV}")
        return Credential(kind="shared_key", account_name=name, account_key=key, origin=CONNECTION_STRING_ENV)
    sas = settings.get("SHAREDACCESSSIGNATURE", "").lstrip("?")
    if sas:
        return Credential(kind="sas", sas=sas, account_name=name, origin=CONNECTION_STRING_ENV)
    return None


def _connection_string_matches(settings: Mapping[str, str], location: Location) -> bool:
    """Its account is the location's, and it names no other endpoint for this service."""
    assert location.kind != "local"
    endpoint = settings.get(_ENDPOINT_SETTING[location.kind])
    if endpoint is not None and _normalize_endpoint(endpoint) != location.endpoint:
        return False
    name = settings.get("ACCOUNTNAME")
    if name is None:
        return endpoint is not None  # e.g. FileEndpoint=...;SharedAccessSignature=...
    return _same_account(name, location.account)


def _from_account_key(location: Location, env: Mapping[str, str]) -> Credential | None:
    for name_var, key_var in ACCOUNT_KEY_ENVS:
        name, key = env.get(name_var, ""), env.get(key_var, "")
        if name and key and _same_account(name, location.account):
            _check_key(key, key_var)
            return Credential(kind="shared_key", account_name=name, account_key=key, origin=key_var)
    return None


def _same_account(name: str, account: str | None) -> bool:
    return account is not None and name.strip().lower() == account.lower()


def _check_key(key: str, where: str) -> None:
    try:
        decoded = base64.b64decode(key, validate=True)
    except binascii.Error:
        decoded = b""
    if not decoded:
        raise CredentialError(f"{where} is not a valid base64 account key")


def _normalize_endpoint(url: str) -> str:
    """An endpoint in the form :attr:`Location.endpoint` has: lower-case scheme and host, no
    trailing ``/``."""
    split = urlsplit(url.strip())
    return f"{split.scheme.lower()}://{split.netloc.lower()}{split.path.rstrip('/')}"


class LazyDefaultAzureCredential:
    """An async token credential that creates ``azure.identity.aio.DefaultAzureCredential`` on
    its first token request, so resolving a credential never imports azure.identity or probes
    the environment. ``factory`` replaces the default (tests)."""

    def __init__(self, factory: Callable[[], AsyncTokenCredential] | None = None) -> None:
        self._factory = factory or _default_azure_credential
        self._inner: AsyncTokenCredential | None = None

    @property
    def created(self) -> bool:
        return self._inner is not None

    def materialize(self) -> AsyncTokenCredential:
        """The underlying credential, created now if it was not yet."""
        if self._inner is None:
            self._inner = self._factory()
        return self._inner

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return await self.materialize().get_token(
            *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
        )

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        inner: Any = self.materialize()
        if hasattr(inner, "get_token_info"):
            info: AccessTokenInfo = await inner.get_token_info(*scopes, options=options)
            return info
        from azure.core.credentials import AccessTokenInfo

        token = await inner.get_token(*scopes, **(options or {}))
        return AccessTokenInfo(token.token, token.expires_on)

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()

    async def __aenter__(self) -> LazyDefaultAzureCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


def _default_azure_credential() -> AsyncTokenCredential:
    from azure.identity.aio import DefaultAzureCredential

    credential: AsyncTokenCredential = DefaultAzureCredential()
    return credential
