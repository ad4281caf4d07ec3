"""The Azure Blob backend: a container (below an optional virtual directory) on the async Azure SDK.

Blob storage has no directories, only names with ``/`` in them; this backend shows the names as a
tree of *virtual directories* (as AzCopy does) and treats AzCopy's folder markers (zero-length
blobs with metadata ``hdi_isfolder=true``) as directories too. Writes stage blocks and commit a
block list, so nothing is visible until :meth:`Writer.commit`. The Azure SDK's own retries are
turned off: the engine retries, and this module only classifies failures for it. With a SAS or
an account key, range reads and listings skip the SDK's pipeline (:mod:`.azblob_wire`, its own
session).
"""

from __future__ import annotations

import base64
import heapq
import ipaddress
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn, cast
from urllib.parse import quote, urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import (
    BlobBlock,
    BlobProperties,
    BlobSasPermissions,
    ContentSettings,
    StandardBlobTier,
    generate_blob_sas,
)
from azure.storage.blob.aio import BlobClient, BlobPrefix, BlobServiceClient

from shareferry.core.backends.azblob_wire import (
    FOLDER_MARKER,
    BlobWire,
    ListedPage,
    blob_wire_for,
    explicit_tier,
    listed_prefix,
    stored_from_get,
)
from shareferry.core.backends.base import BackendKind, Capabilities
from shareferry.core.backends.listing_retry import retry_or_raise
from shareferry.core.backends.sdk_transport import sdk_client_options
from shareferry.core.errors import (
    CopySourceError,
    CredentialError,
    NotFoundError,
    ShareFerryError,
    TransferError,
    UsageError,
)
from shareferry.core.objects import ContentHeaders, Refusal, Refused, StoredObject, WriteProps
from shareferry.core.printable import printable
from shareferry.core.redact import redact

MIB = 1024 * 1024
#: The largest block this backend stages in one request (Put Block and Put Block From URL).
MAX_BLOCK = 100 * MIB
#: Random bytes in the tag that starts every block id of one writer (see :class:`BlockBlobWriter`).
BLOCK_TAG_BYTES = 6
#: How long a SAS made by :meth:`AzureBlobBackend.source_url` stays valid. The engine may reuse
#: one URL for every block of a large file, so it must outlive the slowest single-file copy.
SOURCE_SAS_LIFETIME = timedelta(hours=2)
#: Allowance for clock skew between this machine and the service, for generated SAS start times.
CLOCK_SKEW = timedelta(minutes=15)
#: Entries asked for per listing page; ``None``: the service's default (5,000, its maximum).
LISTING_PAGE_SIZE: int | None = None

_CONNECTION_ERRORS = (
    ServiceRequestError,
    ServiceResponseError,
    IncompleteReadError,
    ConnectionError,
    TimeoutError,
)
_SDK_PREFIX = re.compile(r"^Operation returned an invalid status '(.*)'$")


