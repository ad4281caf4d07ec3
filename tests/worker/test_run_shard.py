"""``run_shard`` against the Files emulator over HTTP and local directories laid out as a worker
pod sees them (each PVC under the volume root): the bytes and MD5s that land, the reports and
the MD5 results, shards that split the work without overlap, a retried shard that sends only
what its earlier attempt did not finish, and the exit codes of a bad spec and a refused key."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from azure.storage.fileshare import ShareClient

from shareferry.core.jobowner import OwnerLock
from shareferry.core.jobplan import JobPlan
from shareferry.emulator import RunningEmulator
from shareferry.worker.md5_results import read_results
from shareferry.worker.runner import ShardOutcome, default_job_id, run_shard
from tests.support.emulator_admin import reset_counters, writes_per_file
from tests.support.trees import md5, read_local, read_share, write_local, write_share

KIB = 1024
TREE: dict[str, bytes] = {
    "big.bin": os.urandom(3 * 256 * KIB + 777),
    "empty.txt": b"",
    "notes/read me.txt": b"hello from a worker\n" * 40,
    "notes/ünïcødé 100%.txt": "déjà vu".encode(),
    "deep/er/leaf.json": b'{"leaf": true}',
    "skip.tmp": b"excluded by the CopyJob",
}
COPIED = {path: data for path, data in TREE.items() if not path.endswith(".tmp")}


class Sink:
    """Records every report; keeps the results ConfigMap as the API would (by its name)."""

    def __init__(self) -> None:
        self.reports: list[tuple[dict[str, Any], bool]] = []
        self.configmaps: list[dict[str, Any]] = []

    async def send(self, report: Mapping[str, Any], *, final: bool) -> None:
        self.reports.append((dict(report), final))

    async def store_results(self, configmap: Mapping[str, Any]) -> str | None:
        self.configmaps.append(dict(configmap))
        return str(configmap["metadata"]["name"])


def fileshare(emulator: RunningEmulator, share: str) -> dict[str, Any]:
    return {
        "metadata": {"name": share},
        "spec": {
            "account": {"endpoint": emulator.account_url()},
            "credentials": {"secretName": "k"},
            "shareName": share,
        },
    }


def upload_job(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shareferry.dev/v1alpha1",
        "kind": "CopyJob",
        "metadata": {"name": "upload", "namespace": "team", "uid": "0b6f1c3e-uid"},
        "spec": {
            "source": {"pvc": {"claimName": "data", "path": "exports"}},
            "destination": {"fileShare": {"name": "share1", "path": "incoming"}},
            "options": {"putMd5": True, "excludePattern": ["*.tmp"], "blockSizeMb": 0.25},
            **spec,
        },
    }


def pod_environ(emulator: RunningEmulator, volume_root: Path, *, key: str | None = None) -> dict[str, str]:
    account = emulator.account()
    return {
        "SHAREFERRY_JOB_DIR": os.environ["SHAREFERRY_JOB_DIR"],
        "SHAREFERRY_VOLUME_ROOT": str(volume_root),
        "SHAREFERRY_DESTINATION_AZURE_STORAGE_ACCOUNT_NAME": account.name,
        "SHAREFERRY_DESTINATION_AZURE_STORAGE_ACCOUNT_KEY": key or account.key,
    }


@pytest.fixture
def volume_root(tmp_path: Path) -> Path:
    """The worker pod's volumes: the source claim mounted at <root>/source."""
    write_local(tmp_path / "volumes" / "source" / "exports", TREE)
    return tmp_path / "volumes"


async def shard(
    copyjob: Mapping[str, Any],
    emulator: RunningEmulator,
    environ: Mapping[str, str],
    *,
    index: int = 0,
    count: int = 1,
) -> tuple[ShardOutcome, Sink]:
    sink = Sink()
    outcome = await run_shard(
        copyjob,
        fileshares={"share1": fileshare(emulator, "share1")},
        environ=environ,
        shard_index=index,
        shard_count=count,
        sinks=[sink],
    )
    return outcome, sink


async def test_an_upload_lands_byte_for_byte_with_md5s_and_reports_it(
    emulator: RunningEmulator, share: ShareClient, volume_root: Path
) -> None:
    outcome, sink = await shard(upload_job(), emulator, pod_environ(emulator, volume_root))
    assert outcome.exit_code == 0, outcome.report
    landed = read_share(share, "incoming")
    assert landed.files == {f"incoming/{path}": data for path, data in COPIED.items()}
    assert landed.stored_md5 == {f"incoming/{path}": md5(data) for path, data in COPIED.items()}

    report = outcome.report
    assert (report["state"], report["jobStatus"], report["reason"]) == ("Succeeded", "Completed", None)
    assert report["filesDone"] == report["filesTotal"] == len(COPIED)
    assert report["bytesTransferred"] == report["bytesTotal"] == sum(map(len, COPIED.values()))
    assert report["md5"] == {
        "configMap": "upload-md5-0",
        "files": len(COPIED),
        "verified": len(COPIED),
        "mismatched": 0,
        "missing": 0,
        "truncated": False,
        "note": None,
    }
    assert sink.reports[0][0]["state"] == "Running" and sink.reports[-1] == (report, True)

    (configmap,) = sink.configmaps
    assert configmap["metadata"]["ownerReferences"][0]["uid"] == "0b6f1c3e-uid"
    lines = {line["path"]: line for line in read_results(configmap)}
    assert lines == {
        f"incoming/{path}": {
            "path": f"incoming/{path}",
            "size": len(data),
            "md5": md5(data).hex(),
            "result": "completed",
        }
        for path, data in COPIED.items()
    }


