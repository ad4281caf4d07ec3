"""Unit tests of the emulator's request authorisation with signatures made by the real Azure SDK."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cmp_to_key
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import HttpRequest
from azure.storage.fileshare import (
    AccountSasPermissions,
    FileSasPermissions,
    ResourceTypes,
    Services,
    ShareSasPermissions,
    generate_account_sas,
    generate_file_sas,
    generate_share_sas,
)
from azure.storage.fileshare._shared.authentication import (
    SharedKeyCredentialPolicy,
    _storage_header_sort,
)
from multidict import CIMultiDict, CIMultiDictProxy

from shareferry.emulator.auth import (
    AuthInput,
    StoredPolicy,
    authorize,
    collation_compare,
    redact_query,
)
from shareferry.emulator.config import WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY, Account, EmulatorConfig
from shareferry.emulator.errors import StorageError
from shareferry.emulator.routing import Route, classify
from shareferry.emulator.wire import parse_query

ACCOUNT = WELL_KNOWN_ACCOUNT
KEY = WELL_KNOWN_KEY
SECOND = "secondacct"
SECOND_KEY = base64.b64encode(bytes(range(64))).decode()
WRONG_KEY = base64.b64encode(b"not the key of anything".ljust(64, b".")).decode()
CONFIG = EmulatorConfig(accounts=(Account(ACCOUNT, KEY), Account(SECOND, SECOND_KEY)))
BASE = f"http://127.0.0.1:10000/{ACCOUNT}"
DATE = "Fri, 01 Mar 2024 10:00:00 GMT"
VERSION = "2026-10-06"

Policies = Mapping[tuple[str, str, str], StoredPolicy]


# --- helpers ------------------------------------------------------------------------------------


def later(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_request(
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    client_ip: str = "127.0.0.1",
) -> tuple[AuthInput, Route]:
    """What the server would hand to authorize for this request, and the classified route."""
    parts = urlsplit(url)
    query = parse_query(parts.query)
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    route = classify(method, parts.path, query, lowered)
    return AuthInput(method, parts.path, query, lowered, parts.scheme, client_ip), route


def run(inp: AuthInput, route: Route, policies: Policies | None = None) -> str:
    found = dict(policies or {})

    def lookup(account: str, share: str, identifier: str) -> StoredPolicy | None:
        return found.get((account, share, identifier))

    return authorize(inp, route, CONFIG, lookup)


def refused(
    inp: AuthInput, route: Route, policies: Policies | None = None, *, status: int = 403
) -> StorageError:
    with pytest.raises(StorageError) as info:
        run(inp, route, policies)
    assert info.value.status == status
    assert KEY not in info.value.message
    return info.value


def sdk_shared_key(
    method: str, url: str, headers: Mapping[str, str], account: str = ACCOUNT, key: str = KEY
) -> dict[str, str]:
    """The headers after the SDK's own SharedKey policy signed the request."""
    request = HttpRequest(method, url, headers=dict(headers))
    SharedKeyCredentialPolicy(account, key).on_request(PipelineRequest(request, PipelineContext(None)))
    return dict(request.headers)


def go_style_shared_key(method: str, url: str, headers: Mapping[str, str], key: str = KEY) -> str:
    """An Authorization value built like the Go SDK: x-ms-* headers in plain code point order."""
    parts = urlsplit(url)
    lowered = {name.lower(): value for name, value in headers.items()}
    standard = [
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
    ]
    values = [lowered.get(name, "") for name in standard]
    if values[2] == "0":
        values[2] = ""
    ms_names = sorted(name for name in lowered if name.startswith("x-ms-"))
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in ms_names)
    params = parse_qs(parts.query, keep_blank_values=True)
    resource = f"/{ACCOUNT}{parts.path}" + "".join(
        f"\n{name.lower()}:{','.join(sorted(params[name]))}" for name in sorted(params)
    )
    string_to_sign = method + "\n" + "\n".join(values) + "\n" + canonical_headers + resource
    digest = hmac.new(base64.b64decode(key), string_to_sign.encode(), hashlib.sha256).digest()
    return f"SharedKey {ACCOUNT}:{base64.b64encode(digest).decode()}"