class AzureBlobBackend:
    """The blobs of one container below ``root`` (a virtual directory, ``""`` for all).

    ``endpoint`` is the account URL: ``https://ACCOUNT.blob.core.windows.net`` or path-style
    ``http://127.0.0.1:PORT/ACCOUNT``; a SAS in its query string is used when ``sas`` is not
    given. Give at most one credential: ``sas``, ``account_key`` (with ``account_name``, or the
    account is read from the endpoint) or an async ``token_credential``; none means anonymous
    (public) access. ``snapshot`` makes the backend read-only and reads that snapshot of each blob.
    """

    kind: BackendKind = "blob"
    capabilities = Capabilities(
        folders=False,
        smb=False,
        source_url=True,
        write_from_url=True,
        stored_md5=True,
        max_range=MAX_BLOCK,
    )

    def __init__(
        self,
        *,
        endpoint: str,
        container: str,
        root: str = "",
        snapshot: str | None = None,
        sas: str | None = None,
        account_name: str | None = None,
        account_key: str | None = None,
        token_credential: object | None = None,
    ) -> None:
        parts = urlsplit(endpoint)
        if not parts.scheme or not parts.netloc:
            raise UsageError(f"not an account URL: {redact(endpoint)}")
        if sas is None and parts.query:
            sas = parts.query
        given = [name for name, value in (("sas", sas), ("account_key", account_key)) if value]
        if token_credential is not None:
            given.append("token_credential")
        if len(given) > 1:
            raise UsageError(f"give one credential for {container}, not {' and '.join(given)}")
        self.endpoint = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
        self.container = container
        self.root = root.strip("/")
        self.snapshot = snapshot
        self._sas = sas.lstrip("?") if sas else None
        self._account_key = account_key
        self._account_name = account_name or _account_from_endpoint(self.endpoint)
        self._token_auth = token_credential is not None
        credential: Any = None
        if token_credential is not None:
            credential = token_credential
        elif account_key:
            credential = {"account_name": self._account_name, "account_key": account_key}
        elif self._sas:
            credential = self._sas
        self._service = BlobServiceClient(
            account_url=self.endpoint,
            credential=credential,
            **sdk_client_options(self.endpoint, {"retry_total": 0}),
        )
        self._container = self._service.get_container_client(container)
        # SAS and shared key: range reads skip the SDK's pipeline (see azblob_wire).
        self._wire = blob_wire_for(
            endpoint=self.endpoint,
            container=container,
            snapshot=snapshot,
            sas=self._sas,
            account_name=self._account_name,
            account_key=account_key or None,
            api_version=self._container.api_version,
        )

    # -- naming -------------------------------------------------------------------------------

    def describe(self, path: str = "") -> str:
        """``ENDPOINT/CONTAINER/NAME`` (with ``?snapshot=`` when reading one), never a SAS."""
        name = self._blob_name(_clean(path))
        text = f"{self.endpoint}/{self.container}" + (f"/{name}" if name else "")
        if self.snapshot:
            text += f"?snapshot={self.snapshot}"
        return redact(text)

    def _blob_name(self, path: str) -> str:
        return f"{self.root}/{path}" if self.root and path else (self.root or path)

    def _dir_prefix(self, path: str) -> str:
        name = self._blob_name(path)
        return f"{name}/" if name else ""

    def _blob(self, path: str) -> BlobClient:
        return self._container.get_blob_client(self._blob_name(path), snapshot=self.snapshot)

    # -- reading ------------------------------------------------------------------------------

    async def stat(self, path: str) -> StoredObject | None:
        """A blob is a file (a folder marker a directory); a name with blobs below ``name/`` is
        a virtual directory; the root is always a directory."""
        path = _clean(path)
        if not path:
            return StoredObject(path="", is_dir=True)
        with self._mapped("stat", path):
            try:
                props = await self._blob(path).get_blob_properties()
            except ResourceNotFoundError as err:
                if _error_code(err) == "ContainerNotFound":
                    raise
                props = None
            if props is not None:
                return _stored(path, props)
            if await self._has_blobs_below(path):
                return StoredObject(path=path, is_dir=True)
        return None

    async def _has_blobs_below(self, path: str) -> bool:
        pages = self._container.list_blobs(name_starts_with=self._dir_prefix(path), results_per_page=1)
        async for _ in pages:
            return True
        return False

    async def list(
        self, path: str, *, recursive: bool, skip_vanished: bool = False
    ) -> AsyncIterator[StoredObject]:
        """Tree order, one listing call per open directory level at a time (see
        :func:`tree_order_level` for how a level is put in order without reading it whole).
        A virtual directory whose blobs all went meanwhile lists as empty, whatever
        ``skip_vanished`` says: a prefix with no blobs is not an error."""
        path = _clean(path)
        found = False
        with self._mapped("list", path):
            async for obj in self._walk(path, recursive=recursive):
                found = True
                yield obj
            if found or not path:
                return
            stored = await self.stat(path)
        if stored is None or not stored.is_dir:
            raise NotFoundError(f"list {self.describe(path)}: no such directory")

    async def _walk(self, path: str, *, recursive: bool) -> AsyncIterator[StoredObject]:
        """Depth first from a stack of open levels (no recursion: names of any depth are
        walked). Blobs whose names hold an empty segment are listed refused
        (:meth:`_unholdable`) where their level's empty-named prefix sorts: first."""
        levels = [tree_order_level(self._level(path))]
        try:
            while levels:
                try:
                    obj = await anext(levels[-1])
                except StopAsyncIteration:
                    await levels.pop().aclose()
                    continue
                if obj.is_dir and not obj.name:
                    async for refused in self._unholdable(obj.path[:-1]):
                        yield refused
                    continue
                yield obj
                if recursive and obj.is_dir:
                    levels.append(tree_order_level(self._level(obj.path)))
        finally:
            for level in reversed(levels):
                await level.aclose()

    async def _unholdable(self, path: str) -> AsyncIterator[StoredObject]:
        """Every blob below ``path + "/"`` + ``/``: names with an empty segment (``/a``,
        ``a//b``), which no directory tree (local, Azure Files) can hold, in tree order and
        refused with their names. Few in practice: they are gathered, then sorted."""
        prefix = self._dir_prefix(path) + "/"
        include = ["snapshots"] if self.snapshot else None
        found: list[StoredObject] = []
        async for item in self._container.list_blobs(name_starts_with=prefix, include=include):
            if self.snapshot is not None and item.snapshot != self.snapshot:
                continue
            name = str(item.name)
            reason = (
                f"its name '{printable(name)}' has an empty segment (a leading '/' or a '//'), "
                "which no path of files and folders can hold"
            )
            found.append(
                StoredObject(
                    path=_join(path, name[len(prefix) - 1 :]),
                    is_dir=False,
                    size=int(item.size or 0),
                    last_modified=item.last_modified,
                    refusal=Refusal(Refused.NAME, reason),
                )
            )
        found.sort(key=lambda obj: obj.path.split("/"))
        for obj in found:
            yield obj

    async def _level(self, path: str) -> AsyncIterator[ListedPage]:
        """The pages of one level below ``path``, as ``(name as listed, object)`` pairs. A page
        that fails is asked for again from its continuation token."""
        pages = self._level_lean(self._wire, path) if self._wire is not None else self._level_sdk(path)
        async for page in pages:
            yield page

    async def _level_lean(self, wire: BlobWire, path: str) -> AsyncIterator[ListedPage]:
        prefix = self._dir_prefix(path)
        marker: str | None = None
        attempt = 0
        while True:
            try:
                with self._mapped("list", path):
                    entries, next_marker = await wire.list_level(
                        prefix, parent=path, marker=marker, max_results=LISTING_PAGE_SIZE
                    )
            except TransferError as error:  # this page failed: ask for it again from its marker
                await retry_or_raise(error, attempt)
                attempt += 1
                continue
            attempt = 0
            yield entries
            if next_marker is None:
                return
            marker = next_marker

    async def _level_sdk(self, path: str) -> AsyncIterator[ListedPage]:
        prefix = self._dir_prefix(path)
        include = ["metadata", "snapshots"] if self.snapshot else ["metadata"]
        token: str | None = None
        attempt = 0
        while True:
            pages = self._container.walk_blobs(
                name_starts_with=prefix, delimiter="/", include=include, results_per_page=LISTING_PAGE_SIZE
            )
            pager = pages.by_page(continuation_token=token)
            try:
                while True:
                    with self._mapped("list", path):
                        try:
                            page = await anext(pager)
                        except StopAsyncIteration:
                            return
                        entries: ListedPage = []
                        async for item in page:
                            listed = item.name[len(prefix) :]
                            if isinstance(item, BlobPrefix):
                                entries.append((listed, listed_prefix(path, listed)))
                            elif listed and (self.snapshot is None or item.snapshot == self.snapshot):
                                entries.append((listed, _stored(_join(path, listed), item)))
                    yield entries
                    token = pager.continuation_token  # type: ignore[attr-defined]
                    attempt = 0
            except TransferError as error:  # this page failed: ask for it again from its token
                await retry_or_raise(error, attempt)
                attempt += 1

    async def read(self, path: str, offset: int, length: int) -> bytes:
        path = _clean(path)
        if length <= 0:
            return b""
        with self._mapped("read", path):
            try:
                if self._wire is not None:
                    data, _headers = await self._wire.get_blob(self._blob_name(path), offset, length)
                    return data
                download = await self._blob(path).download_blob(
                    offset=offset, length=length, decompress=False
                )  # stored bytes: Content-Encoding is a property to copy, not to undo
                return await download.readall()
            except HttpResponseError as err:
                if err.status_code == 416:  # the range starts at or after the end
                    return b""
                raise

    async def read_whole(self, path: str, size: int) -> tuple[bytes, StoredObject]:
        """A small blob's bytes and its properties from one GET (an optional ability beyond the
        :class:`Backend` protocol: it saves the engine a HEAD per small blob). The properties are
        those :meth:`stat` gives. ``size`` is the size the listing saw: a blob that changed
        since is detected by the engine from the size reported here. Without the lean path
        (token credentials) it is :meth:`stat` and :meth:`read`."""
        path = _clean(path)
        if self._wire is None:
            stat = await self.stat(path)
            if stat is None or stat.is_dir:
                raise NotFoundError(f"read {self.describe(path)}: no such blob")
            return await self.read(path, 0, max(size, 1)), stat
        with self._mapped("read", path):
            try:
                data, headers = await self._wire.get_blob(self._blob_name(path), 0, max(size, 1))
            except HttpResponseError as err:
                if err.status_code != 416:
                    raise
                data, headers = b"", None  # the blob is empty now: its properties from a HEAD
        if headers is None:
            stat = await self.stat(path)
            if stat is None or stat.is_dir:
                raise NotFoundError(f"read {self.describe(path)}: no such blob")
            return data, stat
        return data, stored_from_get(path, data, headers)

    def source_url(self, path: str) -> str | None:
        """The blob's URL with the backend's SAS, or a read SAS made from the account key
        (valid for :data:`SOURCE_SAS_LIFETIME`); ``None`` with a token credential."""
        if self._token_auth:
            return None
        path = _clean(path)
        url = self._blob(path).url.split("?", 1)[0]
        query = [f"snapshot={quote(self.snapshot)}"] if self.snapshot else []
        if self._account_key:
            now = datetime.now(UTC)
            query.append(
                generate_blob_sas(
                    self._account_name,
                    self.container,
                    self._blob_name(path),
                    snapshot=self.snapshot,
                    account_key=self._account_key,
                    permission=BlobSasPermissions(read=True),
                    start=now - CLOCK_SKEW,
                    expiry=now + SOURCE_SAS_LIFETIME,
                )
            )
        elif self._sas:
            query.append(self._sas)
        return url + ("?" + "&".join(query) if query else "")

    # -- writing ------------------------------------------------------------------------------

    async def open_writer(self, path: str, *, size: int, props: WriteProps) -> BlockBlobWriter:
        path = _clean(path)
        self._writable("write", path)
        if not path:
            raise UsageError(f"write {self.describe(path)}: a blob needs a name")
        return BlockBlobWriter(backend=self, path=path, size=size, props=props)

    async def make_dir(self, path: str, props: WriteProps | None = None) -> None:
        """Blob storage has no directories: nothing to do."""

    async def delete(self, path: str) -> None:
        path = _clean(path)
        self._writable("delete", path)
        with self._mapped("delete", path):
            try:
                await self._blob(path).delete_blob()
                return
            except ResourceNotFoundError as err:
                if _error_code(err) == "ContainerNotFound" or not await self._has_blobs_below(path):
                    raise
        raise TransferError(
            f"delete {self.describe(path)}: a virtual directory with blobs below it has nothing "
            "of its own to delete"
        )

    async def create_container(self) -> bool:
        """Create the container; ``False`` when it already existed."""
        with self._mapped("create container", ""):
            try:
                await self._container.create_container()
            except ResourceExistsError:
                return False
        return True

    async def close(self) -> None:
        await self._service.close()
        if self._wire is not None:
            await self._wire.close()

    def _writable(self, operation: str, path: str) -> None:
        if self.snapshot:
            raise UsageError(f"{operation} {self.describe(path)}: a blob snapshot is read-only")

    # -- errors -------------------------------------------------------------------------------

    @contextmanager
    def _mapped(self, operation: str, path: str, *, source: str | None = None) -> Iterator[None]:
        """Turn Azure SDK failures inside the block into the core's errors."""
        try:
            yield
        except ShareFerryError:
            raise
        except (HttpResponseError, *_CONNECTION_ERRORS) as err:
            where = self.describe(path) + (f" from {redact(source)}" if source else "")
            raise_mapped(err, operation=operation, where=where)


