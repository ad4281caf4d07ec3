"""Files as large as Azure allows (4 TiB), stored sparsely, through the real SDK and raw HTTP.

A new file costs nothing until it is written: creating a 100 GiB or 4 TiB file, writing a range
near its end, reading it back, copying it and clearing it leave the process's peak memory (and,
on disk, the blocks used) a few MiB above where they were. Unwritten bytes read as zeros; List
Ranges shows only what was written. One byte more than 4 TiB is refused as Azure refuses it.
"""

from __future__ import annotations

import hashlib
import http.client
import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareClient,
    ShareServiceClient,
    generate_account_sas,
)

from shareferry.emulator import EmulatorConfig, RunningEmulator

KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4
MAX_FILE = 4 * TiB
#: How much the peak resident memory may grow while a huge file is handled.
RSS_BUDGET = 24 * MiB


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


@contextmanager
def peak_memory_growth() -> Iterator[list[int]]:
    """Yields a list that holds, on exit, how many bytes the process's peak RSS grew by.

    The emulator runs in this process (a thread), so its allocations count. The peak is reset
    first (``/proc/self/clear_refs``), so a transient allocation shows even if it was freed.
    """
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    growth: list[int] = []
    yield growth
    growth.append((_status_kib("VmHWM") - before) * KiB)


def pattern(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def account_sas(emulator: RunningEmulator) -> str:
    account = emulator.account()
    return generate_account_sas(
        account.name,
        account.key,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, create=True),
        datetime.now(UTC) + timedelta(hours=1),
    )


@pytest.fixture
def disk_emulator(tmp_path: Path) -> Iterator[RunningEmulator]:
    with RunningEmulator(EmulatorConfig(data_dir=tmp_path / "data")) as running:
        yield running


def disk_share(emulator: RunningEmulator) -> ShareClient:
    account = emulator.account()
    service = ShareServiceClient(
        emulator.account_url(), credential={"account_name": account.name, "account_key": account.key}
    )
    return service.create_share("disk")


def content_blocks(data_dir: Path) -> int:
    """Bytes the content files really occupy on disk (holes are free)."""
    return sum(path.stat().st_blocks * 512 for path in (data_dir / "content").iterdir())


