"""Migration values become FileShares, CopyJobs and SyncSchedules the API server accepts
(server-side dry-run on a real one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.conftest import ALL_FEATURES, MIGRATION, NAMESPACE, Manifests, of_kind
from tests.cluster.crds import dry_run_all
from tests.cluster.kubectl import Kubectl
from tests.support import helm

KINDS = {"fileShares": "FileShare", "copyJobs": "CopyJob", "syncSchedules": "SyncSchedule"}


def values_of(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return values


def migration_objects(manifests: Manifests) -> Manifests:
    return [document for document in manifests if document["apiVersion"].startswith("shareferry.dev/")]


@pytest.mark.parametrize("name", ["migration", "all-features"])
def test_rendered_resources_are_accepted_by_the_api_server(
    rendered: dict[str, Manifests], crds_installed: Kubectl, name: str
) -> None:
    objects = migration_objects(rendered[name])
    assert {document["kind"] for document in objects} == set(KINDS.values())
    answers = dry_run_all(crds_installed, objects)
    refused = [
        f"{document['kind']}/{document['metadata']['name']}: {answer.stderr.strip()}"
        for document, answer in zip(objects, answers, strict=True)
        if answer.code
    ]
    assert refused == []


@pytest.mark.parametrize(("name", "path"), [("migration", MIGRATION), ("all-features", ALL_FEATURES)])
def test_each_value_item_is_one_resource_with_its_spec(
    rendered: dict[str, Manifests], name: str, path: Path
) -> None:
    values = values_of(path)
    for key, kind in KINDS.items():
        objects = {
            (document["metadata"]["namespace"], document["metadata"]["name"]): document
            for document in of_kind(rendered[name], kind)
        }
        assert len(objects) == len(values[key])
        for item in values[key]:
            document = objects[(item.get("namespace", NAMESPACE), item["name"])]
            assert document["spec"] == item["spec"]
            assert item.get("labels", {}).items() <= document["metadata"]["labels"].items()
            assert document["metadata"]["labels"]["app.kubernetes.io/component"] == "migration"
            annotations = document["metadata"].get("annotations", {})
            assert item.get("annotations", {}).items() <= annotations.items()
            assert annotations.get("helm.sh/resource-policy") == "keep"  # keepOnUninstall: true in both


def test_example_migrates_every_share_to_a_fileshare_of_the_new_account(
    rendered: dict[str, Manifests],
) -> None:
    manifests = rendered["migration"]
    shares = {d["metadata"]["name"]: d["spec"] for d in of_kind(manifests, "FileShare")}
    assert len(shares) >= 2
    assert {spec["account"]["name"] for spec in shares.values()} == {"contosonew"}
    copy_specs = [d["spec"] for d in of_kind(manifests, "CopyJob")]
    schedule_specs = [d["spec"]["jobTemplate"]["spec"] for d in of_kind(manifests, "SyncSchedule")]
    for specs in (copy_specs, schedule_specs):
        targets = sorted(spec["destination"]["fileShare"]["name"] for spec in specs)
        assert targets == sorted(shares), "one sync per target share"
        for spec in specs:
            assert spec["mode"] == "sync"
            source_share = spec["source"]["url"].rsplit("/", 1)[1]
            assert source_share == shares[spec["destination"]["fileShare"]["name"]]["shareName"]
            assert spec["source"]["url"].startswith("https://contosoold.file.core.windows.net/")


def test_migration_namespaces_get_worker_accounts_in_cluster_wide_mode(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "workerNamespaces": ["team-a"],
                "copyJobs": [
                    {
                        "name": "upload",
                        "namespace": "team-b",
                        "spec": {
                            "source": {"pvc": {"claimName": "data"}},
                            "destination": {"fileShare": {"name": "reports"}},
                        },
                    }
                ],
                "syncSchedules": [
                    {
                        "name": "nightly",
                        "spec": {
                            "schedule": "0 1 * * *",
                            "jobTemplate": {
                                "spec": {
                                    "source": {"fileShare": {"name": "reports"}},
                                    "destination": {"fileShare": {"name": "backup"}},
                                }
                            },
                        },
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    manifests = helm.render(values_files=[values])
    worker_accounts = {
        sa["metadata"]["namespace"]
        for sa in of_kind(manifests, "ServiceAccount")
        if sa["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    }
    assert worker_accounts == {"team-a", "team-b", NAMESPACE}
    copyjob = of_kind(manifests, "CopyJob")[0]
    assert "annotations" not in copyjob["metadata"]  # keepOnUninstall is off by default
