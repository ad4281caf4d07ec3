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


def test_no_log_and_no_stored_pod_spec_holds_the_account_key(release: Release) -> None:
    """Credentials reach the workers from Secrets at run time: never in a log line, never in a
    pod's command, arguments or environment values as the API server stores them."""
    key = release.emulator.account().key
    assert release.log_files()
    assert [path.parent.name for path in release.log_files() if key in path.read_text(errors="replace")] == []
    pods = release.kube.json("get", "pods", "-A")["items"]
    assert pods
    for pod in pods:
        for container in pod["spec"]["containers"]:
            visible = [*container.get("command", []), *container.get("args", [])]
            visible += [str(env.get("value", "")) for env in container.get("env", [])]
            assert key not in " ".join(visible), pod["metadata"]["name"]
