"""Build the local control plane's binaries from the Go modules pinned beside this file, once.

Three modules, kept apart so that their dependency graphs never have to agree:

* ``kube/``: ``k8s.io/kubernetes`` (kube-apiserver, kube-controller-manager, kube-scheduler,
  kubectl), its staging modules sent to their published releases by ``replace`` lines;
* ``etcd/``: ``go.etcd.io/etcd/server/v3``;
* ``helm/``: ``helm.sh/helm/v3``.

The binaries go to ``$SHAREFERRY_CACHE/cluster-<hash>/bin`` (default ``~/.cache/shareferry``),
where ``<hash>`` covers the three go.mod and go.sum files and the Go version, so a changed pin
builds afresh and an unchanged one is reused by every checkout on the machine. The cache is
never required: a missing binary is built. A lock file keeps two builders (a test run and
``make cluster``) from building the same thing at once; a build lands in a temporary directory
and is renamed into place only when complete, so a killed build leaves nothing half-made.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# module directory -> the packages it builds (binary name = last path element)
MODULES: dict[str, tuple[str, ...]] = {
    "kube": (
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-scheduler",
        "k8s.io/kubernetes/cmd/kubectl",
    ),
    "etcd": ("go.etcd.io/etcd/server/v3",),
    "helm": ("helm.sh/helm/v3/cmd/helm",),
}
# `go build` names a binary after the last element of its package path, skipping a major-version
# suffix; the etcd server's main package is its module root, so its binary comes out as "server".
RENAMES = {"server": "etcd"}
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "helm")


def required_version(module: str, path: str) -> str:
    """The version ``tests/cluster/<module>/go.mod`` requires of ``path``."""
    for line in (HERE / module / "go.mod").read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and path in words and words[words.index(path) + 1].startswith("v"):
            return words[words.index(path) + 1]
    raise SystemExit(f"cluster: tests/cluster/{module}/go.mod does not require {path}")


def stamps(module: str) -> list[str]:
    """Version stamps the projects' own release builds put in with -X (unstamped, kubectl and
    helm cannot parse the server's version, and helm cannot check a chart's kubeVersion)."""
    if module == "kube":
        version = required_version("kube", "k8s.io/kubernetes")
        major, minor = version.lstrip("v").split(".")[:2]
        values = {
            "gitVersion": version,
            "gitMajor": major,
            "gitMinor": minor,
            "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z",
        }
        return [
            f"-X {package}.{name}={value}"
            for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
            for name, value in values.items()
        ]
    if module == "helm":
        return [f"-X helm.sh/helm/v3/internal/version.version={required_version('helm', 'helm.sh/helm/v3')}"]
    if module == "etcd":
        return []
    raise ValueError(module)


def cache_root() -> Path:
    configured = os.environ.get("SHAREFERRY_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "shareferry"


def go_version() -> str:
    try:
        out = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"cluster: Go is needed to build the control plane ({exc})") from exc
    return out.stdout.strip()


def pin_hash() -> str:
    """A short hash of every pin (go.mod, go.sum) and the Go version."""
    digest = hashlib.sha256()
    for module in sorted(MODULES):
        for name in ("go.mod", "go.sum"):
            digest.update(f"{module}/{name}\0".encode())
            digest.update((HERE / module / name).read_bytes())
    digest.update(go_version().encode())
    for module in sorted(MODULES):
        digest.update(" ".join(stamps(module)).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Toolset:
    """Where the built binaries are."""

    bin_dir: Path

    def path(self, name: str) -> Path:
        return self.bin_dir / name

    def complete(self) -> bool:
        return all(self.path(name).is_file() for name in BINARIES)


def toolset() -> Toolset:
    return Toolset(cache_root() / f"cluster-{pin_hash()}" / "bin")


def _say(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def _go_build(module: str, packages: tuple[str, ...], out: Path) -> None:
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "")
    env["GOFLAGS"] = (env["GOFLAGS"] + " -mod=readonly -buildvcs=false").strip()
    ldflags = " ".join(["-s", "-w", *stamps(module)])
    command = ["go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(out) + "/", *packages]
    started = time.monotonic()
    _say(f"building {module} ({', '.join(p.rsplit('/', 1)[-1] for p in packages)})")
    result = subprocess.run(command, cwd=HERE / module, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(
            f"cluster: `{' '.join(command)}` in tests/cluster/{module} failed:\n{result.stderr[-4000:]}"
        )
    _say(f"built {module} in {time.monotonic() - started:.0f} s")


def ensure_built() -> Toolset:
    """Build whatever is missing (under a lock) and return the toolset. Each module is built
    into a temporary directory and its binaries renamed into place one by one, so the cache
    only ever holds whole binaries and an interrupted build resumes with the missing ones."""
    tools = toolset()
    if tools.complete():
        return tools
    home = tools.bin_dir.parent
    tools.bin_dir.mkdir(parents=True, exist_ok=True)
    with open(home / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for module, packages in MODULES.items():
            wanted = tuple(p for p in packages if not tools.path(_binary(p)).is_file())
            if not wanted:
                continue
            staging = home / f"build-{module}.partial"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            _go_build(module, wanted, staging)
            for package in wanted:
                built = staging / _go_name(package)
                built.rename(tools.path(_binary(package)))
            shutil.rmtree(staging, ignore_errors=True)
    return tools


def _go_name(package: str) -> str:
    """The file name `go build -o DIR/` gives a main package's binary."""
    parts = package.split("/")
    if len(parts) > 1 and parts[-1][:1] == "v" and parts[-1][1:].isdigit():
        return parts[-2]
    return parts[-1]


def _binary(package: str) -> str:
    return RENAMES.get(_go_name(package), _go_name(package))


def link_user_tools(tools: Toolset) -> Path:
    """Put kubectl and helm into the checkout's ``.cache/bin`` (symlinks to the cache)."""
    bin_dir = ROOT / ".cache" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("kubectl", "helm"):
        link = bin_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(tools.path(name))
    return bin_dir


if __name__ == "__main__":
    built = ensure_built()
    print(built.bin_dir)
