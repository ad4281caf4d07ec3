#!/usr/bin/env python
"""Ingest speed of the ShareFerry Files emulator next to Azurite's blob service, in one run.

Both servers run on this machine, in memory, with the well-known ``devstoreaccount1`` key, and are
driven by the Azure Python SDK over HTTP:

* ``large-4MiB-seq`` / ``large-4MiB-Nthreads``: one large file written in 4 MiB ranges. Emulator:
  ``create_file(size)`` then ``upload_range`` per range. Azurite: ``stage_block`` per 4 MiB block,
  then ``commit_block_list``. Reported in MiB/s.
* ``small-16KiB-Nthreads``: many small files. Emulator: ``create_file`` + ``upload_range`` per file
  (two requests, as Azure Files needs). Azurite: ``upload_blob`` (one Put Blob). Reported in files/s.

The ratio column is emulator / Azurite: above 1 the emulator is faster. Azurite is not a File
service; it is here as a yardstick for "fast enough for tests", not as a like-for-like rival.

Run ``npm ci`` first (for Azurite), then::

    .venv/bin/python bench/emulator_ingest.py [--small-files N] [--large-mib M] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from azure.core.exceptions import AzureError  # noqa: E402
from tests.support.azurite import ACCOUNT, ACCOUNT_KEY, AzuriteInfo, run_azurite  # noqa: E402

MIB = 1024 * 1024
_ENDPOINT = re.compile(r"endpoint=(\S+)")

Workload = Callable[[], float]
"""Runs one measured workload and returns the elapsed seconds of the measured part."""


@dataclass
class Result:
    workload: str
    unit: str  # "MiB/s" or "files/s"
    amount: float  # MiB or files per run
    emulator_seconds: float | None = None
    azurite_seconds: float | None = None

    @property
    def emulator_rate(self) -> float | None:
        return self.amount / self.emulator_seconds if self.emulator_seconds else None

    @property
    def azurite_rate(self) -> float | None:
        return self.amount / self.azurite_seconds if self.azurite_seconds else None

    @property
    def ratio(self) -> float | None:
        emulator, azurite = self.emulator_rate, self.azurite_rate
        return emulator / azurite if emulator and azurite else None

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "emulator_rate": self.emulator_rate,
            "azurite_rate": self.azurite_rate,
            "ratio_emulator_over_azurite": self.ratio,
        }


# --------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class Endpoint:
    url: str  # http://127.0.0.1:PORT/devstoreaccount1
    account: str
    key: str

    @property
    def credential(self) -> dict[str, str]:
        return {"account_name": self.account, "account_key": self.key}


def default_emulator_command() -> list[str]:
    return [sys.executable, "-m", "shareferry", "emulator", "--port", "0", "--in-memory"]


@contextlib.contextmanager
def run_emulator(command: list[str], workdir: Path, start_timeout: float = 60.0) -> Iterator[Endpoint]:
    """Start ``shareferry emulator`` and yield its endpoint, read from ``endpoint=URL`` on stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPO_ROOT / "operator"), env.get("PYTHONPATH")) if part
    )
    env["PYTHONUNBUFFERED"] = "1"
    stderr_path = workdir / "emulator.stderr.log"
    with open(stderr_path, "wb") as stderr:
        try:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise RuntimeError(f"cannot start the emulator ({shlex.join(command)}): {exc}") from exc
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # keeps reading so the emulator never blocks on a full pipe
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="emulator-stdout", daemon=True).start()

    def failure(reason: str) -> RuntimeError:
        tail = "\n".join(stderr_path.read_text(errors="replace").splitlines()[-30:])
        return RuntimeError(f"the emulator {reason} ({shlex.join(command)})\nstderr:\n{tail}")

    try:
        deadline = time.monotonic() + start_timeout
        url: str | None = None
        while url is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise failure(f"printed no endpoint=URL line within {start_timeout:.0f} s")
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                raise failure(f"exited with status {process.wait()} before printing endpoint=URL")
            match = _ENDPOINT.search(line)
            if match:
                url = match.group(1).rstrip("/")
        parts = urlsplit(url)
        account = parts.path.strip("/").split("/")[0] or ACCOUNT
        if not parts.hostname or not parts.port:
            raise failure(f"printed an endpoint without host and port: {url}")
        wait_for_port(parts.hostname, parts.port, deadline)
        yield Endpoint(url=url, account=account, key=ACCOUNT_KEY)
    finally:
        stop_process(process)


