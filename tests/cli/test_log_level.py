"""``--log-level`` and the log file of each job, as a user meets them: ``shareferry copy|sync|jobs``
run as child processes against the Files emulator (the lean request path and the SDK's) and
Azurite (the Blob SDK's), the log file read back as a user would read or grep it.

Checked: one line per request at INFO (method, redacted URL, status, request id, duration), only
retries, failed and slow answers at WARNING, only failed files at ERROR, no file at NONE; where the
file is (``SHAREFERRY_LOG_LOCATION``, else beside the plans), that it is private, that a resumed
job appends to it, that ``jobs show`` names it and ``jobs clean`` removes it; and that no SAS
signature, account key or ``Authorization`` value ever reaches it, a 403 included."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from azure.storage.blob import AccountSasPermissions as BlobAccountSasPermissions
from azure.storage.blob import BlobServiceClient
from azure.storage.blob import ResourceTypes as BlobResourceTypes
from azure.storage.blob import generate_account_sas as generate_blob_account_sas
from azure.storage.fileshare import AccountSasPermissions, ResourceTypes, ShareClient, generate_account_sas

from shareferry.emulator import RunningEmulator
from tests.cli.test_copy_cli import (
    account_sas,
    assert_secret_free,
    clean_environment,
    emulator_environment,
    share_url,
    shareferry,
    signature,
)
from tests.support.emulator_admin import add_fault, counters, reset_counters
from tests.support.shared_azurite import shared_azurite
from tests.support.trees import read_container, read_share, write_local

TREE = {"src/a.txt": b"alpha" * 100, "src/sub/b.txt": b"beta", "src/sub/c.bin": os.urandom(3000)}
#: A request line: time, level, method, URL, status, request id, duration.
REQUEST = re.compile(
    r"^\S+Z (INFO|WARNING) +(GET|PUT|HEAD|DELETE|POST) (http://\S+) (\d{3}) request-id=(\S+) (\d+) ms"
)
LINE_START = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) ")
OTHER_KEY = base64.b64encode(b"not the account's key, but one of the right length!!").decode()


@pytest.fixture
def sas(emulator: RunningEmulator) -> str:
    return account_sas(emulator)


def log_of(directory: Path, job_id: str) -> list[str]:
    """The lines of a job's log file, each checked to be one whole line of the log."""
    lines = (directory / f"{job_id}.log").read_text(encoding="utf-8").splitlines()
    assert lines
    for line in lines:
        assert LINE_START.match(line), line
    return lines


def job_id_of(result: subprocess.CompletedProcess[str]) -> str:
    (job_id,) = re.findall(r"^Job (\S+) summary$", result.stdout, flags=re.MULTILINE)
    return job_id


def upload(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path, *flags: str, **env: str
) -> subprocess.CompletedProcess[str]:
    write_local(tmp_path, TREE)
    return shareferry(
        "copy", str(tmp_path / "src"), share_url(emulator, share, "", sas),
        "--recursive", "--from-to", "LocalFile", *flags,
        env=clean_environment(**env),
    )  # fmt: skip


def total_requests(emulator: RunningEmulator) -> int:
    return sum(op["total"] for op in counters(emulator)["operations"].values())


def assert_no_secret(lines: list[str], *secrets: str) -> None:
    text = "\n".join(lines)
    for secret in secrets:
        assert secret not in text and unquote(secret) not in text
    assert all(value == "REDACTED" for value in re.findall(r"sig=([^&\s']*)", text))
    assert "Authorization" not in text and "SharedKey " not in text and "Bearer" not in text


# ---- levels ----------------------------------------------------------------------------------