def with_param(token: str, name: str, value: str) -> str:
    """The SAS token with one field replaced (or added), the others left exactly as they were."""
    parts = [part for part in token.split("&") if part.partition("=")[0] != name]
    return "&".join([*parts, f"{name}={quote(value, safe='')}"])


def param(token: str, name: str) -> str:
    return parse_qs(token)[name][0]


def manual_sign(text: str, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(base64.b64decode(key), text.encode(), hashlib.sha256).digest()).decode()


def create_file_headers(**extra: str) -> dict[str, str]:
    headers = {
        "x-ms-version": VERSION,
        "x-ms-date": DATE,
        "x-ms-type": "file",
        "x-ms-content-length": "11",
        "x-ms-meta-a_b": "underscore",
        "x-ms-meta-a1": "digit",
        "x-ms-meta": "{'a_b': 'underscore', 'a1': 'digit'}",
        "x-ms-file-attributes": "Archive",
        "x-ms-client-request-id": "5d3c0b6e-0000-4000-8000-000000000001",
        "Content-Length": "0",
    }
    headers.update(extra)
    return headers


# --- anonymous, unknown account -------------------------------------------------------------------


def test_anonymous_request_is_refused() -> None:
    inp, route = make_request("GET", f"{BASE}/share/file.txt", {"x-ms-version": VERSION})
    assert refused(inp, route).code == "NoAuthenticationInformation"


def test_unknown_account_is_named_but_no_key_is_printed() -> None:
    url = "http://127.0.0.1:10000/nosuchacct/share/file.txt"
    headers = sdk_shared_key("GET", url, {"x-ms-version": VERSION, "x-ms-date": DATE}, "nosuchacct", KEY)
    inp, route = make_request("GET", url, headers)
    error = refused(inp, route)
    assert error.code == "AuthenticationFailed"
    assert "nosuchacct" in error.message


def test_unsupported_authorization_scheme() -> None:
    inp, route = make_request("GET", f"{BASE}/share/file.txt", {"Authorization": "Bearer abc.def.ghi"})
    error = refused(inp, route)
    assert error.code == "AuthenticationFailed"
    assert "Bearer" in error.message


# --- Shared Key -----------------------------------------------------------------------------------


def test_shared_key_from_sdk_policy_is_accepted() -> None:
    url = f"{BASE}/share/dir/new%20file.txt"
    headers = sdk_shared_key("PUT", url, create_file_headers())
    inp, route = make_request("PUT", url, headers)
    assert route.op == "CreateFile"
    assert run(inp, route) == "sharedkey"


def test_shared_key_rejected_after_changing_one_ms_header() -> None:
    url = f"{BASE}/share/dir/new%20file.txt"
    headers = sdk_shared_key("PUT", url, create_file_headers())
    headers["x-ms-meta-a1"] = "tampered"
    inp, route = make_request("PUT", url, headers)
    error = refused(inp, route)
    assert error.code == "AuthenticationFailed"
    assert ACCOUNT in error.message
    assert "did not match" in error.message
    assert headers["Authorization"].split(":", 1)[1] not in error.message


def test_shared_key_rejected_after_adding_an_ms_header() -> None:
    url = f"{BASE}/share/file.txt"
    headers = sdk_shared_key("GET", url, {"x-ms-version": VERSION, "x-ms-date": DATE})
    headers["x-ms-range"] = "bytes=0-10"
    inp, route = make_request("GET", url, headers)
    assert refused(inp, route).code == "AuthenticationFailed"


def test_shared_key_with_wrong_key() -> None:
    url = f"{BASE}/share/file.txt"
    headers = sdk_shared_key("GET", url, {"x-ms-version": VERSION, "x-ms-date": DATE}, key=WRONG_KEY)
    inp, route = make_request("GET", url, headers)
    assert refused(inp, route).code == "AuthenticationFailed"


def test_shared_key_signed_for_another_account() -> None:
    url = f"{BASE}/share/file.txt"
    headers = sdk_shared_key("GET", url, {"x-ms-version": VERSION, "x-ms-date": DATE}, SECOND, SECOND_KEY)
    inp, route = make_request("GET", url, headers)
    error = refused(inp, route)
    assert error.code == "AuthenticationFailed"
    assert SECOND in error.message and ACCOUNT in error.message


