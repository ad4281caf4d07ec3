"""Hostile names through ``shareferry copy`` and ``sync``, as a user meets them.

Families (each case is one command a user runs, checked at the destination and in the output):

* names that are not valid UTF-8 (local files): each such file or folder is reported failed with
  its bytes escaped (``b'bad\\xff.txt'``), the rest is copied, the job plan and every output stay
  readable (the names never reach SQLite or JSON as surrogates), and ``jobs resume`` works;
* control characters: printed escaped in every line ShareFerry writes about them;
* blob names with a leading ``/`` or a ``//`` (Azurite keeps them): reported failed with the
  name, never dropped without a word, and a sync still marches the rest in order;
* odd but valid names (255 bytes, multi-byte, only dots or spaces, leading or trailing spaces):
  copied there and back byte-identical under exactly their names.
"""

# Names that are not valid UTF-8 are made as bytes, which only the os functions take.
# ruff: noqa: PTH102, PTH118, PTH208

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient
from azure.storage.fileshare import ShareClient

from shareferry.emulator import RunningEmulator
from tests.cli.test_copy_cli import account_sas, share_url, shareferry, summary_value
from tests.cli.test_sync_cli import blob_sas, container_url, new_container
from tests.support.trees import read_container, read_local, read_share, write_share

GOOD = {"good.txt": b"good", "ok/fine.txt": b"fine"}
#: name as bytes -> (the path a report shows, its error)
BAD_UTF8 = {
    b"bad\xff.txt": ("bad\\xff.txt", "its name is not valid UTF-8: b'bad\\xff.txt'"),
    b"ok/half\xc3.txt": ("ok/half\\xc3.txt", "its name is not valid UTF-8: b'half\\xc3.txt'"),
    b"dir\xfe": ("dir\\xfe", "its name is not valid UTF-8: b'dir\\xfe'; nothing below it is copied"),
}


@pytest.fixture
def sas(emulator: RunningEmulator) -> str:
    return account_sas(emulator)


def write_bytes_tree(root: Path) -> None:
    """GOOD plus the names of BAD_UTF8 (``dir\\xfe`` a directory holding one file)."""
    for path, data in GOOD.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    base = os.fsencode(root)
    with open(os.path.join(base, b"bad\xff.txt"), "wb") as handle:
        handle.write(b"bad")
    with open(os.path.join(base, b"ok", b"half\xc3.txt"), "wb") as handle:
        handle.write(b"half")
    os.mkdir(os.path.join(base, b"dir\xfe"))
    with open(os.path.join(base, b"dir\xfe", b"inner.txt"), "wb") as handle:
        handle.write(b"inner")


def records(report: Path) -> dict[str, dict[str, object]]:
    return {str(r["path"]): r for r in map(json.loads, report.read_text(encoding="utf-8").splitlines())}


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr, result.stderr[-2000:]


# ---- not valid UTF-8 ---------------------------------------------------------------------------


Target = Callable[[str], tuple[str, Callable[[], dict[str, bytes]]]]


@pytest.fixture
def targets(emulator: RunningEmulator, share: ShareClient, sas: str) -> dict[str, Target]:
    """Per --from-to: (destination URL of a directory, what has landed below it)."""
    container = new_container()
    token = blob_sas()

    def files(where: str) -> tuple[str, Callable[[], dict[str, bytes]]]:
        def landed() -> dict[str, bytes]:
            listing = read_share(share, where).files if share.get_directory_client(where).exists() else {}
            return {path[len(where) + 1 :]: data for path, data in listing.items()}

        return share_url(emulator, share, where, sas), landed

    def blobs(where: str) -> tuple[str, Callable[[], dict[str, bytes]]]:
        def landed() -> dict[str, bytes]:
            listing = read_container(container).files
            return {p[len(where) + 1 :]: d for p, d in listing.items() if p.startswith(f"{where}/")}

        return container_url(container, token, where), landed

    return {"LocalFile": files, "LocalBlob": blobs}


