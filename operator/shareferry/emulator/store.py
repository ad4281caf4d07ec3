"""The emulator's namespace: accounts → shares (+ snapshots) → directory trees, and persistence.

Handlers call these methods with already-parsed arguments; every method is synchronous, so one
request's change is applied whole before another request runs. Methods raise
:class:`StorageError` with the codes Azure uses. Changes are recorded and written to the data
directory by :meth:`Store.commit`, which the app calls after every request that wrote.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shareferry.emulator.content import ContentFactory
from shareferry.emulator.errors import StorageError, bad_request, conflict, not_found
from shareferry.emulator.model import (
    CopyState,
    Directory,
    File,
    Node,
    Share,
    SignedIdentifier,
    Smb,
    bump_file_ids,
    next_file_id,
)
from shareferry.emulator.names import validate_share_name
from shareferry.emulator.persist import NoPersistence, ShareKey
from shareferry.emulator.wire import now_ticks, ticks_to_iso

DEFAULT_SDDL = "O:BAG:SYD:(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)(A;OICI;0x1301bf;;;AU)(A;OICI;0x1200a9;;;BU)"
MAX_FILE_SIZE = 4 * 1024**4  # 4 TiB, Azure's limit for a file


def permission_key_for(sddl: str) -> str:
    """A stable key for a permission, in Azure's ``<digits>*<digits>`` shape."""
    digest = hashlib.sha256(sddl.encode()).digest()
    return f"{int.from_bytes(digest[:8], 'big')}*{int.from_bytes(digest[8:16], 'big')}"


@dataclass
class AccountState:
    shares: dict[str, Share] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Share]] = field(default_factory=dict)
    #: Set Service Properties' settings: top-level element name -> its XML text.
    service_properties: dict[str, str] = field(default_factory=dict)


