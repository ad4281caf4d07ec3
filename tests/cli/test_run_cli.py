"""``shareferry run -f`` as a user runs it: a child process given manifest files (a CopyJob, its
FileShares, Secrets), against the Files emulator over HTTP and local directories standing in for
PVCs. Checked as a user would: the exit status, the status printed (YAML, or JSON), the bytes and
MD5s that landed, the MD5 results file, one clear line for bad input, and that no account key
is ever printed."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.storage.fileshare import ShareServiceClient

from shareferry.emulator import Account, EmulatorConfig, RunningEmulator
from shareferry.worker.md5_results import read_results
from tests.support.trees import md5, read_share, write_local, write_share

KIB = 1024
TREE: dict[str, bytes] = {
    "big.bin": os.urandom(3 * 256 * KIB + 777),
    "empty.txt": b"",
    "notes/read me.txt": b"hello from shareferry run\n" * 40,
    "notes/ünïcødé 100%.txt": "déjà vu".encode(),
    "deep/er/leaf.json": b'{"leaf": true}',
}
SOURCE = Account("sourceacct", base64.b64encode(b"the source account's key").decode())
DESTINATION = Account("drbackup", base64.b64encode(b"the destination account's key").decode())


@pytest.fixture(scope="module")
def accounts() -> Iterator[RunningEmulator]:
    """One emulator serving two accounts, each with its own key."""
    with RunningEmulator(EmulatorConfig(accounts=(SOURCE, DESTINATION))) as emulator:
        yield emulator


def service(emulator: RunningEmulator, account: Account) -> ShareServiceClient:
    return ShareServiceClient(
        account_url=emulator.account_url(account.name),
        credential={"account_name": account.name, "account_key": account.key},
    )


def fileshare(name: str, emulator: RunningEmulator, account: Account, share: str) -> dict[str, Any]:
    return {
        "apiVersion": "shareferry.dev/v1alpha1",
        "kind": "FileShare",
        "metadata": {"name": name},
        "spec": {
            "account": {"endpoint": emulator.account_url(account.name)},
            "credentials": {"secretName": f"{account.name}-credentials"},
            "shareName": share,
        },
    }


def secret(account: Account, *, encoded: bool = False) -> dict[str, Any]:
    values = {"AZURE_STORAGE_ACCOUNT_NAME": account.name, "AZURE_STORAGE_ACCOUNT_KEY": account.key}
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{account.name}-credentials"},
    }
    if encoded:
        body["data"] = {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
    else:
        body["stringData"] = values
    return body


def copyjob(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shareferry.dev/v1alpha1",
        "kind": "CopyJob",
        "metadata": {"name": name},
        "spec": spec,
    }


def manifest(path: Path, *documents: Mapping[str, Any]) -> str:
    path.write_text(yaml.safe_dump_all([dict(d) for d in documents], sort_keys=False), encoding="utf-8")
    return str(path)


def clean_environment(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if (not key.startswith(("AZURE_", "SHAREFERRY_")) or key == "SHAREFERRY_JOB_DIR")
        and key not in ("ACCOUNT_NAME", "ACCOUNT_KEY")
    }
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def shareferry_run(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "shareferry", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(env) if env is not None else clean_environment(),
        stdin=subprocess.DEVNULL,
    )
    for account in (SOURCE, DESTINATION):
        assert account.key not in result.stdout + result.stderr
    return result


def test_an_upload_with_a_secret_document_prints_the_status_and_keeps_md5_results(
    accounts: RunningEmulator, tmp_path: Path
) -> None:
    share = service(accounts, DESTINATION).create_share("uploads")
    write_local(tmp_path / "exports", {**TREE, "scratch.tmp": b"left out"})
    job = copyjob(
        "upload-exports",
        source={"pvc": {"claimName": "exports-data", "readOnly": True}},
        destination={"fileShare": {"name": "uploads", "path": "incoming"}},
        options={"putMd5": True, "excludePattern": ["*.tmp"], "blockSizeMb": 0.25},
    )
    result = shareferry_run(
        "-f", manifest(tmp_path / "copyjob.yaml", job),
        "-f", manifest(tmp_path / "account.yaml", fileshare("uploads", accounts, DESTINATION, "uploads"), secret(DESTINATION)),
        "--pvc", f"exports-data={tmp_path / 'exports'}",
        "--results-dir", str(tmp_path / "md5"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    landed = read_share(share, "incoming")
    assert landed.files == {f"incoming/{path}": data for path, data in TREE.items()}
    assert landed.stored_md5 == {f"incoming/{path}": md5(data) for path, data in TREE.items()}

    status = yaml.safe_load(result.stdout)
    assert status["phase"] == "Succeeded"
    assert status["counters"] == {
        "filesTransferred": len(TREE),
        "filesFailed": 0,
        "filesSkipped": 0,
        "bytesTransferred": sum(map(len, TREE.values())),
        "filesDeleted": 0,
        "filesNewerAtDestination": 0,
    }
    assert status["progress"]["percentText"] == "100%"
    assert status["md5Results"] == {
        "configMaps": ["upload-exports-md5-0"],
        "files": len(TREE),
        "verified": len(TREE),
        "mismatched": 0,
        "missing": 0,
    }
    assert status["shards"] == [{"index": 0, "state": "Succeeded", "percent": 100.0}]
    assert "startTime" in status and "completionTime" in status

    configmap = yaml.safe_load((tmp_path / "md5" / "upload-exports-md5-0.yaml").read_text(encoding="utf-8"))
    assert configmap["kind"] == "ConfigMap" and configmap["metadata"]["namespace"] == "default"
    assert {line["path"]: line["md5"] for line in read_results(configmap)} == {
        f"incoming/{path}": md5(data).hex() for path, data in TREE.items()
    }
    assert "upload-exports: Succeeded 100.0 %" in result.stderr  # its progress lines (stderr is no terminal)


def test_a_sync_between_two_accounts_uses_each_sides_own_secret(
    accounts: RunningEmulator, tmp_path: Path
) -> None:
    source = service(accounts, SOURCE).create_share("reports")
    destination = service(accounts, DESTINATION).create_share("reports-dr")
    # The destination's files were written before the source's: an older big.bin is replaced (a
    # newer one would be kept, AzCopy's rule). Share times have whole seconds, and a differing
    # pair written in the same second is kept (either may be the newer), so wait for the next.
    write_share(destination, {"old.txt": b"gone from the source", "big.bin": b"an old version"})
    time.sleep(1.1)
    write_share(source, TREE)
    job = copyjob(
        "reports-to-dr",
        mode="sync",
        source={"fileShare": {"name": "reports"}},
        destination={"fileShare": {"name": "reports-dr"}},
        options={"deleteDestination": "true", "maxDeletePercent": 100},
        parallelism=2,
    )
    result = shareferry_run(
        "-f", manifest(tmp_path / "copyjob.yaml", job),
        "-f", manifest(
            tmp_path / "accounts.yaml",
            fileshare("reports", accounts, SOURCE, "reports"), secret(SOURCE, encoded=True),
            fileshare("reports-dr", accounts, DESTINATION, "reports-dr"), secret(DESTINATION),
        ),
        "--output-type", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert read_share(destination).files == TREE
    status = json.loads(result.stdout)
    assert status["phase"] == "Succeeded"
    assert status["counters"]["filesDeleted"] == 1
    assert status["counters"]["filesTransferred"] == len(TREE)
    assert sorted(status["shardReports"]) == ["0", "1"]
    assert sum(report["filesDone"] for report in status["shardReports"].values()) == len(TREE)
    assert all(report["jobStatus"] == "Completed" for report in status["shardReports"].values())


def test_without_a_secret_document_a_side_takes_the_environment(
    accounts: RunningEmulator, tmp_path: Path
) -> None:
    share = service(accounts, DESTINATION).create_share("from-env")
    write_local(tmp_path / "data", TREE)
    job = copyjob(
        "env-upload",
        source={"pvc": {"claimName": "data"}},
        destination={"fileShare": {"name": "from-env"}},
    )
    files = [
        "-f",
        manifest(tmp_path / "job.yaml", job, fileshare("from-env", accounts, DESTINATION, "from-env")),
    ]
    volumes = ["--pvc", f"data={tmp_path / 'data'}"]
    refused = shareferry_run(*files, *volumes)
    assert refused.returncode == 3
    assert yaml.safe_load(refused.stdout)["phase"] == "Failed"
    assert "no credential for" in refused.stderr
    env = clean_environment(AZURE_STORAGE_CONNECTION_STRING=accounts.connection_string(DESTINATION.name))
    result = shareferry_run(*files, *volumes, env=env)
    assert result.returncode == 0, result.stderr
    assert read_share(share).files == TREE


def test_failed_files_are_exit_1_with_the_files_in_the_status(
    accounts: RunningEmulator, tmp_path: Path
) -> None:
    share = service(accounts, DESTINATION).create_share("blocked")
    share.create_directory("notes")
    share.create_directory("notes/read me.txt")  # a directory where a file must go
    write_local(tmp_path / "data", TREE)
    job = copyjob(
        "blocked", source={"pvc": {"claimName": "data"}}, destination={"fileShare": {"name": "blocked"}}
    )
    documents = (job, fileshare("blocked", accounts, DESTINATION, "blocked"), secret(DESTINATION))
    result = shareferry_run(
        "-f", manifest(tmp_path / "all.yaml", *documents), "--pvc", f"data={tmp_path / 'data'}"
    )
    assert result.returncode == 1
    status = yaml.safe_load(result.stdout)
    assert status["phase"] == "CompletedWithErrors"
    assert status["counters"]["filesFailed"] == 1 and status["counters"]["filesTransferred"] == len(TREE) - 1
    (failed,) = status["failedFiles"]
    assert failed["path"] == "notes/read me.txt" and "ResourceTypeMismatch" in failed["error"]


@pytest.mark.parametrize(
    ("documents", "extra", "message"),
    [
        (
            [copyjob("j", source={"pvc": {"claimName": "d"}}, destination={"fileShare": {"name": "missing-share"}})],
            ["--pvc", "d=."],
            "shareferry run: spec.destination.fileShare: FileShare 'missing-share' not found in the CopyJob's namespace",
        ),
        (
            [copyjob("j", source={"pvc": {"claimName": "d"}}, destination={"url": "https://a.file.core.windows.net/share"})],
            ["--pvc", "d=."],
            "shareferry run: spec.destination: a URL needs credentials (a Secret) or workloadIdentity: true",
        ),
        (
            [copyjob("j", source={"pvc": {"claimName": "d"}}, destination={"url": "https://a.file.core.windows.net/share", "credentials": {"secretName": "s"}})],
            [],
            "shareferry run: spec.source.pvc: no local directory for the claim 'd': give --pvc d=DIR",
        ),
        ([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}], [], "v1/ConfigMap is not something shareferry run takes"),
        ([], ["--pvc", "nothing"], "the manifests hold no CopyJob"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line_and_exit_2(
    documents: list[dict[str, Any]], extra: list[str], message: str, tmp_path: Path
) -> None:
    result = shareferry_run("-f", manifest(tmp_path / "m.yaml", *documents), *extra)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("shareferry run: ") and message in line


def test_unreadable_files_and_flags_are_one_line_too(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("kind: [unclosed\n", encoding="utf-8")
    for args, words in (
        (["-f", str(tmp_path / "nowhere.yaml")], "No such file or directory"),
        (["-f", str(tmp_path / "broken.yaml")], "not valid YAML"),
        (["-f", str(tmp_path / "broken.yaml"), "--output-type", "xml"], "--output-type"),
        ([], "the following arguments are required: -f/--filename"),
    ):
        result = shareferry_run(*args)
        assert result.returncode == 2, (args, result.stderr)
        (line,) = result.stderr.splitlines()
        assert words in line
