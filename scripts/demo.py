"""The demo behind ``make demo``: CopyJob manifests run with ``shareferry run`` against the Files
emulator, the way the operator's workers run them, then checked byte for byte.

1. Starts ``shareferry emulator`` as its own process on a free loopback port and creates the two
   shares of ``examples/demo/fileshares.yaml`` (the operator would, for each FileShare).
2. Writes a sample folder (nested directories, an empty file, a multi-range file, names with
   spaces and unicode, and a ``*.tmp`` file the upload excludes).
3. ``shareferry run -f examples/demo/copyjob-upload.yaml --pvc demo-data=<folder>``: the folder
   into the demo share, with MD5s stored.
4. ``shareferry run -f examples/demo/copyjob-sync.yaml``: the demo share into the backup share,
   server-side, in three shards, deleting a stale file the backup had.
   Both runs get the FileShares (pointed at this emulator) and their credentials Secret from a
   file written at run time into a private temporary directory, as a user would pass them; the
   account key is never printed.
5. Downloads every file of the backup share and checks its bytes and stored MD5 against the
   sample folder and against the MD5 results the upload wrote; then stops the emulator.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from azure.storage.fileshare import ShareDirectoryClient, ShareServiceClient

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"
SECRET_NAME = "demo-emulator-credentials"  # noqa: S105 (the name of a Secret, not its content)

SAMPLE: dict[str, bytes] = {
    "README.txt": b"ShareFerry demo tree\n",
    "docs/guide one.md": b"# Guide\n" + b"Azure Files, emulated.\n" * 200,
    "docs/empty.txt": b"",
    "data/numbers.csv": "\n".join(f"{i},{i * i}" for i in range(5000)).encode(),
    "data/blob-5MiB.bin": os.urandom(5 * 1024 * 1024 + 123),
    "data/unicodé/naïve – ok.txt": "grüße, こんにちは\n".encode(),  # noqa: RUF001 - a real-world name
}
EXCLUDED = {"data/scratch.tmp": b"not uploaded: the CopyJob excludes *.tmp\n"}
STALE = "old-report.txt"  # in the backup share only: the sync deletes it


def start_emulator() -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "shareferry", "emulator", "--port", "0", "--in-memory"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"endpoint=(\S+) connection_string=(\S+)", line)
    if not match:
        process.kill()
        raise SystemExit("the emulator did not start")
    return process, match.group(1), match.group(2)


def account_of(connection_string: str) -> tuple[str, str]:
    settings = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
    return settings["AccountName"], settings["AccountKey"]


def write_account_file(directory: Path, endpoint: str, name: str, key: str) -> Path:
    """The demo's FileShares pointed at this emulator, and their credentials Secret."""
    documents: list[dict[str, Any]] = []
    for document in yaml.safe_load_all((DEMO / "fileshares.yaml").read_text(encoding="utf-8")):
        document["spec"]["account"] = {"endpoint": endpoint}
        documents.append(document)
    documents.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET_NAME},
            "type": "Opaque",
            "stringData": {"AZURE_STORAGE_ACCOUNT_NAME": name, "AZURE_STORAGE_ACCOUNT_KEY": key},
        }
    )
    path = directory / "demo-account.yaml"
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return path


def write_sample(folder: Path) -> None:
    for path, data in {**SAMPLE, **EXCLUDED}.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def walk(directory: ShareDirectoryClient, prefix: str = "") -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for item in directory.list_directories_and_files():
        path = f"{prefix}{item['name']}"
        if item["is_directory"]:
            found.extend(walk(directory.get_subdirectory_client(item["name"]), path + "/"))
        else:
            found.append((path, item["size"]))
    return found


def md5_results(results_dir: Path) -> dict[str, str]:
    """path -> MD5 (hex) from the results ConfigMaps the upload wrote."""
    found: dict[str, str] = {}
    for path in sorted(results_dir.glob("*.yaml")):
        configmap = yaml.safe_load(path.read_text(encoding="utf-8"))
        for data in configmap.get("binaryData", {}).values():
            for line in gzip.decompress(base64.b64decode(data)).decode().splitlines():
                record = json.loads(line)
                found[record["path"]] = record["md5"] or ""
    return found


