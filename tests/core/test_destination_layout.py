"""How a job takes its local destination (a directory the files go into, or the name of what it
creates), decided on the first run from the destination and the source as they are then, against
the Files emulator."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import pytest
from azure.storage.fileshare import ShareServiceClient

from shareferry.core.destination_layout import Layout, decide_layout, stored_layout, with_layout
from shareferry.core.locations import resolve
from shareferry.core.options import TransferOptions
from shareferry.emulator import RunningEmulator
from tests.support.emulator_admin import counters, reset_counters
from tests.support.trees import write_share


@pytest.fixture
def world(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path
) -> tuple[str, dict[str, str]]:
    write_share(service.create_share("layout"), {"dir/a.txt": b"a", "file.txt": b"f"})
    (tmp_path / "existing-dir").mkdir()
    (tmp_path / "existing-file").write_bytes(b"x")
    account = emulator.account()
    environ = {
        "AZURE_STORAGE_CONNECTION_STRING": (
            f"DefaultEndpointsProtocol=http;AccountName={account.name};AccountKey={account.key};"
            f"FileEndpoint={emulator.account_url()};"
        )
    }
    return f"{emulator.account_url()}/layout", environ


# (source below the share, destination below tmp_path, command) -> layout; "" is the share root.
CASES = {
    "trailing slash": ("file.txt", "new/", "copy", Layout.DIRECTORY),
    "existing directory": ("file.txt", "existing-dir", "copy", Layout.DIRECTORY),
    "existing file": ("dir", "existing-file", "copy", Layout.NAME),
    "new folder for a directory": ("dir", "new", "copy", Layout.DIRECTORY),
    "new name for a file": ("file.txt", "new", "copy", Layout.NAME),
    "new folder for the share root": ("", "new", "copy", Layout.DIRECTORY),
    "new folder for a wildcard": ("dir/*", "new", "copy", Layout.DIRECTORY),
    "new folder for a sync": ("dir", "new", "sync", Layout.DIRECTORY),
    "new name for a synced file": ("file.txt", "new", "sync", Layout.NAME),
    "sync of a directory spelled with /": ("dir/", "new", "sync", Layout.DIRECTORY),
    "missing source: undecided": ("nothing-here", "new", "copy", None),
}


@pytest.mark.parametrize(("source", "destination", "command", "expected"), CASES.values(), ids=CASES.keys())
async def test_first_run_decides_from_destination_and_source(
    world: tuple[str, dict[str, str]],
    tmp_path: Path,
    source: str,
    destination: str,
    command: Literal["copy", "sync"],
    expected: Layout | None,
) -> None:
    share_url, environ = world
    _, src, dst = resolve(f"{share_url}/{source}", f"{tmp_path}/{destination}", "FileLocal")
    layout = await decide_layout(src, dst, command=command, options=TransferOptions(), environ=environ)
    assert layout == expected
    assert not (tmp_path / "new").exists()  # deciding creates nothing


async def test_a_directory_destination_needs_no_request(
    emulator: RunningEmulator, world: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    share_url, environ = world
    reset_counters(emulator)
    for source, destination in (("dir", "existing-dir"), ("", "new"), ("dir/*", "new"), ("file.txt", "new/")):
        _, src, dst = resolve(f"{share_url}/{source}", f"{tmp_path}/{destination}", "FileLocal")
        await decide_layout(src, dst, command="copy", options=TransferOptions(), environ=environ)
    assert counters(emulator)["operations"] == {}


async def test_an_unreadable_source_leaves_it_undecided(
    world: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    share_url, _ = world
    _, src, dst = resolve(f"{share_url}/dir", str(tmp_path / "new"), "FileLocal")
    assert await decide_layout(src, dst, command="copy", options=TransferOptions(), environ={}) is None


async def test_a_remote_destination_has_no_layout(world: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    share_url, environ = world
    _, src, dst = resolve(str(tmp_path), f"{share_url}/up", "LocalFile")
    assert await decide_layout(src, dst, command="copy", options=TransferOptions(), environ=environ) is None


def test_the_decision_is_applied_as_a_trailing_separator(tmp_path: Path) -> None:
    _, _, dst = resolve("https://acct.file.core.windows.net/share/dir", str(tmp_path / "new"), None)
    as_dir = with_layout(dst, Layout.DIRECTORY)
    assert as_dir.local_path == str(tmp_path / "new") + os.sep and as_dir.trailing_slash
    assert with_layout(dst, Layout.NAME) == dst
    assert with_layout(dst, None) == dst
    assert with_layout(as_dir, Layout.DIRECTORY) == as_dir


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"local_destination": "directory"}, Layout.DIRECTORY),
        ({"local_destination": "name"}, Layout.NAME),
        ({"local_destination": "sideways"}, None),
        ({}, None),
    ],
)
def test_stored_layout(options: dict[str, str], expected: Layout | None) -> None:
    assert stored_layout(options) == expected
