"""Parse AzCopy-style source and destination arguments into typed locations.

A location is a local path or an Azure Files / Blob URL. Two URL styles exist:

* Virtual-host style, the public Azure endpoints: ``https://<account>.file.core.windows.net/<share>/<path>``
  and ``https://<account>.blob.core.windows.net/<container>/<path>`` (also the China and US
  Government clouds, ``core.chinacloudapi.cn`` and ``core.usgovcloudapi.net``, the read-access
  secondary ``<account>-secondary.…`` and Azure DNS zone endpoints
  ``<account>.zNN.file.storage.azure.net``). The host says whether it is Files or Blob and names
  the account.
* Path-style, every other host (an IP address, ``localhost``, a Kubernetes Service name, Azure
  Stack): ``http://HOST:PORT/<account>/<container>/<path>``. The host cannot say whether it is Files
  or Blob: ``--from-to`` must.

Paths are percent-decoded once per segment (``%23`` is ``#``, ``%25`` is ``%``, ``+`` stays ``+``).
A raw SAS is kept only in :attr:`Location.sas` and in ``raw``; everything printable goes through
:meth:`Location.describe`, which replaces the signature with ``REDACTED``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, quote, unquote, urlsplit

from shareferry.core.errors import UsageError
from shareferry.core.printable import printable
from shareferry.core.redact import REDACTED, redact

LocationKind = Literal["local", "file", "blob"]
RemoteKind = Literal["file", "blob"]


class FromTo(StrEnum):
    """AzCopy's ``--from-to`` pairs that ShareFerry supports."""

    LocalFile = "LocalFile"
    FileLocal = "FileLocal"
    FileFile = "FileFile"
    LocalBlob = "LocalBlob"
    BlobLocal = "BlobLocal"
    BlobBlob = "BlobBlob"
    BlobFile = "BlobFile"
    FileBlob = "FileBlob"

    @property
    def source_kind(self) -> LocationKind:
        return _kinds_of(self.value)[0]

    @property
    def destination_kind(self) -> LocationKind:
        return _kinds_of(self.value)[1]

    @classmethod
    def of(cls, source: LocationKind, destination: LocationKind) -> FromTo:
        """The pair for two kinds; :class:`UsageError` when ShareFerry does not copy that way."""
        name = _WORD_OF_KIND[source] + _WORD_OF_KIND[destination]
        if name not in cls.__members__:
            raise UsageError(f"copying from {_NOUN[source]} to {_NOUN[destination]} is not supported")
        return cls(name)


_FROM_TO_WORDS = re.compile(r"(Local|File|Blob)(Local|File|Blob)")
_KIND_OF_WORD: dict[str, LocationKind] = {"Local": "local", "File": "file", "Blob": "blob"}
_WORD_OF_KIND: dict[LocationKind, str] = {"local": "Local", "file": "File", "blob": "Blob"}


def _kinds_of(pair: str) -> tuple[LocationKind, LocationKind]:
    match = _FROM_TO_WORDS.fullmatch(pair)
    assert match is not None
    return _KIND_OF_WORD[match.group(1)], _KIND_OF_WORD[match.group(2)]


_NOUN: dict[LocationKind, str] = {"local": "a local path", "file": "Azure Files", "blob": "Azure Blob"}
_VALID_FROM_TO = ", ".join(member.value for member in FromTo)

# Public endpoints (virtual-host style). The service label decides Files or Blob.
_CLOUD_SUFFIXES = r"core\.windows\.net|core\.chinacloudapi\.cn|core\.usgovcloudapi\.net"
_PUBLIC_HOST = re.compile(rf"(?P<account>[^.]+)\.(?P<service>[a-z0-9]+)\.(?:{_CLOUD_SUFFIXES})")
_DNS_ZONE_HOST = re.compile(r"(?P<account>[^.]+)\.z\d{1,2}\.(?P<service>[a-z0-9]+)\.storage\.azure\.net")
_SERVICE_KIND: dict[str, RemoteKind] = {"file": "file", "blob": "blob"}
_SECONDARY = "-secondary"

