"""Many SDK clients at once against one emulator: parallel uploads, listings and ranged reads."""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Callable

import pytest
from azure.storage.fileshare import ShareClient, ShareServiceClient

from shareferry.emulator import RunningEmulator

MiB = 1024 * 1024
CHUNK = 4 * MiB  # the SDK uploads in 4 MiB put ranges; each one lands whole or not at all


def _share(emulator: RunningEmulator, name: str) -> ShareClient:
    """A client of its own for each thread (the SDK's HTTP session is not shared)."""
    account = emulator.account()
    return ShareServiceClient(
        account_url=emulator.account_url(),
        credential={"account_name": account.name, "account_key": account.key},
    ).get_share_client(name)


def _run(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []
    lock = threading.Lock()

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                with lock:
                    errors.append(exc)

        return run

    threads = [threading.Thread(target=guarded(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def test_parallel_uploads_while_listing(emulator: RunningEmulator, share: ShareClient) -> None:
    writers, files_each = 16, 4
    share.create_directory("out")
    expected: dict[str, str] = {}
    payloads: dict[int, list[tuple[str, bytes]]] = {}
    rng = random.Random(7)
    for number in range(writers):
        payloads[number] = []
        for index in range(files_each):
            name = f"w{number:02d}-f{index}.bin"
            data = rng.randbytes(rng.randint(0, 200_000))
            payloads[number].append((name, data))
            expected[name] = hashlib.md5(data).hexdigest()
    done = threading.Event()
    remaining = [writers]
    lock = threading.Lock()
    listings: list[list[str]] = []

    def writer(number: int) -> Callable[[], None]:
        def run() -> None:
            try:
                client = _share(emulator, share.share_name)
                for name, data in payloads[number]:
                    client.get_file_client(f"out/{name}").upload_file(data)
            finally:
                with lock:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        done.set()

        return run

    def lister() -> None:
        client = _share(emulator, share.share_name)
        while True:
            finished = done.is_set()  # a listing started after the last upload must see everything
            seen = [e["name"] for e in client.list_directories_and_files("out", results_per_page=5)]
            assert seen == sorted(seen)
            assert len(seen) == len(set(seen))
            listings.append(seen)
            if finished:
                return

    errors = _run([lister, *(writer(n) for n in range(writers))])
    assert errors == []
    assert len(listings) > 1
    assert listings[-1] == sorted(expected)
    final = {e["name"]: e["size"] for e in share.list_directories_and_files("out")}
    assert sorted(final) == sorted(expected)
    for name, digest in expected.items():
        data = share.get_file_client(f"out/{name}").download_file().readall()
        assert hashlib.md5(data).hexdigest() == digest
        assert final[name] == len(data)


@pytest.mark.timeout(120)
def test_no_torn_reads_during_parallel_upload(emulator: RunningEmulator, share: ShareClient) -> None:
    data = random.Random(20).randbytes(20 * MiB)
    chunks = [data[start : start + CHUNK] for start in range(0, len(data), CHUNK)]
    assert all(any(chunk) for chunk in chunks)  # a written chunk never reads as zeros
    uploaded = threading.Event()
    reads = {"zero": 0, "final": 0}

    def upload() -> None:
        try:
            _share(emulator, share.share_name).get_file_client("big.bin").upload_file(data, max_concurrency=8)
        finally:
            uploaded.set()

    def reader() -> None:
        client = _share(emulator, share.share_name).get_file_client("big.bin")
        while not client.exists():
            assert not uploaded.is_set() or client.exists(), "the upload ended without creating the file"
        final = [False] * len(chunks)
        while not all(final):
            finished_before = uploaded.is_set()
            for index, chunk in enumerate(chunks):
                got = client.download_file(index * CHUNK, len(chunk)).readall()
                if got == chunk:
                    final[index] = True
                    reads["final"] += 1
                else:
                    assert not final[index], f"chunk {index} changed after it was complete"
                    assert got == bytes(len(chunk)), f"torn read of chunk {index}"
                    reads["zero"] += 1
            assert all(final) or not finished_before, "the upload finished but chunks are missing"

    errors = _run([upload, reader])
    assert errors == []
    assert reads["final"] >= len(chunks)
    got = share.get_file_client("big.bin").download_file(max_concurrency=4).readall()
    assert hashlib.md5(got).digest() == hashlib.md5(data).digest()
