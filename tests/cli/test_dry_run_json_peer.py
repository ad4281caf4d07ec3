"""``--dry-run --output-type json`` of ``shareferry copy`` / ``sync`` against AzCopy 10.32.2's, both
run as child processes on the same trees and the same Files emulator share.

What is compared is what a script reading the lines depends on: the message types and where
they come (no ``Init``, no ``Progress``, ``EndOfJob`` last with an empty content), the keys of
each ``Dryrun`` item in their order and the type of every value, and the set of items
(entity type, FromTo, source, destination, size), deletions of a ``--delete-destination`` sync
included. AzCopy also gives a download's ``ContentType`` and ``ContentMD5`` (read from the
source's properties, which a ShareFerry dry run does not read), and names a local deletion's FromTo ``256``
(ShareFerry: ``LocalTrash``); both are allowed for and nothing else is.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.storage.fileshare import ShareClient

from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.cli.test_copy_cli import account_sas, clean_environment, shareferry_all
from tests.support.azcopy import AZCOPY_COMMON_FLAGS, azcopy_env, ensure_azcopy
from tests.support.emulator_admin import service_client
from tests.support.trees import write_local, write_share

pytestmark = [pytest.mark.azcopy]

#: The local tree: a file, an empty file (no SourceSize), a folder with a file.
LOCAL = {"a.txt": b"hello", "empty.txt": b"", "sub/b.txt": b"world!!"}
#: The share: files absent from LOCAL (a sync up deletes them; a sync down adds them).
REMOTE = {"stale.txt": b"old", "olddir/x.txt": b"x"}

#: Keys every Dryrun item has, in AzCopy's order; then those it adds when it has a value.
REQUIRED = ["EntityType", "BlobType", "FromTo", "Source", "Destination"]
OPTIONAL_TYPES: dict[str, type] = {"SourceSize": int, "ContentType": str, "ContentMD5": str}
#: What AzCopy prints that ShareFerry does not (see the module docstring).
AZCOPY_ONLY = {"ContentType", "ContentMD5"}
FROM_TO_SPELLINGS = {"256": "LocalTrash"}


@dataclass
class World:
    emulator: RunningEmulator
    share: ShareClient
    sas: str
    local: Path
    tmp: Path

    def url(self, path: str = "") -> str:
        return (
            f"{self.emulator.account_url()}/{self.share.share_name}"
            + (f"/{path}" if path else "")
            + f"?{self.sas}"
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One share holding :data:`REMOTE` and one local tree holding :data:`LOCAL`; dry runs change neither."""
    tmp = tmp_path_factory.mktemp("dry-run-peer")
    write_local(tmp / "src", LOCAL)
    with RunningEmulator(EmulatorConfig()) as emulator:
        share = service_client(emulator).create_share("dryrun")
        write_share(share, REMOTE)
        yield World(emulator, share, account_sas(emulator), tmp / "src", tmp)


#: case -> (arguments after the command, given the world), the --from-to pair
CASES: dict[str, tuple[str, Any, str]] = {
    "copy up": ("copy", lambda w: [str(w.local), w.url(), "--recursive"], "LocalFile"),
    "copy down": ("copy", lambda w: [w.url("olddir"), str(w.tmp / "down"), "--recursive"], "FileLocal"),
    "sync up, deleting": (
        "sync",
        lambda w: [str(w.local), w.url(), "--delete-destination=true"],
        "LocalFile",
    ),
    "sync down, deleting": (
        "sync",
        lambda w: [w.url(), str(w.local), "--delete-destination=true"],
        "FileLocal",
    ),
}


def messages(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def run_both(world: World, case: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    command, arguments, from_to = CASES[case]
    args = [command, *arguments(world), "--from-to", from_to, "--dry-run", "--output-type", "json"]
    azcopy = subprocess.run(
        [str(ensure_azcopy()), *args, *AZCOPY_COMMON_FLAGS],
        env=azcopy_env(world.tmp),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    ours = shareferry_all({case: args}, env=clean_environment(SHAREFERRY_JOB_DIR=str(world.tmp / "jobs")))[
        case
    ]
    assert azcopy.returncode == 0, azcopy.stdout[-2000:] + azcopy.stderr[-2000:]
    assert ours.returncode == 0, ours.stderr
    assert world.sas.split("sig=")[1].split("&")[0] not in ours.stdout + ours.stderr
    return messages(azcopy.stdout), messages(ours.stdout)


def dry_runs(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(line["MessageContent"]) for line in lines if line["MessageType"] == "Dryrun"]


def item(content: dict[str, Any]) -> tuple[str, str, str, str, int]:
    """What a user checks of one item (FromTo in ShareFerry's spelling)."""
    from_to = FROM_TO_SPELLINGS.get(content["FromTo"], content["FromTo"])
    return (
        content["EntityType"],
        from_to,
        content["Source"],
        content["Destination"],
        content.get("SourceSize", 0),
    )


def check_shape(content: dict[str, Any]) -> None:
    keys = list(content)
    assert keys[: len(REQUIRED)] == REQUIRED, keys
    assert all(isinstance(content[key], str) for key in REQUIRED), content
    assert content["EntityType"] in ("File", "Folder") and content["BlobType"] == "Detect"
    for key in keys[len(REQUIRED) :]:
        assert isinstance(content[key], OPTIONAL_TYPES[key]), (key, content)
    assert content.get("SourceSize", 1) != 0  # left out when 0


@pytest.mark.parametrize("case", list(CASES))
def test_dry_run_json_matches_azcopy_1032(world: World, case: str) -> None:
    theirs, ours = run_both(world, case)
    # the envelope: the same four fields in the same order on every line
    for line in theirs + ours:
        assert list(line) == ["TimeStamp", "MessageType", "MessageContent", "PromptDetails"]
    # no Init or Progress; EndOfJob last, empty (AzCopy adds Info notes about plain HTTP and sync)
    assert {line["MessageType"] for line in ours} == {"Dryrun", "EndOfJob"}
    assert {line["MessageType"] for line in theirs} <= {"Dryrun", "EndOfJob", "Info"}
    for lines in (theirs, ours):
        assert lines[-1]["MessageType"] == "EndOfJob" and lines[-1]["MessageContent"] == ""
    for content in dry_runs(theirs) + dry_runs(ours):
        check_shape(content)
    assert not any(AZCOPY_ONLY & set(content) for content in dry_runs(ours))
    assert sorted(map(item, dry_runs(ours))) == sorted(map(item, dry_runs(theirs)))
    if "deleting" in case:  # the deletions are there, each with its object as Source
        assert any(content["Destination"] == "" for content in dry_runs(ours))