def test_metadata_names_where_collation_and_code_point_order_disagree() -> None:
    ordinal = sorted(["x-ms-meta-a_b", "x-ms-meta-a1"])
    collated = sorted(["x-ms-meta-a_b", "x-ms-meta-a1"], key=cmp_to_key(collation_compare))
    assert ordinal == ["x-ms-meta-a1", "x-ms-meta-a_b"]
    assert collated == ["x-ms-meta-a_b", "x-ms-meta-a1"]

    url = f"{BASE}/share/dir/new%20file.txt"
    base_headers = create_file_headers()
    sdk_headers = sdk_shared_key("PUT", url, base_headers)
    go_authorization = go_style_shared_key("PUT", url, base_headers)
    assert go_authorization != sdk_headers["Authorization"]

    inp, route = make_request("PUT", url, sdk_headers)
    assert run(inp, route) == "sharedkey"
    go_headers = dict(base_headers, Authorization=go_authorization)
    inp, route = make_request("PUT", url, go_headers)
    assert run(inp, route) == "sharedkey"
    go_headers["x-ms-meta-a_b"] = "changed"
    inp, route = make_request("PUT", url, go_headers)
    assert refused(inp, route).code == "AuthenticationFailed"


def test_shared_key_query_parameters_sorted_decoded_and_empty_values_kept() -> None:
    url = f"{BASE}/?comp=list&include=metadata%2Csnapshots&prefix=&maxresults=5000"
    headers = sdk_shared_key("GET", url, {"x-ms-version": VERSION, "x-ms-date": DATE})
    inp, route = make_request("GET", url, headers)
    assert route.op == "ListShares"
    assert run(inp, route) == "sharedkey"
    go_authorization = go_style_shared_key("GET", url, {"x-ms-version": VERSION, "x-ms-date": DATE})
    assert run(*make_request("GET", url, dict(headers, Authorization=go_authorization))) == "sharedkey"

    changed = url.replace("maxresults=5000", "maxresults=5001")
    inp, route = make_request("GET", changed, headers)
    assert refused(inp, route).code == "AuthenticationFailed"


def test_shared_key_directory_path_with_encoded_slash_signs_the_raw_path() -> None:
    url = f"{BASE}/share/dir%2Fsub?restype=directory&comp=list"
    headers = sdk_shared_key("GET", url, {"x-ms-version": VERSION, "x-ms-date": DATE})
    inp, route = make_request("GET", url, headers)
    assert route.op == "ListDirectory" and route.path == "dir/sub"
    assert run(inp, route) == "sharedkey"
    inp, route = make_request("GET", url.replace("%2F", "/"), headers)
    assert refused(inp, route).code == "AuthenticationFailed"


def test_shared_key_content_headers_are_signed() -> None:
    url = f"{BASE}/share/file.txt?comp=range"
    headers = {
        "x-ms-version": VERSION,
        "x-ms-date": DATE,
        "x-ms-range": "bytes=0-4",
        "x-ms-write": "update",
        "Content-Length": "5",
        "Content-MD5": "XUFAKrxLKna5cZ2REBfFkg==",
        "Content-Type": "application/octet-stream",
    }
    signed = sdk_shared_key("PUT", url, headers)
    inp, route = make_request("PUT", url, signed)
    assert route.op == "PutRange"
    assert run(inp, route) == "sharedkey"
    inp, route = make_request("PUT", url, dict(signed, **{"Content-Length": "6"}))
    assert refused(inp, route).code == "AuthenticationFailed"


def test_shared_key_with_case_insensitive_multidict_headers() -> None:
    url = f"{BASE}/share/dir/new%20file.txt"
    signed = sdk_shared_key("PUT", url, create_file_headers())
    mixed = CIMultiDict((name.title(), value) for name, value in signed.items())
    parts = urlsplit(url)
    query = parse_query(parts.query)
    route = classify("PUT", parts.path, query, mixed)
    inp = AuthInput("PUT", parts.path, query, CIMultiDictProxy(mixed), "http", "127.0.0.1")
    assert run(inp, route) == "sharedkey"


def test_collation_matches_the_sdk_header_sort() -> None:
    rng = random.Random(20240301)
    alphabet = "ab_-'1.zA9"
    for _ in range(300):
        names = [
            "x-ms-" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
            for _ in range(rng.randint(2, 8))
        ]
        names = list(dict.fromkeys(names))
        expected = [name for name, _ in _storage_header_sort([(name, "") for name in names])]
        assert sorted(names, key=cmp_to_key(collation_compare)) == expected


