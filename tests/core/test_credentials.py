"""Choosing a credential: the order, account matching, key checks, redaction, and real SDK clients
built from a parsed location and its credential against the running Files emulator."""

from __future__ import annotations

import base64
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo, AzureNamedKeyCredential
from azure.storage.fileshare import ShareClient, ShareSasPermissions, ShareServiceClient, generate_share_sas
from azure.storage.fileshare.aio import ShareServiceClient as AsyncShareServiceClient

from shareferry.core.credentials import Credential, LazyDefaultAzureCredential, resolve_credential
from shareferry.core.errors import CredentialError
from shareferry.core.locations import parse_location
from shareferry.emulator import RunningEmulator

KEY = base64.b64encode(b"k" * 64).decode()
OTHER_KEY = base64.b64encode(b"o" * 64).decode()
SIG = "SeCrEtSiGnAtUrE%3D"
SAS = f"sv=2022-11-02&sp=rl&sig={SIG}"
FILES = "https://acct.file.core.windows.net/share/dir"
EMU = "http://127.0.0.1:10000/devstoreaccount1"
NO_CREDENTIAL = (
    "add a SAS to the URL (or set AZURE_STORAGE_SAS_TOKEN), or set AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_ACCOUNT_NAME and "
    "AZURE_STORAGE_ACCOUNT_KEY, or sign in for Microsoft Entra ID (https endpoints only)"
)


def _conn(**settings: str) -> str:
    return ";".join(f"{key}={value}" for key, value in settings.items()) + ";"


def test_sas_in_the_url_comes_first() -> None:
    location = parse_location(f"{FILES}?{SAS}")
    environ = {
        "AZURE_STORAGE_CONNECTION_STRING": _conn(AccountName="acct", AccountKey=KEY),
        "AZURE_STORAGE_ACCOUNT_NAME": "acct",
        "AZURE_STORAGE_ACCOUNT_KEY": KEY,
    }
    credential = resolve_credential(location, environ=environ)
    assert (credential.kind, credential.sas, credential.account_name) == ("sas", SAS, "acct")
    assert credential.describe() == "SAS token (from the URL)"
    assert credential.sdk_credential() == SAS


def test_connection_string_of_the_same_account() -> None:
    environ = {
        "AZURE_STORAGE_CONNECTION_STRING": _conn(
            DefaultEndpointsProtocol="https",
            AccountName="acct",
            AccountKey=KEY,
            EndpointSuffix="core.windows.net",
        ),
        "AZURE_STORAGE_ACCOUNT_NAME": "acct",
        "AZURE_STORAGE_ACCOUNT_KEY": OTHER_KEY,
    }
    credential = resolve_credential(parse_location(FILES), environ=environ)
    assert (credential.kind, credential.account_name, credential.account_key) == ("shared_key", "acct", KEY)
    assert credential.describe() == "shared key for account acct (from AZURE_STORAGE_CONNECTION_STRING)"
    sdk = credential.sdk_credential()
    assert isinstance(sdk, AzureNamedKeyCredential)
    assert (sdk.named_key.name, sdk.named_key.key) == ("acct", KEY)


def test_connection_string_keys_are_case_insensitive() -> None:
    environ = {"AZURE_STORAGE_CONNECTION_STRING": f"accountname=acct;ACCOUNTKEY={KEY}"}
    credential = resolve_credential(parse_location(FILES), environ=environ)
    assert (credential.kind, credential.account_key) == ("shared_key", KEY)


def test_connection_string_of_another_account_is_ignored() -> None:
    environ = {
        "AZURE_STORAGE_CONNECTION_STRING": _conn(AccountName="other", AccountKey=OTHER_KEY),
        "AZURE_STORAGE_ACCOUNT_NAME": "acct",
        "AZURE_STORAGE_ACCOUNT_KEY": KEY,
    }
    credential = resolve_credential(parse_location(FILES), environ=environ)
    assert (credential.account_key, credential.origin) == (KEY, "AZURE_STORAGE_ACCOUNT_KEY")


