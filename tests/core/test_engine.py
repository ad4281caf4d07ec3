"""The transfer engine's behaviour through ``run_copy`` against real servers: MD5 checks on
downloads, retries under injected faults (the emulator's fault rules and request counters),
files that keep failing, the memory budget, the bandwidth cap, and blob names that try to climb
out of a local destination."""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas
from azure.storage.fileshare import ShareServiceClient

from shareferry.core.accounting import Outcome
from shareferry.core.engine.context import BUFFER_ENV
from shareferry.core.errors import UsageError
from shareferry.core.jobs import JobStatus
from shareferry.core.locations import FromTo
from shareferry.core.options import CheckMd5
from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.support.azurite import AzuriteInfo
from tests.support.copy_world import World, dirs_of
from tests.support.emulator_admin import add_fault, counters
from tests.support.shared_azurite import shared_azurite
from tests.support.trees import RecordingSubscriber, md5, read_local, read_share, write_share

MIB = 1024 * 1024


@pytest.fixture
def world(emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path) -> World:
    return World(emulator=emulator, service=service, tmp_path=tmp_path)


@pytest.fixture
def seeded_faults_world(tmp_path: Path) -> Iterator[World]:
    """An emulator whose fault rules draw from a seeded generator, so a run is reproducible."""
    with RunningEmulator(EmulatorConfig(fault_seed=20240501)) as emulator:
        account = emulator.account()
        service = ShareServiceClient(
            account_url=emulator.account_url(),
            credential={"account_name": account.name, "account_key": account.key},
        )
        yield World(emulator=emulator, service=service, tmp_path=tmp_path)
        service.close()


def faults_fired(world: World) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = counters(world.emulator)["faults"]
    return found


# ---- --check-md5 on downloads -------------------------------------------------------------------

CORRUPT = ("md5/corrupt-big.bin", "md5/corrupt-small.txt")
FAILED_BY_MODE = {
    CheckMd5.NO_CHECK: set(),
    CheckMd5.LOG_ONLY: set(),
    CheckMd5.FAIL_IF_DIFFERENT: set(CORRUPT),
    CheckMd5.FAIL_IF_DIFFERENT_OR_MISSING: {*CORRUPT, "md5/no-md5.txt"},
}


@pytest.mark.parametrize("mode", list(CheckMd5))
async def test_check_md5_modes_on_a_download_with_corrupted_and_unhashed_files(
    world: World, mode: CheckMd5
) -> None:
    share = world.share("checks")
    write_share(
        share,
        {"md5/corrupt-big.bin": os.urandom(3 * MIB + 5), "md5/corrupt-small.txt": b"small and true"},
    )
    write_share(share, {"md5/good.bin": os.urandom(2 * MIB + 9)})
    write_share(share, {"md5/no-md5.txt": b"nobody hashed me"}, with_md5=False)
    for path in CORRUPT:  # change stored bytes behind the stored MD5's back
        share.get_file_client(path).upload_range(b"rot!", offset=1, length=4)
    stored = read_share(share)
    assert stored.stored_md5["md5/no-md5.txt"] is None
    assert all(stored.stored_md5[path] != md5(stored.files[path]) for path in CORRUPT)
    out = world.tmp_path / "out"
    out.mkdir()
    subscriber = RecordingSubscriber()
    logged: list[str] = []

    summary = await world.copy(
        f"{world.emulator.account_url()}/checks/md5",
        str(out),
        "FileLocal",
        subscriber,
        log=logged.append,
        recursive=True,
        check_md5=mode,
        block_size=MIB,  # the big file comes in several chunks, staged under a temporary name
    )

    failed = FAILED_BY_MODE[mode]
    landed = read_local(out)
    # Exactly the files that passed, with the bytes the share holds; nothing else (no
    # temporary file) is left behind by a failed one.
    assert landed.files == {path: data for path, data in stored.files.items() if path not in failed}
    assert set(subscriber.files(Outcome.FAILED)) == failed
    for result in subscriber.files(Outcome.FAILED).values():
        reason = "MD5 mismatch" if result.path in CORRUPT else "no stored MD5"
        assert reason in (result.error or "")
        assert result.path.rpartition("/")[2] in (result.error or "")
    assert summary.counters.files_failed == len(failed)
    assert summary.counters.files_completed == len(stored.files) - len(failed)
    expected_status = JobStatus.COMPLETED_WITH_ERRORS if failed else JobStatus.COMPLETED
    assert (summary.status, summary.exit_code) == (expected_status, 1 if failed else 0)
    mismatch_lines = [line for line in logged if "MD5 mismatch" in line]
    if mode is CheckMd5.LOG_ONLY:
        for path in CORRUPT:
            assert any(path.rpartition("/")[2] in line for line in mismatch_lines), logged
    else:
        assert mismatch_lines == []


