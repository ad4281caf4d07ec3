"""ShareFerry as Helm installed it on the local control plane, and what a test does with it the
way a user would: ``kubectl apply`` of Secrets, FileShares, CopyJobs and PVCs, ``kubectl get`` of
their status, the pods' logs as the process kubelet keeps them."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.storage.fileshare import ShareServiceClient

from shareferry.emulator import RunningEmulator
from tests.cluster.kubectl import Kubectl, wait_for
from tests.support.emulator_admin import service_client

NAMESPACE = "ferry"
SECRET = "emulator-credentials"
FINISHED = ("Succeeded", "CompletedWithErrors", "Failed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for entry in body.get("status", {}).get("conditions", []):
        if entry.get("type") == kind:
            return dict(entry)
    return {}


@dataclass
class Release:
    kube: Kubectl
    emulator: RunningEmulator
    metrics_port: int
    health_port: int

    # -- storage ----------------------------------------------------------------------------

    @property
    def service(self) -> ShareServiceClient:
        return service_client(self.emulator)

    # -- objects ----------------------------------------------------------------------------

    def apply(self, *documents: dict[str, Any]) -> None:
        self.kube.apply("\n---\n".join(json.dumps(document) for document in documents))

    def fileshare(self, name: str, share_name: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": "shareferry.dev/v1alpha1",
            "kind": "FileShare",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "account": {"endpoint": self.emulator.account_url()},
                "credentials": {"secretName": SECRET},
                "shareName": share_name,
                **spec,
            },
        }

    def share_url(self, share: str) -> dict[str, Any]:
        """A CopyJob side naming a share of the emulator by URL, with the emulator's Secret."""
        return {
            "url": f"{self.emulator.account_url()}/{share}",
            "kind": "file",
            "credentials": {"secretName": SECRET},
        }

    @staticmethod
    def copyjob(name: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": "shareferry.dev/v1alpha1",
            "kind": "CopyJob",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }

    def get(self, kind: str, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        return self.kube.get(kind, name, namespace)

    def wait_ready_share(self, name: str, timeout: float = 60) -> dict[str, Any]:
        return wait_for(
            lambda: (
                (body := self.get("fileshare", name))
                and condition(body, "Ready").get("status") == "True"
                and body
            ),
            timeout=timeout,
            what=f"FileShare {name} Ready",
        )

    def wait_finished(self, name: str, timeout: float = 180) -> dict[str, Any]:
        return wait_for(
            lambda: (
                (body := self.get("copyjob", name))
                and body.get("status", {}).get("phase") in FINISHED
                and body
            ),
            timeout=timeout,
            what=f"CopyJob {name} finished",
        )

    def volume(self, claim: str, size: str = "1Gi") -> Path:
        """A PersistentVolumeClaim, bound by the real PV controller to the local provisioner's
        volume: the directory on this machine that pods see at their mount path."""
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": NAMESPACE},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
            }
        )
        pvc = wait_for(
            lambda: (
                (body := self.get("pvc", claim)) and body.get("status", {}).get("phase") == "Bound" and body
            ),
            timeout=60,
            what=f"PVC {claim} bound",
        )
        volume = self.kube.get("pv", pvc["spec"]["volumeName"])
        assert volume is not None
        spec = volume["spec"]
        return Path((spec.get("hostPath") or spec.get("local"))["path"])

    def events(self, name: str) -> list[dict[str, Any]]:
        listed = self.kube.json(
            "get", "events", "-n", NAMESPACE, "--field-selector", f"involvedObject.name={name}"
        )
        return list(listed["items"])

    # -- pods and their logs ----------------------------------------------------------------

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return list(self.kube.json("get", "pods", "-n", namespace, "-l", selector)["items"])

    def log_files(self) -> list[Path]:
        """Every container log the process kubelet has written so far."""
        return sorted((self.kube.state.root / "kubelet" / "pods").glob("*/*.log"))

    def pod_log(self, pod: dict[str, Any], container: str | None = None) -> str:
        meta = pod["metadata"]
        folder = (
            self.kube.state.root / "kubelet" / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
        )
        name = container or pod["spec"]["containers"][0]["name"]
        path = folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""