_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")
_CONTAINER_NAME = re.compile(r"(?=.{3,63}\Z)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*")
_SPECIAL_CONTAINERS = frozenset({"$root", "$web", "$logs"})
_OTHER_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://")
_SNAPSHOT_PARAM: dict[RemoteKind, str] = {"file": "sharesnapshot", "blob": "snapshot"}


@dataclass(frozen=True, repr=False)
class Location:
    """One side of a transfer: a local path, or a place in an Azure Files share or Blob container.

    ``raw`` is the argument as given and may hold a SAS: never print it, print :meth:`describe`.

    Local: ``local_path`` is the root (as given, ``~`` expanded, may contain ``*``) and ``path``
    is relative to it (``""`` as parsed). Remote: ``endpoint`` is the service root including the
    account for path-style URLs (``http://127.0.0.1:10000/devstoreaccount1``,
    ``https://acct.file.core.windows.net``), ``container`` the share or container (``None`` at
    account level) and ``path`` the ``/``-separated, decoded path inside it without leading or
    trailing ``/`` (it may end with ``/*`` or hold ``*`` wildcards; ``""`` is the container root).
    ``snapshot`` is the ``sharesnapshot`` (Files) or ``snapshot`` (Blob) value; ``sas`` the rest of
    the query, still percent-encoded, without ``?``.
    """

    kind: LocationKind
    raw: str
    local_path: str | None = None
    endpoint: str | None = None
    account: str | None = None
    container: str | None = None
    path: str = ""
    trailing_slash: bool = False
    snapshot: str | None = None
    sas: str | None = None

    @property
    def is_remote(self) -> bool:
        return self.kind != "local"

    def describe(self) -> str:
        """A printable name: the URL with its SAS signature replaced by ``REDACTED``, or the
        local path."""
        if self.kind == "local":
            assert self.local_path is not None
            return str(Path(self.local_path) / self.path) if self.path else self.local_path
        assert self.endpoint is not None
        params = [(_SNAPSHOT_PARAM[self.kind], self.snapshot)] if self.snapshot else []
        return _printable_url(self.endpoint, self.container, self.path, self.trailing_slash, params, self.sas)

    def __repr__(self) -> str:
        return f"Location(kind={self.kind!r}, {self.describe()!r})"

    def with_path(self, path: str) -> Location:
        """The same root with another ``path`` (``/``-separated, relative to the container, or to
        ``local_path`` for local locations)."""
        return replace(self, path=path.strip("/"), trailing_slash=path.endswith("/"))

    def url(self, path: str | None = None, *, with_sas: bool = True) -> str:
        """The URL of ``path`` (default :attr:`path`) in the container, each segment
        percent-encoded, with the snapshot and (when ``with_sas``) the SAS as its query.
        ``ValueError`` for local locations and for a path at account level."""
        if self.kind == "local":
            raise ValueError("a local location has no URL")
        assert self.endpoint is not None
        params = [(_SNAPSHOT_PARAM[self.kind], self.snapshot)] if self.snapshot else []
        return _format_url(
            self.endpoint,
            self.container,
            self.path if path is None else path,
            params,
            self.sas if with_sas else None,
        )


def parse_location(text: str, *, kind_hint: LocationKind | None = None) -> Location:
    """Parse one argument. ``kind_hint`` is what ``--from-to`` says this side is: required for
    path-style URLs, checked against the kind the host implies otherwise. Raises
    :class:`UsageError` (one line, never with the SAS) for anything malformed."""
    parsed = _parse(text)
    if kind_hint is None:
        if isinstance(parsed, _RemoteParts) and parsed.inferred is None:
            raise UsageError(_cannot_infer(parsed))
        return _finish(parsed, _inferred_kind(parsed))
    mismatch = _mismatch(parsed, kind_hint)
    if mismatch is not None:
        raise UsageError(f"{parsed.describe()} is {mismatch}, not {_NOUN[kind_hint]}")
    return _finish(parsed, kind_hint)


