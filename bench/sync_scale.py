#!/usr/bin/env python
"""Memory and speed of comparing two trees for ``sync``, at 10,000, 100,000 and 1,000,000 files.

The claim: a sync's comparison needs memory that does not grow with the number of files, because
it marches two tree-ordered listings side by side (:mod:`shareferry.core.planning.march`) and
judges each pair as it comes. To show it without the cost of real storage, two synthetic backends
(defined here, not in the package) *generate* their listings: ``d0000/`` .. with up to 1,000
files each, every name, size and time derived from the file's index, nothing stored. The source
and the destination differ by fixed rules (:func:`kind`), so the verdicts to expect are known.

Each size runs in a fresh child process (``sync_scale.py --child N``), which reports its peak RSS
(``VmHWM``) and its RSS once everything is imported; the parent checks the verdict counts against
the rules and prints a table. It exits 1 when a count differs.

* default: :func:`~shareferry.core.planning.sync_plan.plan_sync` over the two trees, every item
  consumed and counted: the listing, the march and the decisions, no I/O.
* ``--with-plan``: the engine's sync path as ``shareferry sync`` runs it after opening its
  backends: :func:`~shareferry.core.engine.syncer.run_sync_items` with a job plan
  (:class:`~shareferry.core.jobplan.JobPlan`, SQLite in a temporary directory) that records the
  copies and spools the deletion candidates, the copies made through the real copier into a
  destination that discards the bytes, then :func:`~shareferry.core.engine.deleter.delete_absent`
  with ``--delete-destination true``.

::

    .venv/bin/python bench/sync_scale.py                       # 10k, 100k, 1M
    .venv/bin/python bench/sync_scale.py --sizes 10000,100000 --with-plan
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

PER_DIR = 1000
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
MIB = 1024 * 1024

# --------------------------------------------------------------------------- the rules

Kind = Literal["same", "source_newer", "destination_newer", "resized", "source_only", "destination_only"]

#: The verdict each kind of file must get (sync's default comparison: times, and sizes).
EXPECTED: dict[Kind, str] = {
    "same": "unchanged",
    "destination_newer": "unchanged",  # as in azcopy sync: an older source is left alone
    "source_newer": "copy",
    "resized": "copy",
    "source_only": "copy",
    "destination_only": "delete",
}


def kind(index: int) -> Kind:
    """How file ``index`` differs between the sides: 1 % newer at the source, 0.2 % of another
    size, 0.5 % missing at the destination, 0.5 % only at the destination, 1 % newer at the
    destination, the rest the same."""
    if index % 200 == 13:
        return "source_only"
    if index % 200 == 101:
        return "destination_only"
    if index % 100 == 7:
        return "source_newer"
    if index % 100 == 57:
        return "destination_newer"
    if index % 500 == 42:
        return "resized"
    return "same"


def predict(files: int) -> dict[str, int]:
    """The verdict counts the rules give for ``files`` file indexes (directories apart)."""
    counts: Counter[str] = Counter(EXPECTED[kind(index)] for index in range(files))
    counts["dirs"] = -(-files // PER_DIR)
    return {verdict: counts[verdict] for verdict in ("copy", "unchanged", "delete", "dirs")}


# --------------------------------------------------------------------------- the child


def rss_kib(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` of this process in KiB (Linux), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_side(name: str, files: int) -> Any:
    """A synthetic backend for one side (``source`` or ``destination``) of a tree of ``files``
    file indexes. Imports happen here so that the parent stays small."""
    from shareferry.core.backends.base import BackendKind, Capabilities
    from shareferry.core.errors import NotFoundError
    from shareferry.core.objects import StoredObject, WriteProps

    is_source = name == "source"
    dirs = -(-files // PER_DIR)

    def file_object(index: int) -> StoredObject | None:
        what = kind(index)
        if what == ("destination_only" if is_source else "source_only"):
            return None
        size = 512 + (index * 37) % 4096
        when = BASE_TIME + timedelta(seconds=index // 7, microseconds=(index * 7919) % 1_000_000)
        if what == "resized" and is_source:
            size += 1
        elif what == ("source_newer" if is_source else "destination_newer"):
            when += HOUR
        return StoredObject(
            path=f"d{index // PER_DIR:04d}/f{index:07d}", is_dir=False, size=size, last_modified=when
        )

    def dir_object(number: int) -> StoredObject:
        return StoredObject(path=f"d{number:04d}", is_dir=True, last_modified=BASE_TIME)

    def parse(path: str) -> tuple[int | None, int | None]:
        """(directory number, file index) of a path; NotFoundError when it names nothing."""
        parts = path.strip("/").split("/") if path.strip("/") else []
        try:
            number = int(parts[0][1:]) if parts and parts[0][0] == "d" and len(parts[0]) == 5 else None
            index = int(parts[1][1:]) if len(parts) == 2 and parts[1][0] == "f" else None
        except (ValueError, IndexError):
            number = index = None
        if parts and (number is None or number >= dirs or len(parts) > 2):
            raise NotFoundError(f"nothing at {path}")
        if len(parts) == 2 and (index is None or index // PER_DIR != number or index >= files):
            raise NotFoundError(f"nothing at {path}")
        return number, index

    class DiscardWriter:
        async def write(self, offset: int, data: bytes) -> None:
            return None

        async def write_from_url(self, offset: int, url: str, source_offset: int, length: int) -> None:
            raise NotImplementedError

        async def commit(self, md5: bytes | None) -> None:
            side.written += 1

        async def abort(self) -> None:
            return None

    class GeneratedTree:
        """Listings generated in tree order from the rules; nothing is stored. Writes are
        discarded and deletions counted (the engine mode needs them)."""

        kind: BackendKind = "memory"
        capabilities = Capabilities(folders=True)

        def __init__(self) -> None:
            self.written = 0
            self.deleted = 0

        def describe(self, path: str = "") -> str:
            return f"generated://{name}/{path}"

        def source_url(self, path: str) -> str | None:
            return None

        async def close(self) -> None:
            return None

        async def stat(self, path: str) -> StoredObject | None:
            try:
                number, index = parse(path)
            except NotFoundError:
                return None
            if number is None:
                return StoredObject(path="", is_dir=True, last_modified=BASE_TIME)
            return dir_object(number) if index is None else file_object(index)

        async def list(
            self, path: str, *, recursive: bool, skip_vanished: bool = False
        ) -> AsyncIterator[StoredObject]:
            del skip_vanished  # a generated tree never loses a directory while it is walked
            number, index = parse(path)
            if index is not None:
                raise NotFoundError(f"{path} is not a directory")
            numbers = range(dirs) if number is None else (number,)
            for current in numbers:
                if number is None:
                    yield dir_object(current)
                    if not recursive:
                        continue
                for at in range(current * PER_DIR, min(files, (current + 1) * PER_DIR)):
                    obj = file_object(at)
                    if obj is not None:
                        yield obj

        async def read(self, path: str, offset: int, length: int) -> bytes:
            obj = await self.stat(path)
            if obj is None or obj.is_dir:
                raise NotFoundError(f"no file at {path}")
            return bytes(max(0, min(length, obj.size - offset)))

        async def open_writer(self, path: str, *, size: int, props: WriteProps) -> DiscardWriter:
            return DiscardWriter()

        async def make_dir(self, path: str, props: WriteProps | None = None) -> None:
            return None

        async def delete(self, path: str) -> None:
            self.deleted += 1

    side = GeneratedTree()
    return side


async def plan_only(files: int) -> dict[str, Any]:
    """plan_sync over the two generated trees; every item consumed and counted."""
    from shareferry.core.filters import ObjectFilter
    from shareferry.core.planning.sync_plan import Compare, SyncScope, plan_sync

    source, destination = make_side("source", files), make_side("destination", files)
    scope = SyncScope(object_filter=ObjectFilter())
    baseline = rss_kib("VmRSS")
    started, cpu = time.perf_counter(), cpu_seconds()
    verdicts: Counter[str] = Counter()
    dirs = 0
    items = plan_sync(
        source, "", destination=destination, destination_root="", scope=scope, compare=Compare.TIME
    )
    async for item in items:
        if item.is_dir:
            dirs += 1
            if item.verdict != "unchanged":
                verdicts[f"dir-{item.verdict}"] += 1
        else:
            verdicts[item.verdict.value] += 1
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    return {"seconds": seconds, "cpu": cpu, "baseline_kib": baseline, "verdicts": {**verdicts, "dirs": dirs}}


async def with_plan(files: int) -> dict[str, Any]:
    """The engine's sync path with a job plan in a temporary directory (see the module docstring)."""
    from shareferry.core.accounting import Accounting
    from shareferry.core.engine.context import EngineContext
    from shareferry.core.engine.deleter import delete_absent
    from shareferry.core.engine.resume import PlanScope
    from shareferry.core.engine.syncer import SyncTarget, run_sync_items, sync_counts
    from shareferry.core.filters import ObjectFilter
    from shareferry.core.jobplan import FileState, JobPlan
    from shareferry.core.jobrun import new_record
    from shareferry.core.options import DeleteDestination, SyncOptions, TransferOptions
    from shareferry.core.planning.sync_plan import Compare, SyncScope, plan_sync

    source, destination = make_side("source", files), make_side("destination", files)
    scope = SyncScope(object_filter=ObjectFilter())
    sync_options = SyncOptions(delete_destination=DeleteDestination.TRUE)
    with tempfile.TemporaryDirectory(prefix="sync-scale-") as jobs:
        record = new_record(
            job_id="bench", command="sync", source="generated://source", from_to=None,
            destination="generated://destination", options={"recursive": True},
        )  # fmt: skip
        plan = JobPlan.create(Path(jobs), record)
        try:
            plan.start_run()
            accounting = Accounting()
            ctx = EngineContext.create(
                source=source, destination=destination, options=TransferOptions(recursive=True),
                accounting=accounting, plan=PlanScope(plan),
            )  # fmt: skip
            baseline = rss_kib("VmRSS")
            started, cpu = time.perf_counter(), cpu_seconds()
            items = plan_sync(
                source, "", destination=destination, destination_root="", scope=scope, compare=Compare.TIME
            )
            target = SyncTarget(source_root="", destination_root="", delete=True, compare=Compare.TIME)
            await run_sync_items(ctx, items, target=target, spool=plan)
            plan.flush()
            spooled_files, spooled_dirs = plan.count_delete_candidates()
            await delete_absent(ctx, plan, sync_options, confirm=None)
            seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
            counts = sync_counts(ctx)
            done = plan.counts()[FileState.DONE]
        finally:
            plan.close()
        plan_bytes = sum(entry.stat().st_size for entry in (Path(jobs) / "bench").iterdir())
    verdicts = {
        "copy": accounting.files_completed,
        "unchanged": counts.files_unchanged,
        "delete": counts.delete_completed,
        "dirs": -(-files // PER_DIR),  # every directory exists on both sides: nothing to do
    }
    if accounting.files_failed or accounting.folders_completed or accounting.folders_failed:
        verdicts["unexpected"] = accounting.files_failed + accounting.folders_completed
    checks = {
        "written": destination.written,
        "deleted": destination.deleted,
        "spooled_deletions": spooled_files + spooled_dirs,
        "plan_files_done": done,
        "plan_bytes": plan_bytes,
    }
    return {"seconds": seconds, "cpu": cpu, "baseline_kib": baseline, "verdicts": verdicts, "checks": checks}


def run_child(files: int, engine: bool) -> int:
    result = asyncio.run(with_plan(files) if engine else plan_only(files))
    result["peak_kib"] = rss_kib("VmHWM")
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- the parent


@dataclass
class Row:
    files: int
    seconds: float
    cpu_seconds: float
    baseline_mib: float
    peak_mib: float
    verdicts: dict[str, int]
    expected: dict[str, int]
    checks: dict[str, int]

    @property
    def ok(self) -> bool:
        if self.verdicts != self.expected:
            return False
        if self.checks:  # the engine mode: what the plan and the backends saw must agree
            return (
                self.checks["written"] == self.expected["copy"]
                and self.checks["plan_files_done"] == self.expected["copy"]
                and self.checks["spooled_deletions"] == self.expected["delete"]
                and self.checks["deleted"] == self.expected["delete"]
            )
        return True


def measure(files: int, engine: bool, timeout: float) -> Row:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(files)]
    if engine:
        command.append("--with-plan")
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the child for {files:,} files failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Row(
        files=files,
        seconds=result["seconds"],
        cpu_seconds=result["cpu"],
        baseline_mib=result["baseline_kib"] / 1024,
        peak_mib=result["peak_kib"] / 1024,
        verdicts=result["verdicts"],
        expected=predict(files),
        checks=result.get("checks", {}),
    )


