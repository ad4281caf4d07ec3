"""``--decompress``: gzip/deflate-encoded files are inflated while downloading, as AzCopy does."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.storage.fileshare import (
    AccountSasPermissions,
    ContentSettings,
    ResourceTypes,
    ShareClient,
    generate_account_sas,
)

from shareferry.core.accounting import Outcome
from shareferry.core.engine.copier import decompressed_name
from shareferry.core.jobs import CopyRequest, JobStatus, run_copy
from shareferry.core.options import TransferOptions
from shareferry.emulator import RunningEmulator


def _sas(emulator: RunningEmulator) -> str:
    account = emulator.account()
    return generate_account_sas(
        account.name,
        account.key,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, list=True),
        datetime.now(UTC) + timedelta(hours=1),
    )


def _put(share: ShareClient, name: str, data: bytes, encoding: str | None) -> None:
    share.get_file_client(name).upload_file(
        data,
        content_settings=ContentSettings(
            content_encoding=encoding, content_md5=bytearray(hashlib.md5(data).digest())
        ),
    )


def test_decompressed_names_drop_compression_suffixes() -> None:
    assert decompressed_name("logs/app.log.gz") == "logs/app.log"
    assert decompressed_name("a.GZIP") == "a"
    assert decompressed_name("data.zz") == "data"
    assert decompressed_name("plain.txt") == "plain.txt"
    assert decompressed_name(".gz") == ".gz"


async def test_download_inflates_gzip_and_deflate_and_keeps_plain_files(
    emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    original = os.urandom(3_000_000) + b"compressible " * 500_000
    share.create_directory("dir")
    _put(share, "dir/big.bin.gz", gzip.compress(original), "gzip")
    _put(share, "dir/small.txt", zlib.compress(b"deflated words " * 1000), "deflate")
    _put(share, "dir/plain.dat", b"not compressed", None)
    options = TransferOptions(recursive=True, decompress=True, block_size=1024 * 1024)
    summary = await run_copy(
        CopyRequest(
            f"{emulator.account_url()}/share1/dir?{_sas(emulator)}",
            str(tmp_path / "out"),
            "FileLocal",
            options,
        )
    )
    assert summary.status is JobStatus.COMPLETED, summary.error or summary.failures
    landed = tmp_path / "out" / "dir"
    assert (landed / "big.bin").read_bytes() == original
    assert (landed / "small.txt").read_bytes() == b"deflated words " * 1000
    assert (landed / "plain.dat").read_bytes() == b"not compressed"
    assert not (landed / "big.bin.gz").exists()


async def test_corrupt_compressed_stream_fails_and_leaves_nothing(
    emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    broken = gzip.compress(b"x" * 100_000)[:-20]  # cut short: no end of stream
    _put(share, "cut.gz", broken, "gzip")
    results = []

    class Collect:
        def on_queued(self, path: str, size: int) -> None: ...
        def on_progress(self, nbytes: int) -> None: ...
        def on_done(self, result: object) -> None:
            results.append(result)

    summary = await run_copy(
        CopyRequest(
            f"{emulator.account_url()}/share1/cut.gz?{_sas(emulator)}",
            str(tmp_path / "out") + "/",
            "FileLocal",
            TransferOptions(decompress=True),
        ),
        subscribers=[Collect()],
    )
    assert summary.exit_code == 1
    assert [r.outcome for r in results] == [Outcome.FAILED]
    assert "ends before its compressed stream does" in (results[0].error or "")
    assert list((tmp_path / "out").iterdir()) == []
