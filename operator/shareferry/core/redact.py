"""Redaction of secrets in anything that may be printed: SAS signatures and account keys.

A secret's value ends at a backslash too (base64 and URL encoding never hold one), so text that
is already JSON-escaped (``sig=abc\\"``) keeps its escapes whole when it is redacted again."""

from __future__ import annotations

import re

_PATTERNS = (
    re.compile(r"(?i)((?:^|[?&;\s/])sig(?:=|%3D))[^&\s;\"'\\]+"),
    re.compile(r"(?i)(AccountKey=)[^;\s\"'\\]+"),
    re.compile(r"(?i)(SharedAccessSignature=)[^;\s\"'\\]+"),
    re.compile(r"(?i)(SharedKey [^:\s]+:)[A-Za-z0-9+/=]+"),
    re.compile(r"(?i)(\"?account_key\"?\s*[:=]\s*\"?)[A-Za-z0-9+/=]{16,}"),
)
REDACTED = "REDACTED"


def redact(text: str) -> str:
    """``text`` with every SAS signature and account key replaced by ``REDACTED``."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text
