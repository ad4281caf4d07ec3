"""Decide whether a request may proceed: Shared Key signatures and shared access signatures.

Pure: :func:`authorize` takes what arrived on the wire (:class:`AuthInput`), the classified
:class:`~shareferry.emulator.routing.Route` and the configured accounts, and either returns the
scheme that authorised the request (``"sharedkey"`` or ``"sas"``) or raises the 403
:class:`~shareferry.emulator.errors.StorageError` Azure would answer. Stored access policies are
read through a callback so this module never touches the store.

Shared Key: the string to sign is rebuilt from the request. Clients disagree on the order of the
``x-ms-*`` headers (the Python SDK sorts them with the service's collation, which ignores ``-``
and puts ``_`` before digits; the Go SDK used by AzCopy sorts them by plain code point), so both
orders are tried. The path is tried as it arrived and fully percent-encoded segment by segment:
the aio SDK signs the encoded path it built but aiohttp may send it re-normalised (``%3B`` as
``;``) when the client's transport is nested deeper than the SDK's check looks. Shared access
signatures: account SAS (``ss=``) and the File service SAS
(``sr=s`` for a share, ``sr=f`` for one file), optionally completed by a stored access policy
(``si=``). Messages name accounts and fields, never keys or expected signatures.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cmp_to_key
from urllib.parse import quote, unquote

from shareferry.emulator.config import Account, EmulatorConfig
from shareferry.emulator.errors import StorageError
from shareferry.emulator.routing import OBJECT, Route
from shareferry.emulator.wire import iso_to_ticks, now_ticks

__all__ = [
    "AuthInput",
    "PolicyLookup",
    "StoredPolicy",
    "authorize",
    "collation_compare",
    "redact_query",
    "shared_key_strings_to_sign",
]

SHARED_KEY = "sharedkey"
SAS = "sas"


@dataclass(frozen=True)
class StoredPolicy:
    """A share's stored access policy (a ``SignedIdentifier``), referenced by a service SAS ``si=``.

    Times are ISO 8601 text as stored; ``permission`` is a string of SAS letters.
    """

    start: str | None
    expiry: str | None
    permission: str | None


@dataclass(frozen=True)
class AuthInput:
    """The parts of a request that authorisation looks at.

    ``raw_path`` is the path exactly as on the wire (still percent-encoded, no query); ``query``
    is the decoded query with lower-case names; ``headers`` may be any mapping whose names are
    compared case-insensitively (lower-case keys, or a case-insensitive multi-dict).
    """

    method: str
    raw_path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    scheme: str
    client_ip: str


#: ``(account, share, identifier) -> policy``, None when the share has no such identifier.
PolicyLookup = Callable[[str, str, str], StoredPolicy | None]


def authorize(inp: AuthInput, route: Route, config: EmulatorConfig, lookup_policy: PolicyLookup) -> str:
    """Raise StorageError(403, ...) unless the request is authorised; return the scheme used.

    The scheme is ``"sharedkey"`` (an ``Authorization: SharedKey`` header) or ``"sas"`` (a
    ``sig=`` in the query). A request carrying both is judged by its Authorization header.
    """
    headers = _normalise_headers(inp.headers)
    authorization = headers.get("authorization", "").strip()
    if not authorization and "sig" not in inp.query:
        raise StorageError(
            403,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in the "
            "www-authenticate header.",
        )
    account = config.account(route.account)
    if account is None:
        raise _auth_failed(f"The account {route.account!r} does not exist on this emulator.")
    if authorization:
        _check_shared_key(inp, headers, authorization, account)
        return SHARED_KEY
    _check_sas(inp, route, account, lookup_policy)
    return SAS


def redact_query(raw_query: str) -> str:
    """The query string with the ``sig`` value and any ``AccountKey=`` secret replaced, for logs."""
    parts = []
    for part in raw_query.split("&"):
        name, sep, _value = part.partition("=")
        if sep and unquote(name).strip().lower() == "sig":
            part = f"{name}=REDACTED"
        parts.append(part)
    return _ACCOUNT_KEY.sub(r"\1REDACTED", "&".join(parts))


_ACCOUNT_KEY = re.compile(r"(?i)(AccountKey\s*(?:=|%3D))(?:(?!%3B)[^;&\s])*")


# ---------------------------------------------------------------------------------------------
# Shared Key


#: The standard headers whose values open the string to sign, in this order.
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


def _normalise_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names in arrival order; a repeated header's values are joined with commas."""
    result: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        result[key] = f"{result[key]},{value}" if key in result else value
    return result


