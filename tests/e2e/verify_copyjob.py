"""Check a finished CopyJob on a cluster: its phase, its MD5 summary, and every file's MD5 in its
results ConfigMaps against the MD5s of the files that were seeded (standard library only: it runs
on the machine driving the kind cluster).

    python3 tests/e2e/verify_copyjob.py --context kind-shareferry-e2e --namespace shareferry-e2e \
        --copyjob upload --expected expected-md5.txt

``--expected`` holds ``<md5 hex>  <relative path>`` lines (md5sum's format). A result line matches
a seeded file when one path ends with the other at a ``/`` (results name files relative to the
copy's source, which may be the seeded folder or a folder above it). Exit status 0 when
everything checks, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS_KEY = "results.jsonl.gz"


def read_expected(text: str) -> dict[str, str]:
    """``md5  path`` lines as {path: md5}."""
    expected: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            digest, _, path = line.strip().partition("  ")
            expected[path.strip()] = digest.lower()
    return expected


def result_lines(configmap: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON lines of one results ConfigMap (gzip in binaryData)."""
    packed = base64.b64decode(configmap["binaryData"][RESULTS_KEY])
    text = zlib.decompress(packed, 31).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def same_file(result_path: str, seeded_path: str) -> bool:
    """Whether a result's path and a seeded path name the same file (one is a suffix of the
    other, at a ``/``)."""
    shorter, longer = sorted((result_path.strip("/"), seeded_path.strip("/")), key=len)
    return longer == shorter or longer.endswith("/" + shorter)


def problems(
    copyjob: Mapping[str, Any], configmaps: Sequence[Mapping[str, Any]], expected: Mapping[str, str]
) -> list[str]:
    """Why the CopyJob does not show a verified copy of ``expected`` (empty: it does)."""
    found: list[str] = []
    status = copyjob.get("status") or {}
    name = copyjob.get("metadata", {}).get("name", "?")
    if status.get("phase") != "Succeeded":
        found.append(f"{name}: phase {status.get('phase')!r}, not 'Succeeded'")
    md5 = status.get("md5Results") or {}
    count = len(expected)
    for key, want in (("files", count), ("verified", count), ("mismatched", 0), ("missing", 0)):
        if md5.get(key) != want:
            found.append(f"{name}: md5Results.{key} is {md5.get(key)!r}, expected {want}")
    lines = [line for configmap in configmaps for line in result_lines(configmap)]
    for path, digest in sorted(expected.items()):
        matches = [line for line in lines if same_file(str(line["path"]), path)]
        if len(matches) != 1:
            found.append(f"{name}: {len(matches)} result lines for {path}, expected 1")
            continue
        (line,) = matches
        if line.get("result") != "completed":
            found.append(
                f"{name}: {path} is {line.get('result')!r}: {line.get('error') or line.get('reason')}"
            )
        elif (line.get("md5") or "").lower() != digest:
            found.append(f"{name}: {path} has MD5 {line.get('md5')}, the seeded file {digest}")
    return found


def kubectl_json(context: str, namespace: str, *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        ["kubectl", "--context", context, "--namespace", namespace, "get", *args, "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--copyjob", required=True)
    parser.add_argument("--expected", required=True, type=Path)
    args = parser.parse_args(argv)
    copyjob = kubectl_json(args.context, args.namespace, "copyjob", args.copyjob)
    names = (copyjob.get("status") or {}).get("md5Results", {}).get("configMaps") or []
    configmaps = [kubectl_json(args.context, args.namespace, "configmap", name) for name in names]
    expected = read_expected(args.expected.read_text(encoding="utf-8"))
    found = problems(copyjob, configmaps, expected)
    for problem in found:
        print(problem, file=sys.stderr)
    if not found:
        print(f"{args.copyjob}: Succeeded, {len(expected)} files, every MD5 as seeded")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
