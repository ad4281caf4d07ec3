"""Start and stop a real Kubernetes control plane as local processes on loopback.

etcd, kube-apiserver (TLS, ``--authorization-mode=Node,RBAC``, NodeRestriction admission,
ServiceAccount issuer and keys), kube-controller-manager (every default controller, each with
its own ServiceAccount credentials), kube-scheduler and the process kubelet
(``tests/cluster/kubelet``), all from the binaries ``build.py`` makes. Everything lives in one
state directory (default ``<checkout>/.cache/cluster``):

* ``admin.kubeconfig``: a ``system:masters`` identity for people and tests;
* ``node.kubeconfig``: the kubelet's ``system:node:<node>`` identity;
* ``pki/``, ``etcd/``, ``logs/<component>.log``, ``kubelet/`` (pods' files and logs);
* ``state.json``: ports and process ids, read by ``status`` and ``down``.

Ports are chosen free at start, so two control planes (a developer's and a test run's, in
different state directories) never collide. Processes run in their own sessions and outlive the
command that started them; ``down`` stops them (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.cluster import pki as pki_mod
from tests.cluster.build import ROOT, Toolset, ensure_built

NODE = "shareferry-node"
ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_STATE = ROOT / ".cache" / "cluster"
STOP_ORDER = ("kubelet", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")


@dataclass
class State:
    """What a running control plane is: its directory, ports and processes."""

    state_dir: str
    api_port: int = 0
    etcd_port: int = 0
    etcd_peer_port: int = 0
    controller_manager_port: int = 0
    scheduler_port: int = 0
    node: str = NODE
    pids: dict[str, int] = field(default_factory=dict)
    # Components die with the process that started them (tests), instead of outliving it
    # (`make cluster`): a killed test run leaves no control plane behind.
    tied: bool = False

    @property
    def root(self) -> Path:
        return Path(self.state_dir)

    @property
    def kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def node_kubeconfig(self) -> Path:
        return self.root / "node.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def pki(self) -> pki_mod.Pki:
        return pki_mod.Pki(self.root / "pki")

    def log(self, component: str) -> Path:
        return self.root / "logs" / f"{component}.log"

    def save(self) -> None:
        path = self.root / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, state_dir: Path) -> State | None:
        try:
            data = json.loads((state_dir / "state.json").read_text())
        except (OSError, ValueError):
            return None
        return cls(**data)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie of ours is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


def write_kubeconfig(path: Path, *, server: str, ca: Path, cert: Path, key: Path, user: str) -> None:
    """A kubeconfig with one cluster, one client-certificate user and one current context."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "shareferry-local", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "shareferry-local", "context": {"cluster": "shareferry-local", "user": user}}],
        "current-context": "shareferry-local",
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    path.chmod(0o600)


def _spawn(state: State, component: str, argv: list[str], *, env: dict[str, str] | None = None) -> None:
    log = state.log(component)
    log.parent.mkdir(parents=True, exist_ok=True)
    if state.tied:
        argv = ["setpriv", "--pdeathsig", "KILL", "--", *argv]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(ROOT),
            env=env,
        )
    state.pids[component] = process.pid
    state.save()


def _https_ok(url: str, state: State) -> bool:
    context = ssl.create_default_context(cafile=str(state.pki.ca_cert))
    context.load_cert_chain(str(state.pki.cert(pki_mod.ADMIN)), str(state.pki.key(pki_mod.ADMIN)))
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError, ssl.SSLError):
        return False


def _served_ok(url: str, state: State) -> bool:
    """A component's health endpoint, served with the loopback certificate our CA signed."""
    context = ssl.create_default_context(cafile=str(state.pki.ca_cert))
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError, ssl.SSLError):
        return False


def _api_json(state: State, path: str) -> dict[str, object] | None:
    context = ssl.create_default_context(cafile=str(state.pki.ca_cert))
    context.load_cert_chain(str(state.pki.cert(pki_mod.ADMIN)), str(state.pki.key(pki_mod.ADMIN)))
    try:
        with urllib.request.urlopen(state.server + path, context=context, timeout=5) as response:
            return dict(json.loads(response.read()))
    except (OSError, urllib.error.URLError, ssl.SSLError, ValueError):
        return None


