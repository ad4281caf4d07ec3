"""Per-file MD5 results of one shard: collected on disk as files finish, packed into a ConfigMap.

:class:`Md5Collector` is a core subscriber: each finished file (folders are left out) becomes one
JSON line ``{"path", "size", "md5", "result"}`` (+ ``"error"`` or ``"reason"``) in a temporary
file, never a list in memory (a shard may finish millions of files). ``md5`` is the hex digest the
core has for the file: computed from the bytes sent, checked on download, or carried from the
source by a server-side copy; ``null`` when there is none. ``result`` is ``completed``,
``skipped``, ``failed`` or ``mismatched`` (the bytes did not hash to the source's stored MD5,
whether the file failed for it or ``checkMd5: LogOnly`` let it through).

The counts of the report's ``md5`` summary: ``files`` (lines), ``verified`` (completed with an
MD5), ``missing`` (completed without one, or failed for lack of one), ``mismatched``.

:func:`results_configmap` packs the lines as ``binaryData["results.jsonl.gz"]`` (gzip), failures
and mismatches first, into a ConfigMap of at most :data:`MAX_CONFIGMAP_BYTES` as serialized;
when they do not all fit, it keeps as many as fit and says so in ``data["note"]`` (and in the
summary's ``note`` and ``truncated``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import tempfile
import zlib
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from shareferry.api.names import (
    API_VERSION,
    COPYJOB_KIND,
    LABEL_COPYJOB,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    label_value,
    md5_configmap_name,
)
from shareferry.core.accounting import FileResult, Outcome
from shareferry.core.redact import redact

MAX_CONFIGMAP_BYTES = 900 * 1024
RESULTS_KEY = "results.jsonl.gz"
LABEL_SHARD = "shareferry.dev/shard"
MAX_LINE_ERROR_CHARS = 300
_MISMATCH_PREFIX = "MD5 mismatch for "
_NO_STORED_MD5 = "has no stored MD5"
_BATCH_BYTES = 64 * 1024
_GZIP_TAIL = 64  # the last empty deflate block and the gzip trailer, with room to spare
_NOTE_ROOM = 400  # data["note"] and the counts, added after the size is measured


@dataclass
class Md5Counts:
    files: int = 0
    verified: int = 0
    mismatched: int = 0
    missing: int = 0
    failed: int = 0
    skipped: int = 0


class Md5Collector:
    """Collects each finished file's line (see the module docstring). Close it (or use ``with``)
    to remove its temporary files. ``log`` lines of the core are fed to :meth:`on_log` so an MD5
    mismatch that ``LogOnly`` let through is recorded as one."""

    def __init__(self, *, directory: str | None = None) -> None:
        # failures and mismatches first: they are what a truncated ConfigMap must keep
        self._first: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (closed in close())
        self._rest: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self.counts = Md5Counts()
        self._logged_mismatches: set[str] = set()

    def __enter__(self) -> Md5Collector:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._first.close()
        self._rest.close()

    def on_queued(self, path: str, size: int) -> None:
        return None

    def on_progress(self, nbytes: int) -> None:
        return None

    def on_log(self, text: str) -> None:
        """A core message: ``MD5 mismatch for <source>: ...`` under ``checkMd5: LogOnly``."""
        if text.startswith(_MISMATCH_PREFIX) and len(self._logged_mismatches) < 100_000:
            self._logged_mismatches.add(text[len(_MISMATCH_PREFIX) :].partition(": stored ")[0])

    def on_done(self, result: FileResult) -> None:
        if result.is_dir:
            return
        line: dict[str, Any] = {"path": result.path, "size": result.size, "md5": result.md5}
        counts = self.counts
        counts.files += 1
        error = result.error or ""
        if result.outcome is Outcome.FAILED:
            line["result"] = "mismatched" if error.startswith(_MISMATCH_PREFIX) else "failed"
            line["error"] = _short(error)
            if error.startswith(_MISMATCH_PREFIX):
                counts.mismatched += 1
            elif _NO_STORED_MD5 in error:
                counts.missing += 1
            else:
                counts.failed += 1
        elif result.outcome is Outcome.SKIPPED:
            line["result"] = "skipped"
            line["reason"] = result.reason
            counts.skipped += 1
        elif result.source is not None and result.source in self._logged_mismatches:
            self._logged_mismatches.discard(result.source)
            line["result"] = "mismatched"
            counts.mismatched += 1
        else:
            line["result"] = "completed"
            if result.md5:
                counts.verified += 1
            else:
                counts.missing += 1
        stream = self._first if line["result"] in ("failed", "mismatched") else self._rest
        stream.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")

    def lines(self) -> Generator[bytes, None, None]:
        """Every line written so far (each ending with a newline), failures and mismatches first."""
        for stream in (self._first, self._rest):
            stream.flush()
            stream.seek(0)
            try:
                # not `yield from`: closing this generator would close the file too
                for line in stream:  # noqa: UP028
                    yield line
            finally:
                stream.seek(0, 2)  # later lines are appended, even if reading stopped early


def _short(text: str) -> str:
    folded = " ".join(redact(text).split())
    return folded if len(folded) <= MAX_LINE_ERROR_CHARS else folded[: MAX_LINE_ERROR_CHARS - 1] + "…"


@dataclass(frozen=True)
class PackedResults:
    """The gzip of the lines that fit, how many did, and whether some were left out."""

    data: bytes
    included: int
    truncated: bool


def pack_lines(lines: Iterator[bytes], *, max_bytes: int) -> PackedResults:
    """Gzip ``lines`` in order, stopping before the first line that would make the result larger
    than ``max_bytes``. Streams: holds one batch of input and the compressed output only."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = bytearray()
    included = 0

    def add(batch: list[bytes]) -> bool:
        nonlocal compressor
        saved = compressor.copy()
        chunk = compressor.compress(b"".join(batch)) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if len(out) + len(chunk) + _GZIP_TAIL > max_bytes:
            compressor = saved
            return False
        out.extend(chunk)
        return True

    def finish(*, truncated: bool) -> PackedResults:
        out.extend(compressor.flush(zlib.Z_FINISH))
        return PackedResults(bytes(out), included, truncated)

    def finish_one_by_one(batch: list[bytes]) -> PackedResults:
        """The batch did not fit whole: add its lines one at a time while they fit."""
        nonlocal included
        for single in batch:
            if not add([single]):
                break
            included += 1
        return finish(truncated=True)

    batch: list[bytes] = []
    held = 0
    for line in lines:
        batch.append(line)
        held += len(line)
        if held < _BATCH_BYTES:
            continue
        if not add(batch):
            return finish_one_by_one(batch)
        included += len(batch)
        batch, held = [], 0
    if batch and not add(batch):
        return finish_one_by_one(batch)
    included += len(batch)
    return finish(truncated=False)


