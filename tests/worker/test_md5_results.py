"""The MD5 results ConfigMap of a shard: every finished file as one gzip'd JSON line, owned by its
CopyJob, within the size a ConfigMap may have; failures and mismatches kept first, with a note,
when they do not all fit."""

from __future__ import annotations

import base64
import hashlib
import json
import os

from shareferry.core.accounting import FileResult, Outcome
from shareferry.worker.md5_results import (
    MAX_CONFIGMAP_BYTES,
    RESULTS_KEY,
    Md5Collector,
    read_results,
    results_configmap,
)

SIG = "c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"


def completed(path: str, data: bytes) -> FileResult:
    return FileResult(
        path, len(data), Outcome.COMPLETED, md5=hashlib.md5(data).hexdigest(), source=f"/src/{path}"
    )


def test_a_small_shard_lists_every_file_with_its_md5_and_result() -> None:
    with Md5Collector() as collector:
        collector.on_done(completed("docs/a.txt", b"alpha"))
        collector.on_done(FileResult("docs", 0, Outcome.COMPLETED, is_dir=True))  # folders are left out
        collector.on_done(FileResult("docs/b.txt", 3, Outcome.COMPLETED, md5=None))  # no MD5 known
        collector.on_done(FileResult("docs/c.txt", 4, Outcome.SKIPPED, reason="exists"))
        collector.on_done(
            FileResult(
                "docs/d.txt",
                9,
                Outcome.FAILED,
                error=f"MD5 mismatch for https://a.file.core.windows.net/s/d.txt?sig={SIG}: stored 00, received 11",
            )
        )
        collector.on_done(
            FileResult("docs/e.txt", 5, Outcome.FAILED, error="put range: ServerBusy (HTTP 503)")
        )
        # checkMd5: LogOnly lets a mismatch through: the core logs it, then the file completes
        collector.on_log("MD5 mismatch for /src/docs/f.txt: stored 00, received 11")
        collector.on_done(completed("docs/f.txt", b"foxtrot"))
        built = results_configmap(
            collector, copyjob_name="nightly", namespace="team", uid="1234-abcd", shard=2
        )

    body = built.body
    assert body["metadata"]["name"] == "nightly-md5-2"
    assert body["metadata"]["namespace"] == "team"
    assert body["metadata"]["labels"]["shareferry.dev/copyjob"] == "nightly"
    assert body["metadata"]["ownerReferences"] == [
        {"apiVersion": "shareferry.dev/v1alpha1", "kind": "CopyJob", "name": "nightly", "uid": "1234-abcd"}
    ]
    lines = read_results(body)
    assert [line["path"] for line in lines[:2]] == ["docs/d.txt", "docs/e.txt"]  # failures first
    by_path = {line["path"]: line for line in lines}
    assert set(by_path) == {
        "docs/a.txt",
        "docs/b.txt",
        "docs/c.txt",
        "docs/d.txt",
        "docs/e.txt",
        "docs/f.txt",
    }
    assert by_path["docs/a.txt"] == {
        "path": "docs/a.txt",
        "size": 5,
        "md5": hashlib.md5(b"alpha").hexdigest(),
        "result": "completed",
    }
    assert by_path["docs/b.txt"]["md5"] is None
    assert by_path["docs/c.txt"]["result"] == "skipped" and by_path["docs/c.txt"]["reason"] == "exists"
    assert by_path["docs/d.txt"]["result"] == "mismatched" and SIG not in by_path["docs/d.txt"]["error"]
    assert by_path["docs/e.txt"]["result"] == "failed"
    assert by_path["docs/f.txt"]["result"] == "mismatched"
    assert built.summary == {
        "configMap": None,  # set once stored
        "files": 6,
        "verified": 1,
        "mismatched": 2,
        "missing": 1,
        "truncated": False,
        "note": None,
    }
    assert body["data"]["files"] == "6" and body["data"]["listed"] == "6" and "note" not in body["data"]


def test_without_a_uid_there_is_no_owner_and_a_long_name_still_makes_valid_names() -> None:
    with Md5Collector() as collector:
        name = "a-very-long-copyjob-name-" * 10
        body = results_configmap(collector, copyjob_name=name, namespace=None, uid=None, shard=0).body
    assert "ownerReferences" not in body["metadata"] and "namespace" not in body["metadata"]
    assert len(body["metadata"]["name"]) <= 253 and body["metadata"]["name"].endswith("-md5-0")
    assert len(body["metadata"]["labels"]["shareferry.dev/copyjob"]) <= 63
    assert read_results(body) == []


def test_results_over_the_limit_keep_failures_first_and_say_so() -> None:
    with Md5Collector() as collector:
        for index in range(40_000):  # random MD5s do not compress: several MB of lines
            data = os.urandom(8)
            collector.on_done(completed(f"data/part-{index:05d}/file-{data.hex()}.bin", data))
            if index % 1000 == 999:
                collector.on_done(
                    FileResult(f"data/failed-{index}.bin", 1, Outcome.FAILED, error="ServerBusy")
                )
        built = results_configmap(collector, copyjob_name="big", namespace="team", uid="u", shard=0)
    body = built.body
    assert len(json.dumps(body)) <= MAX_CONFIGMAP_BYTES
    lines = read_results(body)
    listed = int(body["data"]["listed"])
    assert len(lines) == listed and 1000 < listed < 40_040
    assert [line["result"] for line in lines[:40]] == ["failed"] * 40  # every failure kept, first
    assert all(line["result"] == "completed" for line in lines[40:])
    assert built.summary["truncated"] is True and built.summary["files"] == 40_040
    assert built.summary["note"] == body["data"]["note"]
    assert f"{listed} of 40040 files listed" in body["data"]["note"]
    assert "failures and mismatches first" in body["data"]["note"]
    assert base64.b64decode(body["binaryData"][RESULTS_KEY])[:2] == b"\x1f\x8b"  # gzip


def test_a_tiny_limit_still_makes_a_valid_gzip() -> None:
    with Md5Collector() as collector:
        for index in range(200):
            collector.on_done(completed(f"f{index}", str(index).encode()))
        built = results_configmap(
            collector, copyjob_name="tiny", namespace="ns", uid=None, shard=0, max_bytes=1500
        )
    assert len(json.dumps(built.body)) <= 1500
    lines = read_results(built.body)
    assert 0 < len(lines) < 200 and built.summary["truncated"]
    assert [line["path"] for line in lines] == [f"f{index}" for index in range(len(lines))]