def _check_shared_key(
    inp: AuthInput, headers: Mapping[str, str], authorization: str, account: Account
) -> None:
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "sharedkey":
        raise _auth_failed(
            f"The authorization scheme {scheme!r} is not supported by this emulator; "
            "use SharedKey or a shared access signature."
        )
    signed_account, sep, signature = credential.strip().partition(":")
    if not sep or not signed_account or not signature:
        raise _auth_failed("The Authorization header is not of the form 'SharedKey <account>:<signature>'.")
    if signed_account != account.name:
        raise _auth_failed(
            f"The Authorization header is signed for account {signed_account!r} but the request "
            f"addresses account {account.name!r}."
        )
    for candidate in shared_key_strings_to_sign(inp.method, inp.raw_path, inp.query, headers, account.name):
        if _signature_matches(account, candidate, signature):
            return
    raise _auth_failed(
        "Server failed to authenticate the request. Make sure the value of Authorization header is "
        f"formed correctly including the signature. The signature in the request for account "
        f"{account.name!r} did not match any signature computed by the server."
    )


def shared_key_strings_to_sign(
    method: str,
    raw_path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    account_name: str,
) -> list[str]:
    """The Shared Key strings to sign a client may have used, without duplicates.

    ``headers`` must have lower-case names. The first strings order the ``x-ms-*`` headers by the
    service collation (what the Python SDK does), the others by code point (the Go SDK); each
    with the path as it arrived, then with every segment fully percent-encoded.
    """
    values = [method]
    for name in _SIGNED_STANDARD_HEADERS:
        value = headers.get(name, "")
        if name == "content-length" and value == "0":
            value = ""
        values.append(value)
    opening = "\n".join(values) + "\n"

    canonical_query = "".join(f"\n{name}:{query[name]}" for name in sorted(query))
    resources = [
        f"/{account_name}{path or '/'}{canonical_query}" for path in (raw_path, _quoted_path(raw_path))
    ]

    ms_names = tuple(sorted(name for name in headers if name.startswith("x-ms-")))
    orders = (
        [(name, headers[name]) for name in _collated(ms_names)],
        [(name, headers[name]) for name in ms_names],
    )
    result: list[str] = []
    for order in orders:
        for resource in resources:
            text = opening + "".join(f"{name}:{value}\n" for name, value in order) + resource
            if text not in result:
                result.append(text)
    return result


def _quoted_path(raw_path: str) -> str:
    """The path with every segment fully percent-encoded, as the SDKs build it before sending."""
    return "/".join(quote(unquote(segment), safe="~") for segment in raw_path.split("/"))


