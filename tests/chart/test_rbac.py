"""The chart's RBAC grants exactly what the operator and the worker need, in the right places.

The tables below are the contract: a rule the chart adds (a verb, a resource, a wildcard) fails
these tests until the table says why it is needed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from tests.chart.conftest import CONFIGURATIONS, NAMESPACE, Manifests, of_kind, one
from tests.support import helm

Grants = dict[tuple[str, str], set[str]]

#: (API group, resource) → verbs for the operator.
OPERATOR: Grants = {
    # kopf lists/watches and patches metadata (finalizers, its annotations); the operator reads
    # them; a SyncSchedule creates its CopyJobs and deletes those beyond its history limits.
    ("shareferry.dev", "copyjobs"): {"get", "list", "watch", "create", "patch", "delete"},
    ("shareferry.dev", "fileshares"): {"get", "list", "watch", "patch"},
    ("shareferry.dev", "syncschedules"): {"get", "list", "watch", "patch"},
    ("shareferry.dev", "copyjobs/status"): {"patch"},
    ("shareferry.dev", "fileshares/status"): {"patch"},
    ("shareferry.dev", "syncschedules/status"): {"patch"},
    # ownerReferences with blockOwnerDeletion (Job → CopyJob, CopyJob → SyncSchedule)
    ("shareferry.dev", "copyjobs/finalizers"): {"update"},
    ("shareferry.dev", "syncschedules/finalizers"): {"update"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "delete"},
    ("", "secrets"): {"get"},
    ("", "configmaps"): {"list", "delete"},
    ("", "events"): {"create"},
}

#: (API group, resource) → verbs for the worker, in its CopyJob's namespace only.
WORKER: Grants = {
    ("shareferry.dev", "copyjobs"): {"get"},
    ("shareferry.dev", "fileshares"): {"get"},
    ("shareferry.dev", "copyjobs/status"): {"patch"},
    ("", "configmaps"): {"create", "update"},
}


def grants(role: dict[str, Any]) -> Grants:
    """A Role's or ClusterRole's rules as (group, resource) → verbs, refusing what the chart
    must never use (wildcards, resourceNames, non-resource URLs, aggregation)."""
    assert "aggregationRule" not in role
    table: Grants = defaultdict(set)
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                table[(group, resource)] |= set(rule["verbs"])
    return dict(table)


def by_component(manifests: Manifests, kind: str, component: str) -> Manifests:
    return [
        document
        for document in of_kind(manifests, kind)
        if document["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]


def service_account(manifests: Manifests, component: str) -> set[tuple[str, str]]:
    return {
        (sa["metadata"]["namespace"], sa["metadata"]["name"])
        for sa in by_component(manifests, "ServiceAccount", component)
    }


def worker_namespaces(name: str) -> set[str]:
    return {
        "default": {NAMESPACE},
        "all-features": {"data-team", "backups"},
        "migration": {"migration"},
        "cluster-wide-workers": {"team-a", "team-b"},
    }[name]


def test_tables_compare_verb_for_verb() -> None:
    role = {"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}
    assert grants(role) != {("", "secrets"): {"get"}}
    with pytest.raises(AssertionError):
        grants({"rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]})


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_operator_grants_exactly_the_table(rendered: dict[str, Manifests], name: str) -> None:
    manifests = rendered[name]
    roles = by_component(manifests, "ClusterRole", "operator") + by_component(manifests, "Role", "operator")
    assert roles
    for role in roles:
        assert grants(role) == OPERATOR, role["metadata"]


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_worker_grants_exactly_the_table_and_only_in_namespaces(
    rendered: dict[str, Manifests], name: str
) -> None:
    manifests = rendered[name]
    assert by_component(manifests, "ClusterRole", "worker") == []
    assert by_component(manifests, "ClusterRoleBinding", "worker") == []
    roles = by_component(manifests, "Role", "worker")
    assert {role["metadata"]["namespace"] for role in roles} == worker_namespaces(name)
    for role in roles:
        assert grants(role) == WORKER, role["metadata"]


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_worker_account_role_and_binding_in_each_namespace(rendered: dict[str, Manifests], name: str) -> None:
    manifests = rendered[name]
    accounts = service_account(manifests, "worker")
    assert {namespace for namespace, _ in accounts} == worker_namespaces(name)
    (account,) = {account for _, account in accounts}
    (container,) = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["SHAREFERRY_WORKER_SERVICE_ACCOUNT"] == account
    roles = {
        (r["metadata"]["namespace"], r["metadata"]["name"]) for r in by_component(manifests, "Role", "worker")
    }
    for binding in by_component(manifests, "RoleBinding", "worker"):
        namespace = binding["metadata"]["namespace"]
        assert binding["roleRef"]["kind"] == "Role"
        assert (namespace, binding["roleRef"]["name"]) in roles
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
    assert len(by_component(manifests, "RoleBinding", "worker")) == len(roles)


def test_cluster_wide_operator_has_one_cluster_role_bound_to_its_account(
    rendered: dict[str, Manifests],
) -> None:
    manifests = rendered["default"]
    (role,) = by_component(manifests, "ClusterRole", "operator")
    (binding,) = by_component(manifests, "ClusterRoleBinding", "operator")
    assert by_component(manifests, "Role", "operator") == []
    (account,) = service_account(manifests, "operator")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account[1], "namespace": account[0]}]
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert account == (NAMESPACE, pod["serviceAccountName"])


@pytest.mark.parametrize("name", ["all-features", "migration"])
def test_namespaced_operator_has_a_role_per_watched_namespace_only(
    rendered: dict[str, Manifests], name: str
) -> None:
    manifests = rendered[name]
    assert of_kind(manifests, "ClusterRole") == []
    assert of_kind(manifests, "ClusterRoleBinding") == []
    roles = by_component(manifests, "Role", "operator")
    bindings = by_component(manifests, "RoleBinding", "operator")
    assert {role["metadata"]["namespace"] for role in roles} == worker_namespaces(name)
    (account,) = service_account(manifests, "operator")
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account[1], "namespace": account[0]}
        ]
    assert len(bindings) == len(roles)


def test_rbac_off_renders_no_roles_but_keeps_accounts() -> None:
    manifests = helm.render(set_values=["rbac.create=false"])
    kinds = {document["kind"] for document in manifests}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    assert len(of_kind(manifests, "ServiceAccount")) == 2
