"""The migration values file, installed as the README and the file itself tell a user to, on a
control plane of its own (its operator watches only "migration"; the session's release watches
every namespace, and two operators must never serve one namespace). The two storage accounts are
two Files emulators; only the endpoints in the values are changed to point at them."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    generate_account_sas,
)

from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.cluster import build, controlplane
from tests.cluster.kubectl import Kubectl, wait_for
from tests.cluster.release import FINISHED, condition, free_port
from tests.support.emulator_admin import service_client
from tests.support.paths import repo_root
from tests.support.trees import read_share, write_share

ROOT = repo_root()
VALUES = ROOT / "examples" / "helm" / "migration-values.yaml"
SHARES = ("finance", "payroll", "engineering")
TREES = {share: {f"{share}/{i:02}.dat": os.urandom(300 + i) for i in range(8)} for share in SHARES}


def pointed_at(values: dict[str, Any], old: RunningEmulator, new: RunningEmulator) -> dict[str, Any]:
    """The values with the two accounts' endpoints replaced by the emulators', nothing else."""
    for share in values["fileShares"]:
        share["spec"]["account"] = {"endpoint": new.account_url()}
    for job in values["copyJobs"]:
        source = job["spec"]["source"]
        share = source["url"].rsplit("/", 1)[1]
        source["url"] = f"{old.account_url()}/{share}"
        source["kind"] = "file"  # a path-style (emulator) URL does not say Files or Blob
    for schedule in values["syncSchedules"]:
        source = schedule["spec"]["jobTemplate"]["spec"]["source"]
        share = source["url"].rsplit("/", 1)[1]
        source["url"] = f"{old.account_url()}/{share}"
        source["kind"] = "file"
    return values


@pytest.fixture(scope="module")
def migration(tmp_path_factory: pytest.TempPathFactory, cluster_tools: build.Toolset) -> Iterator[tuple[Kubectl, RunningEmulator, RunningEmulator]]:  # fmt: skip
    root = tmp_path_factory.mktemp("migration-cluster")
    with (
        RunningEmulator(EmulatorConfig()) as old,
        RunningEmulator(EmulatorConfig()) as new,
        controlplane.for_tests(root, tools=cluster_tools) as state,
    ):
        yield Kubectl(state, cluster_tools), old, new


def test_the_migration_values_install_and_run_to_completion(migration: tuple[Kubectl, RunningEmulator, RunningEmulator], tmp_path: Path) -> None:  # fmt: skip
    kube, old, new = migration
    for share, tree in TREES.items():
        write_share(service_client(old).create_share(share), tree)

    # 1. Credentials, as the file's comments say: a read-only SAS for the old account, the
    #    account key for the new one.
    kube.run("create", "namespace", "migration")
    sas = generate_account_sas(
        old.account().name,
        old.account().key,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    kube.run("-n", "migration", "create", "secret", "generic", "contosoold-readonly", f"--from-literal=AZURE_STORAGE_SAS_TOKEN={sas}")  # fmt: skip
    kube.run(
        "-n", "migration", "create", "secret", "generic", "contosonew-credentials",
        f"--from-literal=AZURE_STORAGE_ACCOUNT_NAME={new.account().name}",
        f"--from-literal=AZURE_STORAGE_ACCOUNT_KEY={new.account().key}",
    )  # fmt: skip

    # 2. Install.
    values = pointed_at(yaml.safe_load(VALUES.read_text()), old, new)
    values["image"] = {"repository": "shareferry", "tag": "local", "pullPolicy": "Never"}
    values.setdefault("operator", {})["livenessProbe"] = {"port": free_port()}
    values.setdefault("metrics", {})["port"] = free_port()
    path = tmp_path / "values.yaml"
    path.write_text(json.dumps(values))
    kube.helm(
        "install", "migration", str(ROOT / "charts" / "shareferry"),
        "-n", "shareferry-system", "--create-namespace", "-f", str(path), "--wait", "--timeout", "180s",
    )  # fmt: skip

    # Everything Ready or Succeeded.
    for share in values["fileShares"]:
        wait_for(
            lambda name=share["name"]: condition(kube.get("fileshare", name, "migration") or {}, "Ready").get("status") == "True",
            timeout=90,
            what=f"FileShare {share['name']} Ready",
        )  # fmt: skip
    for job in values["copyJobs"]:
        body = wait_for(
            lambda name=job["name"]: (b := kube.get("copyjob", name, "migration")) and b.get("status", {}).get("phase") in FINISHED and b,
            timeout=240,
            what=f"CopyJob {job['name']} finished",
        )  # fmt: skip
        assert body["status"]["phase"] == "Succeeded", body["status"]
    for share, tree in TREES.items():
        assert read_share(service_client(new).get_share_client(share)).files == tree
        quota = next(s["spec"]["quotaGiB"] for s in values["fileShares"] if s["spec"]["shareName"] == share)
        assert service_client(new).get_share_client(share).get_share_properties().quota == quota
    for schedule in values["syncSchedules"]:
        body = wait_for(
            lambda name=schedule["name"]: (b := kube.get("syncschedule", name, "migration")) and condition(b, "Ready") and b,
            timeout=60,
            what=f"SyncSchedule {schedule['name']} reconciled",
        )  # fmt: skip
        assert body["spec"]["suspend"] is True
    # No operator or worker of this release met an RBAC refusal.
    logs = sorted((kube.state.root / "kubelet" / "pods").glob("*/*.log"))
    assert logs
    assert [p.name for p in logs if "forbidden" in p.read_text(errors="replace").lower()] == []
    # Nor did any log line print the SAS signature or the new account's key.
    signature = dict(part.split("=", 1) for part in sas.split("&"))["sig"]
    for secret in (signature, urllib.parse.unquote(signature), new.account().key):
        assert [p.name for p in logs if secret in p.read_text(errors="replace")] == []
    # The old account was only read.
    for share, tree in TREES.items():
        assert read_share(service_client(old).get_share_client(share)).files == tree

    # 3. helm uninstall leaves what the chart documents: with migration.keepOnUninstall the
    #    FileShares, CopyJobs and SyncSchedules stay, and Helm never deletes CRDs; the operator,
    #    its ServiceAccounts and its RBAC go.
    kube.helm("uninstall", "migration", "-n", "shareferry-system", "--wait")
    for kind, items in (
        ("fileshare", "fileShares"),
        ("copyjob", "copyJobs"),
        ("syncschedule", "syncSchedules"),
    ):
        for item in values[items]:
            assert kube.get(kind, item["name"], "migration") is not None, (kind, item["name"])
    for crd in ("copyjobs", "fileshares", "syncschedules"):
        assert kube.get("crd", f"{crd}.shareferry.dev") is not None
    assert kube.json("get", "deployments", "-n", "shareferry-system")["items"] == []
    assert kube.get("serviceaccount", "migration-shareferry", "shareferry-system") is None
    leftover_roles = [
        item["metadata"]["name"]
        for item in kube.json(
            "get", "clusterroles,roles", "-A", "-l", "app.kubernetes.io/instance=migration"
        )["items"]
    ]
    assert leftover_roles == []
    # The shares themselves are untouched (deletionPolicy: Retain).
    for share, tree in TREES.items():
        assert read_share(service_client(new).get_share_client(share)).files == tree
