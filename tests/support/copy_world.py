"""The servers and places a copy-job test works with: a Files emulator, optionally Azurite, a
temporary directory, and seeded local directories, shares and containers to copy between."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.fileshare import ShareClient, ShareServiceClient

from shareferry.core.jobs import CopyRequest, JobSummary, run_copy
from shareferry.core.options import TransferOptions
from shareferry.emulator import RunningEmulator

from .azurite import AzuriteInfo
from .emulator_admin import counters
from .trees import (
    Listing,
    RecordingSubscriber,
    read_container,
    read_local,
    read_share,
    write_container,
    write_local,
    write_share,
)


def dirs_of(files: Mapping[str, bytes], empty: Sequence[str] = ()) -> set[str]:
    """Every directory a tree of ``files`` plus the ``empty`` directories has."""
    found = set(empty)
    for path in [*files, *(f"{d}/x" for d in empty)]:
        parts = path.split("/")[:-1]
        found.update("/".join(parts[: depth + 1]) for depth in range(len(parts)))
    return found


def operation_totals(emulator: RunningEmulator) -> dict[str, int]:
    """Requests the emulator has answered so far, per operation."""
    return {op: entry["total"] for op, entry in counters(emulator)["operations"].items()}


@dataclass
class Place:
    """One end of a copy: the argument naming its root, and how to read what it holds."""

    kind: str  # "local", "file" or "blob"
    argument: str  # a directory, a share URL or a container URL
    folders: bool  # directories are real objects there
    read: Callable[[], Listing]

    def at(self, path: str) -> str:
        return f"{self.argument.rstrip('/')}/{path}"


@dataclass
class World:
    """A test's servers. ``environ`` holds the account-key variables ``run_copy`` reads: the
    emulator and Azurite both serve the well-known development account, so one pair covers both."""

    emulator: RunningEmulator
    service: ShareServiceClient
    tmp_path: Path
    blobs: BlobServiceClient | None = None
    azurite: AzuriteInfo | None = None
    extra_environ: dict[str, str] = field(default_factory=dict)

    @property
    def environ(self) -> dict[str, str]:
        account = self.emulator.account()
        if self.azurite is not None:
            assert (self.azurite.account, self.azurite.key) == (account.name, account.key)
        return {
            "AZURE_STORAGE_ACCOUNT_NAME": account.name,
            "AZURE_STORAGE_ACCOUNT_KEY": account.key,
            **self.extra_environ,
        }

    def share(self, name: str) -> ShareClient:
        return self.service.create_share(name)

    def container(self) -> ContainerClient:
        assert self.blobs is not None, "this test needs the world_with_blobs fixture"
        return self.blobs.create_container(f"c{uuid.uuid4().hex[:20]}")

    def place(
        self, kind: str, name: str, files: Mapping[str, bytes] | None = None, empty: Sequence[str] = ()
    ) -> Place:
        """A new local directory, share or container (named after ``name``) holding ``files``
        (with their Content-MD5 when remote) and the ``empty`` directories where it can."""
        files = files or {}
        if kind == "local":
            root = self.tmp_path / name
            root.mkdir()
            write_local(root, files, tuple(empty))
            return Place("local", str(root), True, lambda: read_local(root))
        if kind == "file":
            share = self.share(name)
            write_share(share, files, tuple(empty))
            return Place("file", f"{self.emulator.account_url()}/{name}", True, lambda: read_share(share))
        assert self.azurite is not None, "this test needs the world_with_blobs fixture"
        container = self.container()
        write_container(container, files)
        url = f"{self.azurite.endpoint}/{container.container_name}"
        return Place("blob", url, False, lambda: read_container(container))

    async def copy(
        self,
        source: str,
        destination: str,
        from_to: str,
        subscriber: RecordingSubscriber | None = None,
        *,
        log: Callable[[str], None] | None = None,
        **options: Any,
    ) -> JobSummary:
        """``run_copy`` with these options, reporting to ``subscriber``."""
        return await run_copy(
            CopyRequest(source, destination, from_to, TransferOptions(**options)),
            subscribers=[subscriber] if subscriber is not None else [],
            log=log,
            environ=self.environ,
        )