class Store:
    """All accounts' shares, with change tracking for persistence."""

    def __init__(
        self, accounts: list[str], content: ContentFactory, persistence: NoPersistence | None = None
    ) -> None:
        self.content = content
        self.persistence = persistence or NoPersistence()
        self.accounts: dict[str, AccountState] = {name: AccountState() for name in accounts}
        self._load()

    # ---- shares -------------------------------------------------------------------------

    def account(self, name: str) -> AccountState:
        state = self.accounts.get(name)
        if state is None:
            raise StorageError(403, "AuthenticationFailed", f"Unknown account {name!r}.")
        return state

    def share(self, account: str, name: str, snapshot: str | None = None) -> Share:
        state = self.account(account)
        share = state.shares.get(name.lower())
        if snapshot:
            snaps = state.snapshots.get(name.lower(), {})
            snap = snaps.get(snapshot)
            if snap is None:
                if share is None:
                    raise not_found("ShareNotFound", "The specified share does not exist.")
                raise not_found("ShareSnapshotNotFound", "The specified share snapshot does not exist.")
            return snap
        if share is None:
            raise not_found("ShareNotFound", "The specified share does not exist.")
        return share

    def create_share(
        self, account: str, name: str, *, quota_gib: int, metadata: dict[str, str], access_tier: str | None
    ) -> Share:
        validate_share_name(name)
        state = self.account(account)
        if name in state.shares:
            raise conflict("ShareAlreadyExists", "The specified share already exists.")
        share = Share(name=name, root=self._new_root(), quota_gib=quota_gib, metadata=metadata)
        if access_tier:
            share.access_tier = access_tier
        key = permission_key_for(DEFAULT_SDDL)
        share.permissions[key] = DEFAULT_SDDL
        share.root.smb.permission_key = key
        state.shares[name] = share
        self.save_share(account, share)
        self.save_node(account, share, "", share.root)
        return share

    def _new_root(self) -> Directory:
        now = now_ticks()
        return Directory(
            name="",
            file_id=0,
            parent_id=0,
            smb=Smb(("Directory",), now, now, now, permission_key_for(DEFAULT_SDDL)),
        )

    def delete_share(
        self, account: str, name: str, snapshot: str | None, *, include_snapshots: bool, lease_id: str = ""
    ) -> None:
        """Delete a share (with its snapshots when asked) or one snapshot; a leased share needs its lease."""
        state = self.account(account)
        share = self.share(account, name, snapshot)
        if share.lease_id and not snapshot and share.lease_id != lease_id:
            if not lease_id:
                raise StorageError(412, "LeaseIdMissing", "There is currently a lease on the share.")
            raise StorageError(
                412, "LeaseIdMismatchWithContainerOperation", "The lease ID specified did not match."
            )
        if snapshot:
            del state.snapshots[name][snapshot]
            self._drop_share(account, share)
            return
        snaps = state.snapshots.get(name, {})
        if snaps and not include_snapshots:
            raise conflict(
                "ShareHasSnapshots", "The share has snapshots and the operation requires no snapshots."
            )
        for snap in list(snaps.values()):
            self._drop_share(account, snap)
        state.snapshots.pop(name, None)
        del state.shares[name]
        self._drop_share(account, share)

    def _drop_share(self, account: str, share: Share) -> None:
        for _path, node in walk(share.root):
            if isinstance(node, File) and node.content is not None:
                node.content.discard()
        self.persistence.delete_share(_key(account, share))

    def snapshot_share(self, account: str, name: str, metadata: dict[str, str] | None) -> Share:
        state = self.account(account)
        live = self.share(account, name)
        stamp = ticks_to_iso(now_ticks())
        snaps = state.snapshots.setdefault(name, {})
        while stamp in snaps:  # two snapshots in the same 100 ns: keep them distinct
            stamp = ticks_to_iso(now_ticks() + 1)
        snap = Share(
            name=live.name,
            root=_clone_tree(live.root),
            quota_gib=live.quota_gib,
            metadata=dict(live.metadata if metadata is None else metadata),
            access_tier=live.access_tier,
            snapshot=stamp,
            permissions=dict(live.permissions),
            identifiers=list(live.identifiers),
        )
        snaps[stamp] = snap
        self.save_share(account, snap)
        for path, node in walk(snap.root):
            self.save_node(account, snap, path, node)
        return snap

    def list_shares(self, account: str, *, include_snapshots: bool) -> list[Share]:
        """Shares sorted by name, each followed by its snapshots (oldest first) when asked."""
        state = self.account(account)
        out: list[Share] = []
        for name in sorted(state.shares.keys() | state.snapshots.keys()):
            if include_snapshots:
                out.extend(state.snapshots.get(name, {})[s] for s in sorted(state.snapshots.get(name, {})))
            if name in state.shares:
                out.append(state.shares[name])
        return out

    # ---- permissions ----------------------------------------------------------------------

    def create_permission(self, account: str, share: Share, permission: str) -> str:
        key = permission_key_for(permission)
        if share.permissions.get(key) != permission:
            share.permissions[key] = permission
            self.save_share(account, share)
        return key

    def get_permission(self, share: Share, key: str) -> str:
        permission = share.permissions.get(key)
        if permission is None:
            raise StorageError(
                400, "FileInvalidPermissionKey", f"The permission key {key!r} is not valid for this share."
            )
        return permission

    # ---- tree -----------------------------------------------------------------------------

    def lookup(self, share: Share, path: str) -> Node:
        """The node at ``path``; ResourceNotFound, or ParentNotFound when a parent is missing."""
        node: Node = share.root
        parts = [p for p in path.split("/") if p]
        for index, part in enumerate(parts):
            if not isinstance(node, Directory):
                raise not_found("ParentNotFound", "The specified parent path does not exist.")
            child = node.get(part)
            if child is None:
                if index < len(parts) - 1:
                    raise not_found("ParentNotFound", "The specified parent path does not exist.")
                raise not_found("ResourceNotFound", "The specified resource does not exist.")
            node = child
        return node

    def stored_path(self, share: Share, path: str) -> str:
        """``path`` spelled as stored: each existing segment in the case it was created with.

        Segments that do not exist keep the given spelling, so this never raises.
        """
        node: Node | None = share.root
        out: list[str] = []
        for part in path.split("/"):
            if not part:
                continue
            node = node.get(part) if isinstance(node, Directory) else None
            out.append(node.name if node is not None else part)
        return "/".join(out)

    def directory(self, share: Share, path: str) -> Directory:
        """The directory at ``path``; a file there is "not found" for directory operations.

        Directory and file operations address different resources, so asking for a directory
        where a file stands answers 404 (that is what lets ``exists()`` probes say False);
        creating one where the other stands is the 409 ``ResourceTypeMismatch`` of
        :meth:`add_node`.
        """
        node = self.lookup(share, path)
        if not isinstance(node, Directory):
            raise not_found(
                "ResourceNotFound", "The specified resource does not exist (a file has that name)."
            )
        return node

    def file(self, share: Share, path: str) -> File:
        """The file at ``path``; a directory there is "not found" for file operations."""
        node = self.lookup(share, path)
        if not isinstance(node, File):
            raise not_found(
                "ResourceNotFound", "The specified resource does not exist (a directory has that name)."
            )
        return node

    def parent_of(self, share: Share, path: str) -> tuple[Directory, str]:
        parent_path, _, name = path.rpartition("/")
        try:
            parent = self.lookup(share, parent_path)
        except StorageError as exc:
            raise not_found("ParentNotFound", "The specified parent path does not exist.") from exc
        if not isinstance(parent, Directory):
            raise not_found("ParentNotFound", "The specified parent path does not exist.")
        return parent, name

    def add_node(
        self, account: str, share: Share, path: str, node: Node, *, replace_file: bool, lease_id: str = ""
    ) -> None:
        """Insert a new directory or file (``replace_file``: a file may replace a file).

        A leased file is replaced only with its ``lease_id``, and the lease stays on the file.
        """
        parent, _name = self.parent_of(share, path)
        existing = parent.get(node.name)
        if existing is not None:
            if isinstance(existing, Directory) or isinstance(node, Directory) or not replace_file:
                if isinstance(existing, Directory) and isinstance(node, Directory):
                    raise conflict("ResourceAlreadyExists", "The specified resource already exists.")
                raise conflict("ResourceTypeMismatch", "A resource of another type exists with that name.")
            if isinstance(existing, File) and isinstance(node, File):
                check_file_lease(existing, lease_id)
                node.lease_id = existing.lease_id
                node.name = existing.name  # case-preserving: the first spelling stays
                if existing.content is not None:
                    existing.content.discard()
        node.parent_id = parent.file_id
        parent.put(node)
        self.save_node(account, share, path, node)

    def remove_node(self, account: str, share: Share, path: str, *, lease_id: str = "") -> Node:
        """Delete a file or an empty directory; a leased file only with its ``lease_id``."""
        parent, name = self.parent_of(share, path)
        node = parent.get(name)
        if node is None:
            raise not_found("ResourceNotFound", "The specified resource does not exist.")
        if isinstance(node, Directory) and node.children:
            raise conflict("DirectoryNotEmpty", "The specified directory is not empty.")
        if isinstance(node, File):
            check_file_lease(node, lease_id)
            if node.content is not None:
                node.content.discard()
        parent.remove(name)
        self.persistence.delete_node(_key(account, share), path)
        return node

    def move_node(
        self,
        account: str,
        share: Share,
        source: str,
        destination: str,
        *,
        replace: bool,
        source_lease: str = "",
        destination_lease: str = "",
        ignore_read_only: bool = False,
    ) -> Node:
        """Rename a directory or file within one share, replacing a file there when asked.

        Every check comes first (leases on the source and on a replaced file, a replaced file's
        ReadOnly attribute), so a refused rename changes nothing; the change itself has no
        await, so no request sees the destination missing or doubled.
        """
        node = self.lookup(share, source)
        if node is share.root:
            raise bad_request("InvalidResourceName", "The root directory cannot be renamed.")
        if isinstance(node, Directory) and (destination + "/").casefold().startswith(
            (source + "/").casefold()
        ):
            raise bad_request("InvalidResourceName", "A directory cannot be moved inside itself.")
        if isinstance(node, File):
            check_file_lease(node, source_lease)
        new_parent, new_name = self.parent_of(share, destination)
        existing = new_parent.get(new_name)
        if existing is node:
            existing = None  # a change of case only
        if existing is not None:
            if isinstance(existing, Directory) and not isinstance(node, Directory):
                raise conflict("ResourceTypeMismatch", "A directory exists where the file would go.")
            if not replace or isinstance(existing, Directory):
                raise conflict("ResourceAlreadyExists", "The specified resource already exists.")
            assert isinstance(existing, File)
            check_file_lease(existing, destination_lease)
            if "ReadOnly" in existing.smb.attributes and not ignore_read_only:
                raise conflict(
                    "ReadOnlyAttribute",
                    "The specified resource is read-only and cannot be modified at this time.",
                )
            self.remove_node(account, share, destination, lease_id=destination_lease)
        old_paths = [source + ("/" + p if p else "") for p, _ in walk(node)]
        old_parent, old_name = self.parent_of(share, source)
        old_parent.remove(old_name)
        node.name = new_name
        node.parent_id = new_parent.file_id
        new_parent.put(node)
        for old in old_paths:
            self.persistence.delete_node(_key(account, share), old)
        for sub, child in walk(node):
            self.save_node(account, share, destination + ("/" + sub if sub else ""), child)
        return node

    def new_smb(self, attributes: tuple[str, ...], permission_key: str) -> Smb:
        now = now_ticks()
        return Smb(attributes, now, now, now, permission_key)

    def new_id(self) -> int:
        return next_file_id()

    # ---- persistence ------------------------------------------------------------------------

    def save_share(self, account: str, share: Share) -> None:
        self.persistence.save_share(_key(account, share), _share_json(share))

    def save_node(self, account: str, share: Share, path: str, node: Node) -> None:
        self.persistence.save_node(_key(account, share), path, _node_json(node))

    def commit(self) -> None:
        self.persistence.commit()

    def _load(self) -> None:
        highest = 0
        for (account, name, snapshot), data in self.persistence.load_shares():
            state = self.accounts.get(account)
            if state is None:
                continue  # an account no longer configured: keep its rows, serve nothing
            share = _share_from_json(data)
            nodes: dict[str, Node] = {}
            for path, node_data in self.persistence.load_nodes((account, name, snapshot)):
                node = self._node_from_json(node_data)
                highest = max(highest, node.file_id)
                if path == "":
                    assert isinstance(node, Directory)
                    share.root = node
                else:
                    nodes[path] = node
            for path in sorted(nodes, key=lambda p: p.count("/")):
                parent_path = path.rpartition("/")[0]
                parent = share.root if not parent_path else nodes.get(parent_path)
                if isinstance(parent, Directory):
                    parent.put(nodes[path])
            if snapshot:
                share.snapshot = snapshot
                state.snapshots.setdefault(name, {})[snapshot] = share
            else:
                state.shares[name] = share
        bump_file_ids(highest)

    def _node_from_json(self, data: dict[str, Any]) -> Node:
        smb = Smb.from_json(data["smb"])
        common: dict[str, Any] = {
            "name": data["name"],
            "file_id": data["file_id"],
            "parent_id": data["parent_id"],
            "smb": smb,
            "metadata": data["metadata"],
            "etag": data["etag"],
            "last_modified": data["last_modified"],
        }
        if data["kind"] == "directory":
            return Directory(**common)
        copy = data.get("copy")
        return File(
            **common,
            content=self.content.reopen(
                data.get("location"),
                data["size"],
                [tuple(r) for r in data["ranges"]],
            ),
            content_type=data["content_type"],
            content_encoding=data["content_encoding"],
            content_language=data["content_language"],
            cache_control=data["cache_control"],
            content_disposition=data["content_disposition"],
            content_md5=data["content_md5"],
            copy=CopyState(**copy) if copy else None,
            lease_id=data.get("lease_id", ""),
        )


