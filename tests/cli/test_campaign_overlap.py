"""Copies and syncs whose destination overlaps the source, run as a user runs them: the CLI as a
child process against the Files emulator and Azurite, and a CopyJob manifest through
``shareferry run``. Each is refused with one line on stderr and exit status 2 before a single
request reaches the service; the data is untouched and no job plan is left behind. Copies and
syncs between places that only look alike (another directory of the same share, a snapshot of
it) still run and land the right bytes."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from azure.storage.blob import AccountSasPermissions as BlobAccountSasPermissions
from azure.storage.blob import BlobServiceClient
from azure.storage.blob import ResourceTypes as BlobResourceTypes
from azure.storage.blob import generate_account_sas as generate_blob_account_sas
from azure.storage.fileshare import ShareClient, ShareServiceClient

from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.cli.test_copy_cli import (
    account_sas,
    assert_secret_free,
    clean_environment,
    shareferry,
    shareferry_all,
    signature,
    summary_value,
)
from tests.support.emulator_admin import counters, reset_counters
from tests.support.shared_azurite import shared_azurite
from tests.support.trees import read_container, read_share, write_container, write_share

FILES = {
    "src/a.txt": b"alpha " * 100,
    "src/sub/b.txt": b"beta",
    "logs/2024-01.log": b"january",
    "logs/2024-02.log": b"february",
    "f.txt": b"a file at the root",
}


@dataclass(frozen=True)
class Refusal:
    """One command and the reason it must be refused for (after ``refusing to <command>: ``)."""

    args: tuple[str, ...]
    reason: str

    @property
    def command(self) -> str:
        return self.args[0]


@dataclass
class Campaign:
    """Every refused command of one service, run at once, and what the service saw meanwhile."""

    results: dict[str, subprocess.CompletedProcess[str]]
    refusals: dict[str, Refusal]
    requests: int
    job_dir: Path
    secrets: tuple[str, ...]


# ---- Azure Files ---------------------------------------------------------------------------------


def files_refusals(root: str, sas: str) -> dict[str, Refusal]:
    """``root`` is the emulator's ``http://127.0.0.1:PORT``."""
    url = f"{root}/devstoreaccount1/data"
    host = root.rpartition(":")[0]
    port = root.rpartition(":")[2]
    localhost = f"http://localhost:{port}/devstoreaccount1/data"
    ipv6 = f"http://[::1]:{port}/devstoreaccount1/data"

    def at(path: str = "") -> str:
        return f"{url}/{path}?{sas}" if path else f"{url}?{sas}"

    ff = ("--from-to", "FileFile")
    return {
        "share onto itself": Refusal(
            ("copy", at(), at(), "--recursive", *ff),
            f"the destination {url} is the source {url}",
        ),
        "share onto itself, trailing slash": Refusal(
            ("copy", at(), f"{url}/?{sas}", "--recursive", *ff),
            f"the destination {url}/ is the source {url}",
        ),
        "destination inside the source": Refusal(
            ("copy", at("src"), at("src/sub"), "--recursive", *ff),
            f"the destination {url}/src/sub is inside the source {url}/src",
        ),
        "directory into its own parent": Refusal(
            ("copy", at("src"), f"{url}/?{sas}", "--recursive", *ff),
            f"the source {url}/src would be copied onto itself in the destination {url}/",
        ),
        "one file onto itself": Refusal(
            ("copy", at("f.txt"), at("f.txt"), *ff),
            f"the destination {url}/f.txt is the source {url}/f.txt",
        ),
        "one file into its own directory": Refusal(
            ("copy", at("src/a.txt"), f"{url}/src/?{sas}", *ff),
            f"the source {url}/src/a.txt would be copied onto itself in the destination {url}/src/",
        ),
        "case variant on Files": Refusal(
            ("copy", at("src/a.txt"), at("SRC/A.TXT"), *ff),
            f"the destination {url}/SRC/A.TXT is the source {url}/src/a.txt",
        ),
        "percent-encoded name": Refusal(
            ("copy", at("s%72c"), at("src/new"), "--recursive", *ff),
            f"the destination {url}/src/new is inside the source {url}/src",
        ),
        "localhost and 127.0.0.1": Refusal(
            ("copy", at("src"), f"{localhost}/src/copy?{sas}", "--recursive", *ff),
            f"the destination {localhost}/src/copy is inside the source {url}/src",
        ),
        "[::1] and 127.0.0.1": Refusal(
            ("copy", f"{ipv6}?{sas}", at("backup"), "--recursive", *ff),
            f"the destination {url}/backup is inside the source {ipv6}",
        ),
        "account-level source": Refusal(
            ("copy", f"{root}/devstoreaccount1?{sas}", at("everything"), "--recursive", *ff),
            f"the source {root}/devstoreaccount1 names every share and container of its account, "
            f"and the destination {url}/everything is in that account",
        ),
        "wildcard onto its directory": Refusal(
            ("copy", at("logs/*"), at("logs"), *ff),
            f"the source {url}/logs/* would be copied onto itself in the destination {url}/logs",
        ),
        "wildcard into a matching name": Refusal(
            ("copy", at("logs/2024*"), at("logs/2024-all"), *ff),
            f"the destination {url}/logs/2024-all is inside the source {url}/logs/2024*",
        ),
        "dry run": Refusal(
            ("copy", at(), at("dry"), "--recursive", "--dry-run", *ff),
            f"the destination {url}/dry is inside the source {url}",
        ),
        "sync onto itself": Refusal(
            ("sync", at("src"), at("src/"), *ff),
            f"the destination {url}/src/ is the source {url}/src",
        ),
        "sync into the source": Refusal(
            ("sync", at("src"), at("src/mirror"), *ff),
            f"the destination {url}/src/mirror is inside the source {url}/src",
        ),
        "sync over its source": Refusal(
            ("sync", at("src/sub"), at("src"), "--delete-destination", "true", *ff),
            f"the destination {url}/src contains the source {url}/src/sub, "
            "which the sync would overwrite or delete",
        ),
        "sync of the root over a directory": Refusal(
            ("sync", f"{localhost}?{sas}", at("src"), *ff),
            f"the destination {url}/src is inside the source {localhost}",
        ),
        "sync, file onto itself": Refusal(
            ("sync", at("f.txt"), f"{host}:{port}/devstoreaccount1/data/F.txt?{sas}", *ff),
            f"the destination {url}/F.txt is the source {url}/f.txt",
        ),
    }


