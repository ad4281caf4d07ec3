"""One pod bound to the node, from its first sighting to its removal.

:class:`PodWorker` sets up the pod's volumes (retrying while a claim is unbound or a Secret is
missing), runs the init containers one after the other and then all containers, and reports
the status after every change. Termination comes in three ways, as for a real kubelet:

* graceful deletion (the pod gets a ``deletionTimestamp``): SIGTERM to every container, SIGKILL
  after ``deletionGracePeriodSeconds``, a terminal phase reported, then the pod object deleted
  with grace period 0;
* removal (the pod is gone from the API): every process killed at once;
* the kubelet's shutdown: like graceful deletion with the grace period capped, reported as the
  kubelet's graceful node shutdown reports it (phase Failed, reason Terminated, condition
  DisruptionTarget/TerminationByKubelet), and the pod object left in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import signal
from pathlib import Path

from tests.cluster.kubelet.api import STRATEGIC_MERGE, Api, Json, describe, now, status_of
from tests.cluster.kubelet.containers import ContainerRunner, Launch, terminate
from tests.cluster.kubelet.env import NodeContext
from tests.cluster.kubelet.status import (
    ContainerRecord,
    StatusBuilder,
    final_phase,
    pod_phase,
    terminated,
    waiting,
)
from tests.cluster.kubelet.volumes import PodVolumes, VolumeError

LOG = logging.getLogger("kubelet.pod")
VOLUME_RETRY_CAP = 10.0
SHUTDOWN_MESSAGE = "Pod was terminated in response to imminent node shutdown."


class Runtime:
    """What the kubelet hands every pod worker."""

    def __init__(
        self,
        api: Api,
        *,
        state_dir: Path,
        node: NodeContext,
        entrypoint: list[str],
        entrypoint_bin: Path | None,
        python_path: str | None,
        software: list[Path],
    ) -> None:
        self.api = api
        self.state_dir = state_dir
        self.node = node
        self.entrypoint = entrypoint
        self.entrypoint_bin = entrypoint_bin
        self.python_path = python_path
        self.software = software


def pod_dir_name(pod: Json) -> str:
    """``<namespace>_<name>_<uid>``: the pod's directory (and log files) under ``<state>/pods``."""
    meta = pod["metadata"]
    return f"{meta['namespace']}_{meta['name']}_{meta['uid']}"


