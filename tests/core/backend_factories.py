"""The backends the conformance suite runs against: one :class:`BackendFactory` per kind.

To put a backend under the suite, append one entry to :data:`FACTORIES`. A factory's ``open``
takes the test's ``tmp_path`` and is an async context manager giving a ready, empty backend
(start whatever server it needs, create the share or container, and clean up on exit). The
other fields declare what the contract leaves to each backend, so the suite asserts exactly
what that backend promises.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from shareferry.core.backends.azblob import AzureBlobBackend
from shareferry.core.backends.azfiles import AzureFilesBackend
from shareferry.core.backends.base import Backend
from shareferry.core.backends.local import LocalBackend
from shareferry.core.backends.memory import MemoryBackend
from shareferry.emulator import RunningEmulator
from tests.support.shared_azurite import shared_azurite


@dataclass(frozen=True)
class BackendFactory:
    """How to get an empty backend of one kind, and what it keeps."""

    name: str  # the pytest id: "local", "memory", "file", "blob"
    open: Callable[[Path], AbstractAsyncContextManager[Backend]]
    keeps_content_headers: bool = False  # WriteProps.content comes back from stat
    keeps_metadata: bool = False  # WriteProps.metadata comes back from stat
    sets_last_modified: bool = False  # WriteProps.last_modified becomes the object's time
    marks: tuple[pytest.MarkDecorator, ...] = ()  # e.g. (pytest.mark.azurite,)


@asynccontextmanager
async def open_local(tmp_path: Path) -> AsyncIterator[Backend]:
    root = tmp_path / "local-root"
    root.mkdir()
    backend = LocalBackend(root)
    try:
        yield backend
    finally:
        await backend.close()


@asynccontextmanager
async def open_memory(tmp_path: Path) -> AsyncIterator[Backend]:
    backend = MemoryBackend()
    try:
        yield backend
    finally:
        await backend.close()


@asynccontextmanager
async def open_azure_files(tmp_path: Path) -> AsyncIterator[Backend]:
    """A fresh share on an in-process Files emulator, addressed with the account key."""
    with RunningEmulator() as emulator:
        account = emulator.account()
        backend = AzureFilesBackend(
            endpoint=emulator.account_url(),
            share="conformance",
            account_name=account.name,
            account_key=account.key,
        )
        try:
            await backend.create_share(quota_gb=None)
            yield backend
        finally:
            await backend.close()


@asynccontextmanager
async def open_blob(tmp_path: Path) -> AsyncIterator[Backend]:
    """A new container in the Azurite shared by this test process."""
    azurite = shared_azurite()
    backend = AzureBlobBackend(
        endpoint=azurite.endpoint,
        container=f"c{uuid.uuid4().hex}",
        account_name=azurite.account,
        account_key=azurite.key,
    )
    try:
        await backend.create_container()
        yield backend
    finally:
        await backend.close()


FACTORIES: list[BackendFactory] = [
    BackendFactory(name="local", open=open_local, sets_last_modified=True),
    BackendFactory(name="memory", open=open_memory, keeps_content_headers=True, keeps_metadata=True),
    BackendFactory(
        name="file",
        open=open_azure_files,
        keeps_content_headers=True,
        keeps_metadata=True,
    ),
    BackendFactory(
        name="blob",
        open=open_blob,
        keeps_content_headers=True,
        keeps_metadata=True,
        marks=(pytest.mark.azurite,),
    ),
]