@pytest.fixture(scope="module")
def files_world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningEmulator, ShareClient, str]]:
    with RunningEmulator(EmulatorConfig()) as emulator:
        account = emulator.account()
        service = ShareServiceClient(
            account_url=emulator.account_url(),
            credential={"account_name": account.name, "account_key": account.key},
        )
        share = service.create_share("data")
        write_share(share, FILES)
        yield emulator, share, account_sas(emulator)


@pytest.fixture(scope="module")
def files_campaign(
    files_world: tuple[RunningEmulator, ShareClient, str], tmp_path_factory: pytest.TempPathFactory
) -> Campaign:
    emulator, _, sas = files_world
    refusals = files_refusals(emulator.root, sas)
    job_dir = tmp_path_factory.mktemp("overlap-jobs")
    reset_counters(emulator)
    results = shareferry_all(
        {name: list(refusal.args) for name, refusal in refusals.items()},
        env=clean_environment(SHAREFERRY_JOB_DIR=str(job_dir)),
    )
    operations = counters(emulator)["operations"]
    requests = sum(int(counts["total"]) for counts in operations.values())
    return Campaign(results, refusals, requests, job_dir, (signature(sas),))


FILES_CASES = list(files_refusals("http://127.0.0.1:1", "sv=x&sig=y"))


@pytest.mark.parametrize("name", FILES_CASES)
def test_files_overlap_is_one_line_and_exit_2(files_campaign: Campaign, name: str) -> None:
    check_refused(files_campaign, name)


def test_files_refusals_send_no_request_and_leave_no_plan(
    files_campaign: Campaign, files_world: tuple[RunningEmulator, ShareClient, str]
) -> None:
    _, share, _ = files_world
    assert files_campaign.requests == 0
    assert list(files_campaign.job_dir.iterdir()) == []
    assert read_share(share).files == FILES


def check_refused(campaign: Campaign, name: str) -> None:
    result, refusal = campaign.results[name], campaign.refusals[name]
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == f"shareferry {refusal.command}: refusing to {refusal.command}: {refusal.reason}\n"
    assert result.stdout == ""
    assert_secret_free(result, *campaign.secrets)