async def test_three_shards_cover_every_file_exactly_once(
    emulator: RunningEmulator, share: ShareClient, volume_root: Path
) -> None:
    many = {f"set/file-{index:03d}.dat": os.urandom(100 + index) for index in range(60)}
    write_local(volume_root / "source" / "exports", many)
    job = upload_job(parallelism=3)
    environ = pod_environ(emulator, volume_root)
    reset_counters(emulator)
    results = await asyncio.gather(*(shard(job, emulator, environ, index=i, count=3) for i in range(3)))

    expected = {f"incoming/{path}": data for path, data in {**COPIED, **many}.items()}
    assert read_share(share, "incoming").files == expected
    writes = {
        path.removeprefix("devstoreaccount1/share1/"): ops for path, ops in writes_per_file(emulator).items()
    }
    assert {path for path, ops in writes.items() if ops.get("CreateFile")} == set(expected)
    assert all(ops["CreateFile"] == 1 for ops in writes.values()), writes

    listed: list[str] = []
    for index, (outcome, sink) in enumerate(results):
        assert outcome.exit_code == 0
        assert outcome.report["md5"]["configMap"] == f"upload-md5-{index}"
        listed += [line["path"] for line in read_results(sink.configmaps[0])]
        assert 0 < outcome.report["filesDone"] < len(expected)  # each took a part
    assert sorted(listed) == sorted(expected)  # disjoint, and together all of them
    assert sum(outcome.report["filesDone"] for outcome, _ in results) == len(expected)


async def test_a_retried_shard_sends_only_what_its_earlier_attempt_did_not_finish(
    emulator: RunningEmulator, share: ShareClient, volume_root: Path
) -> None:
    share.create_directory("incoming")
    share.create_directory("incoming/notes")
    share.create_directory("incoming/notes/read me.txt")  # a directory where a file must go
    environ = pod_environ(emulator, volume_root)
    first, _ = await shard(upload_job(), emulator, environ)
    assert first.exit_code == 1
    assert first.report["state"] == "CompletedWithErrors"
    assert first.report["filesDone"] == len(COPIED) - 1 and first.report["filesFailed"] == 1
    (failed,) = first.report["failedFiles"]
    assert failed["path"] == "incoming/notes/read me.txt" and "ResourceTypeMismatch" in failed["error"]

    share.get_directory_client("incoming/notes/read me.txt").delete_directory()  # the obstacle goes
    reset_counters(emulator)
    retry, _sink = await shard(upload_job(), emulator, environ)  # the same CopyJob, so the same job id
    assert retry.exit_code == 0, retry.report
    assert set(writes_per_file(emulator)) == {"devstoreaccount1/share1/incoming/notes/read me.txt"}
    assert read_share(share, "incoming").files == {f"incoming/{path}": data for path, data in COPIED.items()}
    assert retry.report["filesDone"] == len(COPIED)  # the earlier attempt's files count as done
    assert retry.report["md5"]["files"] == len(COPIED) and retry.report["md5"]["verified"] == len(COPIED)

    reset_counters(emulator)  # it completed: running it once more starts afresh
    again, _ = await shard(upload_job(), emulator, environ)
    assert again.exit_code == 0
    assert len(writes_per_file(emulator)) == len(COPIED)


