"""Refuse a copy or sync whose destination overlaps its source, before anything is read or written.

Copying a share onto itself truncates every file it is about to read; a destination inside the
source is walked while it is being filled and never ends; a sync whose destination contains the
source deletes or overwrites the source. :func:`check_overlap` raises a one-line
:class:`UsageError` for all of them.

Two places are the same when the service would take them to be the same:

* Remote: the same service (Files or Blob: the two of one account never overlap) of the same
  account, the same share or container, and paths that compare equal segment by segment after
  URL decoding, ignoring empty segments and trailing slashes (case-insensitively on Azure Files,
  which keeps case but ignores it). A source read from a share snapshot never overlaps: a snapshot
  is read-only. An account-level location overlaps every share or container of its account.
* Accounts: public endpoints name their account in the host, in any letter case; the ``.file.``
  and DNS zone (``.zNN.file.storage.azure.net``) endpoints and the read-access ``-secondary`` one
  of an account all name the same data. Path-style endpoints (``http://HOST:PORT/<account>``) are
  the same account when the account and port agree and the hosts could be the same machine: the
  same name or address, or both this machine (``localhost``, ``127.0.0.1``, ``[::1]``, ...).
* Local: real paths (symlinks resolved), compared case-sensitively, and a directory reached by
  another path (a bind mount) is recognised by its device and inode.

What overlaps, with ``S`` the source and ``D`` the destination:

* ``D`` is ``S`` or inside it (both commands);
* ``copy``: where ``S`` lands, ``D/<name of S>``, is ``S`` (``D`` is the directory that holds
  ``S``) or contains it;
* ``sync``: ``D`` contains ``S`` (a sync mirrors into ``D`` and deletes there);
* a wildcard source (``dir/pre*``) is compared on its fixed part: its files are below ``dir``
  with names starting ``pre``, and they land below ``D`` by their path relative to ``dir``; so
  ``D`` overlaps when it is ``dir``, or when the first name on the way between ``dir`` and ``D``
  (either way) starts with ``pre``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import unicodedata
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit

from shareferry.core.errors import UsageError
from shareferry.core.locations import Location

Command = Literal["copy", "sync"]
Segments = tuple[str, ...]

WILDCARD = "*"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# Public clouds by the suffix of their endpoints: an account name is unique within one cloud.
_CLOUDS = (
    ("core.windows.net", "public"),
    ("storage.azure.net", "public"),  # DNS zone endpoints of the public cloud
    ("core.chinacloudapi.cn", "china"),
    ("core.usgovcloudapi.net", "usgov"),
)
# Bidirectional formatting characters: they reorder what a terminal shows.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def check_overlap(source: Location, destination: Location, *, command: Command) -> None:
    """Raise :class:`UsageError` when ``destination`` overlaps ``source`` for ``command``.

    Reads nothing remote; for local paths it resolves symlinks and stats existing directories.
    """
    problem = find_overlap(source, destination, command=command)
    if problem is not None:
        raise UsageError(f"refusing to {command}: {problem}")


def find_overlap(source: Location, destination: Location, *, command: Command) -> str | None:
    """Why ``destination`` overlaps ``source`` (the reason, without the ``refusing to`` prefix),
    or None when they are apart."""
    shown_source, shown_destination = shown(source), shown(destination)
    pair = _positions(source, destination)
    if pair is None:
        return None
    if isinstance(pair, _AccountWide):
        return pair.reason(shown_source, shown_destination)
    source_at, destination_at = pair
    base, stem = _wildcard_base(source_at)
    if stem is not None:
        return _wildcard_overlap(base, stem, destination_at, shown_source, shown_destination)
    return _plain_overlap(source_at, destination_at, command, shown_source, shown_destination)


def shown(location: Location) -> str:
    """How a refusal names a location: without its SAS (a snapshot, a trailing ``/`` and
    wildcards as written), control characters escaped."""
    return printable(replace(location, sas=None).describe())


def printable(text: str) -> str:
    """``text`` with control and bidirectional formatting characters escaped (``\\x1b``,
    ``\\n``, ``\\u202e``), so a name cannot rewrite the line it is printed on."""
    return "".join(_escape(char) for char in text)


def _escape(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if unicodedata.category(char) == "Cc" or char in _BIDI:
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


# -- positions ------------------------------------------------------------------------------------


class _Position(Protocol):
    """A place in one namespace (a share, a container, the local file system)."""

    def below(self, other: _Position) -> Segments | None:
        """The segments from ``other`` down to this place when this is ``other`` or inside it,
        else None."""

    def child(self, name: str) -> _Position: ...

    @property
    def name(self) -> str:
        """The last segment (what a recursive copy recreates at its destination)."""


@dataclass(frozen=True)
class _RemotePosition:
    """A normalised path in one share or container (the root is ``()``)."""

    segments: Segments
    container: str
    fold: bool

    def below(self, other: _Position) -> Segments | None:
        assert isinstance(other, _RemotePosition)
        length = len(other.segments)
        if self.segments[:length] != other.segments:
            return None
        return self.segments[length:]

    def child(self, name: str) -> _RemotePosition:
        return _RemotePosition((*self.segments, _fold(name, fold=self.fold)), self.container, self.fold)

    @property
    def name(self) -> str:
        return self.segments[-1] if self.segments else _fold(self.container, fold=self.fold)


@dataclass(frozen=True)
class _LocalPosition:
    """An absolute local path, ``~`` expanded (it may not exist yet)."""

    path: Path

    def below(self, other: _Position) -> Segments | None:
        assert isinstance(other, _LocalPosition)
        return _local_below(self.path, other.path)

    def child(self, name: str) -> _LocalPosition:
        return _LocalPosition(self.path / name)

    @property
    def name(self) -> str:
        return self.path.name


def _local_below(inner: Path, outer: Path) -> Segments | None:
    """``inner`` relative to ``outer`` when it is ``outer`` or inside it: by their real paths
    (symlinks resolved), else by finding ``outer``'s directory (its device and inode) among
    ``inner``'s ancestors, as a bind mount or a second path to one directory shows it."""
    real_inner, real_outer = inner.resolve(), outer.resolve()
    if real_inner.is_relative_to(real_outer):
        return real_inner.relative_to(real_outer).parts
    try:
        wanted = outer.stat()
    except OSError:
        return None
    for ancestor in (real_inner, *real_inner.parents):
        try:
            found = ancestor.stat()
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == (wanted.st_dev, wanted.st_ino):
            return real_inner.relative_to(ancestor).parts
    return None


