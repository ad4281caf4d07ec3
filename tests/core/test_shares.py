"""Share administration (core.shares) against the Files emulator over HTTP, through the real SDK."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareServiceClient,
    generate_account_sas,
    generate_share_sas,
)

from shareferry.core import shares
from shareferry.core.shares import (
    GIB,
    AuthenticationFailed,
    InvalidCredentials,
    InvalidShareUrl,
    QuotaBelowUsage,
    QuotaInvalid,
    ShareAdmin,
    ShareError,
    ShareHasSnapshots,
    ShareNotFound,
    Unreachable,
)
from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.support.emulator_admin import add_fault

WRONG_KEY = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="


@pytest.fixture
def env(emulator: RunningEmulator) -> dict[str, str]:
    account = emulator.account()
    return {"AZURE_STORAGE_ACCOUNT_NAME": account.name, "AZURE_STORAGE_ACCOUNT_KEY": account.key}


@pytest.fixture
def url_of(emulator: RunningEmulator) -> Callable[[str], str]:
    return lambda name: f"{emulator.account_url()}/{name}"


def env_credential(env: dict[str, str]) -> dict[str, str]:
    return {
        "account_name": env["AZURE_STORAGE_ACCOUNT_NAME"],
        "account_key": env["AZURE_STORAGE_ACCOUNT_KEY"],
    }


def _account_sas(emulator: RunningEmulator) -> str:
    account = emulator.account()
    return generate_account_sas(
        account.name,
        account.key,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, create=True),
        datetime.now(UTC) + timedelta(hours=1),
    )


# ---- create, adopt, read ----------------------------------------------------------------------


async def test_create_then_get(url_of: Callable[[str], str], env: dict[str, str]) -> None:
    url = url_of("reports")
    assert await shares.get_share(url, env) is None
    created = await shares.create_share(
        url, env, quota_gib=100, access_tier="Hot", metadata={"team": "finance"}
    )
    state = await shares.get_share(url, env)
    assert created is True
    assert state is not None
    assert (state.url, state.quota_gib, state.usage_bytes) == (url, 100, 0)
    assert state.access_tier == "Hot"
    assert state.metadata == {"team": "finance"}
    assert state.etag and state.last_modified is not None


async def test_create_takes_the_service_default_quota(
    url_of: Callable[[str], str], env: dict[str, str], service: ShareServiceClient
) -> None:
    await shares.create_share(url_of("plain"), env)
    state = await shares.get_share(url_of("plain"), env)
    assert state is not None
    assert state.quota_gib == service.get_share_client("plain").get_share_properties().quota


async def test_create_adopts_an_existing_share_as_it_is(
    url_of: Callable[[str], str], env: dict[str, str], service: ShareServiceClient
) -> None:
    service.create_share("legacy", quota=7, metadata={"owner": "ops"})
    created = await shares.create_share(url_of("legacy"), env, quota_gib=100, metadata={"team": "x"})
    props = service.get_share_client("legacy").get_share_properties()
    assert created is False
    assert (props.quota, props.metadata) == (7, {"owner": "ops"})


# ---- quota, tier, metadata --------------------------------------------------------------------


async def test_set_quota_and_tier(url_of: Callable[[str], str], env: dict[str, str]) -> None:
    url = url_of("tiers")
    await shares.create_share(url, env, quota_gib=10)
    await shares.set_share_properties(url, env, quota_gib=20, access_tier="Cool")
    state = await shares.get_share(url, env)
    assert state is not None
    assert (state.quota_gib, state.access_tier) == (20, "Cool")


async def test_set_only_the_quota_leaves_the_tier(url_of: Callable[[str], str], env: dict[str, str]) -> None:
    url = url_of("onlyquota")
    await shares.create_share(url, env, quota_gib=10, access_tier="Hot")
    await shares.set_share_properties(url, env, quota_gib=11)
    state = await shares.get_share(url, env)
    assert state is not None
    assert (state.quota_gib, state.access_tier) == (11, "Hot")


async def test_set_metadata_replaces_it_and_changes_the_etag(
    url_of: Callable[[str], str], env: dict[str, str]
) -> None:
    url = url_of("meta")
    await shares.create_share(url, env, metadata={"old": "1", "keep": "2"})
    before = await shares.get_share(url, env)
    await shares.set_share_metadata(url, env, {"keep": "3", "new": "4"})
    after = await shares.get_share(url, env)
    assert before is not None and after is not None
    assert after.metadata == {"keep": "3", "new": "4"}
    assert after.etag != before.etag


async def test_usage_counts_uploaded_bytes(
    url_of: Callable[[str], str], env: dict[str, str], service: ShareServiceClient
) -> None:
    await shares.create_share(url_of("used"), env)
    share = service.get_share_client("used")
    share.get_file_client("a.bin").upload_file(b"a" * 3000)
    share.create_directory("dir")
    share.get_file_client("dir/b.bin").upload_file(b"b" * 1234)
    state = await shares.get_share(url_of("used"), env)
    assert state is not None
    assert state.usage_bytes == 3000 + 1234


async def test_quota_below_usage_is_refused_with_both_sizes(tmp_path: Path) -> None:
    # On disk, a large file is a sparse file: gigabytes of usage cost nothing.
    with RunningEmulator(EmulatorConfig(data_dir=tmp_path)) as emulator:
        account = emulator.account()
        env = {"AZURE_STORAGE_ACCOUNT_NAME": account.name, "AZURE_STORAGE_ACCOUNT_KEY": account.key}
        url = f"{emulator.account_url()}/full"
        await shares.create_share(url, env, quota_gib=5)
        with ShareServiceClient(emulator.account_url(), credential=env_credential(env)) as service:
            service.get_share_client("full").get_file_client("big.bin").create_file(size=2 * GIB + GIB // 2)
        with pytest.raises(QuotaBelowUsage) as info:
            await shares.set_share_properties(url, env, quota_gib=1)
        state = await shares.get_share(url, env)
    assert info.value.reason == "QuotaBelowUsage"
    assert "1 GiB is below the 2.5 GiB" in str(info.value)
    assert not info.value.transient
    assert state is not None and state.quota_gib == 5


@pytest.mark.parametrize("quota", [0, 102401])
async def test_quota_outside_the_documented_range(
    url_of: Callable[[str], str], env: dict[str, str], quota: int
) -> None:
    await shares.create_share(url_of("range"), env, quota_gib=5)
    with pytest.raises(QuotaInvalid) as info:
        await shares.set_share_properties(url_of("range"), env, quota_gib=quota)
    assert info.value.reason == "QuotaInvalid"
    assert "1 to 102400 GiB" in str(info.value)


async def test_unknown_access_tier_is_named(url_of: Callable[[str], str], env: dict[str, str]) -> None:
    await shares.create_share(url_of("badtier"), env)
    with pytest.raises(ShareError) as info:
        await shares.set_share_properties(url_of("badtier"), env, access_tier="Glacier")
    assert info.value.reason == "AccessTierInvalid"
    assert "Glacier" in str(info.value)


async def test_create_with_an_unknown_tier_creates_nothing(
    url_of: Callable[[str], str], env: dict[str, str]
) -> None:
    with pytest.raises(ShareError) as info:
        await shares.create_share(url_of("newtier"), env, quota_gib=5, access_tier="Glacier")
    assert info.value.reason == "AccessTierInvalid"
    assert await shares.get_share(url_of("newtier"), env) is None


async def test_changes_to_a_missing_share_say_so(url_of: Callable[[str], str], env: dict[str, str]) -> None:
    with pytest.raises(ShareNotFound) as info:
        await shares.set_share_metadata(url_of("ghost"), env, {"a": "b"})
    assert info.value.reason == "ShareNotFound"
    assert url_of("ghost") in str(info.value)


# ---- delete -----------------------------------------------------------------------------------


async def test_delete_is_idempotent(url_of: Callable[[str], str], env: dict[str, str]) -> None:
    url = url_of("gone")
    await shares.create_share(url, env)
    assert await shares.delete_share(url, env) is True
    assert await shares.get_share(url, env) is None
    assert await shares.delete_share(url, env) is False


async def test_delete_takes_the_snapshots_along(
    url_of: Callable[[str], str], env: dict[str, str], service: ShareServiceClient
) -> None:
    share = service.create_share("snapped")
    share.create_snapshot()
    with pytest.raises(ShareHasSnapshots):
        await shares.delete_share(url_of("snapped"), env, include_snapshots=False)
    assert await shares.delete_share(url_of("snapped"), env) is True
    assert [s.name for s in service.list_shares(include_snapshots=True)] == []


# ---- credentials ------------------------------------------------------------------------------


async def test_wrong_key_is_authentication_failed_without_the_key(
    url_of: Callable[[str], str], env: dict[str, str]
) -> None:
    wrong = {**env, "AZURE_STORAGE_ACCOUNT_KEY": WRONG_KEY}
    with pytest.raises(AuthenticationFailed) as info:
        await shares.create_share(url_of("locked"), wrong, quota_gib=1)
    error = info.value
    assert error.reason == "AuthenticationFailed"
    assert not error.transient
    assert "access denied" in str(error) and url_of("locked") in str(error)
    assert WRONG_KEY not in str(error) and WRONG_KEY not in repr(error)
    assert WRONG_KEY[:16] not in str(error)


async def test_connection_string(url_of: Callable[[str], str], emulator: RunningEmulator) -> None:
    env = {"AZURE_STORAGE_CONNECTION_STRING": emulator.connection_string()}
    assert await shares.create_share(url_of("viacs"), env, quota_gib=3) is True
    state = await shares.get_share(url_of("viacs"), env)
    assert state is not None and state.quota_gib == 3


async def test_sas_token_from_the_environment(
    url_of: Callable[[str], str], emulator: RunningEmulator
) -> None:
    env = {"AZURE_STORAGE_SAS_TOKEN": "?" + _account_sas(emulator)}
    url = url_of("viasas")
    assert await shares.create_share(url, env, quota_gib=4, metadata={"a": "1"}) is True
    await shares.set_share_properties(url, env, quota_gib=6)
    await shares.set_share_metadata(url, env, {"b": "2"})
    state = await shares.get_share(url, env)
    assert state is not None
    assert (state.quota_gib, state.metadata, state.url) == (6, {"b": "2"}, url)
    assert await shares.delete_share(url, env) is True


async def test_a_share_sas_cannot_administer_the_share(
    url_of: Callable[[str], str], env: dict[str, str], emulator: RunningEmulator
) -> None:
    await shares.create_share(url_of("narrow"), env)
    account = emulator.account()
    sas = generate_share_sas(
        account.name, "narrow", account.key, permission="rwdl", expiry=datetime.now(UTC) + timedelta(hours=1)
    )
    with pytest.raises(AuthenticationFailed) as info:
        await shares.set_share_metadata(url_of("narrow"), {"AZURE_STORAGE_SAS_TOKEN": sas}, {"a": "b"})
    signature = dict(part.split("=", 1) for part in sas.split("&"))["sig"]
    assert signature not in str(info.value)
    assert "account SAS" in str(info.value)


async def test_no_credential_for_the_account(url_of: Callable[[str], str]) -> None:
    other = {"AZURE_STORAGE_ACCOUNT_NAME": "someoneelse", "AZURE_STORAGE_ACCOUNT_KEY": WRONG_KEY}
    with pytest.raises(InvalidCredentials) as info:
        await shares.get_share(url_of("nocreds"), other, allow_token=False)
    assert info.value.reason == "InvalidCredentials"
    assert WRONG_KEY not in str(info.value)


# ---- addressing and the network ---------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["/share1/dir", "", "/share1?sharesnapshot=2024-01-01T00:00:00.0000000Z"])
async def test_only_a_share_url_is_accepted(
    emulator: RunningEmulator, env: dict[str, str], suffix: str
) -> None:
    with pytest.raises(InvalidShareUrl) as info:
        ShareAdmin(emulator.account_url() + suffix, env)
    assert info.value.reason == "InvalidURL"


async def test_unreachable_endpoint_is_transient_and_names_it(env: dict[str, str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/{env['AZURE_STORAGE_ACCOUNT_NAME']}"
    with pytest.raises(Unreachable) as info:
        await shares.get_share(f"{endpoint}/share1", env)
    assert info.value.transient
    assert info.value.reason == "Unreachable"
    assert f"cannot reach {endpoint}" in str(info.value)
    assert "connection refused" in str(info.value)


async def test_busy_service_is_transient_with_its_retry_after(
    url_of: Callable[[str], str], env: dict[str, str], emulator: RunningEmulator
) -> None:
    await shares.create_share(url_of("busy"), env)
    add_fault(emulator, "busy:GetShareProperties:count=1,retry_after=7")
    with pytest.raises(ShareError) as info:
        await shares.get_share(url_of("busy"), env)
    assert (info.value.reason, info.value.transient, info.value.retry_after) == (
        "ServiceUnavailable",
        True,
        7.0,
    )
    assert await shares.get_share(url_of("busy"), env) is not None


def test_a_public_host_that_does_not_resolve_is_account_not_found() -> None:
    location = shares.share_location("https://nosuchaccount.file.core.windows.net/reports")
    try:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    except socket.gaierror as cause:
        failure = ServiceRequestError("Cannot connect to host nosuchaccount.file.core.windows.net:443")
        failure.__cause__ = cause
    mapped = shares.translate_share_error(failure, action="read", url=location.describe(), location=location)
    assert mapped is not None
    assert mapped.reason == "AccountNotFound"
    assert "'nosuchaccount'" in str(mapped)
