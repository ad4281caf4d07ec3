"""The chart ships the repository's CRDs: charts/shareferry/crds/ holds identical copies
(``make chart-crds`` refreshes them)."""

from __future__ import annotations

from tests.support.helm import CHART
from tests.support.paths import repo_root


def test_chart_crds_are_the_repository_crds() -> None:
    source = {path.name: path.read_bytes() for path in (repo_root() / "crds").glob("*.yaml")}
    copies = {path.name: path.read_bytes() for path in (CHART / "crds").iterdir()}
    assert source, "no CRDs in crds/"
    assert sorted(copies) == sorted(source), "run `make chart-crds`"
    stale = [name for name in source if copies[name] != source[name]]
    assert stale == [], f"{', '.join(stale)} differ from crds/: run `make chart-crds`"
