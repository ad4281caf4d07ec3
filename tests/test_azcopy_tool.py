"""How the tests get AzCopy: ``ensure_azcopy`` installs the npm package's binary only when it is
the pinned 10.32.2 (SHA-256 and ``--version``), and says what to run when it cannot."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from tests.support import azcopy as tool


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_installs_the_packaged_binary_once_executable_and_verified(tmp_path: Path) -> None:
    packaged = tool.packaged_binary()
    if not packaged.is_file():
        pytest.fail(f"{packaged} is missing: run `make test` (npm ci) first")
    cache = tmp_path / "cache"
    installed = tool.ensure_azcopy(cache)
    assert installed == cache / "10.32.2" / "azcopy"
    assert stat.S_IMODE(installed.stat().st_mode) == 0o755
    assert hashlib.sha256(installed.read_bytes()).hexdigest() == tool.AZCOPY_SHA256
    assert _names(installed.parent) == [".lock", "azcopy"]  # no partial left
    first = installed.stat().st_mtime_ns
    assert tool.ensure_azcopy(cache) == installed
    assert installed.stat().st_mtime_ns == first  # not copied again


def test_a_missing_package_names_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as raised:
        tool.ensure_azcopy(tmp_path / "cache", source=tmp_path / "node_modules" / "azcopy_linux_amd64")
    message = str(raised.value)
    assert message.startswith("AzCopy 10.32.2 is not installed: ")
    assert "@azure-tools/azcopy-linux" in message and "make test" in message and "npm ci" in message
    assert "libsecret-1-0" in message
    assert not (tmp_path / "cache" / "10.32.2" / "azcopy").exists()


def test_a_binary_with_another_digest_is_refused(tmp_path: Path) -> None:
    impostor = tmp_path / "azcopy_linux_amd64"
    impostor.write_bytes(b"#!/bin/sh\necho azcopy version 10.32.2\n")
    with pytest.raises(RuntimeError, match=r"has SHA-256 [0-9a-f]{64}, expected .*refusing to run it"):
        tool.ensure_azcopy(tmp_path / "cache", source=impostor)
    assert _names(tmp_path / "cache" / "10.32.2") == [".lock"]


@pytest.mark.parametrize(
    ("script", "said"),
    [
        ("echo azcopy version 10.18.1", "exited 0 saying 'azcopy version 10.18.1'"),
        (
            "echo 'azcopy: error while loading shared libraries: libsecret-1.so.0: cannot open' >&2; exit 127",
            "exited 127 saying 'azcopy: error while loading shared libraries: libsecret-1.so.0",
        ),
    ],
)
def test_a_binary_that_is_not_a_working_10_32_2_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, said: str
) -> None:
    """The version check runs before the binary takes its final name (the digest is faked here)."""
    fake = tmp_path / "azcopy_linux_amd64"
    fake.write_bytes(f"#!/bin/sh\n{script}\n".encode())
    monkeypatch.setattr(tool, "AZCOPY_SHA256", hashlib.sha256(fake.read_bytes()).hexdigest())
    with pytest.raises(RuntimeError) as raised:
        tool.ensure_azcopy(tmp_path / "cache", source=fake)
    message = str(raised.value)
    assert message.startswith("`azcopy --version` " + said)
    assert "expected 'azcopy version 10.32.2'" in message and "libsecret-1-0" in message
    assert _names(tmp_path / "cache" / "10.32.2") == [".lock"]
