"""An Azure Files REST emulator that the real Azure SDK and AzCopy talk to.

Microsoft's Azurite has no File service, so ShareFerry ships this one: an aiohttp server speaking
the path-style File REST API (``http://HOST:PORT/<account>/<share>/<path>``), with SharedKey and
SAS auth, share snapshots, SMB properties, server-side copies, persistence and fault injection.

It is a separate program: nothing in ``shareferry.core`` imports it. Use :class:`RunningEmulator`
to run it inside a process (tests, the demo) or ``shareferry emulator`` from a shell.
"""

from shareferry.emulator.config import Account, EmulatorConfig
from shareferry.emulator.server import RunningEmulator

__all__ = ["Account", "EmulatorConfig", "RunningEmulator"]
