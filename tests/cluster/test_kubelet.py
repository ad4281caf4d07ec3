"""The process kubelet on a real control plane: what a user of the cluster sees through the API.

Each test works in its own namespace (created and deleted with the admin kubeconfig) and checks
what a user would: the pod's phase and container statuses, the Job's conditions, the bytes in a
provisioned volume, the container's log file under the kubelet's state directory.

The control plane is the session fixture ``control_plane`` (``tests/cluster/fixtures.py``): its
own etcd, API server, controller manager and scheduler in a temporary directory, and this
kubelet, started by the control plane's starter as ``python -m tests.cluster.kubelet``.
"""

from __future__ import annotations

import base64
import datetime
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.cluster.controlplane import write_kubeconfig
from tests.cluster.kubelet.api import Json, call_sync
from tests.cluster.pki import Pki
from tests.support.paths import repo_root

IMAGE = "shareferry:local"
PYTHON = sys.executable


@dataclass(frozen=True)
class Plane:
    """What the tests need of the control plane."""

    kubeconfig: Path
    node_kubeconfig: Path
    state_dir: Path
    api_port: int

    @property
    def kubelet_dir(self) -> Path:
        return self.state_dir / "kubelet"


@pytest.fixture(scope="module")
def plane(control_plane: Any) -> Plane:
    return Plane(
        Path(control_plane.kubeconfig),
        Path(control_plane.node_kubeconfig),
        Path(control_plane.state_dir),
        int(control_plane.api_port),
    )


class Cluster:
    """The admin's view: typed API groups of the ``kubernetes`` package, answers as dicts."""

    def __init__(self, plane: Plane) -> None:
        self.plane = plane
        client = kubernetes.config.new_client_from_config(config_file=str(plane.kubeconfig))
        self.core = kubernetes.client.CoreV1Api(client)
        self.batch = kubernetes.client.BatchV1Api(client)
        self.rbac = kubernetes.client.RbacAuthorizationV1Api(client)

    def pod(self, namespace: str, name: str) -> Json | None:
        try:
            return call_sync(self.core.read_namespaced_pod, name, namespace)
        except kubernetes.client.exceptions.ApiException as error:
            if error.status == 404:
                return None
            raise

    def create_pod(self, namespace: str, body: Json) -> Json:
        return call_sync(self.core.create_namespaced_pod, namespace, body)

    def kubelet_log(self) -> str:
        """The kubelet's own log, as the starter keeps it (empty when there is none)."""
        path = self.plane.state_dir / "logs" / "kubelet.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log(self, pod: Json, container: str = "main", *, kubelet_dir: Path | None = None) -> str:
        """A container's log file, as the kubelet keeps it under its state directory."""
        meta = pod["metadata"]
        name = f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
        path = (kubelet_dir or self.plane.kubelet_dir) / "pods" / name / f"{container}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def wait_for(what: str, probe: Callable[[], Any], *, timeout: float = 30.0, every: float = 0.2) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def cluster(plane: Plane) -> Cluster:
    return Cluster(plane)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"kubelet-{secrets.token_hex(4)}"
    call_sync(cluster.core.create_namespace, {"metadata": {"name": name}})
    wait_for(
        "the default ServiceAccount",
        lambda: _exists(lambda: call_sync(cluster.core.read_namespaced_service_account, "default", name)),
    )
    yield name
    call_sync(cluster.core.delete_namespace, name, body={"gracePeriodSeconds": 0})


def _exists(read: Callable[[], Json]) -> bool:
    try:
        read()
    except kubernetes.client.exceptions.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def pod_body(name: str, command: list[str], *, restart: str = "Never", **spec: Any) -> Json:
    container: Json = {"name": "main", "image": IMAGE, "command": command}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 5,
            "containers": [container],
            **spec,
        },
    }


def phase_of(cluster: Cluster, namespace: str, name: str, *phases: str) -> Json | None:
    pod = cluster.pod(namespace, name)
    return pod if pod and pod.get("status", {}).get("phase") in phases else None


def terminal(cluster: Cluster, namespace: str, name: str, *, timeout: float = 30.0) -> Json:
    pod: Json = wait_for(
        f"pod {name} to finish",
        lambda: phase_of(cluster, namespace, name, "Succeeded", "Failed"),
        timeout=timeout,
    )
    return pod