class BlockBlobWriter:
    """Stages one block per write and commits them in order. A block's id is this writer's own
    random tag followed by the block's offset: two writers of one blob at once (two jobs) stage
    blocks that can never stand in for each other, so the blob that lands is wholly one
    writer's, never a mix of both.

    Blocks may be written concurrently and out of order; nothing is visible until
    :meth:`commit`. Uncommitted blocks cannot be deleted by a client (the service drops them
    after a week), so :meth:`abort` has nothing to do. A blob written in one piece is held until
    :meth:`commit` and sent as one Put Blob (one request instead of Put Block + Put Block List).
    """

    def __init__(self, *, backend: AzureBlobBackend, path: str, size: int, props: WriteProps) -> None:
        self._backend = backend
        self._path = path
        self._size = size
        self._props = props
        self._client = backend._blob(path)
        self._blocks: dict[int, int] = {}  # offset -> length
        self._whole: bytes | None = None  # the blob's only piece, sent at commit
        self._tag = secrets.token_hex(BLOCK_TAG_BYTES)

    async def write(self, offset: int, data: bytes) -> None:
        if not data:
            return
        if offset == 0 and len(data) == self._size and not self._blocks and self._whole is None:
            self._whole = data
            return
        with self._backend._mapped("put block", self._path):
            await self._client.stage_block(block_id(offset, tag=self._tag), data, length=len(data))
        self._blocks[offset] = len(data)

    async def write_from_url(self, offset: int, url: str, source_offset: int, length: int) -> None:
        if length <= 0:
            return
        with self._backend._mapped("put block from URL", self._path, source=url):
            await self._client.stage_block_from_url(
                block_id(offset, tag=self._tag), url, source_offset=source_offset, source_length=length
            )
        self._blocks[offset] = length

    async def commit(self, md5: bytes | None) -> None:
        if self._whole is not None:
            with self._backend._mapped("put blob", self._path):
                await self._client.upload_blob(
                    self._whole,
                    length=len(self._whole),
                    overwrite=True,
                    content_settings=self._settings(md5),
                    metadata=dict(self._props.metadata),
                    standard_blob_tier=self._tier(),
                )
            return
        offsets = sorted(self._blocks)
        end = 0
        for offset in offsets:
            if offset != end:
                break
            end += self._blocks[offset]
        if end != self._size:
            raise TransferError(
                f"commit {self._backend.describe(self._path)}: staged blocks cover {end} of "
                f"{self._size} bytes contiguously"
            )
        with self._backend._mapped("commit", self._path):
            await self._client.commit_block_list(
                [BlobBlock(block_id=block_id(offset, tag=self._tag)) for offset in offsets],
                content_settings=self._settings(md5),
                metadata=dict(self._props.metadata),
                standard_blob_tier=self._tier(),
            )

    def _tier(self) -> StandardBlobTier | None:
        """The tier asked for in the props (``x-ms-access-tier``), else the account's default."""
        tier = self._props.access_tier
        try:
            return StandardBlobTier(tier) if tier else None
        except ValueError:  # a premium tier (P10...) no standard block blob can take
            return None

    def _settings(self, md5: bytes | None) -> ContentSettings:
        content = self._props.content
        return ContentSettings(
            content_type=content.content_type,
            content_encoding=content.content_encoding,
            content_language=content.content_language,
            content_disposition=content.content_disposition,
            cache_control=content.cache_control,
            content_md5=cast(bytearray, md5),
        )

    async def abort(self) -> None:
        """Nothing to do: uncommitted blocks are never visible and expire on their own."""


