"""``shareferry copy`` and ``shareferry make`` run as a user runs them: a child process
(``python -m shareferry ...``) against the Files emulator over HTTP, Azurite and local
directories, with the emulator's account SAS in the URLs (or a connection string in the
environment). Checked as a user would: exit status, bytes and MD5s at the destination, what is
printed, that no SAS signature is ever printed and that bad input is one clear line."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from azure.storage.blob import AccountSasPermissions as BlobAccountSasPermissions
from azure.storage.blob import BlobServiceClient
from azure.storage.blob import ResourceTypes as BlobResourceTypes
from azure.storage.blob import generate_account_sas as generate_blob_account_sas
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareClient,
    ShareServiceClient,
    generate_account_sas,
)

from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.support.shared_azurite import shared_azurite
from tests.support.trees import md5, read_container, read_local, read_share, write_local, write_share

KIB = 1024
#: A tree a user might copy: nested directories, a file of several 256 KiB chunks with an odd
#: tail, an empty file, names with spaces, unicode and '%'.
TREE: dict[str, bytes] = {
    "src/big.bin": os.urandom(3 * 256 * KIB + 777),
    "src/empty.txt": b"",
    "src/notes/read me.txt": b"hello from shareferry\n" * 40,
    "src/notes/ünïcødé 100%.txt": "déjà vu".encode(),
    "src/deep/er/leaf.json": b'{"leaf": true}',
}
FOLDERS = ("src", "src/notes", "src/deep", "src/deep/er")
CHUNK_FLAGS = ("--block-size-mb", "0.25")  # several chunks per big file, so ranges are exercised


def account_sas(emulator: RunningEmulator) -> str:
    account = emulator.account()
    return generate_account_sas(
        account.name,
        account.key,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, create=True, list=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def clean_environment(**extra: str) -> dict[str, str]:
    """The parent's environment without any Azure credentials or ShareFerry settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if (not key.startswith(("AZURE_", "SHAREFERRY_")) or key == "SHAREFERRY_JOB_DIR")
        and key not in ("ACCOUNT_NAME", "ACCOUNT_KEY")
    }
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def emulator_environment(emulator: RunningEmulator, job_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment whose connection string reaches ``emulator``'s Files endpoint (the
    well-known account), with its job plans in ``job_dir``."""
    account = emulator.account()
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={account.name};AccountKey={account.key};"
        f"FileEndpoint={emulator.account_url()};"
    )
    return clean_environment(
        AZURE_STORAGE_CONNECTION_STRING=connection, SHAREFERRY_JOB_DIR=str(job_dir), **extra
    )


def shareferry(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shareferry", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(env) if env is not None else clean_environment(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def shareferry_all(
    commands: Mapping[str, list[str]], *, env: Mapping[str, str] | None = None
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run several ``shareferry`` commands at once (each is mostly interpreter start-up)."""
    running = {
        name: subprocess.Popen(
            [sys.executable, "-m", "shareferry", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=dict(env) if env is not None else clean_environment(),
        )
        for name, args in commands.items()
    }
    results = {}
    for name, process in running.items():
        out, err = process.communicate(timeout=120)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return results


def signature(sas: str) -> str:
    return next(part.partition("=")[2] for part in sas.split("&") if part.startswith("sig="))


def assert_secret_free(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    printed = result.stdout + result.stderr
    for secret in secrets:
        assert secret not in printed and unquote(secret) not in printed


def summary_value(stdout: str, name: str) -> str:
    """The value of one ``Name: value`` line of the text summary."""
    prefix = f"{name}: "
    (line,) = [line for line in stdout.splitlines() if line.startswith(prefix)]
    return line[len(prefix) :]


@pytest.fixture
def sas(emulator: RunningEmulator) -> str:
    return account_sas(emulator)


def share_url(emulator: RunningEmulator, share: ShareClient, path: str, sas: str | None) -> str:
    url = f"{emulator.account_url()}/{share.share_name}" + (f"/{path}" if path else "")
    return f"{url}?{sas}" if sas else url


# ---- round trip --------------------------------------------------------------------------------


def test_upload_then_download_is_byte_identical_with_md5s(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    write_local(tmp_path, TREE, dirs=("src/empty dir",))
    up = shareferry(
        "copy", str(tmp_path / "src"), share_url(emulator, share, "", sas),
        "--recursive", "--put-md5", "--from-to", "LocalFile", *CHUNK_FLAGS,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    assert summary_value(up.stdout, "Final Job Status") == "Completed"
    assert summary_value(up.stdout, "Number of File Transfers Completed") == str(len(TREE))
    assert summary_value(up.stdout, "Total Number of Bytes Transferred") == str(sum(map(len, TREE.values())))
    uploaded = read_share(share)
    assert uploaded.files == TREE
    assert uploaded.stored_md5 == {path: md5(data) for path, data in TREE.items()}
    assert "src/empty dir" in uploaded.dirs

    report = tmp_path / "report.jsonl"
    down = shareferry(
        "copy", share_url(emulator, share, "src", sas), str(tmp_path / "down"),
        "--recursive", "--from-to", "FileLocal", "--check-md5", "FailIfDifferent", "--report", str(report),
        *CHUNK_FLAGS,
    )  # fmt: skip
    assert down.returncode == 0, down.stderr
    downloaded = read_local(tmp_path / "down")
    assert downloaded.files == TREE
    assert "src/empty dir" in downloaded.dirs
    records = [json.loads(line) for line in report.read_text().splitlines()]
    files = {record["path"]: record for record in records if not record["is_dir"]}
    assert {path.rpartition("down/")[2] for path in files} == set(TREE)
    for path, record in files.items():
        data = TREE[path.rpartition("down/")[2]]
        assert (record["result"], record["size"], record["md5"]) == ("completed", len(data), md5(data).hex())
    assert_secret_free(up, signature(sas))
    assert_secret_free(down, signature(sas))


# ---- MD5 checks on download --------------------------------------------------------------------


@dataclass
class Md5Downloads:
    """``d/*`` of one share downloaded once per --check-md5 mode, each into its own directory.
    In the share: ``d/good.txt`` intact, ``d/bad.txt`` changed after its Content-MD5 was stored
    (the stored MD5 is stale), ``d/nomd5.txt`` without a stored MD5."""

    share: ShareClient
    results: dict[str, tuple[subprocess.CompletedProcess[str], Path]]


@pytest.fixture(scope="module")
def md5_downloads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Md5Downloads]:
    tmp_path = tmp_path_factory.mktemp("md5")
    modes = ("FailIfDifferent", "LogOnly", "FailIfDifferentOrMissing")
    with RunningEmulator(EmulatorConfig()) as emulator:
        account = emulator.account()
        service = ShareServiceClient(
            emulator.account_url(), credential={"account_name": account.name, "account_key": account.key}
        )
        share = service.create_share("tampered")
        write_share(share, {"d/good.txt": b"good " * 100, "d/bad.txt": b"bad! " * 100})
        write_share(share, {"d/nomd5.txt": b"none " * 100}, with_md5=False)
        share.get_file_client("d/bad.txt").upload_range(b"EVIL", offset=10, length=4)
        sas = account_sas(emulator)
        source = share_url(emulator, share, "d/*", sas)
        results = shareferry_all(
            {
                mode: ["copy", source, str(tmp_path / mode), "--from-to", "FileLocal", "--check-md5", mode]
                for mode in modes
            }
        )
        for result in results.values():
            assert_secret_free(result, signature(sas))
        yield Md5Downloads(share, {mode: (results[mode], tmp_path / mode) for mode in modes})


def test_a_corrupted_file_fails_the_download_and_leaves_nothing_behind(
    md5_downloads: Md5Downloads,
) -> None:
    result, target = md5_downloads.results["FailIfDifferent"]
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED: ")]
    assert len(failed) == 1 and "bad.txt" in failed[0] and "MD5 mismatch" in failed[0]
    assert summary_value(result.stdout, "Number of File Transfers Failed") == "1"
    assert summary_value(result.stdout, "Final Job Status") == "CompletedWithErrors"
    # Not even a partial or temporary file: only the two good files are there.
    assert set(read_local(target).files) == {"good.txt", "nomd5.txt"}


def test_log_only_keeps_the_file_and_warns(
    md5_downloads: Md5Downloads,
) -> None:
    result, target = md5_downloads.results["LogOnly"]
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING: ")]
    assert len(warnings) == 1 and "MD5 mismatch" in warnings[0] and "bad.txt" in warnings[0]
    local = read_local(target)
    assert set(local.files) == {"good.txt", "bad.txt", "nomd5.txt"}
    assert (
        local.files["bad.txt"] == md5_downloads.share.get_file_client("d/bad.txt").download_file().readall()
    )


def test_fail_if_different_or_missing_also_fails_files_without_md5(
    md5_downloads: Md5Downloads,
) -> None:
    result, target = md5_downloads.results["FailIfDifferentOrMissing"]
    assert result.returncode == 1
    failed = sorted(line for line in result.stdout.splitlines() if line.startswith("FAILED: "))
    assert len(failed) == 2
    assert "bad.txt" in failed[0] and "nomd5.txt" in failed[1] and "no stored MD5" in failed[1]
    assert set(read_local(target).files) == {"good.txt"}


# ---- overwrite, dry run, JSON ------------------------------------------------------------------


def test_overwrite_false_skips_existing_files_and_reports_them(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    write_local(tmp_path, {"src/a.txt": b"new a", "src/b.txt": b"new b"})
    write_share(share, {"a.txt": b"old a"})
    report = tmp_path / "report.jsonl"
    result = shareferry(
        "copy", str(tmp_path / "src" / "*"), share_url(emulator, share, "", sas),
        "--from-to", "LocalFile", "--overwrite=false", "--report", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert summary_value(result.stdout, "Number of File Transfers Skipped") == "1"
    assert summary_value(result.stdout, "Number of File Transfers Completed") == "1"
    assert summary_value(result.stdout, "Final Job Status") == "CompletedWithSkipped"
    assert read_share(share).files == {"a.txt": b"old a", "b.txt": b"new b"}
    records = {record["path"]: record for record in map(json.loads, report.read_text().splitlines())}
    assert records["a.txt"]["result"] == "skipped" and "overwrite" in records["a.txt"]["reason"]
    assert records["b.txt"]["result"] == "completed"
    assert records["b.txt"]["source"] == str(tmp_path / "src" / "b.txt")
    assert records["b.txt"]["destination"].endswith("/share1/b.txt")
    assert "sig=" not in report.read_text()


def test_dry_run_prints_what_it_would_copy_and_touches_nothing(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    write_local(tmp_path, TREE)
    destination = share_url(emulator, share, "", sas)
    result = shareferry(
        "copy", str(tmp_path / "src"), destination, "--recursive", "--from-to", "LocalFile", "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    base = share_url(emulator, share, "", None)
    would_copy = [*TREE, *FOLDERS]  # AzCopy lists folders too where both sides have them
    assert {line for line in result.stdout.splitlines() if line.startswith("DRYRUN: ")} == {
        f"DRYRUN: copy {tmp_path / path} to {base}/{quote(path)}" for path in would_copy
    }
    assert summary_value(result.stdout, "Number of File Transfers Skipped") == str(len(TREE))
    assert read_share(share).files == {} and read_share(share).dirs == set()
    assert_secret_free(result, signature(sas))


def test_json_output_is_azcopys_lines_ending_with_end_of_job(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    write_local(tmp_path, TREE)
    result = shareferry(
        "copy", str(tmp_path / "src"), share_url(emulator, share, "", sas),
        "--recursive", "--from-to", "LocalFile", "--output-type", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert messages[0]["MessageType"] == "Init"
    assert messages[-1]["MessageType"] == "EndOfJob"
    assert {m["MessageType"] for m in messages} <= {"Init", "Progress", "Info", "EndOfJob"}
    job_id = json.loads(messages[0]["MessageContent"])["JobID"]
    end = json.loads(messages[-1]["MessageContent"])
    assert end["JobID"] == job_id and end["JobStatus"] == "Completed" and end["ErrorMsg"] == ""
    assert end["FileTransfers"] == str(len(TREE))
    assert end["FolderPropertyTransfers"] == str(len(FOLDERS))
    assert end["TransfersCompleted"] == str(len(TREE) + len(FOLDERS))
    assert end["TransfersFailed"] == "0" and end["TransfersSkipped"] == "0"
    assert end["TotalBytesTransferred"] == str(sum(map(len, TREE.values())))
    assert end["PercentComplete"] == "100"
    assert read_share(share).files == TREE
    assert_secret_free(result, signature(sas))


# ---- on a terminal ------------------------------------------------------------------------------


def on_terminal(
    *args: str, question: str = "", answers: Sequence[str] = (), timeout: float = 60
) -> tuple[int, str]:
    """Run ``shareferry`` with a pseudo-terminal as stdin, stdout and stderr (as in a shell),
    typing the next of ``answers`` each time ``question`` shows up. Returns the exit status and
    everything the terminal showed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "shareferry", *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=clean_environment(),
    )
    os.close(terminal)
    shown, answered = b"", 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.1)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the child has closed the terminal
                break
            shown += chunk
            asked = shown.decode(errors="replace").count(question) if question else 0
            while answered < min(asked, len(answers)):
                os.write(controller, answers[answered].encode() + b"\n")
                answered += 1
        status = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    return status, shown.decode(errors="replace")


def test_on_a_terminal_a_live_line_is_redrawn_then_the_summary(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    size = 3 * 1000 * 1000  # three times the cap's second of burst: about two seconds
    write_local(tmp_path, {"src/slow.bin": os.urandom(size)})
    started = time.monotonic()
    status, shown = on_terminal(
        "copy", str(tmp_path / "src" / "slow.bin"), share_url(emulator, share, "", sas),
        "--from-to", "LocalFile", "--cap-mbps", "8",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert status == 0, shown
    redraws = re.findall(
        r"\r(\d+\.\d) %, (\d+) Done, 0 Failed, 0 Skipped, 1\+? Total, [^\r\n]*MiB/s, ETA", shown
    )
    assert len(redraws) >= 2, shown  # it moved while the copy ran
    assert len(redraws) <= 2 * elapsed + 2  # never more than twice a second
    assert redraws[-1] == ("100.0", "1")
    assert shown.index("\r") < shown.index("Final Job Status: Completed")
    assert read_share(share).files == {"slow.bin": (tmp_path / "src" / "slow.bin").read_bytes()}
    assert signature(sas) not in shown


def test_overwrite_prompt_asks_on_the_terminal(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    write_local(tmp_path, {"src/a.txt": b"new a", "src/b.txt": b"new b"})
    write_share(share, {"a.txt": b"old a", "b.txt": b"old b"})
    status, shown = on_terminal(
        "copy", str(tmp_path / "src" / "*"), share_url(emulator, share, "", sas),
        "--from-to", "LocalFile", "--overwrite", "prompt",
        question="Overwrite it?",
        answers=["l"],  # "no" for this one and all others
    )  # fmt: skip
    assert status == 0, shown
    assert shown.count("already exists at the destination. Overwrite it?") == 1
    assert "Final Job Status: CompletedWithSkipped" in shown
    assert read_share(share).files == {"a.txt": b"old a", "b.txt": b"old b"}


# ---- credentials from the environment ----------------------------------------------------------


def test_a_connection_string_instead_of_a_sas(
    emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    write_local(tmp_path, {"one.txt": b"via connection string"})
    env = clean_environment(AZURE_STORAGE_CONNECTION_STRING=emulator.connection_string())
    result = shareferry(
        "copy",
        str(tmp_path / "one.txt"),
        share_url(emulator, share, "", None),
        "--from-to",
        "LocalFile",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert read_share(share).files == {"one.txt": b"via connection string"}
    assert_secret_free(result, emulator.account().key)


# ---- bad input -----------------------------------------------------------------------------------


BAD_INPUT = {
    # case: (exit status, what the one line says)
    "malformed URL": (2, "the URL has an invalid port"),
    "unknown --from-to": (2, "--from-to"),
    "invalid --include-after": (2, "--include-after 'last tuesday' is not an ISO 8601 date/time"),
    "invalid regex": (2, "--include-regex '[unclosed' is not a valid regular expression"),
    "prompt without a terminal": (2, "--overwrite=prompt needs a terminal"),
    "unwritable --report": (2, "--report "),
    "missing credentials": (1, "no credential for"),
}


@dataclass
class BadInputRun:
    results: dict[str, subprocess.CompletedProcess[str]]
    sas: str
    share: ShareClient


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BadInputRun]:
    """Every bad-input case run at once against one emulator."""
    tmp_path = tmp_path_factory.mktemp("bad-input")
    write_local(tmp_path, {"src/a.txt": b"a"})
    with RunningEmulator(EmulatorConfig()) as emulator:
        account = emulator.account()
        service = ShareServiceClient(
            emulator.account_url(), credential={"account_name": account.name, "account_key": account.key}
        )
        share = service.create_share("share1")
        sas = account_sas(emulator)
        source = str(tmp_path / "src")
        good = share_url(emulator, share, "", sas)
        commands = {
            "malformed URL": [
                source,
                f"http://127.0.0.1:99999/devstoreaccount1/share1?{sas}",
                "--from-to",
                "LocalFile",
            ],
            "unknown --from-to": [source, good, "--from-to", "LocalS3"],
            "invalid --include-after": [
                source,
                good,
                "--from-to",
                "LocalFile",
                "--include-after",
                "last tuesday",
            ],
            "invalid regex": [source, good, "--from-to", "LocalFile", "--include-regex", "[unclosed"],
            "prompt without a terminal": [source, good, "--from-to", "LocalFile", "--overwrite", "prompt"],
            "unwritable --report": [
                source,
                good,
                "--from-to",
                "LocalFile",
                "--report",
                str(tmp_path / "no" / "r.jsonl"),
            ],
            "missing credentials": [source, share_url(emulator, share, "", None), "--from-to", "LocalFile"],
        }
        results = shareferry_all({case: ["copy", *args, "--recursive"] for case, args in commands.items()})
        yield BadInputRun(results, sas, share)


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_clear_line(bad_input_runs: BadInputRun, case: str) -> None:
    status, message = BAD_INPUT[case]
    result = bad_input_runs.results[case]
    assert result.returncode == status
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("shareferry copy: ") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert_secret_free(result, signature(bad_input_runs.sas))
    assert read_share(bad_input_runs.share).files == {}


# ---- make ----------------------------------------------------------------------------------------


def test_make_creates_a_share_with_its_quota_and_refuses_an_existing_one(
    emulator: RunningEmulator, service: ShareServiceClient, sas: str
) -> None:
    url = f"{emulator.account_url()}/madeshare?{sas}"
    made = shareferry("make", url, "--kind", "file", "--quota-gb", "7")
    assert made.returncode == 0, made.stderr
    assert made.stdout == "Successfully created the resource.\n"
    assert service.get_share_client("madeshare").get_share_properties().quota == 7
    again = shareferry("make", url, "--kind", "file")
    assert again.returncode == 1
    assert again.stderr == "shareferry make: the file share already exists\n"
    assert_secret_free(made, signature(sas))
    assert_secret_free(again, signature(sas))


# ---- Azurite -------------------------------------------------------------------------------------


@pytest.mark.azurite
def test_blob_make_upload_and_server_side_copy_to_files(
    emulator: RunningEmulator, share: ShareClient, sas: str, tmp_path: Path
) -> None:
    azurite = shared_azurite()
    blob_sas = generate_blob_account_sas(
        azurite.account,
        azurite.key,
        BlobResourceTypes(service=True, container=True, object=True),
        BlobAccountSasPermissions(read=True, write=True, create=True, list=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    container = f"cli{os.urandom(4).hex()}"
    container_url = f"{azurite.endpoint}/{container}"
    made = shareferry("make", f"{container_url}?{blob_sas}", "--kind", "blob")
    assert made.returncode == 0, made.stderr
    write_local(tmp_path, TREE)
    up = shareferry(
        "copy", str(tmp_path / "src"), f"{container_url}?{blob_sas}",
        "--recursive", "--put-md5", "--from-to", "LocalBlob",
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    blobs = read_container(
        BlobServiceClient(azurite.endpoint, azurite.credential).get_container_client(container)
    )
    assert blobs.files == TREE
    assert blobs.stored_md5 == {path: md5(data) for path, data in TREE.items()}
    across = shareferry(
        "copy", f"{container_url}/src?{blob_sas}", share_url(emulator, share, "", sas),
        "--recursive", "--from-to", "BlobFile",
    )  # fmt: skip
    assert across.returncode == 0, across.stderr
    assert read_share(share).files == TREE
    for result in (made, up, across):
        assert_secret_free(result, signature(sas), signature(blob_sas))


def test_a_files_only_copy_never_loads_the_blob_sdk(
    emulator: RunningEmulator, service: ShareServiceClient, sas: str, tmp_path: Path
) -> None:
    # The Blob SDK is about 12 MiB of a Files job's memory: it is imported only when needed.
    share = service.create_share("filesonly")
    write_share(share, {"a.txt": b"alpha", "d/b.txt": b"beta"})
    process = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "shareferry",
            "copy",
            share_url(emulator, share, "", sas),
            str(tmp_path / "out"),
            "--from-to",
            "FileLocal",
            "--recursive",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=clean_environment(),
        stdin=subprocess.DEVNULL,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert read_local(tmp_path / "out").files == {"filesonly/a.txt": b"alpha", "filesonly/d/b.txt": b"beta"}
    imported = [
        line.rpartition("|")[2].strip() for line in process.stderr.splitlines() if "import time:" in line
    ]
    assert "azure.storage.fileshare" in imported
    assert not [name for name in imported if name.startswith("azure.storage.blob")]
