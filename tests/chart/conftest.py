"""Rendered manifests of the chart, once per session, for the configurations the tests check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import helm
from tests.support.paths import repo_root

VALUES = Path(__file__).parent / "values"
ALL_FEATURES = VALUES / "all-features.yaml"
MIGRATION = repo_root() / "examples" / "helm" / "migration-values.yaml"
RELEASE = "ferry"
NAMESPACE = "shareferry-system"

Manifests = list[dict[str, Any]]

#: Each configuration the chart is rendered with: its values files and --set assignments.
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "all-features": {"values_files": [ALL_FEATURES]},
    "migration": {"values_files": [MIGRATION]},
    "cluster-wide-workers": {"set_values": ["workerNamespaces={team-a,team-b}"]},
}


@pytest.fixture(scope="session")
def rendered() -> dict[str, Manifests]:
    """The objects of every configuration, by configuration name."""
    return {
        name: helm.render(release=RELEASE, namespace=NAMESPACE, **config)
        for name, config in CONFIGURATIONS.items()
    }


def of_kind(manifests: Manifests, kind: str) -> Manifests:
    return [document for document in manifests if document["kind"] == kind]


def one(manifests: Manifests, kind: str) -> dict[str, Any]:
    found = of_kind(manifests, kind)
    assert len(found) == 1, f"{len(found)} objects of kind {kind}"
    return found[0]