def test_info_by_default_logs_each_request_once_beside_the_plans(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path, job_dir: Path
) -> None:
    reset_counters(emulator)
    result = upload(emulator, share, sas, tmp_path, "--output-type", "json")
    assert result.returncode == 0, result.stderr
    sent = total_requests(emulator)
    assert read_share(share).files == TREE
    init = json.loads(json.loads(result.stdout.splitlines()[0])["MessageContent"])
    job_id = init["JobID"]
    log_file = job_dir / f"{job_id}.log"
    assert init["LogFileLocation"] == str(log_file)
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    lines = log_of(job_dir, job_id)
    started, what, *requests, ended = lines
    assert re.search(rf"INFO +job {job_id} run 1 started: shareferry copy .*sig=REDACTED", started)
    assert what.endswith(f"copy {tmp_path / 'src'} -> {emulator.account_url()}/share1 (log level INFO)")
    assert re.search(rf"INFO +job {job_id} ended: Completed; files completed 3, failed 0", ended)
    assert len(requests) == sent  # one line per request the service answered, each of them
    ids = set()
    for line in requests:
        match = REQUEST.match(line)
        assert match, line
        level, _method, url, status, request_id, _ms = match.groups()
        assert (level, status[0]) == ("INFO", "2")
        assert url.startswith(f"{emulator.account_url()}/share1/src") and "sig=REDACTED" in url
        ids.add(request_id)
    assert len(ids) == len(requests)  # the service's own id of each request
    assert any(" PUT " in line and "comp=range" in line for line in requests)
    assert_no_secret(lines, signature(sas))


def test_debug_adds_each_file_and_the_client_request_id(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path, job_dir: Path
) -> None:
    result = upload(emulator, share, sas, tmp_path, "--log-level", "debug")  # any letter case
    assert result.returncode == 0, result.stderr
    lines = log_of(job_dir, job_id_of(result))
    done = sorted(
        line.split(" completed file ")[1] for line in lines if " DEBUG " in line and " file " in line
    )
    assert done == [f"{emulator.account_url()}/share1/{path}" for path in sorted(TREE)]
    assert all("client-request-id=" in line for line in lines if REQUEST.match(line))


