"""Ask the real API server whether a manifest is valid and what it stores for it.

``install_crds`` creates ShareFerry's CRDs (``crds/*.yaml``, server-side apply) and waits until
they are Established; ``dry_run`` sends one manifest, ``dry_run_all`` several in one ``kubectl``
call, through ``kubectl apply --dry-run=server -o json``: the server prunes, defaults and
validates (OpenAPI schema, CEL rules, strict field validation as ``kubectl apply`` asks for it)
and stores nothing. Each answer is a :class:`DryRun`: kubectl's exit code, its stderr (the
server's own error text) and the object as the server would store it, defaults filled in.

The session fixture ``crds_installed`` (tests/cluster/fixtures.py) installs the CRDs once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from tests.cluster.kubectl import Kubectl
from tests.support.paths import repo_root

CRD_FILES = sorted((repo_root() / "crds").glob("*.yaml"))
#: Where a manifest without a namespace of its own is tried.
NAMESPACE = "crd-checks"


class DryRun(NamedTuple):
    """kubectl's answer to one server-side dry-run: its exit code, its stderr (the server's
    error text) and the object the server returned (None when it refused)."""

    code: int
    stderr: str
    returned: dict[str, Any] | None

    def stored(self) -> dict[str, Any]:
        """The object as the server would store it; fails naming the server's error."""
        assert self.code == 0 and self.returned is not None, f"the server refused it:\n{self.stderr}"
        return self.returned


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]


def install_crds(kube: Kubectl) -> Kubectl:
    """Create (or update) ShareFerry's CRDs, wait until the server serves them, and make the
    namespace manifests are tried in."""
    for path in CRD_FILES:
        kube.run("apply", "--server-side", "--force-conflicts", "-f", str(path))
    names = [f"crd/{load_documents(path)[0]['metadata']['name']}" for path in CRD_FILES]
    kube.run("wait", "--for=condition=Established", *names, "--timeout=60s")
    ensure_namespaces(kube, [NAMESPACE])
    return kube


def ensure_namespaces(kube: Kubectl, names: Iterable[str]) -> None:
    """Create the namespaces of ``names`` that do not exist yet (in one call)."""
    wanted = sorted(set(names))
    existing = set(kube.run("get", "namespaces", "-o", "name").stdout.split())
    missing = [name for name in wanted if f"namespace/{name}" not in existing]
    if missing:
        namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in missing]
        kube.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": namespaces}))


def dry_run(kube: Kubectl, manifest: Mapping[str, Any] | str) -> DryRun:
    """Server-side dry-run of ``manifest`` (a dict, or YAML/JSON text), in NAMESPACE unless it
    names its own namespace (which must exist)."""
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    namespace = [] if _names_a_namespace(manifest) else ["-n", NAMESPACE]
    result = kube.run(
        "apply", "--dry-run=server", *namespace, "-o", "json", "-f", "-", stdin=text, check=False
    )
    returned = json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else None
    return DryRun(result.returncode, result.stderr, returned)


def dry_run_all(kube: Kubectl, manifests: Sequence[Mapping[str, Any]]) -> list[DryRun]:
    """Server-side dry-run of every manifest, in one kubectl call when the server takes them all;
    when it refuses any, each is tried alone so that every answer names its own error. The
    namespaces the manifests name are created first."""
    if not manifests:
        return []
    ensure_namespaces(kube, [m["metadata"]["namespace"] for m in manifests if _names_a_namespace(m)])
    batch = [dict(m, metadata={"namespace": NAMESPACE, **m["metadata"]}) for m in manifests]
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": batch})
    result = kube.run("apply", "--dry-run=server", "-o", "json", "-f", "-", stdin=listed, check=False)
    if result.returncode != 0:
        return [dry_run(kube, manifest) for manifest in batch]
    answer = json.loads(result.stdout)
    returned: list[dict[str, Any]] = answer["items"] if answer.get("kind") == "List" else [answer]
    assert [_identity(r) for r in returned] == [_identity(m) for m in batch], "kubectl changed the order"
    return [DryRun(0, result.stderr, item) for item in returned]


def _names_a_namespace(manifest: Mapping[str, Any] | str) -> bool:
    if isinstance(manifest, str):
        return any(
            bool((d.get("metadata") or {}).get("namespace")) for d in yaml.safe_load_all(manifest) if d
        )
    return bool((manifest.get("metadata") or {}).get("namespace"))


def _identity(document: Mapping[str, Any]) -> tuple[str, str]:
    return (document.get("kind", ""), (document.get("metadata") or {}).get("name", ""))
