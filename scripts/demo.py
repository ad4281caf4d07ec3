"""The demo behind ``make demo``: the Files emulator and the real Azure SDK, end to end.

Starts ``shareferry emulator`` as its own process on a free loopback port, creates a share,
uploads a small sample tree (nested directories, an empty file, a multi-range file, names with
spaces and unicode), lists it back with sizes and MD5s computed from downloaded bytes, checks
each against the original, and stops the emulator.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import PurePosixPath

from azure.storage.fileshare import ContentSettings, ShareDirectoryClient, ShareServiceClient

SAMPLE: dict[str, bytes] = {
    "README.txt": b"ShareFerry demo tree\n",
    "docs/guide one.md": b"# Guide\n" + b"Azure Files, emulated.\n" * 200,
    "docs/empty.txt": b"",
    "data/numbers.csv": "\n".join(f"{i},{i * i}" for i in range(5000)).encode(),
    "data/blob-5MiB.bin": os.urandom(5 * 1024 * 1024 + 123),
    "data/unicodé/naïve – ok.txt": "grüße, こんにちは\n".encode(),  # noqa: RUF001 - a real-world name
}


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
        raise SystemExit(f"the emulator did not start: {line!r}")
    return process, match.group(1), match.group(2)


def upload(service: ShareServiceClient, share_name: str) -> None:
    share = service.create_share(share_name, quota=1)
    for path, data in SAMPLE.items():
        parent = PurePosixPath(path).parent
        for depth in range(1, len(parent.parts) + 1):
            directory = "/".join(parent.parts[:depth])
            client = share.get_directory_client(directory)
            if not client.exists():
                client.create_directory()
        share.get_file_client(path).upload_file(
            data, content_settings=ContentSettings(content_md5=bytearray(hashlib.md5(data).digest()))
        )


def walk(directory: ShareDirectoryClient, prefix: str = "") -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for item in directory.list_directories_and_files():
        path = f"{prefix}{item['name']}"
        if item["is_directory"]:
            found.extend(walk(directory.get_subdirectory_client(item["name"]), path + "/"))
        else:
            found.append((path, item["size"]))
    return found


def main() -> int:
    process, endpoint, connection = start_emulator()
    print(f"emulator listening at {endpoint}")
    try:
        started = time.monotonic()
        service = ShareServiceClient.from_connection_string(connection)
        upload(service, "demo")
        share = service.get_share_client("demo")
        print(f"uploaded {len(SAMPLE)} files in {time.monotonic() - started:.2f}s; listing them back:\n")
        print(f"{'path':<34} {'bytes':>10}  md5 (downloaded = stored)         check")
        failures = 0
        for path, size in sorted(walk(share.get_directory_client(""))):
            client = share.get_file_client(path)
            data = client.download_file().readall()
            stored = bytes(client.get_file_properties().content_settings.content_md5 or b"")
            digest = hashlib.md5(data).hexdigest()
            ok = data == SAMPLE.get(path) and size == len(data) and stored == hashlib.md5(data).digest()
            failures += not ok
            print(f"{path:<34} {size:>10}  {digest}  {'ok' if ok else 'MISMATCH'}")
        usage = share.get_share_stats()
        print(f"\nshare 'demo' uses {usage} bytes; {len(SAMPLE) - failures}/{len(SAMPLE)} files verified")
        return 1 if failures else 0
    finally:
        process.terminate()
        process.wait(10)
        print("emulator stopped")


if __name__ == "__main__":
    raise SystemExit(main())