def resolve(source: str, destination: str, from_to: str | None) -> tuple[FromTo, Location, Location]:
    """Parse both sides of a copy and settle ``--from-to`` the way AzCopy does.

    An explicit ``from_to`` (any letter case; AzCopy 10.32's ``FileSMB`` spelling is ``File``,
    ``FileNFS`` is refused) must be one of :class:`FromTo` and agree with every kind a host implies; without one both sides must be inferable (local paths and public
    endpoints). Local to local is refused, a snapshot cannot be a destination, and a local source
    without wildcards must exist. Every failure is a one-line :class:`UsageError`.
    """
    explicit = _parse_from_to(from_to)
    parsed_source, parsed_destination = _parse(source), _parse(destination)
    if explicit is None:
        if isinstance(parsed_source, Location) and isinstance(parsed_destination, Location):
            raise UsageError(_local_to_local())
        for side in (parsed_source, parsed_destination):
            if isinstance(side, _RemoteParts) and side.inferred is None:
                raise UsageError(_cannot_infer(side))
        pair = FromTo.of(_inferred_kind(parsed_source), _inferred_kind(parsed_destination))
    else:
        pair = explicit
        _check_agrees(pair, "source", parsed_source, pair.source_kind)
        _check_agrees(pair, "destination", parsed_destination, pair.destination_kind)
    source_location = _finish(parsed_source, pair.source_kind)
    destination_location = _finish(parsed_destination, pair.destination_kind)
    if destination_location.snapshot is not None:
        raise UsageError(
            f"{destination_location.describe()} is a snapshot: snapshots are read-only, so it cannot be a destination"
        )
    if source_location.kind == "local":
        assert source_location.local_path is not None
        local = source_location.local_path
        if "*" not in local and not Path(local).exists():
            if Path(local).is_symlink():
                raise UsageError(
                    f"the source {printable(local)} is a broken symbolic link (it points to "
                    f"{printable(str(Path(local).readlink()))}, which does not exist)"
                )
            raise UsageError(f"the source {printable(local)} does not exist")
    return pair, source_location, destination_location


# -- parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RemoteParts:
    """A URL split into its parts before its kind (Files or Blob) is settled."""

    raw: str
    inferred: RemoteKind | None
    endpoint: str
    account: str
    container: str | None
    path: str
    trailing_slash: bool
    share_snapshot: str | None
    blob_snapshot: str | None
    sas: str | None

    def describe(self) -> str:
        snapshots = [("sharesnapshot", self.share_snapshot), ("snapshot", self.blob_snapshot)]
        params = [(name, value) for name, value in snapshots if value is not None]
        return _printable_url(self.endpoint, self.container, self.path, self.trailing_slash, params, self.sas)

    def finish(self, kind: RemoteKind) -> Location:
        """The location, once ``kind`` is known: checks the container name and snapshot."""
        if self.container is not None:
            _check_container_name(self.container, kind, self)
        wrong, right = (
            (self.blob_snapshot, self.share_snapshot)
            if kind == "file"
            else (self.share_snapshot, self.blob_snapshot)
        )
        if wrong is not None:
            raise UsageError(
                f"{self.describe()}: {_NOUN[kind]} snapshots are addressed with ?{_SNAPSHOT_PARAM[kind]}="
            )
        if right is not None and self.container is None:
            raise UsageError(f"{self.describe()}: a snapshot needs a share or container in the URL")
        return Location(
            kind=kind,
            raw=self.raw,
            endpoint=self.endpoint,
            account=self.account,
            container=self.container,
            path=self.path,
            trailing_slash=self.trailing_slash,
            snapshot=right,
            sas=self.sas,
        )


def _parse(text: str) -> Location | _RemoteParts:
    if not text:
        raise UsageError("an empty string is not a location: give a local path or an http(s) URL")
    scheme = _OTHER_SCHEME.match(text)
    if scheme is None:
        return _parse_local(text)
    if scheme.group(1).lower() not in ("http", "https"):
        raise UsageError(
            f"{scheme.group(1)}:// URLs are not supported: give an http(s) URL of Azure Files or Blob, or a local path"
        )
    return _parse_url(text)


def _parse_local(text: str) -> Location:
    return Location(
        kind="local",
        raw=text,
        local_path=os.path.expanduser(text),  # noqa: PTH111 (Path() would drop a trailing "/")
        trailing_slash=text.endswith(("/", os.sep)),
    )


