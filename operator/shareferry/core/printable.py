"""Names made safe to print and to store as text.

A local file name is bytes; Python hands names that are not valid UTF-8 over as text with lone
surrogates (``surrogateescape``), which no UTF-8 stream, JSON document or SQLite column takes.
:func:`carried_name` turns such a name into plain text with its undecodable bytes written as
``\\xNN``; :func:`printable` also escapes control characters, so a name with a line break or a
terminal escape sequence prints as one harmless line.
"""

from __future__ import annotations

import unicodedata


def is_valid_utf8(name: str) -> bool:
    """Whether ``name`` came from valid UTF-8 (no lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def carried_name(name: str) -> str:
    """``name`` as plain text: valid UTF-8 is kept as it is, undecodable bytes become ``\\xNN``."""
    if is_valid_utf8(name):
        return name
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def printable(text: str) -> str:
    """``text`` with control characters (and undecodable bytes) escaped, for a message line."""
    text = carried_name(text)
    if all(unicodedata.category(char) != "Cc" for char in text):
        return text
    return "".join(
        char if unicodedata.category(char) != "Cc" else char.encode("unicode_escape").decode("ascii")
        for char in text
    )
