"""The real AzCopy 10.32.2, an independent client, against the emulator (and Azurite as a source).

AzCopy comes from the npm package ``@azure-tools/azcopy-linux`` (see tests/support/azcopy.py).
Each test runs it as a user would, with an account SAS in the URL and ``--from-to`` (required
for loopback endpoints), requires exit status 0 and "Final Job Status: Completed", and checks
the bytes and MD5s that landed, read back with the Azure SDK or from the file system, plus the
emulator's request counters where they show which operations AzCopy really used. Besides a
round trip and a Blob source, there is one test for each Azure Files example of the AzCopy
reference: upload and download of a file and of a tree, a copy from a share snapshot,
share-to-share copies, ``sync`` in the three directions with ``--delete-destination=true``,
``list`` and ``remove``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareClient,
    ShareServiceClient,
    generate_account_sas,
)

from shareferry.emulator import RunningEmulator
from tests.support.azcopy import AZCOPY_COMMON_FLAGS, azcopy_env, ensure_azcopy
from tests.support.azurite import run_azurite
from tests.support.trees import md5, read_local, read_share, write_local, write_share

pytestmark = [pytest.mark.azcopy, pytest.mark.slow]


@pytest.fixture(scope="module")
def azcopy() -> Path:
    return ensure_azcopy()


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> MD5 of every file below root."""
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _make_source(root: Path) -> dict[str, str]:
    (root / "sub dir" / "deeper").mkdir(parents=True)
    (root / "empty dir").mkdir()
    (root / "hello.txt").write_bytes(b"hello, files\n")
    (root / "zero.bin").write_bytes(b"")
    (root / "sub dir" / "nine-mib.bin").write_bytes(os.urandom(9 * 1024 * 1024 + 3))
    (root / "sub dir" / "deeper" / "naïve #1 + 100%.txt").write_bytes("unicode ✓\n".encode())
    for i in range(20):
        (root / "sub dir" / f"small-{i:02}.dat").write_bytes(os.urandom(1000 + i))
    return _tree(root)


def _sas(emulator: RunningEmulator) -> str:
    account = emulator.account()
    return generate_account_sas(
        account.name,
        account.key,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, create=True),
        datetime.now(UTC) + timedelta(hours=1),
    )


