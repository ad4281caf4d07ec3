"""Per-file write counters: how many times each file's content was written, per operation.

Crash-and-resume tests ask ``GET /_emulator/counters?paths=1`` (through
:func:`writes_per_file`) whether a resumed job wrote a finished file again. These tests upload
with the real SDK and check that the counts match the requests that landed, and only those.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.fileshare import (
    FileSasPermissions,
    ShareClient,
    ShareFileClient,
    ShareServiceClient,
    generate_file_sas,
)

from shareferry.emulator import EmulatorConfig, RunningEmulator, faults
from tests.support.emulator_admin import (
    add_fault,
    admin_url,
    counters,
    reset_counters,
    writes_per_file,
)

MiB = 1024 * 1024
#: SDK retries about 50 ms apart, so a retried fault costs little time.
FAST_RETRY: dict[str, Any] = {
    "retry_total": 5,
    "initial_backoff": 0.05,
    "increment_base": 0,
    "random_jitter_range": 0.05,
}


def key(emulator: RunningEmulator, path: str, share: str = "share1") -> str:
    return f"{emulator.account().name}/{share}/{path}"


def service_for(emulator: RunningEmulator, **kwargs: Any) -> ShareServiceClient:
    account = emulator.account()
    return ShareServiceClient(
        account_url=emulator.account_url(),
        credential={"account_name": account.name, "account_key": account.key},
        **kwargs,
    )


def sas_url(emulator: RunningEmulator, client: ShareFileClient) -> str:
    account = emulator.account()
    sas = generate_file_sas(
        account.name,
        client.share_name,
        client.file_path,
        account.key,
        permission=FileSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"{client.url}?{sas}"


def upload(share: ShareClient, path: str, data: bytes, **kwargs: object) -> ShareFileClient:
    client = share.get_file_client(path)
    client.upload_file(data, **kwargs)
    return client


def test_small_upload_is_one_create_and_one_put_range(emulator: RunningEmulator, share: ShareClient) -> None:
    share.create_directory("dir")
    upload(share, "dir/a.txt", b"hello world")
    assert writes_per_file(emulator) == {key(emulator, "dir/a.txt"): {"CreateFile": 1, "PutRange": 1}}


def test_plain_counters_answer_is_unchanged(emulator: RunningEmulator, share: ShareClient) -> None:
    upload(share, "a.txt", b"x")
    plain = counters(emulator)
    assert set(plain) == {"operations", "faults", "total"}
    detailed = counters(emulator, paths=True)
    assert detailed["paths_truncated"] is False
    assert {k: v for k, v in detailed.items() if k not in ("paths", "paths_truncated")} == counters(emulator)


def test_large_upload_counts_every_range(emulator: RunningEmulator, share: ShareClient) -> None:
    data = os.urandom(9 * MiB + 1)  # 4 + 4 + 1 MiB + 1 byte: three ranges
    client = upload(share, "big.bin", data, max_concurrency=3)
    assert client.download_file().readall() == data
    assert writes_per_file(emulator) == {key(emulator, "big.bin"): {"CreateFile": 1, "PutRange": 3}}


def test_create_with_data_is_one_write(emulator: RunningEmulator, share: ShareClient) -> None:
    client = share.get_file_client("inline.txt")
    client.create_file(10, data=b"0123456789")
    assert client.download_file().readall() == b"0123456789"
    assert writes_per_file(emulator) == {key(emulator, "inline.txt"): {"CreateFile": 1}}


def test_empty_file_is_one_create(emulator: RunningEmulator, share: ShareClient) -> None:
    upload(share, "empty", b"")
    assert writes_per_file(emulator) == {key(emulator, "empty"): {"CreateFile": 1}}


def test_uploading_again_counts_again(emulator: RunningEmulator, share: ShareClient) -> None:
    upload(share, "twice.txt", b"first")
    upload(share, "twice.txt", b"second")
    upload(share, "once.txt", b"only")
    assert writes_per_file(emulator) == {
        key(emulator, "once.txt"): {"CreateFile": 1, "PutRange": 1},
        key(emulator, "twice.txt"): {"CreateFile": 2, "PutRange": 2},
    }


def test_reads_and_property_changes_are_not_writes(emulator: RunningEmulator, share: ShareClient) -> None:
    client = upload(share, "a.txt", b"hello")
    reset_counters(emulator)
    client.download_file().readall()
    client.get_file_properties()
    client.set_file_metadata({"k": "v"})
    client.resize_file(3)
    list(share.list_directories_and_files())
    client.list_ranges()
    assert counters(emulator)["total"] > 0
    assert writes_per_file(emulator) == {}


def test_clearing_a_range_counts_as_put_range(emulator: RunningEmulator, share: ShareClient) -> None:
    client = upload(share, "a.bin", b"x" * 1024)
    client.clear_range(0, 512)
    assert writes_per_file(emulator) == {key(emulator, "a.bin"): {"CreateFile": 1, "PutRange": 2}}


def test_server_side_copies_count_for_the_destination(emulator: RunningEmulator, share: ShareClient) -> None:
    data = os.urandom(5 * MiB)
    source = upload(share, "src.bin", data)
    reset_counters(emulator)

    copied = share.get_file_client("copy.bin")
    assert copied.start_copy_from_url(source.url)["copy_status"] == "success"

    ranged = share.get_file_client("ranged.bin")
    ranged.create_file(len(data))
    url = sas_url(emulator, source)
    ranged.upload_range_from_url(url, offset=0, length=4 * MiB, source_offset=0)
    ranged.upload_range_from_url(url, offset=4 * MiB, length=MiB, source_offset=4 * MiB)

    assert copied.download_file().readall() == data
    assert ranged.download_file().readall() == data
    assert writes_per_file(emulator) == {
        key(emulator, "copy.bin"): {"CopyFile": 1},
        key(emulator, "ranged.bin"): {"CreateFile": 1, "PutRangeFromURL": 2},
    }


def test_failed_writes_are_not_counted(emulator: RunningEmulator, share: ShareClient) -> None:
    client = share.get_file_client("small.bin")
    client.create_file(10)
    with pytest.raises(HttpResponseError) as past_end:
        client.upload_range(b"x" * 10, offset=8, length=10)
    assert past_end.value.status_code == 416
    with pytest.raises(HttpResponseError) as no_parent:
        share.get_file_client("missing/dir/file.bin").create_file(1)
    assert no_parent.value.status_code == 404
    with pytest.raises(HttpResponseError) as bad_copy:
        share.get_file_client("copy.bin").start_copy_from_url(share.get_file_client("nope").url)
    assert bad_copy.value.status_code == 404

    operations = counters(emulator)["operations"]
    assert operations["PutRange"]["by_status"] == {"416": 1}
    assert operations["CreateFile"]["by_status"] == {"201": 1, "404": 1}
    assert writes_per_file(emulator) == {key(emulator, "small.bin"): {"CreateFile": 1}}


def test_injected_faults_count_only_the_write_that_landed(emulator: RunningEmulator) -> None:
    share = service_for(emulator, **FAST_RETRY).create_share("share1")
    add_fault(emulator, "error:PutRange:count=1")
    add_fault(emulator, "busy:CreateFile:count=1,retry_after=0")
    add_fault(emulator, "drop:PutRange:count=1")
    data = os.urandom(4 * MiB + 10)  # two ranges; the SDK retries each failure
    client = upload(share, "retried.bin", data)
    assert client.download_file().readall() == data

    seen = counters(emulator, paths=True)
    assert seen["operations"]["PutRange"]["by_status"] == {"201": 2, "500": 1}
    assert seen["operations"]["CreateFile"]["by_status"] == {"201": 1, "503": 1}
    assert seen["faults"]["PutRange"] == {"drop": 1, "error": 1}
    assert seen["paths"] == {key(emulator, "retried.bin"): {"CreateFile": 1, "PutRange": 2}}


def test_reset_forgets_the_writes(emulator: RunningEmulator, share: ShareClient) -> None:
    upload(share, "a.txt", b"a")
    assert writes_per_file(emulator)
    reset_counters(emulator)
    assert counters(emulator, paths=True) == {
        "operations": {},
        "faults": {},
        "total": 0,
        "paths": {},
        "paths_truncated": False,
    }
    upload(share, "a.txt", b"a")
    assert writes_per_file(emulator) == {key(emulator, "a.txt"): {"CreateFile": 1, "PutRange": 1}}


@pytest.mark.parametrize(
    "path",
    [
        "dir with spaces/file with spaces.txt",
        "ünïcødé/日本語 ファイル.bin",
        "hash#tag/#1.txt",
        "percent%/100% done %20 %2F.txt",
        "mixed + & = ; @ ' ! $ (1) [2] {3}.txt",
    ],
)
def test_names_are_keyed_decoded(emulator: RunningEmulator, share: ShareClient, path: str) -> None:
    directory, _, _name = path.rpartition("/")
    if directory:
        share.create_directory(directory)
    client = upload(share, path, b"named")
    client.upload_range(b"N", offset=0, length=1)
    assert client.download_file().readall() == b"Named"
    assert writes_per_file(emulator) == {key(emulator, path): {"CreateFile": 1, "PutRange": 2}}


def test_keys_keep_the_case_the_file_was_created_with(emulator: RunningEmulator, share: ShareClient) -> None:
    share.create_directory("Docs")
    upload(share, "Docs/ReadMe.TXT", b"hello")
    share.get_file_client("docs/README.txt").upload_range(b"J", offset=0, length=1)
    share.get_file_client("DOCS/readme.txt").upload_file(b"replaced")  # replacing keeps the name
    assert writes_per_file(emulator) == {key(emulator, "Docs/ReadMe.TXT"): {"CreateFile": 2, "PutRange": 3}}


def test_keys_follow_the_trailing_dot_rule(emulator: RunningEmulator) -> None:
    trimmed = service_for(emulator).create_share("share1")
    upload(trimmed, "notes.", b"trimmed")  # stored as "notes", as Azure trims it
    kept = service_for(emulator, allow_trailing_dot=True).get_share_client("share1")
    upload(kept, "kept.", b"kept")
    assert writes_per_file(emulator) == {
        key(emulator, "kept."): {"CreateFile": 1, "PutRange": 1},
        key(emulator, "notes"): {"CreateFile": 1, "PutRange": 1},
    }


def test_keys_name_the_account_and_share(emulator: RunningEmulator, service: ShareServiceClient) -> None:
    for name in ("alpha", "beta"):
        upload(service.create_share(name), "same.txt", name.encode())
    assert writes_per_file(emulator) == {
        key(emulator, "same.txt", "alpha"): {"CreateFile": 1, "PutRange": 1},
        key(emulator, "same.txt", "beta"): {"CreateFile": 1, "PutRange": 1},
    }


def test_concurrent_uploads_count_each_file_once(emulator: RunningEmulator, share: ShareClient) -> None:
    names = [f"f{i:03}.bin" for i in range(64)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: upload(share, name, name.encode()), names))
    assert writes_per_file(emulator) == {
        key(emulator, name): {"CreateFile": 1, "PutRange": 1} for name in names
    }


def test_helper_accepts_the_printed_endpoint(emulator: RunningEmulator, share: ShareClient) -> None:
    upload(share, "a.txt", b"a")
    endpoint = emulator.account_url()  # what the ready line prints as endpoint=
    assert admin_url(endpoint) == emulator.admin_url
    assert writes_per_file(endpoint) == {key(emulator, "a.txt"): {"CreateFile": 1, "PutRange": 1}}
    reset_counters(endpoint)
    assert writes_per_file(share.get_file_client("a.txt").url) == {}


@pytest.mark.parametrize("value", ["yes", "2", ""])
def test_a_bad_paths_value_is_refused(emulator: RunningEmulator, value: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{emulator.admin_url}/counters?paths={value}", timeout=10)
    assert info.value.code == 400
    assert "paths must be" in json.loads(info.value.read())["error"]


@pytest.mark.parametrize(("value", "detailed"), [("0", False), ("false", False), ("TRUE", True)])
def test_paths_flag_values(emulator: RunningEmulator, value: str, detailed: bool) -> None:
    with urllib.request.urlopen(f"{emulator.admin_url}/counters?paths={value}", timeout=10) as response:
        assert ("paths" in json.loads(response.read())) is detailed


def test_tracking_stops_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "MAX_TRACKED_PATHS", 2)
    with RunningEmulator(EmulatorConfig()) as emulator:
        share = service_for(emulator).create_share("share1")
        for name in ("a.txt", "b.txt", "c.txt"):
            upload(share, name, b"x")
        upload(share, "a.txt", b"again")  # a tracked file keeps counting

        seen = counters(emulator, paths=True)
        assert seen["paths_truncated"] is True
        assert seen["paths"] == {
            key(emulator, "a.txt"): {"CreateFile": 2, "PutRange": 2},
            key(emulator, "b.txt"): {"CreateFile": 1, "PutRange": 1},
        }
        assert seen["operations"]["CreateFile"]["total"] == 4  # the operation counts are whole
        with pytest.raises(AssertionError, match="too many files"):
            writes_per_file(emulator)

        reset_counters(emulator)
        upload(share, "c.txt", b"x")
        assert writes_per_file(emulator) == {key(emulator, "c.txt"): {"CreateFile": 1, "PutRange": 1}}
