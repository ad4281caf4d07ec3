"""Why a shard failed, as one CamelCase reason the controller can put in a condition.

The core reports a job's error as one redacted line and a file's error as text holding the
service's error code and HTTP status (``... not found, ShareNotFound (HTTP 404)``); the error
class is known only for what was raised before the job started. :func:`failure_reason` reads
both: ``AuthenticationFailed`` (401/403, no or a bad credential), ``ShareNotFound`` /
``ContainerNotFound`` / ``SourceNotFound`` (404 on the root, a missing local source),
``QuotaExceeded`` (the share is full), ``InvalidSpec`` (bad input), else ``TransferFailed``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shareferry.core.errors import CredentialError, NotFoundError, ShareFerryError, UsageError

AUTHENTICATION_FAILED = "AuthenticationFailed"
SHARE_NOT_FOUND = "ShareNotFound"
CONTAINER_NOT_FOUND = "ContainerNotFound"
SOURCE_NOT_FOUND = "SourceNotFound"
QUOTA_EXCEEDED = "QuotaExceeded"
INVALID_SPEC = "InvalidSpec"
TRANSFER_FAILED = "TransferFailed"

_QUOTA = re.compile(r"ShareSizeLimitReached|ShareQuotaExceeded|quota|no space left", re.IGNORECASE)
_AUTH = re.compile(
    r"AuthenticationFailed|AuthorizationFailure|AuthorizationPermissionMismatch|InsufficientAccountPermissions"
    r"|access denied|refused the credential|no credential for|permission denied|HTTP 40[13]\b|\b40[13] ",
    re.IGNORECASE,
)
_SHARE = re.compile(r"ShareNotFound")
_CONTAINER = re.compile(r"ContainerNotFound")
_NOT_FOUND = re.compile(
    r"not found|does not exist|no such (file|directory)|ResourceNotFound|ParentNotFound", re.IGNORECASE
)


def reason_for_text(text: str) -> str:
    """The reason one error line gives."""
    for pattern, reason in (
        (_QUOTA, QUOTA_EXCEEDED),
        (_SHARE, SHARE_NOT_FOUND),
        (_CONTAINER, CONTAINER_NOT_FOUND),
        (_AUTH, AUTHENTICATION_FAILED),
        (_NOT_FOUND, SOURCE_NOT_FOUND),
    ):
        if pattern.search(text):
            return reason
    return TRANSFER_FAILED


def reason_for_error(error: BaseException) -> str:
    """The reason an exception raised before the job started gives."""
    text = str(error)
    if isinstance(error, CredentialError):
        return AUTHENTICATION_FAILED
    if isinstance(error, NotFoundError):
        found = reason_for_text(text)
        return found if found in (SHARE_NOT_FOUND, CONTAINER_NOT_FOUND) else SOURCE_NOT_FOUND
    if isinstance(error, UsageError):
        found = reason_for_text(text)
        return found if found == SOURCE_NOT_FOUND else INVALID_SPEC
    if isinstance(error, ShareFerryError):
        return reason_for_text(text)
    return TRANSFER_FAILED


def failure_reason(*, error: str | None, file_errors: Iterable[str] = ()) -> str | None:
    """The reason of a finished shard: from its job error, else from its failed files (the
    first that says more than ``TransferFailed``); None when nothing failed."""
    if error:
        return reason_for_text(error)
    seen = False
    for text in file_errors:
        seen = True
        reason = reason_for_text(text)
        if reason != TRANSFER_FAILED:
            return reason
    return TRANSFER_FAILED if seen else None