def wait_for_port(host: str, port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answers on {host}:{port}")


def stop_process(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def azurite_endpoint(info: AzuriteInfo) -> Endpoint:
    return Endpoint(url=info.endpoint, account=info.account, key=info.key)


# --------------------------------------------------------------------------- workloads


def chunks(total: int, size: int) -> list[tuple[int, int]]:
    return [(offset, min(size, total - offset)) for offset in range(0, total, size)]


def run_parallel(threads: int, jobs: Sequence[Callable[[], object]]) -> None:
    if threads <= 1:
        for job in jobs:
            job()
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()  # re-raise the first failure


class Target:
    name = "?"

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def data(self, size: int) -> bytes:
        """The first ``size`` bytes of the shared random buffer (no copy for a full range)."""
        return self.payload if size == len(self.payload) else self.payload[:size]

    def large(self, name: str, size: int, range_size: int, threads: int) -> float:
        raise NotImplementedError

    def small(self, count: int, size: int, threads: int) -> float:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class FilesTarget(Target):
    """The ShareFerry emulator, through ``azure-storage-file-share``."""

    name = "emulator"

    def __init__(self, endpoint: Endpoint, payload: bytes) -> None:
        from azure.storage.fileshare import ShareServiceClient

        super().__init__(payload)
        service = ShareServiceClient(account_url=endpoint.url, credential=endpoint.credential)
        self.share = service.get_share_client(f"bench{os.getpid()}")
        self.share.create_share()

    def large(self, name: str, size: int, range_size: int, threads: int) -> float:
        client = self.share.get_file_client(name)
        client.create_file(size)  # Azure Files: the size is fixed up front, ranges fill it
        jobs = [
            functools.partial(client.upload_range, self.data(length), offset=offset, length=length)
            for offset, length in chunks(size, range_size)
        ]
        start = time.perf_counter()
        run_parallel(threads, jobs)
        elapsed = time.perf_counter() - start
        actual = client.get_file_properties().size
        if actual != size:
            raise RuntimeError(f"emulator: {name} has {actual} bytes, wrote {size}")
        client.delete_file()
        return elapsed

    def small(self, count: int, size: int, threads: int) -> float:
        data = self.data(size)

        def one(index: int) -> None:
            client = self.share.get_file_client(f"small-{index:07d}.bin")
            client.create_file(size)
            client.upload_range(data, offset=0, length=size)

        start = time.perf_counter()
        run_parallel(threads, [functools.partial(one, i) for i in range(count)])
        return time.perf_counter() - start

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.share.delete_share()


class BlobTarget(Target):
    """Azurite, through ``azure-storage-blob``."""

    name = "azurite"

    def __init__(self, endpoint: Endpoint, payload: bytes) -> None:
        from azure.storage.blob import BlobServiceClient

        super().__init__(payload)
        service = BlobServiceClient(account_url=endpoint.url, credential=endpoint.credential)
        self.container = service.get_container_client(f"bench{os.getpid()}")
        self.container.create_container()

    def large(self, name: str, size: int, range_size: int, threads: int) -> float:
        from azure.storage.blob import BlobBlock

        client = self.container.get_blob_client(name)
        blocks = [(f"{index:08d}", length) for index, (_, length) in enumerate(chunks(size, range_size))]
        jobs = [
            functools.partial(client.stage_block, block_id, self.data(length), length=length)
            for block_id, length in blocks
        ]
        start = time.perf_counter()
        run_parallel(threads, jobs)
        client.commit_block_list([BlobBlock(block_id) for block_id, _ in blocks])
        elapsed = time.perf_counter() - start
        actual = client.get_blob_properties().size
        if actual != size:
            raise RuntimeError(f"azurite: {name} has {actual} bytes, wrote {size}")
        client.delete_blob()
        return elapsed

    def small(self, count: int, size: int, threads: int) -> float:
        data = self.data(size)

        def one(index: int) -> None:
            self.container.get_blob_client(f"small-{index:07d}.bin").upload_blob(data, overwrite=True)

        start = time.perf_counter()
        run_parallel(threads, [functools.partial(one, i) for i in range(count)])
        return time.perf_counter() - start

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.container.delete_container()


# --------------------------------------------------------------------------- driver


def best_of(repeat: int, run: Workload) -> float:
    return min(run() for _ in range(repeat))


def measure(args: argparse.Namespace, targets: list[Target]) -> list[Result]:
    large = args.large_mib * MIB
    range_size = args.range_mib * MIB
    small_size = args.small_kib * 1024
    results = [
        Result(f"large-{args.range_mib}MiB-seq", "MiB/s", args.large_mib),
        Result(f"large-{args.range_mib}MiB-{args.threads}threads", "MiB/s", args.large_mib),
        Result(f"small-{args.small_kib}KiB-{args.threads}threads", "files/s", args.small_files),
    ]
    for target in targets:
        seconds = [
            best_of(args.repeat, functools.partial(target.large, "large-seq.bin", large, range_size, 1)),
            best_of(
                args.repeat,
                functools.partial(target.large, "large-par.bin", large, range_size, args.threads),
            ),
            # Repeats overwrite the same names: later rounds measure overwrites, not creates.
            best_of(args.repeat, functools.partial(target.small, args.small_files, small_size, args.threads)),
        ]
        for result, elapsed in zip(results, seconds, strict=True):
            setattr(result, f"{target.name}_seconds", elapsed)
    return results


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_table(results: list[Result], environment: dict[str, Any]) -> None:
    header = ("workload", "emulator", "Azurite", "unit", "emulator/Azurite")
    rows = [(r.workload, fmt(r.emulator_rate), fmt(r.azurite_rate), r.unit, fmt(r.ratio, 2)) for r in results]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(header))
    print(line(tuple("-" * w for w in widths)))
    for row in rows:
        print(line(row))
    print()
    print("  ".join(f"{key}={value}" for key, value in environment.items()))


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def azurite_version() -> str | None:
    try:
        manifest = REPO_ROOT / "node_modules" / "azurite" / "package.json"
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small-files", type=int, default=2000, metavar="N", help="default 2000")
    parser.add_argument("--small-kib", type=int, default=16, metavar="K", help="small file size (16)")
    parser.add_argument("--large-mib", type=int, default=256, metavar="M", help="large file (256)")
    parser.add_argument("--range-mib", type=int, default=4, choices=(1, 2, 4), help="range size (4)")
    parser.add_argument("--threads", type=int, default=8, help="client threads for parallel runs (8)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per workload; the best counts (1)")
    parser.add_argument(
        "--only", choices=("emulator", "azurite"), help="measure one server (e.g. to check setup)"
    )
    parser.add_argument(
        "--emulator-command",
        metavar="CMD",
        help="command that starts the emulator and prints endpoint=URL "
        "(default: this Python -m shareferry emulator --port 0 --in-memory)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    for name in ("small_files", "small_kib", "large_mib", "threads", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.small_kib * 1024 > args.range_mib * MIB:
        parser.error("--small-kib must not exceed --range-mib")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    payload = os.urandom(args.range_mib * MIB)  # every range and file reuses this random buffer
    emulator_command = (
        shlex.split(args.emulator_command) if args.emulator_command else default_emulator_command()
    )
    environment = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "azure-storage-file-share": package_version("azure-storage-file-share"),
        "azure-storage-blob": package_version("azure-storage-blob"),
        "azurite": azurite_version(),
    }
    with tempfile.TemporaryDirectory(prefix="shareferry-bench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        targets: list[Target] = []
        try:
            if args.only in (None, "emulator"):
                (workdir / "emulator").mkdir()
                endpoint = stack.enter_context(run_emulator(emulator_command, workdir / "emulator"))
                targets.append(FilesTarget(endpoint, payload))
            if args.only in (None, "azurite"):
                info = stack.enter_context(run_azurite(workdir / "azurite"))
                targets.append(BlobTarget(azurite_endpoint(info), payload))
            for target in targets:
                stack.callback(target.close)
            results = measure(args, targets)
        except (RuntimeError, AzureError) as exc:
            print(f"emulator_ingest: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
    config = {key: value for key, value in vars(args).items() if key != "json"}
    if args.json:
        report = {
            "config": config,
            "environment": environment,
            "results": [r.as_json() for r in results],
        }
        print(json.dumps(report, indent=2))
    else:
        print_table(results, environment)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
