#!/usr/bin/env python
"""A sync that has nothing to do: ``shareferry sync`` next to ``azcopy sync`` (AzCopy 10.32.2).

One run starts the ShareFerry Files emulator as its own process (``python -m shareferry emulator
--port 0 --in-memory``), writes a local tree of many small files (default 100,000 files of
1 KiB in 100 directories; ``--quick``: 5,000), sets their times an hour back, and uploads it once
into a share with ``shareferry copy`` (measured and shown, not compared). Then, in the same run
and on the same share, every tool syncs the unchanged tree, each started as a user would start it:

* upload (LocalFile): ``shareferry sync LOCAL URL --from-to LocalFile`` and
  ``azcopy sync LOCAL URL --from-to LocalFile``;
* download (FileLocal): the share is first downloaded into a second local directory with
  ``shareferry copy`` (not compared), then ``shareferry sync URL LOCAL2 --from-to FileLocal`` and
  ``azcopy sync URL LOCAL2 --from-to FileLocal``.

Both tools get a share SAS in the URL. Every sync is checked to have done nothing: its own summary
must show 0 transfers; the emulator's request counters (``/_emulator/counters``, reset before each
run) must show only reads of listings and properties (no Create File, Put Range, Get File...); and
for downloads no local file's mtime may change. A sync that copies something is reported as
``COPIED`` with the details; the script then exits 1.

Per run: wall seconds, entries (files) per second, CPU seconds and peak RSS of the tool's own
process (``os.wait4``, through the same minimal shim as ``transfer_vs_peers.py``), requests the
emulator answered, CPU seconds the emulator used; then the ShareFerry / AzCopy ratios::

    .venv/bin/python bench/sync_vs_azcopy.py --quick
    .venv/bin/python bench/sync_vs_azcopy.py [--files 100000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
for entry in (BENCH, BENCH.parent):  # transfer_vs_peers.py; the repository root (tests.support)
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from tests.support.azcopy import AZCOPY_COMMON_FLAGS, azcopy_env  # noqa: E402

from shareferry.core.redact import redact  # noqa: E402
from transfer_vs_peers import (  # noqa: E402
    Measurement,
    Remote,
    RunFailed,
    Server,
    fmt,
    inventory,
    print_table,
    program,
    run_emulator,
    run_measured,
    tool_version,
)

SHARE = "sync"
TOOLS = ("shareferry", "azcopy")
DIRECTIONS = ("upload", "download")
FROM_TO = {"upload": "LocalFile", "download": "FileLocal"}
#: Requests that only read; anything else the emulator answers during a no-op sync is a change.
READ_ONLY_OPS = frozenset(
    {
        "ListShares", "GetServiceProperties", "GetShareProperties", "GetShareAcl", "GetShareStats",
        "GetPermission", "GetDirectoryProperties", "ListDirectory", "GetFileProperties",
        "ListRanges", "ListHandles",
    }
)  # fmt: skip
_TRANSFERS = re.compile(r"Total Number Of (?:Copy )?Transfers:\s*(\d+)", re.IGNORECASE)
_SCANNED = re.compile(r"Files Scanned at Source:\s*(\d+)", re.IGNORECASE)

# --------------------------------------------------------------------------- local trees


def make_tree(root: Path, files: int, dirs: int, size: int, mtime: float) -> None:
    """``files`` files of ``size`` random bytes spread over ``dirs`` directories, all (files and
    directories) with the modification time ``mtime``."""
    folders = [root / f"dir{number:03d}" for number in range(dirs)]
    for folder in folders:
        folder.mkdir(parents=True)
    for index in range(files):
        path = folders[index % dirs] / f"file{index:07d}.bin"
        path.write_bytes(os.urandom(size))
        os.utime(path, (mtime, mtime))
    for folder in folders:
        os.utime(folder, (mtime, mtime))


def mtimes(root: Path) -> dict[str, int]:
    """Every file's mtime (ns) below ``root``, by relative path."""
    found = {}
    for top, _, names in os.walk(root):
        for name in names:
            path = Path(top) / name
            found[str(path.relative_to(root))] = path.stat().st_mtime_ns
    return found


# --------------------------------------------------------------------------- emulator counters


def counters_url(server: Server) -> str:
    return server.endpoint.rsplit("/", 1)[0] + "/_emulator/counters"