# --- account SAS ----------------------------------------------------------------------------------

ALL_TYPES = ResourceTypes(service=True, container=True, object=True)
READ_LIST = AccountSasPermissions(read=True, list=True)


def account_sas(
    permission: AccountSasPermissions | str = READ_LIST,
    resource_types: ResourceTypes | str = ALL_TYPES,
    *,
    expiry: datetime | None = None,
    key: str = KEY,
    **kwargs: Any,
) -> str:
    return generate_account_sas(ACCOUNT, key, resource_types, permission, expiry or later(hours=1), **kwargs)


def test_account_sas_is_accepted() -> None:
    token = account_sas()
    inp, route = make_request("GET", f"{BASE}/share/dir/file.txt?{token}")
    assert run(inp, route) == "sas"
    inp, route = make_request("GET", f"{BASE}/?comp=list&{token}")
    assert run(inp, route) == "sas"


def test_account_sas_with_wrong_key() -> None:
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{account_sas(key=WRONG_KEY)}")
    error = refused(inp, route)
    assert error.code == "AuthenticationFailed"
    assert "Signature did not match" in error.message


def test_account_sas_with_tampered_signature_or_fields() -> None:
    token = account_sas()
    sig = param(token, "sig")
    flipped = with_param(token, "sig", ("A" if sig[0] != "A" else "B") + sig[1:])
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{flipped}")
    assert refused(inp, route).code == "AuthenticationFailed"
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{with_param(token, 'sig', sig)}")
    assert run(inp, route) == "sas"

    assert param(token, "sp") == "rl"
    widened = with_param(token, "sp", "rwdl")
    inp, route = make_request("DELETE", f"{BASE}/share/file.txt?{widened}")
    assert refused(inp, route).code == "AuthenticationFailed"


def test_account_sas_expired() -> None:
    token = account_sas(expiry=later(minutes=-5))
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    error = refused(inp, route)
    assert error.code == "AuthenticationFailed"
    assert "expiry" in error.message and "has passed" in error.message


def test_account_sas_start_in_future() -> None:
    token = account_sas(start=later(hours=1), expiry=later(hours=2))
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    error = refused(inp, route)
    assert error.code == "AuthenticationFailed"
    assert "start" in error.message


def test_account_sas_start_in_past_is_fine() -> None:
    token = account_sas(start=later(minutes=-10))
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    assert run(inp, route) == "sas"


def test_account_sas_missing_permission_letter() -> None:
    token = account_sas(AccountSasPermissions(read=True))
    inp, route = make_request("PUT", f"{BASE}/share/file.txt?{token}", {"x-ms-type": "file"})
    assert route.op == "CreateFile"
    error = refused(inp, route)
    assert error.code == "AuthorizationPermissionMismatch"
    inp, route = make_request("GET", f"{BASE}/share/dir?restype=directory&comp=list&{token}")
    assert refused(inp, route).code == "AuthorizationPermissionMismatch"

    token = account_sas(AccountSasPermissions(write=True))  # "w" is enough to create a file
    inp, route = make_request("PUT", f"{BASE}/share/file.txt?{token}", {"x-ms-type": "file"})
    assert run(inp, route) == "sas"


def test_account_sas_wrong_resource_type() -> None:
    everything = AccountSasPermissions(read=True, list=True, write=True, create=True)
    token = account_sas(everything, ResourceTypes(object=True))
    inp, route = make_request("GET", f"{BASE}/?comp=list&{token}")
    assert refused(inp, route).code == "AuthorizationResourceTypeMismatch"
    inp, route = make_request("PUT", f"{BASE}/share?restype=share&{token}")
    assert route.op == "CreateShare"
    assert refused(inp, route).code == "AuthorizationResourceTypeMismatch"
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    assert run(inp, route) == "sas"


def test_account_sas_for_another_service() -> None:
    token = account_sas(services=Services(blob=True))
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    assert refused(inp, route).code == "AuthorizationServiceMismatch"


