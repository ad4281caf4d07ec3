"""The emulated resources: shares (and their snapshots), directories and files.

Names are case-preserving but case-insensitive, as on Azure Files: children are keyed by
their case-folded name. Times are integers of 100 ns ticks so SMB times round-trip exactly.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from typing import Any

from shareferry.emulator.content import Content
from shareferry.emulator.wire import new_etag, now_ticks

_file_ids = itertools.count(13835128424026341376)

ATTRIBUTE_ORDER = (
    "ReadOnly",
    "Hidden",
    "System",
    "None",
    "Directory",
    "Archive",
    "Temporary",
    "Offline",
    "NotContentIndexed",
    "NoScrubData",
)
_CANONICAL = {name.lower(): name for name in ATTRIBUTE_ORDER}


def next_file_id() -> int:
    return next(_file_ids)


def bump_file_ids(seen: int) -> None:
    """After loading persisted state, make sure new ids do not collide with old ones."""
    global _file_ids
    current = next(_file_ids)
    _file_ids = itertools.count(max(current, seen + 1))


def parse_attributes(text: str) -> tuple[str, ...] | None:
    """``ReadOnly|Archive`` → canonical tuple; None when a name is unknown."""
    names = [part.strip().lower() for part in text.split("|") if part.strip()]
    if any(name not in _CANONICAL for name in names):
        return None
    chosen = {_CANONICAL[name] for name in names}
    return tuple(name for name in ATTRIBUTE_ORDER if name in chosen)


def format_attributes(attributes: tuple[str, ...]) -> str:
    return " | ".join(attributes)


@dataclass
class Smb:
    """SMB properties kept for every directory and file."""

    attributes: tuple[str, ...]
    creation: int
    last_write: int
    change: int
    permission_key: str

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": list(self.attributes),
            "creation": self.creation,
            "last_write": self.last_write,
            "change": self.change,
            "permission_key": self.permission_key,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Smb:
        return cls(
            tuple(data["attributes"]),
            data["creation"],
            data["last_write"],
            data["change"],
            data["permission_key"],
        )


@dataclass
class Node:
    """What directories and files have in common."""

    name: str
    file_id: int
    parent_id: int
    smb: Smb
    metadata: dict[str, str] = field(default_factory=dict)
    etag: str = field(default_factory=new_etag)
    last_modified: int = field(default_factory=now_ticks)

    def touch(self) -> None:
        """A new ETag and Last-Modified after any change."""
        self.etag = new_etag()
        self.last_modified = now_ticks()

    def base_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file_id": self.file_id,
            "parent_id": self.parent_id,
            "smb": self.smb.to_json(),
            "metadata": self.metadata,
            "etag": self.etag,
            "last_modified": self.last_modified,
        }


@dataclass
class Directory(Node):
    """A directory: children keyed by case-folded name, with a sorted index for paged listing."""

    children: dict[str, Node] = field(default_factory=dict)
    _sorted: list[str] | None = field(default=None, repr=False)

    def get(self, name: str) -> Node | None:
        return self.children.get(name.casefold())

    def put(self, node: Node) -> None:
        key = node.name.casefold()
        if key not in self.children:
            self._sorted = None
        self.children[key] = node

    def remove(self, name: str) -> Node | None:
        node = self.children.pop(name.casefold(), None)
        if node is not None:
            self._sorted = None
        return node

    def sorted_names(self) -> list[str]:
        """Child names in listing order (ordinal on the stored name), cached until a change."""
        if self._sorted is None:
            self._sorted = sorted(child.name for child in self.children.values())
        return self._sorted

    def page(self, prefix: str, marker: str | None, limit: int) -> tuple[list[Node], str | None]:
        """One page of children whose names start with ``prefix``; returns the next marker."""
        names = self.sorted_names()
        start = bisect.bisect_left(names, marker) if marker else 0
        if prefix:
            start = max(start, bisect.bisect_left(names, prefix))
        out: list[Node] = []
        for index in range(start, len(names)):
            name = names[index]
            if prefix and not name.startswith(prefix):
                break
            if len(out) == limit:
                return out, name
            node = self.get(name)
            if node is not None:
                out.append(node)
        return out, None


@dataclass
class CopyState:
    """The outcome of a Copy File into this file (copies complete synchronously here)."""

    copy_id: str
    source: str
    status: str
    progress: str
    completion_time: int
    status_description: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class File(Node):
    """A file: fixed size, content headers, its bytes and valid ranges."""

    content: Content | None = None
    content_type: str = "application/octet-stream"
    content_encoding: str = ""
    content_language: str = ""
    cache_control: str = ""
    content_disposition: str = ""
    content_md5: str = ""  # base64, as stored by the client
    copy: CopyState | None = None
    lease_id: str = ""

    @property
    def size(self) -> int:
        return self.content.size if self.content is not None else 0


@dataclass
class SignedIdentifier:
    """A stored access policy on a share (used by service SAS ``si=``)."""

    id: str
    start: str | None
    expiry: str | None
    permission: str | None


@dataclass
class Share:
    """A share or one of its snapshots (``snapshot`` set, read-only)."""

    name: str
    root: Directory
    quota_gib: int = 5120
    metadata: dict[str, str] = field(default_factory=dict)
    access_tier: str = "TransactionOptimized"
    snapshot: str | None = None
    permissions: dict[str, str] = field(default_factory=dict)  # key -> SDDL (or "binary:..." )
    identifiers: list[SignedIdentifier] = field(default_factory=list)
    etag: str = field(default_factory=new_etag)
    last_modified: int = field(default_factory=now_ticks)
    access_tier_changed: int = field(default_factory=now_ticks)
    lease_id: str = ""

    def touch(self) -> None:
        self.etag = new_etag()
        self.last_modified = now_ticks()

    def usage_bytes(self) -> int:
        total = 0
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, Directory):
                stack.extend(node.children.values())
            elif isinstance(node, File):
                total += node.size
        return total
