"""How fast the emulator pages a directory of 100,000 files to the real SDK.

Setup fills one directory straight through the emulator's in-process store (creating 100k files
over HTTP would measure the Python SDK's request rate, not listing); the timed part is the
SDK's ``list_directories_and_files`` over HTTP, 5,000 entries a page, as a client sees it.

    python bench/emulator_listing.py [--files 100000] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

from azure.storage.fileshare import ShareServiceClient

from shareferry.emulator import RunningEmulator
from shareferry.emulator.model import File


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with RunningEmulator() as emulator:
        account = emulator.account()
        service = ShareServiceClient(
            account_url=emulator.account_url(),
            credential={"account_name": account.name, "account_key": account.key},
        )
        share = service.create_share("listing")
        assert emulator.state is not None
        store = emulator.state.store
        live = store.share(account.name, "listing")
        root = live.root
        started = time.perf_counter()
        for index in range(args.files):
            node = File(
                name=f"file-{index:07d}.dat",
                file_id=store.new_id(),
                parent_id=0,
                smb=store.new_smb(("Archive",), root.smb.permission_key),
                content=store.content.new(0),
            )
            root.put(node)
        setup = time.perf_counter() - started
        results = {}
        for include in ((), ("timestamps", "Etag", "Attributes", "PermissionKey")):
            started = time.perf_counter()
            count = sum(
                1 for _ in share.get_directory_client("").list_directories_and_files(include=list(include))
            )
            elapsed = time.perf_counter() - started
            assert count == args.files, count
            results["with properties" if include else "names and sizes"] = elapsed
    report = {"files": args.files, "setup_seconds": round(setup, 2)} | {
        k: {"seconds": round(v, 2), "entries_per_second": round(args.files / v)} for k, v in results.items()
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"listing {args.files} files in one directory (pages of 5,000):")
        for name, seconds in results.items():
            print(f"  {name:<18} {seconds:6.2f} s  {args.files / seconds:9.0f} entries/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
