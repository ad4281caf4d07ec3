"""Talking to a running emulator's admin endpoint from tests: inject faults, read counters."""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from azure.storage.fileshare import ShareServiceClient

from shareferry.emulator import RunningEmulator


def _admin(emulator: RunningEmulator | str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{admin_url(emulator)}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def admin_url(emulator: RunningEmulator | str) -> str:
    """The admin endpoint of an in-process emulator, or of the one serving any URL on it.

    A string may be the emulator's root, the ``endpoint=`` its ready line prints
    (``http://HOST:PORT/devstoreaccount1``) or any file URL on it.
    """
    if isinstance(emulator, RunningEmulator):
        return emulator.admin_url
    parts = urlsplit(emulator)
    return f"{parts.scheme}://{parts.netloc}/_emulator"


def add_fault(emulator: RunningEmulator, spec: str) -> None:
    """Add one fault rule in the ``--fault`` syntax, e.g. ``busy:PutRange:count=1``."""
    _admin(emulator, "POST", "/faults", {"spec": spec})


def counters(emulator: RunningEmulator | str, *, paths: bool = False) -> dict[str, Any]:
    """The request counters: ``{"operations": {op: {"total": n, "by_status": {...}}}, ...}``.

    With ``paths`` also ``"paths"`` (writes per file) and ``"paths_truncated"``.
    """
    result: dict[str, Any] = _admin(emulator, "GET", "/counters?paths=1" if paths else "/counters")
    return result


def reset_counters(emulator: RunningEmulator | str) -> None:
    """Zero every request counter, the per-file writes included."""
    _admin(emulator, "DELETE", "/counters")


def writes_per_file(emulator: RunningEmulator | str) -> dict[str, dict[str, int]]:
    """Successful content writes per file since the last reset, per operation.

    ``{"devstoreaccount1/share/dir/a.txt": {"CreateFile": 1, "PutRange": 3}}``: keys are
    ``account/share/path``, the path decoded and spelled as the emulator stores it. Raises if the
    emulator stopped tracking new files (its cap was reached), since the answer would be partial.
    """
    snapshot = counters(emulator, paths=True)
    if snapshot["paths_truncated"]:
        raise AssertionError("the emulator tracked too many files; per-file writes are incomplete")
    paths: dict[str, dict[str, int]] = snapshot["paths"]
    return paths


def service_client(emulator: RunningEmulator) -> ShareServiceClient:
    """An Azure SDK client of the emulator's account, signed with its Shared Key."""
    account = emulator.account()
    return ShareServiceClient(
        account_url=emulator.account_url(),
        credential={"account_name": account.name, "account_key": account.key},
    )