class PodWorker:
    """Runs one pod; :meth:`update` feeds it the pod's latest version from the watch."""

    def __init__(self, runtime: Runtime, pod: Json) -> None:
        self.runtime = runtime
        self.pod = pod
        meta = pod["metadata"]
        self.uid = str(meta["uid"])
        self.name = f"{meta['namespace']}/{meta['name']}"
        self.pod_dir = runtime.state_dir / "pods" / pod_dir_name(pod)
        spec = pod.get("spec", {})
        self.restart_policy = str(spec.get("restartPolicy") or "Always")
        self.init = [
            ContainerRecord(str(c["name"]), str(c.get("image", ""))) for c in spec.get("initContainers") or []
        ]
        self.regular = [
            ContainerRecord(str(c["name"]), str(c.get("image", ""))) for c in spec.get("containers") or []
        ]
        self.builder = StatusBuilder(str(pod.get("status", {}).get("startTime") or now()))
        self.volumes = PodVolumes(runtime.api, pod, self.pod_dir, dict(runtime.node.allocatable))
        self.stopping = asyncio.Event()
        self.runners: list[ContainerRunner] = []
        self.sandbox_ready = False
        self.init_failed = False
        self.final: Json | None = None
        self._dirty = asyncio.Event()
        self._sent: str = ""
        self._phase = ""
        self._life: asyncio.Task[None] | None = None
        self._sync: asyncio.Task[None] | None = None
        self._ending: asyncio.Task[None] | None = None

    # -- the watch's view -------------------------------------------------------------------

    def start(self) -> None:
        """Start the pod's life and its status reporting."""
        self.pod_dir.mkdir(parents=True, exist_ok=True)
        self._life = asyncio.create_task(self._live(), name=f"pod-{self.name}")
        self._sync = asyncio.create_task(self._report(), name=f"status-{self.name}")
        self.changed()

    def update(self, pod: Json) -> None:
        """A newer version of the pod; a deletionTimestamp starts the graceful termination."""
        self.pod = pod
        meta = pod.get("metadata", {})
        if meta.get("deletionTimestamp") and self._ending is None:
            grace = meta.get("deletionGracePeriodSeconds")
            self._ending = asyncio.create_task(self._delete(float(grace if grace is not None else 30)))

    def changed(self) -> None:
        """Something in the status changed: report it."""
        self._dirty.set()

    # -- life -------------------------------------------------------------------------------

    def _launch(self) -> Launch:
        runtime = self.runtime
        return Launch(
            pod=self.pod,
            volumes=self.volumes.volumes,
            pod_dir=self.pod_dir,
            node=runtime.node,
            api=runtime.api,
            entrypoint=runtime.entrypoint,
            entrypoint_bin=runtime.entrypoint_bin,
            python_path=runtime.python_path,
            software=runtime.software,
        )

    def _runner(self, spec: Json, record: ContainerRecord, *, policy: str) -> ContainerRunner:
        runner = ContainerRunner(spec, record, self._launch(), policy, self.changed, self.stopping)
        self.runners.append(runner)
        return runner

    async def _live(self) -> None:
        delay = 1.0
        while not self.stopping.is_set():
            try:
                await self.volumes.prepare()
                break
            except (VolumeError, OSError) as error:
                LOG.warning("%s: volumes not ready: %s", self.name, error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
                delay = min(delay * 2, VOLUME_RETRY_CAP)
        if self.stopping.is_set():
            return
        self.sandbox_ready = True
        for record in self.init:
            record.state = waiting("PodInitializing")
        for record in self.regular:
            record.state = waiting("PodInitializing")
        self.changed()
        spec = self.pod.get("spec", {})
        init_policy = "Never" if self.restart_policy == "Never" else "OnFailure"
        for container, record in zip(spec.get("initContainers") or [], self.init, strict=True):
            if not await self._runner(container, record, policy=init_policy).run():
                self.init_failed = not self.stopping.is_set()
                self.changed()
                return
        for record in self.regular:
            record.state = waiting("ContainerCreating")
        runners = [
            self._runner(container, record, policy=self.restart_policy)
            for container, record in zip(spec.get("containers") or [], self.regular, strict=True)
        ]
        await asyncio.gather(*(runner.run() for runner in runners))
        if not self.stopping.is_set():
            await self.volumes.close()

    async def _stop_all(self, grace: float) -> None:
        """Stop the pod's life: SIGTERM every container, SIGKILL after ``grace`` seconds."""
        self.stopping.set()
        kills = [terminate(runner.process, grace) for runner in self.runners if runner.process is not None]
        await asyncio.gather(*kills)
        if self._life is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._life), grace + 5)
            except TimeoutError:
                for runner in self.runners:
                    if runner.process is not None:
                        runner.process.signal(signal.SIGKILL)
                await asyncio.gather(self._life, return_exceptions=True)
        await self.volumes.close()
        for record in [*self.init, *self.regular]:
            if "terminated" not in record.state:
                started = record.state.get("running", {}).get("startedAt", "")
                if "terminated" in record.last_state:
                    record.state, record.last_state = record.last_state, {}
                elif record.ever_ran or started:
                    record.state = terminated(137, started_at=started)
                else:
                    record.state = terminated(
                        137,
                        started_at="",
                        reason="ContainerStatusUnknown",
                        message="The container could not be located when the pod was terminated",
                    )
            record.ready = False
            record.started = False

    def _terminal(self) -> bool:
        phase = self.pod.get("status", {}).get("phase")
        return phase in ("Succeeded", "Failed") or self.final is not None

    async def _delete(self, grace: float) -> None:
        """Finish a graceful deletion: stop, report the terminal phase, delete with grace 0."""
        LOG.info("%s: deletion requested, grace %gs", self.name, grace)
        if not self._terminal() or any(runner.process for runner in self.runners):
            await self._stop_all(grace)
            self.final = {"phase": final_phase(self.regular)}
            await self._flush()
        meta = self.pod["metadata"]
        try:
            await self.runtime.api.call(
                self.runtime.api.core.delete_namespaced_pod,
                meta["name"],
                meta["namespace"],
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}},
            )
        except Exception as error:
            if status_of(error) not in (404, 409):
                LOG.warning("%s: could not delete: %s", self.name, describe(error))

    async def shutdown(self, grace_cap: float) -> None:
        """The kubelet stops: terminate the pod and report it as graceful node shutdown does."""
        if self._ending is not None:
            await asyncio.gather(self._ending, return_exceptions=True)
            return
        if self._terminal() and not any(runner.process for runner in self.runners):
            return
        grace = min(float(self.pod.get("spec", {}).get("terminationGracePeriodSeconds") or 30), grace_cap)
        await self._stop_all(grace)
        self.final = {
            "phase": "Failed",
            "reason": "Terminated",
            "message": SHUTDOWN_MESSAGE,
            "condition": self.builder.condition(
                "DisruptionTarget", True, "TerminationByKubelet", SHUTDOWN_MESSAGE
            ),
        }
        await self._flush()
        await self._close()
        self._remove_own()

    async def remove(self) -> None:
        """The pod is gone from the API: kill everything at once and delete its directories."""
        if self._ending is not None:
            self._ending.cancel()
            await asyncio.gather(self._ending, return_exceptions=True)
        await self._stop_all(0)
        await self._close()
        self._remove_own()
        LOG.info("%s: removed", self.name)

    def _remove_own(self) -> None:
        """Delete the pod's directories but its logs: home, staging point, volumes."""
        shutil.rmtree(self.pod_dir / "home", ignore_errors=True)
        shutil.rmtree(self.pod_dir / "stage", ignore_errors=True)
        self.volumes.remove()

    async def _close(self) -> None:
        for task in (self._sync, self._life):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(task for task in (self._sync, self._life) if task is not None), return_exceptions=True
        )

    # -- status -----------------------------------------------------------------------------

    def _status(self) -> Json:
        if self.final is not None:
            final = dict(self.final)
            condition = final.pop("condition", None)
            return self.builder.build(
                self.pod,
                self.init,
                self.regular,
                phase=str(final.pop("phase")),
                sandbox_ready=False,
                extra=final,
                extra_conditions=[condition] if condition else None,
            )
        phase = pod_phase(
            self.init, self.regular, restart_policy=self.restart_policy, init_failed=self.init_failed
        )
        return self.builder.build(
            self.pod, self.init, self.regular, phase=phase, sandbox_ready=self.sandbox_ready
        )

    async def _flush(self) -> bool:
        """Send the status if it changed since the last report; False when the API refused."""
        status = self._status()
        text = json.dumps(status, sort_keys=True)
        if text == self._sent:
            return True
        meta = self.pod["metadata"]
        try:
            await self.runtime.api.call(
                self.runtime.api.core.patch_namespaced_pod_status,
                meta["name"],
                meta["namespace"],
                {"status": status},
                _content_type=STRATEGIC_MERGE,
            )
        except Exception as error:
            if status_of(error) == 404:
                return True
            LOG.warning("%s: status update failed: %s", self.name, describe(error))
            return False
        self._sent = text
        if status["phase"] != self._phase:
            self._phase = str(status["phase"])
            LOG.info("%s: phase %s", self.name, self._phase)
        return True

    async def _report(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self.stopping.is_set() and self.final is None:
                continue  # being terminated: the terminal status comes once, from the termination
            if not await self._flush():
                await asyncio.sleep(1.0)
                self._dirty.set()
