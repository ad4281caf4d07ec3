"""AzCopy 10.32.2's flag names through ``shareferry copy`` and ``sync`` run as child processes
against the Files emulator: ``--preserve-info`` (and its older name ``--preserve-smb-info``),
the ``FileSMB`` spelling of ``--from-to``, and the compatibility flags that take AzCopy's
default and refuse, in one line with exit status 2, a value that would ask for behaviour
ShareFerry does not have. Checked as a user would: bytes and SMB times at the destination,
exit codes and the exact error line, and that a refused command wrote nothing."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.storage.fileshare import ContentSettings, ShareClient, ShareServiceClient

from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.cli.test_copy_cli import account_sas, assert_secret_free, shareferry_all, signature
from tests.support.emulator_admin import service_client
from tests.support.trees import read_share, write_local, write_share

FILES = {"a.txt": b"alpha", "sub/b.txt": b"bravo bravo"}
#: What the source share's files carry, so that a copy that keeps them can be told apart.
CREATED = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
WRITTEN = datetime(2002, 3, 4, 5, 6, 7, tzinfo=UTC)


@dataclass
class World:
    emulator: RunningEmulator
    service: ShareServiceClient
    sas: str
    local: Path
    tmp: Path

    def url(self, share: str, path: str = "") -> str:
        return f"{self.emulator.account_url()}/{share}" + (f"/{path}" if path else "") + f"?{self.sas}"

    def share(self, name: str) -> ShareClient:
        return self.service.get_share_client(name)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A local tree and a share ``source`` holding :data:`FILES` with old SMB times, ReadOnly."""
    tmp = tmp_path_factory.mktemp("azcopy-1032-flags")
    write_local(tmp / "src", FILES)
    with RunningEmulator(EmulatorConfig()) as emulator:
        service = service_client(emulator)
        source = service.create_share("source")
        write_share(source, FILES)
        for path in FILES:
            source.get_file_client(path).set_http_headers(
                ContentSettings(),
                file_attributes="ReadOnly",
                file_creation_time=CREATED,
                file_last_write_time=WRITTEN,
            )
        yield World(emulator, service, account_sas(emulator), tmp / "src", tmp)


def smb_of(share: ShareClient, path: str) -> tuple[datetime, datetime, str]:
    props = share.get_file_client(path).get_file_properties()
    return props.creation_time, props.last_write_time, str(props.file_attributes)


# ---- --preserve-info ----------------------------------------------------------------------------

#: case -> (flags, whether the SMB properties are kept)
PRESERVE_CASES: dict[str, tuple[tuple[str, ...], bool]] = {
    "--preserve-info": (("--preserve-info",), True),
    "--preserve-info=true": (("--preserve-info=true",), True),
    "--preserve-smb-info (older name)": (("--preserve-smb-info",), True),
    "--preserve-smb-info=True": (("--preserve-smb-info=True",), True),
    "default (false, as AzCopy on Linux)": ((), False),
    "--preserve-info=false": (("--preserve-info=false",), False),
    "--preserve-smb-info then --preserve-info=false": (
        ("--preserve-smb-info", "--preserve-info=false"),
        False,
    ),
}


