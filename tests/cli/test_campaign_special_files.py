"""Special files on both sides of a copy or sync, as a user meets them with ``shareferry``.

Destination side (downloads): a character device (``/dev/null`` and a twin of it) or a named
pipe is written into and stays what it is, as AzCopy does; a socket or a block device is refused
with one clear line and stays too, whatever ``--overwrite`` says or in a sync. Source side
(uploads): pipes, sockets, devices and symbolic links in a tree are reported as skipped with
their reason (counters, ``--report``, JSON output) instead of vanishing; one named as the source
says so instead of "source not found"; a sync never deletes what stands at their path.

Devices are made with ``mknod`` where the tests run as root (a twin of ``/dev/null``: major 1,
minor 3); the real ``/dev/null`` is only written once its twin has passed, so a regression cannot
take the machine's ``/dev/null`` with it.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.storage.fileshare import ShareClient

from shareferry.emulator import RunningEmulator
from tests.cli.test_copy_cli import account_sas, clean_environment, share_url, shareferry, summary_value
from tests.support.trees import read_share, write_local, write_share

KIB = 1024
BIG = os.urandom(700 * KIB + 13)  # several 256 KiB chunks: written in order into a pipe
SMALL = b"small enough for one request\n"
CHUNKS = ("--block-size-mb", "0.25")
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="mknod of a device needs root")


def null_twin(where: Path) -> Path:
    """A character device that is ``/dev/null`` (1, 3), made in ``where``."""
    os.mknod(where, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return where


def is_char_device(path: Path) -> bool:
    return stat.S_ISCHR(Path(path).lstat().st_mode)


Remote = Callable[[str], str]


@pytest.fixture
def sas(emulator: RunningEmulator) -> str:
    return account_sas(emulator)


@pytest.fixture
def remote(emulator: RunningEmulator, share: ShareClient, sas: str) -> Remote:
    """The URL (with a SAS) of a path in a share holding big.bin, small.txt and tree/{a,b}.txt."""
    write_share(share, {"big.bin": BIG, "small.txt": SMALL, "tree/a.txt": b"a", "tree/b.txt": b"b"})
    return lambda path: share_url(emulator, share, path, sas)


def report_records(report: Path) -> dict[str, dict[str, object]]:
    return {str(record["path"]): record for record in map(json.loads, report.read_text().splitlines())}


# ---- destinations ------------------------------------------------------------------------------


@needs_root
@pytest.mark.parametrize("name", ["big.bin", "small.txt"])
def test_a_download_onto_a_null_device_writes_into_it(remote: Remote, tmp_path: Path, name: str) -> None:
    twin = null_twin(tmp_path / "null")
    result = shareferry("copy", remote(name), str(twin), "--from-to", "FileLocal", *CHUNKS)
    assert result.returncode == 0, result.stderr
    assert is_char_device(twin) and twin.stat().st_rdev == os.makedev(1, 3)
    assert summary_value(result.stdout, "Number of File Transfers Completed") == "1"
    assert [entry.name for entry in tmp_path.iterdir()] == ["null"]  # no staged temporary file left beside it

    # Its twin passed: now the machine's own /dev/null, as the report did it.
    again = shareferry("copy", remote(name), "/dev/null", "--from-to", "FileLocal", "--overwrite=true")
    assert again.returncode == 0, again.stderr
    assert is_char_device(Path("/dev/null"))
    assert stat.S_IMODE(Path("/dev/null").stat().st_mode) == 0o666


@pytest.mark.parametrize("data_name", ["big.bin", "small.txt"])
def test_a_download_onto_a_named_pipe_is_read_by_its_reader(
    remote: Remote, tmp_path: Path, data_name: str
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with fifo.open("rb") as pipe:  # waits for the writer, then reads to its end
            received.append(pipe.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    result = shareferry("copy", remote(data_name), str(fifo), "--from-to", "FileLocal", *CHUNKS)
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert received == [BIG if data_name == "big.bin" else SMALL]
    assert stat.S_ISFIFO(Path(fifo).lstat().st_mode)
    assert [entry.name for entry in tmp_path.iterdir()] == ["pipe"]


def test_a_named_pipe_nobody_reads_fails_at_once_and_stays(remote: Remote, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = shareferry("copy", remote("small.txt"), str(fifo), "--from-to", "FileLocal")
    assert result.returncode == 1
    assert f"FAILED: pipe: cannot write {fifo}: no process is reading the named pipe" in result.stdout
    assert stat.S_ISFIFO(Path(fifo).lstat().st_mode)


@pytest.mark.parametrize("name", ["big.bin", "small.txt"])
def test_a_download_to_dev_stdout_prints_the_bytes(remote: Remote, name: str) -> None:
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "shareferry",
            "copy",
            remote(name),
            "/dev/stdout",
            "--from-to",
            "FileLocal",
            *CHUNKS,
        ],
        capture_output=True,
        timeout=120,
        check=False,
        env=clean_environment(),
        stdin=subprocess.DEVNULL,
    )
    assert process.returncode == 0, process.stderr
    data = BIG if name == "big.bin" else SMALL
    assert process.stdout.startswith(data)  # the summary follows the file's bytes


def bound_socket(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    return server


@pytest.mark.parametrize("overwrite", ["true", "false", "ifSourceNewer"])
def test_a_socket_destination_is_refused_and_stays(remote: Remote, tmp_path: Path, overwrite: str) -> None:
    target = tmp_path / "sock"
    with bound_socket(target):
        result = shareferry(
            "copy", remote("small.txt"), str(target), "--from-to", "FileLocal", f"--overwrite={overwrite}"
        )
        assert stat.S_ISSOCK(Path(target).lstat().st_mode)
    if overwrite == "true":
        assert result.returncode == 1
        assert (
            f"FAILED: sock: cannot write {target}: it is a socket, not a regular file (only regular "
            "files, character devices and named pipes are written)"
        ) in result.stdout
    else:  # it exists: kept, as any existing file would be
        assert result.returncode == 0, result.stderr
        assert summary_value(result.stdout, "Number of File Transfers Skipped") == "1"


@needs_root
def test_a_block_device_destination_is_refused_and_stays(remote: Remote, tmp_path: Path) -> None:
    target = tmp_path / "disk"
    os.mknod(target, stat.S_IFBLK | 0o600, os.makedev(7, 200))  # a loop device node, never opened
    result = shareferry("copy", remote("small.txt"), str(target), "--from-to", "FileLocal")
    assert result.returncode == 1
    assert f"cannot write {target}: it is a block device, not a regular file" in result.stdout
    assert stat.S_ISBLK(Path(target).lstat().st_mode)


def test_a_sync_never_replaces_or_deletes_special_files_at_the_destination(
    remote: Remote, tmp_path: Path
) -> None:
    target = tmp_path / "tree"
    target.mkdir()
    os.mkfifo(target / "a.txt")  # where the source has a file
    os.mkfifo(target / "only-here")  # not at the source
    report = tmp_path / "report.jsonl"
    with bound_socket(target / "b.txt"):
        result = shareferry(
            "sync", remote("tree"), str(target), "--from-to", "FileLocal",
            "--delete-destination", "true", "--report", str(report),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name, test in (("a.txt", stat.S_ISFIFO), ("only-here", stat.S_ISFIFO), ("b.txt", stat.S_ISSOCK)):
        assert test(Path(target / name).lstat().st_mode), name
    records = report_records(report)
    assert records["a.txt"]["result"] == "skipped"
    assert records["a.txt"]["reason"] == "not replaced: the destination is not a regular file (a named pipe)"
    assert records["b.txt"]["result"] == "skipped" and "a socket" in str(records["b.txt"]["reason"])
    assert summary_value(result.stdout, "Number of File Transfers Skipped") == "2"
    assert summary_value(result.stdout, "Number of Deletions at Destination") == "0 of 0"


# ---- sources -----------------------------------------------------------------------------------


@pytest.fixture
def special_tree(tmp_path: Path) -> Iterator[Path]:
    """src/ with two regular files, a pipe, a socket, a symbolic link to a file, a dangling one
    and (as root) a character device, plus sub/ with one more pipe."""
    src = tmp_path / "src"
    write_local(src, {"a.txt": b"alpha", "sub/b.txt": b"beta"})
    os.mkfifo(src / "pipe")
    os.mkfifo(src / "sub" / "pipe2")
    (src / "link").symlink_to("a.txt")
    (src / "dangling").symlink_to("nowhere")
    if ROOT:
        null_twin(src / "null")
    with bound_socket(src / "sock"):
        yield src


SPECIAL_REASONS = {
    "pipe": "not a regular file (a named pipe)",
    "sub/pipe2": "not a regular file (a named pipe)",
    "sock": "not a regular file (a socket)",
    "link": "not a regular file (a symbolic link; --follow-symlinks copies what it points to)",
    "dangling": "not a regular file (a symbolic link; --follow-symlinks copies what it points to)",
    **({"null": "not a regular file (a character device)"} if ROOT else {}),
}


def test_special_files_in_an_upload_are_skipped_with_their_reason(
    emulator: RunningEmulator, share: ShareClient, sas: str, special_tree: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.jsonl"
    result = shareferry(
        "copy", str(special_tree), share_url(emulator, share, "", sas), "--recursive", "--from-to", "LocalFile",
        "--report", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert summary_value(result.stdout, "Final Job Status") == "CompletedWithSkipped"
    assert summary_value(result.stdout, "Number of File Transfers Skipped") == str(len(SPECIAL_REASONS))
    assert summary_value(result.stdout, "Number of File Transfers Completed") == "2"
    assert read_share(share).files == {"src/a.txt": b"alpha", "src/sub/b.txt": b"beta"}
    skipped = {
        path: record for path, record in report_records(report).items() if record["result"] == "skipped"
    }
    assert {path: record["reason"] for path, record in skipped.items()} == {
        f"src/{name}": reason for name, reason in SPECIAL_REASONS.items()
    }
    for name, reason in SPECIAL_REASONS.items():
        assert f"WARNING: skipped: {special_tree / name}: {reason}" in result.stderr


def test_special_files_in_an_upload_are_in_the_json_output(
    emulator: RunningEmulator, share: ShareClient, sas: str, special_tree: Path
) -> None:
    result = shareferry(
        "copy", str(special_tree), share_url(emulator, share, "", sas), "--recursive", "--from-to", "LocalFile",
        "--follow-symlinks", "--output-type", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    end = json.loads(messages[-1]["MessageContent"])
    # Followed, the link to a.txt is a file like any other; the dangling one is still skipped.
    reasons = {**SPECIAL_REASONS, "dangling": "not a regular file (a broken symbolic link)"}
    del reasons["link"]
    assert end["TransfersSkipped"] == str(len(reasons))
    assert {(detail["Src"], detail["Reason"]) for detail in end["SkippedTransfers"]} == {
        (str(special_tree / name), reason) for name, reason in reasons.items()
    }
    infos = {m["MessageContent"] for m in messages if m["MessageType"] == "Info"}
    assert {f"WARNING: skipped: {special_tree / name}: {reason}" for name, reason in reasons.items()} <= infos
    assert read_share(share).files["src/link"] == b"alpha"


@pytest.mark.parametrize("name", ["pipe", "sock", "null"] if ROOT else ["pipe", "sock"])
def test_a_special_file_named_as_the_source_says_what_it_is(
    emulator: RunningEmulator, share: ShareClient, sas: str, special_tree: Path, name: str
) -> None:
    result = shareferry(
        "copy", str(special_tree / name), share_url(emulator, share, "", sas), "--from-to", "LocalFile",
        "--follow-symlinks",
    )  # fmt: skip
    assert "source not found" not in result.stdout + result.stderr
    assert result.returncode == 0, result.stderr
    reason = SPECIAL_REASONS[name]
    assert f"WARNING: skipped: {special_tree / name}: {reason}" in result.stderr
    assert summary_value(result.stdout, "Number of File Transfers Skipped") == "1"
    assert read_share(share).files == {}


def test_a_broken_symbolic_link_named_as_the_source_says_so(
    emulator: RunningEmulator, share: ShareClient, sas: str, special_tree: Path
) -> None:
    result = shareferry(
        "copy", str(special_tree / "dangling"), share_url(emulator, share, "", sas), "--from-to", "LocalFile",
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"the source {special_tree / 'dangling'} is a broken symbolic link" in result.stderr
    assert "does not exist)" in result.stderr and read_share(share).files == {}


def test_a_sync_keeps_destination_files_where_the_source_has_special_files(
    emulator: RunningEmulator, share: ShareClient, sas: str, special_tree: Path
) -> None:
    write_share(share, {"mirror/pipe": b"a file where the source has a pipe", "mirror/extra.txt": b"x"})
    result = shareferry(
        "sync", str(special_tree), share_url(emulator, share, "mirror", sas), "--from-to", "LocalFile",
        "--delete-destination", "true",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    files = read_share(share, "mirror").files
    assert files["mirror/pipe"] == b"a file where the source has a pipe"  # paired, never deleted
    assert "mirror/extra.txt" not in files  # really not at the source: deleted
    assert files["mirror/a.txt"] == b"alpha"
    assert summary_value(result.stdout, "Number of File Transfers Skipped") == str(len(SPECIAL_REASONS))