# The service's header collation as two weight tables indexed by ASCII code. Level 0 holds the
# primary weights (0 = ignored at this level, e.g. "-" and "'"); level 1 only weighs "'" and "-",
# which break ties between names that are equal once those are ignored.
# fmt: off
_PRIMARY_WEIGHTS: tuple[int, ...] = (
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
    0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x71c, 0x0, 0x71f, 0x721, 0x723, 0x725,
    0x0, 0x0, 0x0, 0x72d, 0x803, 0x0, 0x0, 0x733, 0x0, 0xd03, 0xd1a, 0xd1c, 0xd1e,
    0xd20, 0xd22, 0xd24, 0xd26, 0xd28, 0xd2a, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
    0xe02, 0xe09, 0xe0a, 0xe1a, 0xe21, 0xe23, 0xe25, 0xe2c, 0xe32, 0xe35, 0xe36, 0xe48, 0xe51,
    0xe70, 0xe7c, 0xe7e, 0xe89, 0xe8a, 0xe91, 0xe99, 0xe9f, 0xea2, 0xea4, 0xea6, 0xea7, 0xea9,
    0x0, 0x0, 0x0, 0x743, 0x744, 0x748, 0xe02, 0xe09, 0xe0a, 0xe1a, 0xe21, 0xe23, 0xe25,
    0xe2c, 0xe32, 0xe35, 0xe36, 0xe48, 0xe51, 0xe70, 0xe7c, 0xe7e, 0xe89, 0xe8a, 0xe91, 0xe99,
    0xe9f, 0xea2, 0xea4, 0xea6, 0xea7, 0xea9, 0x0, 0x74c, 0x0, 0x750, 0x0,
)
# fmt: on
_SECONDARY_WEIGHTS: dict[str, int] = {"'": 0x8012, "-": 0x8212}
_END = 0x1  # the weight past the end of a name: below every real weight


def _primary_weight(text: str, index: int) -> int:
    if index >= len(text):
        return _END
    code = ord(text[index])
    if code < len(_PRIMARY_WEIGHTS):
        return _PRIMARY_WEIGHTS[code]
    return 0x10000 + code  # no client signs such names; keep them sortable, after ASCII


def _secondary_weight(text: str, index: int) -> int:
    if index >= len(text):
        return _END
    return _SECONDARY_WEIGHTS.get(text[index], 0)


def collation_compare(left: str, right: str) -> int:
    """Compare two header names as the service's collation does: negative, zero or positive.

    First by primary weights, skipping characters of weight zero on either side. Names equal at
    that level are then compared by their hyphens and apostrophes; there, the side that has to
    skip a character first (because the other has a hyphen or apostrophe at that spot) sorts
    after the other.
    """
    i = j = 0
    while True:
        lw, rw = _primary_weight(left, i), _primary_weight(right, j)
        if lw == rw:
            if lw == _END:
                break
            i, j = i + 1, j + 1
        elif lw == 0:
            i += 1
        elif rw == 0:
            j += 1
        else:
            return -1 if lw < rw else 1
    i = j = 0
    while True:
        if i != j:
            return -1 if i > j else 1
        lw, rw = _secondary_weight(left, i), _secondary_weight(right, j)
        if lw == rw:
            if lw == _END:
                return 0
            i, j = i + 1, j + 1
        elif lw == 0:
            i += 1
        elif rw == 0:
            j += 1
        else:
            return -1 if lw < rw else 1


@functools.lru_cache(maxsize=4096)
def _collated(names: tuple[str, ...]) -> tuple[str, ...]:
    """Header names in the service collation; clients send the same few sets over and over."""
    return tuple(sorted(names, key=cmp_to_key(collation_compare)))


def _sign(key: bytes, text: str) -> bytes:
    return base64.b64encode(hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest())


