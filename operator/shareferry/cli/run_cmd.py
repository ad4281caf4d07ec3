"""``shareferry run -f copyjob.yaml``: run a CopyJob manifest here, without a cluster.

The same worker code as in a pod (:func:`shareferry.worker.runner.run_shard`) runs every shard
of the CopyJob in this process, at once. The manifests hold one CopyJob, the FileShares it uses
and, optionally, Secrets with each side's credentials (used exactly as the operator injects
them; a side without one takes its credentials from the environment, as ``shareferry copy``
does). ``--pvc CLAIM=DIR`` stands a local directory in for a PersistentVolumeClaim.

Progress goes to stderr (one line redrawn on a terminal, a line per shard report otherwise);
the CopyJob status the operator would write (phase, times, progress, counters, shards, failed
files, MD5 results) is printed on stdout as YAML, or as JSON with ``--output-type json`` (which
adds the shards' own reports, ``shardReports``). ``--results-dir DIR`` keeps each shard's MD5 results ConfigMap there as
``<name>.yaml``. Exit status as the worker's: 0 all done, 1 some files failed, 2 bad input,
3 the copy failed as a whole, 130 interrupted. No credential is ever printed, and no name with a
raw control character (:mod:`shareferry.core.printable`). The manifest files are read with
bounds (:mod:`shareferry.cli.manifest_files`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from shareferry.cli.manifest_files import read_documents
from shareferry.cli.output import json_text, one_line
from shareferry.cli.transfer_flags import parse_choice
from shareferry.core.errors import UsageError
from shareferry.core.printable import printable

EXIT_INTERRUPTED = 130
LIVE_INTERVAL = 0.5

DESCRIPTION = """\
Run a CopyJob here, without a cluster, through the same worker code a worker pod runs: every
shard (spec.parallelism) in this process, at once. The manifests hold one CopyJob, the
FileShares it uses and, optionally, the Secrets with each side's credentials, used exactly as
the operator injects them into its pods; a side without a Secret document takes its credentials
from the environment, as `shareferry copy` does. --pvc CLAIM=DIR stands a local directory in
for a PersistentVolumeClaim.