# ---- retries ------------------------------------------------------------------------------------


async def test_upload_and_download_complete_byte_identical_through_injected_faults(
    seeded_faults_world: World,
) -> None:
    world = seeded_faults_world
    files = {f"many/file-{i:02d}.bin": os.urandom(20_000 + i) for i in range(30)}
    source = world.place("local", "source", files)
    share = world.share("faulty")
    add_fault(world.emulator, "busy:PutRange:probability=0.3")
    add_fault(world.emulator, "error:CreateFile:count=2")
    logged: list[str] = []

    upload = await world.copy(
        source.at("many"),
        f"{world.emulator.account_url()}/faulty",
        "LocalFile",
        log=logged.append,
        recursive=True,
    )

    assert (upload.status, upload.counters.files_completed) == (JobStatus.COMPLETED, 30), upload.failures
    assert read_share(share).files == files  # each file exactly once, byte for byte
    fired = faults_fired(world)
    assert fired["PutRange"]["busy"] >= 1
    assert fired["CreateFile"]["error"] == 2
    assert any(line.startswith("retry ") for line in logged)

    add_fault(world.emulator, "drop:GetFile:count=3")
    out = world.tmp_path / "out"
    out.mkdir()
    download = await world.copy(
        f"{world.emulator.account_url()}/faulty/many", str(out), "FileLocal", recursive=True
    )

    assert (download.status, download.counters.files_completed) == (JobStatus.COMPLETED, 30), (
        download.failures
    )
    assert read_local(out).files == files
    assert faults_fired(world)["GetFile"]["drop"] == 3


async def test_a_retry_after_from_the_service_is_waited_out(seeded_faults_world: World) -> None:
    world = seeded_faults_world
    source = world.place("local", "source", {"one.txt": b"patience"})
    share = world.share("busy")
    add_fault(world.emulator, "busy:PutRange:count=1,retry_after=1")
    logged: list[str] = []

    started = time.monotonic()
    summary = await world.copy(
        source.at("one.txt"),
        f"{world.emulator.account_url()}/busy",
        "LocalFile",
        log=logged.append,
        max_retries=1,
    )
    elapsed = time.monotonic() - started

    assert summary.status is JobStatus.COMPLETED, summary.failures
    assert read_share(share).files == {"one.txt": b"patience"}
    assert faults_fired(world)["PutRange"]["busy"] == 1
    # The engine's own first backoff is at most 0.25 s; the service asked for 1 s.
    assert elapsed >= 0.95
    assert any(line.startswith("retry 1 in 1.0s") for line in logged), logged


# ---- files that keep failing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_to", "operation"),
    [("FileLocal", "GetFile"), ("LocalFile", "PutRange"), ("FileFile", "PutRangeFromURL")],
)
async def test_a_file_that_keeps_failing_fails_alone_after_its_retries(
    seeded_faults_world: World, from_to: str, operation: str
) -> None:
    world = seeded_faults_world
    pair = FromTo(from_to)
    # Empty files need no data request, so only the one with bytes (three chunks) meets the fault.
    files = {"set/doomed.bin": os.urandom(2 * MIB + 5), "set/empty-1": b"", "set/empty-2": b""}
    source = world.place(pair.source_kind, "source", files)
    destination = world.place(pair.destination_kind, "destination")
    add_fault(world.emulator, f"error:{operation}")
    subscriber = RecordingSubscriber()

    summary = await world.copy(
        source.at("set"),
        destination.argument,
        from_to,
        subscriber,
        recursive=True,
        max_retries=1,
        block_size=MIB,
    )

    failed = subscriber.files(Outcome.FAILED)
    assert set(failed) == {"set/doomed.bin"}
    error = failed["set/doomed.bin"].error or ""
    assert "doomed.bin" in error and "InternalError (HTTP 500)" in error, error
    assert set(subscriber.files(Outcome.COMPLETED)) == {"set/empty-1", "set/empty-2"}
    # Nothing of the failed file is left (no partial file, no temporary one).
    assert destination.read().files == {"set/empty-1": b"", "set/empty-2": b""}
    # A first try and one retry per chunk at most: the retries are bounded by max_retries.
    assert 2 <= faults_fired(world)[operation]["error"] <= 3 * 2
    assert (summary.status, summary.exit_code) == (JobStatus.COMPLETED_WITH_ERRORS, 1)
    assert [result.path for result in summary.failures] == ["set/doomed.bin"]


