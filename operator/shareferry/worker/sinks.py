"""Where a shard's reports and results ConfigMap go: the CopyJob's status, a stream, memory.

* :class:`ApiStatusSink` (``shareferry worker``): merge-patches ``status.shardReports.<i>`` on the
  CopyJob's status subresource and creates (or replaces) the results ConfigMap. A refused patch
  is logged and the next report tries again; the final one is retried a few times. Nothing
  here ever fails the copy.
* :class:`PrintSink` (``shareferry run``, the worker's log): one line per report on a stream.
* :class:`ResultsDirSink` (``shareferry run --results-dir``): the ConfigMap as a YAML file.
* :class:`MemorySink`: the latest report, for a display or a final status.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from shareferry.core.printable import printable
from shareferry.kube import CONFIGMAPS, COPYJOBS, Conflict, KubeClient, KubeError, NotFound
from shareferry.worker.reporter import Log, one_line

Sleep = Callable[[float], Awaitable[None]]
MIB = 1024 * 1024


class ApiStatusSink:
    """Reports into the CopyJob ``namespace``/``name``'s status, as shard ``shard_index``."""

    def __init__(
        self,
        client: KubeClient,
        *,
        namespace: str,
        name: str,
        shard_index: int,
        log: Log,
        final_attempts: int = 5,
        retry_delay: float = 1.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.shard_index = shard_index
        self.log = log
        self.final_attempts = final_attempts
        self.retry_delay = retry_delay
        self.sleep = sleep

    async def send(self, report: Mapping[str, Any], *, final: bool) -> None:
        patch = {"status": {"shardReports": {str(self.shard_index): dict(report)}}}
        attempts = self.final_attempts if final else 1
        for attempt in range(1, attempts + 1):
            try:
                await self.client.patch(COPYJOBS, self.namespace, self.name, patch, subresource="status")
                return
            except NotFound:
                self.log(f"status not written: CopyJob {self.namespace}/{self.name} no longer exists")
                return
            except KubeError as exc:
                retry = attempt < attempts
                self.log(one_line(f"status not written ({exc}){'; retrying' if retry else ''}", 500))
                if retry:
                    await self.sleep(self.retry_delay * 2 ** (attempt - 1))

    async def store_results(self, configmap: Mapping[str, Any]) -> str | None:
        name = str(configmap["metadata"]["name"])
        try:
            try:
                await self.client.create(CONFIGMAPS, self.namespace, configmap)
            except Conflict:
                await self.client.replace(CONFIGMAPS, self.namespace, name, configmap)
        except KubeError as exc:
            self.log(one_line(f"MD5 results ConfigMap {name} not written: {exc}", 500))
            return None
        return name


def report_line(report: Mapping[str, Any], *, label: str) -> str:
    """``shard 0: Running 42.0 %, 10/30 files (1 failed, 2 skipped), 1.5/3.0 MiB, 2.0 MiB/s``."""
    files = f"{report.get('filesDone', 0)}/{report.get('filesTotal', 0)} files"
    extras = [f"{report[key]} {word}" for key, word in (("filesFailed", "failed"), ("filesSkipped", "skipped")) if report.get(key)]  # fmt: skip
    if extras:
        files += f" ({', '.join(extras)})"
    size = f"{report.get('bytesDone', 0) / MIB:.1f}/{report.get('bytesTotal', 0) / MIB:.1f} MiB"
    speed = f"{(report.get('throughputBytesPerSecond') or 0) / MIB:.1f} MiB/s"
    line = f"{label}: {report.get('state')} {report.get('percent', 0):.1f} %, {files}, {size}, {speed}"
    if report.get("etaSeconds") is not None:
        line += f", ETA {report['etaSeconds']}s"
    if report.get("error"):
        line += f": {report['error']}"
    return printable(line)


class PrintSink:
    """One :func:`report_line` per report on ``out``."""

    def __init__(self, out: TextIO, *, label: str) -> None:
        self.out = out
        self.label = label

    async def send(self, report: Mapping[str, Any], *, final: bool) -> None:
        self.out.write(report_line(report, label=self.label) + "\n")
        self.out.flush()

    async def store_results(self, configmap: Mapping[str, Any]) -> str | None:
        return None


class ResultsDirSink:
    """Keeps the results ConfigMap as ``<directory>/<name>.yaml`` (a manifest ``kubectl apply``
    takes); reports go elsewhere."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, report: Mapping[str, Any], *, final: bool) -> None:
        return None

    async def store_results(self, configmap: Mapping[str, Any]) -> str | None:
        yaml: Any = importlib.import_module("yaml")
        name = str(configmap["metadata"]["name"])
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}.yaml"
        path.write_text(yaml.safe_dump(dict(configmap), sort_keys=False, width=120), encoding="utf-8")
        return str(path)


class MemorySink:
    """Keeps the latest report (and whether it was the final one)."""

    def __init__(self) -> None:
        self.report: dict[str, Any] | None = None
        self.final = False

    async def send(self, report: Mapping[str, Any], *, final: bool) -> None:
        self.report = dict(report)
        self.final = final

    async def store_results(self, configmap: Mapping[str, Any]) -> str | None:
        return None