def test_connection_string_for_another_endpoint_is_ignored() -> None:
    """Two emulators may both serve devstoreaccount1: the FileEndpoint decides."""
    location = parse_location(f"{EMU}/share1", kind_hint="file")
    other = _conn(
        AccountName="devstoreaccount1",
        AccountKey=OTHER_KEY,
        FileEndpoint="http://127.0.0.1:20000/devstoreaccount1",
    )
    with pytest.raises(CredentialError):
        resolve_credential(location, environ={"AZURE_STORAGE_CONNECTION_STRING": other})
    same = _conn(
        AccountName="devstoreaccount1",
        AccountKey=KEY,
        FileEndpoint="HTTP://127.0.0.1:10000/devstoreaccount1/",
    )
    assert resolve_credential(location, environ={"AZURE_STORAGE_CONNECTION_STRING": same}).account_key == KEY
    blob_only = _conn(
        AccountName="devstoreaccount1", AccountKey=KEY, BlobEndpoint="http://127.0.0.1:20000/devstoreaccount1"
    )
    assert (
        resolve_credential(location, environ={"AZURE_STORAGE_CONNECTION_STRING": blob_only}).account_key
        == KEY
    )


def test_connection_string_with_a_sas_and_an_endpoint() -> None:
    location = parse_location("https://acct.blob.core.windows.net/cont")
    conn = _conn(BlobEndpoint="https://acct.blob.core.windows.net/", SharedAccessSignature=f"?{SAS}")
    credential = resolve_credential(location, environ={"AZURE_STORAGE_CONNECTION_STRING": conn})
    assert (credential.kind, credential.sas, credential.account_name) == ("sas", SAS, "acct")
    assert credential.describe() == "SAS token (from AZURE_STORAGE_CONNECTION_STRING)"


def test_account_name_and_key() -> None:
    location = parse_location(FILES)
    environ = {"AZURE_STORAGE_ACCOUNT_NAME": "ACCT", "AZURE_STORAGE_ACCOUNT_KEY": KEY}
    credential = resolve_credential(location, environ=environ)
    assert (credential.kind, credential.account_key, credential.origin) == (
        "shared_key",
        KEY,
        "AZURE_STORAGE_ACCOUNT_KEY",
    )


def test_azcopy_account_variables() -> None:
    location = parse_location(FILES)
    azcopy = {"ACCOUNT_NAME": "acct", "ACCOUNT_KEY": KEY}
    assert resolve_credential(location, environ=azcopy).origin == "ACCOUNT_KEY"
    both = {**azcopy, "AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": OTHER_KEY}
    assert resolve_credential(location, environ=both).account_key == OTHER_KEY
    wrong_name = {**azcopy, "AZURE_STORAGE_ACCOUNT_NAME": "other", "AZURE_STORAGE_ACCOUNT_KEY": OTHER_KEY}
    assert resolve_credential(location, environ=wrong_name).account_key == KEY


def test_entra_id_for_https_when_nothing_else_matches() -> None:
    environ = {"AZURE_STORAGE_ACCOUNT_NAME": "other", "AZURE_STORAGE_ACCOUNT_KEY": KEY}
    credential = resolve_credential(parse_location(FILES), environ=environ)
    assert credential.kind == "token"
    assert credential.describe() == "Microsoft Entra ID (DefaultAzureCredential)"
    token = credential.token_credential
    assert isinstance(token, LazyDefaultAzureCredential)
    assert not token.created  # nothing was contacted or even created
    assert credential.sdk_credential() is token


def test_no_credential() -> None:
    https = parse_location(f"{FILES}/*")
    with pytest.raises(CredentialError) as caught:
        resolve_credential(https, environ={}, allow_token=False)
    assert str(caught.value) == f"no credential for {FILES}/*: {NO_CREDENTIAL}"

    http = parse_location(f"{EMU}/share1/d", kind_hint="file")
    with pytest.raises(CredentialError) as caught:
        resolve_credential(http, environ={"ACCOUNT_NAME": "devstoreaccount1"})
    assert str(caught.value) == f"no credential for {EMU}/share1/d: {NO_CREDENTIAL}"