# ---- what still runs -----------------------------------------------------------------------------


def test_copies_and_syncs_beside_the_source_in_one_share_still_run(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path
) -> None:
    share = service.create_share("beside")
    write_share(share, FILES)
    sas = account_sas(emulator)
    url = f"{emulator.account_url()}/beside"
    ff = ("--from-to", "FileFile")
    env = clean_environment(SHAREFERRY_JOB_DIR=str(tmp_path / "jobs"))
    results = shareferry_all(
        {
            "into another directory": [
                "copy",
                f"{url}/src?{sas}",
                f"{url}/backup/?{sas}",
                "--recursive",
                *ff,
            ],
            "into a name sharing its prefix": [
                "copy",
                f"{url}/src/sub?{sas}",
                f"{url}/src2?{sas}",
                "--recursive",
                *ff,
            ],
            "into its grandparent": ["copy", f"{url}/src/sub?{sas}", f"{url}/?{sas}", "--recursive", *ff],
            "wildcard elsewhere": ["copy", f"{url}/logs/2024*?{sas}", f"{url}/logs/archive?{sas}", *ff],
            "sync to a sibling": ["sync", f"{url}/src?{sas}", f"{url}/mirror?{sas}", *ff],
        },
        env=env,
    )
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr)
        assert summary_value(result.stdout, "Final Job Status") == "Completed", name
    landed = read_share(share).files
    expected = dict(FILES)
    expected.update(
        {f"backup/src/{path[4:]}": data for path, data in FILES.items() if path.startswith("src/")}
    )
    expected.update({"src2/sub/b.txt": b"beta", "sub/b.txt": b"beta"})
    expected.update(
        {f"logs/archive/{path[5:]}": data for path, data in FILES.items() if path.startswith("logs/")}
    )
    expected.update({f"mirror/{path[4:]}": data for path, data in FILES.items() if path.startswith("src/")})
    assert landed == expected


def test_a_snapshot_copied_over_its_live_share_restores_it(
    emulator: RunningEmulator, service: ShareServiceClient, tmp_path: Path
) -> None:
    share = service.create_share("restore")
    write_share(share, FILES)
    snapshot = share.create_snapshot()["snapshot"]
    write_share(share, {"src/a.txt": b"overwritten by mistake", "src/new.txt": b"added later"})
    sas = account_sas(emulator)
    url = f"{emulator.account_url()}/restore"
    result = shareferry(
        "copy", f"{url}?sharesnapshot={snapshot}&{sas}", f"{url}?{sas}",
        "--recursive", "--from-to", "FileFile", "--overwrite", "true",
        env=clean_environment(SHAREFERRY_JOB_DIR=str(tmp_path / "jobs")),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert summary_value(result.stdout, "Number of File Transfers Completed") == str(len(FILES))
    assert read_share(share).files == {**FILES, "src/new.txt": b"added later"}
    assert_secret_free(result, signature(sas))


# ---- other front doors ---------------------------------------------------------------------------


def test_json_output_reports_the_refusal_as_an_error_message(
    files_world: tuple[RunningEmulator, ShareClient, str], tmp_path: Path
) -> None:
    emulator, share, sas = files_world
    url = f"{emulator.account_url()}/data"
    result = shareferry(
        "copy", f"{url}/src?{sas}", f"{url}/src/sub?{sas}", "--recursive", "--from-to", "FileFile",
        "--output-type", "json",
        env=clean_environment(SHAREFERRY_JOB_DIR=str(tmp_path / "jobs")),
    )  # fmt: skip
    assert result.returncode == 2
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    errors = [message["MessageContent"] for message in messages if message["MessageType"] == "Error"]
    assert errors == [f"refusing to copy: the destination {url}/src/sub is inside the source {url}/src"]
    assert_secret_free(result, signature(sas))
    assert read_share(share).files == FILES


def test_a_copyjob_manifest_that_overlaps_is_refused(
    files_world: tuple[RunningEmulator, ShareClient, str], tmp_path: Path
) -> None:
    emulator, share, _ = files_world
    account = emulator.account()
    documents = [
        {
            "apiVersion": "shareferry.dev/v1alpha1",
            "kind": "CopyJob",
            "metadata": {"name": "loop"},
            "spec": {
                "source": {"fileShare": {"name": "data", "path": "src"}},
                "destination": {"fileShare": {"name": "data", "path": "src/again"}},
            },
        },
        {
            "apiVersion": "shareferry.dev/v1alpha1",
            "kind": "FileShare",
            "metadata": {"name": "data"},
            "spec": {
                "account": {"endpoint": emulator.account_url()},
                "credentials": {"secretName": "data-credentials"},
                "shareName": "data",
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "data-credentials"},
            "stringData": {
                "AZURE_STORAGE_ACCOUNT_NAME": account.name,
                "AZURE_STORAGE_ACCOUNT_KEY": account.key,
            },
        },
    ]
    manifest = tmp_path / "loop.yaml"
    manifest.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    result = shareferry(
        "run", "-f", str(manifest), env=clean_environment(SHAREFERRY_JOB_DIR=str(tmp_path / "jobs"))
    )
    url = f"{emulator.account_url()}/data"
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        f"refusing to copy: the destination {url}/src/again is inside the source {url}/src" in result.stderr
    )
    assert account.key not in result.stdout + result.stderr
    assert read_share(share).files == FILES