async def test_an_upload_onto_a_directory_fails_that_file_and_copies_the_rest(world: World) -> None:
    files = {"up/a.txt": b"a", "up/b.txt": b"b", "up/c.txt": b"c"}
    source = world.place("local", "source", files)
    destination = world.place("file", "destination", empty=("up/b.txt",))
    subscriber = RecordingSubscriber()

    summary = await world.copy(
        source.at("up"), destination.argument, "LocalFile", subscriber, recursive=True, max_retries=1
    )

    failed = subscriber.files(Outcome.FAILED)
    assert set(failed) == {"up/b.txt"}
    error = failed["up/b.txt"].error or ""
    assert "b.txt" in error and "HTTP 409" in error, error
    assert destination.read().files == {"up/a.txt": b"a", "up/c.txt": b"c"}
    assert (summary.counters.files_completed, summary.counters.files_failed) == (2, 1)
    assert (summary.status, summary.exit_code) == (JobStatus.COMPLETED_WITH_ERRORS, 1)


# ---- memory -------------------------------------------------------------------------------------


@pytest.mark.parametrize("from_to", ["LocalFile", "FileLocal"])
async def test_chunk_buffers_stay_within_the_buffer_budget(world: World, from_to: str) -> None:
    files = {
        "mem/huge.bin": os.urandom(64 * MIB),
        "mem/a.bin": os.urandom(8 * MIB),
        "mem/b.bin": os.urandom(8 * MIB),
    }
    source = world.place("local" if from_to == "LocalFile" else "file", "source", files)
    destination = world.place("file" if from_to == "LocalFile" else "local", "destination")
    budget_mib = 12  # three 4 MiB chunks, well under one file's read-ahead window (8 chunks)
    world.extra_environ[BUFFER_ENV] = str(budget_mib)

    summary = await world.copy(
        source.at("mem"), destination.argument, from_to, recursive=True, block_size=4 * MIB
    )

    assert summary.status is JobStatus.COMPLETED, summary.failures
    assert destination.read().files == files
    assert 4 * MIB <= summary.peak_buffer_bytes <= budget_mib * MIB


@pytest.mark.parametrize("value", ["0", "-3", "lots", "1.5", str(2 * 1024 * 1024)])
async def test_an_invalid_buffer_setting_is_refused_before_anything_is_touched(
    world: World, value: str
) -> None:
    share = world.share("untouched")
    write_share(share, {"f.txt": b"f"})
    world.extra_environ[BUFFER_ENV] = value
    target = world.tmp_path / "never" / "created"

    with pytest.raises(UsageError, match=BUFFER_ENV):
        await world.copy(f"{world.emulator.account_url()}/untouched/f.txt", str(target), "FileLocal")

    assert not (world.tmp_path / "never").exists()


# ---- bandwidth ----------------------------------------------------------------------------------


