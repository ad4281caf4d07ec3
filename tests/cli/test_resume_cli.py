"""``shareferry jobs resume`` with SAS tokens: a plan never keeps one, so a job started with a SAS
in its URL is resumed by giving the token again (``--destination-sas``), as with AzCopy.

The first run uses a SAS that may read but not write, so the job stops on its first write with
a credential error and leaves a plan behind; the resume brings a SAS that may write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.storage.fileshare import AccountSasPermissions, ResourceTypes, ShareClient, generate_account_sas

from shareferry.core.jobplan import list_jobs
from shareferry.emulator import RunningEmulator
from tests.cli.test_copy_cli import (
    assert_secret_free,
    clean_environment,
    shareferry,
    signature,
    summary_value,
)
from tests.support.trees import read_share, write_local


def _sas(emulator: RunningEmulator, *, write: bool) -> str:
    account = emulator.account()
    return generate_account_sas(
        account.name,
        account.key,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, list=True, write=write, create=write),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def test_a_job_started_with_a_sas_resumes_with_the_sas_given_again(
    emulator: RunningEmulator, share: ShareClient, tmp_path: Path, job_dir: Path
) -> None:
    files = {f"src/f{i}.txt": f"file {i}".encode() for i in range(5)}
    write_local(tmp_path, files)
    read_only, writable = _sas(emulator, write=False), _sas(emulator, write=True)
    url = f"{emulator.account_url()}/{share.share_name}"
    env = clean_environment()

    first = shareferry(
        "copy", str(tmp_path / "src"), f"{url}?{read_only}", "--from-to", "LocalFile", "--recursive", env=env
    )
    assert first.returncode == 1
    (job,) = list_jobs(job_dir)
    assert job.status == "Failed" and "?" not in job.destination
    plan_bytes = (job_dir / job.job_id / "plan.db").read_bytes()
    assert signature(read_only).encode() not in plan_bytes

    without = shareferry("jobs", "resume", job.job_id[:8], env=env)
    assert without.returncode == 1
    assert "credential" in without.stderr.lower() or "authoriz" in without.stderr.lower(), without.stderr

    resumed = shareferry("jobs", "resume", job.job_id[:8], "--destination-sas", writable, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert summary_value(resumed.stdout, "Final Job Status") == "Completed"
    assert read_share(share).files == files
    shown = shareferry("jobs", "show", job.job_id, env=env)
    assert shown.returncode == 0 and "Runs:        3" in shown.stdout
    for result in (first, without, resumed, shown):
        assert_secret_free(result, signature(read_only), signature(writable))


def test_resume_refuses_a_token_that_is_not_a_sas(tmp_path: Path) -> None:
    result = shareferry("jobs", "resume", "0123456789abcdef", "--source-sas", "hello")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "shareferry jobs resume: --source-sas is not a SAS token (it has no signature)"
    )