def state_of(pod: Json, container: str = "main") -> Json:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status["name"] == container:
            return dict(status)
    return {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the tests -------------------------------------------------------------------------------


def test_a_bare_pod_runs_and_reports_its_exit_code(cluster: Cluster, namespace: str) -> None:
    cluster.create_pod(namespace, pod_body("fails", ["sh", "-c", "echo to the log; exit 7"]))
    cluster.create_pod(namespace, pod_body("works", ["sh", "-c", "exit 0"]))

    failed = terminal(cluster, namespace, "fails")
    succeeded = terminal(cluster, namespace, "works")

    assert failed["status"]["phase"] == "Failed"
    assert state_of(failed)["state"]["terminated"]["exitCode"] == 7
    assert state_of(failed)["state"]["terminated"]["reason"] == "Error"
    assert succeeded["status"]["phase"] == "Succeeded"
    assert state_of(succeeded)["state"]["terminated"] == state_of(succeeded)["state"]["terminated"] | {
        "exitCode": 0,
        "reason": "Completed",
    }
    assert failed["status"]["podIP"] == "127.0.0.1"
    conditions = {c["type"]: c for c in failed["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "PodCompleted"
    assert conditions["PodScheduled"]["status"] == "True"
    assert cluster.log(failed) == "to the log\n"


def test_a_job_whose_pod_exits_42_fails_at_once_through_its_pod_failure_policy(
    cluster: Cluster, namespace: str
) -> None:
    job: Json = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "bad-spec"},
        "spec": {
            "backoffLimit": 6,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]},
                    }
                ]
            },
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{"name": "main", "image": IMAGE, "command": ["sh", "-c", "exit 42"]}],
                }
            },
        },
    }
    started = time.monotonic()
    call_sync(cluster.batch.create_namespaced_job, namespace, job)

    def failed() -> Json | None:
        body = call_sync(cluster.batch.read_namespaced_job_status, "bad-spec", namespace)
        conditions = {c["type"]: c for c in body.get("status", {}).get("conditions") or []}
        return conditions.get("Failed") if conditions.get("Failed", {}).get("status") == "True" else None

    condition = wait_for("the Job to fail", failed, timeout=40)
    assert condition["reason"] == "PodFailurePolicy"
    assert "exit code 42" in condition["message"]
    assert time.monotonic() - started < 30
    pods = call_sync(cluster.core.list_namespaced_pod, namespace)["items"]
    assert len(pods) == 1  # no retry: the policy failed the Job on the first pod
    assert state_of(pods[0])["state"]["terminated"]["exitCode"] == 42