def reset_counters(server: Server) -> None:
    request = urllib.request.Request(counters_url(server), method="DELETE")
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()


def read_counters(server: Server) -> dict[str, int]:
    """Requests answered since the last reset, by operation."""
    with urllib.request.urlopen(counters_url(server), timeout=60) as answer:
        snapshot = json.loads(answer.read())
    return {op: int(entry["total"]) for op, entry in snapshot["operations"].items()}


# --------------------------------------------------------------------------- runs


@dataclass
class Row:
    direction: str
    tool: str
    files: int
    runs: list[Measurement] = field(default_factory=list)
    requests: list[dict[str, int]] = field(default_factory=list)
    failure: str | None = None

    def median(self, attribute: str) -> float | None:
        values = [value for run in self.runs if (value := getattr(run, attribute)) is not None]
        return statistics.median(values) if values and self.failure is None else None

    def median_requests(self) -> float | None:
        totals = [sum(ops.values()) for ops in self.requests]
        return statistics.median(totals) if totals and self.failure is None else None

    def as_json(self) -> dict[str, Any]:
        wall = self.median("wall_seconds")
        return {
            "direction": self.direction, "from_to": FROM_TO[self.direction], "tool": self.tool,
            "files": self.files, "failure": self.failure, "runs": [vars(run) for run in self.runs],
            "requests": self.requests,
            "median": {
                "wall_seconds": wall, "files_per_second": self.files / wall if wall else None,
                "cpu_seconds": self.median("cpu_seconds"), "peak_rss_mib": self.median("peak_rss_mib"),
                "server_cpu_seconds": self.median("server_cpu_seconds"),
                "requests": self.median_requests(),
            },
        }  # fmt: skip


@dataclass(frozen=True)
class Setup:
    server: Server
    workdir: Path
    upload_source: Path
    download_target: Path
    files: int
    envs: dict[str, dict[str, str]]
    timeout: float

    def url(self) -> str:
        return f"{self.server.endpoint}/{SHARE}?{self.server.container_sas(SHARE)}"

    def command(self, tool: str, direction: str) -> list[str]:
        ends = (
            [str(self.upload_source), self.url()]
            if direction == "upload"
            else [self.url(), str(self.download_target)]
        )
        flags = ["--from-to", FROM_TO[direction]]
        common = list(AZCOPY_COMMON_FLAGS) if tool == "azcopy" else []
        return [*program(tool), "sync", *ends, *flags, *common]


def check_nothing_done(setup: Setup, output: str, requests: dict[str, int]) -> str | None:
    """Why this sync did something (or did not look at every file), or None."""
    problems = []
    transfers = _TRANSFERS.search(output)
    if transfers is None:
        problems.append("its summary has no transfer count")
    elif int(transfers[1]) != 0:
        problems.append(f"its summary shows {transfers[1]} transfers")
    scanned = _SCANNED.search(output)
    if scanned is None or int(scanned[1]) != setup.files:
        problems.append(f"it scanned {scanned[1] if scanned else '?'} source files, expected {setup.files}")
    changes = {op: count for op, count in requests.items() if op not in READ_ONLY_OPS}
    if changes:
        problems.append(f"the emulator answered {changes}")
    return "; ".join(problems) or None


def run_one(setup: Setup, row: Row, run: str) -> None:
    log = setup.workdir / "logs" / f"{run}.log"
    where = f"  {FROM_TO[row.direction]:9} {row.tool:10}"
    before = mtimes(setup.download_target) if row.direction == "download" else None
    try:
        reset_counters(setup.server)
        measurement = run_measured(
            setup.command(row.tool, row.direction), env=setup.envs[row.tool], log=log,
            server=setup.server, timeout=setup.timeout,
        )  # fmt: skip
        requests = read_counters(setup.server)
        problem = check_nothing_done(setup, log.read_text(errors="replace"), requests)
        if before is not None:
            after = mtimes(setup.download_target)
            changed = [path for path, when in after.items() if before.get(path) != when]
            if changed or len(after) != len(before):
                problem = "; ".join(
                    filter(None, [problem, f"{len(changed)} local files changed (e.g. {changed[:3]})"])
                )
        if problem is not None:
            raise RunFailed(f"COPIED: {problem}")
        row.runs.append(measurement)
        row.requests.append(requests)
        print(f"{where} {measurement.wall_seconds:8.2f} s  ok", file=sys.stderr)
    except (RunFailed, OSError) as exc:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:]) if log.exists() else ""
        row.failure = redact(f"{exc}; last lines of {log.name}:\n{tail}")
        print(f"{where} FAILED: {redact(str(exc))}", file=sys.stderr)


