"""The helm binary the tests use and a thin way to run it.

It is Helm 3 built from ``helm.sh/helm/v3`` at the version ``tests/cluster/helm/go.mod`` pins
(``make test`` builds it with the control plane; see tests/cluster/build.py).
:func:`run_helm` runs it with its cache, config and data directories in a temporary place, so the
tests never read or write the user's own helm setup.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.build import ensure_built, required_version
from tests.support.paths import repo_root

CHART = repo_root() / "charts" / "shareferry"
#: The Kubernetes version the chart is rendered for: the one the tests' control plane runs.
KUBE_VERSION = required_version("kube", "k8s.io/kubernetes").lstrip("v")


def helm_binary() -> Path:
    """The helm executable (built on first use, then taken from the cache)."""
    return ensure_built().path("helm")


def require_helm() -> Path:
    """The helm executable (kept for the callers that ask for it by this name)."""
    return helm_binary()


@cache
def _helm_home() -> Path:
    return Path(tempfile.mkdtemp(prefix="shareferry-helm-"))


@dataclass(frozen=True)
class HelmResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_helm(args: Sequence[str], *, timeout: float = 60) -> HelmResult:
    """Run ``helm <args>`` and return what it printed (a failure is returned, not raised)."""
    home = _helm_home()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(home / "no-kubeconfig"),
    }
    completed = subprocess.run(
        [str(require_helm()), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    return HelmResult(completed.returncode, completed.stdout, completed.stderr)


def value_args(*, values_files: Sequence[Path] = (), set_values: Sequence[str] = ()) -> list[str]:
    args: list[str] = []
    for path in values_files:
        args += ["--values", str(path)]
    for assignment in set_values:
        args += ["--set", assignment]
    return args


def template(
    *,
    release: str = "ferry",
    namespace: str = "shareferry-system",
    values_files: Sequence[Path] = (),
    set_values: Sequence[str] = (),
    chart: Path = CHART,
) -> HelmResult:
    """``helm template`` of the chart (CRDs not included: they are the crds/ folder's files)."""
    return run_helm(
        [
            "template",
            release,
            str(chart),
            "--namespace",
            namespace,
            "--kube-version",
            KUBE_VERSION,
            *value_args(values_files=values_files, set_values=set_values),
        ]
    )


def render(**kwargs: Any) -> list[dict[str, Any]]:
    """The objects ``helm template`` renders; fails the test with helm's words when it refuses."""
    result = template(**kwargs)
    assert result.returncode == 0, result.output
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def lint(
    *, values_files: Sequence[Path] = (), set_values: Sequence[str] = (), chart: Path = CHART
) -> HelmResult:
    """``helm lint --strict`` of the chart with these values."""
    return run_helm(
        ["lint", "--strict", str(chart), *value_args(values_files=values_files, set_values=set_values)]
    )
