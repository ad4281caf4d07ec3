"""One Azurite for the whole test process, started on first use, for suites whose fixtures
cannot hold a server of their own (the backend conformance factories)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from .azurite import Azurite, AzuriteInfo


@functools.cache
def shared_azurite() -> AzuriteInfo:
    """Start Azurite once (in a temporary directory removed at exit) and say how to reach it."""
    workdir = Path(tempfile.mkdtemp(prefix="shareferry-azurite-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    server = Azurite(workdir)
    info = server.start()
    atexit.register(server.stop)  # runs before the removal above: atexit is last in, first out
    return info