def seed(setup: Setup, *, download: bool) -> dict[str, float]:
    """Upload the local tree into the share once (and download it once): ``shareferry copy``."""
    times = {}
    url = setup.url()
    steps = [("upload", [str(setup.upload_source / "*"), url, "--from-to", "LocalFile"])]
    if download:  # the share's contents, not a directory named after it
        everything = url.replace("?", "/*?", 1)
        steps.append(("download", [everything, str(setup.download_target), "--from-to", "FileLocal"]))
    for name, ends in steps:
        print(f"seeding: {name} of {setup.files:,} files with shareferry copy ...", file=sys.stderr)
        log = setup.workdir / "logs" / f"seed-{name}.log"
        command = [*program("shareferry"), "copy", *ends, "--recursive"]
        try:
            measured = run_measured(
                command, env=setup.envs["shareferry"], log=log, server=setup.server, timeout=setup.timeout
            )
        except RunFailed as exc:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"seeding ({name}) failed: {exc}\n{tail}") from None
        times[name] = measured.wall_seconds
        if name == "upload":
            found = inventory(Remote(setup.server, SHARE))
        else:
            found = (len(mtimes(setup.download_target)), 0)
        if found[0] != setup.files:
            raise RuntimeError(f"seeding ({name}) left {found[0]} files, expected {setup.files}")
    return times


# --------------------------------------------------------------------------- report


def ratio_rows(rows: Sequence[Row]) -> list[dict[str, Any]]:
    by_key = {(row.direction, row.tool): row for row in rows}
    result = []
    for direction in DIRECTIONS:
        ours, theirs = by_key.get((direction, "shareferry")), by_key.get((direction, "azcopy"))
        if ours is None or theirs is None:
            continue
        entry: dict[str, Any] = {"direction": direction, "from_to": FROM_TO[direction]}
        for metric in ("wall_seconds", "cpu_seconds", "peak_rss_mib"):
            a, b = ours.median(metric), theirs.median(metric)
            entry[metric] = a / b if a is not None and b else None
        a, b = ours.median_requests(), theirs.median_requests()
        entry["requests"] = a / b if a is not None and b else None
        result.append(entry)
    return result


