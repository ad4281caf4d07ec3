"""A client that announces a body and stalls gets its connection cut, as on Azure.

``EmulatorConfig.body_read_timeout`` (``shareferry emulator --body-read-timeout SECONDS``,
default 60) is how long a request may go without sending a byte of its body. Past it the
connection is closed and the operation is not applied; a slow client that keeps sending is
never cut. Raw sockets play the stalling client; the SDK checks the state afterwards.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareServiceClient,
    generate_account_sas,
)

from shareferry.emulator import EmulatorConfig, RunningEmulator
from shareferry.emulator.config import (
    DEFAULT_BODY_READ_TIMEOUT,
    WELL_KNOWN_ACCOUNT,
    WELL_KNOWN_KEY,
)
from tests.emulator.test_cli_emulator import run_cli
from tests.support.emulator_process import EmulatorProcess

TIMEOUT = 1.0


@pytest.fixture
def impatient() -> Iterator[RunningEmulator]:
    with RunningEmulator(EmulatorConfig(body_read_timeout=TIMEOUT)) as running:
        yield running


def service_for(root: str) -> ShareServiceClient:
    return ShareServiceClient(
        f"{root}/{WELL_KNOWN_ACCOUNT}",
        credential={"account_name": WELL_KNOWN_ACCOUNT, "account_key": WELL_KNOWN_KEY},
    )


def sas() -> str:
    return generate_account_sas(
        WELL_KNOWN_ACCOUNT,
        WELL_KNOWN_KEY,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, create=True),
        datetime.now(UTC) + timedelta(hours=1),
    )


def put_range_head(port: int, path: str, length: int) -> bytes:
    return (
        f"PUT /devstoreaccount1/{path}?comp=range&{sas()} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"x-ms-version: 2026-10-06\r\nx-ms-write: update\r\nx-ms-range: bytes=0-{length - 1}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def seconds_until_closed(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Wait for the server to close the connection; how long it took and what it sent."""
    start = time.monotonic()
    sock.settimeout(limit)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return time.monotonic() - start, received


def make_file(root: str, data: bytes) -> None:
    share = service_for(root).create_share("stall")
    share.get_file_client("f.bin").upload_file(data)


def read_file(root: str) -> bytes:
    return service_for(root).get_share_client("stall").get_file_client("f.bin").download_file().readall()


def test_a_stalled_body_is_cut_after_the_timeout(impatient: RunningEmulator) -> None:
    make_file(impatient.root, b"a" * 1024)
    with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
        sock.sendall(put_range_head(impatient.port, "stall/f.bin", 1024) + b"b" * 100)
        waited, answer = seconds_until_closed(sock, limit=10)
    assert TIMEOUT * 0.8 <= waited < TIMEOUT + 4
    assert answer == b""  # cut, not answered
    assert read_file(impatient.root) == b"a" * 1024  # the range was not written


def test_a_slow_client_that_keeps_sending_is_not_cut(impatient: RunningEmulator) -> None:
    make_file(impatient.root, b"a" * 8)
    with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
        sock.sendall(put_range_head(impatient.port, "stall/f.bin", 8))
        for byte in b"slowness":  # 8 bytes over ~2.4 s: each gap well under the timeout
            time.sleep(TIMEOUT * 0.3)
            sock.sendall(bytes([byte]))
        sock.settimeout(10)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 201")
    assert read_file(impatient.root) == b"slowness"


def test_a_stalled_chunked_body_is_cut(impatient: RunningEmulator) -> None:
    head = (
        f"PUT /devstoreaccount1/?restype=service&comp=properties&{sas()} HTTP/1.1\r\nHost: x\r\n"
        "x-ms-version: 2026-10-06\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n<StorageServic"
    ).encode()
    with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
        sock.sendall(head)
        waited, answer = seconds_until_closed(sock, limit=10)
    assert waited < TIMEOUT + 4
    assert answer == b""
    assert service_for(impatient.root).get_service_properties()["cors"] == []


def test_the_default_timeout_is_a_minute() -> None:
    assert EmulatorConfig().body_read_timeout == DEFAULT_BODY_READ_TIMEOUT == 60.0


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan"), 3601.0])
def test_a_config_with_a_bad_timeout_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="body read timeout must be more than 0"):
        EmulatorConfig(body_read_timeout=seconds)


def test_the_cli_switch_sets_the_timeout() -> None:
    with EmulatorProcess("--port", "0", "--body-read-timeout", "1.5") as process:
        port = int(process.root.rsplit(":", 1)[1])
        make_file(process.root, b"a" * 16)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(put_range_head(port, "stall/f.bin", 16) + b"b")
            waited, answer = seconds_until_closed(sock, limit=10)
        assert 1.2 <= waited < 5.5
        assert answer == b""
        assert read_file(process.root) == b"a" * 16


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "3601"])
def test_the_cli_switch_refuses_a_bad_value(value: str) -> None:
    result = run_cli("--port", "0", "--body-read-timeout", value)
    assert result.returncode == 2
    assert result.stdout == ""
    assert (
        "argument --body-read-timeout: must be a number of seconds more than 0 and at most 3600"
        in result.stderr
    )
    assert f"got {value!r}" in result.stderr
