"""Authentication and authorisation through the real synchronous Azure SDK over HTTP.

Shared Key (right and wrong keys), account SAS, share and file service SAS, and what each one is
refused, with the status and error code the SDK's exceptions carry.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core import PipelineClient
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.rest import HttpRequest
from azure.storage.fileshare import (
    AccountSasPermissions,
    FileSasPermissions,
    ResourceTypes,
    Services,
    ShareClient,
    ShareSasPermissions,
    ShareServiceClient,
    generate_account_sas,
    generate_file_sas,
    generate_share_sas,
)

from shareferry.emulator import RunningEmulator

ALL_TYPES = ResourceTypes(service=True, container=True, object=True)


def _in(hours: float) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


def _account_sas(
    emulator: RunningEmulator,
    permission: str,
    *,
    resource_types: ResourceTypes = ALL_TYPES,
    expiry: datetime | None = None,
    **kwargs: Any,
) -> str:
    account = emulator.account()
    return generate_account_sas(
        account.name,
        account.key,
        resource_types=resource_types,
        permission=AccountSasPermissions.from_string(permission),
        expiry=expiry or _in(1),
        **kwargs,
    )


def _sas_service(emulator: RunningEmulator, sas: str) -> ShareServiceClient:
    return ShareServiceClient(account_url=emulator.account_url(), credential=sas)


@pytest.fixture
def seeded(share: ShareClient) -> ShareClient:
    """``share1`` with ``doc.txt`` and ``dir/sibling.txt``."""
    share.get_file_client("doc.txt").upload_file(b"document")
    share.create_directory("dir")
    share.get_file_client("dir/sibling.txt").upload_file(b"sibling")
    return share


def _read(share: ShareClient, path: str) -> bytes:
    return share.get_file_client(path).download_file().readall()


# ---- Shared Key -------------------------------------------------------------------------------


def test_connection_string_works(emulator: RunningEmulator) -> None:
    service = ShareServiceClient.from_connection_string(emulator.connection_string())
    service.create_share("viaconn")
    assert [s.name for s in service.list_shares()] == ["viaconn"]


def test_named_key_credential_works(emulator: RunningEmulator) -> None:
    account = emulator.account()
    service = ShareServiceClient(
        account_url=emulator.account_url(), credential=AzureNamedKeyCredential(account.name, account.key)
    )
    share = service.create_share("named")
    share.get_file_client("f.txt").upload_file(b"named key")
    assert _read(share, "f.txt") == b"named key"


def test_wrong_account_key_is_403(emulator: RunningEmulator) -> None:
    account = emulator.account()
    wrong = base64.b64encode(os.urandom(64)).decode()
    service = ShareServiceClient(
        account_url=emulator.account_url(), credential={"account_name": account.name, "account_key": wrong}
    )
    with pytest.raises(ClientAuthenticationError) as info:
        list(service.list_shares())
    assert info.value.status_code == 403
    assert info.value.error_code == "AuthenticationFailed"


def test_wrong_key_cannot_write(emulator: RunningEmulator, share: ShareClient) -> None:
    account = emulator.account()
    wrong = base64.b64encode(os.urandom(64)).decode()
    service = ShareServiceClient(
        account_url=emulator.account_url(), credential={"account_name": account.name, "account_key": wrong}
    )
    with pytest.raises(ClientAuthenticationError) as info:
        service.get_share_client(share.share_name).get_file_client("f.txt").upload_file(b"x")
    assert info.value.error_code == "AuthenticationFailed"
    assert list(share.list_directories_and_files()) == []


def test_sdk_refuses_a_client_without_credential(emulator: RunningEmulator) -> None:
    with pytest.raises(ValueError, match="shared key or SAS"):
        ShareServiceClient(account_url=emulator.account_url())


def test_anonymous_request_is_403(emulator: RunningEmulator) -> None:
    # The SDK will not build a client without a credential, so send its request unsigned through
    # azure-core's own pipeline.
    with PipelineClient(base_url=emulator.account_url()) as client:
        response = client.send_request(
            HttpRequest("GET", f"{emulator.account_url()}/?comp=list", headers={"x-ms-version": "2026-10-06"})
        )
    assert response.status_code == 403
    assert response.headers["x-ms-error-code"] == "NoAuthenticationInformation"
    assert b"<Code>NoAuthenticationInformation</Code>" in response.read()


def test_anonymous_file_read_is_403(emulator: RunningEmulator, seeded: ShareClient) -> None:
    with PipelineClient(base_url=emulator.account_url()) as client:
        response = client.send_request(HttpRequest("GET", seeded.get_file_client("doc.txt").url))
    assert response.status_code == 403
    assert response.headers["x-ms-error-code"] == "NoAuthenticationInformation"


# ---- account SAS ------------------------------------------------------------------------------


def test_account_sas_allows_listed_operations(emulator: RunningEmulator) -> None:
    service = _sas_service(emulator, _account_sas(emulator, "rwdlc"))
    share = service.create_share("sasshare")
    share.create_directory("d")
    file = share.get_file_client("d/f.txt")
    file.upload_file(b"account sas")
    assert file.download_file().readall() == b"account sas"
    assert [s.name for s in service.list_shares()] == ["sasshare"]
    assert [e["name"] for e in share.list_directories_and_files("d")] == ["f.txt"]
    file.delete_file()
    share.delete_directory("d")
    service.delete_share("sasshare")
    assert list(service.list_shares()) == []


def test_account_sas_as_sas_credential(emulator: RunningEmulator, seeded: ShareClient) -> None:
    sas = _account_sas(emulator, "rl")
    service = ShareServiceClient(account_url=emulator.account_url(), credential=AzureSasCredential(sas))
    assert _read(service.get_share_client(seeded.share_name), "doc.txt") == b"document"


def test_read_only_account_sas_cannot_upload(emulator: RunningEmulator, seeded: ShareClient) -> None:
    share = _sas_service(emulator, _account_sas(emulator, "rl")).get_share_client(seeded.share_name)
    assert _read(share, "doc.txt") == b"document"
    with pytest.raises(HttpResponseError) as info:
        share.get_file_client("new.txt").upload_file(b"nope")
    assert info.value.status_code == 403
    assert info.value.error_code == "AuthorizationPermissionMismatch"


def test_read_only_account_sas_cannot_delete(emulator: RunningEmulator, seeded: ShareClient) -> None:
    share = _sas_service(emulator, _account_sas(emulator, "rl")).get_share_client(seeded.share_name)
    with pytest.raises(HttpResponseError) as info:
        share.get_file_client("doc.txt").delete_file()
    assert info.value.error_code == "AuthorizationPermissionMismatch"
    assert _read(seeded, "doc.txt") == b"document"


def test_account_sas_without_list_cannot_list(emulator: RunningEmulator, seeded: ShareClient) -> None:
    service = _sas_service(emulator, _account_sas(emulator, "r"))
    with pytest.raises(HttpResponseError) as info:
        list(service.list_shares())
    assert info.value.error_code == "AuthorizationPermissionMismatch"


def test_account_sas_resource_type_mismatch(emulator: RunningEmulator, seeded: ShareClient) -> None:
    sas = _account_sas(emulator, "rl", resource_types=ResourceTypes(service=True, container=True))
    share = _sas_service(emulator, sas).get_share_client(seeded.share_name)
    assert share.get_share_properties().name == seeded.share_name
    with pytest.raises(HttpResponseError) as info:
        _read(share, "doc.txt")
    assert info.value.status_code == 403
    assert info.value.error_code == "AuthorizationResourceTypeMismatch"


def test_account_sas_for_blob_service_only(emulator: RunningEmulator, seeded: ShareClient) -> None:
    sas = _account_sas(emulator, "rl", services=Services(blob=True))
    with pytest.raises(HttpResponseError) as info:
        _read(_sas_service(emulator, sas).get_share_client(seeded.share_name), "doc.txt")
    assert info.value.status_code == 403
    assert info.value.error_code == "AuthorizationServiceMismatch"


def test_expired_sas_is_403(emulator: RunningEmulator, seeded: ShareClient) -> None:
    sas = _account_sas(emulator, "rl", expiry=datetime.now(UTC) - timedelta(minutes=5))
    with pytest.raises(ClientAuthenticationError) as info:
        _read(_sas_service(emulator, sas).get_share_client(seeded.share_name), "doc.txt")
    assert info.value.status_code == 403
    assert info.value.error_code == "AuthenticationFailed"


def test_not_yet_valid_sas_is_403(emulator: RunningEmulator, seeded: ShareClient) -> None:
    sas = _account_sas(emulator, "rl", start=_in(1), expiry=_in(2))
    with pytest.raises(ClientAuthenticationError) as info:
        _read(_sas_service(emulator, sas).get_share_client(seeded.share_name), "doc.txt")
    assert info.value.error_code == "AuthenticationFailed"


def test_tampered_sas_is_403(emulator: RunningEmulator, seeded: ShareClient) -> None:
    sas = _account_sas(emulator, "rl")
    assert "sp=rl" in sas
    sas = sas.replace("sp=rl", "sp=rwdl")
    with pytest.raises(ClientAuthenticationError) as info:
        seeded_via = _sas_service(emulator, sas).get_share_client(seeded.share_name)
        seeded_via.get_file_client("new.txt").upload_file(b"x")
    assert info.value.error_code == "AuthenticationFailed"


def test_https_only_sas_over_http_is_403(emulator: RunningEmulator, seeded: ShareClient) -> None:
    sas = _account_sas(emulator, "rl", protocol="https")
    assert "spr=https" in sas
    with pytest.raises(HttpResponseError) as info:
        _read(_sas_service(emulator, sas).get_share_client(seeded.share_name), "doc.txt")
    assert info.value.status_code == 403
    assert info.value.error_code == "AuthorizationProtocolMismatch"


def test_https_or_http_sas_over_http_works(emulator: RunningEmulator, seeded: ShareClient) -> None:
    sas = _account_sas(emulator, "rl", protocol="https,http")
    assert _read(_sas_service(emulator, sas).get_share_client(seeded.share_name), "doc.txt") == b"document"


def test_sas_with_matching_ip_works(emulator: RunningEmulator, seeded: ShareClient) -> None:
    sas = _account_sas(emulator, "rl", ip="127.0.0.0-127.0.0.255")
    assert _read(_sas_service(emulator, sas).get_share_client(seeded.share_name), "doc.txt") == b"document"


def test_sas_from_other_ip_is_403(emulator: RunningEmulator, seeded: ShareClient) -> None:
    sas = _account_sas(emulator, "rl", ip="10.1.2.3")
    with pytest.raises(HttpResponseError) as info:
        _read(_sas_service(emulator, sas).get_share_client(seeded.share_name), "doc.txt")
    assert info.value.status_code == 403
    assert info.value.error_code == "AuthorizationSourceIPMismatch"


# ---- service SAS: share and file --------------------------------------------------------------


def _share_sas(emulator: RunningEmulator, share_name: str, permission: str) -> str:
    account = emulator.account()
    return generate_share_sas(
        account.name,
        share_name,
        account.key,
        permission=ShareSasPermissions.from_string(permission),
        expiry=_in(1),
    )


def test_share_sas_reads_and_lists_its_share(emulator: RunningEmulator, seeded: ShareClient) -> None:
    share = _sas_service(emulator, _share_sas(emulator, seeded.share_name, "rl")).get_share_client(
        seeded.share_name
    )
    assert _read(share, "dir/sibling.txt") == b"sibling"
    assert [e["name"] for e in share.list_directories_and_files()] == ["dir", "doc.txt"]


def test_share_sas_with_write_can_upload(emulator: RunningEmulator, seeded: ShareClient) -> None:
    share = _sas_service(emulator, _share_sas(emulator, seeded.share_name, "rcw")).get_share_client(
        seeded.share_name
    )
    share.get_file_client("dir/new.txt").upload_file(b"via share sas")
    assert _read(seeded, "dir/new.txt") == b"via share sas"


def test_share_sas_cannot_read_another_share(
    emulator: RunningEmulator, service: ShareServiceClient, seeded: ShareClient
) -> None:
    other = service.create_share("other")
    other.get_file_client("doc.txt").upload_file(b"other")
    sas = _share_sas(emulator, seeded.share_name, "rl")
    client = _sas_service(emulator, sas).get_share_client("other")
    with pytest.raises(ClientAuthenticationError) as info:
        _read(client, "doc.txt")
    assert info.value.status_code == 403
    assert info.value.error_code == "AuthenticationFailed"


def test_share_sas_cannot_list_shares(emulator: RunningEmulator, seeded: ShareClient) -> None:
    service = _sas_service(emulator, _share_sas(emulator, seeded.share_name, "rl"))
    with pytest.raises(HttpResponseError) as info:
        list(service.list_shares())
    assert info.value.status_code == 403


def _file_sas(emulator: RunningEmulator, share_name: str, path: str, permission: str = "r") -> str:
    account = emulator.account()
    return generate_file_sas(
        account.name,
        share_name,
        path.split("/"),
        account.key,
        permission=FileSasPermissions.from_string(permission),
        expiry=_in(1),
    )


def test_file_sas_reads_its_file(emulator: RunningEmulator, seeded: ShareClient) -> None:
    sas = _file_sas(emulator, seeded.share_name, "dir/sibling.txt")
    share = _sas_service(emulator, sas).get_share_client(seeded.share_name)
    assert _read(share, "dir/sibling.txt") == b"sibling"


def test_file_sas_cannot_read_a_sibling(emulator: RunningEmulator, seeded: ShareClient) -> None:
    share = _sas_service(emulator, _file_sas(emulator, seeded.share_name, "doc.txt")).get_share_client(
        seeded.share_name
    )
    assert _read(share, "doc.txt") == b"document"
    with pytest.raises(ClientAuthenticationError) as info:
        _read(share, "dir/sibling.txt")
    assert info.value.status_code == 403
    assert info.value.error_code == "AuthenticationFailed"


def test_file_sas_cannot_list_the_directory(emulator: RunningEmulator, seeded: ShareClient) -> None:
    share = _sas_service(emulator, _file_sas(emulator, seeded.share_name, "doc.txt")).get_share_client(
        seeded.share_name
    )
    with pytest.raises(HttpResponseError) as info:
        list(share.list_directories_and_files())
    assert info.value.status_code == 403


def test_read_file_sas_cannot_write(emulator: RunningEmulator, seeded: ShareClient) -> None:
    share = _sas_service(emulator, _file_sas(emulator, seeded.share_name, "doc.txt")).get_share_client(
        seeded.share_name
    )
    with pytest.raises(HttpResponseError) as info:
        share.get_file_client("doc.txt").upload_range(b"D", 0, 1)
    assert info.value.status_code == 403
    assert info.value.error_code == "AuthorizationPermissionMismatch"
    assert _read(seeded, "doc.txt") == b"document"


def test_file_sas_with_write_can_write(emulator: RunningEmulator, seeded: ShareClient) -> None:
    share = _sas_service(emulator, _file_sas(emulator, seeded.share_name, "doc.txt", "rw")).get_share_client(
        seeded.share_name
    )
    share.get_file_client("doc.txt").upload_range(b"D", 0, 1)
    assert _read(seeded, "doc.txt") == b"Document"


def test_file_sas_special_name(emulator: RunningEmulator, share: ShareClient) -> None:
    share.create_directory("my dir")
    share.get_file_client("my dir/ü #1+&.txt").upload_file(b"special")
    sas = _file_sas(emulator, share.share_name, "my dir/ü #1+&.txt")
    client = _sas_service(emulator, sas).get_share_client(share.share_name)
    assert _read(client, "my dir/ü #1+&.txt") == b"special"
