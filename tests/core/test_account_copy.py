"""Account-level copies: every share of an account, to another account or to a local folder."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareServiceClient,
    generate_account_sas,
)

from shareferry.core.errors import UsageError
from shareferry.core.jobs import CopyRequest, JobStatus, run_copy
from shareferry.core.options import TransferOptions
from shareferry.emulator import Account, EmulatorConfig, RunningEmulator
from shareferry.emulator.config import default_accounts

SECOND = Account("secondacct", base64.b64encode(b"a second account key, 32 bytes!!").decode())


@pytest.fixture
def two_accounts() -> Iterator[RunningEmulator]:
    with RunningEmulator(EmulatorConfig(accounts=(*default_accounts(), SECOND))) as emulator:
        yield emulator


def _service(emulator: RunningEmulator, account: Account) -> ShareServiceClient:
    return ShareServiceClient(
        account_url=emulator.account_url(account.name),
        credential={"account_name": account.name, "account_key": account.key},
    )


def _sas(account: Account) -> str:
    return generate_account_sas(
        account.name,
        account.key,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, list=True, create=True),
        datetime.now(UTC) + timedelta(hours=1),
    )


def _seed(service: ShareServiceClient) -> None:
    for share, files in {"alpha": {"a.txt": b"alpha"}, "beta": {"d/b.txt": b"beta" * 1000}}.items():
        client = service.create_share(share)
        for path, data in files.items():
            if "/" in path:
                client.create_directory(path.rpartition("/")[0])
            client.get_file_client(path).upload_file(data)


async def test_account_to_account_creates_each_share_and_copies_it(two_accounts: RunningEmulator) -> None:
    first = two_accounts.account()
    _seed(_service(two_accounts, first))
    summary = await run_copy(
        CopyRequest(
            f"{two_accounts.account_url()}?{_sas(first)}",
            f"{two_accounts.account_url(SECOND.name)}?{_sas(SECOND)}",
            "FileFile",
            TransferOptions(recursive=True),
        )
    )
    assert summary.status is JobStatus.COMPLETED, summary.error or summary.failures
    target = _service(two_accounts, SECOND)
    assert sorted(s.name for s in target.list_shares()) == ["alpha", "beta"]
    assert target.get_share_client("alpha").get_file_client("a.txt").download_file().readall() == b"alpha"
    beta = target.get_share_client("beta").get_file_client("d/b.txt").download_file().readall()
    assert beta == b"beta" * 1000
    assert summary.counters.files_completed == 2


async def test_account_to_local_puts_each_share_in_its_own_folder(
    two_accounts: RunningEmulator, tmp_path: Path
) -> None:
    first = two_accounts.account()
    _seed(_service(two_accounts, first))
    summary = await run_copy(
        CopyRequest(
            f"{two_accounts.account_url()}?{_sas(first)}",
            str(tmp_path / "out") + "/",
            "FileLocal",
            TransferOptions(recursive=True),
        )
    )
    assert summary.status is JobStatus.COMPLETED, summary.error or summary.failures
    assert (tmp_path / "out" / "alpha" / "a.txt").read_bytes() == b"alpha"
    assert (tmp_path / "out" / "beta" / "d" / "b.txt").read_bytes() == b"beta" * 1000


async def test_an_account_source_needs_recursive(two_accounts: RunningEmulator, tmp_path: Path) -> None:
    first = two_accounts.account()
    with pytest.raises(UsageError, match="names a whole account: use --recursive"):
        await run_copy(
            CopyRequest(
                f"{two_accounts.account_url()}?{_sas(first)}", str(tmp_path), "FileLocal", TransferOptions()
            )
        )