def _wait(what: str, check: object, state: State, *, timeout: float, components: tuple[str, ...]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        for component in components:
            pid = state.pids.get(component)
            if pid is not None and not _alive(pid):
                tail = _tail(state.log(component))
                raise RuntimeError(f"{component} exited while waiting for {what}; its log ends:\n{tail}")
        time.sleep(0.25)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _node_ready(state: State) -> bool:
    node = _api_json(state, f"/api/v1/nodes/{state.node}")
    if not node:
        return False
    conditions = node.get("status", {}).get("conditions", [])  # type: ignore[union-attr]
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def running(state_dir: Path = DEFAULT_STATE) -> State | None:
    """The control plane in ``state_dir`` if all of its processes are alive and it answers."""
    state = State.load(state_dir)
    if state is None or not state.pids:
        return None
    if not all(_alive(pid) for pid in state.pids.values()):
        return None
    if not _https_ok(state.server + "/readyz", state):
        return None
    return state


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One `up` or `down` at a time per state directory (two `make cluster` at once start one)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def up(
    state_dir: Path = DEFAULT_STATE,
    *,
    tools: Toolset | None = None,
    kubelet: bool = True,
    timeout: float = 180.0,
    tied: bool = False,
) -> State:
    """Start the control plane in ``state_dir`` (reusing one already running there); on any
    failure or interruption, stop whatever it had started. ``tied``: its processes die with
    the calling process (for tests)."""
    if kubelet and os.geteuid() != 0:
        raise RuntimeError(
            "the process kubelet needs root (it runs each pod in mount and PID namespaces of its own); "
            "run as root, or start the control plane alone with --no-kubelet"
        )
    with _locked(state_dir):
        try:
            return _up(state_dir, tools=tools, kubelet=kubelet, timeout=timeout, tied=tied)
        except BaseException:
            _down(state_dir)
            raise


@contextlib.contextmanager
def for_tests(state_dir: Path, *, tools: Toolset) -> Iterator[State]:
    """A control plane with its kubelet for the length of a ``with`` block, tied to this process
    (a killed test run leaves nothing running) and stopped at the end."""
    state = up(state_dir, tools=tools, tied=True)  # a failed start stops what it started
    try:
        yield state
    finally:
        down(state_dir)


def _up(
    state_dir: Path = DEFAULT_STATE,
    *,
    tools: Toolset | None = None,
    kubelet: bool = True,
    timeout: float = 180.0,
    tied: bool = False,
) -> State:
    existing = running(state_dir)
    if existing is not None and (not kubelet or "kubelet" in existing.pids):
        return existing
    _down(state_dir)  # whatever half of an earlier one is left, or one started without a kubelet
    tools = tools or ensure_built()
    started = time.monotonic()
    state_dir.mkdir(parents=True, exist_ok=True)
    state = State(
        state_dir=str(state_dir),
        api_port=_free_port(),
        etcd_port=_free_port(),
        etcd_peer_port=_free_port(),
        controller_manager_port=_free_port(),
        scheduler_port=_free_port(),
        tied=tied,
    )
    state.save()
    keys = pki_mod.create(state.root / "pki", node=state.node)
    for who, name in (
        (pki_mod.ADMIN, "admin"),
        (pki_mod.CONTROLLER_MANAGER, "controller-manager"),
        (pki_mod.SCHEDULER, "scheduler"),
        (pki_mod.node_identity(state.node), "node"),
    ):
        write_kubeconfig(
            state.root / f"{name}.kubeconfig",
            server=state.server,
            ca=keys.ca_cert,
            cert=keys.cert(who),
            key=keys.key(who),
            user=who.user,
        )
    etcd_url = f"http://127.0.0.1:{state.etcd_port}"
    peer_url = f"http://127.0.0.1:{state.etcd_peer_port}"
    _spawn(
        state,
        "etcd",
        [
            str(tools.path("etcd")),
            "--name=local",
            f"--data-dir={state.root / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=local={peer_url}",
            "--unsafe-no-fsync",  # a throwaway store: speed over durability
            "--log-level=warn",
        ],
    )
    _wait("etcd", lambda: _http_ok(f"{etcd_url}/health"), state, timeout=60, components=("etcd",))
    _spawn(
        state,
        "kube-apiserver",
        [
            str(tools.path("kube-apiserver")),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={state.api_port}",
            f"--tls-cert-file={keys.serving_cert}",
            f"--tls-private-key-file={keys.serving_key}",
            f"--client-ca-file={keys.ca_cert}",
            f"--kubelet-client-certificate={keys.cert(pki_mod.APISERVER_KUBELET_CLIENT)}",
            f"--kubelet-client-key={keys.key(pki_mod.APISERVER_KUBELET_CLIENT)}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={keys.sa_pub}",
            f"--service-account-signing-key-file={keys.sa_key}",
            f"--api-audiences={ISSUER}",
            f"--service-cluster-ip-range={pki_mod.SERVICE_CIDR}",
            # The `kubernetes` Service's endpoint would be 127.0.0.1, which the reconciler refuses
            # (loopback); pods reach the server at KUBERNETES_SERVICE_HOST=127.0.0.1 instead.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            f"--cert-dir={state.root / 'pki' / 'apiserver-generated'}",
        ],
    )
    _wait(
        "kube-apiserver /readyz",
        lambda: _https_ok(state.server + "/readyz", state),
        state,
        timeout=timeout,
        components=("etcd", "kube-apiserver"),
    )
    common = [
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        f"--tls-cert-file={keys.serving_cert}",  # its SANs include 127.0.0.1
        f"--tls-private-key-file={keys.serving_key}",
    ]
    cm_kubeconfig = state.root / "controller-manager.kubeconfig"
    _spawn(
        state,
        "kube-controller-manager",
        [
            str(tools.path("kube-controller-manager")),
            *common,
            f"--secure-port={state.controller_manager_port}",
            f"--kubeconfig={cm_kubeconfig}",
            f"--authentication-kubeconfig={cm_kubeconfig}",
            f"--authorization-kubeconfig={cm_kubeconfig}",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={keys.sa_key}",
            f"--root-ca-file={keys.ca_cert}",
            f"--cluster-signing-cert-file={keys.ca_cert}",
            f"--cluster-signing-key-file={keys.ca_key}",
            f"--service-cluster-ip-range={pki_mod.SERVICE_CIDR}",
            "--controllers=*",
        ],
    )
    scheduler_kubeconfig = state.root / "scheduler.kubeconfig"
    _spawn(
        state,
        "kube-scheduler",
        [
            str(tools.path("kube-scheduler")),
            *common,
            f"--secure-port={state.scheduler_port}",
            f"--kubeconfig={scheduler_kubeconfig}",
            f"--authentication-kubeconfig={scheduler_kubeconfig}",
            f"--authorization-kubeconfig={scheduler_kubeconfig}",
        ],
    )
    components = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    for component, port in (
        ("kube-controller-manager", state.controller_manager_port),
        ("kube-scheduler", state.scheduler_port),
    ):
        _wait(
            f"{component} /healthz",
            lambda port=port: _served_ok(f"https://127.0.0.1:{port}/healthz", state),
            state,
            timeout=timeout,
            components=components,
        )
    # The ServiceAccount controller makes "default" in every namespace: pods need it.
    _wait(
        "the default ServiceAccount",
        lambda: _api_json(state, "/api/v1/namespaces/default/serviceaccounts/default") is not None,
        state,
        timeout=timeout,
        components=components,
    )
    if kubelet and (
        (Path(__file__).parent / "kubelet").exists() or (Path(__file__).parent / "kubelet.py").exists()
    ):
        _spawn(
            state,
            "kubelet",
            [
                sys.executable,
                "-m",
                "tests.cluster.kubelet",
                f"--kubeconfig={state.node_kubeconfig}",
                f"--provisioner-kubeconfig={state.kubeconfig}",
                f"--node-name={state.node}",
                f"--state-dir={state.root / 'kubelet'}",
                "--api-host=127.0.0.1",
                f"--api-port={state.api_port}",
                f"--ca-file={keys.ca_cert}",
            ],
        )
        _wait(
            "the node to be Ready",
            lambda: _node_ready(state),
            state,
            timeout=timeout,
            components=(*components, "kubelet"),
        )
    (state.root / "up-seconds").write_text(f"{time.monotonic() - started:.1f}\n")
    return state


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def down(state_dir: Path = DEFAULT_STATE, *, grace: float = 15.0) -> bool:
    """Stop every process of the control plane in ``state_dir``; True if any was running."""
    with _locked(state_dir):
        return _down(state_dir, grace=grace)


def _down(state_dir: Path, *, grace: float = 15.0) -> bool:
    state = State.load(state_dir)
    if state is None:
        return False
    any_running = False
    for component in STOP_ORDER:
        pid = state.pids.get(component)
        if pid is None or not _alive(pid):
            continue
        any_running = True
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
    state.pids = {}
    state.save()
    return any_running


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)