# ---- in memory ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [100 * GiB, MAX_FILE], ids=["100GiB", "4TiB"])
def test_a_huge_file_is_sparse_in_memory(share: ShareClient, size: int) -> None:
    data = pattern(64 * KiB, seed=1)
    offset = size - len(data) - 4096  # near the end, not aligned to anything
    client = share.get_file_client("huge.bin")
    with peak_memory_growth() as growth:
        client.create_file(size)
        client.upload_range(data, offset, len(data))
        back = client.download_file(offset=offset, length=len(data)).readall()
        zeros = client.download_file(offset=size // 2, length=MiB).readall()
        tail = client.download_file(offset=size - 4096, length=4096).readall()
        ranges = [(r.start, r.end) for r in client.list_ranges()]
        properties = client.get_file_properties()
    assert back == data
    assert zeros == bytes(MiB)
    assert tail == bytes(4096)
    assert ranges == [(offset, offset + len(data) - 1)]
    assert properties.size == size
    assert growth[0] < RSS_BUDGET, f"peak memory grew by {growth[0] / MiB:.1f} MiB"


def test_one_byte_more_than_4_tib_is_refused(share: ShareClient) -> None:
    client = share.get_file_client("too-big.bin")
    with pytest.raises(HttpResponseError) as info:
        client.create_file(MAX_FILE + 1)
    assert info.value.status_code == 400
    assert info.value.error_code == "OutOfRangeInput"
    assert not client.exists()


def test_resizing_to_4_tib_and_beyond(share: ShareClient) -> None:
    client = share.get_file_client("grow.bin")
    client.upload_file(b"head")
    with peak_memory_growth() as growth:
        client.resize_file(MAX_FILE)
        with pytest.raises(HttpResponseError) as info:
            client.resize_file(MAX_FILE + 1)
        client.upload_range(b"tail", MAX_FILE - 4, 4)
        assert client.download_file(offset=MAX_FILE - 8, length=8).readall() == bytes(4) + b"tail"
    assert info.value.error_code == "OutOfRangeInput"
    assert client.get_file_properties().size == MAX_FILE
    assert client.download_file(offset=0, length=4).readall() == b"head"
    assert [(r.start, r.end) for r in client.list_ranges()] == [(0, 3), (MAX_FILE - 4, MAX_FILE - 1)]
    assert growth[0] < RSS_BUDGET


def test_shrinking_then_growing_reads_zeros_where_bytes_were_cut(share: ShareClient) -> None:
    client = share.get_file_client("cut.bin")
    data = pattern(200 * KiB, seed=2)  # several pages, the last one partly used
    client.upload_file(data)
    client.resize_file(100 * KiB + 7)
    client.resize_file(300 * KiB)
    whole = client.download_file().readall()
    assert whole == data[: 100 * KiB + 7] + bytes(300 * KiB - (100 * KiB + 7))
    assert [(r.start, r.end) for r in client.list_ranges()] == [(0, 100 * KiB + 6)]


def test_clearing_most_of_a_huge_file_keeps_only_what_is_left(share: ShareClient) -> None:
    client = share.get_file_client("clear.bin")
    client.create_file(MAX_FILE)
    client.upload_range(b"a" * 512, 0, 512)
    client.upload_range(b"b" * 1024, 2 * GiB, 1024)
    client.upload_range(b"c" * 512, MAX_FILE - 512, 512)
    with peak_memory_growth() as growth:
        client.clear_range(512, MAX_FILE - 1024)  # everything but the first and last 512 bytes
    assert [(r.start, r.end) for r in client.list_ranges()] == [(0, 511), (MAX_FILE - 512, MAX_FILE - 1)]
    assert client.download_file(offset=2 * GiB, length=1024).readall() == bytes(1024)
    assert client.download_file(offset=MAX_FILE - 512, length=512).readall() == b"c" * 512
    assert growth[0] < RSS_BUDGET


def test_copying_a_huge_sparse_file_stays_sparse(share: ShareClient) -> None:
    source = share.get_file_client("source.bin")
    source.create_file(MAX_FILE)
    data = pattern(4 * KiB, seed=3)
    source.upload_range(data, MAX_FILE - 8 * KiB, len(data))
    target = share.get_file_client("target.bin")
    with peak_memory_growth() as growth:
        result = target.start_copy_from_url(source.url)
    assert result["copy_status"] == "success"
    assert target.get_file_properties().size == MAX_FILE
    assert target.download_file(offset=MAX_FILE - 8 * KiB, length=len(data)).readall() == data
    assert [(r.start, r.end) for r in target.list_ranges()] == [(MAX_FILE - 8 * KiB, MAX_FILE - 4 * KiB - 1)]
    assert growth[0] < RSS_BUDGET


def test_a_snapshot_of_a_huge_file_costs_nothing(service: ShareServiceClient, share: ShareClient) -> None:
    client = share.get_file_client("snap.bin")
    client.create_file(MAX_FILE)
    client.upload_range(b"before", 0, 6)
    with peak_memory_growth() as growth:
        snapshot = share.create_snapshot()
    client.upload_range(b"after!", 0, 6)
    old = service.get_share_client("share1", snapshot=snapshot["snapshot"]).get_file_client("snap.bin")
    assert old.download_file(offset=0, length=6).readall() == b"before"
    assert client.download_file(offset=0, length=6).readall() == b"after!"
    assert growth[0] < RSS_BUDGET


# ---- a whole large file in one GET ----------------------------------------------------------------


def raw_get(emulator: RunningEmulator, path: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=30)
    connection.request(
        "GET",
        f"/{emulator.account().name}/{path}?{account_sas(emulator)}",
        headers={"x-ms-version": "2026-10-06"},
    )
    return connection.getresponse()


def test_a_whole_large_file_streams_in_one_get(emulator: RunningEmulator, share: ShareClient) -> None:
    size = 96 * MiB  # above the buffered limit: answered piece by piece
    client = share.get_file_client("stream.bin")
    client.create_file(size)
    pieces = {0: pattern(5000, 4), 33 * MiB - 7: pattern(70 * KiB, 5), size - 3: b"end"}
    for offset, data in pieces.items():
        client.upload_range(data, offset, len(data))
    expected = bytearray(size)
    for offset, data in pieces.items():
        expected[offset : offset + len(data)] = data
    with peak_memory_growth() as growth:
        response = raw_get(emulator, "share1/stream.bin")
        digest = hashlib.md5()
        received = 0
        while chunk := response.read(MiB):
            digest.update(chunk)
            received += len(chunk)
    assert response.status == 200
    assert response.getheader("Content-Length") == str(size)
    assert response.getheader("x-ms-request-id")
    assert response.getheader("x-ms-version") == "2026-10-06"
    assert received == size
    assert digest.hexdigest() == hashlib.md5(expected).hexdigest()
    assert growth[0] < RSS_BUDGET


def test_a_stream_is_cut_when_the_file_changes_under_it(
    emulator: RunningEmulator, share: ShareClient
) -> None:
    size = 256 * MiB
    client = share.get_file_client("changing.bin")
    client.create_file(size)
    client.upload_range(b"v1", 0, 2)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KiB)  # before connecting: a small window
    sock.settimeout(30)
    sock.connect(("127.0.0.1", emulator.port))
    path = f"/{emulator.account().name}/share1/changing.bin?{account_sas(emulator)}"
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nx-ms-version: 2026-10-06\r\n\r\n".encode())
    first = sock.recv(64 * KiB)  # the headers and the start of the body; the server then waits for us
    assert first.startswith(b"HTTP/1.1 200")
    client.upload_range(b"v2", size // 2, 2)  # a write while the answer is half sent
    received = len(first)
    while chunk := sock.recv(MiB):
        received += len(chunk)
    sock.close()
    assert received < size  # cut: the client never takes a mix of two versions for the file
    assert client.download_file(offset=size // 2, length=2).readall() == b"v2"


# ---- on disk --------------------------------------------------------------------------------------


def test_a_4_tib_file_is_sparse_on_disk(disk_emulator: RunningEmulator, tmp_path: Path) -> None:
    share = disk_share(disk_emulator)
    client = share.get_file_client("huge.bin")
    data = pattern(64 * KiB, seed=6)
    with peak_memory_growth() as growth:
        client.create_file(MAX_FILE)
        client.upload_range(data, MAX_FILE - len(data), len(data))
        client.clear_range(0, MAX_FILE - len(data))  # nothing there: costs nothing
        copy = share.get_file_client("copy.bin")
        copy.start_copy_from_url(client.url)
    assert client.download_file(offset=MAX_FILE - len(data), length=len(data)).readall() == data
    assert copy.download_file(offset=MAX_FILE - len(data), length=len(data)).readall() == data
    assert [(r.start, r.end) for r in copy.list_ranges()] == [(MAX_FILE - len(data), MAX_FILE - 1)]
    assert content_blocks(tmp_path / "data") < 4 * MiB
    assert growth[0] < RSS_BUDGET
    restarted = disk_emulator.restarted()
    try:
        again = disk_share_client(restarted).get_file_client("huge.bin")
        assert again.get_file_properties().size == MAX_FILE
        assert again.download_file(offset=MAX_FILE - len(data), length=len(data)).readall() == data
    finally:
        restarted.stop()


def disk_share_client(emulator: RunningEmulator) -> ShareClient:
    account = emulator.account()
    service = ShareServiceClient(
        emulator.account_url(), credential={"account_name": account.name, "account_key": account.key}
    )
    return service.get_share_client("disk")


def test_stored_bytes_follow_the_writes(emulator: RunningEmulator, share: ShareClient) -> None:
    """Only pages that hold written bytes are kept; a small file costs its size, not a page."""
    share.get_file_client("small.bin").upload_file(b"x" * 1000)
    big = share.get_file_client("big.bin")
    big.create_file(MAX_FILE)
    big.upload_range(b"y" * 512, 10 * GiB, 512)
    assert emulator.state is not None
    stored = emulator.state.store.share("devstoreaccount1", "share1").root
    small_content = stored.children["small.bin"].content  # type: ignore[attr-defined]
    big_content = stored.children["big.bin"].content  # type: ignore[attr-defined]
    assert small_content.stored_bytes == 1000
    assert big_content.stored_bytes == 64 * KiB
    big.clear_range(10 * GiB, 512)
    assert big_content.stored_bytes == 0