def test_a_secret_reaches_the_process_and_the_file_lands_in_the_provisioned_volume(
    cluster: Cluster, namespace: str
) -> None:
    value = f"s3cr3t-{secrets.token_hex(4)}"
    call_sync(
        cluster.core.create_namespaced_secret,
        namespace,
        {"metadata": {"name": "creds"}, "data": {"X": base64.b64encode(value.encode()).decode()}},
    )
    claim = {
        "metadata": {"name": "out"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
    }
    call_sync(cluster.core.create_namespaced_persistent_volume_claim, namespace, claim)
    body = pod_body(
        "writer",
        ["sh", "-c", "echo $X > /out/x"],
        container={
            "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "X"}}}],
            "volumeMounts": [{"name": "out", "mountPath": "/out"}],
        },
        volumes=[{"name": "out", "persistentVolumeClaim": {"claimName": "out"}}],
    )
    cluster.create_pod(namespace, body)

    pod = terminal(cluster, namespace, "writer")

    assert pod["status"]["phase"] == "Succeeded", cluster.log(pod)
    bound = call_sync(cluster.core.read_namespaced_persistent_volume_claim, "out", namespace)
    volume = call_sync(cluster.core.read_persistent_volume, bound["spec"]["volumeName"])
    directory = Path(volume["spec"]["hostPath"]["path"])
    assert directory.is_relative_to(cluster.plane.kubelet_dir / "volumes" / namespace)
    assert (directory / "x").read_text() == f"{value}\n"
    assert value not in cluster.kubelet_log()

    call_sync(cluster.core.delete_namespaced_pod, "writer", namespace, grace_period_seconds=0)
    call_sync(cluster.core.delete_namespaced_persistent_volume_claim, "out", namespace)

    wait_for(
        "the released volume to be reclaimed",
        lambda: (
            not directory.exists()
            and not _exists(
                lambda: call_sync(cluster.core.read_persistent_volume, volume["metadata"]["name"])
            )
        ),
    )


def test_a_missing_secret_holds_the_pod_in_create_container_config_error_until_it_exists(
    cluster: Cluster, namespace: str
) -> None:
    body = pod_body(
        "waits",
        ["sh", "-c", 'test "$X" = later'],
        container={"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "late", "key": "X"}}}]},
    )
    cluster.create_pod(namespace, body)

    def config_error() -> Json | None:
        pod = cluster.pod(namespace, "waits")
        waiting = state_of(pod or {}).get("state", {}).get("waiting") or {}
        return waiting if waiting.get("reason") == "CreateContainerConfigError" else None

    waiting = wait_for("CreateContainerConfigError", config_error)
    assert waiting["message"] == 'secret "late" not found'
    assert cluster.pod(namespace, "waits")["status"]["phase"] == "Pending"

    call_sync(
        cluster.core.create_namespaced_secret,
        namespace,
        {"metadata": {"name": "late"}, "stringData": {"X": "later"}},
    )

    assert terminal(cluster, namespace, "waits")["status"]["phase"] == "Succeeded"


LIST_PODS = """
import sys
from kubernetes import client, config
config.load_incluster_config()
try:
    pods = client.CoreV1Api().list_namespaced_pod(open(
        "/var/run/secrets/kubernetes.io/serviceaccount/namespace").read())
except client.exceptions.ApiException as error:
    print("status", error.status)
    sys.exit(3)
print("pods", len(pods.items))
"""


def test_the_in_cluster_token_lists_pods_only_with_a_role_that_allows_it(
    cluster: Cluster, namespace: str
) -> None:
    call_sync(cluster.core.create_namespaced_service_account, namespace, {"metadata": {"name": "reader"}})
    call_sync(
        cluster.rbac.create_namespaced_role,
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        },
    )
    call_sync(
        cluster.rbac.create_namespaced_role_binding,
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    cluster.create_pod(namespace, pod_body("allowed", [PYTHON, "-c", LIST_PODS], serviceAccountName="reader"))
    cluster.create_pod(namespace, pod_body("denied", [PYTHON, "-c", LIST_PODS]))

    allowed = terminal(cluster, namespace, "allowed", timeout=60)
    denied = terminal(cluster, namespace, "denied", timeout=60)

    assert allowed["status"]["phase"] == "Succeeded", cluster.log(allowed)
    assert cluster.log(allowed) == "pods 2\n"
    assert state_of(denied)["state"]["terminated"]["exitCode"] == 3, cluster.log(denied)
    assert cluster.log(denied) == "status 403\n"


def test_a_read_only_root_filesystem_refuses_writes_but_its_volume_takes_them(
    cluster: Cluster, namespace: str
) -> None:
    marker = f"/kubelet-ro-{namespace}"
    script = f"touch {marker} && exit 1; touch /mnt/shareferry/ok && cat /mnt/shareferry/ok"
    body = pod_body(
        "readonly",
        ["sh", "-c", script],
        container={
            "securityContext": {"readOnlyRootFilesystem": True},
            "volumeMounts": [{"name": "scratch", "mountPath": "/mnt/shareferry"}],
        },
        volumes=[{"name": "scratch", "emptyDir": {}}],
    )
    cluster.create_pod(namespace, body)

    pod = terminal(cluster, namespace, "readonly")

    assert pod["status"]["phase"] == "Succeeded", cluster.log(pod)
    assert "Read-only file system" in cluster.log(pod)
    assert not Path(marker).exists()


CHECK_TMP = """
import os, pathlib
token = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/token").read_text()
home = pathlib.Path(os.environ["HOME"])
(home / "h").write_text("h")
pathlib.Path("/tmp/t").write_text("t")
print("token", bool(token), "home", (home / "h").read_text(), "tmp", sorted(os.listdir("/tmp")))
"""


def test_a_volume_at_tmp_hides_nothing_the_container_needs(cluster: Cluster, namespace: str) -> None:
    """As the chart's operator pod: an emptyDir at /tmp and a read-only root filesystem. The
    token volume, the home directory and the software keep working even when the kubelet's
    state directory lies under the host's /tmp."""
    spec: Json = {
        "securityContext": {"readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    volumes = [{"name": "tmp", "emptyDir": {}}]
    cluster.create_pod(
        namespace, pod_body("python", [PYTHON, "-c", CHECK_TMP], container=spec, volumes=volumes)
    )
    entrypoint = pod_body("entrypoint", [], container=spec | {"args": ["--version"]}, volumes=volumes)
    del entrypoint["spec"]["containers"][0]["command"]
    cluster.create_pod(namespace, entrypoint)

    python = terminal(cluster, namespace, "python")
    version = terminal(cluster, namespace, "entrypoint")

    assert python["status"]["phase"] == "Succeeded", cluster.log(python)
    assert cluster.log(python).startswith("token True home h tmp [")
    assert "'t'" in cluster.log(python)
    assert version["status"]["phase"] == "Succeeded", cluster.log(version)
    assert cluster.log(version).startswith("shareferry ")


def _last_versions_before_deletion(
    cluster: Cluster, namespace: str, names: set[str], since: str, timeout: float
) -> dict[str, Json]:
    """Watch the namespace's pods from resource version ``since`` until every one of ``names``
    is deleted; the last version of each seen before its DELETED event."""
    watch = kubernetes.watch.Watch()
    last: dict[str, Json] = {}
    gone: set[str] = set()
    for event in watch.stream(
        cluster.core.list_namespaced_pod,
        namespace,
        resource_version=since,
        timeout_seconds=int(timeout),
        deserialize=False,
    ):
        name = event["object"]["metadata"]["name"]
        if event["type"] == "DELETED":
            gone.add(name)
            if gone >= names:
                watch.stop()
                break
        else:
            last[name] = event["object"]
    return {name: last[name] for name in gone if name in last}


def test_deleting_a_running_pod_sends_sigterm_and_the_pod_is_gone_within_its_grace(
    cluster: Cluster, namespace: str
) -> None:
    trap = 'trap "echo got TERM; exit 0" TERM; echo started; while :; do sleep 0.1; done'
    stubborn = 'trap "echo ignoring TERM" TERM; echo started; while :; do sleep 0.1; done'
    cluster.create_pod(namespace, pod_body("polite", ["sh", "-c", trap], terminationGracePeriodSeconds=20))
    cluster.create_pod(
        namespace, pod_body("stubborn", ["sh", "-c", stubborn], terminationGracePeriodSeconds=2)
    )
    for name in ("polite", "stubborn"):
        running = wait_for(f"{name} to run", lambda name=name: phase_of(cluster, namespace, name, "Running"))
        wait_for(f"{name} to start", lambda running=running: "started" in cluster.log(running))
    since = call_sync(cluster.core.list_namespaced_pod, namespace)["metadata"]["resourceVersion"]

    started = time.monotonic()
    call_sync(cluster.core.delete_namespaced_pod, "polite", namespace)
    call_sync(cluster.core.delete_namespaced_pod, "stubborn", namespace)
    outcome = _last_versions_before_deletion(cluster, namespace, {"polite", "stubborn"}, since, 30)
    elapsed = time.monotonic() - started

    assert cluster.pod(namespace, "polite") is None
    assert cluster.pod(namespace, "stubborn") is None
    assert elapsed < 15
    polite, stubborn = outcome["polite"], outcome["stubborn"]
    assert "got TERM" in cluster.log(polite)
    assert polite["status"]["phase"] == "Succeeded"
    assert state_of(polite)["state"]["terminated"]["exitCode"] == 0
    assert "ignoring TERM" in cluster.log(stubborn)
    assert stubborn["status"]["phase"] == "Failed"
    assert state_of(stubborn)["state"]["terminated"]["exitCode"] == 137


def _command_lines() -> dict[int, str]:
    lines = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            lines[int(entry.name)] = " ".join(arg for arg in argv if arg)
    return lines


def _sleeping(token: str) -> list[int]:
    """The ``sleep`` processes whose argument holds ``token``."""
    return [pid for pid, line in _command_lines().items() if line.startswith("sleep ") and token in line]


def _holding(token: str) -> list[int]:
    """Every process whose command line holds ``token`` (the pod's shells included)."""
    return [pid for pid, line in _command_lines().items() if token in line]


def test_a_pod_deleted_outright_is_killed_at_once_and_its_directories_removed(
    cluster: Cluster, namespace: str
) -> None:
    token = f"{secrets.randbelow(10**6)}.{secrets.randbelow(10**6)}"
    script = f'trap "" TERM; sleep {token} & wait'
    body = pod_body(
        "abrupt",
        ["sh", "-c", script],
        terminationGracePeriodSeconds=60,
        container={"volumeMounts": [{"name": "scratch", "mountPath": "/mnt/shareferry"}]},
        volumes=[{"name": "scratch", "emptyDir": {}}],
    )
    cluster.create_pod(namespace, body)
    pod = wait_for("abrupt to run", lambda: phase_of(cluster, namespace, "abrupt", "Running"))
    wait_for("its process", lambda: _sleeping(token))
    meta = pod["metadata"]
    pod_dir = cluster.plane.kubelet_dir / "pods" / f"{namespace}_abrupt_{meta['uid']}"
    assert (pod_dir / "volumes" / "scratch").is_dir()

    call_sync(cluster.core.delete_namespaced_pod, "abrupt", namespace, grace_period_seconds=0)

    started = time.monotonic()
    wait_for("its process to end", lambda: not _sleeping(token), timeout=10)
    assert time.monotonic() - started < 5  # not the 60 s grace period
    wait_for(
        "its directories to be removed",
        lambda: not (pod_dir / "volumes").exists() and not (pod_dir / "home").exists(),
        timeout=10,
    )
    assert (pod_dir / "main.log").exists()


def test_a_failing_liveness_probe_restarts_the_container_and_readiness_drives_ready(
    cluster: Cluster, namespace: str
) -> None:
    dead, served = free_port(), free_port()
    liveness = {"tcpSocket": {"port": dead}, "periodSeconds": 1, "failureThreshold": 2, "timeoutSeconds": 1}
    cluster.create_pod(
        namespace,
        pod_body(
            "unhealthy",
            ["sleep", "600"],
            restart="Always",
            terminationGracePeriodSeconds=1,
            container={"livenessProbe": liveness},
        ),
    )
    readiness = {"httpGet": {"port": "web", "path": "/"}, "periodSeconds": 1}
    cluster.create_pod(
        namespace,
        pod_body(
            "web",
            [PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(served)],
            restart="Always",
            container={"ports": [{"name": "web", "containerPort": served}], "readinessProbe": readiness},
        ),
    )

    def restarted() -> Json | None:
        status = state_of(cluster.pod(namespace, "unhealthy") or {})
        return status if status.get("restartCount", 0) >= 1 else None

    status = wait_for("a restart", restarted, timeout=30)
    assert status["lastState"]["terminated"]["exitCode"] == 143  # SIGTERM
    assert cluster.pod(namespace, "unhealthy")["status"]["phase"] == "Running"

    def ready() -> Json | None:
        pod = cluster.pod(namespace, "web") or {}
        conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions") or []}
        return pod if conditions.get("Ready") == "True" else None

    pod = wait_for("the web pod to be Ready", ready, timeout=30)
    assert state_of(pod)["ready"] is True
    assert state_of(pod)["restartCount"] == 0


def test_an_evicted_job_pod_is_ignored_through_its_pod_failure_policy(
    cluster: Cluster, namespace: str
) -> None:
    """Eviction marks the pod DisruptionTarget; the kubelet stops it and reports it Failed with
    that condition kept, so the Job controller's onPodConditions rule ignores the failure."""
    job: Json = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "evicted"},
        "spec": {
            "backoffLimit": 0,
            "podFailurePolicy": {
                "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
            },
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{"name": "main", "image": IMAGE, "command": ["sleep", "600"]}],
                }
            },
        },
    }
    call_sync(cluster.batch.create_namespaced_job, namespace, job)

    def running_pods() -> list[Json]:
        pods = call_sync(cluster.core.list_namespaced_pod, namespace)["items"]
        return [
            pod
            for pod in pods
            if pod["status"].get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")
        ]

    first = wait_for("the Job's pod to run", running_pods)[0]
    name = first["metadata"]["name"]
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    }
    call_sync(cluster.core.create_namespaced_pod_eviction, name, namespace, eviction)

    replacement = wait_for(
        "a replacement pod",
        lambda: [pod for pod in running_pods() if pod["metadata"]["name"] != name],
        timeout=40,
    )

    assert replacement
    status = call_sync(cluster.batch.read_namespaced_job_status, "evicted", namespace)["status"]
    assert not [c for c in status.get("conditions") or [] if c["type"] == "Failed"]
    assert not status.get("failed")


