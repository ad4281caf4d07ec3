"""Hostile file names in everything ``shareferry`` prints, run as a user runs it: a child process
against the Files emulator, with a local tree whose names hold an escape sequence that retitles
the window plus a newline that forges a ``FAILED`` line, a carriage return, a tab, DEL, a C1
control, a line separator and a right-to-left override.

Text output (``DRYRUN:`` and ``FAILED:`` lines, warnings, errors, ``jobs list`` / ``jobs show``,
``run``'s YAML status, the overwrite question on a terminal) must show each name escaped, on one
line, with no raw control character; JSON output (``--output-type json``, ``--report``) must
stay valid JSON that gives back the exact name, with no raw control character either. And the
names that can be stored land byte for byte."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.storage.fileshare import ShareClient

from shareferry.emulator import RunningEmulator
from tests.cli.test_copy_cli import (
    account_sas,
    clean_environment,
    on_terminal,
    share_url,
    signature,
    summary_value,
)
from tests.support.trees import read_local, read_share, write_local, write_share

#: Each hostile name and how text output must show it.
NAMES: dict[str, str] = {
    "evil\x1b]0;pwned\x07\nFAILED fake.txt": r"evil\x1b]0;pwned\x07\nFAILED fake.txt",
    "cr\rname.txt": r"cr\rname.txt",
    "tab\tname.txt": r"tab\tname.txt",
    "del\x7fname.txt": r"del\x7fname.txt",
    "nel\x85name.txt": r"nel\u0085name.txt",
    "ls\u2028name.txt": r"ls\u2028name.txt",
    "rtl\u202etxt.exe": r"rtl\u202etxt.exe",
}
#: What a share stores (Azure Files refuses C0 controls in names; DEL, C1 and bidi are legal).
STORABLE = ("del\x7fname.txt", "nel\x85name.txt", "ls\u2028name.txt", "rtl\u202etxt.exe")
#: Anything that drives a terminal or breaks a line, but the newline that ends each line.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
#: The source root's own name is hostile too, so that it shows in jobs list / show.
ROOT = "tree\x1b[2J\u202e"
ROOT_SHOWN = r"tree\x1b[2J\u202e"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """``shareferry`` as a child; its output must be valid UTF-8 (decoded strictly)."""
    result = subprocess.run(
        [sys.executable, "-m", "shareferry", *args],
        capture_output=True,
        timeout=120,
        check=False,
        env=clean_environment(),
        stdin=subprocess.DEVNULL,
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode("utf-8"), result.stderr.decode("utf-8")
    )


def assert_no_raw_controls(*texts: str) -> None:
    for text in texts:
        assert not RAW.search(text), [line for line in text.splitlines() if RAW.search(line)]
        assert not any(line.startswith("FAILED fake.txt") for line in text.splitlines())


def hostile_tree(tmp_path: Path) -> Path:
    root = tmp_path / ROOT
    write_local(root, {name: name.encode("utf-8", "surrogateescape") for name in NAMES})
    return root


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def end_of_job(stdout: str) -> dict[str, Any]:
    last = json_lines(stdout)[-1]
    assert last["MessageType"] == "EndOfJob"
    content: dict[str, Any] = json.loads(last["MessageContent"])
    return content


@pytest.fixture
def sas(emulator: RunningEmulator) -> str:
    return account_sas(emulator)


@pytest.mark.parametrize("command", ["copy", "sync"])
def test_dry_run_lines_show_every_name_escaped_on_one_line(
    command: str, emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    root = hostile_tree(tmp_path)
    flags = ["--recursive"] if command == "copy" else []
    source = str(root / "*") if command == "copy" else str(root)
    result = run(
        command, source, share_url(emulator, share, "", sas), "--from-to", "LocalFile", "--dry-run", *flags
    )
    assert result.returncode == 0, result.stderr
    assert_no_raw_controls(result.stdout, result.stderr)
    dry_runs = [line for line in result.stdout.splitlines() if line.startswith("DRYRUN: ")]
    assert len(dry_runs) == len(NAMES)
    for shown in NAMES.values():
        (line,) = [line for line in dry_runs if f"/{shown} to " in line]
        assert line.startswith(f"DRYRUN: copy {tmp_path}/{ROOT_SHOWN}/{shown} to ")
    assert read_share(share).files == {}
    assert signature(sas) not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["copy", "sync"])
def test_failed_lines_are_one_line_per_file_and_stored_names_land_exactly(
    command: str, emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    root = hostile_tree(tmp_path)
    source = str(root / "*") if command == "copy" else str(root)
    result = run(command, source, share_url(emulator, share, "", sas), "--from-to", "LocalFile")
    assert result.returncode == 1, result.stderr
    assert_no_raw_controls(result.stdout, result.stderr)
    landed = read_share(share).files
    assert set(STORABLE) <= set(landed)
    assert all(landed[name] == name.encode() for name in STORABLE)
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED: ")]
    assert len(failed) == len(NAMES) - len(landed)
    assert summary_value(result.stdout, "Number of File Transfers Failed") == str(len(failed))
    for name, shown in NAMES.items():  # each name either landed exactly or failed on one line
        lines = [line for line in failed if line.startswith(f"FAILED: {shown}: ")]
        assert len(lines) == (0 if name in landed else 1), (name, failed)


@pytest.mark.parametrize("command", ["copy", "sync"])
def test_json_output_and_the_report_keep_the_exact_names(
    command: str, emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    root = hostile_tree(tmp_path)
    report = tmp_path / "report.jsonl"
    source = str(root / "*") if command == "copy" else str(root)
    result = run(
        command, source, share_url(emulator, share, "", sas), "--from-to", "LocalFile",
        "--output-type", "json", "--report", str(report),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert_no_raw_controls(result.stdout, result.stderr, report.read_text(encoding="utf-8"))
    landed = set(read_share(share).files)
    end = end_of_job(result.stdout)
    failed = {Path(transfer["Src"]).name for transfer in end["FailedTransfers"]}
    assert failed == set(NAMES) - landed
    assert {Path(transfer["Src"]).parent for transfer in end["FailedTransfers"]} == {root}
    records = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    by_name = {Path(record["path"]).name: record for record in records if not record["is_dir"]}
    assert set(by_name) == set(NAMES)
    for name, record in by_name.items():
        assert record["result"] == ("completed" if name in landed else "failed")
        assert record["source"] == str(root / name)


def test_a_dry_run_of_a_download_in_json_gives_back_the_exact_names(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    write_share(share, {f"in/{name}": name.encode() for name in STORABLE})
    source = share_url(emulator, share, "in", sas)
    text = run("copy", source, str(tmp_path / "down"), "--from-to", "FileLocal", "--recursive", "--dry-run")
    as_json = run(
        "copy", source, str(tmp_path / "down"), "--from-to", "FileLocal", "--recursive", "--dry-run",
        "--output-type", "json",
    )  # fmt: skip
    assert (text.returncode, as_json.returncode) == (0, 0), text.stderr + as_json.stderr
    assert_no_raw_controls(text.stdout, text.stderr, as_json.stdout, as_json.stderr)
    for name in STORABLE:
        assert f"{tmp_path}/down/in/{NAMES[name]}\n" in text.stdout
    destinations = {
        json.loads(line["MessageContent"])["Destination"]
        for line in json_lines(as_json.stdout)
        if line["MessageType"] == "Dryrun"
    }
    assert {str(tmp_path / "down" / "in" / name) for name in STORABLE} <= destinations
    downloaded = run("copy", source, str(tmp_path / "down"), "--from-to", "FileLocal", "--recursive")
    assert downloaded.returncode == 0, downloaded.stderr
    assert read_local(tmp_path / "down" / "in").files == {name: name.encode() for name in STORABLE}


def test_jobs_list_and_show_escape_the_source_and_the_failed_files(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    root = hostile_tree(tmp_path)
    synced = run("sync", str(root), share_url(emulator, share, "", sas), "--from-to", "LocalFile")
    assert synced.returncode == 1
    listed = run("jobs", "list")
    (job,) = json_lines(run("jobs", "list", "--output-type", "json").stdout)
    shown = run("jobs", "show", job["job_id"])
    as_json = run("jobs", "show", job["job_id"], "--output-type", "json")
    assert (listed.returncode, shown.returncode, as_json.returncode) == (0, 0, 0)
    assert_no_raw_controls(listed.stdout, shown.stdout, as_json.stdout)
    assert job["source"] == str(root)
    assert f"{tmp_path}/{ROOT_SHOWN} -> " in listed.stdout
    assert len(listed.stdout.splitlines()) == 2  # the header and the one job
    assert f"Source:      {tmp_path}/{ROOT_SHOWN}\n" in shown.stdout
    failed_lines = shown.stdout.split("Failed files")[1].splitlines()[1:]
    landed = set(read_share(share).files)
    assert sorted(line.split(": ")[0].strip() for line in failed_lines) == sorted(
        shown_name for name, shown_name in NAMES.items() if name not in landed
    )
    document = json.loads(as_json.stdout)
    assert {Path(file["source"]).name for file in document["failed_files"]} == set(NAMES) - landed


def test_an_error_naming_a_hostile_path_is_one_escaped_line(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    missing = tmp_path / "no\x1b]0;pwned\x07\nsuch"
    result = run("copy", str(missing), share_url(emulator, share, "", sas), "--from-to", "LocalFile")
    assert result.returncode == 2
    assert_no_raw_controls(result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()
    assert line.startswith("shareferry copy: ") and r"no\x1b]0;pwned\x07" in line


def test_run_prints_failed_names_escaped_in_yaml_and_exact_in_json(
    emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    root = hostile_tree(tmp_path)
    account = emulator.account()
    documents: list[Mapping[str, Any]] = [
        {
            "apiVersion": "shareferry.dev/v1alpha1",
            "kind": "CopyJob",
            "metadata": {"name": "hostile"},
            "spec": {
                "source": {"pvc": {"claimName": "data"}},
                "destination": {"fileShare": {"name": "dest"}},
            },
        },
        {
            "apiVersion": "shareferry.dev/v1alpha1",
            "kind": "FileShare",
            "metadata": {"name": "dest"},
            "spec": {
                "account": {"endpoint": emulator.account_url()},
                "credentials": {"secretName": "creds"},
                "shareName": share.share_name,
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "stringData": {
                "AZURE_STORAGE_ACCOUNT_NAME": account.name,
                "AZURE_STORAGE_ACCOUNT_KEY": account.key,
            },
        },
    ]
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    as_yaml = run("run", "-f", str(manifest), "--pvc", f"data={root}")
    as_json = run("run", "-f", str(manifest), "--pvc", f"data={root}", "--output-type", "json")
    assert (as_yaml.returncode, as_json.returncode) == (1, 1), as_yaml.stderr + as_json.stderr
    assert_no_raw_controls(as_yaml.stdout, as_yaml.stderr, as_json.stdout, as_json.stderr)
    landed = set(read_share(share).files)
    unstorable = set(NAMES) - set(STORABLE)
    assert unstorable.isdisjoint(landed)
    for output in (yaml.safe_load(as_yaml.stdout), json.loads(as_json.stdout)):
        assert {failed["path"] for failed in output["failedFiles"]} == unstorable
    assert account.key not in as_yaml.stdout + as_yaml.stderr + as_json.stdout + as_json.stderr


def test_the_overwrite_question_on_a_terminal_shows_the_name_escaped(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    name = "rtl\u202etxt.exe"
    write_local(tmp_path, {f"src/{name}": b"new"})
    write_share(share, {name: b"old"})
    status, shown = on_terminal(
        "copy", str(tmp_path / "src" / "*"), share_url(emulator, share, "", sas),
        "--from-to", "LocalFile", "--overwrite", "prompt",
        question="Overwrite it?", answers=["n"],
    )  # fmt: skip
    assert status == 0, shown
    assert rf"{NAMES[name]} already exists at the destination. Overwrite it?" in shown
    assert "\u202e" not in shown
    assert read_share(share).files == {name: b"old"}