Progress goes to stderr. The CopyJob status the operator would write (phase, times, progress,
counters, shards, failed files, MD5 results) is printed on stdout as YAML, or as JSON with
--output-type json (which adds the shards' own reports). Exit status: 0 all done, 1 some files
failed, 2 bad input, 3 the copy failed as a whole, 130 interrupted. An interrupted run resumes
where it stopped when run again.
"""

EPILOG = """\
examples:
  shareferry run -f copyjob.yaml -f fileshare.yaml -f secret.yaml
  shareferry run -f upload.yaml --pvc reports-data=./exports --results-dir ./md5
  shareferry run -f sync.yaml --output-type json > status.json
"""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="run a CopyJob manifest here, without a cluster",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        one_line_errors=True,
    )
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="a YAML file of manifests (repeatable; '-' reads stdin): one CopyJob, its FileShares, Secrets",
    )
    parser.add_argument(
        "--pvc",
        action="append",
        default=[],
        metavar="CLAIM=DIR",
        help="use the local directory DIR where the CopyJob names the PersistentVolumeClaim CLAIM",
    )
    parser.add_argument(
        "--output-type", default="text", metavar="TYPE", help="text (default: YAML) or json, for the status"
    )
    parser.add_argument("--results-dir", metavar="DIR", help="write each shard's MD5 results ConfigMap here")
    parser.set_defaults(run=run)


def _fatal(text: str) -> None:
    sys.stderr.write(printable(f"shareferry run: {one_line(text)}") + "\n")
    sys.stderr.flush()


def parse_volumes(pairs: Sequence[str]) -> dict[str, str]:
    """``--pvc CLAIM=DIR`` pairs as claim name -> absolute directory."""
    volumes: dict[str, str] = {}
    for pair in pairs:
        claim, sep, directory = pair.partition("=")
        if not sep or not claim.strip() or not directory.strip():
            raise UsageError(f"--pvc {pair}: give CLAIM=DIR, e.g. --pvc reports-data=./exports")
        volumes[claim.strip()] = str(Path(directory.strip()).expanduser().absolute())
    return volumes


def run(args: argparse.Namespace) -> int:
    from shareferry.api.copyjob import parse_copyjob
    from shareferry.worker.endpoints import resolve_endpoints
    from shareferry.worker.manifests import collect, worker_environ

    try:
        output_type = parse_choice(args.output_type, ["text", "json"], "--output-type")
        manifests = collect(read_documents(args.filename))
        volumes = parse_volumes(args.pvc)
        environ = worker_environ(manifests, os.environ)
        spec = parse_copyjob(manifests.copyjob.get("spec") or {})
        resolve_endpoints(spec, fileshares=manifests.fileshares, environ=environ, volumes=volumes)
    except UsageError as exc:  # SpecError included
        _fatal(str(exc))
        return 2
    results_dir = Path(args.results_dir) if args.results_dir else None
    progress = Progress(sys.stderr, parallelism=spec.parallelism, live=sys.stderr.isatty())
    try:
        outcomes = asyncio.run(
            _run_shards(
                manifests.copyjob,
                fileshares=manifests.fileshares,
                environ=environ,
                volumes=volumes,
                parallelism=spec.parallelism,
                progress=progress,
                results_dir=results_dir,
            )
        )
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM (see _run_shards)
        progress.clear()
        _fatal("interrupted: the copy was cancelled (run the same command again to resume it)")
        return EXIT_INTERRUPTED
    codes = [outcome.exit_code for outcome in outcomes]
    if all(code == 2 for code in codes):
        progress.clear()
    else:
        progress.finish()
    reports = {str(index): outcome.report for index, outcome in enumerate(outcomes)}
    if all(code == 2 for code in codes):
        _fatal(str(outcomes[0].report.get("error") or "the CopyJob cannot run"))
        return 2
    status = local_status(reports, parallelism=spec.parallelism, exit_codes=codes)
    _print_status(status, output_type=output_type, out=sys.stdout)
    for outcome in outcomes:
        if outcome.report.get("state") == "Failed" and outcome.report.get("error"):
            _fatal(str(outcome.report["error"]))
    if results_dir is not None and status["md5Results"]["configMaps"]:
        sys.stderr.write(printable(f"MD5 results: {', '.join(str(results_dir / f'{name}.yaml') for name in status['md5Results']['configMaps'])}") + "\n")  # fmt: skip
    return combined_exit_code(codes)


def combined_exit_code(codes: Sequence[int]) -> int:
    """The run's exit status: the gravest of the shards' (2 bad spec, 3 failed, 1 files failed)."""
    for code in (2, 3, 1):
        if code in codes:
            return code
    return max(codes, default=0)


async def _run_shards(
    copyjob: Mapping[str, Any],
    *,
    fileshares: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    volumes: Mapping[str, str],
    parallelism: int,
    progress: Progress,
    results_dir: Path | None,
) -> list[Any]:
    from shareferry.worker.runner import run_shard
    from shareferry.worker.sinks import PrintSink, ResultsDirSink

    task = asyncio.current_task()
    if task is not None:  # SIGTERM cancels the run as Ctrl-C does: files in flight are discarded
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    async def one(index: int) -> Any:
        sinks: list[Any] = [progress.sink(index)]
        if not progress.live:
            name = str(copyjob["metadata"]["name"])
            label = f"{name} shard {index}/{parallelism}" if parallelism > 1 else name
            sinks.append(PrintSink(progress.out, label=label))
        if results_dir is not None:
            sinks.append(ResultsDirSink(results_dir))
        return await run_shard(
            copyjob,
            fileshares=fileshares,
            environ=environ,
            shard_index=index,
            shard_count=parallelism,
            sinks=sinks,
            volumes=volumes,
            interval=LIVE_INTERVAL if progress.live else None,
            log=progress.warning,
        )

    ticker = asyncio.create_task(progress.run()) if progress.live else None
    try:
        return list(await asyncio.gather(*(one(index) for index in range(parallelism))))
    finally:
        if ticker is not None:
            ticker.cancel()


class Progress:
    """The shards' latest reports, and on a terminal one line redrawn from their aggregate."""

    def __init__(self, out: TextIO, *, parallelism: int, live: bool) -> None:
        self.out = out
        self.parallelism = parallelism
        self.live = live
        self.reports: dict[str, dict[str, Any]] = {}
        self._drawn = False

    def sink(self, index: int) -> _ShardProgress:
        return _ShardProgress(self, index)

    def warning(self, text: str) -> None:
        self.clear()
        self.out.write(printable(f"WARNING: {text}") + "\n")
        self.out.flush()

    def line(self) -> str:
        from shareferry.api.copyjob_status import aggregate_status

        summary = aggregate_status(self.reports, parallelism=self.parallelism)
        progress = summary["progress"]
        eta = progress.get("etaSeconds")
        text = (
            f"{progress['percentText']}, {progress['filesDone']}/{progress['filesTotal']} files, "
            f"{progress['bytesText']}, {progress['throughputText']}"
        )
        failed = summary["counters"]["filesFailed"]
        if failed:
            text += f", {failed} failed"
        if eta is not None and progress["percent"] < 100:
            text += f", ETA {int(eta)}s"
        if self.parallelism > 1:
            done = sum(1 for shard in summary["shards"] if shard["state"] not in ("Pending", "Running"))
            text += f" ({done}/{self.parallelism} shards done)"
        return text

    def draw(self) -> None:
        if self.live:
            self.out.write("\r" + self.line() + "\033[K")
            self.out.flush()
            self._drawn = True

    def finish(self) -> None:
        """The last line stays on the terminal, with the final counts."""
        if self.live:
            self.draw()
            self.out.write("\n")
            self.out.flush()
            self._drawn = False

    def clear(self) -> None:
        if self._drawn:
            self.out.write("\r\033[K")
            self.out.flush()
            self._drawn = False

    async def run(self) -> None:
        while True:
            self.draw()
            await asyncio.sleep(LIVE_INTERVAL)


class _ShardProgress:
    def __init__(self, progress: Progress, index: int) -> None:
        self.progress = progress
        self.index = index

    async def send(self, report: Mapping[str, Any], *, final: bool) -> None:
        self.progress.reports[str(self.index)] = dict(report)

    async def store_results(self, configmap: Mapping[str, Any]) -> str | None:
        return None


def _present(value: Any) -> Any:
    """``value`` without its ``None`` entries, as a merge patch stores it."""
    if isinstance(value, Mapping):
        return {key: _present(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_present(item) for item in value]
    return value


def local_status(
    reports: Mapping[str, Mapping[str, Any]], *, parallelism: int, exit_codes: Sequence[int]
) -> dict[str, Any]:
    """The status the operator would write for these final shard reports."""
    from shareferry.api.copyjob_status import JOB_COMPLETE, JOB_FAILED, aggregate_status, phase_from

    stored = {index: _present(report) for index, report in reports.items()}
    job_state = JOB_COMPLETE if all(code == 0 for code in exit_codes) else JOB_FAILED
    status: dict[str, Any] = {"phase": phase_from(stored, parallelism=parallelism, job_state=job_state)}
    starts = [str(r["startTime"]) for r in stored.values() if r.get("startTime")]
    ends = [str(r["completionTime"]) for r in stored.values() if r.get("completionTime")]
    if starts:
        status["startTime"] = min(starts)
    if ends and len(ends) == len(stored):
        status["completionTime"] = max(ends)
        if starts:
            status["durationSeconds"] = (_time(max(ends)) - _time(min(starts))).total_seconds()
    status.update(aggregate_status(stored, parallelism=parallelism))
    status["shardReports"] = stored
    return status


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _print_status(status: Mapping[str, Any], *, output_type: str, out: TextIO) -> None:
    if output_type == "json":
        text = json_text(status, separators=None, indent=2) + "\n"
    else:  # for people: the summary; the shards' own reports are in the JSON form
        from shareferry.cli.yaml_text import yaml_text

        text = yaml_text({key: value for key, value in status.items() if key != "shardReports"})
    out.write(text)
    out.flush()