@pytest.fixture(scope="module")
def preserve_runs(world: World) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case copies the source share into a share of its own, all at once."""
    commands = {}
    for number, (case, (flags, _)) in enumerate(PRESERVE_CASES.items()):
        name = f"keep{number}"
        world.service.create_share(name)
        commands[case] = [
            "copy", world.url("source", "*"), world.url(name), "--from-to", "FileFile", "--recursive", *flags,
        ]  # fmt: skip
    return shareferry_all(commands)


@pytest.mark.parametrize("case", list(PRESERVE_CASES))
def test_preserve_info_keeps_smb_times_and_attributes_between_shares(
    world: World, preserve_runs: dict[str, subprocess.CompletedProcess[str]], case: str
) -> None:
    result = preserve_runs[case]
    assert result.returncode == 0, result.stderr
    destination = world.share(f"keep{list(PRESERVE_CASES).index(case)}")
    assert read_share(destination).files == FILES
    kept = PRESERVE_CASES[case][1]
    for path in FILES:
        created, written, attributes = smb_of(destination, path)
        assert (created == CREATED, written == WRITTEN, "ReadOnly" in attributes) == (kept, kept, kept), path


# ---- --from-to FileSMB ------------------------------------------------------------------------------


def test_from_to_takes_azcopy_1032s_filesmb_spelling_and_refuses_nfs(world: World) -> None:
    world.service.create_share("smbup")
    world.service.create_share("smbs2s")
    results = shareferry_all(
        {
            "LocalFileSMB": ["copy", f"{world.local}/*", world.url("smbup"), "--from-to", "LocalFileSMB", "--recursive"],
            "FileSMBFileSMB": ["copy", world.url("source", "*"), world.url("smbs2s"), "--from-to", "fileSMBfileSMB", "--recursive"],
            "FileSMBLocal": ["copy", world.url("source", "sub"), str(world.tmp / "down"), "--from-to", "FileSMBLocal", "--recursive"],
            "LocalFileNFS": ["copy", str(world.local), world.url("smbup"), "--from-to", "LocalFileNFS", "--recursive"],
        }
    )  # fmt: skip
    for case in ("LocalFileSMB", "FileSMBFileSMB", "FileSMBLocal"):
        assert results[case].returncode == 0, (case, results[case].stderr)
    assert read_share(world.share("smbup")).files == FILES  # only LocalFileSMB wrote here
    assert read_share(world.share("smbs2s")).files == FILES
    assert (world.tmp / "down" / "sub" / "b.txt").read_bytes() == FILES["sub/b.txt"]
    refused = results["LocalFileNFS"]
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == (
        "shareferry copy: --from-to 'LocalFileNFS': Azure Files NFS shares are not supported "
        "(ShareFerry copies SMB shares: FileSMB, or File)\n"
    )


# ---- compatibility flags ---------------------------------------------------------------------------

#: AzCopy's defaults (and values ShareFerry already honours), all given at once: still a plain copy.
ACCEPTED_COPY = (
    "--as-subdir=true", "--backup=false", "--blob-type", "BlockBlob", "--block-blob-tier", "none",
    "--page-blob-tier", "None", "--hardlinks", "follow", "--trailing-dot", "Enable",
    "--output-level", "default", "--preserve-last-modified-time", "--preserve-owner=false",
    "--disable-auto-decoding=true", "--check-version", "--put-blob-size-mb", "0.25",
)  # fmt: skip
ACCEPTED_SYNC = (
    "--hardlinks=follow", "--trailing-dot=enable", "--output-level=default", "--check-version=false",
    "--put-blob-size-mb=100",
)  # fmt: skip

#: case -> (command, flags, the exact error line after "shareferry <command>: ")
REFUSED: dict[str, tuple[str, tuple[str, ...], str]] = {
    "--as-subdir=false": (
        "copy",
        ("--as-subdir=false",),
        "--as-subdir=false is not supported: to copy a folder's contents without the folder, "
        "end the source with /*",
    ),
    "--backup": (
        "copy",
        ("--backup",),
        "--backup=true is not supported: it is Windows-only (it activates SeBackupPrivilege / "
        "SeRestorePrivilege)",
    ),
    "--blob-type PageBlob": (
        "copy",
        ("--blob-type", "PageBlob"),
        "--blob-type 'PageBlob' is not supported: ShareFerry writes block blobs only (Detect or BlockBlob)",
    ),
    "--block-blob-tier Cool": (
        "copy",
        ("--block-blob-tier=Cool",),
        "--block-blob-tier 'Cool' is not supported: ShareFerry sets no access tier on upload "
        "(only None: blobs get the account's default tier)",
    ),
    "--page-blob-tier P10": (
        "copy",
        ("--page-blob-tier", "P10"),
        "--page-blob-tier 'P10' is not supported: ShareFerry writes block blobs only (only None)",
    ),
    "sync --hardlinks preserve": (
        "sync",
        ("--hardlinks", "preserve"),
        "--hardlinks 'preserve' is not supported: hardlink handling is for NFS shares, which "
        "ShareFerry does not support (only follow: a hardlink is copied as a file of its own)",
    ),
    "sync --trailing-dot Disable": (
        "sync",
        ("--trailing-dot", "Disable"),
        "--trailing-dot 'Disable' is not supported: ShareFerry always keeps a trailing dot in an "
        "Azure Files name as it is (only Enable)",
    ),
    "--output-level quiet": (
        "copy",
        ("--output-level", "quiet"),
        "--output-level 'quiet' is not supported: ShareFerry has only the default output level "
        "(no essential or quiet)",
    ),
    "--preserve-last-modified-time=false": (
        "copy",
        ("--preserve-last-modified-time=false",),
        "--preserve-last-modified-time=false is not supported: a download always gets its "
        "source's last-modified time (sync compares it)",
    ),
    "--put-blob-size-mb not a number": (
        "sync",
        ("--put-blob-size-mb", "lots"),
        "--put-blob-size-mb must be a number of MiB from 0 to 5000, not 'lots'",
    ),
    "--backup=maybe": ("copy", ("--backup=maybe",), "--backup takes true or false, not 'maybe'"),
    "sync has no --as-subdir (nor has AzCopy's)": (
        "sync",
        ("--as-subdir=true",),
        "unrecognized arguments: --as-subdir=true",
    ),
}


@dataclass
class CompatRuns:
    results: dict[str, subprocess.CompletedProcess[str]]
    world: World


@pytest.fixture(scope="module")
def compat_runs(world: World) -> CompatRuns:
    """The accepted copy and sync and every refused case, each towards a share of its own, at once."""
    commands: dict[str, list[str]] = {
        "accepted copy": ["copy", str(world.local), world.url("acceptcopy"), "--from-to", "LocalFile", "--recursive", *ACCEPTED_COPY],
        "accepted sync": ["sync", str(world.local), world.url("acceptsync"), "--from-to", "LocalFile", *ACCEPTED_SYNC],
    }  # fmt: skip
    world.service.create_share("acceptcopy")
    world.service.create_share("acceptsync")
    world.service.create_share("refused")
    for case, (command, flags, _) in REFUSED.items():
        commands[case] = [command, str(world.local), world.url("refused"), "--from-to", "LocalFile", *flags]
    return CompatRuns(shareferry_all(commands), world)


def test_azcopys_defaults_are_accepted_and_change_nothing(compat_runs: CompatRuns) -> None:
    for case, share, expected in (
        ("accepted copy", "acceptcopy", {f"src/{path}": data for path, data in FILES.items()}),
        ("accepted sync", "acceptsync", FILES),
    ):
        result = compat_runs.results[case]
        assert result.returncode == 0, (case, result.stderr)
        assert read_share(compat_runs.world.share(share)).files == expected


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_value_shareferry_cannot_honour_is_refused_in_one_line(compat_runs: CompatRuns, case: str) -> None:
    command, _, message = REFUSED[case]
    result = compat_runs.results[case]
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"shareferry {command}: {message}\n"
    assert_secret_free(result, signature(compat_runs.world.sas))
    assert read_share(compat_runs.world.share("refused")).files == {}