def _fold(name: str, *, fold: bool) -> str:
    return name.casefold() if fold else name


def _segments(path: str, *, fold: bool) -> Segments:
    """A decoded ``/``-separated path as the service resolves it: empty and ``.`` segments
    dropped, ``..`` taking one back, letter case folded on Azure Files."""
    kept: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
            continue
        kept.append(_fold(segment, fold=fold))
    return tuple(kept)


# -- which namespace ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AccountWide:
    """Two locations of one account where at least one names the whole account."""

    source_wide: bool

    def reason(self, source: str, destination: str) -> str:
        if self.source_wide:
            return (
                f"the source {source} names every share and container of its account, "
                f"and the destination {destination} is in that account"
            )
        return f"the destination {destination} is the whole account of the source {source}"


def _positions(source: Location, destination: Location) -> tuple[_Position, _Position] | _AccountWide | None:
    """Both locations as positions of one namespace; None when they cannot overlap."""
    if source.kind == "local" and destination.kind == "local":
        assert source.local_path is not None and destination.local_path is not None
        return _LocalPosition(_absolute(source.local_path)), _LocalPosition(_absolute(destination.local_path))
    if source.kind != destination.kind or "local" in (source.kind, destination.kind):
        return None
    if source.snapshot is not None:
        return None  # a snapshot is read-only: writing the live share cannot change it
    if not same_account(source, destination):
        return None
    if source.container is None or destination.container is None:
        return _AccountWide(source_wide=source.container is None)
    fold = source.kind == "file"
    if _fold(source.container, fold=fold) != _fold(destination.container, fold=fold):
        return None
    return (
        _RemotePosition(_segments(source.path, fold=fold), source.container, fold),
        _RemotePosition(_segments(destination.path, fold=fold), destination.container, fold),
    )


def _absolute(path: str) -> Path:
    """``~`` expanded and ``..`` folded lexically, as the backends take a local path."""
    return Path(os.path.abspath(os.path.expanduser(path)))  # noqa: PTH100, PTH111