def block_id(offset: int, *, tag: str) -> str:
    """The block id for the block at ``offset`` staged by the writer tagged ``tag``: the same
    length for every block of every writer (as Azure requires of one blob's blocks), and sorting
    like the offsets within one writer's blocks."""
    return base64.b64encode(f"{tag}-{offset:020d}".encode()).decode()


async def tree_order_level(
    pages: AsyncIterable[Sequence[tuple[str, StoredObject]]],
) -> AsyncGenerator[StoredObject, None]:
    """Put one level of a hierarchical listing into tree order while it streams, page by page.

    Each page holds ``(name as listed, object)`` pairs in any order (the Azure SDK gives a page's
    prefixes before its blobs); pages follow the service's name order. The service sorts whole
    names, so it lists ``a/`` (a virtual directory) after ``a b``, ``a-b`` and ``a.b``, while
    tree order puts directory ``a`` first. An entry is held back only while a directory still
    to come could sort before it: once the service has listed up to ``k``, any later directory
    ``d`` has ``d + "/" > k``, so ``d`` is at least the shortest prefix of ``k`` followed by a
    character below ``/`` (or ``k`` itself); entries at or below that bound are final. A
    directory listed twice (a folder-marker blob and the names below it) is given once.
    """
    held: list[tuple[str, bool, int, StoredObject]] = []
    last: tuple[str, bool] | None = None
    count = 0

    def release(bound: str | None) -> Iterator[StoredObject]:
        nonlocal last
        while held and (bound is None or held[0][0] <= bound):
            name, is_dir, _, ready = heapq.heappop(held)
            if not (is_dir and last == (name, True)):
                last = (name, is_dir)
                yield ready

    async for page in pages:
        for _, obj in page:
            count += 1
            heapq.heappush(held, (obj.name, obj.is_dir, count, obj))
        top = max((listed for listed, _ in page), default="")
        if top >= "/":  # below "/", the empty-named prefix (sorting first) may still come
            for ready in release(_lowest_name_after(top)):
                yield ready
    for ready in release(None):
        yield ready