# ---- Blob (Azurite) ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blob_world() -> tuple[BlobServiceClient, str, str]:
    azurite = shared_azurite()
    client = BlobServiceClient(azurite.endpoint, azurite.credential)
    name = f"overlap{os.urandom(4).hex()}"
    write_container(client.create_container(name), FILES)
    sas = generate_blob_account_sas(
        azurite.account,
        azurite.key,
        BlobResourceTypes(service=True, container=True, object=True),
        BlobAccountSasPermissions(read=True, write=True, create=True, list=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return client, f"{azurite.endpoint}/{name}", sas


def blob_refusals(url: str, sas: str) -> dict[str, Refusal]:
    bb = ("--from-to", "BlobBlob")
    return {
        "container onto itself": Refusal(
            ("copy", f"{url}?{sas}", f"{url}/?{sas}", "--recursive", *bb),
            f"the destination {url}/ is the source {url}",
        ),
        "directory into its own parent": Refusal(
            ("copy", f"{url}/src/sub?{sas}", f"{url}/src/?{sas}", "--recursive", *bb),
            f"the source {url}/src/sub would be copied onto itself in the destination {url}/src/",
        ),
        "destination inside the source": Refusal(
            ("copy", f"{url}/logs?{sas}", f"{url}/logs/copy?{sas}", "--recursive", *bb),
            f"the destination {url}/logs/copy is inside the source {url}/logs",
        ),
        "sync over its source": Refusal(
            ("sync", f"{url}/src/sub?{sas}", f"{url}?{sas}", *bb),
            f"the destination {url} contains the source {url}/src/sub, which the sync would overwrite or delete",
        ),
    }


BLOB_CASES = list(blob_refusals("http://127.0.0.1:1/devstoreaccount1/c", "sv=x&sig=y"))


@pytest.fixture(scope="module")
def blob_campaign(
    blob_world: tuple[BlobServiceClient, str, str], tmp_path_factory: pytest.TempPathFactory
) -> Campaign:
    _, url, sas = blob_world
    refusals = blob_refusals(url, sas)
    job_dir = tmp_path_factory.mktemp("overlap-blob-jobs")
    results = shareferry_all(
        {name: list(refusal.args) for name, refusal in refusals.items()},
        env=clean_environment(SHAREFERRY_JOB_DIR=str(job_dir)),
    )
    return Campaign(results, refusals, 0, job_dir, (signature(sas),))


@pytest.mark.azurite
@pytest.mark.parametrize("name", BLOB_CASES)
def test_blob_overlap_is_one_line_and_exit_2(blob_campaign: Campaign, name: str) -> None:
    check_refused(blob_campaign, name)


@pytest.mark.azurite
def test_blob_refusals_leave_the_container_as_it_was(
    blob_campaign: Campaign, blob_world: tuple[BlobServiceClient, str, str]
) -> None:
    client, url, _ = blob_world
    assert list(blob_campaign.job_dir.iterdir()) == []
    container = client.get_container_client(url.rpartition("/")[2])
    assert read_container(container).files == FILES