async def test_a_download_into_a_volume(
    emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    files = {"a.csv": b"a,b\n1,2\n", "sub/b.bin": os.urandom(5000)}
    write_share(share, {f"reports/{path}": data for path, data in files.items()})
    job = {
        "metadata": {"name": "restore", "namespace": "team"},
        "spec": {
            "source": {"fileShare": {"name": "share1", "path": "reports"}},
            "destination": {"pvc": {"claimName": "restore", "path": "today"}},
            "options": {"checkMd5": "FailIfDifferentOrMissing"},
        },
    }
    environ = {
        "SHAREFERRY_VOLUME_ROOT": str(tmp_path),
        "SHAREFERRY_SOURCE_AZURE_STORAGE_CONNECTION_STRING": emulator.connection_string(),
    }
    outcome, _ = await shard(job, emulator, environ)
    assert outcome.exit_code == 0, outcome.report
    assert read_local(tmp_path / "destination" / "today").files == files  # the directory's contents
    assert outcome.report["md5"]["verified"] == 2


@pytest.mark.parametrize(
    ("options", "reason", "words"),
    [
        ({"includeRegex": ["(unclosed"]}, "InvalidOptions", "spec.options.includeRegex"),
        ({"deleteDestination": "true"}, "InvalidOptions", "needs mode: sync"),
    ],
)
async def test_a_spec_that_cannot_run_is_exit_2_with_one_failed_report(
    emulator: RunningEmulator,
    share: ShareClient,
    volume_root: Path,
    options: dict[str, Any],
    reason: str,
    words: str,
) -> None:
    outcome, sink = await shard(upload_job(options=options), emulator, pod_environ(emulator, volume_root))
    assert outcome.exit_code == 2
    assert (outcome.report["state"], outcome.report["reason"]) == ("Failed", reason)
    assert words in outcome.report["error"]
    assert sink.reports == [(outcome.report, True)]
    assert read_share(share).files == {}


async def test_a_missing_fileshare_and_a_missing_source_are_exit_2(
    emulator: RunningEmulator, share: ShareClient, tmp_path: Path
) -> None:
    sink = Sink()
    outcome = await run_shard(
        upload_job(),
        fileshares={},
        environ={"SHAREFERRY_VOLUME_ROOT": str(tmp_path)},
        shard_index=0,
        shard_count=1,
        sinks=[sink],
    )
    assert (outcome.exit_code, outcome.report["reason"]) == (2, "FileShareNotFound")
    outcome, _ = await shard(upload_job(), emulator, pod_environ(emulator, tmp_path / "empty"))
    assert (outcome.exit_code, outcome.report["reason"]) == (2, "SourceNotFound")
    assert "does not exist" in outcome.report["error"]


async def test_a_refused_key_fails_the_whole_shard_with_exit_3(
    emulator: RunningEmulator, share: ShareClient, volume_root: Path
) -> None:
    wrong = base64.b64encode(b"not the key of this account").decode()
    outcome, sink = await shard(upload_job(), emulator, pod_environ(emulator, volume_root, key=wrong))
    assert outcome.exit_code == 3
    assert (outcome.report["state"], outcome.report["reason"]) == ("Failed", "AuthenticationFailed")
    assert wrong not in str(sink.reports) and emulator.account().key not in str(sink.reports)
    assert read_share(share).files == {}


async def test_a_shard_whose_plan_another_pod_still_holds_is_retryable_exit_3(
    emulator: RunningEmulator, share: ShareClient, volume_root: Path
) -> None:
    # The pod before this one is still stopping on the same state volume and holds the plan:
    # a retry later succeeds, so the worker must not exit 2 (the Job's podFailurePolicy ends the
    # whole CopyJob on 2). The other pod is played by a lock this test takes on its directory.
    environ = pod_environ(emulator, volume_root)
    first, _ = await shard(upload_job(), emulator, environ)  # an attempt that made the plan
    assert first.exit_code == 0, first.report
    job_directory = Path(os.environ["SHAREFERRY_JOB_DIR"]) / default_job_id(upload_job(), 0)
    with JobPlan.open(job_directory.parent, job_directory.name) as plan:
        plan.start_run()  # the other pod's run: Running, and its lock held
    held = OwnerLock.acquire(job_directory)
    try:
        busy, _ = await shard(upload_job(), emulator, environ)
    finally:
        held.release()
    assert busy.exit_code == 3, busy.report
    assert "already running in another process" in str(busy.report["error"])
    retry, _ = await shard(upload_job(), emulator, environ)
    assert retry.exit_code == 0, retry.report
    assert read_share(share, "incoming").files == {f"incoming/{path}": data for path, data in COPIED.items()}


def test_the_job_id_is_the_uid_and_shard_else_namespace_and_name() -> None:
    assert default_job_id({"metadata": {"uid": "abc-123", "name": "x"}}, 2) == "abc-123-2"
    assert default_job_id({"metadata": {"name": "nightly", "namespace": "team"}}, 0) == "team-nightly-0"
    long = default_job_id({"metadata": {"name": "n" * 253, "namespace": "s" * 63}}, 11)
    assert len(long) <= 128 and long.endswith("-11")


async def test_a_shard_with_nothing_to_copy_succeeds(
    emulator: RunningEmulator, share: ShareClient, volume_root: Path
) -> None:
    outcome, _ = await shard(
        upload_job(options={"includePattern": ["*.nothing"]}), emulator, pod_environ(emulator, volume_root)
    )
    assert outcome.exit_code == 0 and outcome.report["filesTotal"] == 0
    assert outcome.report["md5"]["files"] == 0
