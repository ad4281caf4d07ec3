"""Drive the local control plane the way a user does: kubectl and helm as processes, with the
admin kubeconfig; plus a poll helper for the asynchronous parts (controllers, the kubelet)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.cluster.build import Toolset
from tests.cluster.controlplane import State

T = TypeVar("T")


class Kubectl:
    """``kubectl`` and ``helm`` bound to one control plane's admin identity."""

    def __init__(self, state: State, tools: Toolset) -> None:
        self.state = state
        self.tools = tools
        self.env = {
            **os.environ,
            "KUBECONFIG": str(state.kubeconfig),
            "HELM_CACHE_HOME": str(state.root / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(state.root / "helm" / "config"),
            "HELM_DATA_HOME": str(state.root / "helm" / "data"),
        }

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        result = subprocess.run(
            [str(self.tools.path("kubectl")), *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def apply(self, manifest: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("apply", "-f", "-", *extra, stdin=manifest)

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        args = ["get", kind, name, "-o", "json", "--ignore-not-found"]
        if namespace:
            args += ["-n", namespace]
        out = self.run(*args).stdout
        return json.loads(out) if out.strip() else None

    def helm(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.tools.path("helm")), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result


def wait_for(
    check: Callable[[], T | None], *, timeout: float = 120, interval: float = 0.5, what: str = ""
) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check} (last: {last!r})")