def _parse_url(text: str) -> _RemoteParts:
    shown = _without_query(text)
    if "#" in text:
        raise UsageError(f"{shown}: a URL cannot contain a raw '#': write it as %23")
    try:
        split = urlsplit(text)
    except ValueError:
        raise UsageError(f"{shown}: the URL is malformed (check the host and its brackets)") from None
    if "@" in split.netloc:
        raise UsageError(f"{shown}: a user name or password in the URL is not supported")
    host = split.hostname
    if not host:
        raise UsageError(f"{shown}: the URL has no host")
    try:
        port = split.port
    except ValueError:
        raise UsageError(f"{shown}: the URL has an invalid port") from None
    host_part = f"[{host}]" if ":" in host else host
    root = f"{split.scheme.lower()}://{host_part}" + (f":{port}" if port is not None else "")
    trimmed = split.path.lstrip("/")
    trailing = trimmed.endswith("/")
    segments = (
        [_decode(segment, shown) for segment in trimmed.rstrip("/").split("/")] if trimmed.strip("/") else []
    )
    inferred = _infer_from_host(host, shown)
    if inferred is not None:
        kind, account = inferred
        endpoint = root
    else:
        kind = None
        if not segments:
            raise UsageError(
                f"{shown}: the URL names no account: path-style URLs are http://HOST:PORT/<account>/<container>/<path>"
            )
        account = segments.pop(0)
        if not _ACCOUNT_NAME.fullmatch(account):
            raise UsageError(
                f"{shown}: account name {account!r} must be 3-24 lower-case letters and digits "
                "(path-style URLs are http://HOST:PORT/<account>/<container>/<path>)"
            )
        endpoint = f"{root}/{account}"
    container = segments.pop(0) if segments else None
    share_snapshot, blob_snapshot, sas = _split_query(split, shown)
    return _RemoteParts(
        raw=text,
        inferred=kind,
        endpoint=endpoint,
        account=account,
        container=container,
        path="/".join(segments),
        trailing_slash=trailing and container is not None,
        share_snapshot=share_snapshot,
        blob_snapshot=blob_snapshot,
        sas=sas,
    )


def _infer_from_host(host: str, shown: str) -> tuple[RemoteKind, str] | None:
    """``(kind, account)`` for a public Azure endpoint, ``None`` for any other (path-style) host."""
    match = _PUBLIC_HOST.fullmatch(host) or _DNS_ZONE_HOST.fullmatch(host)
    if match is None:
        return None
    service = match.group("service")
    if service not in _SERVICE_KIND:
        hint = " (use the .blob. endpoint of the same account)" if service == "dfs" else ""
        raise UsageError(
            f"{shown} is a {service} endpoint: ShareFerry copies to and from Azure Files (.file.) "
            f"and Blob (.blob.) endpoints{hint}"
        )
    account = match.group("account").removesuffix(_SECONDARY)
    return _SERVICE_KIND[service], account


def _decode(segment: str, shown: str) -> str:
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise UsageError(f"{shown}: a path segment is not valid UTF-8 after percent-decoding") from None


def _split_query(split: SplitResult, shown: str) -> tuple[str | None, str | None, str | None]:
    """``(sharesnapshot, snapshot, sas)`` from the query; the SAS keeps its encoding."""
    share_snapshot: str | None = None
    blob_snapshot: str | None = None
    rest: list[str] = []
    has_signature = False
    for pair in split.query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        name = unquote(name).lower()
        if name in ("sharesnapshot", "snapshot"):
            if not value:
                raise UsageError(f"{shown}: ?{name}= needs a snapshot time")
            if name == "sharesnapshot":
                share_snapshot = unquote(value)
            else:
                blob_snapshot = unquote(value)
            continue
        has_signature = has_signature or name == "sig"
        rest.append(pair)
    if rest and not has_signature:
        raise UsageError(
            f"{shown}: the query is not a SAS (it has no sig=); quote the whole URL so the shell keeps every '&'"
        )
    return share_snapshot, blob_snapshot, "&".join(rest) or None


def _check_container_name(name: str, kind: RemoteKind, parts: _RemoteParts) -> None:
    if kind == "blob" and name in _SPECIAL_CONTAINERS:
        return
    if not _CONTAINER_NAME.fullmatch(name):
        noun = "share" if kind == "file" else "container"
        raise UsageError(
            f"{parts.describe()}: {noun} name {name!r} must be 3-63 lower-case letters, digits and single "
            "hyphens, starting and ending with a letter or digit"
        )