@pytest.mark.azurite
@pytest.mark.parametrize("command", ["copy", "sync"])
@pytest.mark.parametrize("from_to", ["LocalFile", "LocalBlob"])
def test_names_not_valid_utf8_fail_alone(
    targets: dict[str, Target], tmp_path: Path, command: str, from_to: str
) -> None:
    src = tmp_path / "src"
    write_bytes_tree(src)
    destination, landed = targets[from_to](f"{command}-dest")
    report = tmp_path / "report.jsonl"
    recursive = ["--recursive"] if command == "copy" else []
    source = str(src / "*") if command == "copy" else str(src)  # the contents, as sync takes them
    result = shareferry(
        command, source, destination, *recursive, "--from-to", from_to, "--report", str(report)
    )
    no_traceback(result)
    assert result.returncode == 1
    assert summary_value(result.stdout, "Final Job Status") == "CompletedWithErrors"
    assert landed() == GOOD
    failed = {path: r["error"] for path, r in records(report).items() if r["result"] == "failed"}
    assert failed == {f"{command}-dest/{shown}": error for shown, error in BAD_UTF8.values()}
    files_failed = summary_value(result.stdout, "Number of File Transfers Failed")
    folders_failed = summary_value(result.stdout, "Number of Folder Transfers Failed")
    assert (files_failed, folders_failed) == ("2", "1")
    for shown, error in BAD_UTF8.values():
        assert f"WARNING: failed: {src / shown}: {error}" in result.stderr


