"""The lean range read for blobs, against Azurite over real HTTP.

What the lean path reads equals what the SDK downloads for the same range, with a shared key and
with a SAS, for awkward names, snapshots and a root below the container; bytes stay as stored;
a range past the end is empty; wrong credentials, missing blobs and refused connections map to
the contract's errors; token credentials keep the SDK. The SDK's download is patched to fail
wherever the lean path must have run.
"""

from __future__ import annotations

import base64
import gzip
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob import (
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    ContentSettings,
    generate_container_sas,
)
from azure.storage.blob.aio import BlobClient

from shareferry.core.backends.azblob import AzureBlobBackend
from shareferry.core.backends.azblob_wire import BlobWire, blob_wire_for
from shareferry.core.credentials import LazyDefaultAzureCredential
from shareferry.core.errors import CredentialError, NotFoundError, TransferError
from tests.support.azurite import AzuriteInfo, run_azurite

pytestmark = pytest.mark.azurite

NAMES = [
    "plain.txt",
    "with space.txt",
    "hash#1.txt",
    "per%cent%20.txt",
    "plus+sign.txt",
    "tilde~and=eq&amp;semi;colon (1) 'q',y!.txt",
    "ünïcødé ☃ 文件.txt",
    "deep/er dir/ü #%+/leaf.txt",
]


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteInfo]:
    with run_azurite(tmp_path_factory.mktemp("azurite")) as info:
        yield info


@pytest.fixture
def container(azurite: AzuriteInfo) -> ContainerClient:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return service.create_container(f"c{uuid.uuid4().hex}")