def md5_summary(
    counts: Md5Counts, *, configmap: str | None, truncated: bool, note: str | None
) -> dict[str, Any]:
    """The report's ``md5`` object."""
    return {
        "configMap": configmap,
        "files": counts.files,
        "verified": counts.verified,
        "mismatched": counts.mismatched,
        "missing": counts.missing,
        "truncated": truncated,
        "note": note,
    }


@dataclass(frozen=True)
class ResultsConfigMap:
    """The ConfigMap to store and the summary for the report (its ``configMap`` still unset)."""

    body: dict[str, Any]
    summary: dict[str, Any]


def results_configmap(
    collector: Md5Collector,
    *,
    copyjob_name: str,
    namespace: str | None,
    uid: str | None,
    shard: int,
    max_bytes: int = MAX_CONFIGMAP_BYTES,
) -> ResultsConfigMap:
    """The results ConfigMap of shard ``shard`` (see the module docstring): named
    ``md5_configmap_name(copyjob_name, shard)``, labelled, owned by the CopyJob when its ``uid``
    is known."""
    metadata: dict[str, Any] = {
        "name": md5_configmap_name(copyjob_name, shard),
        "labels": {
            LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_COPYJOB: label_value(copyjob_name),
            LABEL_SHARD: str(shard),
        },
    }
    if namespace:
        metadata["namespace"] = namespace
    if uid:
        metadata["ownerReferences"] = [
            {"apiVersion": API_VERSION, "kind": COPYJOB_KIND, "name": copyjob_name, "uid": uid}
        ]
    counts = collector.counts
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {
            "format": f"{RESULTS_KEY}: gzip of JSON lines {{path, size, md5 (hex), result, error|reason}}, "
            "failures and mismatches first",
            "files": str(counts.files),
            "verified": str(counts.verified),
            "mismatched": str(counts.mismatched),
            "missing": str(counts.missing),
        },
    }
    overhead = len(json.dumps(body, ensure_ascii=False)) + len(RESULTS_KEY) + _NOTE_ROOM
    room = max(0, (max_bytes - overhead) * 3 // 4)
    with contextlib.closing(collector.lines()) as lines:
        packed = pack_lines(lines, max_bytes=room)
    note = None
    if packed.truncated:
        note = (
            f"truncated: {packed.included} of {counts.files} files listed (failures and mismatches "
            f"first); a ConfigMap holds at most {max_bytes // 1024} KiB"
        )
        body["data"]["note"] = note
    body["data"]["listed"] = str(packed.included)
    body["binaryData"] = {RESULTS_KEY: base64.b64encode(packed.data).decode("ascii")}
    return ResultsConfigMap(body, md5_summary(counts, configmap=None, truncated=packed.truncated, note=note))


def read_results(configmap: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The lines of a results ConfigMap, decoded (for tests and tools)."""
    packed = base64.b64decode(configmap["binaryData"][RESULTS_KEY])
    text = zlib.decompress(packed, 31).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line]
