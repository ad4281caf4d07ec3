"""Account-level listing: the shares or containers of an account, for account-to-account copies.

Everything else the core does is rooted at one share or container (see :mod:`base`); this is
the one place that addresses the account itself. The Blob SDK is imported only when a Blob
account is listed: a job that touches Azure Files alone never loads it (about 12 MiB).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from shareferry.core.backends.azfiles_client import share_service_client_for
from shareferry.core.backends.sdk_transport import sdk_client_options
from shareferry.core.credentials import Credential
from shareferry.core.errors import CredentialError, TransferError
from shareferry.core.locations import Location
from shareferry.core.redact import redact


async def container_names(location: Location, credential: Credential) -> AsyncIterator[str]:
    """Names of the account's shares (not snapshots) or containers, in the service's order."""
    assert location.endpoint is not None
    try:
        if location.kind == "file":
            async with share_service_client_for(location.endpoint, credential) as files:
                async for share in files.list_shares():
                    yield share.name
        else:
            from azure.storage.blob.aio import BlobServiceClient  # here, not above: see the docstring

            sdk_credential: Any = credential.sdk_credential()
            blob_options = sdk_client_options(location.endpoint, {})
            async with BlobServiceClient(
                location.endpoint, credential=sdk_credential, **blob_options
            ) as blobs:
                async for container in blobs.list_containers():
                    yield container.name
    except ClientAuthenticationError as exc:
        raise CredentialError(
            f"listing {location.describe()} was refused: {redact(str(exc).splitlines()[0])}"
        ) from exc
    except HttpResponseError as exc:
        code = getattr(exc, "error_code", None) or ""
        if exc.status_code == 403:
            raise CredentialError(f"listing {location.describe()} was refused (403 {code})") from exc
        raise TransferError(f"listing {location.describe()} failed: {exc.status_code} {code}") from exc
