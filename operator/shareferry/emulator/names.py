"""Azure's naming rules for shares, directories and files, and the 400 a bad name gets.

Shares: 3-63 lower-case letters, digits and single hyphens (``InvalidResourceName``).
Directories and files, each segment of a path: none of ``" \\ / : | < > * ?`` nor a control
character U+0000-U+001F, not ``.`` or ``..``, not a reserved device name (``CON``, ``LPT1``...),
and at most 255 characters (``OutOfRangeInput``). A whole path: at most 2,048 characters and 250
levels of subdirectories (``InvalidFileOrDirectoryPathName``). Lengths are counted as Azure's
file system counts them, in UTF-16 code units. Trailing dots are trimmed unless the client sent
``x-ms-allow-trailing-dot: true``.
"""

from __future__ import annotations

import re

from shareferry.emulator.errors import StorageError, bad_request

MAX_SEGMENT_CHARS = 255
MAX_PATH_CHARS = 2048
MAX_DIRECTORY_DEPTH = 250

_SHARE_NAME = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]", re.ASCII)
_INVALID_CHARS = frozenset('"\\/:|<>*?') | frozenset(chr(code) for code in range(0x20))
_RESERVED = frozenset(
    ["con", "prn", "aux", "nul", "clock$"] + [f"{port}{n}" for port in ("com", "lpt") for n in range(1, 10)]
)


def validate_share_name(name: str) -> None:
    if not _SHARE_NAME.fullmatch(name):
        raise bad_request(
            "InvalidResourceName",
            "Share names are 3-63 lower-case letters, digits and single hyphens, "
            "starting and ending with a letter or digit.",
        )


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units (a character outside the BMP counts twice)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def normalize_path(path: str, *, allow_trailing_dot: bool, is_directory: bool = False) -> str:
    """Check a path inside a share and return it with each segment as stored.

    ``is_directory``: the path names a directory, so each of its segments is a level of
    subdirectories; a file's last segment is not.
    """
    out: list[str] = []
    for given in path.split("/"):
        if given == "":
            continue
        out.append(_segment(given, allow_trailing_dot=allow_trailing_dot))
    normalized = "/".join(out)
    if utf16_length(normalized) > MAX_PATH_CHARS:
        raise bad_request("InvalidFileOrDirectoryPathName", "File or directory path is too long.")
    depth = len(out) if is_directory else max(0, len(out) - 1)
    if depth > MAX_DIRECTORY_DEPTH:
        raise bad_request(
            "InvalidFileOrDirectoryPathName", "File or directory path has too many subdirectories."
        )
    return normalized


def _segment(given: str, *, allow_trailing_dot: bool) -> str:
    if _INVALID_CHARS.intersection(given):
        raise _invalid(given)
    segment = given if allow_trailing_dot else given.rstrip(".")
    if segment in ("", ".", "..") or segment.casefold() in _RESERVED:
        raise _invalid(given)
    if utf16_length(segment) > MAX_SEGMENT_CHARS:
        raise StorageError(
            400, "OutOfRangeInput", "The specified resource name length is not within the permissible limits."
        )
    return segment


def _invalid(segment: str) -> StorageError:
    shown = segment if len(segment) <= 64 else segment[:64] + "..."
    # Azure's own message, misspelling included; the name is shown escaped (repr).
    return bad_request(
        "InvalidResourceName", f"The specifed resource name contains invalid characters: {shown!r}."
    )
