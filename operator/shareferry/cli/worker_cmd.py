"""``shareferry worker``: run one shard of a CopyJob in a worker pod (the operator starts it).

Everything comes from the environment the operator gives the pod, never from arguments:
``SHAREFERRY_COPYJOB_NAMESPACE`` / ``SHAREFERRY_COPYJOB_NAME`` (the CopyJob), ``JOB_COMPLETION_INDEX``
(the shard, set by Kubernetes in an Indexed Job; default 0), ``SHAREFERRY_SHARD_COUNT`` (default
1), each side's credentials under ``SHAREFERRY_SOURCE_`` / ``SHAREFERRY_DESTINATION_``, and the
API server (in-cluster service account, or the kubeconfig in ``KUBECONFIG``). The worker loads the
CopyJob and its FileShares, runs the shard, patches ``status.shardReports.<index>`` while it
runs and when it ends, writes its MD5 results ConfigMap, and exits 0 (all done), 1 (some files
failed), 2 (the spec cannot run, or the CopyJob is gone: no retry helps) or 3 (the copy failed
as a whole, or the API server could not be reached). Its log (stderr) has a line per report
and the core's warnings; nothing secret.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

from shareferry.cli.output import one_line
from shareferry.core.printable import printable

DESCRIPTION = """\
Run one shard of a CopyJob, as a worker pod the operator started. Everything comes from the
environment, never from arguments: SHAREFERRY_COPYJOB_NAMESPACE and SHAREFERRY_COPYJOB_NAME (the
CopyJob), JOB_COMPLETION_INDEX (the shard; default 0) and SHAREFERRY_SHARD_COUNT (default 1),
each side's credentials under SHAREFERRY_SOURCE_ / SHAREFERRY_DESTINATION_, and the API server
(the pod's service account, or the kubeconfig in KUBECONFIG). It reports into the CopyJob's
status.shardReports and writes the shard's MD5 results ConfigMap. Exit status: 0 all done, 1
some files failed, 2 the CopyJob cannot run as written (or is gone), 3 the copy failed as a whole.
"""
EXIT_BAD_SPEC = 2
EXIT_JOB_FAILED = 3
EXIT_TERMINATED = 143


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "worker",
        help="run one shard of a CopyJob (in a worker pod the operator starts)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        one_line_errors=True,
    )
    parser.set_defaults(run=run)


def _say(text: str) -> None:
    sys.stderr.write(printable(one_line(text)) + "\n")
    sys.stderr.flush()


def _fatal(text: str) -> None:
    _say(f"shareferry worker: {text}")


class WorkerSetupError(Exception):
    """The worker cannot start: one line, and the exit status to end with."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def shard_settings(environ: Mapping[str, str]) -> tuple[str, str, int, int]:
    """``(namespace, name, shard index, shard count)`` from the pod's environment."""
    from shareferry.api import names

    namespace = environ.get(names.ENV_COPYJOB_NAMESPACE, "").strip()
    name = environ.get(names.ENV_COPYJOB_NAME, "").strip()
    if not namespace or not name:
        raise WorkerSetupError(
            f"{names.ENV_COPYJOB_NAMESPACE} and {names.ENV_COPYJOB_NAME} must name the CopyJob to run",
            EXIT_BAD_SPEC,
        )
    try:
        index = int(environ.get(names.ENV_SHARD_INDEX, "0").strip() or "0")
        count = int(environ.get(names.ENV_SHARD_COUNT, "1").strip() or "1")
    except ValueError:
        raise WorkerSetupError(
            f"{names.ENV_SHARD_INDEX} and {names.ENV_SHARD_COUNT} must be whole numbers", EXIT_BAD_SPEC
        ) from None
    if count < 1 or not 0 <= index < count:
        raise WorkerSetupError(
            f"shard {index} of {count} does not exist ({names.ENV_SHARD_INDEX} must be 0 to "
            f"{names.ENV_SHARD_COUNT} - 1)",
            EXIT_BAD_SPEC,
        )
    return namespace, name, index, count


def run(args: argparse.Namespace) -> int:
    environ = dict(os.environ)
    try:
        namespace, name, index, count = shard_settings(environ)
    except WorkerSetupError as exc:
        _fatal(str(exc))
        return exc.exit_code
    try:
        return asyncio.run(_main(environ, namespace=namespace, name=name, index=index, count=count))
    except WorkerSetupError as exc:
        _fatal(str(exc))
        return exc.exit_code
    except (KeyboardInterrupt, asyncio.CancelledError):
        _fatal("stopped before the copy finished")
        return EXIT_TERMINATED


async def _main(environ: Mapping[str, str], *, namespace: str, name: str, index: int, count: int) -> int:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
    return await _work(environ, namespace=namespace, name=name, index=index, count=count)


async def _load(kube: Any, namespace: str, name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The CopyJob and the FileShares it refers to (a missing one is left out: the run says so)."""
    from shareferry.api.copyjob import parse_copyjob
    from shareferry.api.errors import SpecError
    from shareferry.kube import COPYJOBS, FILESHARES, KubeError, NotFound

    try:
        copyjob = await kube.get(COPYJOBS, namespace, name)
    except NotFound:
        raise WorkerSetupError(f"CopyJob {namespace}/{name} not found", EXIT_BAD_SPEC) from None
    except KubeError as exc:
        raise WorkerSetupError(f"cannot read CopyJob {namespace}/{name}: {exc}", EXIT_JOB_FAILED) from None
    fileshares: dict[str, dict[str, Any]] = {}
    try:
        wanted = parse_copyjob(copyjob.get("spec") or {}).fileshare_names
    except SpecError:
        wanted = []  # the run reports the spec's problem
    for share in wanted:
        try:
            fileshares[share] = await kube.get(FILESHARES, namespace, share)
        except NotFound:
            continue
        except KubeError as exc:
            raise WorkerSetupError(
                f"cannot read FileShare {namespace}/{share}: {exc}", EXIT_JOB_FAILED
            ) from None
    return copyjob, fileshares


async def _work(environ: Mapping[str, str], *, namespace: str, name: str, index: int, count: int) -> int:
    from shareferry.kube import ConfigError, KubeClient
    from shareferry.worker.reporter import ShardSink
    from shareferry.worker.runner import run_shard
    from shareferry.worker.sinks import ApiStatusSink, PrintSink

    try:
        client = KubeClient.from_environment()
    except ConfigError as exc:
        raise WorkerSetupError(str(exc), EXIT_JOB_FAILED) from None
    async with client as kube:
        copyjob, fileshares = await _load(kube, namespace, name)
        label = f"CopyJob {namespace}/{name} shard {index}/{count}"
        sinks: list[ShardSink] = [
            ApiStatusSink(kube, namespace=namespace, name=name, shard_index=index, log=_say),
            PrintSink(sys.stderr, label=label),
        ]
        outcome = await run_shard(
            copyjob,
            fileshares=fileshares,
            environ=environ,
            shard_index=index,
            shard_count=count,
            sinks=sinks,
            log=lambda text: _say(f"WARNING: {text}"),
        )
    if outcome.report.get("error"):
        _fatal(str(outcome.report["error"]))
    return outcome.exit_code