def test_account_sas_https_only_over_http() -> None:
    token = account_sas(protocol="https")
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    error = refused(inp, route)
    assert error.code == "AuthorizationProtocolMismatch"
    assert "protocol" in error.message
    inp, route = make_request("GET", f"https://127.0.0.1:10000/{ACCOUNT}/share/file.txt?{token}")
    assert run(inp, route) == "sas"
    token = account_sas(protocol="https,http")
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    assert run(inp, route) == "sas"


def test_account_sas_source_ip() -> None:
    token = account_sas(ip="10.1.2.3")
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    error = refused(inp, route)
    assert error.code == "AuthorizationSourceIPMismatch"
    assert "127.0.0.1" in error.message
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}", client_ip="10.1.2.3")
    assert run(inp, route) == "sas"

    token = account_sas(ip="127.0.0.1-127.0.0.9")
    cases = (("127.0.0.5", True), ("::ffff:127.0.0.9", True), ("127.0.0.10", False), ("::1", False))
    for client_ip, allowed in cases:
        inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}", client_ip=client_ip)
        if allowed:
            assert run(inp, route) == "sas"
        else:
            assert refused(inp, route).code == "AuthorizationSourceIPMismatch"


def _handmade_account_sas(version: str, with_scope_line: bool) -> str:
    expiry = iso(later(hours=1))
    fields = {"sv": version, "ss": "bf", "srt": "sco", "sp": "rl", "se": expiry, "spr": "https,http"}
    lines = [ACCOUNT, fields["sp"], fields["ss"], fields["srt"], "", fields["se"], "", fields["spr"], version]
    if with_scope_line:
        lines.append("")
    fields["sig"] = manual_sign("\n".join(lines) + "\n")
    return "&".join(f"{name}={quote(value, safe='')}" for name, value in fields.items())


@pytest.mark.parametrize(
    ("version", "with_scope_line", "accepted"),
    [
        ("2019-12-12", False, True),  # what older Go clients such as AzCopy 10.18 send
        ("2020-04-08", False, True),
        ("2020-04-08", True, False),
        ("2020-12-06", True, True),
        ("2021-08-06", True, True),
        ("2021-08-06", False, False),
    ],
)
def test_account_sas_encryption_scope_line_depends_on_version(
    version: str, with_scope_line: bool, accepted: bool
) -> None:
    token = _handmade_account_sas(version, with_scope_line)
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    if accepted:
        assert run(inp, route) == "sas"
    else:
        assert refused(inp, route).code == "AuthenticationFailed"


def test_sas_without_version_or_resource_is_refused() -> None:
    token = account_sas()
    no_version = "&".join(part for part in token.split("&") if not part.startswith("sv="))
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{no_version}")
    assert refused(inp, route).code == "AuthenticationFailed"
    inp, route = make_request("GET", f"{BASE}/share/file.txt?sv=2021-08-06&sp=r&se=2099-01-01&sig=abcd")
    assert refused(inp, route).code == "AuthenticationFailed"


# --- service SAS: share ---------------------------------------------------------------------------


def share_sas(share: str = "share", **kwargs: Any) -> str:
    kwargs.setdefault("permission", ShareSasPermissions(read=True, list=True))
    if "policy_id" not in kwargs:
        kwargs.setdefault("expiry", later(hours=1))
    return generate_share_sas(ACCOUNT, share, KEY, **kwargs)


def test_share_sas_covers_files_and_directories_in_the_share() -> None:
    token = share_sas()
    inp, route = make_request("GET", f"{BASE}/share/dir/file.txt?{token}")
    assert run(inp, route) == "sas"
    inp, route = make_request("GET", f"{BASE}/share/dir%2Fsub?restype=directory&comp=list&{token}")
    assert run(inp, route) == "sas"
    inp, route = make_request("GET", f"{BASE}/share?restype=directory&comp=list&{token}")
    assert route.path == ""
    assert run(inp, route) == "sas"
    inp, route = make_request("GET", f"{BASE}/Share/dir/file.txt?{token}")
    assert run(inp, route) == "sas"


def test_share_sas_does_not_cover_share_or_service_operations() -> None:
    token = share_sas(
        permission=ShareSasPermissions(read=True, list=True, write=True, create=True, delete=True)
    )
    inp, route = make_request("GET", f"{BASE}/share?restype=share&{token}")
    assert route.resource_type == "c"
    assert refused(inp, route).code == "AuthorizationResourceTypeMismatch"
    inp, route = make_request("GET", f"{BASE}/?comp=list&{token}")
    assert refused(inp, route).code == "AuthorizationResourceTypeMismatch"


