"""The errors the core raises, each meant to be shown to a person as one clear line."""

from __future__ import annotations


class ShareFerryError(Exception):
    """Base of every error the core raises on purpose (never for bugs)."""


class UsageError(ShareFerryError):
    """Bad input: a malformed URL, an unknown --from-to, an invalid date or pattern."""


class CredentialError(ShareFerryError):
    """No credential, or one the service refused (missing SAS, wrong key, expired token)."""


class UnreadableError(CredentialError):
    """A local directory that permissions forbid reading: a credential problem when it is what a
    job names, one failed folder (the walk goes on) when a walk meets it inside a tree."""


class NotFoundError(ShareFerryError):
    """The source (or a required destination container) does not exist."""


class TransferError(ShareFerryError):
    """One object failed to transfer after its retries; the job goes on with the others."""

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the service asked to wait (Retry-After), if any


class CopySourceError(TransferError):
    """The destination service could not read a server-side copy's source (its URL, SAS or host:
    ``CannotVerifyCopySource``). The engine then copies those bytes through this process."""