@pytest.mark.azurite
def test_names_not_valid_utf8_keep_json_output_and_the_job_plan_readable(
    targets: dict[str, Target], tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_bytes_tree(src)
    destination, landed = targets["LocalBlob"]("json")
    result = shareferry(
        "copy", str(src / "*"), destination, "--recursive", "--from-to", "LocalBlob", "--output-type", "json"
    )
    no_traceback(result)
    messages = [json.loads(line) for line in result.stdout.splitlines()]  # every line is JSON
    end = json.loads(messages[-1]["MessageContent"])
    assert end["JobStatus"] == "CompletedWithErrors" and end["TransfersFailed"] == "3"
    assert {detail["Src"] for detail in end["FailedTransfers"]} == {
        str(src / s) for s, _ in BAD_UTF8.values()
    }
    job_id = json.loads(messages[0]["MessageContent"])["JobID"]

    listed = shareferry("jobs", "list")
    assert listed.returncode == 0, listed.stderr
    assert job_id in listed.stdout
    resumed = shareferry("jobs", "resume", job_id, "--destination-sas", destination.partition("?")[2])
    no_traceback(resumed)
    assert resumed.returncode == 1
    assert summary_value(resumed.stdout, "Number of File Transfers Failed") == "2"
    assert landed() == GOOD


# ---- control characters ------------------------------------------------------------------------


def test_control_characters_in_a_skipped_name_are_printed_escaped(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    os.mkfifo(src / "pipe\x1b[2J\a\nend")
    result = shareferry(
        "copy", str(src), share_url(emulator, share, "", sas), "--recursive", "--from-to", "LocalFile"
    )
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert (
        f"WARNING: skipped: {src}/pipe\\x1b[2J\\x07\\nend: not a regular file (a named pipe)" in result.stderr
    )
    assert "\x1b" not in result.stderr and "\a" not in result.stderr


CONTROL_NAMES = ("bell\a.txt", "escape\x1b[31m.txt")


def test_control_characters_in_a_failed_name_are_printed_escaped(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in CONTROL_NAMES:
        (src / name).write_bytes(b"x")  # Azure Files refuses control characters in names
    result = shareferry(
        "copy", str(src), share_url(emulator, share, "", sas), "--recursive", "--from-to", "LocalFile"
    )
    assert result.returncode == 1
    printed = result.stdout + result.stderr
    assert "\x1b" not in printed and "\a" not in printed
    assert "FAILED: src/escape\\x1b[31m.txt: " in result.stdout
    assert "FAILED: src/bell\\x07.txt: " in result.stdout


def test_control_characters_refused_by_azure_files_fail_with_their_names_in_the_report(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "plain.txt").write_bytes(b"plain")
    for name in CONTROL_NAMES:
        (src / name).write_bytes(b"x")
    report = tmp_path / "report.jsonl"
    result = shareferry(
        "copy", str(src), share_url(emulator, share, "", sas), "--recursive", "--from-to", "LocalFile",
        "--report", str(report),
    )  # fmt: skip
    no_traceback(result)
    assert result.returncode == 1
    outcomes = {path: r["result"] for path, r in records(report).items()}
    assert outcomes == {"src": "completed", "src/plain.txt": "completed"} | {
        f"src/{name}": "failed" for name in CONTROL_NAMES
    }
    assert read_share(share).files == {"src/plain.txt": b"plain"}


# ---- leading and doubled slashes in blob names ---------------------------------------------------

SLASHED = {"/lead.txt": b"lead", "//double.txt": b"double", "dir//inner.txt": b"inner"}
#: Names that sort around "/" in the service's order, so the march's tree order is put to the test.
PLAIN_BLOBS = {
    "-dash.txt": b"-",
    " space.txt": b" ",
    "dir/fine.txt": b"fine",
    "dir/-d.txt": b"-d",
    "ok.txt": b"ok",
    "zz/last.txt": b"z",
}


def slashed_reason(name: str) -> str:
    return (
        f"its name '{name}' has an empty segment (a leading '/' or a '//'), which no path of files "
        "and folders can hold"
    )


@pytest.fixture
def slashed_container() -> ContainerClient:
    container = new_container()
    for name, data in {**SLASHED, **PLAIN_BLOBS}.items():
        container.upload_blob(name, data)
    assert {blob.name for blob in container.list_blobs()} == {*SLASHED, *PLAIN_BLOBS}
    return container


@pytest.mark.azurite
@pytest.mark.parametrize("command", ["copy", "sync"])
@pytest.mark.parametrize("from_to", ["BlobLocal", "BlobFile"])
def test_blob_names_with_empty_segments_are_reported_not_dropped(
    emulator: RunningEmulator,
    share: ShareClient,
    sas: str,
    slashed_container: ContainerClient,
    tmp_path: Path,
    command: str,
    from_to: str,
) -> None:
    report = tmp_path / "report.jsonl"
    if from_to == "BlobLocal":
        destination = tmp_path / "down"
        destination.mkdir()

        def landed() -> dict[str, bytes]:
            return read_local(destination).files

        target = str(destination)
    else:
        target = share_url(emulator, share, "", sas)

        def landed() -> dict[str, bytes]:
            return read_share(share).files

    source = container_url(slashed_container, blob_sas())
    source = source.replace("?", "/*?") if command == "copy" else source
    recursive = ["--recursive"] if command == "copy" else []
    result = shareferry(command, source, target, *recursive, "--from-to", from_to, "--report", str(report))
    no_traceback(result)
    assert result.returncode == 1
    assert landed() == PLAIN_BLOBS
    failed = {str(r["error"]) for r in records(report).values() if r["result"] == "failed"}
    assert failed == {slashed_reason(name) for name in SLASHED}
    assert summary_value(result.stdout, "Number of File Transfers Failed") == str(len(SLASHED))
    assert summary_value(result.stdout, "Number of File Transfers Completed") == str(len(PLAIN_BLOBS))


# ---- odd but valid names -------------------------------------------------------------------------

ODD_NAMES = {
    "255 ASCII bytes": "n" * 251 + ".txt",
    "255 bytes of 3-byte characters": "€" * 85,
    "only dots": "...",
    "only spaces": "   ",
    "leading space": " leading.txt",
    "trailing dot": "trailing.",
}


@pytest.mark.azurite
@pytest.mark.parametrize("via", ["Files", "Blob"])
def test_odd_names_go_there_and_back_byte_identical(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path, via: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    files = {name: f"{case}\n".encode() for case, name in ODD_NAMES.items()}
    for name, data in files.items():
        (src / name).write_bytes(data)
    if via == "Files":
        remote = share_url(emulator, share, "", sas)
        up_flag, down_flag, down_source = "LocalFile", "FileLocal", share_url(emulator, share, "src", sas)
    else:
        container = new_container()
        token = blob_sas()
        remote = container_url(container, token)
        up_flag, down_flag, down_source = "LocalBlob", "BlobLocal", container_url(container, token, "src")
    up = shareferry("copy", str(src), remote, "--recursive", "--from-to", up_flag)
    no_traceback(up)
    assert up.returncode == 0, up.stdout[-2000:]
    down = shareferry("copy", down_source, str(tmp_path / "back"), "--recursive", "--from-to", down_flag)
    no_traceback(down)
    assert down.returncode == 0, down.stdout[-2000:]
    assert read_local(tmp_path / "back" / "src").files == files
    synced = shareferry("sync", down_source, str(tmp_path / "back" / "src"), "--from-to", down_flag)
    assert synced.returncode == 0, synced.stdout[-2000:]
    assert summary_value(synced.stdout, "Files Unchanged") == str(len(files))  # same names: paired


def test_a_sync_download_leaves_a_destination_name_not_valid_utf8_alone(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    write_share(share, {"mirror/good.txt": b"good"})
    target = tmp_path / "target"
    write_bytes_tree(target)  # GOOD, plus names no share could have sent
    result = shareferry(
        "sync", share_url(emulator, share, "mirror", sas), str(target), "--from-to", "FileLocal",
        "--delete-destination", "true",
    )  # fmt: skip
    no_traceback(result)
    assert result.returncode == 0, result.stdout[-2000:]
    assert (
        summary_value(result.stdout, "Number of Deletions at Destination") == "1 of 2"
    )  # ok/fine.txt; ok/ is kept: not empty
    left = set(os.listdir(os.fsencode(target)))
    assert left == {b"good.txt", b"bad\xff.txt", b"dir\xfe", b"ok"}
    assert os.listdir(os.fsencode(target / "ok")) == [b"half\xc3.txt"]
