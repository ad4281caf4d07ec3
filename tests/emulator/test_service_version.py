"""``x-ms-version`` as Azure Files judges it, and the share root probed as a file, over raw HTTP.

Requests are signed with Shared Key here (the Azure SDK will not send a version it does not
know), so they reach the version check exactly as a real client's would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import re
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from urllib.parse import urlsplit

import pytest
from azure.storage.fileshare import ShareClient, ShareSasPermissions, generate_share_sas
from azure.storage.fileshare._serialize import _SUPPORTED_API_VERSIONS

from shareferry.emulator import RunningEmulator
from shareferry.emulator.auth import shared_key_strings_to_sign
from shareferry.emulator.wire import NEWEST_VERSION
from tests.support.emulator_admin import service_client

SHARE = "share1"

#: What real clients send: the Python SDK's default, AzCopy 10.32.2 and 10.18.1, rclone 1.75.2, and the
#: emulator's own Copy File source reads; the core's lean request path sends the SDK's version.
CLIENT_VERSIONS = {
    "python-sdk-default": _SUPPORTED_API_VERSIONS[-1],
    "python-sdk-oldest": _SUPPORTED_API_VERSIONS[0],
    "azcopy-10.32.2": "2025-07-05",
    "azcopy-10.18.1": "2020-10-02",
    "rclone-1.75.2": "2026-06-06",
    "copy-source": "2021-08-06",
    "first-files-version": "2014-02-14",
}

BAD_VERSIONS = {
    "garbage": "garbage",
    "empty": "",
    "no-day-padding": "2026-10-6",
    "month-13": "2026-13-01",
    "february-30": "2025-02-30",
    "suffix": "2026-10-06x",
    "newer-than-emulator": "2099-01-01",
    "day-after-newest": "2026-10-07",
    "before-files-existed": "2013-08-15",
}


def _request(
    emulator: RunningEmulator,
    method: str,
    path: str,
    *,
    version: str | None,
    signed: bool = True,
    query: str = "",
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Send ``METHOD /<account>/<path>?query`` with the given version (None: no header)."""
    account = emulator.account()
    raw_path = f"/{account.name}/{path}"
    headers = {"x-ms-date": formatdate(usegmt=True)}
    if version is not None:
        headers["x-ms-version"] = version
    if signed:
        params = dict(part.split("=", 1) for part in query.split("&") if part)
        to_sign = shared_key_strings_to_sign(method, raw_path, params, headers, account.name)[0]
        digest = hmac.new(base64.b64decode(account.key), to_sign.encode(), hashlib.sha256).digest()
        headers["Authorization"] = f"SharedKey {account.name}:{base64.b64encode(digest).decode()}"
    netloc = urlsplit(emulator.root).netloc
    connection = http.client.HTTPConnection(netloc, timeout=10)
    try:
        connection.request(method, raw_path + (f"?{query}" if query else ""), headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.fixture
def share(emulator: RunningEmulator) -> ShareClient:
    share = service_client(emulator).create_share(SHARE)
    share.get_file_client("f.txt").upload_file(b"hello")
    return share


@pytest.mark.parametrize("version", CLIENT_VERSIONS.values(), ids=CLIENT_VERSIONS.keys())
def test_versions_real_clients_send_are_served(
    emulator: RunningEmulator, share: ShareClient, version: str
) -> None:
    status, headers, body = _request(emulator, "GET", f"{SHARE}/f.txt", version=version)
    assert status == 200, body
    assert body == b"hello"
    assert headers["x-ms-version"] == version


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("version", BAD_VERSIONS.values(), ids=BAD_VERSIONS.keys())
def test_bad_versions_are_400_invalid_header_value_naming_the_header(
    emulator: RunningEmulator, share: ShareClient, version: str, method: str
) -> None:
    status, headers, body = _request(emulator, method, f"{SHARE}/f.txt", version=version)
    assert status == 400
    assert headers["x-ms-error-code"] == "InvalidHeaderValue"
    if method == "HEAD":
        assert body == b""
        return
    assert b"<Code>InvalidHeaderValue</Code>" in body
    assert b"<HeaderName>x-ms-version</HeaderName>" in body
    assert f"<HeaderValue>{version}</HeaderValue>".encode() in body


def test_newest_version_is_the_python_sdk_default() -> None:
    assert _SUPPORTED_API_VERSIONS[-1] == NEWEST_VERSION


def test_signed_request_without_version_is_400_missing_required_header(
    emulator: RunningEmulator, share: ShareClient
) -> None:
    status, headers, body = _request(emulator, "GET", f"{SHARE}/f.txt", version=None)
    assert status == 400
    assert headers["x-ms-error-code"] == "MissingRequiredHeader"
    assert b"<HeaderName>x-ms-version</HeaderName>" in body


def test_sas_request_without_version_is_served(emulator: RunningEmulator, share: ShareClient) -> None:
    account = emulator.account()
    sas = generate_share_sas(
        account.name,
        SHARE,
        account.key,
        ShareSasPermissions(read=True),
        datetime.now(UTC) + timedelta(hours=1),
    )
    status, _, body = _request(emulator, "GET", f"{SHARE}/f.txt", version=None, signed=False, query=sas)
    assert (status, body) == (200, b"hello")


# ---- the share root probed as a file (rclone's "is the root a file?" check) ---------------------


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_share_root_with_trailing_slash_is_a_directory_not_a_file(
    emulator: RunningEmulator, share: ShareClient, method: str
) -> None:
    status, headers, body = _request(emulator, method, f"{SHARE}/", version=NEWEST_VERSION)
    assert status == 404
    assert headers["x-ms-error-code"] == "ResourceNotFound"
    if method == "GET":
        assert re.search(rb"<Code>ResourceNotFound</Code>", body)


def test_missing_share_root_probe_is_share_not_found(emulator: RunningEmulator) -> None:
    status, headers, _ = _request(emulator, "HEAD", "nosuchshare/", version=NEWEST_VERSION)
    assert (status, headers["x-ms-error-code"]) == (404, "ShareNotFound")


def test_share_root_without_trailing_slash_or_restype_stays_invalid_uri(
    emulator: RunningEmulator, share: ShareClient
) -> None:
    status, headers, _ = _request(emulator, "HEAD", SHARE, version=NEWEST_VERSION)
    assert (status, headers["x-ms-error-code"]) == (400, "InvalidUri")
