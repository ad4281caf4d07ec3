"""The credentials a Secret holds: its CREDENTIAL_KEYS, decoded as the API server merges them.

Shared by the controller (a FileShare's Secret, read from the API) and the worker (Secret
documents given to ``shareferry run``): ``data`` is base64, ``stringData`` plain text over it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shareferry.api.names import CREDENTIAL_KEYS


@dataclass(frozen=True)
class SecretCredentials:
    """``values`` by key; ``undecodable`` names the ``data`` keys that were not base64 of UTF-8."""

    values: dict[str, str] = field(default_factory=dict)
    undecodable: tuple[str, ...] = ()


def secret_credentials(secret: Mapping[str, Any]) -> SecretCredentials:
    values: dict[str, str] = {}
    undecodable: list[str] = []
    for key, encoded in (secret.get("data") or {}).items():
        if key not in CREDENTIAL_KEYS:
            continue
        try:
            values[key] = base64.b64decode(str(encoded), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            undecodable.append(key)
    for key, text in (secret.get("stringData") or {}).items():
        if key in CREDENTIAL_KEYS:
            values[key] = str(text)
    return SecretCredentials(values, tuple(undecodable))
