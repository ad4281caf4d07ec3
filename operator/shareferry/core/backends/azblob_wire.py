"""A lean Get Blob of a byte range (the one request every small blob's download needs) and a lean
hierarchical List Blobs.

The Azure SDK spends a few milliseconds of client CPU per request in its pipeline (policies,
header building, the downloader's response processing), and about 200 µs per listed blob
building its models; for many small blobs that, not the service, limits a download. These two
requests are built here directly and sent by
:class:`~shareferry.core.backends.storage_wire.WireSender` (one shared aiohttp session; the
backend's SAS or account key; the SDK's exceptions on failure, so the backend's one translation
to the contract's errors applies unchanged). Entra ID tokens, anonymous access, and every other
operation (properties, writes) stay with the SDK.

The requests are the SDK's for the same calls: the blob's URL quoted as the SDK quotes it (``~``
and ``/`` kept), ``snapshot=`` for a snapshot, ``x-ms-range`` and the blob client's
``x-ms-version``; a listing sends the query ``walk_blobs`` sends (``prefix``, ``delimiter=/``,
``include=metadata``, plus ``snapshots`` when reading one). Listed blobs become the
:class:`StoredObject` values the backend makes of the SDK's blob properties.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from urllib.parse import quote, unquote

from shareferry.core.backends.storage_wire import WireSender, http_date, lean_sender, read_xml
from shareferry.core.objects import ContentHeaders, StoredObject

#: Metadata that marks a zero-length blob as a directory (written by AzCopy and ADLS tools).
FOLDER_MARKER = "hdi_isfolder"
_META_PREFIX = "x-ms-meta-"
#: One page of one directory level: ``(name as listed below the prefix, object)`` pairs.
ListedPage = list[tuple[str, StoredObject]]


class BlobWire:
    """Lean ranged Get Blob requests on one container (reading one snapshot when ``snapshot``
    is given). ``endpoint`` is the account URL (virtual-host or path-style); ``sender`` sends and
    authorises every request."""

    def __init__(self, *, endpoint: str, container: str, snapshot: str | None, sender: WireSender) -> None:
        self._container_url = f"{endpoint.rstrip('/')}/{quote(container)}"
        self._base = self._container_url + "/"
        self._snapshot = snapshot
        self._query: Mapping[str, str] = {"snapshot": snapshot} if snapshot else {}
        self._sender = sender

    async def get_blob(self, name: str, offset: int, length: int) -> tuple[bytes, Mapping[str, str]]:
        """Get Blob of ``[offset, offset+length)``: the bytes (raw) and the response's headers.
        A range starting at or after the end raises the SDK's 416 :class:`HttpResponseError`."""
        headers = {"Accept": "application/xml", "x-ms-range": f"bytes={offset}-{offset + length - 1}"}
        url = self._base + quote(name, safe="~/")
        response = await self._sender.send("GET", url, dict(self._query), headers)
        return response.body, response.headers

    async def list_level(
        self, prefix: str, *, parent: str, marker: str | None, max_results: int | None
    ) -> tuple[ListedPage, str | None]:
        """One page of List Blobs below ``prefix`` with ``/`` as the delimiter, from ``marker``:
        ``(name as listed below prefix, object)`` pairs, each object's path ``parent`` + ``/`` +
        that name (virtual directories without their ``/``), and the next page's marker
        (``None`` on the last). Reading a snapshot lists only the blobs that have it."""
        query = {"restype": "container", "comp": "list", "prefix": prefix, "delimiter": "/"}
        if marker:
            query["marker"] = marker
        if max_results:
            query["maxresults"] = str(max_results)
        query["include"] = "metadata,snapshots" if self._snapshot else "metadata"
        response = await self._sender.send("GET", self._container_url, query, {"Accept": "application/xml"})
        root = read_xml(response)
        prefixes: ListedPage = []
        blobs: ListedPage = []
        found = root.find("Blobs")
        for item in found if found is not None else ():
            listed = _listed_name(item)[len(prefix) :]
            if item.tag == "BlobPrefix":
                prefixes.append((listed, listed_prefix(parent, listed)))
            elif item.tag == "Blob" and listed and self._listed_snapshot(item):
                blobs.append((listed, listed_blob(_join(parent, listed), item)))
        # Prefixes first, as the SDK gives a page: of a directory listed twice (a folder marker
        # and a prefix), the listing keeps the first.
        return prefixes + blobs, root.findtext("NextMarker") or None

    def _listed_snapshot(self, item: ET.Element) -> bool:
        """Whether a listed blob is what this path reads: the base blob, or the snapshot."""
        return self._snapshot is None or item.findtext("Snapshot") == self._snapshot

    async def close(self) -> None:
        await self._sender.close()


