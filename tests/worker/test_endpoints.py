"""Where each side of a CopyJob is for the core, and which credentials each side gets: the
location strings the worker builds (never holding a credential) and the per-side environments,
from the pod's environment or from manifests given to ``shareferry run``."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from shareferry.api.copyjob import parse_copyjob
from shareferry.api.errors import SpecError
from shareferry.worker.endpoints import resolve_endpoints, side_environs
from shareferry.worker.manifests import collect, worker_environ

SAS = "sv=2024-05-04&ss=f&srt=sco&sp=rl&se=2030-01-01T00:00:00Z&sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
KEY = base64.b64encode(b"an account key, not to be shown").decode()


def fileshare(name: str, *, account_name: str | None = None, endpoint: str | None = None) -> dict[str, Any]:
    account = {"name": account_name} if account_name else {"endpoint": endpoint}
    return {
        "apiVersion": "shareferry.dev/v1alpha1",
        "kind": "FileShare",
        "metadata": {"name": name},
        "spec": {"account": account, "credentials": {"secretName": f"{name}-credentials"}, "shareName": name},
    }


def copyjob(source: dict[str, Any], destination: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shareferry.dev/v1alpha1",
        "kind": "CopyJob",
        "metadata": {"name": "job", "namespace": "team"},
        "spec": {"source": source, "destination": destination, **spec},
    }


POD_ENV = {
    "SHAREFERRY_VOLUME_ROOT": "/mnt/volumes",
    "SHAREFERRY_SOURCE_AZURE_STORAGE_SAS_TOKEN": SAS,
    "SHAREFERRY_DESTINATION_AZURE_STORAGE_ACCOUNT_NAME": "contosodr",
    "SHAREFERRY_DESTINATION_AZURE_STORAGE_ACCOUNT_KEY": KEY,
    "SHAREFERRY_JOB_DIR": "/var/lib/shareferry/jobs",
}


def test_a_fileshare_is_its_share_url_and_its_path_the_contents_of_that_directory() -> None:
    spec = parse_copyjob(
        {
            "source": {"fileShare": {"name": "reports", "path": "monthly/2025 Q1"}},
            "destination": {
                "url": "https://contosodr.blob.core.windows.net/backup",
                "credentials": {"secretName": "dr"},
            },
        }
    )
    shares = {"reports": fileshare("reports", account_name="contosodata")}
    endpoints = resolve_endpoints(spec, fileshares=shares, environ=POD_ENV)
    assert endpoints.source == "https://contosodata.file.core.windows.net/reports/monthly/2025%20Q1/*"
    assert endpoints.destination == "https://contosodr.blob.core.windows.net/backup"
    assert endpoints.from_to == "FileBlob"


def test_a_fileshare_by_endpoint_and_a_pvc_in_the_pod() -> None:
    spec = parse_copyjob(
        {
            "source": {"pvc": {"claimName": "exports", "path": "out/daily"}},
            "destination": {"fileShare": {"name": "emulated"}},
        }
    )
    shares = {"emulated": fileshare("emulated", endpoint="http://files.test:10004/devstoreaccount1/")}
    endpoints = resolve_endpoints(spec, fileshares=shares, environ=POD_ENV)
    # not a directory in this process, so taken as named (in a pod the mounted directory is
    # copied by its contents: see the run_shard tests)
    assert endpoints.source == "/mnt/volumes/source/out/daily"
    assert endpoints.destination == "http://files.test:10004/devstoreaccount1/emulated"
    assert endpoints.from_to == "LocalFile"


def test_a_pvc_destination_and_a_url_source_of_a_kind_its_host_does_not_tell() -> None:
    spec = parse_copyjob(
        {
            "source": {
                "url": "http://blobs.test:10000/devstoreaccount1/photos",
                "kind": "blob",
                "credentials": {"secretName": "s"},
            },
            "destination": {"pvc": {"claimName": "restore", "path": "photos"}},
        }
    )
    endpoints = resolve_endpoints(spec, fileshares={}, environ={})  # the default volume root
    assert endpoints.source == "http://blobs.test:10000/devstoreaccount1/photos"  # AzCopy's meaning, as given
    assert endpoints.destination == "/mnt/shareferry/destination/photos"
    assert endpoints.from_to == "BlobLocal"


def test_a_local_run_maps_claims_to_directories_and_copies_a_directory_by_its_contents(
    tmp_path: Path,
) -> None:
    (tmp_path / "exports").mkdir()
    sides = {
        "source": {"pvc": {"claimName": "data", "path": "exports"}},
        "destination": {"fileShare": {"name": "reports"}},
    }
    shares = {"reports": fileshare("reports", account_name="contosodata")}
    volumes = {"data": str(tmp_path)}
    copy = resolve_endpoints(parse_copyjob(sides), fileshares=shares, environ={}, volumes=volumes)
    assert copy.source == str(tmp_path / "exports" / "*")
    # a sync compares the directories themselves (and takes no wildcard)
    sync = resolve_endpoints(
        parse_copyjob({**sides, "mode": "sync"}), fileshares=shares, environ={}, volumes=volumes
    )
    assert sync.source == str(tmp_path / "exports")


@pytest.mark.parametrize(
    ("spec", "reason", "words"),
    [
        (
            {"source": {"fileShare": {"name": "gone"}}, "destination": {"pvc": {"claimName": "d"}}},
            "FileShareNotFound",
            "FileShare 'gone' not found",
        ),
        (
            {"source": {"pvc": {"claimName": "nowhere"}}, "destination": {"fileShare": {"name": "r"}}},
            "VolumeNotFound",
            "--pvc nowhere=DIR",
        ),
    ],
)
def test_an_unknown_fileshare_or_claim_is_a_spec_error(spec: dict[str, Any], reason: str, words: str) -> None:
    shares = {"r": fileshare("r", account_name="contosodata")}
    with pytest.raises(SpecError) as caught:
        resolve_endpoints(parse_copyjob(spec), fileshares=shares, environ={}, volumes={})
    assert caught.value.reason == reason
    assert words in str(caught.value)


def test_each_side_gets_the_variables_under_its_prefix_and_the_locations_hold_none() -> None:
    environs = side_environs(POD_ENV)
    assert dict(environs.source) == {"AZURE_STORAGE_SAS_TOKEN": SAS}
    assert dict(environs.destination) == {
        "AZURE_STORAGE_ACCOUNT_NAME": "contosodr",
        "AZURE_STORAGE_ACCOUNT_KEY": KEY,
    }
    assert (
        environs.settings is not None
        and environs.settings["SHAREFERRY_JOB_DIR"] == "/var/lib/shareferry/jobs"
    )
    assert SAS not in repr(environs) and KEY not in repr(environs)
    spec = parse_copyjob(
        {
            "source": {
                "url": "https://contosodata.file.core.windows.net/reports",
                "credentials": {"secretName": "s"},
            },
            "destination": {"pvc": {"claimName": "d"}},
        }
    )
    endpoints = resolve_endpoints(spec, fileshares={}, environ=POD_ENV)
    for location in (endpoints.source, endpoints.destination):
        assert "sig=" not in location and SAS not in location and KEY not in location


def test_manifests_give_each_side_its_secret_as_the_operator_injects_it() -> None:
    source_share = fileshare("reports", account_name="contosodata")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "reports-credentials"},
        "data": {"AZURE_STORAGE_ACCOUNT_KEY": base64.b64encode(KEY.encode()).decode(), "unrelated": "eA=="},
        "stringData": {"AZURE_STORAGE_ACCOUNT_NAME": "contosodata"},
    }
    job = copyjob(
        {"fileShare": {"name": "reports"}},
        {
            "url": "https://contosodr.file.core.windows.net/reports",
            "credentials": {"secretName": "not-given"},
        },
    )
    manifests = collect([("a.yaml", job), ("a.yaml", source_share), ("b.yaml", secret), ("b.yaml", None)])
    process = {
        "PATH": "/usr/bin",
        "AZURE_STORAGE_CONNECTION_STRING": "AccountName=contosodr;AccountKey=" + KEY,
        "SHAREFERRY_SOURCE_AZURE_STORAGE_SAS_TOKEN": "stale",  # never leaks past a Secret
    }
    environ = worker_environ(manifests, process)
    assert environ["SHAREFERRY_SOURCE_AZURE_STORAGE_ACCOUNT_NAME"] == "contosodata"
    assert environ["SHAREFERRY_SOURCE_AZURE_STORAGE_ACCOUNT_KEY"] == KEY
    assert "SHAREFERRY_SOURCE_AZURE_STORAGE_SAS_TOKEN" not in environ
    assert "SHAREFERRY_SOURCE_unrelated" not in environ
    # no Secret document for the destination: the process environment, as `shareferry copy`
    assert (
        environ["SHAREFERRY_DESTINATION_AZURE_STORAGE_CONNECTION_STRING"]
        == process["AZURE_STORAGE_CONNECTION_STRING"]
    )
    assert environ["PATH"] == "/usr/bin"


@pytest.mark.parametrize(
    ("documents", "words"),
    [
        ([], "the manifests hold no CopyJob"),
        ([copyjob({}, {}), copyjob({}, {})], "2 CopyJobs"),
        (
            [{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}}],
            "batch/v1/Job is not something shareferry run takes",
        ),
        (["just text"], "a manifest must be a mapping"),
    ],
)
def test_manifests_that_are_not_one_copyjob_are_refused(documents: list[Any], words: str) -> None:
    from shareferry.core.errors import UsageError

    with pytest.raises(UsageError, match=words):
        collect([("m.yaml", document) for document in documents])