def _signature_matches(account: Account, string_to_sign: str, signature: str) -> bool:
    return hmac.compare_digest(_sign(account.key_bytes, string_to_sign), signature.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# Shared access signatures

#: From this version on the account SAS string to sign carries a signed encryption scope line.
_ACCOUNT_SAS_SCOPE_VERSION = "2020-12-06"
#: From this version on SAS strings to sign carry the signed IP and protocol lines.
_SAS_IP_PROTOCOL_VERSION = "2015-04-05"
_SAS_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SAS_NO_SECONDS = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(Z|[+-]\d{2}:\d{2})?$")


def _check_sas(inp: AuthInput, route: Route, account: Account, lookup_policy: PolicyLookup) -> None:
    query = inp.query
    version = query.get("sv", "")
    if not version:
        raise _sas_malformed("the signed version (sv) is missing")
    if "skoid" in query:
        raise _auth_failed(
            "User delegation SAS is not supported by this emulator; sign with the account key."
        )
    if "ss" in query:
        _check_account_sas(inp, route, account, version)
    elif query.get("sr"):
        _check_service_sas(inp, route, account, version, lookup_policy)
    else:
        raise _sas_malformed("neither signed services (ss) nor signed resource (sr) is present")


def _check_account_sas(inp: AuthInput, route: Route, account: Account, version: str) -> None:
    query = inp.query
    for name, what in (
        ("sp", "signed permissions"),
        ("ss", "signed services"),
        ("srt", "signed resource types"),
        ("se", "signed expiry"),
    ):
        if not query.get(name):
            raise _sas_malformed(f"the {what} ({name}) is missing")
    if version < _SAS_IP_PROTOCOL_VERSION:
        raise _sas_malformed(f"account SAS needs version {_SAS_IP_PROTOCOL_VERSION} or later")
    signed = ("sp", "ss", "srt", "st", "se", "sip", "spr", "sv")
    fields = [account.name] + [query.get(name, "") for name in signed]
    if version >= _ACCOUNT_SAS_SCOPE_VERSION:
        fields.append(query.get("ses", ""))
    _check_sas_signature(account, ["\n".join(fields) + "\n"], query["sig"])
    _check_sas_time(query.get("st"), query["se"])
    _check_sas_network(inp)
    if "f" not in query["ss"]:
        raise StorageError(
            403,
            "AuthorizationServiceMismatch",
            "This request is not authorized to perform this operation using this service. "
            f"The signed services (ss={query['ss']!r}) do not include the File service (f).",
        )
    if route.resource_type not in query["srt"]:
        raise StorageError(
            403,
            "AuthorizationResourceTypeMismatch",
            "This request is not authorized to perform this operation using this resource type. "
            f"{route.op} needs resource type {route.resource_type!r}; srt={query['srt']!r}.",
        )
    _check_permission(route, query["sp"])


def _check_service_sas(
    inp: AuthInput, route: Route, account: Account, version: str, lookup_policy: PolicyLookup
) -> None:
    query = inp.query
    resource = query["sr"]
    share = route.share
    if resource not in ("s", "f"):
        raise _sas_malformed(f"the signed resource sr={resource!r} is not one of s (share), f (file)")
    directory_op = query.get("restype", "").lower() == "directory"
    covered = (
        share is not None
        and route.resource_type == OBJECT
        and (resource == "s" or (route.path != "" and not directory_op))
    )
    if share is None or not covered:
        scope = "a share" if resource == "s" else "a file"
        raise StorageError(
            403,
            "AuthorizationResourceTypeMismatch",
            "This request is not authorized to perform this operation using this resource type. "
            f"A service SAS for {scope} (sr={resource}) does not cover {route.op}.",
        )
    shares = [share] if share == share.lower() else [share, share.lower()]
    resources = [f"/file/{account.name}/{name}" for name in shares]
    if resource == "f":
        resources = [f"{prefix}/{route.path}" for prefix in resources]
    candidates = []
    for canonical in resources:
        fields = [query.get(name, "") for name in ("sp", "st", "se")]
        fields += [canonical, query.get("si", "")]
        if version >= _SAS_IP_PROTOCOL_VERSION:
            fields += [query.get("sip", ""), query.get("spr", "")]
        fields += [query.get(name, "") for name in ("sv", "rscc", "rscd", "rsce", "rscl", "rsct")]
        candidates.append("\n".join(fields))
    _check_sas_signature(account, candidates, query["sig"])

    permission, start, expiry = query.get("sp"), query.get("st"), query.get("se")
    identifier = query.get("si")
    if identifier:
        try:
            policy = lookup_policy(account.name, share, identifier)
        except StorageError:  # e.g. the share does not exist: then neither does its policy
            policy = None
        if policy is None:
            raise _auth_failed(
                f"The signed identifier {identifier!r} does not name a stored access policy of share "
                f"{share!r}."
            )
        permission = _merge_policy_field("sp", permission, policy.permission)
        start = _merge_policy_field("st", start, policy.start)
        expiry = _merge_policy_field("se", expiry, policy.expiry)
    if not expiry:
        raise _sas_malformed("the signed expiry (se) is missing from the SAS and its stored policy")
    if not permission:
        raise _sas_malformed("the signed permissions (sp) are missing from the SAS and its stored policy")
    _check_sas_time(start, expiry)
    _check_sas_network(inp)
    _check_permission(route, permission)


def _merge_policy_field(name: str, in_sas: str | None, in_policy: str | None) -> str | None:
    if in_sas and in_policy:
        raise StorageError(
            400,
            "InvalidQueryParameterValue",
            f"The field {name} is given both in the shared access signature and in its stored "
            "access policy; give it in only one.",
        )
    return in_sas or in_policy


def _check_sas_signature(account: Account, candidates: Iterable[str], signature: str) -> None:
    for candidate in candidates:
        if _signature_matches(account, candidate, signature):
            return
    raise _auth_failed(
        "Server failed to authenticate the request. Make sure the value of Authorization header is "
        f"formed correctly including the signature. Signature did not match for account "
        f"{account.name!r}."
    )


def _check_sas_time(start: str | None, expiry: str) -> None:
    now = now_ticks()
    if _sas_time(expiry, "se") < now:
        raise _auth_failed(f"Signed expiry time [{expiry}] has passed.")
    if start and _sas_time(start, "st") > now:
        raise _auth_failed(f"Signed start time [{start}] is in the future.")


def _sas_time(text: str, name: str) -> int:
    """Ticks of a SAS time: ``YYYY-MM-DD``, ``YYYY-MM-DDThh:mm[TZ]`` or full ISO 8601."""
    value = text.strip()
    if _SAS_DATE_ONLY.match(value):
        value += "T00:00:00Z"
    else:
        short = _SAS_NO_SECONDS.match(value)
        if short:
            value = f"{short.group(1)}:00{short.group(2) or 'Z'}"
    try:
        return iso_to_ticks(value, name)
    except StorageError as exc:
        raise _sas_malformed(f"{name}={text!r} is not an ISO 8601 UTC time") from exc


def _check_sas_network(inp: AuthInput) -> None:
    protocol = inp.query.get("spr")
    if protocol:
        allowed = {item.strip().lower() for item in protocol.split(",")}
        if not allowed <= {"https", "http"} or "https" not in allowed:
            raise _sas_malformed(f"spr={protocol!r} is neither 'https' nor 'https,http'")
        if inp.scheme.lower() not in allowed:
            raise StorageError(
                403,
                "AuthorizationProtocolMismatch",
                "This request is not authorized to perform this operation using this protocol.",
            )
    ip_range = inp.query.get("sip")
    if ip_range and not _ip_in_range(inp.client_ip, ip_range):
        raise StorageError(
            403,
            "AuthorizationSourceIPMismatch",
            f"This request is not authorized to perform this operation using this source IP {inp.client_ip}.",
        )


def _ip_in_range(client_ip: str, ip_range: str) -> bool:
    low_text, _, high_text = ip_range.partition("-")
    try:
        low = ipaddress.ip_address(low_text.strip())
        high = ipaddress.ip_address(high_text.strip()) if high_text else low
    except ValueError as exc:
        raise _sas_malformed(f"sip={ip_range!r} is not an IP address or a range a-b") from exc
    try:
        client = ipaddress.ip_address(client_ip.strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped is not None:
        client = client.ipv4_mapped
    if not (client.version == low.version == high.version):
        return False
    return int(low) <= int(client) <= int(high)


def _check_permission(route: Route, permission: str) -> None:
    if not route.permissions & set(permission):
        needed = "".join(sorted(route.permissions))
        raise StorageError(
            403,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission. "
            f"{route.op} needs one of {needed!r}; the signed permissions are {permission!r}.",
        )


def _auth_failed(message: str) -> StorageError:
    return StorageError(403, "AuthenticationFailed", message)


def _sas_malformed(detail: str) -> StorageError:
    return _auth_failed(
        "Server failed to authenticate the request. Signature fields not well formed: " + detail + "."
    )