def container_sas(azurite: AzuriteInfo, container: str) -> str:
    return generate_container_sas(
        azurite.account,
        container,
        account_key=azurite.key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def backend_for(azurite: AzuriteInfo, container: str, credential: str, **kwargs: Any) -> AzureBlobBackend:
    auth: dict[str, Any]
    if credential == "sas":
        auth = {"sas": container_sas(azurite, container)}
    else:
        auth = {"account_name": azurite.account, "account_key": azurite.key}
    return AzureBlobBackend(endpoint=azurite.endpoint, container=container, **auth, **kwargs)


@pytest.fixture(params=["shared_key", "sas"])
async def lean(
    request: pytest.FixtureRequest, azurite: AzuriteInfo, container: ContainerClient
) -> AsyncIterator[AzureBlobBackend]:
    backend = backend_for(azurite, container.container_name, request.param)
    assert backend._wire is not None
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
def no_sdk_download(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail if the SDK is asked to download (so the tests prove the lean path ran)."""

    monkeypatch.setattr(BlobClient, "download_blob", _refuse)
    yield


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("the SDK was used for a range read the lean path makes")


async def sdk_only(azurite: AzuriteInfo, container: str, credential: str, **kwargs: Any) -> AzureBlobBackend:
    """A backend on the same container that reads through the SDK."""
    backend = backend_for(azurite, container, credential, **kwargs)
    assert backend._wire is not None
    await backend._wire.close()
    backend._wire = None
    return backend


@pytest.mark.parametrize("name", NAMES)
async def test_lean_range_reads_equal_the_sdks(
    lean: AzureBlobBackend,
    azurite: AzuriteInfo,
    container: ContainerClient,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    data = os.urandom(50_000)
    container.get_blob_client(name).upload_blob(data)
    ranges = [(0, len(data)), (0, 1), (123, 4567), (49_990, 100), (0, 10 * len(data))]
    sdk = await sdk_only(azurite, container.container_name, "shared_key")
    try:
        expected = [await sdk.read(name, offset, length) for offset, length in ranges]
    finally:
        await sdk.close()
    with monkeypatch.context() as patched:
        patched.setattr(BlobClient, "download_blob", _refuse)
        got = [await lean.read(name, offset, length) for offset, length in ranges]
    assert got == expected
    assert got[0] == data and got[2] == data[123 : 123 + 4567] and got[3] == data[49_990:]


@pytest.mark.usefixtures("no_sdk_download")
async def test_stored_bytes_are_never_decompressed(
    lean: AzureBlobBackend, container: ContainerClient
) -> None:
    packed = gzip.compress(b"hello " * 1000)
    settings = ContentSettings(content_type="text/plain", content_encoding="gzip")
    container.get_blob_client("z.txt").upload_blob(packed, content_settings=settings)
    assert await lean.read("z.txt", 0, len(packed)) == packed


@pytest.mark.usefixtures("no_sdk_download")
async def test_a_range_past_the_end_is_empty(lean: AzureBlobBackend, container: ContainerClient) -> None:
    container.get_blob_client("short.bin").upload_blob(b"0123456789")
    assert await lean.read("short.bin", 10, 5) == b""
    assert await lean.read("short.bin", 1000, 5) == b""
    assert await lean.read("short.bin", 8, 5) == b"89"
    container.get_blob_client("empty.bin").upload_blob(b"")
    assert await lean.read("empty.bin", 0, 5) == b""


@pytest.mark.usefixtures("no_sdk_download")
async def test_a_root_below_the_container_and_a_snapshot_are_read(
    azurite: AzuriteInfo, container: ContainerClient
) -> None:
    blob = container.get_blob_client("sub dir/ü.txt")
    blob.upload_blob(b"before")
    snapshot = blob.create_snapshot()["snapshot"]
    blob.upload_blob(b"after!", overwrite=True)
    for credential in ("shared_key", "sas"):
        backend = backend_for(azurite, container.container_name, credential, root="sub dir")
        try:
            assert await backend.read("ü.txt", 0, 6) == b"after!"
        finally:
            await backend.close()
    # Shared key only: Azurite refuses a container SAS for snapshots (through the SDK too).
    snap = backend_for(azurite, container.container_name, "shared_key", snapshot=snapshot)
    try:
        assert await snap.read("sub dir/ü.txt", 0, 6) == b"before"
    finally:
        await snap.close()


@pytest.mark.usefixtures("no_sdk_download")
async def test_missing_blobs_and_containers_are_not_found(
    lean: AzureBlobBackend, azurite: AzuriteInfo
) -> None:
    with pytest.raises(NotFoundError, match="BlobNotFound"):
        await lean.read("nothing.bin", 0, 10)
    other = backend_for(azurite, "no-such-container", "shared_key")
    try:
        with pytest.raises(NotFoundError, match="ContainerNotFound"):
            await other.read("x.bin", 0, 10)
    finally:
        await other.close()


@pytest.mark.usefixtures("no_sdk_download")
async def test_a_wrong_key_is_a_credential_error(azurite: AzuriteInfo, container: ContainerClient) -> None:
    container.get_blob_client("f.bin").upload_blob(b"data")
    wrong = base64.b64encode(b"not the key" * 3).decode()
    backend = AzureBlobBackend(
        endpoint=azurite.endpoint,
        container=container.container_name,
        account_name=azurite.account,
        account_key=wrong,
    )
    try:
        assert backend._wire is not None
        with pytest.raises(CredentialError):
            await backend.read("f.bin", 0, 4)
    finally:
        await backend.close()


@pytest.mark.usefixtures("no_sdk_download")
async def test_a_tampered_sas_is_a_credential_error(azurite: AzuriteInfo, container: ContainerClient) -> None:
    container.get_blob_client("f.bin").upload_blob(b"data")
    sas = container_sas(azurite, container.container_name).replace("sig=", "sig=AAAA")
    backend = AzureBlobBackend(endpoint=azurite.endpoint, container=container.container_name, sas=sas)
    try:
        with pytest.raises(CredentialError) as info:
            await backend.read("f.bin", 0, 4)
    finally:
        await backend.close()
    assert "AAAA" not in str(info.value) and "f.bin" in str(info.value)


@pytest.mark.usefixtures("no_sdk_download")
async def test_a_refused_connection_is_a_retryable_transfer_error(azurite: AzuriteInfo) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = AzureBlobBackend(
        endpoint=f"http://127.0.0.1:{port}/{azurite.account}",
        container="c",
        account_name=azurite.account,
        account_key=azurite.key,
    )
    try:
        with pytest.raises(TransferError) as info:
            await backend.read("f.bin", 0, 4)
    finally:
        await backend.close()
    assert info.value.retryable


def test_only_sas_and_shared_key_take_the_lean_path() -> None:
    common: dict[str, Any] = {
        "endpoint": "https://acct.blob.core.windows.net",
        "container": "c",
        "snapshot": None,
        "account_name": "acct",
        "api_version": "2026-10-06",
        "connection_timeout": 20,
    }
    assert blob_wire_for(**common, sas=None, account_key=None) is None
    assert blob_wire_for(**common, sas=None, account_key="not base64!") is None
    assert isinstance(blob_wire_for(**common, sas="sv=x&sig=y", account_key=None), BlobWire)
    key = base64.b64encode(b"k" * 32).decode()
    assert isinstance(blob_wire_for(**common, sas=None, account_key=key), BlobWire)
    token = AzureBlobBackend(
        endpoint="https://acct.blob.core.windows.net",
        container="c",
        token_credential=LazyDefaultAzureCredential(),
    )
    anonymous = AzureBlobBackend(endpoint="https://acct.blob.core.windows.net", container="c")
    assert token._wire is None and anonymous._wire is None
    sas_in_url = AzureBlobBackend(endpoint="https://acct.blob.core.windows.net/?sv=x&sig=y", container="c")
    assert sas_in_url._wire is not None


def test_the_blob_clients_api_version_is_sent() -> None:
    backend = AzureBlobBackend(
        endpoint="https://acct.blob.core.windows.net",
        container="c",
        account_key=base64.b64encode(b"k" * 32).decode(),
    )
    assert backend._wire is not None
    assert backend._wire._sender._api_version == backend._container.api_version