@pytest.mark.parametrize("block_size", [8 * MIB, MIB], ids=["one-chunk", "three-chunks"])
async def test_cap_mbps_holds_a_copy_to_the_cap(world: World, block_size: int) -> None:
    # A functional check of the cap, not a performance test: 3 MB at 8 Mbit/s (1 MB/s) with one
    # second's burst allowed cannot take less than 2 s, however the bytes are chunked; only a
    # lower bound is asserted, so a slow machine never fails it.
    data = os.urandom(3_000_000)
    source = world.place("local", "source", {"capped.bin": data})
    destination = world.place("file", "destination")

    started = time.monotonic()
    summary = await world.copy(
        source.at("capped.bin"), destination.argument, "LocalFile", cap_mbps=8, block_size=block_size
    )
    elapsed = time.monotonic() - started

    assert summary.status is JobStatus.COMPLETED
    assert destination.read().files == {"capped.bin": data}
    assert elapsed >= 1.9


# ---- hostile blob names -------------------------------------------------------------------------


def put_blob_with_raw_name(azurite: AzuriteInfo, container: str, raw_path: str, data: bytes) -> None:
    """Store a blob under a name the SDK would normalise away (``%2E%2E`` is ``..``), the way a
    hostile writer can."""
    sas = generate_container_sas(
        azurite.account,
        container,
        account_key=azurite.key,
        permission=ContainerSasPermissions(write=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    endpoint = urlsplit(azurite.endpoint)
    connection = http.client.HTTPConnection(azurite.host, azurite.port, timeout=10)
    try:
        connection.request(
            "PUT",
            f"{endpoint.path}/{container}/{raw_path}?{sas}",
            body=data,
            headers={"x-ms-blob-type": "BlockBlob", "x-ms-version": "2021-08-06"},
        )
        response = connection.getresponse()
        assert response.status == 201, (response.status, response.read())
    finally:
        connection.close()


def snapshot_tree(root: Path, *, skip: Path) -> dict[str, bytes | None]:
    """Every path below ``root`` except those below ``skip``, with file contents."""
    found: dict[str, bytes | None] = {}
    for current, dirnames, filenames in os.walk(root):
        here = Path(current)
        if here == skip or skip in here.parents:
            continue
        for name in dirnames:
            found[str(here / name)] = None
        for name in filenames:
            found[str(here / name)] = (here / name).read_bytes()
    return found


@pytest.mark.azurite
async def test_blob_names_with_dot_dot_never_escape_a_local_destination(world: World) -> None:
    azurite = shared_azurite()
    world.azurite = azurite
    with BlobServiceClient(account_url=azurite.endpoint, credential=azurite.credential) as blobs:
        world.blobs = blobs
        container = world.container()
        name = container.container_name
        good = {"ok.txt": b"fine", "sub/ok2.txt": b"also fine"}
        for path, data in good.items():
            container.upload_blob(path, data)
        container.upload_blob("/abs.txt", b"absolute")
        hostile = {
            "../evil.txt": "%2E%2E/evil.txt",
            "a/../../evil2.txt": "a/%2E%2E/%2E%2E/evil2.txt",
            "../../../evil3.txt": "%2E%2E/%2E%2E/%2E%2E/evil3.txt",
        }
        for raw in hostile.values():
            put_blob_with_raw_name(azurite, name, raw, b"evil")
        assert {blob.name for blob in container.list_blobs()} >= set(hostile)
        work = world.tmp_path / "work"
        destination = work / "deep" / "dest"
        destination.mkdir(parents=True)
        (work / "bystander.txt").write_bytes(b"leave me alone")
        before = snapshot_tree(world.tmp_path, skip=destination)
        subscriber = RecordingSubscriber()

        # The container's contents straight into the destination: a single '..' would leave it.
        summary = await world.copy(
            f"{azurite.endpoint}/{name}/*", str(destination), "BlobLocal", subscriber, recursive=True
        )

    assert snapshot_tree(world.tmp_path, skip=destination) == before
    landed = read_local(destination)
    assert landed.files == good
    assert landed.dirs == dirs_of(good)
    failed = subscriber.files(Outcome.FAILED)
    assert set(failed) == {*hostile, "/abs.txt"}  # no path can hold a leading '/': reported
    assert "has an empty segment" in (failed.pop("/abs.txt").error or "")
    for result in failed.values():
        assert "outside the destination" in (result.error or "") and "'..'" in (result.error or "")
    assert set(subscriber.files(Outcome.COMPLETED)) == set(good)
    assert (summary.status, summary.exit_code) == (JobStatus.COMPLETED_WITH_ERRORS, 1)