# -- the kubelet process itself: a second kubelet on a node of its own -------------------------


def _node_kubeconfig(plane: Plane, node: str, directory: Path) -> Path:
    """Credentials for ``system:node:<node>`` signed by the cluster's CA, as a kubeconfig."""
    pki = Pki(plane.state_dir / "pki")
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    key_file, cert_file = directory / "node.key", directory / "node.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kubeconfig = directory / "node.kubeconfig"
    write_kubeconfig(
        kubeconfig,
        server=f"https://127.0.0.1:{plane.api_port}",
        ca=pki.ca_cert,
        cert=cert_file,
        key=key_file,
        user=f"system:node:{node}",
    )
    return kubeconfig


@dataclass
class SecondKubelet:
    node: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture
def second_kubelet(cluster: Cluster, tmp_path: Path) -> Iterator[SecondKubelet]:
    """A kubelet of its own node (tainted NoSchedule, so that the scheduler places no other
    test's pod there); the tests bind their pods to it with ``nodeName``."""
    node = f"kubelet-test-{secrets.token_hex(3)}"
    kubeconfig = _node_kubeconfig(cluster.plane, node, tmp_path)
    log = tmp_path / "kubelet.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "tests.cluster.kubelet",
                f"--kubeconfig={kubeconfig}",
                f"--node-name={node}",
                f"--state-dir={tmp_path / 'state'}",
                f"--api-port={cluster.plane.api_port}",
                f"--ca-file={Pki(cluster.plane.state_dir / 'pki').ca_cert}",
                "--register-with-taints=shareferry.test/kubelet-test=true:NoSchedule",
            ],
            cwd=repo_root(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(f"node {node} to be Ready", lambda: _ready(cluster, node) == "True", timeout=60)
        yield SecondKubelet(node, process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pod in call_sync(
            cluster.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}"
        )["items"]:
            meta = pod["metadata"]
            call_sync(
                cluster.core.delete_namespaced_pod, meta["name"], meta["namespace"], grace_period_seconds=0
            )
        call_sync(cluster.core.delete_node, node)


def _ready(cluster: Cluster, node: str) -> str | None:
    try:
        body = call_sync(cluster.core.read_node, node)
    except kubernetes.client.exceptions.ApiException:
        return None
    return next(
        (c["status"] for c in body.get("status", {}).get("conditions") or [] if c["type"] == "Ready"), None
    )


def test_a_kubelet_stopped_by_sigterm_stops_its_pods_and_reports_them_as_node_shutdown(
    cluster: Cluster, namespace: str, second_kubelet: SecondKubelet
) -> None:
    token = f"{secrets.randbelow(10**6)}.{secrets.randbelow(10**6)}"
    script = f'trap "echo TERM; exit 0" TERM; sleep {token} & echo started; wait'
    cluster.create_pod(namespace, pod_body("pod", ["sh", "-c", script], nodeName=second_kubelet.node))
    pod = wait_for("the pod to run", lambda: phase_of(cluster, namespace, "pod", "Running"))
    wait_for(
        "the pod to start",
        lambda: "started" in cluster.log(pod, kubelet_dir=second_kubelet.log.parent / "state"),
    )

    second_kubelet.process.send_signal(signal.SIGTERM)

    assert second_kubelet.process.wait(20) == 0, second_kubelet.log.read_text()
    assert not _sleeping(token)
    pod = cluster.pod(namespace, "pod")
    assert pod is not None
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["reason"] == "Terminated"
    assert pod["status"]["message"] == "Pod was terminated in response to imminent node shutdown."
    conditions = {c["type"]: c for c in pod["status"]["conditions"]}
    assert conditions["DisruptionTarget"]["status"] == "True"
    assert conditions["DisruptionTarget"]["reason"] == "TerminationByKubelet"
    assert state_of(pod)["state"]["terminated"]["exitCode"] == 0
    assert "TERM" in cluster.log(pod, kubelet_dir=second_kubelet.log.parent / "state")
    assert _ready(cluster, second_kubelet.node) == "False"


def test_no_process_of_a_pod_outlives_a_killed_kubelet(
    cluster: Cluster, namespace: str, second_kubelet: SecondKubelet
) -> None:
    """kill -9 of the kubelet: even a process that left the pod's process group dies."""
    token = f"{secrets.randbelow(10**6)}.{secrets.randbelow(10**6)}"
    script = f"sleep 1{token} & setsid sleep 2{token} & sleep 3{token}"
    cluster.create_pod(namespace, pod_body("pod", ["sh", "-c", script], nodeName=second_kubelet.node))
    wait_for("the pod to run", lambda: phase_of(cluster, namespace, "pod", "Running"))
    wait_for("its three processes", lambda: len(_sleeping(token)) == 3)

    second_kubelet.process.kill()
    second_kubelet.process.wait()

    wait_for("every process of the pod to end", lambda: not _holding(token), timeout=5)