def verify(service: ShareServiceClient, share_name: str, uploaded_md5: dict[str, str]) -> int:
    share = service.get_share_client(share_name)
    print(f"\nthe backup share '{share_name}', downloaded and checked:\n")
    print(f"{'path':<30} {'bytes':>9}  md5 (downloaded = stored = upload results)  check")
    failures = 0
    listed = sorted(walk(share.get_directory_client("")))
    for path, size in listed:
        client = share.get_file_client(path)
        data = client.download_file().readall()
        stored = bytes(client.get_file_properties().content_settings.content_md5 or b"")
        digest = hashlib.md5(data)
        ok = (
            data == SAMPLE.get(path)
            and size == len(data)
            and stored == digest.digest()
            and uploaded_md5.get(path) == digest.hexdigest()
        )
        failures += not ok
        print(f"{path:<30} {size:>9}  {digest.hexdigest()}    {'ok' if ok else 'MISMATCH'}")
    missing = sorted(set(SAMPLE) - {path for path, _ in listed})
    for path in missing:
        print(f"{path:<30} {'-':>9}  {'(missing)':<32}    MISMATCH")
    failures += len(missing)
    verified = len(SAMPLE) - failures
    print(f"\n{verified}/{len(SAMPLE)} files verified; {STALE} deleted: {STALE not in dict(listed)}")
    return failures + (STALE in dict(listed))


def main() -> int:
    process, endpoint, connection = start_emulator()
    print(f"emulator listening at {endpoint}")
    try:
        with tempfile.TemporaryDirectory(prefix="shareferry-demo-") as temporary:
            work = Path(temporary)
            name, key = account_of(connection)
            service = ShareServiceClient(
                account_url=endpoint, credential={"account_name": name, "account_key": key}
            )
            service.create_share("demo", quota=1)
            backup = service.create_share("demo-backup", quota=1)
            backup.get_file_client(STALE).upload_file(b"from an earlier backup\n")
            folder = work / "demo-data"
            write_sample(folder)
            account_file = write_account_file(work, endpoint, name, key)
            results = work / "md5-results"
            env = {**os.environ, "SHAREFERRY_JOB_DIR": str(work / "jobs"), "NO_PROXY": "127.0.0.1,localhost"}
            for variable in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_KEY", "ACCOUNT_KEY"):
                env.pop(variable, None)
            shown_account = "<FileShares + Secret for this emulator>.yaml"
            run_shown(
                ["-f", "examples/demo/copyjob-upload.yaml", "-f", shown_account, "--pvc", "demo-data=<sample folder>", "--results-dir", "<md5 results>"],
                ["-f", str(DEMO / "copyjob-upload.yaml"), "-f", str(account_file), "--pvc", f"demo-data={folder}", "--results-dir", str(results)],
                env=env, title="a local folder into the demo share, MD5s stored",
            )  # fmt: skip
            run_shown(
                ["-f", "examples/demo/copyjob-sync.yaml", "-f", shown_account],
                ["-f", str(DEMO / "copyjob-sync.yaml"), "-f", str(account_file)],
                env=env, title="the demo share into the backup share: server-side sync, three shards",
            )  # fmt: skip
            return 1 if verify(service, "demo-backup", md5_results(results)) else 0
    finally:
        process.terminate()
        process.wait(10)
        print("emulator stopped")


def run_shown(shown: list[str], args: list[str], *, env: dict[str, str], title: str) -> None:
    """Run ``shareferry run args``, printing it as ``shown`` (short, and nothing secret)."""
    print(f"\n$ shareferry run {' '.join(shown)}\n  # {title}", flush=True)
    result = subprocess.run([sys.executable, "-m", "shareferry", "run", *args], env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"shareferry run exited with {result.returncode}")


if __name__ == "__main__":
    raise SystemExit(main())
