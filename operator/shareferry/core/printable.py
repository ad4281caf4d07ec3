"""Text safe to show on a terminal or in a log: secrets redacted, control characters escaped.

A file name can hold any character but ``/`` and NUL: an escape sequence that retitles the
window or clears the screen, a carriage return that overwrites the line, a newline that forges a
line of its own (``FAILED: ...``), a right-to-left override that shows ``exe.txt`` as ``txt.exe``.
Everything ShareFerry prints for people goes through :func:`printable`, which writes each such
character as an escape: ``\\t``, ``\\n``, ``\\r``, ``\\x1b`` for the other C0 controls and DEL,
``\\u0085`` for C1 controls, bidirectional controls, line and paragraph separators and lone
surrogates (a local name that is not valid UTF-8). Backslashes are left as they are, so the
escapes are for reading, not for reversing.

JSON keeps the exact name (JSON escapes C0 controls itself): :func:`printable_json` takes the
text of a JSON document and writes the other unsafe characters, which JSON lets through raw, as
``\\uXXXX`` escapes, so the document still parses to the same values.
"""

from __future__ import annotations

import re

from shareferry.core.redact import redact

#: Characters that move the cursor, change the terminal's state, break a line or reorder text:
#: C0 controls, DEL, C1 controls, the bidirectional controls (ALM, LRM, RLM, LRE..RLO,
#: LRI..PDI), LINE and PARAGRAPH SEPARATOR, and lone surrogates.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
#: Of those, what ``json.dumps(..., ensure_ascii=False)`` leaves raw (it escapes C0 itself, and
#: C0 outside strings is the document's own layout).
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every :data:`UNSAFE` character written as an escape (see the module
    docstring); everything else, non-ASCII letters included, as it is."""
    return UNSAFE.sub(_escape, text)


def printable(text: str) -> str:
    """``text`` as it may be printed for people: secrets redacted, control characters escaped
    (so it never holds a line break of its own)."""
    return escape_controls(redact(text))


def printable_json(document: str) -> str:
    """The text of a JSON document (``json.dumps(..., ensure_ascii=False)``) redacted, with the
    unsafe characters JSON lets through raw written as ``\\uXXXX``: the same JSON values."""
    return _RAW_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", redact(document))


def is_valid_utf8(name: str) -> bool:
    """Whether ``name`` came from valid UTF-8 (no lone surrogates: see :func:`carried_name`)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def carried_name(name: str) -> str:
    """A local name as plain text that any path, JSON document or SQLite column can carry.

    Python hands over a local name that is not valid UTF-8 as text with lone surrogates
    (``surrogateescape``), which none of those take. Valid UTF-8 is kept as it is; each byte that
    does not decode becomes ``\\xNN`` (``bad\\xff.txt``), so the name still reads as it is held."""
    if is_valid_utf8(name):
        return name
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
