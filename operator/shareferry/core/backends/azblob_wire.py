"""A lean Get Blob of a byte range: the one request every small blob's download needs.

The Azure SDK spends a few milliseconds of client CPU per request in its pipeline (policies,
header building, the downloader's response processing); for many small blobs that, not the
service, limits a download. This range read is built here directly and sent by
:class:`~shareferry.core.backends.storage_wire.WireSender` (one shared azure-core transport; the
backend's SAS or account key; the SDK's exceptions on failure, so the backend's one translation
to the contract's errors applies unchanged). Entra ID tokens, anonymous access, and every other
operation (listings, properties, writes) stay with the SDK.

The request is the SDK's for the same call: the blob's URL quoted as the SDK quotes it (``~`` and
``/`` kept), ``snapshot=`` for a snapshot, ``x-ms-range`` and the blob client's ``x-ms-version``.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from shareferry.core.backends.storage_wire import WireSender, read_raw, signer_or_none


class BlobWire:
    """Lean ranged Get Blob requests on one container (reading one snapshot when ``snapshot``
    is given). ``endpoint`` is the account URL (virtual-host or path-style); ``sender`` sends and
    authorises every request."""

    def __init__(self, *, endpoint: str, container: str, snapshot: str | None, sender: WireSender) -> None:
        self._base = f"{endpoint.rstrip('/')}/{quote(container)}/"
        self._query: Mapping[str, str] = {"snapshot": snapshot} if snapshot else {}
        self._sender = sender

    async def get_blob(self, name: str, offset: int, length: int) -> tuple[bytes, Mapping[str, str]]:
        """Get Blob of ``[offset, offset+length)``: the bytes (raw) and the response's headers.
        A range starting at or after the end raises the SDK's 416 :class:`HttpResponseError`."""
        headers = {"Accept": "application/xml", "x-ms-range": f"bytes={offset}-{offset + length - 1}"}
        url = self._base + quote(name, safe="~/")
        response = await self._sender.send("GET", url, dict(self._query), headers, stream=True)
        return await read_raw(response), response.headers

    async def close(self) -> None:
        await self._sender.close()


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
    try:
        signer = signer_or_none(sas, account_name, account_key)
    except ValueError:
        return None  # the SDK reports a malformed key when it is first used
    if sas is None and signer is None:
        return None
    sender = WireSender(
        api_version=api_version, sas=sas, signer=signer, connection_timeout=connection_timeout
    )
    return BlobWire(endpoint=endpoint, container=container, snapshot=snapshot, sender=sender)