def check_file_lease(file: File, given: str | None) -> None:
    """A change to a leased file must carry its lease id: 412 as Azure answers otherwise."""
    if not file.lease_id:
        return
    if not given:
        raise StorageError(
            412, "LeaseIdMissing", "There is currently a lease on the file and no lease ID was specified."
        )
    if given != file.lease_id:
        raise StorageError(412, "LeaseIdMismatchWithFileOperation", "The lease ID specified did not match.")


def walk(root: Node) -> Iterator[tuple[str, Node]]:
    """Every node below ``root`` (itself first, as ``""``) with its path relative to it."""
    stack: list[tuple[str, Node]] = [("", root)]
    while stack:
        path, node = stack.pop()
        yield path, node
        if isinstance(node, Directory):
            for child in node.children.values():
                stack.append((f"{path}/{child.name}" if path else child.name, child))


def _clone_tree(node: Node) -> Directory:
    clone = _clone(node)
    assert isinstance(clone, Directory)
    return clone


def _clone(node: Node) -> Node:
    """A deep copy for a share snapshot: own SMB properties, metadata and bytes; no lease."""
    smb, metadata = dataclasses.replace(node.smb), dict(node.metadata)
    if isinstance(node, Directory):
        copy = dataclasses.replace(node, smb=smb, metadata=metadata, children={}, _sorted=None)
        for child in node.children.values():
            copy.put(_clone(child))
        return copy
    assert isinstance(node, File)
    content = node.content.clone() if node.content is not None else None
    return dataclasses.replace(node, smb=smb, metadata=metadata, content=content, lease_id="")


