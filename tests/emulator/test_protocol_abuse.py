"""A standing campaign of protocol abuse against the emulator, over raw HTTP.

Each case sends one hostile request (a bad name, a bad header, a malformed XML body, a body that
stalls or is cut short, bytes that are not HTTP at all) and checks what an Azure client would
see: the status, the ``x-ms-error-code`` header and, but for HEAD, the XML error document with
the same code. After every case the emulator must still serve a normal request with the right
bytes, hold no stray file, and never have answered a 5xx. Requests are authorised by an account
SAS in the query, so they need no signing and reach the operation's own checks.

Add a case here whenever a new kind of abuse is found; keep each one quick.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareClient,
    ShareServiceClient,
    generate_account_sas,
)

from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.support.emulator_admin import counters

ACCOUNT = "devstoreaccount1"
SHARE = "abuse"
FILE = "f.bin"
CONTENT = bytes(range(256)) * 4  # 1024 bytes the campaign must never change
VERSION = "2026-10-06"
BODY_TIMEOUT = 1.0
MiB = 1024 * 1024
TiB = 1024**4

CREATE = {"x-ms-type": "file", "x-ms-content-length": "0"}


@dataclass(frozen=True)
class World:
    emulator: RunningEmulator
    share: ShareClient
    sas: str


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with RunningEmulator(EmulatorConfig(body_read_timeout=BODY_TIMEOUT)) as emulator:
        account = emulator.account()
        service = ShareServiceClient(
            emulator.account_url(), credential={"account_name": account.name, "account_key": account.key}
        )
        share = service.create_share(SHARE)
        share.get_file_client(FILE).upload_file(CONTENT)
        share.create_directory("d")
        share.create_directory("ok")  # accepted cases create their files in here
        sas = generate_account_sas(
            account.name,
            account.key,
            ResourceTypes(service=True, container=True, object=True),
            AccountSasPermissions(read=True, write=True, delete=True, list=True, create=True),
            datetime.now(UTC) + timedelta(hours=2),
        )
        yield World(emulator, share, sas)


def still_serving(world: World) -> None:
    """The emulator answers a normal request rightly, holds no stray file and never sent a 5xx."""
    client = world.share.get_file_client(FILE)
    assert hashlib.md5(client.download_file().readall()).digest() == hashlib.md5(CONTENT).digest()
    assert sorted(entry["name"] for entry in world.share.list_directories_and_files()) == ["d", FILE, "ok"]
    assert list(world.share.list_directories_and_files("d")) == []
    statuses = {
        status
        for operation in counters(world.emulator)["operations"].values()
        for status in operation["by_status"]
    }
    assert not [status for status in statuses if status.startswith("5")], statuses


def check_error(status: int, headers: http.client.HTTPMessage, body: bytes, case: Case) -> None:
    assert status == case.status, body[:300]
    assert headers.get("x-ms-error-code") == case.code, body[:300]
    if case.code is None:
        return
    assert headers.get("x-ms-request-id")
    if case.method == "HEAD":
        assert body == b""
    else:
        assert headers.get("Content-Type", "").startswith("application/xml")
        assert f"<Code>{case.code}</Code>".encode() in body


# ---- requests an HTTP client can send ---------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile request: ``path`` follows ``/<account>/``, raw (already percent-encoded)."""

    id: str
    method: str
    path: str
    status: int
    code: str | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    chunked: bool = False
    account: str = ACCOUNT


def name_case(id: str, raw_name: str, status: int, code: str | None, *, method: str = "PUT") -> Case:
    headers = CREATE if method == "PUT" else {}
    return Case(id, method, f"{SHARE}/{raw_name}", status, code, headers)


def deep(levels: int, leaf: str = "f") -> str:
    return "/".join(["x"] * levels + [leaf])


def xml(body: str) -> bytes:
    return body.encode()


def service_properties(inner: str) -> bytes:
    return xml(
        f"<?xml version='1.0' encoding='utf-8'?><StorageServiceProperties>{inner}</StorageServiceProperties>"
    )


METRICS_OFF = "<Version>1.0</Version><Enabled>false</Enabled>"
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><StorageServiceProperties><Cors><CorsRule>'
    "<AllowedOrigins>&lol3;</AllowedOrigins><AllowedMethods>GET</AllowedMethods><MaxAgeInSeconds>1"
    "</MaxAgeInSeconds><ExposedHeaders /><AllowedHeaders /></CorsRule></Cors></StorageServiceProperties>"
)


