"""Building the Azure Files SDK's service client: one place that turns credential pieces into its
``credential=`` and options (SAS, shared key, or Entra ID with the backup intent Files requires).
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials import AzureSasCredential
from azure.storage.fileshare.aio import ShareServiceClient

from shareferry.core.backends.sdk_transport import sdk_client_options
from shareferry.core.credentials import Credential


def share_service_client(
    endpoint: str,
    *,
    sas: str | None = None,
    account_name: str | None = None,
    account_key: str | None = None,
    token_credential: object | None = None,
    **options: Any,
) -> ShareServiceClient:
    """An async client for the account at ``endpoint`` (no query string). First match wins:
    ``sas``, then ``account_name`` + ``account_key``, then ``token_credential`` (an async token
    credential, sent with ``token_intent="backup"``), else anonymous. ``options`` go to the client
    (retries, timeouts, trailing dots), with the core's transport (:mod:`.sdk_transport`)."""
    credential: Any = None
    if sas:
        credential = AzureSasCredential(sas.lstrip("?"))
    elif account_key is not None:
        if not account_name:
            raise ValueError("an account key needs its account name")
        credential = {"account_name": account_name, "account_key": account_key}
    elif token_credential is not None:
        credential = token_credential
        options["token_intent"] = "backup"  # noqa: S105 - the Files OAuth intent, not a secret
    return ShareServiceClient(
        account_url=endpoint, credential=credential, **sdk_client_options(endpoint, options)
    )


def share_service_client_for(endpoint: str, credential: Credential, **options: Any) -> ShareServiceClient:
    """:func:`share_service_client` for a resolved :class:`Credential`."""
    return share_service_client(
        endpoint,
        sas=credential.sas if credential.kind == "sas" else None,
        account_name=credential.account_name,
        account_key=credential.account_key if credential.kind == "shared_key" else None,
        token_credential=credential.token_credential if credential.kind == "token" else None,
        **options,
    )