def _lowest_name_after(listed: str) -> str:
    """The smallest name a directory listed after ``listed`` can have."""
    for index in range(1, len(listed)):
        if listed[index] < "/":
            return listed[:index]
    return listed


def raise_mapped(err: Exception, *, operation: str, where: str) -> NoReturn:
    """Raise the core error for an Azure SDK failure of ``operation`` on ``where``."""
    if isinstance(err, HttpResponseError) and not isinstance(err, IncompleteReadError):
        status = err.status_code
        code = _error_code(err)
        detail = f"{status} {code}" if code else str(status)
        reason = _first_line(err)
        if reason:
            detail += f": {reason}"
        if code == "CannotVerifyCopySource":
            raise CopySourceError(
                redact(f"{operation} {where}: the service could not read the copy source ({detail})")
            ) from None
        if isinstance(err, ResourceNotFoundError) or status == 404:
            raise NotFoundError(redact(f"{operation} {where}: not found ({detail})")) from None
        if isinstance(err, ClientAuthenticationError) or status in (401, 403):
            raise CredentialError(
                redact(f"{operation} {where}: the service refused the credential ({detail})")
            ) from None
        if status is None or _retryable_status(status):
            raise TransferError(
                redact(f"{operation} {where}: {detail}"),
                retryable=True,
                retry_after=_retry_after(err),
            ) from None
        raise TransferError(redact(f"{operation} {where}: {detail}")) from None
    kind = type(err).__name__
    raise TransferError(
        redact(f"{operation} {where}: connection failed ({kind}: {_first_line(err)})"), retryable=True
    ) from None


