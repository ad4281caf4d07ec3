"""Classify a request into one named File REST operation and the resource it addresses.

Pure: it takes the method, the raw path, the decoded query and the headers, and returns a
:class:`Route`. Operation names follow the REST API (``PutRange``, ``ListDirectory``...); the same
names key the request counters and the fault rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from shareferry.emulator.errors import StorageError

#: SAS resource types: service, container (share), object (directory or file).
SERVICE, CONTAINER, OBJECT = "s", "c", "o"

_READ, _WRITE, _DELETE, _LIST, _CREATE = (
    frozenset("r"),
    frozenset("w"),
    frozenset("d"),
    frozenset("l"),
    frozenset("cw"),
)


@dataclass(frozen=True)
class Route:
    """What one request asks for.

    ``path`` is the decoded path inside the share (``""`` is the share's root directory).
    ``permissions``: a SAS needs at least one of these letters. ``writes``: the operation changes
    state (refused on a share snapshot).
    """

    op: str
    account: str
    share: str | None
    path: str
    snapshot: str | None
    resource_type: str
    permissions: frozenset[str]
    writes: bool

    @property
    def parts(self) -> list[str]:
        return [p for p in self.path.split("/") if p]


# (method, comp) -> (op, permissions, writes), per resource kind.
_SERVICE_OPS: dict[tuple[str, str, str], tuple[str, frozenset[str], bool]] = {
    ("GET", "", "list"): ("ListShares", _LIST, False),
    ("GET", "service", "properties"): ("GetServiceProperties", _READ, False),
    ("PUT", "service", "properties"): ("SetServiceProperties", _WRITE, True),
}
_SHARE_OPS: dict[tuple[str, str], tuple[str, frozenset[str], bool]] = {
    ("PUT", ""): ("CreateShare", _CREATE, True),
    ("GET", ""): ("GetShareProperties", _READ, False),
    ("HEAD", ""): ("GetShareProperties", _READ, False),
    ("DELETE", ""): ("DeleteShare", _DELETE, True),
    ("PUT", "metadata"): ("SetShareMetadata", _WRITE, True),
    ("GET", "metadata"): ("GetShareProperties", _READ, False),
    ("HEAD", "metadata"): ("GetShareProperties", _READ, False),
    ("PUT", "properties"): ("SetShareProperties", _WRITE, True),
    ("PUT", "snapshot"): ("SnapshotShare", _CREATE, True),
    ("PUT", "filepermission"): ("CreatePermission", _CREATE, True),
    ("GET", "filepermission"): ("GetPermission", _READ, False),
    ("GET", "acl"): ("GetShareAcl", _READ, False),
    ("HEAD", "acl"): ("GetShareAcl", _READ, False),
    ("PUT", "acl"): ("SetShareAcl", _WRITE, True),
    ("GET", "stats"): ("GetShareStats", _READ, False),
    ("PUT", "lease"): ("ShareLease", _WRITE, True),
}
_DIRECTORY_OPS: dict[tuple[str, str], tuple[str, frozenset[str], bool]] = {
    ("PUT", ""): ("CreateDirectory", _CREATE, True),
    ("GET", ""): ("GetDirectoryProperties", _READ, False),
    ("HEAD", ""): ("GetDirectoryProperties", _READ, False),
    ("DELETE", ""): ("DeleteDirectory", _DELETE, True),
    ("PUT", "properties"): ("SetDirectoryProperties", _WRITE, True),
    ("PUT", "metadata"): ("SetDirectoryMetadata", _WRITE, True),
    ("GET", "metadata"): ("GetDirectoryProperties", _READ, False),
    ("HEAD", "metadata"): ("GetDirectoryProperties", _READ, False),
    ("GET", "list"): ("ListDirectory", _LIST, False),
    ("GET", "listhandles"): ("ListHandles", _LIST, False),
    ("PUT", "forceclosehandles"): ("ForceCloseHandles", _WRITE, True),
    ("PUT", "rename"): ("RenameDirectory", _CREATE, True),
}
_FILE_OPS: dict[tuple[str, str], tuple[str, frozenset[str], bool]] = {
    ("PUT", ""): ("CreateFile", _CREATE, True),
    ("GET", ""): ("GetFile", _READ, False),
    ("HEAD", ""): ("GetFileProperties", _READ, False),
    ("DELETE", ""): ("DeleteFile", _DELETE, True),
    ("PUT", "range"): ("PutRange", _WRITE, True),
    ("PUT", "properties"): ("SetFileProperties", _WRITE, True),
    ("PUT", "metadata"): ("SetFileMetadata", _WRITE, True),
    ("GET", "metadata"): ("GetFileProperties", _READ, False),
    ("HEAD", "metadata"): ("GetFileProperties", _READ, False),
    ("GET", "rangelist"): ("ListRanges", _READ, False),
    ("PUT", "copy"): ("AbortCopy", _WRITE, True),
    ("PUT", "lease"): ("FileLease", _WRITE, True),
    ("GET", "listhandles"): ("ListHandles", _LIST, False),
    ("PUT", "forceclosehandles"): ("ForceCloseHandles", _WRITE, True),
    ("PUT", "rename"): ("RenameFile", _CREATE, True),
}

#: Operations that create a file or write its bytes; the request counters tally them per file.
#: Put Range counts whether it updates or clears; Copy File counts for its destination.
CONTENT_WRITE_OPS = frozenset({"CreateFile", "PutRange", "PutRangeFromURL", "CopyFile"})

#: Handle operations carry no restype, for directories too: on the share's root the path is empty.
_ROOT_HANDLE_OPS = frozenset({"ListHandles", "ForceCloseHandles"})


#: Reads of a file that may name the share's root directory as ``/<account>/<share>/`` (a trailing
#: slash, no restype): Azure takes them as Get File (Properties) of the root, which is a directory
#: and so answers 404 ``ResourceNotFound``, the "is the root a file?" probe of rclone's azurefiles.
_ROOT_FILE_READS = frozenset({"GetFile", "GetFileProperties"})

#: Operations whose path names a directory (each segment of it is a level of subdirectories).
DIRECTORY_OPS = frozenset(entry[0] for entry in _DIRECTORY_OPS.values()) - _ROOT_HANDLE_OPS


def split_path(raw_path: str) -> list[str]:
    """Decode a raw URL path fully, then split it (directory clients send ``/`` as ``%2F``).

    A percent-escape that does not decode as UTF-8 (``%FF``) is a 400 ``InvalidUri``: decoding
    it leniently would give two different names the same replacement character.
    """
    try:
        decoded = unquote(raw_path, errors="strict")
    except UnicodeDecodeError as exc:
        raise StorageError(
            400, "InvalidUri", "The request URI is invalid: a percent-escape in its path is not UTF-8."
        ) from exc
    return [part for part in decoded.split("/") if part != ""]


def classify(method: str, raw_path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Route:
    """Name the operation a request asks for; 400/405 errors for what the API does not have."""
    method = method.upper()
    if not raw_path.startswith("/"):  # an absolute-form target (``GET http://host/ HTTP/1.1``)
        raise StorageError(400, "InvalidUri", "The request URI must be a path: /<account>/...")
    parts = split_path(raw_path)
    if not parts:
        raise StorageError(400, "InvalidUri", "The request URI must name an account: /<account>/...")
    account = parts[0]
    comp = query.get("comp", "").lower()
    restype = query.get("restype", "").lower()
    snapshot = query.get("sharesnapshot") or None

    if len(parts) == 1:
        entry = _SERVICE_OPS.get((method, restype, comp))
        if entry is None:
            raise _unsupported(method, restype, comp)
        op, perms, writes = entry
        return Route(op, account, None, "", None, SERVICE, perms, writes)

    share = parts[1]
    path = "/".join(parts[2:])
    if restype == "share":
        if len(parts) != 2:
            raise StorageError(400, "InvalidUri", "restype=share addresses a share, not a path in it.")
        entry = _SHARE_OPS.get((method, comp))
        kind = CONTAINER
    elif restype == "directory":
        entry = _DIRECTORY_OPS.get((method, comp))
        kind = OBJECT
        if entry is not None and not path and entry[0] in ("CreateDirectory", "DeleteDirectory"):
            raise StorageError(
                400, "InvalidUri", "The root directory of a share cannot be created or deleted."
            )
    elif restype == "":
        entry = _FILE_OPS.get((method, comp))
        root_read = entry is not None and entry[0] in _ROOT_FILE_READS and raw_path.endswith("/")
        if not path and not root_read and (entry is None or entry[0] not in _ROOT_HANDLE_OPS):
            raise StorageError(400, "InvalidUri", "A file request must name a file inside a share.")
        if entry is not None and "x-ms-copy-source" in headers:
            if entry[0] == "CreateFile":
                entry = ("CopyFile", _CREATE, True)
            elif entry[0] == "PutRange":
                entry = ("PutRangeFromURL", _WRITE, True)
        kind = OBJECT
    else:
        raise StorageError(400, "InvalidQueryParameterValue", f"Unknown restype {restype!r}.")
    if entry is None:
        raise _unsupported(method, restype, comp)
    op, perms, writes = entry
    return Route(op, account, share, path, snapshot, kind, perms, writes)


def _unsupported(method: str, restype: str, comp: str) -> StorageError:
    if comp:
        return StorageError(
            400,
            "InvalidQueryParameterValue",
            f"comp={comp!r} is not supported for {method} on restype={restype or 'file'!r}.",
        )
    return StorageError(405, "UnsupportedHttpVerb", f"The resource doesn't support {method}.")


def operation_names() -> frozenset[str]:
    """Every operation name :func:`classify` can return: the keys of counters and fault rules."""
    tables = (_SERVICE_OPS.values(), _SHARE_OPS.values(), _DIRECTORY_OPS.values(), _FILE_OPS.values())
    names = {entry[0] for table in tables for entry in table}
    return frozenset(names | {"CopyFile", "PutRangeFromURL"})