def cors_rules(count: int) -> bytes:
    rule = (
        "<CorsRule><AllowedOrigins>*</AllowedOrigins><AllowedMethods>GET</AllowedMethods>"
        "<MaxAgeInSeconds>1</MaxAgeInSeconds><ExposedHeaders /><AllowedHeaders /></CorsRule>"
    )
    return service_properties(f"<Cors>{rule * count}</Cors>")


def acl(inner: str) -> bytes:
    return xml(f"<?xml version='1.0' encoding='utf-8'?><SignedIdentifiers>{inner}</SignedIdentifiers>")


def identifier(id: str) -> str:
    return f"<SignedIdentifier><Id>{id}</Id><AccessPolicy><Permission>r</Permission></AccessPolicy></SignedIdentifier>"


SET_PROPERTIES = "?restype=service&comp=properties"
SET_ACL = f"{SHARE}?restype=share&comp=acl"
PUT_RANGE = f"{SHARE}/{FILE}?comp=range"


def put_range(id: str, status: int, code: str, *, range: str | None, body: bytes, **headers: str) -> Case:
    sent = {"x-ms-write": "update", **headers}
    if range is not None:
        sent["x-ms-range"] = range
    return Case(id, "PUT", PUT_RANGE, status, code, sent, body)


def md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


