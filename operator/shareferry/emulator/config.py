"""The emulator's settings: accounts, listen address, storage mode and strictness."""

from __future__ import annotations

import argparse
import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path

WELL_KNOWN_ACCOUNT = "devstoreaccount1"
#: Seconds without a byte of a request body before the connection is cut (Azure waits about a minute).
DEFAULT_BODY_READ_TIMEOUT = 60.0
MAX_BODY_READ_TIMEOUT = 3600.0
WELL_KNOWN_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True)
class Account:
    """A storage account the emulator serves: a name and its base64 shared key."""

    name: str
    key: str

    @property
    def key_bytes(self) -> bytes:
        return base64.b64decode(self.key)

    @classmethod
    def parse(cls, text: str) -> Account:
        """Parse ``NAME:BASE64KEY`` as given to ``--account``."""
        name, sep, key = text.partition(":")
        if not sep or not name or not key:
            raise ValueError(f"--account wants NAME:BASE64KEY, got {text.split(':', 1)[0]!r}:…")
        if not name.isalnum() or not name.islower() or not 3 <= len(name) <= 24:
            raise ValueError(f"account name {name!r} must be 3-24 lower-case letters and digits, as in Azure")
        try:
            base64.b64decode(key, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"the key of account {name!r} is not valid base64") from exc
        return cls(name=name, key=key)


def default_accounts() -> tuple[Account, ...]:
    return (Account(WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY),)


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything ``shareferry emulator`` can be told.

    ``data_dir`` None means in-memory: nothing survives a restart. ``loose`` ignores unknown
    headers and query parameters instead of failing with 400. ``port`` 0 picks a free port.
    ``fault_specs`` are rules in the ``--fault`` syntax, active from the start.
    ``body_read_timeout``: seconds a request may go without sending a byte of the body it
    announced before its connection is cut (the operation is not applied).
    """

    host: str = "127.0.0.1"
    port: int = 0
    accounts: tuple[Account, ...] = field(default_factory=default_accounts)
    data_dir: Path | None = None
    loose: bool = False
    fault_specs: tuple[str, ...] = ()
    fault_seed: int | None = None
    body_read_timeout: float = DEFAULT_BODY_READ_TIMEOUT

    def __post_init__(self) -> None:
        if not 0 < self.body_read_timeout <= MAX_BODY_READ_TIMEOUT:
            raise ValueError(
                f"the body read timeout must be more than 0 and at most {MAX_BODY_READ_TIMEOUT:g} seconds"
            )

    def account(self, name: str) -> Account | None:
        for account in self.accounts:
            if account.name == name:
                return account
        return None


def body_read_timeout(text: str) -> float:
    """Parse ``--body-read-timeout SECONDS``: a number more than 0, at most an hour."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= MAX_BODY_READ_TIMEOUT:  # also refuses nan
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds more than 0 and at most {MAX_BODY_READ_TIMEOUT:g}, got {text!r}"
        )
    return seconds