def test_local_locations_have_no_credential() -> None:
    with pytest.raises(ValueError, match="local"):
        resolve_credential(parse_location("/data"), environ={})


BAD_KEYS = {"not base64": "not*base64!", "bad padding": "abc", "empty after decoding": "===="}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_keys_must_be_base64_and_are_never_echoed(key: str) -> None:
    location = parse_location(FILES)
    with pytest.raises(CredentialError) as caught:
        resolve_credential(
            location, environ={"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": key}
        )
    assert str(caught.value) == "AZURE_STORAGE_ACCOUNT_KEY is not a valid base64 account key"
    with pytest.raises(CredentialError) as caught:
        resolve_credential(
            location, environ={"AZURE_STORAGE_CONNECTION_STRING": f"AccountName=acct;AccountKey={key}"}
        )
    assert (
        str(caught.value)
        == "the AccountKey in AZURE_STORAGE_CONNECTION_STRING is not a valid base64 account key"
    )
    assert key not in str(caught.value)


def test_malformed_connection_string() -> None:
    with pytest.raises(CredentialError) as caught:
        resolve_credential(
            parse_location(FILES),
            environ={"AZURE_STORAGE_CONNECTION_STRING": "AccountName=acct;my key is secret"},
        )
    assert str(caught.value) == (
        "AZURE_STORAGE_CONNECTION_STRING is malformed: it must be Key=Value pairs separated by ';'"
    )
    assert "secret" not in str(caught.value)


def test_repr_and_describe_never_show_secrets() -> None:
    keyed = Credential(kind="shared_key", account_name="acct", account_key=KEY, origin="ACCOUNT_KEY")
    signed = Credential(kind="sas", sas=f"sig={SIG}&sv=1", account_name="acct")
    for credential in (keyed, signed):
        for text in (repr(credential), str(credential), credential.describe(), f"{[credential]}"):
            assert KEY not in text
            assert "SeCrEt" not in text
    assert (
        repr(keyed)
        == "Credential(kind='shared_key', account_name='acct', account_key='REDACTED', origin='ACCOUNT_KEY')"
    )
    assert repr(signed) == "Credential(kind='sas', account_name='acct', sas='sig=REDACTED&sv=1')"
    assert Credential(kind="anonymous").describe() == "anonymous access"
    assert Credential(kind="anonymous").sdk_credential() is None


# -- the lazy Entra ID credential ----------------------------------------------------------------