def _run(azcopy: Path, tmp: Path, *args: str, job: bool = True) -> subprocess.CompletedProcess[str]:
    """Run AzCopy; it must exit 0 and, for a job (copy, sync, remove), end "Completed" (not "...WithErrors")."""
    result = subprocess.run(
        [str(azcopy), *args, *AZCOPY_COMMON_FLAGS],
        env=azcopy_env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"azcopy failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    if job:
        assert re.search(r"^Final Job Status: Completed$", result.stdout, re.MULTILINE), result.stdout[-3000:]
    return result


def _counters(emulator: RunningEmulator) -> dict[str, dict[str, object]]:
    with urllib.request.urlopen(f"{emulator.admin_url}/counters") as response:
        operations: dict[str, dict[str, object]] = json.load(response)["operations"]
        return operations


def _remote_tree(service: ShareServiceClient, share: str, directory: str) -> dict[str, str]:
    client = service.get_share_client(share)
    found: dict[str, str] = {}

    def walk(path: str, prefix: str) -> None:
        for item in client.get_directory_client(path).list_directories_and_files():
            child = f"{path}/{item['name']}" if path else item["name"]
            if item["is_directory"]:
                walk(child, f"{prefix}{item['name']}/")
            else:
                data = client.get_file_client(child).download_file().readall()
                found[f"{prefix}{item['name']}"] = hashlib.md5(data).hexdigest()

    walk(directory, "")
    return found


def test_upload_download_and_share_to_share_round_trip(
    azcopy: Path, emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    expected = _make_source(source)
    service.create_share("upload")
    service.create_share("copied")
    sas = _sas(emulator)
    base = emulator.account_url()

    _run(
        azcopy,
        tmp_path,
        "copy",
        str(source),
        f"{base}/upload?{sas}",
        "--recursive",
        "--from-to",
        "LocalFile",
        "--put-md5",
    )
    assert _remote_tree(service, "upload", "src") == expected
    stored = service.get_share_client("upload").get_file_client("src/hello.txt").get_file_properties()
    assert bytes(stored.content_settings.content_md5) == hashlib.md5(b"hello, files\n").digest()
    assert service.get_share_client("upload").get_directory_client("src/empty dir").exists()

    download = tmp_path / "down"
    _run(
        azcopy,
        tmp_path,
        "copy",
        f"{base}/upload/src?{sas}",
        str(download),
        "--recursive",
        "--from-to",
        "FileLocal",
    )
    assert _tree(download / "src") == expected
    assert (download / "src" / "empty dir").is_dir()

    before = _counters(emulator)
    _run(
        azcopy,
        tmp_path,
        "copy",
        f"{base}/upload/src?{sas}",
        f"{base}/copied?{sas}",
        "--recursive",
        "--from-to",
        "FileFile",
    )
    assert _remote_tree(service, "copied", "src") == expected
    after = _counters(emulator)
    # Share-to-share is server-side: AzCopy used Put Range From URL and sent no bytes itself.
    assert after["PutRangeFromURL"]["total"] > before.get("PutRangeFromURL", {}).get("total", 0)  # type: ignore[operator]
    assert after.get("PutRange", {}).get("total") == before.get("PutRange", {}).get("total")


def test_azcopy_copies_an_azurite_blob_into_a_share(
    azcopy: Path, emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path
) -> None:
    """BlobFile: AzCopy reads an Azurite blob by SAS and the emulator pulls it by Put Range From URL."""
    payload = os.urandom(5 * 1024 * 1024 + 17)
    with run_azurite(tmp_path / "azurite") as azurite:
        blobs = BlobServiceClient(azurite.endpoint, credential=azurite.credential)
        container = blobs.create_container("source")
        container.upload_blob("dir/data.bin", payload)
        blob_sas = generate_container_sas(
            azurite.account,
            "source",
            account_key=azurite.key,
            permission=ContainerSasPermissions(read=True, list=True),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
        service.create_share("fromblob")
        _run(
            azcopy,
            tmp_path,
            "copy",
            f"{azurite.endpoint}/source/dir/data.bin?{blob_sas}",
            f"{emulator.account_url()}/fromblob/data.bin?{_sas(emulator)}",
            "--from-to",
            "BlobFile",
        )
    landed = service.get_share_client("fromblob").get_file_client("data.bin").download_file().readall()
    assert hashlib.md5(landed).hexdigest() == hashlib.md5(payload).hexdigest()
    assert _counters(emulator)["PutRangeFromURL"]["total"] == 2


# ---- every Azure Files example of the AzCopy reference, one test each --------------------------

#: A small tree: two levels, a name with a space and non-ASCII, an empty file and an empty folder.
TREE: dict[str, bytes] = {
    "top.txt": b"top level\n",
    "empty.bin": b"",
    "docs/readme.md": b"# readme\n",
    "docs/deep/naïve café.txt": "unicode ✓\n".encode(),
    "docs/deep/block.bin": bytes(range(256)) * 300,
}
TREE_DIRS = ("docs", "docs/deep", "nothing here")


def _md5s(files: dict[str, bytes]) -> dict[str, str]:
    return {path: hashlib.md5(data).hexdigest() for path, data in files.items()}


def _url(emulator: RunningEmulator, path: str, *, snapshot: str | None = None) -> str:
    """``<account>/<path>?<account SAS>`` (path quoted as AzCopy expects it), optionally at a share snapshot."""
    query = _sas(emulator)
    if snapshot is not None:
        query += "&" + urllib.parse.urlencode({"sharesnapshot": snapshot})
    return f"{emulator.account_url()}/{urllib.parse.quote(path)}?{query}"


def test_upload_a_single_file_into_a_new_directory(
    azcopy: Path, emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    """azcopy copy /path/to/file.txt https://account.file.../share/path/to/file.txt?SAS"""
    local = tmp_path / "report 1.csv"
    local.write_bytes(b"a,b\n1,2\n" * 1000)
    _run(
        azcopy,
        tmp_path,
        "copy",
        str(local),
        _url(emulator, f"{share.share_name}/in/report 1.csv"),
        "--from-to",
        "LocalFile",
        "--put-md5",
    )
    landed = read_share(share)
    assert landed.files == {"in/report 1.csv": local.read_bytes()}
    assert landed.stored_md5["in/report 1.csv"] == md5(local.read_bytes())


def test_upload_a_directory_tree_recursively(
    azcopy: Path, emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    """azcopy copy /path/to/dir https://account.file.../share?SAS --recursive: lands under dir/."""
    write_local(tmp_path / "tree", TREE, TREE_DIRS)
    _run(
        azcopy,
        tmp_path,
        "copy",
        str(tmp_path / "tree"),
        _url(emulator, share.share_name),
        "--recursive",
        "--from-to",
        "LocalFile",
    )
    landed = read_share(share)
    assert _md5s(landed.files) == _md5s({f"tree/{path}": data for path, data in TREE.items()})
    assert landed.dirs == {"tree", *(f"tree/{d}" for d in TREE_DIRS)}


def test_download_a_single_file(
    azcopy: Path, emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    """azcopy copy https://account.file.../share/path/to/file?SAS /path/to/file"""
    write_share(share, TREE)
    target = tmp_path / "down" / "block copy.bin"
    _run(
        azcopy,
        tmp_path,
        "copy",
        _url(emulator, f"{share.share_name}/docs/deep/block.bin"),
        str(target),
        "--from-to",
        "FileLocal",
    )
    assert hashlib.md5(target.read_bytes()).hexdigest() == _md5s(TREE)["docs/deep/block.bin"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["block copy.bin"]  # no temporary left


def test_download_a_directory_tree(
    azcopy: Path, emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    """azcopy copy https://account.file.../share/dir?SAS /path/to/local --recursive: lands under local/dir."""
    write_share(share, {f"data/{path}": blob for path, blob in TREE.items()}, ("data/nothing here",))
    _run(
        azcopy,
        tmp_path,
        "copy",
        _url(emulator, f"{share.share_name}/data"),
        str(tmp_path / "local"),
        "--recursive",
        "--from-to",
        "FileLocal",
    )
    landed = read_local(tmp_path / "local" / "data")
    assert _md5s(landed.files) == _md5s(TREE)
    assert landed.dirs == set(TREE_DIRS)


def test_copy_from_a_share_snapshot(
    azcopy: Path, emulator: RunningEmulator, service: ShareServiceClient, share: ShareClient, tmp_path: Path
) -> None:
    """?sharesnapshot= in the source URL reads the snapshot, not the live share (to local and to a share)."""
    write_share(share, TREE)
    snapshot = share.create_snapshot()["snapshot"]
    write_share(share, {"top.txt": b"changed after the snapshot\n"})
    share.get_file_client("docs/readme.md").delete_file()

    _run(
        azcopy,
        tmp_path,
        "copy",
        _url(emulator, f"{share.share_name}/docs", snapshot=snapshot),
        str(tmp_path / "local"),
        "--recursive",
        "--from-to",
        "FileLocal",
    )
    assert _md5s(read_local(tmp_path / "local").files) == _md5s(
        {f"docs/{path[5:]}": data for path, data in TREE.items() if path.startswith("docs/")}
    )

    restored = service.create_share("restored")
    _run(
        azcopy,
        tmp_path,
        "copy",
        _url(emulator, f"{share.share_name}/top.txt", snapshot=snapshot),
        _url(emulator, "restored/top.txt"),
        "--from-to",
        "FileFile",
    )
    assert read_share(restored).files == {"top.txt": TREE["top.txt"]}


def test_copy_a_single_file_share_to_share(
    azcopy: Path, emulator: RunningEmulator, service: ShareServiceClient, share: ShareClient, tmp_path: Path
) -> None:
    """azcopy copy https://.../share/file?SAS https://.../other/file?SAS: server-side, no bytes through AzCopy."""
    write_share(share, TREE)
    other = service.create_share("other")
    before = _counters(emulator)
    _run(
        azcopy,
        tmp_path,
        "copy",
        _url(emulator, f"{share.share_name}/docs/deep/block.bin"),
        _url(emulator, "other/copies/block.bin"),
        "--from-to",
        "FileFile",
    )
    assert read_share(other).files == {"copies/block.bin": TREE["docs/deep/block.bin"]}
    after = _counters(emulator)
    assert after["PutRangeFromURL"]["total"] == before.get("PutRangeFromURL", {}).get("total", 0) + 1  # type: ignore[operator]
    assert after.get("PutRange", {}).get("total") == before.get("PutRange", {}).get("total")


def test_copy_a_directory_tree_share_to_share(
    azcopy: Path, emulator: RunningEmulator, service: ShareServiceClient, share: ShareClient, tmp_path: Path
) -> None:
    """azcopy copy https://.../share/dir?SAS https://.../other?SAS --recursive: lands under other/dir."""
    write_share(share, {f"data/{path}": blob for path, blob in TREE.items()}, ("data/nothing here",))
    other = service.create_share("other")
    before = _counters(emulator)
    _run(
        azcopy,
        tmp_path,
        "copy",
        _url(emulator, f"{share.share_name}/data"),
        _url(emulator, "other"),
        "--recursive",
        "--from-to",
        "FileFile",
    )
    landed = read_share(other)
    assert _md5s(landed.files) == _md5s({f"data/{path}": blob for path, blob in TREE.items()})
    assert landed.dirs == {"data", *(f"data/{d}" for d in TREE_DIRS)}
    after = _counters(emulator)
    assert after.get("PutRange", {}).get("total") == before.get("PutRange", {}).get(
        "total"
    )  # server-side only
    # One Put Range From URL per non-empty file, none for the empty one
    assert after["PutRangeFromURL"]["total"] == len(TREE) - 1  # type: ignore[operator]


def test_sync_local_to_share_deletes_at_the_destination(
    azcopy: Path, emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    """azcopy sync /local https://.../share?SAS --delete-destination=true: the share ends equal to local."""
    write_share(share, {"top.txt": b"old\n", "stale.txt": b"gone soon\n", "stale dir/x.txt": b"x\n"})
    write_local(tmp_path / "local", TREE, TREE_DIRS)
    later = time.time() + 3600  # newer than the share's copies, whatever the clocks' granularity
    os.utime(tmp_path / "local" / "top.txt", (later, later))
    _run(
        azcopy,
        tmp_path,
        "sync",
        str(tmp_path / "local"),
        _url(emulator, share.share_name),
        "--recursive=true",
        "--delete-destination=true",
        "--from-to",
        "LocalFile",
    )
    landed = read_share(share)
    assert _md5s(landed.files) == _md5s(TREE)
    assert "stale dir" not in landed.dirs


def test_sync_share_to_local_deletes_at_the_destination(
    azcopy: Path, emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    """azcopy sync https://.../share?SAS /local --delete-destination=true: local ends equal to the share."""
    write_share(share, TREE, TREE_DIRS)
    local = tmp_path / "local"
    write_local(local, {"top.txt": b"old\n", "stale.txt": b"gone soon\n", "stale dir/x.txt": b"x\n"})
    os.utime(local / "top.txt", (1_000_000_000, 1_000_000_000))  # 2001: older than the share's
    _run(
        azcopy,
        tmp_path,
        "sync",
        _url(emulator, share.share_name),
        str(local),
        "--recursive=true",
        "--delete-destination=true",
        "--from-to",
        "FileLocal",
    )
    landed = read_local(local)
    assert _md5s(landed.files) == _md5s(TREE)
    assert "stale dir" not in landed.dirs


def test_sync_share_to_share_deletes_at_the_destination(
    azcopy: Path, emulator: RunningEmulator, service: ShareServiceClient, share: ShareClient, tmp_path: Path
) -> None:
    """azcopy sync https://.../share?SAS https://.../other?SAS --delete-destination=true."""
    other = service.create_share("other")
    write_share(other, {"top.txt": b"old\n", "stale.txt": b"gone soon\n", "stale dir/x.txt": b"x\n"})
    time.sleep(1.1)  # Last-Modified has whole seconds: the source must be strictly newer
    write_share(share, TREE, TREE_DIRS)
    _run(
        azcopy,
        tmp_path,
        "sync",
        _url(emulator, share.share_name),
        _url(emulator, "other"),
        "--recursive=true",
        "--delete-destination=true",
        "--from-to",
        "FileFile",
    )
    landed = read_share(other)
    assert _md5s(landed.files) == _md5s(TREE)
    assert "stale dir" not in landed.dirs
    assert _md5s(read_share(share).files) == _md5s(TREE)  # the source is untouched


def test_list_a_share_shows_names_and_sizes(
    azcopy: Path, emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    """azcopy list https://.../share?SAS --machine-readable --running-tally: a line per entry, sizes in bytes.

    10.32.2 prints ``<path>; Content Length: <n>`` (10.18.1 prefixed ``INFO: ``), lists folders
    too, with a trailing ``/`` and the share's root as ``/``, and its tally counts them as files.
    """
    write_share(share, TREE, TREE_DIRS)
    result = _run(
        azcopy,
        tmp_path,
        "list",
        _url(emulator, share.share_name),
        "--location",
        "File",
        "--machine-readable",
        "--running-tally",
        job=False,
    )
    listed = dict(re.findall(r"^(.+?); Content Length: (\d+)$", result.stdout, re.MULTILINE))
    folders = {"/", *(f"{d}/" for d in TREE_DIRS)}
    assert listed == {**{path: str(len(data)) for path, data in TREE.items()}, **dict.fromkeys(folders, "0")}
    assert f"\nFile count: {len(TREE) + len(folders)}\n" in result.stdout
    assert f"\nTotal file size: {sum(len(d) for d in TREE.values())}\n" in result.stdout


def test_remove_a_single_file(
    azcopy: Path, emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    """azcopy rm https://.../share/path/to/file?SAS"""
    write_share(share, TREE)
    _run(
        azcopy,
        tmp_path,
        "remove",
        _url(emulator, f"{share.share_name}/docs/readme.md"),
        "--from-to",
        "FileTrash",
    )
    assert set(read_share(share).files) == set(TREE) - {"docs/readme.md"}


def test_remove_a_directory_recursively(
    azcopy: Path, emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    """azcopy rm https://.../share/dir?SAS --recursive=true: the directory and all below it go."""
    write_share(share, TREE, ("docs/deep/empty",))
    _run(
        azcopy,
        tmp_path,
        "remove",
        _url(emulator, f"{share.share_name}/docs"),
        "--recursive=true",
        "--from-to",
        "FileTrash",
    )
    landed = read_share(share)
    assert set(landed.files) == {"top.txt", "empty.bin"}
    assert landed.dirs == set()
