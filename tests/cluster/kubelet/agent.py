"""The kubelet's main loop: register the node, watch the pods bound to it, run a worker each.

Pods come from a list and then a watch of ``/api/v1/pods?fieldSelector=spec.nodeName=NAME``
across all namespaces (the only pod list the Node authorizer grants a node). The watch runs in
a thread with the ``kubernetes`` package's ``Watch`` and hands events to the event loop; when it
breaks (410 Gone, a dropped connection) the kubelet lists again and treats pods it no longer
sees as removed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import kubernetes

from tests.cluster.kubelet.api import Api, Json, describe
from tests.cluster.kubelet.node import NodeAgent
from tests.cluster.kubelet.pod import PodWorker, Runtime

LOG = logging.getLogger("kubelet")
WATCH_SECONDS = 240
SHUTDOWN_GRACE_CAP = 10.0
_RELIST = "RELIST"


class Kubelet:
    """One node: its heartbeat and its pods."""

    def __init__(self, api: Api, node: NodeAgent, runtime: Runtime) -> None:
        self.api = api
        self.node = node
        self.runtime = runtime
        self.workers: dict[str, PodWorker] = {}
        self._events: asyncio.Queue[tuple[str, Json]] = asyncio.Queue()
        self._removing: set[asyncio.Task[None]] = set()
        self._stop_watch = threading.Event()

    @property
    def selector(self) -> str:
        return f"spec.nodeName={self.node.name}"

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then terminate every pod and return."""
        heartbeat = asyncio.create_task(self.node.heartbeat(), name="heartbeat")
        serving = asyncio.create_task(self._serve(), name="pods")
        await stop.wait()
        LOG.info("shutting down: stopping the pods")
        self._stop_watch.set()
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        await self.node.shutting_down()
        await asyncio.gather(*(worker.shutdown(SHUTDOWN_GRACE_CAP) for worker in self.workers.values()))
        await asyncio.gather(*self._removing, return_exceptions=True)
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        LOG.info("stopped")

    async def _serve(self) -> None:
        while True:
            try:
                version = await self._relist()
            except Exception as error:
                LOG.warning("listing pods failed: %s", describe(error))
                await asyncio.sleep(2.0)
                continue
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._watch, args=(loop, version), name="pod-watch", daemon=True).start()
            while True:
                kind, pod = await self._events.get()
                if kind == _RELIST:
                    break
                self._handle(kind, pod)

    async def _relist(self) -> str:
        listing = await self.api.call(self.api.core.list_pod_for_all_namespaces, field_selector=self.selector)
        seen = set()
        for pod in listing.get("items") or []:
            seen.add(str(pod["metadata"]["uid"]))
            self._handle("MODIFIED", pod)
        for uid in [uid for uid in self.workers if uid not in seen]:
            self._handle("DELETED", self.workers[uid].pod)
        return str(listing.get("metadata", {}).get("resourceVersion", ""))

    def _watch(self, loop: asyncio.AbstractEventLoop, version: str) -> None:
        """Thread: stream watch events into the loop until the watch breaks, then ask for a relist."""

        def post(kind: str, obj: Json) -> None:
            loop.call_soon_threadsafe(self._events.put_nowait, (kind, obj))

        while not self._stop_watch.is_set():
            watch = kubernetes.watch.Watch()
            try:
                stream: Any = watch.stream(
                    self.api.core.list_pod_for_all_namespaces,
                    field_selector=self.selector,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_SECONDS,
                    _request_timeout=WATCH_SECONDS + 30,
                    deserialize=False,
                )
                for event in stream:
                    obj = event.get("object") or {}
                    version = str(obj.get("metadata", {}).get("resourceVersion") or version)
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        post(str(event["type"]), obj)
                    if self._stop_watch.is_set():
                        watch.stop()
            except Exception as error:
                # An ERROR event (410 Gone above all) or a broken connection: start over.
                LOG.info("pod watch ended (%s): listing again", describe(error))
                post(_RELIST, {})
                return

    def _handle(self, kind: str, pod: Json) -> None:
        uid = str(pod.get("metadata", {}).get("uid", ""))
        worker = self.workers.get(uid)
        if kind == "DELETED":
            if worker is not None:
                del self.workers[uid]
                task = asyncio.create_task(worker.remove())
                self._removing.add(task)
                task.add_done_callback(self._removing.discard)
            return
        if worker is not None:
            worker.update(pod)
            return
        terminal = pod.get("status", {}).get("phase") in ("Succeeded", "Failed")
        if terminal and not pod["metadata"].get("deletionTimestamp"):
            return  # finished before this kubelet started: nothing to run
        worker = PodWorker(self.runtime, pod)
        self.workers[uid] = worker
        LOG.info("%s: new pod", worker.name)
        if not terminal:
            worker.start()
        worker.update(pod)