def listed_prefix(parent: str, listed: str) -> StoredObject:
    """A ``<BlobPrefix>`` (``listed`` below the level's prefix, ending with ``/``) as a virtual
    directory of ``parent``. The prefix ``/`` alone (blobs whose names go on with ``/``: a
    leading ``/`` or a ``//``) has an empty name: its path is ``parent + "/"``, so it sorts
    first in its level and the walk can report the blobs below it (no path can hold them)."""
    name = listed[:-1]
    return StoredObject(path=_join(parent, name) if name else f"{parent}/", is_dir=True)


def listed_blob(path: str, item: ET.Element) -> StoredObject:
    """A ``<Blob>`` of a listing as the backend's object: a folder marker is a directory (with
    its time and metadata); a blob a file with its size, Last-Modified, Content-MD5, content
    headers and metadata (empty headers count as absent, as the SDK reads them)."""
    found = item.find("Metadata")
    metadata = {child.tag: child.text or "" for child in found} if found is not None else {}
    found = item.find("Properties")
    properties = {child.tag: child.text for child in found} if found is not None else {}
    modified = properties.get("Last-Modified")
    last_modified = http_date(modified) if modified else None
    if metadata.get(FOLDER_MARKER, "").lower() == "true":
        return StoredObject(path=path, is_dir=True, last_modified=last_modified, metadata=metadata)
    md5 = properties.get("Content-MD5")
    return StoredObject(
        path=path,
        is_dir=False,
        size=int(properties.get("Content-Length") or 0),
        last_modified=last_modified,
        md5=base64.b64decode(md5) if md5 else None,
        content=content_headers(properties),
        metadata=metadata,
        access_tier=explicit_tier(properties.get("AccessTier"), properties.get("AccessTierInferred")),
    )


def stored_from_get(path: str, data: bytes, headers: Mapping[str, str]) -> StoredObject:
    """A blob's properties from a ranged Get Blob answer, as the backend's ``stat`` gives them
    from Get Blob Properties: the size after ``/`` in ``Content-Range``, the whole blob's
    stored MD5 (``x-ms-blob-content-md5`` on a ranged read, else ``Content-MD5``), Last-Modified,
    content headers and metadata; a folder marker is a directory."""
    metadata = {
        name[len(_META_PREFIX) :]: value
        for name, value in headers.items()
        if name.lower().startswith(_META_PREFIX)
    }
    modified = headers.get("last-modified")
    last_modified = http_date(modified) if modified else None
    if metadata.get(FOLDER_MARKER, "").lower() == "true":
        return StoredObject(path=path, is_dir=True, last_modified=last_modified, metadata=metadata)
    total = (headers.get("content-range") or "").rpartition("/")[2]
    md5 = headers.get("x-ms-blob-content-md5") or headers.get("content-md5")
    return StoredObject(
        path=path,
        is_dir=False,
        size=int(total) if total.isdigit() else len(data),
        last_modified=last_modified,
        md5=base64.b64decode(md5) if md5 else None,
        content=content_headers(headers),
        metadata=metadata,
    )


def explicit_tier(tier: str | None, inferred: object) -> str | None:
    """A blob's access tier when set on the blob; ``None`` when absent or only inferred (the
    account's default: a copy then takes its own account's default too)."""
    if not tier or str(inferred).lower() == "true":
        return None
    return tier


def content_headers(values: Mapping[str, str | None]) -> ContentHeaders:
    """The five content headers from a listing's properties or a response's headers (which look
    names up in any case); empty values count as absent, as the SDK reads them."""
    return ContentHeaders(
        content_type=values.get("Content-Type") or None,
        content_encoding=values.get("Content-Encoding") or None,
        content_language=values.get("Content-Language") or None,
        content_disposition=values.get("Content-Disposition") or None,
        cache_control=values.get("Cache-Control") or None,
    )


def _listed_name(item: ET.Element) -> str:
    """A listed blob's or prefix's name, percent-decoded when the service marks it ``Encoded``."""
    element = item.find("Name")
    if element is None or element.text is None:
        return ""
    return unquote(element.text) if element.get("Encoded", "").lower() == "true" else element.text


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def blob_wire_for(
    *,
    endpoint: str,
    container: str,
    snapshot: str | None,
    sas: str | None,
    account_name: str,
    account_key: str | None,
    api_version: str,
    connection_timeout: float = 20,
) -> BlobWire | None:
    """The lean path for a backend authorised by a SAS or an account key; ``None`` otherwise
    (Entra ID tokens, anonymous access and malformed keys keep the SDK for everything).
    ``connection_timeout`` defaults to the SDK's for storage clients."""
    sender = lean_sender(
        sas=sas,
        account_name=account_name,
        account_key=account_key,
        api_version=api_version,
        connection_timeout=connection_timeout,
    )
    return (
        None
        if sender is None
        else BlobWire(endpoint=endpoint, container=container, snapshot=snapshot, sender=sender)
    )
