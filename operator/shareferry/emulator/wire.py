"""Wire formats shared by the handlers: timestamps, ETags, ranges, query strings, XML text."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from email.utils import formatdate
from urllib.parse import unquote
from xml.sax.saxutils import escape

from shareferry.emulator.errors import StorageError, invalid_header

TICKS_PER_SECOND = 10_000_000  # Azure's SMB times carry 100 ns resolution (7 fraction digits)
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})?$", re.ASCII
)
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$", re.ASCII)
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)

#: The newest service version the emulator speaks: the one azure-storage-file-share 12.27 sends.
NEWEST_VERSION = "2026-10-06"
#: The first service version with the File service; older ones never had it.
OLDEST_FILES_VERSION = "2014-02-14"


def now_ticks() -> int:
    """The current time in 100 ns ticks since the Unix epoch."""
    return time.time_ns() // 100


def ticks_to_iso(ticks: int) -> str:
    """``2024-05-01T10:20:30.1234567Z``: the form of ``x-ms-file-*-time`` headers."""
    seconds, frac = divmod(ticks, TICKS_PER_SECOND)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{frac:07d}Z"


def iso_to_ticks(text: str, header: str) -> int:
    """Parse an ISO 8601 time with up to 7 fraction digits, exactly (no float rounding)."""
    match = _ISO.match(text.strip())
    if not match:
        raise invalid_header(header, text, "expected ISO 8601 such as 2024-05-01T10:20:30.1234567Z")
    year, month, day, hour, minute, second, frac, zone = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError as exc:
        raise invalid_header(header, text, str(exc)) from exc
    ticks = int(moment.timestamp()) * TICKS_PER_SECOND + int((frac or "0").ljust(7, "0"))
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * TICKS_PER_SECOND
        ticks -= sign * offset
    return ticks


def ticks_to_rfc1123(ticks: int) -> str:
    """``Wed, 01 May 2024 10:20:30 GMT``: the form of ``Last-Modified`` and ``Date``."""
    return formatdate(ticks / TICKS_PER_SECOND, usegmt=True)


def new_etag() -> str:
    """A fresh quoted ETag, different on every change."""
    return f'"0x8{uuid.uuid4().hex[:15].upper()}"'


def parse_range(value: str | None, header: str = "x-ms-range") -> tuple[int, int | None] | None:
    """Parse ``bytes=a-b`` (inclusive) or ``bytes=a-``; None when no header was sent."""
    if value is None or value == "":
        return None
    match = _RANGE.match(value.strip())
    if not match:
        raise invalid_header(header, value, "expected bytes=START-END")
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else None
    if end is not None and end < start:
        raise StorageError(
            416, "InvalidRange", "The range specified is invalid for the current size of the resource."
        )
    return start, end


def is_version(value: str) -> bool:
    """``2026-10-06``: a service version is a real date written ``YYYY-MM-DD``."""
    if not _VERSION.fullmatch(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def check_version(value: str | None, *, authenticated: bool) -> None:
    """Refuse an ``x-ms-version`` the File service would not take, as Azure does.

    A malformed version, one older than the File service or newer than :data:`NEWEST_VERSION`
    is a 400 ``InvalidHeaderValue`` naming the header and its value. A request signed with an
    ``Authorization`` header must name a version (400 ``MissingRequiredHeader``); a SAS request
    may leave it out (its ``sv`` decides).
    """
    if value is None:
        if authenticated:
            raise StorageError(
                400,
                "MissingRequiredHeader",
                "An HTTP header that's mandatory for this request is not specified.",
                details={"HeaderName": "x-ms-version"},
            )
        return
    if not is_version(value):
        raise invalid_header("x-ms-version", value, f"expected a service version such as {NEWEST_VERSION}")
    if value > NEWEST_VERSION:  # YYYY-MM-DD strings sort as the dates they name
        raise invalid_header(
            "x-ms-version", value, f"the newest version this service supports is {NEWEST_VERSION}"
        )
    if value < OLDEST_FILES_VERSION:
        raise invalid_header(
            "x-ms-version", value, f"the File service needs version {OLDEST_FILES_VERSION} or later"
        )


def parse_query(raw_query: str) -> dict[str, str]:
    """Decode a query string without turning ``+`` into a space (SAS signatures are base64).

    Names are case-insensitive in Azure; they are returned lower-cased. A repeated name keeps
    its last value.
    """
    result: dict[str, str] = {}
    if not raw_query:
        return result
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        result[unquote(name).lower()] = unquote(value)
    return result


def xml_text(value: object) -> str:
    return escape(str(value))
