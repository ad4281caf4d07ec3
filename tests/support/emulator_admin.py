"""Talking to a running emulator's admin endpoint from tests: inject faults, read counters."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from shareferry.emulator import RunningEmulator


def _admin(emulator: RunningEmulator, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{emulator.admin_url}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def add_fault(emulator: RunningEmulator, spec: str) -> None:
    """Add one fault rule in the ``--fault`` syntax, e.g. ``busy:PutRange:count=1``."""
    _admin(emulator, "POST", "/faults", {"spec": spec})


def counters(emulator: RunningEmulator) -> dict[str, Any]:
    """The request counters: ``{"operations": {op: {"total": n, "by_status": {...}}}, ...}``."""
    result: dict[str, Any] = _admin(emulator, "GET", "/counters")
    return result
