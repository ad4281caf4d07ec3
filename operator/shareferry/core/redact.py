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
#: The literal each pattern above needs, in lower case: an ASCII text lacking it cannot match.
_NEEDS = ("sig", "accountkey=", "sharedaccesssignature=", "sharedkey ", "account_key")
REDACTED = "REDACTED"


def _replace(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def redact(text: str) -> str:
    """``text`` with every SAS signature and account key replaced by ``REDACTED``.

    An ASCII text (URLs, most errors) is searched only with the patterns whose literal it holds,
    in any letter case (a job's log redacts every request's URL: this makes that 3 times
    cheaper); other text with every pattern (``(?i)`` also matches some non-ASCII letters)."""
    if not text.isascii():
        for pattern in _PATTERNS:
            text = pattern.sub(_replace, text)
        return text
    lowered = text.lower()
    for needed, pattern in zip(_NEEDS, _PATTERNS, strict=True):
        if needed in lowered:
            text = pattern.sub(_replace, text)
            lowered = text.lower()
    return text
