"""A pod's status as the kubelet reports it through ``pods/status``.

:class:`ContainerRecord` holds what the kubelet knows of one container; :func:`pod_phase` is the
kubelet's phase rule and :class:`StatusBuilder` assembles the whole ``status`` (phase,
conditions, container statuses, IPs, start time).

The status is sent as a strategic merge patch: conditions merge by ``type`` (so the
scheduler's PodScheduled and a DisruptionTarget set by others stay) and container statuses by
``name``; each container state names its other two variants as null, so a patch that moves a
container from ``waiting`` to ``running`` removes ``waiting`` instead of keeping both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.cluster.kubelet.api import Json, now
from tests.cluster.kubelet.downward import POD_IP

_STATES = ("waiting", "running", "terminated")


def waiting(reason: str, message: str = "") -> Json:
    """A ``waiting`` container state."""
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def terminated(
    code: int, *, started_at: str, reason: str = "", message: str = "", container_id: str = ""
) -> Json:
    """A ``terminated`` container state; the reason is Completed for 0, else Error."""
    body: Json = {
        "exitCode": code,
        "reason": reason or ("Completed" if code == 0 else "Error"),
        "startedAt": started_at,
        "finishedAt": now(),
    }
    if message:
        body["message"] = message
    if container_id:
        body["containerID"] = container_id
    return {"terminated": body}


def _with_nulls(state: Json) -> Json:
    return {kind: state.get(kind) for kind in _STATES}


@dataclass
class ContainerRecord:
    """What the kubelet knows of one container."""

    name: str
    image: str
    state: Json = field(default_factory=lambda: waiting("ContainerCreating"))
    last_state: Json = field(default_factory=dict)
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    container_id: str = ""

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def exit_code(self) -> int | None:
        """The exit code of the current termination, else of the last one, else None."""
        for state in (self.state, self.last_state):
            if "terminated" in state:
                return int(state["terminated"]["exitCode"])
        return None

    @property
    def ever_ran(self) -> bool:
        return "waiting" not in self.state or "terminated" in self.last_state

    def wire(self) -> Json:
        """The record as a ``containerStatuses`` entry."""
        status: Json = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": _with_nulls(self.state),
            "lastState": _with_nulls(self.last_state),
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


def pod_phase(
    init: list[ContainerRecord], regular: list[ContainerRecord], *, restart_policy: str, init_failed: bool
) -> str:
    """The kubelet's phase rule (``getPhase``) for a pod that is not being terminated."""
    if init_failed:
        return "Failed"
    if any(record.exit_code != 0 for record in init):
        return "Pending"
    running = sum(1 for record in regular if record.running)
    never_ran = sum(1 for record in regular if not record.ever_ran)
    stopped = [record for record in regular if record.ever_ran and not record.running]
    succeeded = sum(1 for record in stopped if record.exit_code == 0)
    if never_ran:
        return "Pending"
    if running:
        return "Running"
    if restart_policy == "Always":
        return "Running"
    if succeeded == len(stopped):
        return "Succeeded"
    return "Failed" if restart_policy == "Never" else "Running"


def final_phase(regular: list[ContainerRecord]) -> str:
    """The phase of a pod whose containers were all stopped for good (deletion, shutdown)."""
    return "Succeeded" if regular and all(record.exit_code == 0 for record in regular) else "Failed"


@dataclass
class StatusBuilder:
    """Builds a pod's ``status``, keeping each condition's ``lastTransitionTime`` stable."""

    start_time: str
    _transitions: dict[str, tuple[str, str]] = field(default_factory=dict)

    def condition(self, kind: str, ok: bool, reason: str = "", message: str = "") -> Json:
        status = "True" if ok else "False"
        previous = self._transitions.get(kind)
        if previous is None or previous[0] != status:
            self._transitions[kind] = (status, now())
        body: Json = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": self._transitions[kind][1],
            "reason": reason or None,
            "message": message or None,
        }
        return body

    def build(
        self,
        pod: Json,
        init: list[ContainerRecord],
        regular: list[ContainerRecord],
        *,
        phase: str,
        sandbox_ready: bool,
        extra: Json | None = None,
        extra_conditions: list[Json] | None = None,
    ) -> Json:
        """The full status for ``pod``; ``extra`` adds top-level fields (reason, message)."""
        terminal = phase in ("Succeeded", "Failed")
        pending_init = [record.name for record in init if record.exit_code != 0]
        unready = [record.name for record in regular if not record.ready]
        conditions = [self.condition("PodReadyToStartContainers", sandbox_ready)]
        if pending_init and not terminal:
            message = f"containers with incomplete status: [{' '.join(pending_init)}]"
            conditions.append(self.condition("Initialized", False, "ContainersNotInitialized", message))
        else:
            conditions.append(self.condition("Initialized", True))
        if terminal:
            conditions.append(self.condition("ContainersReady", False, "PodCompleted"))
            conditions.append(self.condition("Ready", False, "PodCompleted"))
        elif unready:
            message = f"containers with unready status: [{' '.join(unready)}]"
            conditions.append(self.condition("ContainersReady", False, "ContainersNotReady", message))
            conditions.append(self.condition("Ready", False, "ContainersNotReady", message))
        else:
            conditions.append(self.condition("ContainersReady", True))
            conditions.append(self._gates(pod))
        conditions.extend(extra_conditions or [])
        status: Json = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": POD_IP,
            "hostIPs": [{"ip": POD_IP}],
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": self.start_time,
            "containerStatuses": [record.wire() for record in regular],
        }
        if init:
            status["initContainerStatuses"] = [record.wire() for record in init]
        status.update(extra or {})
        return status

    def _gates(self, pod: Json) -> Json:
        """Ready, once every readiness gate's condition is True as well."""
        current = {c.get("type"): c.get("status") for c in pod.get("status", {}).get("conditions") or []}
        missing = [
            str(gate.get("conditionType"))
            for gate in pod.get("spec", {}).get("readinessGates") or []
            if current.get(gate.get("conditionType")) != "True"
        ]
        if missing:
            message = f"corresponding condition of pod readiness gate {', '.join(repr(m) for m in missing)} does not exist."
            return self.condition("Ready", False, "ReadinessGatesNotReady", message)
        return self.condition("Ready", True)
