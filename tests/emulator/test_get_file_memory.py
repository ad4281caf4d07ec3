"""A large Get File costs the emulator bounded memory: its bytes are never held twice.

The emulator runs as its own process (``shareferry emulator``), so its peak resident memory can
be read from ``/proc``: the peak is reset (``clear_refs``) just before the GET and read back
(``VmHWM``) after it. The body is read piece by piece and its MD5 checked, as a client would.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest
from azure.storage.fileshare import ShareSasPermissions, ShareServiceClient, generate_share_sas

from tests.support.emulator_process import EmulatorProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

MiB = 1024 * 1024
SIZE = 256 * MiB
SHARE = "big"


class BigFile(NamedTuple):
    pid: int
    url: str
    md5: str
    first_32_mib_md5: str


def _peak_reset(pid: int) -> int:
    """Reset the process's peak RSS; its current RSS in bytes."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status(pid, "VmRSS:")


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} for {pid}")


@pytest.fixture(scope="module", params=["in-memory", "data-dir"])
def big_file(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigFile]:
    args = ["--port", "0"]
    if request.param == "data-dir":
        args += ["--data-dir", str(tmp_path_factory.mktemp("emulator-data"))]
    with EmulatorProcess(*args) as emulator:
        service = ShareServiceClient.from_connection_string(emulator.connection_string)
        client = service.create_share(SHARE).get_file_client("big.bin")
        client.create_file(SIZE)
        whole, head = hashlib.md5(), hashlib.md5()
        block = os.urandom(4 * MiB)
        for offset in range(0, SIZE, len(block)):
            client.upload_range(block, offset=offset, length=len(block))
            whole.update(block)
            if offset < 32 * MiB:
                head.update(block)
        sas = generate_share_sas(
            service.account_name,
            SHARE,
            service.credential.account_key,
            ShareSasPermissions(read=True),
            datetime.now(UTC) + timedelta(hours=1),
        )
        url = f"{emulator.endpoint}/{SHARE}/big.bin?{sas}"
        yield BigFile(emulator.process.pid, url, whole.hexdigest(), head.hexdigest())


def _get(url: str, byte_range: str | None = None) -> tuple[int, str]:
    """GET the file, reading 1 MiB at a time: (bytes read, MD5)."""
    request = urllib.request.Request(url)
    if byte_range is not None:
        request.add_header("x-ms-range", byte_range)
    digest, total = hashlib.md5(), 0
    with urllib.request.urlopen(request, timeout=120) as response:
        while piece := response.read(MiB):
            digest.update(piece)
            total += len(piece)
    return total, digest.hexdigest()


def test_whole_256_mib_get_grows_the_emulator_by_less_than_64_mib(big_file: BigFile) -> None:
    base = _peak_reset(big_file.pid)
    assert _get(big_file.url) == (SIZE, big_file.md5)
    growth = _status(big_file.pid, "VmHWM:") - base
    assert growth < 64 * MiB, f"peak grew by {growth / MiB:.0f} MiB"


def test_32_mib_range_get_holds_its_bytes_once(big_file: BigFile) -> None:
    """The SDKs' first download request (32 MiB, answered from one snapshot) costs one copy."""
    base = _peak_reset(big_file.pid)
    assert _get(big_file.url, f"bytes=0-{32 * MiB - 1}") == (32 * MiB, big_file.first_32_mib_md5)
    growth = _status(big_file.pid, "VmHWM:") - base
    assert growth < 48 * MiB, f"peak grew by {growth / MiB:.0f} MiB for a 32 MiB answer"