def test_share_sas_used_for_another_share() -> None:
    inp, route = make_request("GET", f"{BASE}/othershare/file.txt?{share_sas()}")
    assert refused(inp, route).code == "AuthenticationFailed"


def test_share_sas_missing_permission_letter() -> None:
    token = share_sas()
    inp, route = make_request("DELETE", f"{BASE}/share/file.txt?{token}")
    assert refused(inp, route).code == "AuthorizationPermissionMismatch"
    token = share_sas(permission=ShareSasPermissions(read=True))
    inp, route = make_request("GET", f"{BASE}/share/dir?restype=directory&comp=list&{token}")
    assert refused(inp, route).code == "AuthorizationPermissionMismatch"


def test_share_sas_expired_and_not_yet_valid() -> None:
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{share_sas(expiry=later(seconds=-2))}")
    assert "has passed" in refused(inp, route).message
    token = share_sas(start=later(minutes=30), expiry=later(hours=1))
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    assert refused(inp, route).code == "AuthenticationFailed"


def test_share_sas_protocol_and_ip() -> None:
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{share_sas(protocol='https')}")
    assert refused(inp, route).code == "AuthorizationProtocolMismatch"
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{share_sas(ip='192.168.0.1-192.168.0.20')}")
    assert refused(inp, route).code == "AuthorizationSourceIPMismatch"


def test_share_sas_response_header_overrides_are_signed() -> None:
    token = share_sas(content_type="text/plain", cache_control="no-cache")
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    assert run(inp, route) == "sas"
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{with_param(token, 'rsct', 'text/html')}")
    assert refused(inp, route).code == "AuthenticationFailed"


# --- service SAS: file ----------------------------------------------------------------------------


def file_sas(path: list[str], **kwargs: Any) -> str:
    kwargs.setdefault("permission", FileSasPermissions(read=True))
    kwargs.setdefault("expiry", later(hours=1))
    return generate_file_sas(ACCOUNT, "share", path, KEY, **kwargs)


def test_file_sas_is_accepted_for_its_file() -> None:
    token = file_sas(["dir", "sub", "a file é.txt"])
    inp, route = make_request("GET", f"{BASE}/share/dir/sub/{quote('a file é.txt')}?{token}")
    assert run(inp, route) == "sas"
    inp, route = make_request("HEAD", f"{BASE}/share/dir/sub/{quote('a file é.txt')}?{token}")
    assert run(inp, route) == "sas"


def test_file_sas_used_for_another_file() -> None:
    token = file_sas(["dir", "file.txt"])
    inp, route = make_request("GET", f"{BASE}/share/dir/other.txt?{token}")
    assert refused(inp, route).code == "AuthenticationFailed"
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    assert refused(inp, route).code == "AuthenticationFailed"


def test_file_sas_does_not_cover_directories() -> None:
    token = file_sas(["dir"], permission=FileSasPermissions(read=True, write=True, create=True))
    inp, route = make_request("GET", f"{BASE}/share/dir?restype=directory&comp=list&{token}")
    assert refused(inp, route).code == "AuthorizationResourceTypeMismatch"
    inp, route = make_request("PUT", f"{BASE}/share/dir?restype=directory&{token}")
    assert refused(inp, route).code == "AuthorizationResourceTypeMismatch"


def test_file_sas_missing_permission_letter() -> None:
    token = file_sas(["file.txt"])
    inp, route = make_request("PUT", f"{BASE}/share/file.txt?comp=range&{token}", {"x-ms-write": "update"})
    assert route.op == "PutRange"
    assert refused(inp, route).code == "AuthorizationPermissionMismatch"
    token = file_sas(["file.txt"], permission=FileSasPermissions(write=True))
    inp, route = make_request("PUT", f"{BASE}/share/file.txt?comp=range&{token}", {"x-ms-write": "update"})
    assert run(inp, route) == "sas"


# --- stored access policies ------------------------------------------------------------------------