# -- --from-to --------------------------------------------------------------------------------


def _parse_from_to(text: str | None) -> FromTo | None:
    if text is None or not text.strip():
        return None
    wanted = text.strip().lower()
    if "filenfs" in wanted:
        raise UsageError(
            f"--from-to {text.strip()!r}: Azure Files NFS shares are not supported (ShareFerry copies "
            "SMB shares: FileSMB, or File)"
        )
    wanted = wanted.replace("filesmb", "file")  # AzCopy 10.32's spelling: File still means FileSMB
    for member in FromTo:
        if member.value.lower() == wanted:
            return member
    raise UsageError(f"unknown --from-to {text.strip()!r}: use one of {_VALID_FROM_TO}")


def _inferred_kind(parsed: Location | _RemoteParts) -> LocationKind:
    if isinstance(parsed, Location):
        return "local"
    assert parsed.inferred is not None
    return parsed.inferred


def _mismatch(parsed: Location | _RemoteParts, wanted: LocationKind) -> str | None:
    """What ``parsed`` is when it cannot be of kind ``wanted`` (``None`` when it can)."""
    if isinstance(parsed, Location):
        return None if wanted == "local" else "a local path"
    if wanted == "local":
        return "a URL"
    if parsed.inferred is None or parsed.inferred == wanted:
        return None
    return f"an {_NOUN[parsed.inferred]} URL"


def _check_agrees(pair: FromTo, role: str, parsed: Location | _RemoteParts, wanted: LocationKind) -> None:
    mismatch = _mismatch(parsed, wanted)
    if mismatch is not None:
        raise UsageError(
            f"--from-to {pair.value} says the {role} is {_NOUN[wanted]}, but {parsed.describe()} is {mismatch}"
        )


def _finish(parsed: Location | _RemoteParts, kind: LocationKind) -> Location:
    if isinstance(parsed, Location):
        return parsed
    assert kind != "local"
    return parsed.finish(kind)


def _cannot_infer(parts: _RemoteParts) -> str:
    return f"cannot infer whether {parts.describe()} is Files or Blob: pass --from-to (LocalFile, FileLocal, ...)"


def _local_to_local() -> str:
    return "copying from a local path to a local path is not supported: one side must be Azure Files or Blob"


# -- formatting -------------------------------------------------------------------------------


def _format_url(
    endpoint: str,
    container: str | None,
    path: str,
    params: Sequence[tuple[str, str | None]],
    sas: str | None,
    *,
    keep: str = "",
) -> str:
    """The URL of ``path`` in ``container``; ``keep`` are characters left unencoded in segments."""
    url = endpoint
    if container is not None:
        url += "/" + quote(container, safe="$")
        if path:
            url += "/" + "/".join(quote(segment, safe=keep) for segment in path.split("/"))
    elif path:
        raise ValueError("an account-level location has no paths")
    query = [f"{name}={quote(value, safe=':')}" for name, value in params if value is not None]
    if sas:
        query.append(sas)
    return url + ("?" + "&".join(query) if query else "")


def _printable_url(
    endpoint: str,
    container: str | None,
    path: str,
    trailing_slash: bool,
    params: Sequence[tuple[str, str | None]],
    sas: str | None,
) -> str:
    """The URL as a person wants to read it: wildcards and a trailing ``/`` as written, the SAS
    signature redacted."""
    base, question, query = _format_url(
        endpoint, container, path, params, _redact_sig(sas), keep="*"
    ).partition("?")
    if trailing_slash and container is not None:
        base += "/"
    return redact(base + question + query)


def _redact_sig(sas: str | None) -> str | None:
    """``sas`` with the value of every ``sig`` parameter replaced by ``REDACTED``."""
    if sas is None:
        return None
    pairs = []
    for pair in sas.split("&"):
        name, _, _ = pair.partition("=")
        pairs.append(f"{name}={REDACTED}" if unquote(name).lower() == "sig" else pair)
    return "&".join(pairs)


def _without_query(text: str) -> str:
    """``text`` cut before its query or fragment and without user info: safe to print."""
    cut = re.split(r"[?#]", text, maxsplit=1)[0]
    scheme, sep, rest = cut.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}"
