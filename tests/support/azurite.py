"""Run Microsoft's Azurite blob emulator (from ``node_modules``) for a test or a benchmark.

Azurite has no File service, so it is only the reference point for blob-side behaviour and for
speed comparisons with the ShareFerry emulator. ``npm ci`` in the repository root installs it
(``make test`` does that); the version is pinned by ``package-lock.json``.

It is started as ``node_modules/.bin/azurite-blob`` with:

* ``--blobHost 127.0.0.1 --blobPort 0``: the kernel picks a free port, so parallel workers never
  race for one; Azurite prints ``... successfully listens on http://127.0.0.1:PORT`` even with
  ``--silent``, and that line is read from its log file. A fixed port may be asked for instead.
* ``--inMemoryPersistence``: nothing is kept. Azurite refuses ``--location`` together with it, so
  it runs with the temporary directory as its working directory instead.
* ``--skipApiVersionCheck``: needed; azure-storage-blob 12.31 sends ``x-ms-version: 2026-10-06``
  while Azurite 3.37 knows up to ``2026-06-06`` and otherwise answers 400
  ``InvalidHeaderValue``.
* ``--loose``: ignore headers and parameters Azurite does not support instead of failing.
* ``--silent``: no access log.
* ``--disableTelemetry``: since 3.34 Azurite collects telemetry unless told not to.

``AZURITE_*`` variables are removed from its environment: ``AZURITE_ACCOUNTS`` would replace the
accounts and ``AZURITE_DB`` would move metadata into a SQL database. Only ``devstoreaccount1``
with the well-known key exists.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .paths import node_bin, repo_root

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""The well-known development storage key, the same in Azurite and the ShareFerry emulator."""

_LISTENING = re.compile(r"successfully listens on https?://[^\s:]+:(\d+)")


@dataclass(frozen=True)
class AzuriteInfo:
    """How to reach a running Azurite blob service."""

    host: str
    port: int
    account: str = ACCOUNT
    key: str = ACCOUNT_KEY

    @property
    def endpoint(self) -> str:
        """The path-style blob service URL, ``http://127.0.0.1:PORT/devstoreaccount1``."""
        return f"http://{self.host}:{self.port}/{self.account}"

    @property
    def credential(self) -> dict[str, str]:
        """A shared-key credential the Azure SDK clients accept as ``credential=``."""
        return {"account_name": self.account, "account_key": self.key}

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
            f"BlobEndpoint={self.endpoint};"
        )


class Azurite:
    """An Azurite blob service in a child process; use it as a context manager.

    ``workdir`` is Azurite's working directory and receives its console output (``azurite.log``). ``port`` 0
    lets the kernel choose. ``debug_log`` turns on Azurite's request-level debug log in
    ``workdir/azurite-debug.log``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        debug_log: bool = False,
        start_timeout: float = 60.0,
    ) -> None:
        self.workdir = workdir
        self.host = host
        self.requested_port = port
        self.debug_log = debug_log
        self.start_timeout = start_timeout
        self.log_path = workdir / "azurite.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.info: AzuriteInfo | None = None

    def command(self) -> list[str]:
        executable = node_bin("azurite-blob")
        if not executable.exists():
            raise RuntimeError(
                f"Azurite is not installed ({executable} is missing): run `npm ci` in {repo_root()} "
                "(`make test` does this)"
            )
        if shutil.which("node") is None:
            raise RuntimeError("Azurite needs Node.js, but `node` is not on PATH")
        command = [
            str(executable),
            "--blobHost", self.host,
            "--blobPort", str(self.requested_port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
        ]  # fmt: skip
        if self.debug_log:
            command += ["--debug", str(self.workdir / "azurite-debug.log")]
        return command

    def start(self) -> AzuriteInfo:
        if self._process is not None:
            raise RuntimeError("Azurite is already running")
        command = self.command()
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items() if not key.startswith("AZURITE_")}
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            port = self._wait_until_listening()
        except BaseException:
            self.stop()
            raise
        self.info = AzuriteInfo(host=self.host, port=port)
        return self.info

    def _wait_until_listening(self) -> int:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        port = self.requested_port or None
        while time.monotonic() < deadline:
            status = self._process.poll()
            if status is not None:
                raise RuntimeError(f"Azurite exited with status {status} while starting:\n{self._log_tail()}")
            if port is None:
                match = _LISTENING.search(self.log_path.read_text(errors="replace"))
                if match:
                    port = int(match.group(1))
            if port is not None and _answers(self.host, port):
                return port
            time.sleep(0.05)
        raise RuntimeError(f"Azurite did not listen within {self.start_timeout:.0f} s:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> AzuriteInfo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


@contextlib.contextmanager
def run_azurite(tmp_path: Path, *, port: int = 0, debug_log: bool = False) -> Iterator[AzuriteInfo]:
    """Run Azurite's blob service for the duration of the ``with`` block.

    ``tmp_path`` holds its workspace and log. Raises :class:`RuntimeError` if ``node_modules`` is
    missing (run ``npm ci``) or Azurite does not come up.
    """
    with Azurite(tmp_path, port=port, debug_log=debug_log) as info:
        yield info
