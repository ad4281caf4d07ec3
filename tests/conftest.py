"""Shared fixtures: a running Files emulator (in-process, real HTTP) and SDK clients for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.fileshare import ShareClient, ShareServiceClient

from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.support.emulator_admin import service_client

pytest_plugins = ["tests.cluster.fixtures", "tests.support.operator_plane"]


@pytest.fixture(autouse=True)
def job_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test keeps its job plans in a directory of its own, never in the user's home (the
    variable is in ``os.environ``, so CLI subprocesses inherit it)."""
    directory = tmp_path_factory.mktemp("jobs")
    monkeypatch.setenv("SHAREFERRY_JOB_DIR", str(directory))
    yield directory


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """A fresh in-memory emulator on a free loopback port."""
    with RunningEmulator(EmulatorConfig()) as running:
        yield running


@pytest.fixture
def service(emulator: RunningEmulator) -> ShareServiceClient:
    return service_client(emulator)


@pytest.fixture
def share(service: ShareServiceClient) -> ShareClient:
    return service.create_share("share1")
