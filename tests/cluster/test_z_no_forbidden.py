"""Runs after the other cluster tests of the session (pytest takes modules in name order): no log
of the operator or of any worker says Forbidden, so the chart's RBAC covers everything they did."""

from __future__ import annotations

import re

from tests.cluster.release import Release


def test_no_operator_or_worker_log_says_forbidden(release: Release) -> None:
    assert release.log_files(), "no pod has run yet: nothing was checked"
    offenders: dict[str, list[str]] = {}
    for path in release.log_files():
        lines = [
            line
            for line in path.read_text(errors="replace").splitlines()
            if re.search("forbidden", line, re.I)
        ]
        if lines:
            offenders[path.parent.name] = lines[:5]
    assert offenders == {}
