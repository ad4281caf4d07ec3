"""Run ``shareferry emulator`` as a real child process, as a user would from a shell.

The process is started with ``python -m shareferry emulator ...`` and the one ready line it prints
(``shareferry emulator ready endpoint=... connection_string=...``) is parsed. Stop it with
:meth:`EmulatorProcess.terminate` (SIGTERM, the way a service manager stops it) or use it as a
context manager.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from types import TracebackType

READY = re.compile(r"^shareferry emulator ready endpoint=(?P<endpoint>\S+) connection_string=(?P<conn>\S+)$")


def emulator_command(*args: str) -> list[str]:
    """The command line of ``shareferry emulator`` with ``args``."""
    return [sys.executable, "-m", "shareferry", "emulator", *args]


class EmulatorProcess:
    """A running ``shareferry emulator`` process and what its ready line says."""

    def __init__(self, *args: str, timeout: float = 30) -> None:
        self.args = args
        self.process = subprocess.Popen(
            emulator_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.ready_line = self._read_ready_line(timeout)
        match = READY.match(self.ready_line.rstrip("\n"))
        if match is None:
            self.process.kill()
            _, err = self.process.communicate(timeout=timeout)
            raise AssertionError(f"no ready line from {args!r}: {self.ready_line!r}, stderr {err!r}")
        self.endpoint: str = match["endpoint"]
        self.connection_string: str = match["conn"]
        self.stdout_rest = ""
        self.stderr = ""

    def _read_ready_line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            _, err = self.process.communicate(timeout=timeout)
            raise AssertionError(f"emulator {self.args!r} exited {self.process.returncode}: {err!r}")
        return line

    @property
    def root(self) -> str:
        """``http://HOST:PORT`` without the account."""
        return self.endpoint.rsplit("/", 1)[0]

    @property
    def admin_url(self) -> str:
        return f"{self.root}/_emulator"

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM, wait, and keep whatever it printed after the ready line; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        self.stdout_rest, self.stderr = out, err
        return self.process.returncode

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.terminate()
