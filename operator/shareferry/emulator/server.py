"""Running the emulator: blocking from the CLI, or in a background thread for tests and demos."""

from __future__ import annotations

import asyncio
import signal
import threading
from dataclasses import replace
from types import TracebackType

from aiohttp import web

from shareferry.emulator.app import Emulator, build_app
from shareferry.emulator.config import Account, EmulatorConfig
from shareferry.emulator.protocol import AzureAppRunner

#: The longest request line or header line read. A valid path of 2,048 characters, each
#: percent-encoded as up to 9 bytes, plus a SAS query, must fit (aiohttp's default is 8,190).
MAX_REQUEST_LINE = 32 * 1024


def connection_string(endpoint_root: str, account: Account) -> str:
    """A connection string the Azure SDKs accept for one account of the emulator."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={account.name};AccountKey={account.key};"
        f"FileEndpoint={endpoint_root}/{account.name};"
    )


def ready_line(config: EmulatorConfig, port: int) -> str:
    """The one line printed at start: endpoint and a ready connection string, easy to parse."""
    root = f"http://{_host_for_url(config.host)}:{port}"
    first = config.accounts[0]
    return (
        f"shareferry emulator ready endpoint={root}/{first.name} "
        f"connection_string={connection_string(root, first)}"
    )


def _host_for_url(host: str) -> str:
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def _start(config: EmulatorConfig) -> tuple[web.AppRunner, int, Emulator]:
    emulator = Emulator(config)
    app = build_app(emulator)
    runner = AzureAppRunner(
        app,
        access_log=None,
        handle_signals=False,
        max_line_size=MAX_REQUEST_LINE,
        max_field_size=MAX_REQUEST_LINE,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # type: ignore[attr-defined]
    port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    return runner, port, emulator


def serve(config: EmulatorConfig) -> None:
    """Serve until SIGINT/SIGTERM, printing the ready line once listening."""

    async def main() -> None:
        runner, port, _emulator = await _start(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # Only now: a supervisor may send SIGTERM as soon as it has read the ready line.
        print(ready_line(config, port), flush=True)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


class RunningEmulator:
    """An emulator on a free loopback port in a background thread; a context manager.

    >>> with RunningEmulator() as emu:
    ...     emu.connection_string()
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.state: Emulator | None = None  # the live state, for in-process benchmarks and tests

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def account_url(self, account: str | None = None) -> str:
        return f"{self.root}/{account or self.config.accounts[0].name}"

    def account(self, name: str | None = None) -> Account:
        if name is None:
            return self.config.accounts[0]
        found = self.config.account(name)
        if found is None:
            raise KeyError(name)
        return found

    def connection_string(self, account: str | None = None) -> str:
        return connection_string(self.root, self.account(account))

    @property
    def admin_url(self) -> str:
        return f"{self.root}/_emulator"

    def start(self) -> RunningEmulator:
        ready = threading.Event()
        errors: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._runner, self.port, self.state = loop.run_until_complete(_start(self.config))
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="shareferry-emulator", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
        self._loop = None
        self._thread = None

    def restarted(self) -> RunningEmulator:
        """A new emulator on the same port and settings (for persistence checks)."""
        self.stop()
        return RunningEmulator(replace(self.config, port=self.port)).start()

    def __enter__(self) -> RunningEmulator:
        return self.start() if self._thread is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