CASES = [
    # -- hostile names: control characters, Azure's invalid characters, bad escapes
    *[
        name_case(f"control-{code:02x}", f"a%{code:02X}b", 400, "InvalidResourceName")
        for code in (0x00, 0x01, 0x07, 0x09, 0x0A, 0x0D, 0x1B, 0x1F)
    ],
    *[
        name_case(f"invalid-char-{escape}", f"a%{escape}b", 400, "InvalidResourceName")
        for escape in ("22", "5C", "3A", "7C", "3C", "3E", "2A", "3F")
    ],
    name_case("newline-head", "a%0Ab", 400, "InvalidResourceName", method="HEAD"),
    name_case("newline-get", "a%0Ab", 400, "InvalidResourceName", method="GET"),
    name_case("newline-in-directory", "d%0A/f", 400, "InvalidResourceName"),
    *[
        name_case(f"bad-utf8-{escape}", f"a{escape}b", 400, "InvalidUri")
        for escape in ("%FF", "%C3", "%C0%AF", "%ED%A0%80", "%F8%88%80%80%80")
    ],
    name_case("encoded-slash-is-a-separator", "nowhere%2Ff", 404, "ParentNotFound"),
    # -- dot segments are never resolved: they are names Azure refuses
    name_case("dot", ".", 400, "InvalidResourceName"),
    name_case("dot-dot", "..", 400, "InvalidResourceName"),
    name_case("dot-in-path", "d/./f", 400, "InvalidResourceName"),
    name_case("dot-dot-escapes-nothing", f"d/../{FILE}", 400, "InvalidResourceName"),
    name_case("dots-only", "...", 400, "InvalidResourceName"),
    name_case("encoded-dot-dot", "%2E%2E", 400, "InvalidResourceName"),
    name_case("dot-dot-get", f"d/../{FILE}", 400, "InvalidResourceName", method="GET"),
    # -- reserved device names
    *[
        name_case(f"reserved-{name}", name, 400, "InvalidResourceName")
        for name in ("CON", "nul", "Lpt9", "clock$")
    ],
    # -- lengths: 255 per segment, 2048 per path, 250 levels of subdirectories
    name_case("segment-255", "ok/" + "a" * 255, 201, None),
    name_case("segment-256", "ok/" + "a" * 256, 400, "OutOfRangeInput"),
    name_case("segment-256-encoded", "ok/" + "%C3%A9" * 256, 400, "OutOfRangeInput"),
    name_case("path-2048", "/".join(["p" * 254] * 8) + "/" + "f" * 8, 404, "ParentNotFound"),
    name_case("path-2049", "/".join(["p" * 254] * 8) + "/" + "f" * 9, 400, "InvalidFileOrDirectoryPathName"),
    name_case("path-2048-encoded", "/".join(["%C3%A9" * 254] * 8) + "/" + "f" * 8, 404, "ParentNotFound"),
    name_case(
        "path-2049-encoded",
        "/".join(["%C3%A9" * 254] * 8) + "/" + "f" * 9,
        400,
        "InvalidFileOrDirectoryPathName",
    ),
    name_case("request-line-over-32k", "/".join(["p" * 200] * 170), 400, "InvalidInput"),
    name_case("depth-250", deep(250), 404, "ParentNotFound"),
    name_case("depth-251", deep(251), 400, "InvalidFileOrDirectoryPathName"),
    Case(
        "directory-depth-251",
        "PUT",
        f"{SHARE}/{deep(250, 'x')}?restype=directory",
        400,
        "InvalidFileOrDirectoryPathName",
    ),
    # -- shares and accounts
    Case("share-newline-get", "GET", f"{SHARE}%0A/{FILE}", 404, "ShareNotFound"),
    Case("share-newline-create", "PUT", "bad%0Aname?restype=share", 400, "InvalidResourceName"),
    Case("share-upper-create", "PUT", "UPPER?restype=share", 400, "InvalidResourceName"),
    Case("share-bad-utf8", "PUT", "ab%FFc?restype=share", 400, "InvalidUri"),
    Case("missing-file-get", "GET", f"{SHARE}/missing", 404, "ResourceNotFound"),
    Case("missing-file-head", "HEAD", f"{SHARE}/missing", 404, "ResourceNotFound"),
    Case("unknown-account", "GET", f"{SHARE}/{FILE}", 403, "AuthenticationFailed", account="nosuchacct"),
    # -- x-ms-content-length
    *[
        Case(
            f"content-length-{id}",
            "PUT",
            f"{SHARE}/n",
            400,
            code,
            {"x-ms-type": "file", "x-ms-content-length": value},
        )
        for id, value, code in (
            ("negative", "-1", "OutOfRangeInput"),
            ("garbage", "abc", "InvalidHeaderValue"),
            ("plus-sign", "+5", "InvalidHeaderValue"),
            ("underscore", "5_0", "InvalidHeaderValue"),
            ("fraction", "1.5", "InvalidHeaderValue"),
            ("hex", "0x10", "InvalidHeaderValue"),
            ("4tib-plus-one", str(4 * TiB + 1), "OutOfRangeInput"),
            ("30-digits", "9" * 30, "OutOfRangeInput"),
            ("5000-digits", "9" * 5000, "OutOfRangeInput"),
            ("negative-5000-digits", "-" + "9" * 5000, "OutOfRangeInput"),
        )
    ],
    Case("content-length-missing", "PUT", f"{SHARE}/n", 400, "MissingRequiredHeader", {"x-ms-type": "file"}),
    Case("type-missing", "PUT", f"{SHARE}/n", 400, "MissingRequiredHeader", {"x-ms-content-length": "1"}),
    Case(
        "type-directory", "PUT", f"{SHARE}/n", 400, "InvalidHeaderValue", {**CREATE, "x-ms-type": "directory"}
    ),
    Case("create-body-larger-than-file", "PUT", f"{SHARE}/n", 400, "InvalidHeaderValue", CREATE, b"xy"),
    # -- x-ms-range and put range bodies
    put_range("range-garbage", 400, "InvalidHeaderValue", range="bytes=abc", body=b"x"),
    put_range("range-reversed", 416, "InvalidRange", range="bytes=5-3", body=b"x"),
    put_range("range-multiple", 400, "InvalidHeaderValue", range="bytes=0-1,2-3", body=b"xx"),
    put_range("range-unit", 400, "InvalidHeaderValue", range="items=0-1", body=b"xx"),
    put_range("range-suffix", 400, "InvalidHeaderValue", range="bytes=-5", body=b"x"),
    put_range("range-open-end", 400, "InvalidHeaderValue", range="bytes=0-", body=b"x"),
    put_range("range-missing", 400, "MissingRequiredHeader", range=None, body=b"x"),
    put_range("range-past-end", 416, "InvalidRange", range="bytes=1020-1027", body=b"12345678"),
    put_range("range-far-past-end", 416, "InvalidRange", range=f"bytes={4 * TiB}-{4 * TiB}", body=b"1"),
    put_range("body-shorter-than-range", 400, "InvalidHeaderValue", range="bytes=0-9", body=b"12345"),
    put_range(
        "write-append", 400, "InvalidHeaderValue", range="bytes=0-0", body=b"x", **{"x-ms-write": "append"}
    ),
    put_range("range-over-4mib", 413, "RequestBodyTooLarge", range=f"bytes=0-{4 * MiB}", body=b"x"),
    put_range(
        "body-over-4mib", 413, "RequestBodyTooLarge", range=f"bytes=0-{4 * MiB}", body=b"x" * (4 * MiB + 1)
    ),
    Case(
        "chunked-body-over-4mib",
        "PUT",
        PUT_RANGE,
        413,
        "RequestBodyTooLarge",
        {"x-ms-write": "update", "x-ms-range": "bytes=0-1023"},
        b"x" * (4 * MiB + 1),
        chunked=True,
    ),
    put_range(
        "md5-mismatch", 400, "Md5Mismatch", range="bytes=0-3", body=b"abcd", **{"Content-MD5": md5(b"dcba")}
    ),
    put_range(
        "md5-garbage", 400, "InvalidMd5", range="bytes=0-3", body=b"abcd", **{"Content-MD5": "!!not-base64!!"}
    ),
    put_range(
        "md5-8-bytes", 400, "InvalidMd5", range="bytes=0-3", body=b"abcd", **{"Content-MD5": "AAAAAAAAAAA="}
    ),
    Case(
        "content-md5-property-garbage",
        "PUT",
        f"{SHARE}/n",
        400,
        "InvalidHeaderValue",
        {**CREATE, "x-ms-content-md5": "zz"},
    ),
    Case("get-range-past-end", "GET", f"{SHARE}/{FILE}", 416, "InvalidRange", {"x-ms-range": "bytes=5000-"}),
    # -- x-ms-version
    *[
        Case(f"version-{id}", "GET", f"{SHARE}/{FILE}", 400, "InvalidHeaderValue", {"x-ms-version": value})
        for id, value in (
            ("garbage", "garbage"),
            ("month-13", "2026-13-01"),
            ("day-32", "2026-01-32"),
            ("no-dashes", "20261006"),
            ("suffix", "2026-10-06x"),
            ("empty", ""),
        )
    ],
    # -- query parameters and verbs
    Case("comp-unknown", "PUT", f"{SHARE}/{FILE}?comp=explode", 400, "InvalidQueryParameterValue"),
    Case("restype-unknown", "GET", f"{SHARE}?restype=bucket", 400, "InvalidQueryParameterValue"),
    Case("query-unknown", "GET", f"{SHARE}/{FILE}?surprise=1", 400, "InvalidQueryParameterValue"),
    Case("verb-patch", "PATCH", f"{SHARE}/{FILE}", 405, "UnsupportedHttpVerb"),
    Case(
        "maxresults-zero",
        "GET",
        f"{SHARE}?restype=directory&comp=list&maxresults=0",
        400,
        "InvalidQueryParameterValue",
    ),
    Case(
        "maxresults-garbage",
        "GET",
        f"{SHARE}?restype=directory&comp=list&maxresults=x",
        400,
        "InvalidQueryParameterValue",
    ),
    # -- other headers
    Case(
        "attributes-bogus",
        "PUT",
        f"{SHARE}/n",
        400,
        "InvalidHeaderValue",
        {**CREATE, "x-ms-file-attributes": "Shiny"},
    ),
    Case(
        "creation-time-garbage",
        "PUT",
        f"{SHARE}/n",
        400,
        "InvalidHeaderValue",
        {**CREATE, "x-ms-file-creation-time": "yesterday"},
    ),
    Case(
        "metadata-over-8k",
        "PUT",
        f"{SHARE}/n",
        400,
        "MetadataTooLarge",
        {**CREATE, "x-ms-meta-big": "v" * 8190},
    ),
    Case(
        "metadata-name-digit", "PUT", f"{SHARE}/n", 400, "InvalidMetadata", {**CREATE, "x-ms-meta-1abc": "v"}
    ),
    Case(
        "permission-key-unknown",
        "PUT",
        f"{SHARE}/n",
        400,
        "FileInvalidPermissionKey",
        {**CREATE, "x-ms-file-permission-key": "1*2"},
    ),
    Case("quota-negative", "PUT", "quota1?restype=share", 400, "OutOfRangeInput", {"x-ms-share-quota": "-1"}),
    Case(
        "quota-garbage",
        "PUT",
        "quota2?restype=share",
        400,
        "InvalidHeaderValue",
        {"x-ms-share-quota": "lots"},
    ),
    Case(
        "lease-action-bogus",
        "PUT",
        f"{SHARE}/{FILE}?comp=lease",
        400,
        "InvalidHeaderValue",
        {"x-ms-lease-action": "steal"},
    ),
    Case(
        "lease-duration-15",
        "PUT",
        f"{SHARE}/{FILE}?comp=lease",
        400,
        "InvalidHeaderValue",
        {"x-ms-lease-action": "acquire", "x-ms-lease-duration": "15"},
    ),
    Case("rename-no-source", "PUT", f"{SHARE}/n?comp=rename", 400, "MissingRequiredHeader"),
    Case(
        "rename-source-bad-utf8",
        "PUT",
        f"{SHARE}/n?comp=rename",
        400,
        "InvalidHeaderValue",
        {"x-ms-file-rename-source": f"{SHARE}/a%FF"},
    ),
    Case(
        "rename-source-other-share",
        "PUT",
        f"{SHARE}/n?comp=rename",
        400,
        "InvalidHeaderValue",
        {"x-ms-file-rename-source": f"http://127.0.0.1/{ACCOUNT}/other/{FILE}"},
    ),
    Case(
        "rename-source-newline",
        "PUT",
        f"{SHARE}/n?comp=rename",
        400,
        "InvalidResourceName",
        {"x-ms-file-rename-source": f"{SHARE}/a%0Ab"},
    ),
    Case(
        "rename-readonly-without-replace",
        "PUT",
        f"{SHARE}/n?comp=rename",
        400,
        "InvalidHeaderValue",
        {"x-ms-file-rename-source": f"{SHARE}/{FILE}", "x-ms-file-rename-ignore-readonly": "true"},
    ),
    Case(
        "copy-source-not-a-url",
        "PUT",
        f"{SHARE}/n",
        400,
        "InvalidHeaderValue",
        {**CREATE, "x-ms-copy-source": "/etc/passwd"},
    ),
    # -- malformed or non-schema XML bodies
    *[
        Case(f"service-properties-{id}", "PUT", SET_PROPERTIES, 400, "InvalidXmlDocument", {}, body)
        for id, body in (
            ("empty", b""),
            ("not-xml", b"not xml at all"),
            ("unclosed", service_properties("<HourMetrics>")[:-26]),
            ("wrong-root", xml("<Wrong/>")),
            ("unknown-element", service_properties("<Surprise/>")),
            (
                "enabled-maybe",
                service_properties(
                    "<HourMetrics><Version>1.0</Version><Enabled>maybe</Enabled></HourMetrics>"
                ),
            ),
            (
                "days-0",
                service_properties(
                    f"<HourMetrics>{METRICS_OFF}<RetentionPolicy><Enabled>true</Enabled><Days>0</Days></RetentionPolicy></HourMetrics>"
                ),
            ),
            (
                "days-366",
                service_properties(
                    f"<MinuteMetrics>{METRICS_OFF}<RetentionPolicy><Enabled>true</Enabled><Days>366</Days></RetentionPolicy></MinuteMetrics>"
                ),
            ),
            (
                "days-garbage",
                service_properties(
                    "<ShareDeleteRetentionPolicy><Enabled>true</Enabled><Days>week</Days></ShareDeleteRetentionPolicy>"
                ),
            ),
            ("six-cors-rules", cors_rules(6)),
            ("billion-laughs", BILLION_LAUGHS.encode()),
            (
                "twice",
                service_properties(
                    f"<HourMetrics>{METRICS_OFF}</HourMetrics><HourMetrics>{METRICS_OFF}</HourMetrics>"
                ),
            ),
            ("attribute", service_properties(f'<HourMetrics evil="1">{METRICS_OFF}</HourMetrics>')),
            ("text-in-root", service_properties("loose text")),
            ("binary", b"\xff\xfe\x00<\x00S\x00"),
            (
                "nested-value",
                service_properties("<Cors><CorsRule><AllowedOrigins><x/></AllowedOrigins></CorsRule></Cors>"),
            ),
        )
    ],
    *[
        Case(f"share-acl-{id}", "PUT", SET_ACL, 400, "InvalidXmlDocument", {}, body)
        for id, body in (
            ("wrong-root", xml("<x/>")),
            ("unclosed", acl(identifier("a"))[:-10]),
            ("six-policies", acl("".join(identifier(f"id{i}") for i in range(6)))),
            ("no-id", acl("<SignedIdentifier><AccessPolicy /></SignedIdentifier>")),
            ("id-65", acl(identifier("i" * 65))),
            ("unknown-child", acl("<SignedIdentifier><Id>a</Id><Bogus /></SignedIdentifier>")),
            ("unknown-element", acl("<Bogus />")),
            ("doctype", xml('<!DOCTYPE x [<!ENTITY e "e">]><SignedIdentifiers />')),
        )
    ],
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_hostile_request_gets_azures_error(world: World, case: Case) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", world.emulator.port, timeout=30)
    separator = "&" if "?" in case.path else "?"
    connection.putrequest(
        case.method, f"/{case.account}/{case.path}{separator}{world.sas}", skip_accept_encoding=True
    )
    headers = {"x-ms-version": VERSION, **case.headers}
    for name, value in headers.items():
        connection.putheader(name, value)
    if case.chunked:
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        assert case.body is not None
        for start in range(0, len(case.body), 64 * 1024):
            piece = case.body[start : start + 64 * 1024]
            try:
                connection.send(f"{len(piece):X}\r\n".encode() + piece + b"\r\n")
            except OSError:
                break  # the server answered and closed: read that answer
        else:
            connection.send(b"0\r\n\r\n")
    else:
        if case.body is not None:
            connection.putheader("Content-Length", str(len(case.body)))
        connection.endheaders(case.body)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    check_error(response.status, response.headers, body, case)
    still_serving(world)


# ---- bytes that are not a well-formed request --------------------------------------------------------


@dataclass(frozen=True)
class RawCase:
    """Raw bytes on a fresh connection, and either the answer (status, code) or a cut (None)."""

    id: str
    request: bytes
    status: int | None
    code: str | None = None
    close_after_sending: bool = False  # the client goes away at once (a truncated request)
    then: bytes = b""  # sent a moment later, once the operation is reading the body


def head(method: str, path: str, *extra: str) -> bytes:
    lines = [f"{method} /{ACCOUNT}/{path} HTTP/1.1", "Host: 127.0.0.1", f"x-ms-version: {VERSION}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


RAW_CASES = [
    RawCase("root-path", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "InvalidUri"),
    RawCase(
        "absolute-form-target", b"GET http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "InvalidUri"
    ),
    RawCase(
        "control-char-in-request-line",
        b"GET /" + ACCOUNT.encode() + b"/a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
        400,
        "InvalidUri",
    ),
    RawCase(
        "newline-in-request-line",
        b"GET /" + ACCOUNT.encode() + b"/a\nb HTTP/1.1\r\nHost: x\r\n\r\n",
        400,
        "InvalidInput",
    ),
    RawCase("space-in-path", b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n", 400, "InvalidInput"),
    RawCase(
        "bad-method", b"G(T /" + ACCOUNT.encode() + b"/x HTTP/1.1\r\nHost: x\r\n\r\n", 400, "InvalidHttpVerb"
    ),
    RawCase("tls-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32), 400, "InvalidHttpVerb"),
    RawCase(
        "http-version-9", b"GET /" + ACCOUNT.encode() + b"/x HTTP/9.9\r\nHost: x\r\n\r\n", 400, "InvalidInput"
    ),
    RawCase(
        "header-line-over-32k",
        head("GET", f"{SHARE}/{FILE}", "x-ms-meta-a: " + "v" * 40000),
        400,
        "InvalidInput",
    ),
    RawCase("header-without-colon", head("GET", f"{SHARE}/{FILE}", "Bad Header"), 400, "InvalidInput"),
    RawCase("content-length-garbage", head("PUT", f"{SHARE}/n", "Content-Length: abc"), 400, "InvalidInput"),
    RawCase("content-length-negative", head("PUT", f"{SHARE}/n", "Content-Length: -1"), 400, "InvalidInput"),
    RawCase(
        "content-length-and-chunked",
        head("PUT", f"{SHARE}/n", "Content-Length: 5", "Transfer-Encoding: chunked")
        + b"5\r\nhello\r\n0\r\n\r\n",
        400,
        "InvalidInput",
    ),
    RawCase(
        "chunk-size-garbage",
        head(
            "PUT",
            f"{PUT_RANGE}&{{sas}}",
            "x-ms-write: update",
            "x-ms-range: bytes=0-3",
            "Transfer-Encoding: chunked",
        )
        + b"zz\r\n",
        400,
        "InvalidInput",
    ),
    # bodies that stall: the connection is cut after the body read timeout, nothing is applied
    RawCase(
        "stalled-put-range",
        head(
            "PUT",
            f"{PUT_RANGE}&{{sas}}",
            "x-ms-write: update",
            "x-ms-range: bytes=0-1023",
            "Content-Length: 1024",
        )
        + b"x" * 100,
        None,
    ),
    RawCase(
        "stalled-create-with-body",
        head("PUT", f"{SHARE}/n?{{sas}}", "x-ms-type: file", "x-ms-content-length: 10", "Content-Length: 10")
        + b"abc",
        None,
    ),
    RawCase(
        "stalled-service-properties",
        head("PUT", f"{SET_PROPERTIES}&{{sas}}", "Content-Length: 500") + b"<Storage",
        None,
    ),
    RawCase(
        "stalled-share-acl",
        head("PUT", f"{SET_ACL}&{{sas}}", "Content-Length: 500") + b"<SignedIdentifiers>",
        None,
    ),
    RawCase(
        "stalled-chunked",
        head(
            "PUT",
            f"{PUT_RANGE}&{{sas}}",
            "x-ms-write: update",
            "x-ms-range: bytes=0-3",
            "Transfer-Encoding: chunked",
        )
        + b"4\r\nab",
        None,
    ),
    RawCase(
        "stalled-before-any-body",
        head(
            "PUT", f"{PUT_RANGE}&{{sas}}", "x-ms-write: update", "x-ms-range: bytes=0-3", "Content-Length: 4"
        ),
        None,
    ),
    # requests cut short by the client
    RawCase(
        "truncated-put-range",
        head(
            "PUT",
            f"{PUT_RANGE}&{{sas}}",
            "x-ms-write: update",
            "x-ms-range: bytes=0-1023",
            "Content-Length: 1024",
        )
        + b"y" * 512,
        None,
        close_after_sending=True,
    ),
    RawCase(
        "truncated-put-range-later",
        head(
            "PUT",
            f"{PUT_RANGE}&{{sas}}",
            "x-ms-write: update",
            "x-ms-range: bytes=0-1023",
            "Content-Length: 1024",
        )
        + b"y" * 512,
        None,
        close_after_sending=True,
        then=b"z" * 100,
    ),
    RawCase(
        "chunk-size-garbage-later",
        head(
            "PUT",
            f"{PUT_RANGE}&{{sas}}",
            "x-ms-write: update",
            "x-ms-range: bytes=0-3",
            "Transfer-Encoding: chunked",
        )
        + b"2\r\nab\r\n",
        None,
        then=b"zz\r\n",
    ),
    RawCase(
        "truncated-headers",
        head("PUT", f"{SHARE}/n?{{sas}}", "x-ms-type: file")[:-10],
        None,
        close_after_sending=True,
    ),
    RawCase("truncated-request-line", b"PUT /" + ACCOUNT.encode() + b"/abu", None, close_after_sending=True),
    RawCase("only-blank-lines", b"\r\n\r\n\r\n", None, close_after_sending=True),
]


def read_answer(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    start = time.monotonic()
    sock.settimeout(limit)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
            if b"\r\n\r\n" in received and _complete(received):
                break
    except (ConnectionResetError, TimeoutError):
        pass
    return received, time.monotonic() - start


def _complete(received: bytes) -> bool:
    head_part, _, body = received.partition(b"\r\n\r\n")
    for line in head_part.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


@pytest.mark.parametrize("case", RAW_CASES, ids=[case.id for case in RAW_CASES])
def test_bytes_that_are_not_a_good_request_do_no_harm(world: World, case: RawCase) -> None:
    request = case.request.replace(b"{sas}", world.sas.encode())
    with socket.create_connection(("127.0.0.1", world.emulator.port)) as sock:
        sock.sendall(request)
        if case.then:
            time.sleep(0.2)
            sock.sendall(case.then)
        if case.close_after_sending:
            sock.shutdown(socket.SHUT_WR)
        answer, waited = read_answer(sock, limit=BODY_TIMEOUT + 10)
    if case.status is None:
        if not case.close_after_sending:
            assert answer == b"", answer[:300]  # cut, not answered
            assert waited < BODY_TIMEOUT + 5
    else:
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.split(b" ")[1] == str(case.status).encode(), answer[:300]
        header_block, _, body = rest.partition(b"\r\n\r\n")
        headers = http.client.parse_headers(io.BytesIO(header_block + b"\r\n\r\n"))
        check_error(case.status, headers, body, Case(case.id, "GET", "", case.status, case.code))
    still_serving(world)