class FakeTokenCredential:
    """Stands in for DefaultAzureCredential: records calls, hands out a fixed token."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append((scopes, kwargs))
        return AccessToken("token-1", 4_000_000_000)

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> FakeTokenCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()


async def test_lazy_credential_is_created_on_first_use() -> None:
    made: list[FakeTokenCredential] = []

    def factory() -> Any:
        made.append(FakeTokenCredential())
        return made[-1]

    lazy = LazyDefaultAzureCredential(factory)
    assert not lazy.created and made == []
    token = await lazy.get_token("https://storage.azure.com/.default", tenant_id="t1")
    assert token.token == "token-1"
    info = await lazy.get_token_info("https://storage.azure.com/.default", options={"tenant_id": "t2"})
    assert isinstance(info, AccessTokenInfo)
    assert (info.token, info.expires_on) == ("token-1", 4_000_000_000)
    assert len(made) == 1
    assert made[0].calls[0][0] == ("https://storage.azure.com/.default",)
    assert made[0].calls[0][1]["tenant_id"] == "t1"
    assert made[0].calls[1][1] == {"tenant_id": "t2"}
    async with lazy:
        pass
    assert made[0].closed


async def test_lazy_credential_closes_cleanly_when_never_used() -> None:
    lazy = LazyDefaultAzureCredential()
    await lazy.close()
    assert not lazy.created


async def test_default_factory_is_the_async_default_azure_credential() -> None:
    from azure.identity.aio import DefaultAzureCredential

    lazy = LazyDefaultAzureCredential()
    inner = lazy.materialize()  # constructing it contacts nothing; only get_token would
    assert isinstance(inner, DefaultAzureCredential)
    assert lazy.created
    await lazy.close()


# -- real SDK clients against the Files emulator ------------------------------------------------

NAMES = ["a#1 %+ é.txt", "日本.txt", "plain.txt"]


def _fill(share: ShareClient) -> None:
    directory = share.get_directory_client("docs")
    directory.create_directory()
    for name in NAMES:
        directory.upload_file(name, name.encode())


def test_sdk_clients_from_a_parsed_location_and_shared_key(
    emulator: RunningEmulator, share: ShareClient
) -> None:
    _fill(share)
    location = parse_location(f"{emulator.account_url()}/share1/docs/", kind_hint="file")
    credential = resolve_credential(
        location, environ={"AZURE_STORAGE_CONNECTION_STRING": emulator.connection_string()}
    )
    assert credential.kind == "shared_key"
    assert location.endpoint is not None and location.container is not None
    service = ShareServiceClient(account_url=location.endpoint, credential=credential.sdk_credential())
    listed = service.get_share_client(location.container).get_directory_client(location.path)
    assert sorted(item["name"] for item in listed.list_directories_and_files()) == sorted(NAMES)


async def test_aio_sdk_clients_from_a_parsed_location(emulator: RunningEmulator, share: ShareClient) -> None:
    _fill(share)
    location = parse_location(f"{emulator.account_url()}/share1/docs", kind_hint="file")
    account = emulator.account()
    credential = resolve_credential(
        location, environ={"ACCOUNT_NAME": account.name, "ACCOUNT_KEY": account.key}
    )
    assert location.endpoint is not None and location.container is not None
    async with AsyncShareServiceClient(
        account_url=location.endpoint, credential=credential.sdk_credential()
    ) as service:
        directory = service.get_share_client(location.container).get_directory_client(location.path)
        names = [item["name"] async for item in directory.list_directories_and_files()]
    assert sorted(names) == sorted(NAMES)


def test_sas_location_lists_and_its_urls_read_the_right_files(
    emulator: RunningEmulator, share: ShareClient
) -> None:
    _fill(share)
    account = emulator.account()
    sas = generate_share_sas(
        account.name,
        "share1",
        account.key,
        permission=ShareSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    snapshot = share.create_snapshot()["snapshot"]
    share.get_directory_client("docs").upload_file("plain.txt", b"changed after the snapshot")

    location = parse_location(f"{emulator.account_url()}/share1/docs?{sas}", kind_hint="file")
    credential = resolve_credential(location, environ={})
    assert credential.kind == "sas"
    assert location.endpoint is not None and location.container is not None
    service = ShareServiceClient(account_url=location.endpoint, credential=credential.sdk_credential())
    directory = service.get_share_client(location.container).get_directory_client(location.path)
    assert sorted(item["name"] for item in directory.list_directories_and_files()) == sorted(NAMES)

    # location.url() percent-encodes '#', '%', '+', spaces and unicode the way the service decodes them
    for name in NAMES:
        with urllib.request.urlopen(location.url(f"docs/{name}")) as response:
            expected = b"changed after the snapshot" if name == "plain.txt" else name.encode()
            assert response.read() == expected

    # ... and carries ?sharesnapshot= so a snapshot location reads the old bytes
    frozen = parse_location(
        f"{emulator.account_url()}/share1/docs/plain.txt?sharesnapshot={snapshot}&{sas}", kind_hint="file"
    )
    assert frozen.snapshot == snapshot
    with urllib.request.urlopen(frozen.url()) as response:
        assert response.read() == b"plain.txt"
    assert "sig=REDACTED" in frozen.describe()
    assert sas.split("sig=")[1].split("&")[0] not in frozen.describe()