def _key(account: str, share: Share) -> ShareKey:
    return (account, share.name, share.snapshot or "")


def _share_json(share: Share) -> dict[str, Any]:
    return {
        "name": share.name,
        "quota_gib": share.quota_gib,
        "metadata": share.metadata,
        "access_tier": share.access_tier,
        "permissions": share.permissions,
        "identifiers": [i.__dict__ for i in share.identifiers],
        "etag": share.etag,
        "last_modified": share.last_modified,
        "access_tier_changed": share.access_tier_changed,
        "lease_id": share.lease_id,
    }


def _share_from_json(data: dict[str, Any]) -> Share:
    share = Share(
        name=data["name"],
        root=Directory(name="", file_id=0, parent_id=0, smb=Smb(("Directory",), 0, 0, 0, "")),
        quota_gib=data["quota_gib"],
        metadata=data["metadata"],
        access_tier=data["access_tier"],
        permissions=data["permissions"],
        identifiers=[SignedIdentifier(**i) for i in data["identifiers"]],
        etag=data["etag"],
        last_modified=data["last_modified"],
        access_tier_changed=data["access_tier_changed"],
        lease_id=data.get("lease_id", ""),
    )
    return share


def _node_json(node: Node) -> dict[str, Any]:
    data = node.base_json()
    if isinstance(node, Directory):
        data["kind"] = "directory"
        return data
    assert isinstance(node, File)
    data.update(
        kind="file",
        size=node.size,
        ranges=node.content.ranges.to_list() if node.content is not None else [],
        location=node.content.location if node.content is not None else None,
        content_type=node.content_type,
        content_encoding=node.content_encoding,
        content_language=node.content_language,
        cache_control=node.cache_control,
        content_disposition=node.content_disposition,
        content_md5=node.content_md5,
        lease_id=node.lease_id,
        copy=node.copy.to_json() if node.copy else None,
    )
    return data