def print_table(rows: Sequence[Row], engine: bool) -> None:
    header = ["files", "dirs", "seconds", "CPU s", "files/s", "RSS before MiB", "peak RSS MiB",
              "copy", "unchanged", "delete", "check"]  # fmt: skip
    if engine:
        header[-1:-1] = ["plan.db KiB"]
    lines = []
    for row in rows:
        line = [
            f"{row.files:,}", f"{row.verdicts.get('dirs', 0):,}", f"{row.seconds:.2f}",
            f"{row.cpu_seconds:.2f}", f"{row.files / row.seconds:,.0f}", f"{row.baseline_mib:.1f}", f"{row.peak_mib:.1f}",
            f"{row.verdicts.get('copy', 0):,}", f"{row.verdicts.get('unchanged', 0):,}",
            f"{row.verdicts.get('delete', 0):,}", "ok" if row.ok else "MISMATCH",
        ]  # fmt: skip
        if engine:
            line[-1:-1] = [f"{row.checks['plan_bytes'] / 1024:,.0f}"]
        lines.append(line)
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    for line in [header, ["-" * w for w in widths], *lines]:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--sizes", default=",".join(str(n) for n in DEFAULT_SIZES),
        help="comma-separated numbers of files (default 10000,100000,1000000)",
    )  # fmt: skip
    parser.add_argument(
        "--with-plan", action="store_true",
        help="run the engine's sync path with a job plan (copies discarded, deletions spooled)",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size; the fastest is shown, with the highest peak"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per size (3600)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--child", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(part) for part in args.sizes.split(",") if part.strip()]
    except ValueError:
        parser.error("--sizes takes comma-separated whole numbers")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes needs numbers of at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return run_child(args.child, args.with_plan)
    rows = []
    for files in args.sizes:
        print(f"{files:,} files ...", file=sys.stderr)
        runs = [measure(files, args.with_plan, args.timeout) for _ in range(args.repeat)]
        best = min(runs, key=lambda row: row.seconds)
        best.peak_mib = max(row.peak_mib for row in runs)
        if not all(row.ok for row in runs):
            best = next(row for row in runs if not row.ok)
        rows.append(best)
    if args.json:
        print(json.dumps([{**vars(row), "ok": row.ok} for row in rows], indent=2))
    else:
        what = "run_sync_items + job plan + delete_absent" if args.with_plan else "plan_sync"
        print(f"sync comparison over generated trees ({what}); one child process per size")
        print_table(rows, args.with_plan)
        for row in rows:
            if not row.ok:
                print(f"\n{row.files:,} files: got {row.verdicts} {row.checks}, expected {row.expected}")
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