def _wildcard_base(position: _Position) -> tuple[_Position, str | None]:
    """For a source with ``*``: the directory before the first wildcard segment and that
    segment's fixed prefix. Otherwise ``(position, None)``."""
    if isinstance(position, _LocalPosition):
        parts = position.path.parts
        wild = [index for index, part in enumerate(parts) if WILDCARD in part]
        if not wild:
            return position, None
        return _LocalPosition(Path(*parts[: wild[0]])), parts[wild[0]].partition(WILDCARD)[0]
    assert isinstance(position, _RemotePosition)
    segments = position.segments
    wild = [index for index, segment in enumerate(segments) if WILDCARD in segment]
    if not wild:
        return position, None
    first = wild[0]
    return _RemotePosition(segments[:first], position.container, position.fold), segments[first].partition(
        WILDCARD
    )[0]


# -- accounts -------------------------------------------------------------------------------------


def same_account(first: Location, second: Location) -> bool:
    """Whether two remote locations could name the same storage account (see the module rules)."""
    assert first.endpoint is not None and second.endpoint is not None
    return _account_key(first.endpoint, first.account) == _account_key(second.endpoint, second.account)


def _account_key(endpoint: str, account: str | None) -> tuple[str, ...]:
    """What names an account: its cloud and name for a public endpoint; for a path-style one its
    host (every spelling of this machine counted as one host), port and name."""
    split = urlsplit(endpoint)
    host = split.hostname or ""
    name = (account or "").lower()
    if not split.path.strip("/"):
        for suffix, cloud in _CLOUDS:
            if host.endswith("." + suffix):
                return ("public", cloud, name)
        return ("host", host, name)
    return ("path", _host_key(host), str(_port(split.scheme, split.port)), name)


def _port(scheme: str, port: int | None) -> int:
    return port if port is not None else _DEFAULT_PORTS.get(scheme.lower(), 0)


def _host_key(host: str) -> str:
    return "this machine" if _is_this_machine(host) else _address_text(host)


def _address_text(host: str) -> str:
    """An IP address in one spelling (``::ffff:127.0.0.1`` and ``0:0::1`` folded); names as
    given, in lower case."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.lower().rstrip(".")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def _is_this_machine(host: str) -> bool:
    """Loopback names and addresses, the unspecified address (a connection to it reaches this
    machine) and this machine's own host name."""
    text = host.lower().rstrip(".")
    if text in _LOCAL_NAMES or text.endswith(".localhost") or text == _hostname():
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


@cache
def _hostname() -> str:
    return socket.gethostname().lower().rstrip(".")


# -- the rules ------------------------------------------------------------------------------------


def _plain_overlap(
    source: _Position, destination: _Position, command: Command, shown_source: str, shown_destination: str
) -> str | None:
    inside = destination.below(source)
    if inside == ():
        return f"the destination {shown_destination} is the source {shown_source}"
    if inside is not None:
        return f"the destination {shown_destination} is inside the source {shown_source}"
    if command == "sync":
        if source.below(destination) is not None:
            return (
                f"the destination {shown_destination} contains the source {shown_source}, "
                "which the sync would overwrite or delete"
            )
        return None
    landing = destination.child(source.name)
    if landing.below(source) is not None:
        return f"the source {shown_source} would be copied onto itself in the destination {shown_destination}"
    if source.below(landing) is not None:
        return (
            f"the source {shown_source} is inside the place it would be copied to in the "
            f"destination {shown_destination}"
        )
    return None


def _wildcard_overlap(
    base: _Position, stem: str, destination: _Position, shown_source: str, shown_destination: str
) -> str | None:
    """A wildcard source's matches are below ``base``, named ``stem...`` at the first level, and
    land below ``destination`` by their path relative to ``base``."""

    def matches(rest: Segments) -> bool:
        return bool(rest) and rest[0].startswith(stem)

    down = destination.below(base)
    if down == ():
        return f"the source {shown_source} would be copied onto itself in the destination {shown_destination}"
    if down is not None and matches(down):
        return f"the destination {shown_destination} is inside the source {shown_source}"
    up = base.below(destination)
    if up is not None and matches(up):
        return (
            f"the destination {shown_destination} contains the source {shown_source}, "
            "and its files could be copied onto themselves"
        )
    return None
