"""Shared fixtures: a running Files emulator (in-process, real HTTP) and SDK clients for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.storage.fileshare import ShareClient, ShareServiceClient

from shareferry.emulator import EmulatorConfig, RunningEmulator


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """A fresh in-memory emulator on a free loopback port."""
    with RunningEmulator(EmulatorConfig()) as running:
        yield running


@pytest.fixture
def service(emulator: RunningEmulator) -> ShareServiceClient:
    account = emulator.account()
    return ShareServiceClient(
        account_url=emulator.account_url(),
        credential={"account_name": account.name, "account_key": account.key},
    )


@pytest.fixture
def share(service: ShareServiceClient) -> ShareClient:
    return service.create_share("share1")