def _retryable_status(status: int) -> bool:
    """Timeouts, throttling and server errors; not 501 (an operation the service lacks)."""
    return status in (408, 429) or (status >= 500 and status != 501)


def _error_code(err: HttpResponseError) -> str:
    code = getattr(err, "error_code", None) or _headers(err).get("x-ms-error-code")
    return str(getattr(code, "value", code) or "")


def _headers(err: HttpResponseError) -> Mapping[str, str]:
    headers: Mapping[str, str] | None = getattr(err.response, "headers", None)
    return headers if headers is not None else {}


def _first_line(err: Exception) -> str:
    message = str(getattr(err, "message", None) or err).strip()
    line = message.splitlines()[0] if message else ""
    match = _SDK_PREFIX.match(line)
    return match.group(1) if match else line


def _retry_after(err: HttpResponseError) -> float | None:
    """Seconds the service asked to wait (``Retry-After``, or its millisecond variants)."""
    headers = _headers(err)
    for name, scale in (("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / scale)
            except ValueError:
                pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _stored(path: str, props: BlobProperties) -> StoredObject:
    metadata = dict(props.metadata or {})
    if metadata.get(FOLDER_MARKER, "").lower() == "true":
        return StoredObject(path=path, is_dir=True, last_modified=props.last_modified, metadata=metadata)
    settings = props.content_settings
    md5 = settings.content_md5
    return StoredObject(
        path=path,
        is_dir=False,
        size=props.size,
        last_modified=props.last_modified,
        md5=bytes(md5) if md5 else None,
        content=ContentHeaders(
            content_type=settings.content_type,
            content_encoding=settings.content_encoding,
            content_language=settings.content_language,
            content_disposition=settings.content_disposition,
            cache_control=settings.cache_control,
        ),
        metadata=metadata,
        access_tier=explicit_tier(props.blob_tier, props.blob_tier_inferred),
    )


def _account_from_endpoint(endpoint: str) -> str:
    """``ACCOUNT`` from ``https://ACCOUNT.blob...`` or path-style ``http://IP:PORT/ACCOUNT``."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        path_style = True
    except ValueError:
        path_style = host == "localhost"
    if path_style:
        return parts.path.strip("/").split("/", 1)[0]
    return host.split(".", 1)[0]


def _clean(path: str) -> str:
    return path.strip("/")


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name