def test_warning_logs_retries_and_slow_answers_only(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path, job_dir: Path
) -> None:
    add_fault(emulator, "busy:CreateFile:count=1,retry_after=0")
    add_fault(emulator, "latency:PutRange:count=1,latency_ms=1100")
    result = upload(emulator, share, sas, tmp_path, "--log-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert read_share(share).files == TREE
    lines = log_of(job_dir, job_id_of(result))
    assert all(" WARNING " in line for line in lines), lines
    busy = [line for line in lines if REQUEST.match(line) and " 503 " in line]
    assert len(busy) == 1 and "?sig=" not in busy[0]
    (retry,) = [line for line in lines if " retry " in line]
    assert re.search(r"WARNING +retry 1 of \d+ in \d+\.\d\d s after: .*ServerBusy.*503", retry), retry
    (slow,) = [line for line in lines if "slow" in line]
    assert "comp=range" in slow and slow.endswith("ms (slow: over 1 s)")
    assert len(lines) == 3
    assert_no_secret(lines, signature(sas))


def test_error_logs_only_the_failed_files(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path, job_dir: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "line\nbreak.txt").write_bytes(b"Azure Files refuses this name")
    result = upload(emulator, share, sas, tmp_path, "--log-level", "ERROR")
    assert result.returncode == 1
    (line,) = log_of(job_dir, job_id_of(result))
    assert re.fullmatch(
        r"\S+Z ERROR +failed file http://\S+/share1/src/line%0Abreak\.txt: .*InvalidResourceName \(HTTP 400\)",
        line,
    ), line


def test_sync_logs_its_requests_and_its_end(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path, job_dir: Path
) -> None:
    write_local(tmp_path, TREE)
    result = shareferry(
        "sync", str(tmp_path / "src"), share_url(emulator, share, "", sas), "--from-to", "LocalFile",
        "--log-level", "Info",
        env=clean_environment(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = log_of(job_dir, job_id_of(result))
    assert "started: shareferry sync " in lines[0] and "sig=REDACTED" in lines[0]
    assert " ended: Completed; files completed 3," in lines[-1]
    assert any(REQUEST.match(line) and "comp=list" in line for line in lines)  # the destination's listing
    assert_no_secret(lines, signature(sas))


@pytest.mark.parametrize("flags", [("--log-level", "NONE"), ("--dry-run",)], ids=["none", "dry-run"])
def test_none_and_a_dry_run_write_no_log_file(
    emulator: RunningEmulator,
    share: ShareClient,
    sas: str,
    tmp_path: Path,
    job_dir: Path,
    flags: tuple[str, ...],
) -> None:
    result = upload(emulator, share, sas, tmp_path, *flags)
    assert result.returncode == 0, result.stderr
    assert not list(job_dir.glob("*.log"))


def test_a_log_location_that_cannot_be_written_warns_once_and_the_copy_goes_on(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path, job_dir: Path
) -> None:
    """A log is a record, not the job: a location that is a file is named in one warning, the
    files still arrive, and nothing is written where the log would have gone."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("keep me")
    result = upload(emulator, share, sas, tmp_path, SHAREFERRY_LOG_LOCATION=str(blocker))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "cannot be written" in line]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith(f"WARNING: the job log {blocker}/"), warnings
    assert "warning: " not in warnings[0].lower().removeprefix("warning: ")
    assert blocker.read_text() == "keep me"
    assert read_share(share).files == TREE
    assert not list(job_dir.glob("*.log"))


def test_control_characters_in_names_are_escaped(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path, job_dir: Path
) -> None:
    source = tmp_path / "src\x1b]0;owned\x07\nFAILED: forged"
    source.mkdir()
    (source / "a.txt").write_bytes(b"a")
    result = shareferry(
        "copy", f"{source}/*", share_url(emulator, share, "", sas), "--recursive", "--from-to", "LocalFile",
        env=clean_environment(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = (job_dir / f"{job_id_of(result)}.log").read_text(encoding="utf-8")
    assert "\x1b" not in text and "\x07" not in text
    assert "src\\x1b]0;owned\\x07\\nFAILED: forged" in text
    log_of(job_dir, job_id_of(result))  # still one whole line per entry


# ---- where the file is, and the jobs commands ---------------------------------------------------


def test_log_location_resume_appends_show_names_it_clean_removes_it(
    emulator: RunningEmulator, share: ShareClient, tmp_path: Path, job_dir: Path
) -> None:
    logs = tmp_path / "logs"
    env = emulator_environment(emulator, job_dir, SHAREFERRY_LOG_LOCATION=str(logs))
    write_local(tmp_path, TREE)
    target = share_url(emulator, share, "", None)
    first = shareferry(
        "copy", str(tmp_path / "src"), target, "--recursive", "--from-to", "LocalFile", env=env
    )
    assert first.returncode == 0, first.stderr
    job_id = job_id_of(first)
    assert not list(job_dir.glob("*.log"))
    again = shareferry("jobs", "resume", job_id, "--log-level", "info", env=env)
    assert again.returncode == 0, again.stderr
    lines = log_of(logs, job_id)
    assert [
        re.sub(r"^.* (run \d) started: (\S+ \S+ \S+).*$", r"\1 \2", line)
        for line in lines
        if " started: " in line
    ] == [
        "run 1 shareferry copy " + str(tmp_path / "src"),
        "run 2 shareferry jobs resume",
    ]
    account = emulator.account()
    assert_no_secret(lines, account.key)

    shown = shareferry("jobs", "show", job_id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert re.search(rf"^Log file: +{re.escape(str(logs / (job_id + '.log')))}$", shown.stdout, re.MULTILINE)
    as_json = json.loads(shareferry("jobs", "show", job_id, "--output-type", "json", env=env).stdout)
    assert as_json["log_file"] == str(logs / f"{job_id}.log")

    cleaned = shareferry("jobs", "clean", job_id, env=env)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (logs / f"{job_id}.log").exists()
    assert shareferry("jobs", "show", job_id, env=env).returncode == 1  # the plan went with it


# ---- secrets ---------------------------------------------------------------------------------


def wrong_sas(emulator: RunningEmulator) -> str:
    """An account SAS of the emulator's account signed with another key: the service answers 403."""
    return generate_account_sas(
        emulator.account().name,
        OTHER_KEY,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, create=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


@pytest.mark.parametrize("credential", ["wrong-sas", "wrong-key"])
def test_a_403_is_logged_and_no_secret_is(
    emulator: RunningEmulator, share: ShareClient, tmp_path: Path, job_dir: Path, credential: str
) -> None:
    write_local(tmp_path, TREE)
    if credential == "wrong-sas":
        sas = wrong_sas(emulator)
        secrets = [signature(sas)]
        env = clean_environment()
        target = share_url(emulator, share, "", sas)
    else:
        account = emulator.account()
        env = clean_environment(
            AZURE_STORAGE_CONNECTION_STRING=f"DefaultEndpointsProtocol=http;AccountName={account.name};"
            f"AccountKey={OTHER_KEY};FileEndpoint={emulator.account_url()};"
        )
        secrets = [OTHER_KEY, account.key]
        target = share_url(emulator, share, "", None)
    result = shareferry(
        "copy", str(tmp_path / "src"), target, "--recursive", "--from-to", "LocalFile", "--output-type", "json",
        env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert_secret_free(result, *secrets)
    job_id = json.loads(json.loads(result.stdout.splitlines()[0])["MessageContent"])["JobID"]
    lines = log_of(job_dir, job_id)
    refused = [line for line in lines if (match := REQUEST.match(line)) and match.group(4) == "403"]
    assert refused, lines
    assert all(REQUEST.match(line).group(5) != "-" for line in refused)  # type: ignore[union-attr]
    assert any(" ERROR " in line and "403" in line for line in lines)
    assert_no_secret(lines, *secrets)


# ---- Blob: the SDK's request path ----------------------------------------------------------------


@pytest.mark.azurite
def test_a_blob_upload_logs_the_sdk_requests(tmp_path: Path, job_dir: Path) -> None:
    azurite = shared_azurite()
    blob_sas = generate_blob_account_sas(
        azurite.account,
        azurite.key,
        BlobResourceTypes(service=True, container=True, object=True),
        BlobAccountSasPermissions(read=True, write=True, create=True, list=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    container = f"log{os.urandom(4).hex()}"
    client = BlobServiceClient(azurite.endpoint, azurite.credential).get_container_client(container)
    client.create_container()
    write_local(tmp_path, TREE)
    result = shareferry(
        "copy", str(tmp_path / "src"), f"{azurite.endpoint}/{container}?{blob_sas}",
        "--recursive", "--from-to", "LocalBlob", "--put-md5",
        env=clean_environment(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert read_container(client).files == TREE
    lines = log_of(job_dir, job_id_of(result))
    uploads = {
        match.group(3).split("?")[0]: match.group(4)
        for line in lines
        if (match := REQUEST.match(line)) and match.group(2) == "PUT"
    }
    assert uploads == {f"{azurite.endpoint}/{container}/{path}": "201" for path in TREE}
    assert all(REQUEST.match(line).group(5) != "-" for line in lines if REQUEST.match(line))  # type: ignore[union-attr]
    assert_no_secret(lines, signature(blob_sas), azurite.key)


# ---- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["copy", "sync", "jobs resume"])
def test_a_bad_level_is_one_line_naming_the_accepted_ones(command: str, tmp_path: Path) -> None:
    args = ["0123456789abcdef"] if command == "jobs resume" else [str(tmp_path), str(tmp_path / "out")]
    result = shareferry(*command.split(), *args, "--log-level", "verbose")
    assert result.returncode == 2
    assert result.stderr == (
        f"shareferry {command}: --log-level takes INFO, WARNING, ERROR, NONE or DEBUG, not 'verbose'\n"
    )
