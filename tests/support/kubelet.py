"""A test "kubelet": it stands in for BOTH the kubelet and the Job controller of a real cluster,
because there is no cluster here. It runs the batch/v1 Jobs of a ``KubeCluster`` as local
processes and writes back what those two components would.

What it does, by polling the cluster's API over HTTP (every ``poll_interval``):

* For each new Job (not suspended, not finished), it creates Pod objects (owned by the Job,
  labelled ``batch.kubernetes.io/job-name`` / ``controller-uid`` and, for an Indexed Job,
  ``batch.kubernetes.io/job-completion-index``) and runs each pod's first container as a local
  subprocess: ``command`` + ``args`` (``$(VAR)`` references expanded as Kubernetes does); a
  leading ``shareferry`` (or no command at all: the project image's entrypoint) becomes
  ``<this python> -m shareferry``.
* The process environment is the pod's: ``env`` (``value``, ``valueFrom.secretKeyRef`` and
  ``configMapKeyRef`` read from the API with ``data`` base64-decoded and ``optional: true``
  honoured, ``fieldRef`` for metadata.name/namespace/uid/labels/annotations and
  spec.serviceAccountName), ``envFrom`` (Secrets and ConfigMaps, with ``prefix``),
  ``JOB_COMPLETION_INDEX`` for Indexed Jobs, plus ``cluster.environ()`` (so the process reaches
  the API), ``extra_env``, PATH, HOME (a private directory) and SHAREFERRY_JOB_DIR when the
  test process has one. A missing Secret/ConfigMap or key that is not optional leaves the pod
  Pending with ``CreateContainerConfigError`` and retries, as a kubelet does.
* Volumes: a ``persistentVolumeClaim`` volume is the local directory ``volumes[claimName]``.
  Mounts must lie under ``/mnt/shareferry`` (the worker's default volume root): the kubelet
  makes a private root directory, symlinks ``<root>/<mountPath relative to /mnt/shareferry>``
  to the claim's directory (plus ``subPath``) and sets ``SHAREFERRY_VOLUME_ROOT=<root>``, which
  the worker reads instead of /mnt/shareferry. An unknown claim leaves the pod Pending; other
  volume types are ignored; ``readOnly`` is not enforced.
* Job controller: ``parallelism`` pods at a time; NonIndexed Jobs need ``completions``
  (default 1) successes, Indexed Jobs one success per index; a failed pod is retried at once
  (no exponential back-off delay) until ``failed > backoffLimit`` (default 6), then the running
  pods are terminated and the Job gets ``Failed`` / ``BackoffLimitExceeded``. Past
  ``activeDeadlineSeconds`` (from startTime) everything is terminated and the Job gets
  ``Failed`` / ``DeadlineExceeded``. Success gives ``Complete`` / ``CompletionsReached`` and
  ``completionTime``. The status (startTime, active, succeeded, failed, completedIndexes,
  conditions) is merge-patched through ``/status`` after every change, and each Pod's status
  (phase, containerStatuses with the exit code) too. ``ttlSecondsAfterFinished`` deletes the
  finished Job (Background) as the TTL controller would.
* Termination: a process is stopped (SIGTERM to its process group, SIGKILL after the pod's
  ``terminationGracePeriodSeconds``, capped by ``kill_grace``) when its Pod object is deleted
  or marked for deletion (deleting the Job with Background or Foreground propagation deletes
  its pods through the cluster's garbage collection; with Orphan, as in a real cluster, the
  pods and their processes go on), when the deadline passes, or when the kubelet stops. A
  deleted pod counts as failed. A deleted Job is no longer managed.

Every pod is recorded (``kubelet.pods``): argv, env (left out of repr), exit code, and the tails
of stdout/stderr, so tests can check, for instance, that no secret is in argv.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from shareferry.kube import CONFIGMAPS, JOBS, PODS, SECRETS, KubeClient, KubeError, NotFound
from tests.support.kube_cluster import KubeCluster

VOLUME_ROOT = PurePosixPath("/mnt/shareferry")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known variables are replaced, unknown references stay
    as written, ``$$`` is a literal ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR_REF.sub(replace, text)


def index_ranges(indexes: set[int]) -> str:
    """``completedIndexes`` as the Job controller writes it: ``0-2,4``."""
    ordered = sorted(indexes)
    parts: list[str] = []
    start = prev = None
    for index in ordered:
        if start is None:
            start = prev = index
        elif index == prev + 1:  # type: ignore[operator]
            prev = index
        else:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = index
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts)


class PodConfigError(Exception):
    """The pod cannot start yet (a missing Secret, ConfigMap or claim): it stays Pending."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class PodRecord:
    """One pod the kubelet ran (or tried to)."""

    namespace: str
    job: str
    name: str
    index: int | None
    uid: str = ""
    phase: str = "Pending"  # Pending, Running, Succeeded, Failed
    reason: str | None = None  # Completed, Error, DeadlineExceeded, Deleted, BackoffLimitExceeded...
    message: str | None = None
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict, repr=False)
    exit_code: int | None = None
    stdout: str = field(default="", repr=False)
    stderr: str = field(default="", repr=False)
    started: float | None = None
    finished: float | None = None

    @property
    def done(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


class Kubelet:
    """See the module docstring. Use ``async with Kubelet.run(cluster, volumes=...) as k``."""

    def __init__(
        self,
        cluster: KubeCluster,
        kube: KubeClient,
        *,
        volumes: Mapping[str, Path],
        workdir: Path,
        extra_env: Mapping[str, str],
        poll_interval: float,
        kill_grace: float,
        tail_chars: int,
        entrypoint: tuple[str, ...],
    ) -> None:
        self.cluster = cluster
        self.kube = kube
        self.volumes = {name: Path(path) for name, path in volumes.items()}
        self.workdir = workdir
        self.extra_env = dict(extra_env)
        self.poll_interval = poll_interval
        self.kill_grace = kill_grace
        self.tail_chars = tail_chars
        self.entrypoint = entrypoint
        self.pods: list[PodRecord] = []
        self._jobs: dict[str, dict[str, Any]] = {}  # alive Jobs by uid, from the last poll
        self._pods: dict[str, dict[str, Any]] = {}  # alive Pods by uid
        self._polls_started = 0  # polls begun so far
        self._polls_listed = 0  # the number of the poll whose listing self._jobs/_pods hold
        self._created_before_poll: dict[str, int] = {}  # our Pod uid -> polls begun before it existed
        self._runners: dict[str, asyncio.Task[None]] = {}  # Job uid -> its controller task
        self._polled = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.errors: list[BaseException] = []  # bugs in the kubelet itself, raised by the waits

    @classmethod
    @contextlib.asynccontextmanager
    async def run(
        cls,
        cluster: KubeCluster,
        *,
        volumes: Mapping[str, Path] | None = None,
        workdir: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        poll_interval: float = 0.05,
        kill_grace: float = 3.0,
        tail_chars: int = 4000,
        entrypoint: tuple[str, ...] = ("shareferry",),
    ) -> AsyncIterator[Kubelet]:
        """Run the kubelet until the block ends, then stop every process it started."""
        with contextlib.ExitStack() as stack:
            if workdir is None:
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kubelet-")))
            async with cluster.client() as kube:
                kubelet = cls(
                    cluster,
                    kube,
                    volumes=volumes or {},
                    workdir=workdir,
                    extra_env=extra_env or {},
                    poll_interval=poll_interval,
                    kill_grace=kill_grace,
                    tail_chars=tail_chars,
                    entrypoint=entrypoint,
                )
                poller = asyncio.create_task(kubelet._poll_forever(), name="kubelet poller")
                try:
                    await kubelet._polled.wait()
                    yield kubelet
                finally:
                    poller.cancel()
                    for task in list(kubelet._runners.values()) + list(kubelet._tasks):
                        task.cancel()
                    await asyncio.gather(
                        poller, *kubelet._runners.values(), *kubelet._tasks, return_exceptions=True
                    )

    # -- what tests look at -----------------------------------------------------------------

    def pods_of(self, job: str, namespace: str = "default") -> list[PodRecord]:
        return [pod for pod in self.pods if pod.job == job and pod.namespace == namespace]

    async def wait_for_job(
        self,
        name: str,
        namespace: str = "default",
        *,
        timeout: float = 10.0,
        conditions: tuple[str, ...] = ("Complete", "Failed"),
    ) -> dict[str, Any]:
        """The Job once it has one of ``conditions`` (True)."""

        def finished(job: dict[str, Any]) -> bool:
            self._check_errors()
            return any(
                c.get("type") in conditions and c.get("status") == "True"
                for c in (job.get("status") or {}).get("conditions") or []
            )

        return await self.cluster.wait_for_object(JOBS, namespace, name, finished, timeout=timeout)

    async def wait_for_pods(
        self,
        job: str,
        namespace: str = "default",
        *,
        count: int = 1,
        phase: str = "Running",
        timeout: float = 10.0,
    ) -> list[PodRecord]:
        """At least ``count`` recorded pods of ``job`` in ``phase``."""

        def probe() -> list[PodRecord] | None:
            self._check_errors()
            found = [pod for pod in self.pods_of(job, namespace) if pod.phase == phase]
            return found if len(found) >= count else None

        return await self.cluster.wait_for(
            probe, timeout=timeout, what=f"{count} {phase} pod(s) of job {job}"
        )

    # -- polling ----------------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        while True:
            self._polls_started += 1
            number = self._polls_started
            try:
                jobs = await self.kube.list(JOBS)
                pods = await self.kube.list(PODS)
            except KubeError:
                await asyncio.sleep(self.poll_interval)
                continue
            self._jobs = {job["metadata"]["uid"]: job for job in jobs}
            self._pods = {pod["metadata"]["uid"]: pod for pod in pods}
            self._polls_listed = number
            for uid, job in self._jobs.items():
                if uid not in self._runners and self._startable(job):
                    runner = asyncio.create_task(self._control(job), name=f"job {job['metadata']['name']}")
                    runner.add_done_callback(self._note_failure)
                    self._runners[uid] = runner
            self._polled.set()
            await asyncio.sleep(self.poll_interval)

    def _note_failure(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]

    def _check_errors(self) -> None:
        if self.errors:
            raise RuntimeError(f"the test kubelet failed: {self.errors[0]!r}") from self.errors[0]

    @staticmethod
    def _startable(job: Mapping[str, Any]) -> bool:
        if job["metadata"].get("deletionTimestamp") or (job.get("spec") or {}).get("suspend"):
            return False
        conditions = (job.get("status") or {}).get("conditions") or []
        return not any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions
        )

    def _job_alive(self, uid: str) -> bool:
        job = self._jobs.get(uid)
        return job is not None and not job["metadata"].get("deletionTimestamp")

    def _pod_deleted(self, uid: str) -> bool:
        """Gone or being deleted. Only a listing that began after the pod was created can tell:
        an older one does not have it yet."""
        if self._polls_listed <= self._created_before_poll.get(uid, self._polls_listed):
            return False
        pod = self._pods.get(uid)
        return pod is None or bool(pod["metadata"].get("deletionTimestamp"))

    # -- the Job controller -------------------------------------------------------------------

    async def _control(self, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        indexed = spec.get("completionMode") == "Indexed"
        parallelism = max(int(spec.get("parallelism", 1)), 0)
        completions = int(spec.get("completions") or (parallelism if indexed else 1))
        backoff_limit = int(spec.get("backoffLimit", 6))
        deadline_seconds = spec.get("activeDeadlineSeconds")
        start_time = (job.get("status") or {}).get("startTime") or _now()
        deadline = time.monotonic() + float(deadline_seconds) if deadline_seconds is not None else None
        pending = list(range(completions)) if indexed else []
        completed: set[int] = set()
        succeeded = failed = 0
        running: dict[asyncio.Task[PodRecord], PodRecord] = {}

        async def write(extra: Mapping[str, Any] | None = None) -> None:
            status: dict[str, Any] = {
                "startTime": start_time,
                "active": len(running),
                "succeeded": succeeded,
                "failed": failed,
            }
            if indexed:
                status["completedIndexes"] = index_ranges(completed) or None
            status.update(extra or {})
            with contextlib.suppress(NotFound):
                await self.kube.patch(JOBS, namespace, name, {"status": status}, subresource="status")

        async def finish(condition: str, reason: str, message: str) -> None:
            for task, record in list(running.items()):
                record.reason = reason
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            running.clear()
            now = _now()
            extra: dict[str, Any] = {
                "conditions": [
                    {
                        "type": condition,
                        "status": "True",
                        "reason": reason,
                        "message": message,
                        "lastProbeTime": now,
                        "lastTransitionTime": now,
                    }
                ]
            }
            if condition == "Complete":
                extra["completionTime"] = now
            await write(extra)
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None:
                self._spawn(self._expire(namespace, name, float(ttl)))

        await write()
        while self._job_alive(uid):
            if deadline is not None and time.monotonic() >= deadline:
                await finish("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
                return
            while len(running) < parallelism and (
                pending if indexed else succeeded + len(running) < completions
            ):
                index = pending.pop(0) if indexed else None
                record = PodRecord(namespace=namespace, job=name, name="", index=index)
                self.pods.append(record)
                task = asyncio.create_task(self._run_pod(job, record), name=f"pod of job {name}")
                task.add_done_callback(self._note_failure)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                running[task] = record
                await write()
            if not running:
                break
            timeout = (
                self.poll_interval
                if deadline is None
                else max(0.0, min(self.poll_interval, deadline - time.monotonic()))
            )
            done, _ = await asyncio.wait(set(running), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                record = running.pop(task)
                if record.phase == "Succeeded":
                    succeeded += 1
                    if record.index is not None:
                        completed.add(record.index)
                else:
                    failed += 1
                    if record.index is not None:
                        pending.insert(0, record.index)
            if done:
                if failed > backoff_limit:
                    await finish(
                        "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
                    )
                    return
                if (indexed and len(completed) >= completions) or (not indexed and succeeded >= completions):
                    await finish(
                        "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
                    )
                    return
                await write()
        if self._job_alive(uid) and not running:
            await finish("Complete", "CompletionsReached", "Reached expected number of succeeded pods")

    async def _expire(self, namespace: str, name: str, ttl: float) -> None:
        await asyncio.sleep(ttl)  # the TTL controller's clock, not a test synchronisation
        with contextlib.suppress(NotFound):
            await self.kube.delete(JOBS, namespace, name, propagation="Background")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- pods -----------------------------------------------------------------------------

    def _pod_body(self, job: Mapping[str, Any], index: int | None) -> dict[str, Any]:
        meta = job["metadata"]
        template = (job.get("spec") or {}).get("template") or {}
        template_meta = template.get("metadata") or {}
        labels = dict(template_meta.get("labels") or {})
        labels.update(
            {
                "batch.kubernetes.io/job-name": meta["name"],
                "job-name": meta["name"],
                "batch.kubernetes.io/controller-uid": meta["uid"],
                "controller-uid": meta["uid"],
            }
        )
        annotations = dict(template_meta.get("annotations") or {})
        stem = meta["name"] if index is None else f"{meta['name']}-{index}"
        if index is not None:
            labels["batch.kubernetes.io/job-completion-index"] = str(index)
            annotations["batch.kubernetes.io/job-completion-index"] = str(index)
        suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{stem[:57]}-{suffix}",
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": dict(template.get("spec") or {}),
        }

    async def _pod_status(self, record: PodRecord, status: Mapping[str, Any]) -> None:
        with contextlib.suppress(NotFound):
            await self.kube.patch(
                PODS, record.namespace, record.name, {"status": dict(status)}, subresource="status"
            )

    async def _run_pod(self, job: dict[str, Any], record: PodRecord) -> PodRecord:
        body = self._pod_body(job, record.index)
        try:
            pod = await self.kube.create(PODS, record.namespace, body)
        except KubeError as exc:
            record.phase, record.reason, record.message = "Failed", "PodCreationFailed", exc.message
            return record
        record.name, record.uid = pod["metadata"]["name"], pod["metadata"]["uid"]
        self._created_before_poll[record.uid] = self._polls_started
        try:
            await self._pod_status(record, {"phase": "Pending"})
            prepared = await self._prepare(pod, record)
            if prepared is None:
                return record
            argv, env, cwd = prepared
            await self._execute(pod, record, argv, env, cwd)
            return record
        except asyncio.CancelledError:
            # The Job failed (deadline or back-off limit): its running pods are killed.
            if record.phase in ("Pending", "Running"):
                record.phase = "Failed"
                record.reason = record.reason or "DeadlineExceeded"
            await asyncio.shield(self._pod_status(record, {"phase": record.phase, "reason": record.reason}))
            raise
        finally:
            if record.finished is None:
                record.finished = time.monotonic()

    async def _prepare(
        self, pod: Mapping[str, Any], record: PodRecord
    ) -> tuple[list[str], dict[str, str], Path] | None:
        """argv, env and working directory; waits (Pending) while a Secret, ConfigMap or claim
        is missing; None when the pod was deleted meanwhile."""
        while True:
            if self._pod_deleted(record.uid):
                record.phase, record.reason = "Failed", "Deleted"
                return None
            try:
                return await self._resolve(pod, record)
            except PodConfigError as exc:
                if record.reason != exc.reason or record.message != exc.message:
                    record.reason, record.message = exc.reason, exc.message
                    await self._pod_status(
                        record,
                        {
                            "phase": "Pending",
                            "containerStatuses": [
                                {
                                    "name": "worker",
                                    "state": {"waiting": {"reason": exc.reason, "message": exc.message}},
                                }
                            ],
                        },
                    )
                await asyncio.sleep(self.poll_interval)

    async def _secret_or_configmap(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        resource = SECRETS if kind == "Secret" else CONFIGMAPS
        try:
            obj = await self.kube.get(resource, namespace, name)
        except NotFound:
            return None
        values: dict[str, str] = {}
        if kind == "Secret":
            for key, value in (obj.get("data") or {}).items():
                values[key] = base64.b64decode(value).decode("utf-8")
        else:
            values.update({key: str(value) for key, value in (obj.get("data") or {}).items()})
            for key, value in (obj.get("binaryData") or {}).items():
                values[key] = base64.b64decode(value).decode("utf-8", "replace")
        return values

    async def _ref_value(self, pod: Mapping[str, Any], ref_kind: str, ref: Mapping[str, Any]) -> str | None:
        namespace = pod["metadata"]["namespace"]
        kind = "Secret" if ref_kind == "secretKeyRef" else "ConfigMap"
        values = await self._secret_or_configmap(kind, namespace, ref["name"])
        optional = bool(ref.get("optional", False))
        if values is None:
            if optional:
                return None
            raise PodConfigError("CreateContainerConfigError", f'{kind.lower()} "{ref["name"]}" not found')
        if ref["key"] not in values:
            if optional:
                return None
            raise PodConfigError(
                "CreateContainerConfigError",
                f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}",
            )
        return values[ref["key"]]

    @staticmethod
    def _field_value(pod: Mapping[str, Any], path: str) -> str:
        meta = pod["metadata"]
        simple = {
            "metadata.name": meta.get("name"),
            "metadata.namespace": meta.get("namespace"),
            "metadata.uid": meta.get("uid"),
            "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName") or "default",
            "spec.nodeName": "kubelet",
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
        }
        if path in simple:
            return str(simple[path] or "")
        match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
        if match:
            return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
        raise PodConfigError(
            "CreateContainerConfigError", f"fieldRef {path!r} is not supported by the test kubelet"
        )

    async def _resolve(
        self, pod: Mapping[str, Any], record: PodRecord
    ) -> tuple[list[str], dict[str, str], Path]:
        spec = pod.get("spec") or {}
        containers = spec.get("containers") or []
        if not containers:
            raise PodConfigError("CreateContainerConfigError", "the pod has no container")
        container = containers[0]
        pod_env: dict[str, str] = {}
        if record.index is not None:
            pod_env["JOB_COMPLETION_INDEX"] = str(record.index)
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for ref_kind, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                if ref_kind in source:
                    ref = source[ref_kind]
                    values = await self._secret_or_configmap(kind, pod["metadata"]["namespace"], ref["name"])
                    if values is None and not ref.get("optional", False):
                        raise PodConfigError(
                            "CreateContainerConfigError", f'{kind.lower()} "{ref["name"]}" not found'
                        )
                    pod_env.update({prefix + key: value for key, value in (values or {}).items()})
        for item in container.get("env") or []:
            if "valueFrom" in item:
                source = item["valueFrom"]
                value: str | None
                if "secretKeyRef" in source:
                    value = await self._ref_value(pod, "secretKeyRef", source["secretKeyRef"])
                elif "configMapKeyRef" in source:
                    value = await self._ref_value(pod, "configMapKeyRef", source["configMapKeyRef"])
                elif "fieldRef" in source:
                    value = self._field_value(pod, source["fieldRef"]["fieldPath"])
                else:
                    raise PodConfigError(
                        "CreateContainerConfigError", f"valueFrom {sorted(source)} is not supported"
                    )
                if value is not None:
                    pod_env[item["name"]] = value
            else:
                pod_env[item["name"]] = expand(str(item.get("value", "")), pod_env)
        pod_dir = self.workdir / record.name
        home = pod_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        env: dict[str, str] = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "HOSTNAME": record.name,
        }
        for name in ("SHAREFERRY_JOB_DIR", "LANG", "TMPDIR"):
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(self.extra_env)
        env.update(pod_env)
        env.update(self.cluster.environ())
        volume_root = self._mount_volumes(spec, container, pod_dir / "volumes")
        if volume_root is not None:
            env["SHAREFERRY_VOLUME_ROOT"] = str(volume_root)
        command = [expand(str(part), env) for part in container.get("command") or []]
        args = [expand(str(part), env) for part in container.get("args") or []]
        argv = (command or list(self.entrypoint)) + args
        if argv and argv[0] == "shareferry":
            argv = [sys.executable, "-m", "shareferry", *argv[1:]]
        workdir = pod_dir / "cwd"
        workdir.mkdir(parents=True, exist_ok=True)
        return argv, env, workdir

    def _mount_volumes(
        self, spec: Mapping[str, Any], container: Mapping[str, Any], root: Path
    ) -> Path | None:
        claims = {
            volume["name"]: volume["persistentVolumeClaim"]
            for volume in spec.get("volumes") or []
            if "persistentVolumeClaim" in volume
        }
        mounted = False
        for mount in container.get("volumeMounts") or []:
            claim = claims.get(mount["name"])
            if claim is None:
                continue  # emptyDir, configMap, ...: nothing local to map
            local = self.volumes.get(claim["claimName"])
            if local is None:
                raise PodConfigError(
                    "FailedMount",
                    f'persistentvolumeclaim "{claim["claimName"]}" is not in the test kubelet\'s volumes',
                )
            mount_path = PurePosixPath(mount["mountPath"])
            try:
                relative = mount_path.relative_to(VOLUME_ROOT)
            except ValueError:
                raise PodConfigError(
                    "FailedMount",
                    f"mountPath {mount_path} is outside {VOLUME_ROOT}, which the test kubelet cannot map",
                ) from None
            target = local / mount["subPath"] if mount.get("subPath") else local
            link = root.joinpath(*relative.parts) if relative.parts else root
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(target, target_is_directory=True)
            mounted = True
        return root if mounted else None

    async def _execute(
        self,
        pod: Mapping[str, Any],
        record: PodRecord,
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
    ) -> None:
        record.argv, record.env, record.reason, record.message = argv, env, None, None
        grace = min(
            float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", self.kill_grace)),
            self.kill_grace,
        )
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                cwd=cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            record.phase, record.reason, record.message, record.exit_code = (
                "Failed",
                "StartError",
                str(exc),
                128,
            )
            await self._pod_status(record, {"phase": "Failed", "reason": "StartError", "message": str(exc)})
            return
        record.phase, record.started = "Running", time.monotonic()
        started_at = _now()
        await self._pod_status(
            record,
            {
                "phase": "Running",
                "startTime": started_at,
                "containerStatuses": [
                    {"name": "worker", "ready": True, "state": {"running": {"startedAt": started_at}}}
                ],
            },
        )
        readers = [
            asyncio.create_task(self._drain(process.stdout, record, "stdout")),
            asyncio.create_task(self._drain(process.stderr, record, "stderr")),
        ]
        waiter = asyncio.create_task(process.wait())
        try:
            while not waiter.done():
                await asyncio.wait({waiter}, timeout=self.poll_interval)
                if waiter.done():
                    break
                if self._pod_deleted(record.uid):
                    record.reason = "Deleted"
                    await self._terminate(process, grace)
        except asyncio.CancelledError:
            await asyncio.shield(self._terminate(process, grace))
            record.exit_code = self._exit_code(process.returncode)
            raise
        finally:
            await asyncio.gather(*readers, return_exceptions=True)
            record.finished = time.monotonic()
        record.exit_code = self._exit_code(process.returncode)
        succeeded = record.exit_code == 0 and record.reason != "Deleted"
        record.phase = "Succeeded" if succeeded else "Failed"
        record.reason = record.reason or ("Completed" if succeeded else "Error")
        finished_at = _now()
        await self._pod_status(
            record,
            {
                "phase": record.phase,
                "containerStatuses": [
                    {
                        "name": "worker",
                        "ready": False,
                        "state": {
                            "terminated": {
                                "exitCode": record.exit_code,
                                "reason": record.reason,
                                "startedAt": started_at,
                                "finishedAt": finished_at,
                                "message": record.stderr[-1000:],
                            }
                        },
                    }
                ],
            },
        )

    @staticmethod
    def _exit_code(returncode: int | None) -> int | None:
        if returncode is None:
            return None
        return 128 - returncode if returncode < 0 else returncode  # killed by signal N: 128 + N

    async def _drain(self, stream: asyncio.StreamReader | None, record: PodRecord, name: str) -> None:
        """Keep the last ``tail_chars`` characters of a stream on the record, as they come."""
        if stream is None:
            return
        while chunk := await stream.read(65536):
            text = getattr(record, name) + chunk.decode("utf-8", "replace")
            setattr(record, name, text[-self.tail_chars :])

    @staticmethod
    async def _terminate(process: asyncio.subprocess.Process, grace: float) -> None:
        """SIGTERM to the process group, SIGKILL after ``grace`` seconds."""
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