def print_report(
    rows: Sequence[Row], environment: dict[str, Any], seeded: dict[str, float], args: Any
) -> None:
    print("No-op sync: ShareFerry vs AzCopy on the same Files emulator, in one run")
    print("  ".join(f"{key}={value}" for key, value in environment.items()))
    print(
        f"{args.files:,} files of {args.kib} KiB in {args.dirs} directories, unchanged since the upload; "
        f"medians of {args.repeat} run(s)"
    )
    print("seeding with shareferry copy: " + ", ".join(f"{k} {v:.1f} s" for k, v in seeded.items()) + "\n")
    table = []
    for row in rows:
        wall = row.median("wall_seconds")
        table.append(
            (FROM_TO[row.direction], row.tool, "FAILED" if row.failure else fmt(wall),
             fmt(row.files / wall if wall else None, 0), fmt(row.median("cpu_seconds")),
             fmt(row.median("peak_rss_mib"), 0), fmt(row.median_requests(), 0),
             fmt(row.median("server_cpu_seconds"))),
        )  # fmt: skip
    header = ("from-to", "tool", "wall s", "files/s", "CPU s", "peak RSS MiB", "requests", "server CPU s")
    print_table(header, table, left=2)
    ratios = ratio_rows(rows)
    if ratios:
        print()
        lines = [
            (entry["from_to"], *(fmt(entry[key]) for key in ("wall_seconds", "cpu_seconds", "peak_rss_mib")),
             fmt(entry["requests"], 4))
            for entry in ratios
        ]  # fmt: skip
        print_table(
            ("from-to", "wall SF/AzCopy", "CPU SF/AzCopy", "RSS SF/AzCopy", "requests SF/AzCopy"),
            lines,
            left=1,
        )
    print("\nrequests by operation (last run):")
    for row in rows:
        if row.requests:
            ops = ", ".join(f"{op} {count:,}" for op, count in sorted(row.requests[-1].items()))
            print(f"  {FROM_TO[row.direction]:9} {row.tool:10} {ops}")
    for row in rows:
        if row.failure:
            print(f"\nFAILED {row.tool} {FROM_TO[row.direction]}: {row.failure}")


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--files", type=int, help="number of files (default 100000; --quick: 5000)")
    parser.add_argument("--quick", action="store_true", help="5,000 files")
    parser.add_argument("--dirs", type=int, default=100, help="directories the files are spread over (100)")
    parser.add_argument("--kib", type=int, default=1, help="size of each file in KiB (1)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool and direction; medians (1)")
    parser.add_argument(
        "--directions", default="upload,download", help="upload (LocalFile), download (FileLocal) or both"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before a run is killed (3600)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE",
        help="set for both tools (repeatable); AZCOPY_*, SHAREFERRY_* and AZURE_STORAGE_* from the "
        "shell are not passed on",
    )  # fmt: skip
    parser.add_argument("--workdir", type=Path, help="parent of the work directory (default: the temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the tool logs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    if args.files is None:
        args.files = 5_000 if args.quick else 100_000
    args.directions = [part.strip() for part in args.directions.split(",") if part.strip()]
    if not args.directions or any(part not in DIRECTIONS for part in args.directions):
        parser.error("--directions: choose from upload, download (comma-separated)")
    for name in ("files", "dirs", "kib", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if any("=" not in item for item in args.env):
        parser.error("--env takes NAME=VALUE")
    return args


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="shareferry-sync-bench-", dir=args.workdir))
    started = time.monotonic()
    rows = [Row(direction, tool, args.files) for direction in args.directions for tool in TOOLS]
    seeded: dict[str, float] = {}
    versions: dict[str, str] = {}
    interrupted = False
    try:
        (workdir / "logs").mkdir()
        versions = {tool: tool_version(tool) for tool in TOOLS}  # fetches AzCopy, fails early
        upload_source, download_target = workdir / "local", workdir / "downloaded"
        download_target.mkdir()
        print(f"writing {args.files:,} files under {upload_source} ...", file=sys.stderr)
        make_tree(upload_source, args.files, args.dirs, args.kib * 1024, time.time() - 3600)
        prefixes = ("AZCOPY_", "RCLONE_", "SHAREFERRY_", "AZURE_STORAGE_")
        extra = dict(item.split("=", 1) for item in args.env)
        base = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)} | extra
        envs = {
            "shareferry": base | {"SHAREFERRY_JOB_DIR": str(workdir / "jobs")},
            "azcopy": azcopy_env(workdir / "azcopy") | extra,
        }
        (workdir / "server").mkdir()
        with run_emulator(workdir / "server") as server:
            server.create(SHARE)
            setup = Setup(server, workdir, upload_source, download_target, args.files, envs, args.timeout)
            seeded = seed(setup, download="download" in args.directions)
            for round_ in range(args.repeat):
                for direction in args.directions:
                    order = TOOLS if round_ % 2 == 0 else TOOLS[::-1]
                    for tool in order:
                        row = next(r for r in rows if r.direction == direction and r.tool == tool)
                        if row.failure is None:
                            run_one(setup, row, f"r{round_}-{direction}-{tool}")
    except KeyboardInterrupt:
        interrupted = True
    except RuntimeError as exc:
        print(f"sync_vs_azcopy: {redact(str(exc))}", file=sys.stderr)
        return 2
    finally:
        for bulky in ("local", "downloaded"):
            shutil.rmtree(workdir / bulky, ignore_errors=True)
        if args.keep or interrupted or any(row.failure for row in rows):
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    environment = {"cpus": os.cpu_count(), "python": platform.python_version(), **versions}
    elapsed = time.monotonic() - started
    if args.json:
        report = {
            "config": {k: v for k, v in vars(args).items() if k not in ("json", "workdir")},
            "environment": environment, "seeding_seconds": seeded, "interrupted": interrupted,
            "total_seconds": elapsed, "results": [row.as_json() for row in rows],
            "ratios": ratio_rows(rows),
        }  # fmt: skip
        print(json.dumps(report, indent=2))
    else:
        print_report(rows, environment, seeded, args)
        done = "interrupted after" if interrupted else "total"
        print(f"\n{done} {elapsed:.0f} s, including writing the files and seeding")
    return 130 if interrupted else 1 if any(row.failure for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
