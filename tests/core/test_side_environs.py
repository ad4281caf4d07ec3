"""One environment per side (``SideEnvirons``) and ``AZURE_STORAGE_SAS_TOKEN``: the source is opened
with the source's credentials and the destination with the destination's, server-side copies
sign the source URL with the source's, against two emulator accounts (and Azurite)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareClient,
    ShareServiceClient,
    generate_account_sas,
)

from shareferry.core.credentials import (
    SideEnvirons,
    resolve_credential,
    settings_environ,
    side_environ,
)
from shareferry.core.errors import CredentialError
from shareferry.core.jobs import CopyRequest, JobStatus, SyncRequest, run_copy, run_sync
from shareferry.core.locations import parse_location
from shareferry.core.options import DeleteDestination, SyncOptions, TransferOptions
from shareferry.emulator import Account, EmulatorConfig, RunningEmulator
from shareferry.emulator.config import default_accounts
from tests.support.copy_world import operation_totals
from tests.support.shared_azurite import shared_azurite
from tests.support.trees import md5, read_share, write_container, write_share

SECOND = Account("secondacct", base64.b64encode(b"the second account's own key 32b").decode())
TREE = {"a.txt": b"alpha" * 100, "d/b.bin": bytes(range(256)) * 40, "d/e/c.txt": b""}
FILES = "https://acct.file.core.windows.net/share/dir"
SAS = "sv=2024-11-04&ss=f&srt=sco&sp=rl&se=2030-01-01&sig=SeCrEtSiGnAtUrE%3D"
KEY = base64.b64encode(b"k" * 64).decode()


@pytest.fixture
def two_accounts() -> Iterator[RunningEmulator]:
    with RunningEmulator(EmulatorConfig(accounts=(*default_accounts(), SECOND))) as emulator:
        yield emulator


def service(emulator: RunningEmulator, account: Account) -> ShareServiceClient:
    return ShareServiceClient(
        account_url=emulator.account_url(account.name),
        credential={"account_name": account.name, "account_key": account.key},
    )


def key_environ(account: Account) -> dict[str, str]:
    return {"AZURE_STORAGE_ACCOUNT_NAME": account.name, "AZURE_STORAGE_ACCOUNT_KEY": account.key}


def account_sas(account: Account) -> str:
    return generate_account_sas(
        account.name,
        account.key,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, list=True, create=True, delete=True),
        datetime.now(UTC) + timedelta(hours=1),
    )


def seeded(emulator: RunningEmulator, account: Account, name: str, files: dict[str, bytes]) -> ShareClient:
    share = service(emulator, account).create_share(name)
    write_share(share, files, ())
    return share


# -- resolving one side -----------------------------------------------------------------------


def test_a_sas_token_from_the_environment_is_used_when_the_url_has_none() -> None:
    credential = resolve_credential(
        parse_location(FILES),
        environ={
            "AZURE_STORAGE_SAS_TOKEN": f"?{SAS}",
            "AZURE_STORAGE_ACCOUNT_NAME": "acct",
            "AZURE_STORAGE_ACCOUNT_KEY": KEY,
        },
    )
    assert (credential.kind, credential.sas, credential.account_name) == ("sas", SAS, "acct")
    assert credential.describe() == "SAS token (from AZURE_STORAGE_SAS_TOKEN)"
    assert "SeCrEt" not in repr(credential) and "SeCrEt" not in credential.describe()


def test_a_sas_in_the_url_comes_before_the_environments() -> None:
    url_sas = "sv=2024-11-04&sp=r&sig=FromTheUrl"
    credential = resolve_credential(
        parse_location(f"{FILES}?{url_sas}"), environ={"AZURE_STORAGE_SAS_TOKEN": SAS}
    )
    assert (credential.sas, credential.origin) == (url_sas, "the URL")


def test_a_blank_sas_token_is_no_credential() -> None:
    credential = resolve_credential(
        parse_location(FILES),
        environ={
            "AZURE_STORAGE_SAS_TOKEN": "  ",
            "AZURE_STORAGE_ACCOUNT_NAME": "acct",
            "AZURE_STORAGE_ACCOUNT_KEY": KEY,
        },
    )
    assert credential.kind == "shared_key"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            KEY,
            "AZURE_STORAGE_SAS_TOKEN is not a SAS token: it has no sig= (give the part of a SAS URL after '?')",
        ),
        (
            f"{FILES}?{SAS}",
            "AZURE_STORAGE_SAS_TOKEN holds a URL: give only the SAS, the part after '?' (sv=...&sig=...)",
        ),
    ],
    ids=["an account key", "a whole URL"],
)
def test_a_sas_token_that_is_not_one_is_refused_without_showing_it(value: str, message: str) -> None:
    with pytest.raises(CredentialError) as caught:
        resolve_credential(parse_location(FILES), environ={"AZURE_STORAGE_SAS_TOKEN": value})
    assert str(caught.value) == message


def test_side_environs_from_prefixed_variables() -> None:
    environ = {
        "SHAREFERRY_SOURCE_AZURE_STORAGE_ACCOUNT_KEY": "k1",
        "SHAREFERRY_DESTINATION_AZURE_STORAGE_SAS_TOKEN": "sv=1&sig=x",
        "AZURE_STORAGE_ACCOUNT_KEY": "not for either side",
        "SHAREFERRY_JOB_DIR": "/jobs",
    }
    sides = SideEnvirons.from_prefixes(
        environ, source_prefix="SHAREFERRY_SOURCE_", destination_prefix="SHAREFERRY_DESTINATION_"
    )
    assert side_environ(sides, "source") == {"AZURE_STORAGE_ACCOUNT_KEY": "k1"}
    assert side_environ(sides, "destination") == {"AZURE_STORAGE_SAS_TOKEN": "sv=1&sig=x"}
    assert settings_environ(sides) is environ
    assert "k1" not in repr(sides) and "sig=x" not in repr(sides)
    plain = {"A": "b"}
    assert side_environ(plain, "source") is plain and settings_environ(plain) is plain


# -- whole jobs -------------------------------------------------------------------------------


async def test_each_side_is_opened_with_its_own_key_and_the_copy_stays_server_side(
    two_accounts: RunningEmulator,
) -> None:
    first = two_accounts.account()
    seeded(two_accounts, first, "source", TREE)
    target = service(two_accounts, SECOND).create_share("target")
    before = operation_totals(two_accounts)
    warnings: list[str] = []

    summary = await run_copy(
        CopyRequest(
            f"{two_accounts.account_url()}/source/*",
            f"{two_accounts.account_url(SECOND.name)}/target",
            "FileFile",
            TransferOptions(recursive=True),
        ),
        environ=SideEnvirons(source=key_environ(first), destination=key_environ(SECOND)),
        log=warnings.append,
    )

    assert (summary.status, summary.error) == (JobStatus.COMPLETED, None)
    landed = read_share(target)
    assert landed.files == TREE
    assert landed.stored_md5 == {path: md5(data) for path, data in TREE.items()}
    # The target share pulled the bytes from a source URL signed with the source's key (one
    # signed with the other account's key would be refused, and the copy would fall back).
    after = operation_totals(two_accounts)
    assert after.get("PutRangeFromURL", 0) - before.get("PutRangeFromURL", 0) >= 2
    assert after.get("PutRange", 0) == before.get("PutRange", 0)
    assert not [line for line in warnings if "server-side copy refused" in line]


async def test_swapped_environments_fail_on_the_source_and_touch_nothing(
    two_accounts: RunningEmulator,
) -> None:
    first = two_accounts.account()
    seeded(two_accounts, first, "source", TREE)
    target = service(two_accounts, SECOND).create_share("target")
    source_url = f"{two_accounts.account_url()}/source"

    summary = await run_copy(
        CopyRequest(
            source_url,
            f"{two_accounts.account_url(SECOND.name)}/target",
            "FileFile",
            TransferOptions(recursive=True),
        ),
        environ=SideEnvirons(source=key_environ(SECOND), destination=key_environ(first)),
    )

    assert summary.status is JobStatus.FAILED
    assert summary.error is not None and summary.error.startswith(f"no credential for {source_url}: ")
    assert read_share(target).files == {}


async def test_a_plain_mapping_still_serves_both_sides(two_accounts: RunningEmulator) -> None:
    first = two_accounts.account()
    seeded(two_accounts, first, "source", TREE)
    target = service(two_accounts, SECOND).create_share("target")
    both = {"AZURE_STORAGE_CONNECTION_STRING": two_accounts.connection_string(), **key_environ(SECOND)}

    summary = await run_copy(
        CopyRequest(
            f"{two_accounts.account_url()}/source/*",
            f"{two_accounts.account_url(SECOND.name)}/target",
            "FileFile",
            TransferOptions(recursive=True),
        ),
        environ=both,
    )

    assert summary.status is JobStatus.COMPLETED and read_share(target).files == TREE


async def test_a_sync_with_a_sas_token_per_side(two_accounts: RunningEmulator, tmp_path: Path) -> None:
    first = two_accounts.account()
    seeded(two_accounts, first, "source", TREE)
    target = seeded(two_accounts, SECOND, "target", {"stale.txt": b"gone soon", "a.txt": b"old"})
    jobs = tmp_path / "jobs-of-this-worker"

    summary = await run_sync(
        SyncRequest(
            f"{two_accounts.account_url()}/source",
            f"{two_accounts.account_url(SECOND.name)}/target",
            "FileFile",
            TransferOptions(recursive=True),
            SyncOptions(delete_destination=DeleteDestination.TRUE, mirror_mode=True, max_delete_percent=100),
        ),
        environ=SideEnvirons(
            source={"AZURE_STORAGE_SAS_TOKEN": "?" + account_sas(first)},
            destination={"AZURE_STORAGE_SAS_TOKEN": account_sas(SECOND)},
            settings={"SHAREFERRY_JOB_DIR": str(jobs)},
        ),
    )

    assert (summary.status, summary.error) == (JobStatus.COMPLETED, None)
    assert read_share(target).files == TREE
    assert summary.counters.sync is not None and summary.counters.sync.delete_completed == 1
    assert list(jobs.iterdir()), "the job's plan is kept where the settings say"


async def test_a_blob_source_url_is_signed_with_the_source_key(two_accounts: RunningEmulator) -> None:
    azurite = shared_azurite()
    with BlobServiceClient(account_url=azurite.endpoint, credential=azurite.credential) as blobs:
        container = blobs.create_container("sideenvirons")
        try:
            write_container(container, {path: data for path, data in TREE.items() if data})
            target = service(two_accounts, SECOND).create_share("target")
            before = operation_totals(two_accounts)

            summary = await run_copy(
                CopyRequest(
                    f"{azurite.endpoint}/sideenvirons/*",
                    f"{two_accounts.account_url(SECOND.name)}/target",
                    "BlobFile",
                    TransferOptions(recursive=True),
                ),
                environ=SideEnvirons(
                    source={
                        "AZURE_STORAGE_ACCOUNT_NAME": azurite.account,
                        "AZURE_STORAGE_ACCOUNT_KEY": azurite.key,
                    },
                    destination=key_environ(SECOND),
                ),
            )

            assert (summary.status, summary.error) == (JobStatus.COMPLETED, None)
            assert read_share(target).files == {path: data for path, data in TREE.items() if data}
            after = operation_totals(two_accounts)
            assert after.get("PutRangeFromURL", 0) > before.get("PutRangeFromURL", 0)
            assert after.get("PutRange", 0) == before.get("PutRange", 0)
        finally:
            container.delete_container()
