"""One container's life inside a pod: start, probe, wait, restart per ``restartPolicy``.

:class:`ContainerRunner` starts the container (environment and mounts resolved at each start,
as the kubelet does), runs its startup, liveness and readiness probes, records each
termination, and restarts it while the restart policy asks for it, with a back-off of 1 s, 2 s,
4 s ... capped at 10 s (``CrashLoopBackOff`` meanwhile). A failed liveness or startup probe stops
the container (SIGTERM, then SIGKILL after the grace period) and counts as its termination.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tests.cluster.kubelet import probes, runtime
from tests.cluster.kubelet.api import Api, Json
from tests.cluster.kubelet.env import NodeContext, command_line, container_env, image_env
from tests.cluster.kubelet.objects import ObjectError, Objects
from tests.cluster.kubelet.runtime import ContainerProcess, MountError
from tests.cluster.kubelet.status import ContainerRecord, terminated, waiting
from tests.cluster.kubelet.volumes import Volume

LOG = logging.getLogger("kubelet.containers")
BACKOFF_START = 1.0
BACKOFF_CAP = 10.0
DEFAULT_GRACE = 30


@dataclass
class Launch:
    """What every container of a pod needs to start: the pod, its volumes, where to log."""

    pod: Json
    volumes: dict[str, Volume]
    pod_dir: Path
    node: NodeContext
    api: Api
    entrypoint: list[str]
    entrypoint_bin: Path | None
    python_path: str | None
    software: list[Path]

    @property
    def grace(self) -> int:
        value = self.pod.get("spec", {}).get("terminationGracePeriodSeconds")
        return DEFAULT_GRACE if value is None else int(value)


@dataclass
class ContainerRunner:
    """Runs one container until it is done for good or the pod stops."""

    spec: Json
    record: ContainerRecord
    launch: Launch
    restart_policy: str
    changed: Callable[[], None]
    stopping: asyncio.Event
    process: ContainerProcess | None = None
    _backoff: float = BACKOFF_START
    _killing: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.record.name

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake as soon as the pod is being stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def _start(self) -> ContainerProcess | None:
        """Resolve the environment and mounts and start the process; None after a config error
        (recorded as CreateContainerConfigError)."""
        home = self.launch.pod_dir / "home" / self.name
        home.mkdir(parents=True, exist_ok=True)
        try:
            objects = Objects(self.launch.api, str(self.launch.pod["metadata"]["namespace"]))
            env = await container_env(self.launch.pod, self.spec, objects, self.launch.node)
            security = self.spec.get("securityContext") or {}
            read_only_root = bool(security.get("readOnlyRootFilesystem"))
            mounts = runtime.keep_reachable(
                runtime.mounts_for(self.spec, self.launch.volumes, env),
                [(home, False), *((path, read_only_root) for path in self.launch.software)],
            )
            stage = runtime.stage_dir(mounts, PurePosixPath(self.launch.pod_dir / "stage"))
        except (ObjectError, MountError) as error:
            self.record.state = waiting("CreateContainerConfigError", str(error))
            self.changed()
            LOG.warning("%s/%s: %s", self.launch.pod_dir.name, self.name, error)
            return None
        full_env = {
            **image_env(
                home=home, entrypoint_bin=self.launch.entrypoint_bin, python_path=self.launch.python_path
            ),
            "HOSTNAME": str(self.launch.pod["metadata"]["name"]),
            **env,
        }
        argv = command_line(self.spec, env, entrypoint=self.launch.entrypoint)
        return await runtime.start(
            argv,
            env=full_env,
            mounts=mounts,
            stage=stage,
            read_only_root=read_only_root,
            working_dir=str(self.spec.get("workingDir") or home),
            log_file=self.launch.pod_dir / f"{self.name}.log",
        )

    def _probe_tasks(self, process: ContainerProcess) -> list[asyncio.Task[None]]:
        startup, liveness, readiness = (
            self.spec.get(k) for k in ("startupProbe", "livenessProbe", "readinessProbe")
        )
        started = asyncio.Event()

        def attempt_of(probe: Json) -> Callable[[], Awaitable[bool]]:
            async def attempt() -> bool:
                try:
                    return await probes.check(probe, self.spec, process)
                except probes.ProbeError as error:
                    LOG.warning("%s/%s: %s", self.launch.pod_dir.name, self.name, error)
                    return False

            return attempt

        def on_startup(ok: bool) -> None:
            if ok:
                self.record.started = True
                self.record.ready = readiness is None
                started.set()
                self.changed()
            else:
                self.kill(reason="startup probe failed", probe=startup or {})

        def on_liveness(ok: bool) -> None:
            if not ok:
                self.kill(reason="liveness probe failed", probe=liveness or {})

        def on_readiness(ok: bool) -> None:
            self.record.ready = ok and self.record.started
            self.changed()

        async def after_startup(probe: Json, report: Callable[[bool], None]) -> None:
            await started.wait()
            await probes.run(probe, attempt_of(probe), report)

        tasks: list[asyncio.Task[None]] = []
        if startup:
            tasks.append(asyncio.create_task(probes.run(startup, attempt_of(startup), on_startup)))
        else:
            started.set()
        if liveness:
            tasks.append(asyncio.create_task(after_startup(liveness, on_liveness)))
        if readiness:
            tasks.append(asyncio.create_task(after_startup(readiness, on_readiness)))
        return tasks

    def kill(self, *, reason: str, probe: Json) -> None:
        """Stop the running process (SIGTERM, SIGKILL after the grace period), once."""
        process = self.process
        if process is None or (self._killing is not None and not self._killing.done()):
            return
        grace = probe.get("terminationGracePeriodSeconds")
        seconds = self.launch.grace if grace is None else int(grace)
        LOG.info("%s/%s: %s, stopping it", self.launch.pod_dir.name, self.name, reason)
        self._killing = asyncio.create_task(terminate(process, seconds))

    async def run(self) -> bool:
        """Run until the container is done for good; True when it ended with exit code 0."""
        while not self.stopping.is_set():
            try:
                self.process = await self._start()
            except Exception as error:  # the runtime itself failed (a missing tool, a full disk)
                LOG.warning("%s/%s: cannot start: %s", self.launch.pod_dir.name, self.name, error)
                self.record.state = waiting("CreateContainerError", str(error))
                self.changed()
                self.process = None
            if self.process is None:
                await self._pause(self._backoff)
                self._backoff = min(self._backoff * 2, BACKOFF_CAP)
                continue
            process = self.process
            if self.stopping.is_set():
                process.signal(signal.SIGKILL)
            began = asyncio.get_running_loop().time()
            self.record.container_id = f"process://{process.pid}"
            self.record.state = {"running": {"startedAt": process.started_at}}
            has_startup = bool(self.spec.get("startupProbe"))
            self.record.started = not has_startup
            self.record.ready = not has_startup and not self.spec.get("readinessProbe")
            self.changed()
            watchers = self._probe_tasks(process)
            code = await process.wait()
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            if self._killing is not None:
                await asyncio.gather(self._killing, return_exceptions=True)
                self._killing = None
            self.process = None
            self.record.ready = False
            self.record.started = False
            self.record.state = terminated(
                code, started_at=process.started_at, container_id=self.record.container_id
            )
            self.changed()
            LOG.info("%s/%s exited with %d", self.launch.pod_dir.name, self.name, code)
            restart = self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and code != 0)
            if self.stopping.is_set() or not restart:
                return code == 0
            if asyncio.get_running_loop().time() - began > 2 * BACKOFF_CAP:
                self._backoff = BACKOFF_START
            self.record.last_state = self.record.state
            self.record.state = waiting(
                "CrashLoopBackOff",
                f"back-off {self._backoff:g}s restarting failed container={self.name} pod={self.launch.pod['metadata']['name']}",
            )
            self.changed()
            await self._pause(self._backoff)
            self._backoff = min(self._backoff * 2, BACKOFF_CAP)
            if self.stopping.is_set():
                self.record.state = self.record.last_state
                self.record.last_state = {}
                self.changed()
                return False
            self.record.restart_count += 1
        return self.record.exit_code == 0


async def terminate(process: ContainerProcess, grace: float) -> None:
    """SIGTERM the container's processes, SIGKILL them after ``grace`` seconds."""
    process.signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(process.process.wait()), grace)
    except TimeoutError:
        process.signal(signal.SIGKILL)
