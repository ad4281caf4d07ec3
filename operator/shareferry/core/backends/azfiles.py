"""The Azure Files backend: one share (or share snapshot), optionally below a directory, through
the async Azure SDK.

Every client comes from one :class:`ShareServiceClient` (one aiohttp session per backend), whose
own retries are off: the engine retries with its policy. SDK errors become the contract's errors
(see :mod:`shareferry.core.backends.base`); a retryable :class:`TransferError` also carries
``retry_after`` (seconds from the service's ``Retry-After``, or ``None``), which the engine reads
with ``getattr(err, "retry_after", None)``. With a SAS or an account key, Create File, Put Range,
whole small-file reads and directory listings skip the SDK's pipeline (:mod:`.azfiles_wire`, its
own session).

SMB times travel as the service's own 7-digit strings (taken from raw response headers and the raw
listing XML; the SDK's datetimes keep only microseconds), so they round-trip exactly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.fileshare import ContentSettings, FileSasPermissions, generate_file_sas
from azure.storage.fileshare.aio import ShareClient, ShareDirectoryClient, ShareFileClient

from shareferry.core.backends.azfiles_client import share_service_client
from shareferry.core.backends.azfiles_wire import FilesWire, stored_from_get, wire_for
from shareferry.core.backends.base import BackendKind, Capabilities
from shareferry.core.backends.listing_retry import retry_or_raise
from shareferry.core.backends.staging import (
    MAX_STALE_NOTED,
    STAGING_REFUSAL,
    is_staging_name,
    staging_path,
    staging_token,
    stale_after,
)
from shareferry.core.errors import (
    CopySourceError,
    CredentialError,
    NotFoundError,
    ShareFerryError,
    TransferError,
)
from shareferry.core.objects import ContentHeaders, SmbInfo, StoredObject, WriteProps
from shareferry.core.redact import redact

MIB = 1024 * 1024
#: Statuses worth another try (throttling, timeouts, server trouble), as Azure documents them.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: How long a read SAS made from an account key (for server-side copies) stays valid.
SOURCE_SAS_LIFETIME = timedelta(hours=4)
#: Larger SDDL strings must be stored on the share first and sent as a permission key.
INLINE_PERMISSION_LIMIT = 8 * 1024
#: Entries asked for per listing page (the service's maximum).
LISTING_PAGE_SIZE = 5000
_CONNECTION_TIMEOUT_SECONDS = 30
_NOT_FOUND_CODES = frozenset({"ResourceNotFound", "ParentNotFound"})
_MISSING_CONTAINER_CODES = frozenset({"ShareNotFound", "ShareSnapshotNotFound"})
#: One directory's entries, as listed (the class's own ``list`` hides the builtin in its scope).
_Entries = list[StoredObject]


def _drop_bodyless_error_warning(record: logging.LogRecord) -> bool:
    """The SDK logs a warning with a traceback whenever an error answer to a HEAD request (403,
    503...) has no XML body, which HEAD answers never have; the error itself still reaches us and
    is reported once, translated. Only that one message is dropped."""
    return not str(record.msg).startswith("Ran into a deserialization error")


logging.getLogger("azure.storage.fileshare._generated._utils.model_base").addFilter(
    _drop_bodyless_error_warning
)


class AzureFilesBackend:
    """An Azure Files share (or snapshot of one) rooted at directory ``root`` inside it.

    ``endpoint`` is the account URL (``https://acct.file.core.windows.net`` or path-style
    ``http://host:port/<account>``). Credentials, first match wins: ``sas``, then
    ``account_name``/``account_key``, then ``token_credential`` (an async Azure token credential,
    sent with the backup intent Azure Files requires), else anonymous. ``max_concurrency_hint``
    is the number of requests the engine means to run at once; the SDK's aiohttp session pools
    up to 100 connections, which covers the default.
    """

    kind: BackendKind = "file"

    def __init__(
        self,
        *,
        endpoint: str,
        share: str,
        root: str = "",
        snapshot: str | None = None,
        sas: str | None = None,
        account_name: str | None = None,
        account_key: str | None = None,
        token_credential: object | None = None,
        max_concurrency_hint: int = 32,
    ) -> None:
        endpoint, _, query = endpoint.partition("?")
        sas = (sas or query or "").lstrip("?") or None
        self.endpoint = endpoint.rstrip("/")
        self.share = share
        self.root = root.strip("/")
        self.snapshot = snapshot
        self.max_concurrency_hint = max_concurrency_hint
        self._sas = sas
        self._account_key = account_key if sas is None else None
        self.capabilities = Capabilities(
            folders=True,
            smb=True,
            source_url=sas is not None or self._account_key is not None,
            write_from_url=True,
            stored_md5=True,
            max_range=4 * MIB,
            case_insensitive=True,
        )
        options: dict[str, Any] = {
            "retry_total": 0,
            "connection_timeout": _CONNECTION_TIMEOUT_SECONDS,
            "allow_trailing_dot": True,
            "allow_source_trailing_dot": True,
        }
        self._account_name = account_name or account_from_endpoint(self.endpoint)
        self._service = share_service_client(
            self.endpoint,
            sas=sas,
            account_name=self._account_name,
            account_key=account_key,
            token_credential=token_credential,
            **options,
        )
        self._share: ShareClient = self._service.get_share_client(share, snapshot=snapshot)
        # SAS and shared key: the hot per-file requests skip the SDK's pipeline (see azfiles_wire).
        self._wire = wire_for(
            endpoint=self.endpoint,
            share=share,
            snapshot=snapshot,
            sas=sas,
            account_name=self._account_name,
            account_key=self._account_key,
            api_version=self._service.api_version,
            connection_timeout=_CONNECTION_TIMEOUT_SECONDS,
        )
        #: The job this backend writes for: it names the staging files (see :mod:`.staging`).
        self.staging_key: str | None = None
        #: Stale staging files its listings met (paths below the root), for a sync to remove.
        self.stale_staging: list[str] = []
        self._stale_after = stale_after()
        self._permission_keys: dict[str, str] = {}
        self._parent_chains: dict[str, asyncio.Future[None]] = {}

    # ---- naming ------------------------------------------------------------------------------

    def _full(self, path: str) -> str:
        path = path.strip("/")
        if not self.root:
            return path
        return f"{self.root}/{path}" if path else self.root

    def describe(self, path: str = "") -> str:
        """The URL of ``path`` (share snapshot included), never with a SAS."""
        full = self._full(path)
        url = f"{self.endpoint}/{quote(self.share, safe='')}"
        if full:
            url += "/" + quote(full, safe="/")
        if self.snapshot:
            url += f"?sharesnapshot={quote(self.snapshot, safe='')}"
        return redact(url)

    def _file(self, path: str) -> ShareFileClient:
        return self._share.get_file_client(self._full(path))

    def _directory(self, path: str) -> ShareDirectoryClient:
        return self._share.get_directory_client(self._full(path))

    # ---- errors ------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str, path: str) -> Iterator[None]:
        """Translate SDK and network failures inside the block into the contract's errors."""
        try:
            yield
        except ShareFerryError:
            raise
        except Exception as exc:
            mapped = translate_error(exc, f"{action} {self.describe(path)}")
            if mapped is None:
                raise
            raise mapped from None

    # ---- reading -----------------------------------------------------------------------------

    async def _properties(self, path: str, hook: Callable[[Any], None]) -> tuple[Any, bool] | None:
        """The SDK's properties of what is at ``path`` and whether it is a directory, or ``None``
        when nothing is (a missing share raises). Tries a file first: most paths are files."""
        if path:
            try:
                return await self._file(path).get_file_properties(raw_response_hook=hook), False
            except ResourceNotFoundError as exc:
                _reraise_missing_container(exc)
        try:
            return await self._directory(path).get_directory_properties(raw_response_hook=hook), True
        except ResourceNotFoundError as exc:
            _reraise_missing_container(exc)
            return None

    async def stat(self, path: str) -> StoredObject | None:
        """File or directory at ``path`` with size, times, MD5, content headers, metadata and SMB
        info (no permission: see :meth:`get_permission`); ``None`` when nothing is there."""
        path = path.strip("/")
        headers: dict[str, str] = {}
        with self._errors("stat", path):
            if self._wire is not None and path:
                try:  # most paths are files: one lean HEAD; a directory falls through below
                    return stored_from_get(path, b"", await self._wire.head_file(self._full(path)))
                except ResourceNotFoundError as exc:
                    _reraise_missing_container(exc)
            found = await self._properties(path, _header_capture(headers))
        if found is None:
            return None
        props, is_dir = found
        common = {"path": path, "last_modified": props.last_modified, "smb": _smb_from_headers(headers)}
        if is_dir:
            return StoredObject(is_dir=True, metadata=dict(props.metadata or {}), **common)
        settings = props.content_settings
        return StoredObject(
            is_dir=False,
            size=int(props.size),
            md5=bytes(settings.content_md5) if settings.content_md5 else None,
            content=_content_headers(settings),
            metadata=dict(props.metadata or {}),
            **common,
        )

    async def get_permission(self, path: str) -> str | None:
        """The SDDL permission of the file or directory at ``path`` (an optional SMB ability,
        beyond the :class:`Backend` protocol); ``None`` when nothing is there."""
        path = path.strip("/")
        headers: dict[str, str] = {}
        with self._errors("read the permission of", path):
            if await self._properties(path, _header_capture(headers)) is None:
                return None
            key = _header(headers, "x-ms-file-permission-key")
            return None if key is None else str(await self._share.get_permission_for_share(key))

    def list(self, path: str, *, recursive: bool, skip_vanished: bool = False) -> AsyncIterator[StoredObject]:
        """Objects below directory ``path`` in tree order. One directory's entries are gathered
        (page by page) and sorted before any is yielded, so memory holds one listing per open
        depth level; a single directory with millions of entries is held whole (names, sizes,
        times) while it is walked. ``skip_vanished``: see :meth:`Backend.list`."""
        return self._walk(path.strip("/"), recursive=recursive, skip_vanished=skip_vanished)

    async def _walk(self, path: str, *, recursive: bool, skip_vanished: bool) -> AsyncIterator[StoredObject]:
        """Depth first from a stack of open levels (no recursion: any depth the service allows
        is walked)."""
        levels: list[Iterator[StoredObject]] = [iter(await self._list_one(path))]
        while levels:
            entry = next(levels[-1], None)
            if entry is None:
                levels.pop()
                continue
            yield entry
            if not (entry.is_dir and recursive):
                continue
            try:
                below = await self._list_one(entry.path)
            except NotFoundError:
                if skip_vanished:
                    continue  # removed since its parent was listed: nothing is below it now
                raise
            levels.append(iter(below))

    async def _list_one(self, path: str) -> Sequence[StoredObject]:
        """One directory's entries, sorted; the whole listing is retried when it fails part-way."""
        attempt = 0
        while True:
            try:
                return await self._list_once(path)
            except TransferError as error:
                await retry_or_raise(error, attempt)
                attempt += 1

    async def _list_once(self, path: str) -> Sequence[StoredObject]:
        prefix = f"{path}/" if path else ""
        with self._errors("list", path):
            try:
                if self._wire is not None:
                    entries = await self._list_lean(self._wire, path, prefix)
                else:
                    entries = await self._list_through_sdk(path, prefix)
            except ResourceNotFoundError as exc:
                _reraise_missing_container(exc)
                raise NotFoundError(f"list {self.describe(path)}: no such directory") from None
        # Unfinished files (staged under hidden names, see .staging) are nobody's data yet.
        entries = [self._as_listed(entry) for entry in entries]
        entries.sort(key=lambda entry: entry.name)
        return entries

    def _as_listed(self, entry: StoredObject) -> StoredObject:
        """``entry``, refused when it is a staging file; a stale one (untouched for
        :func:`~.staging.stale_after`: no writer is filling it) also goes into
        :attr:`stale_staging`, for a sync to remove."""
        if entry.is_dir or not is_staging_name(entry.name):
            return entry
        modified = entry.last_modified
        stale = modified is not None and datetime.now(UTC) - modified > self._stale_after
        if stale and len(self.stale_staging) < MAX_STALE_NOTED:
            self.stale_staging.append(entry.path)
        return replace(entry, refusal=STAGING_REFUSAL)

    async def _list_lean(self, wire: FilesWire, path: str, prefix: str) -> _Entries:
        """Every page of one directory through the lean path (see :mod:`.azfiles_wire`)."""
        entries: list[StoredObject] = []
        marker: str | None = None
        while True:
            page = await wire.list_directory(
                self._full(path), prefix=prefix, marker=marker, max_results=LISTING_PAGE_SIZE
            )
            entries.extend(page.entries)
            if page.next_marker is None:
                return entries
            marker = page.next_marker

    async def _list_through_sdk(self, path: str, prefix: str) -> _Entries:
        """Every page of one directory through the SDK (token credentials, anonymous access)."""
        capture = _ListingSmbCapture()
        entries: list[StoredObject] = []
        pages = self._directory(path).list_directories_and_files(
            include=["timestamps", "Etag", "Attributes"],
            include_extended_info=True,
            results_per_page=LISTING_PAGE_SIZE,
            raw_response_hook=capture,
        )
        async for page in pages.by_page():
            async for item in page:
                is_dir = bool(item.is_directory)
                name = str(item.name)
                entries.append(
                    StoredObject(
                        path=prefix + name,
                        is_dir=is_dir,
                        size=0 if is_dir else int(getattr(item, "size", 0) or 0),
                        last_modified=item.last_modified,
                        smb=capture.smb(name, is_dir=is_dir),
                    )
                )
        return entries

    async def read(self, path: str, offset: int, length: int) -> bytes:
        """Stored bytes ``[offset, offset+length)``, short only at the end of the file; never
        decompressed, whatever the Content-Encoding (decompressing is the engine's choice)."""
        if length <= 0:
            return b""
        with self._errors("read", path):
            try:
                downloader = await self._file(path).download_file(
                    offset=offset, length=length, validate_content=False, decompress=False
                )
            except HttpResponseError as exc:
                if exc.status_code == 416:  # the range starts at or after the end
                    return b""
                raise
            data = bytes(await downloader.readall())
            # The SDK's own size is the range asked for; the file's is after "/" in Content-Range.
            total = str(downloader.properties.content_range or "").rpartition("/")[2]
        expected = max(0, min(length, int(total) - offset)) if total.isdigit() else len(data)
        if len(data) != expected:
            raise _retryable(
                f"read {self.describe(path)}: got {len(data)} bytes at offset {offset}, expected {expected}",
                None,
            )
        return data

    async def read_whole(self, path: str, size: int) -> tuple[bytes, StoredObject]:
        """A small file's bytes and its properties from one GET (an optional ability beyond the
        :class:`Backend` protocol: it saves the engine a HEAD per small file). The properties
        are those :meth:`stat` gives; the stored MD5 comes from ``x-ms-content-md5`` (ranged)
        or ``Content-MD5``. ``size`` is the size the listing saw: a file that grew since is
        detected by the engine from the size reported here."""
        path = path.strip("/")
        headers: dict[str, str] = {}
        with self._errors("read", path):
            if self._wire is not None:
                data, found = await self._wire.get_file(self._full(path), 0, max(size, 1))
                return data, stored_from_get(path, data, found)
            downloader = await self._file(path).download_file(
                offset=0,
                length=max(size, 1),
                validate_content=False,
                decompress=False,
                raw_response_hook=_header_capture(headers),
            )
            data = bytes(await downloader.readall())
        props = downloader.properties
        total = str(props.content_range or "").rpartition("/")[2]
        stored = _header(headers, "x-ms-content-md5") or _header(headers, "content-md5")
        settings = props.content_settings
        return data, StoredObject(
            path=path,
            is_dir=False,
            size=int(total) if total.isdigit() else len(data),
            last_modified=props.last_modified,
            md5=base64.b64decode(stored) if stored else None,
            content=_content_headers(settings),
            metadata=dict(props.metadata or {}),
            smb=_smb_from_headers(headers),
        )

    def source_url(self, path: str) -> str | None:
        """The file URL with a read SAS (the backend's own, or one made from the account key),
        ``sharesnapshot`` included; ``None`` with token or anonymous credentials."""
        url = self._file(path).url
        joiner = "&" if "?" in url else "?"
        if self._sas is not None:
            return f"{url}{joiner}{self._sas}"
        if self._account_key is not None:
            sas = generate_file_sas(
                self._account_name,
                self.share,
                self._full(path).split("/"),
                self._account_key,
                permission=FileSasPermissions(read=True),
                expiry=datetime.now(UTC) + SOURCE_SAS_LIFETIME,
            )
            return f"{url}{joiner}{sas}"
        return None

    # ---- writing -----------------------------------------------------------------------------

    async def open_writer(self, path: str, *, size: int, props: WriteProps) -> AzureFileWriter:
        """Create the staging file of ``path`` (see :mod:`.staging`) with ``size`` bytes, its
        content headers, metadata, and SMB creation time and permission; parents are created when
        missing. The final name is untouched until :meth:`AzureFileWriter.commit` renames the
        staging file over it."""
        staged = staging_path(path, staging_token(self.staging_key, self._full(path)))
        client = self._file(staged)
        smb = props.smb
        permission, permission_key = await self._permission_args(smb.permission if smb else None, path)

        async def create() -> None:
            if self._wire is not None:
                return await self._wire.create_file(
                    self._full(staged), size, props, permission, permission_key
                )
            await client.create_file(
                size,
                file_creation_time=smb.creation_time if smb else None,
                file_last_write_time=smb.last_write_time if smb else None,
                file_permission=permission,
                permission_key=permission_key,
                content_settings=_content_settings(props.content, props.content_md5),
                metadata=dict(props.metadata),
            )

        async def create_with_parents() -> None:
            try:
                await create()
            except ResourceNotFoundError as exc:
                if _code(exc) != "ParentNotFound":
                    raise
                await self._make_parents(path)
                await create()

        with self._errors("create", path):
            creating = asyncio.ensure_future(create_with_parents())
            try:
                await asyncio.shield(creating)
            except asyncio.CancelledError:
                # Cancelled with Create File on the wire: no writer exists yet to abort the
                # staging file it may make. Let the request end first (a delete sent now could
                # overtake it), then remove what it made.
                await asyncio.wait([creating], timeout=_CONNECTION_TIMEOUT_SECONDS)
                if creating.done() and not creating.cancelled() and creating.exception() is None:
                    with contextlib.suppress(Exception):
                        await client.delete_file()
                raise
        return AzureFileWriter(backend=self, path=path, staged=staged, client=client, props=props)

    async def _permission_args(self, sddl: str | None, path: str) -> tuple[str | None, str | None]:
        """``(file_permission, permission_key)`` for an SDDL string: inline when small, else a key
        stored on the share once per distinct permission."""
        if sddl is None or len(sddl.encode()) <= INLINE_PERMISSION_LIMIT:
            return sddl, None
        key = self._permission_keys.get(sddl)
        if key is None:
            with self._errors("store permission for", path):
                key = str(await self._share.create_permission_for_share(sddl))
            self._permission_keys[sddl] = key
        return None, key

    async def _make_parents(self, path: str) -> None:
        """Create every directory above ``path`` (the root's own chain included), top down.

        Files landing in the same new directory at once share one creation instead of racing
        (each would otherwise send the whole chain after its own ParentNotFound)."""
        parent = self._full(path).rpartition("/")[0]
        if not parent:
            return
        task = self._parent_chains.get(parent)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.ensure_future(self._create_chain(parent))
            self._parent_chains[parent] = task
        await asyncio.shield(task)

    async def _create_chain(self, directory: str) -> None:
        parts = directory.split("/")
        for depth in range(1, len(parts) + 1):
            await _create_directory(self._share.get_directory_client("/".join(parts[:depth])), {})

    async def make_dir(self, path: str, props: WriteProps | None = None) -> None:
        """Create directory ``path`` (parents too, when the first try says they are missing) with
        ``props``' metadata; with ``props.smb`` the directory gets those attributes, times and
        permission, whether it is new or was already there."""
        smb = props.smb if props else None
        path = path.strip("/")
        client = self._directory(path)
        with self._errors("create directory", path):
            permission, permission_key = await self._permission_args(smb.permission if smb else None, path)
            smb_args: dict[str, Any] = {}
            if smb is not None:
                smb_args = {
                    "file_attributes": smb.attributes,
                    "file_creation_time": smb.creation_time,
                    "file_last_write_time": smb.last_write_time,
                    "file_permission": permission,
                }
            created = False
            if self._full(path):
                create_args = {**smb_args, "file_permission_key": permission_key}
                create_args["metadata"] = dict(props.metadata) if props else None
                try:
                    created = await _create_directory(client, create_args)
                except ResourceNotFoundError as exc:
                    if _code(exc) != "ParentNotFound":
                        raise
                    await self._make_parents(path)
                    created = await _create_directory(client, create_args)
            if smb is not None and not created:
                await client.set_http_headers(**smb_args, permission_key=permission_key)

    async def delete(self, path: str) -> None:
        """Remove the file, or the empty directory, at ``path``."""
        with self._errors("delete", path):
            try:
                await self._file(path).delete_file()
            except ResourceNotFoundError as exc:
                _reraise_missing_container(exc)
                try:
                    await self._directory(path).delete_directory()
                except ResourceNotFoundError:
                    raise NotFoundError(f"delete {self.describe(path)}: not found") from None

    async def remove_staged(self, path: str, *, job_key: str) -> bool:
        """Remove the staging file job ``job_key`` used for ``path`` (see :mod:`.staging`);
        ``False`` when there is none."""
        staged = staging_path(path, staging_token(job_key, self._full(path)))
        with self._errors("remove the unfinished", staged):
            try:
                await self._file(staged).delete_file()
            except ResourceNotFoundError:
                return False
        return True

    async def create_share(self, *, quota_gb: int | None) -> bool:
        """Create the share (``shareferry make``); ``False`` when it already existed."""
        with self._errors("create share", ""):
            try:
                await self._service.create_share(self.share, quota=quota_gb)
            except ResourceExistsError as exc:
                if _code(exc) != "ShareAlreadyExists":
                    raise
                return False
        return True

    async def close(self) -> None:
        """Close the one aiohttp session every client of this backend shares (and the lean
        path's own)."""
        await self._service.close()
        if self._wire is not None:
            await self._wire.close()


@dataclass(eq=False)
class AzureFileWriter:
    """Writes ranges into the staging file (Azure Files writes in place, so the bytes go to a
    hidden name first); :meth:`commit` sets what Create File could not (Content-MD5 known only at
    the end, SMB attributes and times: a put range moves the last-write time) and then renames the
    staging file over the final name in one step. A small file costs three requests: Create File,
    one Put Range and Rename File."""

    backend: AzureFilesBackend
    path: str
    staged: str
    client: ShareFileClient
    props: WriteProps

    async def write(self, offset: int, data: bytes) -> None:
        with self.backend._errors("write", self.path):
            if self.backend._wire is not None:
                return await self.backend._wire.put_range(self.backend._full(self.staged), offset, data)
            await self.client.upload_range(data, offset=offset, length=len(data))

    async def write_from_url(self, offset: int, url: str, source_offset: int, length: int) -> None:
        with self.backend._errors("copy a range from a URL into", self.path):
            wire = self.backend._wire
            if wire is not None:
                return await wire.put_range_from_url(
                    self.backend._full(self.staged), offset, url, source_offset, length
                )
            await self.client.upload_range_from_url(
                url, offset=offset, length=length, source_offset=source_offset
            )

    async def commit(self, md5: bytes | None) -> None:
        smb = self.props.smb
        if smb is not None or md5 != self.props.content_md5:
            with self.backend._errors("set properties of", self.path):
                await self.client.set_http_headers(
                    _content_settings(self.props.content, md5),
                    file_attributes=smb.attributes if smb else None,
                    file_creation_time=smb.creation_time if smb else None,
                    file_last_write_time=smb.last_write_time if smb else None,
                )
        backend = self.backend
        with backend._errors("commit", self.path):
            if backend._wire is not None:
                return await backend._wire.rename_file(backend._full(self.staged), backend._full(self.path))
            await self.client.rename_file(backend._full(self.path), overwrite=True)

    async def abort(self) -> None:
        # Best effort by contract: the engine reports the error that made it abort. Only the
        # staging file goes: whatever was at the final name is untouched.
        with contextlib.suppress(Exception):
            await self.client.delete_file()


# ---- helpers ---------------------------------------------------------------------------------


def translate_error(exc: BaseException, context: str) -> ShareFerryError | None:
    """The contract's error for an SDK or network failure, or ``None`` for anything else (bugs
    stay bugs). ``context`` (action and a SAS-free URL) starts the message; the service's error
    code and HTTP status follow, never the request URL or its SAS."""
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        code = _code(exc)
        detail = f"{code or 'no error code'} (HTTP {status})" if status else (code or "no response")
        if code == "CannotVerifyCopySource":
            return CopySourceError(redact(f"{context}: the service could not read the copy source, {detail}"))
        if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
            return CredentialError(redact(f"{context}: access denied, {detail}: check the SAS, key or token"))
        if isinstance(exc, ResourceNotFoundError) or status == 404:
            return NotFoundError(redact(f"{context}: not found, {detail}"))
        if isinstance(exc, DecodeError) or status in RETRYABLE_STATUSES or status is None or status < 300:
            # < 300: the response started well and its body broke off ("Download stream interrupted")
            what = detail if status is None or status >= 300 else f"response cut short (HTTP {status})"
            return _retryable(redact(f"{context}: {what}"), _retry_after(exc))
        return TransferError(redact(f"{context}: {detail}"))
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return _retryable(redact(f"{context}: {_first_line(exc)}"), None)
    if isinstance(exc, AzureError):
        return TransferError(redact(f"{context}: {_first_line(exc)}"))
    if isinstance(exc, (TimeoutError, ConnectionError)) or type(exc).__module__.startswith("aiohttp"):
        # aiohttp's own errors can escape the SDK while a body streams; matched by module because
        # the core may not import aiohttp.
        return _retryable(redact(f"{context}: {type(exc).__name__}: {_first_line(exc)}"), None)
    return None


async def _create_directory(client: ShareDirectoryClient, args: dict[str, Any]) -> bool:
    """Create one directory; ``False`` when it already exists (a file in its place still fails)."""
    try:
        await client.create_directory(**args)
    except ResourceExistsError as exc:
        if _code(exc) != "ResourceAlreadyExists":
            raise
        return False
    return True


def account_from_endpoint(endpoint: str) -> str:
    """The account an endpoint names: the first path segment of a path-style URL, else the first
    label of the host (``acct.file.core.windows.net``)."""
    parts = urlsplit(endpoint)
    first_segment = parts.path.strip("/").partition("/")[0]
    return unquote(first_segment) if first_segment else (parts.hostname or "").partition(".")[0]


def _retryable(message: str, retry_after: float | None) -> TransferError:
    return TransferError(message, retryable=True, retry_after=retry_after)


def _response_headers(exc: HttpResponseError) -> Any:
    return getattr(exc.response, "headers", None) or {}


def _retry_after(exc: HttpResponseError) -> float | None:
    value = _response_headers(exc).get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _code(exc: HttpResponseError) -> str | None:
    code = getattr(exc, "error_code", None) or _response_headers(exc).get("x-ms-error-code")
    return None if code is None else str(getattr(code, "value", code))


def _reraise_missing_container(exc: ResourceNotFoundError) -> None:
    """Re-raise when the share (or snapshot) itself is missing, not just the path in it."""
    if _code(exc) in _MISSING_CONTAINER_CODES:
        raise exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _content_headers(settings: ContentSettings) -> ContentHeaders:
    """The SDK's content settings as the core's neutral headers (the inverse of the next one)."""
    return ContentHeaders(
        content_type=settings.content_type,
        content_encoding=settings.content_encoding,
        content_language=settings.content_language,
        content_disposition=settings.content_disposition,
        cache_control=settings.cache_control,
    )


def _content_settings(content: ContentHeaders, md5: bytes | None) -> ContentSettings:
    return ContentSettings(
        content_type=content.content_type,
        content_encoding=content.content_encoding,
        content_language=content.content_language,
        content_disposition=content.content_disposition,
        cache_control=content.cache_control,
        content_md5=bytearray(md5) if md5 is not None else None,
    )


def _header_capture(into: dict[str, str]) -> Callable[[Any], None]:
    """A ``raw_response_hook`` that keeps the last response's headers (lower-case names)."""

    def hook(pipeline_response: Any) -> None:
        into.clear()
        into.update((str(k).lower(), str(v)) for k, v in pipeline_response.http_response.headers.items())

    return hook


def _header(headers: dict[str, str], name: str) -> str | None:
    return headers.get(name) or None


def _smb_from_headers(headers: dict[str, str]) -> SmbInfo | None:
    smb = SmbInfo(
        attributes=_header(headers, "x-ms-file-attributes"),
        creation_time=_header(headers, "x-ms-file-creation-time"),
        last_write_time=_header(headers, "x-ms-file-last-write-time"),
    )
    return smb if smb != SmbInfo() else None


class _ListingSmbCapture:
    """A ``raw_response_hook`` for listings: the exact SMB strings of the latest page, by name.

    The SDK parses the same XML but keeps only microseconds of the times; pages arrive one at a
    time, so only the current page's entries are held.
    """

    def __init__(self) -> None:
        self._page: dict[tuple[bool, str], SmbInfo] = {}

    def __call__(self, pipeline_response: Any) -> None:
        self._page = {}
        body = pipeline_response.http_response.body()
        if not body:
            return
        # The same body the SDK itself parses with ElementTree right after this hook.
        root = ET.fromstring(body)  # noqa: S314
        entries = root.find("Entries")
        for entry in entries if entries is not None else ():
            name_element = entry.find("Name")
            if name_element is None or name_element.text is None:
                continue
            name = name_element.text
            if name_element.get("Encoded", "").lower() == "true":
                name = unquote(name)
            properties = entry.find("Properties")

            def text(parent: ET.Element | None, tag: str) -> str | None:
                found = parent.find(tag) if parent is not None else None
                return found.text if found is not None and found.text else None

            self._page[(entry.tag == "Directory", name)] = SmbInfo(
                attributes=text(entry, "Attributes"),
                creation_time=text(properties, "CreationTime"),
                last_write_time=text(properties, "LastWriteTime"),
            )

    def smb(self, name: str, *, is_dir: bool) -> SmbInfo | None:
        found = self._page.get((is_dir, name))
        return found if found is not None and found != SmbInfo() else None