def test_stored_policy_supplies_permission_and_expiry() -> None:
    token = share_sas(permission=None, policy_id="readers")
    policies = {(ACCOUNT, "share", "readers"): StoredPolicy(None, iso(later(hours=1)), "rl")}
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    assert run(inp, route, policies) == "sas"
    inp, route = make_request("DELETE", f"{BASE}/share/file.txt?{token}")
    assert refused(inp, route, policies).code == "AuthorizationPermissionMismatch"


def test_stored_policy_unknown_identifier() -> None:
    token = share_sas(permission=None, policy_id="nobody")
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    error = refused(inp, route, {})
    assert error.code == "AuthenticationFailed"
    assert "nobody" in error.message


def test_stored_policy_lookup_that_raises_is_an_unknown_identifier() -> None:
    token = share_sas(share="missing", permission=None, policy_id="p")
    inp, route = make_request("GET", f"{BASE}/missing/file.txt?{token}")

    def lookup(account: str, share: str, identifier: str) -> StoredPolicy | None:
        raise StorageError(404, "ShareNotFound", "The specified share does not exist.")

    with pytest.raises(StorageError) as info:
        authorize(inp, route, CONFIG, lookup)
    assert (info.value.status, info.value.code) == (403, "AuthenticationFailed")


def test_stored_policy_expired_or_not_started() -> None:
    token = share_sas(permission=None, policy_id="p")
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    expired = {(ACCOUNT, "share", "p"): StoredPolicy(None, iso(later(minutes=-1)), "r")}
    assert "has passed" in refused(inp, route, expired).message
    future = {(ACCOUNT, "share", "p"): StoredPolicy(iso(later(hours=1)), iso(later(hours=2)), "r")}
    assert refused(inp, route, future).code == "AuthenticationFailed"


def test_stored_policy_and_sas_both_giving_a_field() -> None:
    token = share_sas(permission=ShareSasPermissions(read=True), expiry=later(hours=1), policy_id="p")
    policies = {(ACCOUNT, "share", "p"): StoredPolicy(None, None, "r")}
    inp, route = make_request("GET", f"{BASE}/share/file.txt?{token}")
    assert refused(inp, route, policies, status=400).code == "InvalidQueryParameterValue"
    policies = {(ACCOUNT, "share", "p"): StoredPolicy(None, None, None)}
    assert run(inp, route, policies) == "sas"


def test_stored_policy_on_a_file_sas_with_a_tampered_identifier() -> None:
    token = file_sas(["f.txt"], permission=None, expiry=None, policy_id="p")
    policies = {
        (ACCOUNT, "share", "p"): StoredPolicy(None, iso(later(hours=1)), "r"),
        (ACCOUNT, "share", "q"): StoredPolicy(None, iso(later(hours=1)), "rwd"),
    }
    inp, route = make_request("GET", f"{BASE}/share/f.txt?{token}")
    assert run(inp, route, policies) == "sas"
    inp, route = make_request("GET", f"{BASE}/share/f.txt?{with_param(token, 'si', 'q')}")
    assert refused(inp, route, policies).code == "AuthenticationFailed"


# --- redaction ------------------------------------------------------------------------------------


def test_redact_query() -> None:
    token = account_sas()
    redacted = redact_query(f"comp=list&{token}")
    sig_part = next(part for part in token.split("&") if part.startswith("sig="))
    assert sig_part not in redacted and param(token, "sig") not in redacted
    assert "sig=REDACTED" in redacted and "comp=list" in redacted and "sp=rl" in redacted
    assert redact_query("SIG=abc&x=1") == "SIG=REDACTED&x=1"
    assert redact_query("x=1") == "x=1"
    assert redact_query("") == ""

    plain = "conn=DefaultEndpointsProtocol=http;AccountName=a;AccountKey=abc+/==;FileEndpoint=x"
    assert redact_query(plain) == (
        "conn=DefaultEndpointsProtocol=http;AccountName=a;AccountKey=REDACTED;FileEndpoint=x"
    )
    encoded = quote(plain, safe="=")
    assert "AccountKey=abc%2B%2F==%3B" in encoded
    assert redact_query(encoded) == encoded.replace("AccountKey=abc%2B%2F==", "AccountKey=REDACTED")
    assert redact_query("accountkey%3Dsecret%3Bx") == "accountkey%3DREDACTED%3Bx"
