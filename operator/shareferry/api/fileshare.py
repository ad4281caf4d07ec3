"""A FileShare's spec parsed into a typed dataclass (CRD defaults and checks applied), and the
URL of the share it declares."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from shareferry.api import fields
from shareferry.api.errors import SpecError
from shareferry.api.fields import INVALID_SPEC
from shareferry.core.option_values import METADATA_NAME

DeletionPolicy = Literal["Retain", "Delete"]
ACCESS_TIERS = ("TransactionOptimized", "Hot", "Cool", "Premium")
DEFAULT_DELETION_POLICY: DeletionPolicy = "Retain"
DEFAULT_RESYNC_SECONDS = 600
MIN_RESYNC_SECONDS = 30
MAX_QUOTA_GIB = 102400

_SPEC_FIELDS = (
    "account",
    "credentials",
    "workloadIdentity",
    "shareName",
    "quotaGiB",
    "accessTier",
    "metadata",
    "deletionPolicy",
    "resyncSeconds",
)
_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")
_ENDPOINT = re.compile(r"https?://[^?#]+")
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_SHARE_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


@dataclass(frozen=True)
class FileShareSpec:
    """A parsed FileShare spec. Exactly one of ``account_name`` (public cloud) and ``endpoint``
    (the account's Files endpoint: emulators, Azure Stack, sovereign clouds) is set, and exactly
    one of ``secret_name`` and ``workload_identity``."""

    share_name: str
    account_name: str | None = None
    endpoint: str | None = None
    secret_name: str | None = None
    workload_identity: bool = False
    quota_gib: int | None = None
    access_tier: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    deletion_policy: DeletionPolicy = DEFAULT_DELETION_POLICY
    resync_seconds: int = DEFAULT_RESYNC_SECONDS

    @property
    def account_url(self) -> str:
        """The account's Files endpoint, without a trailing ``/``."""
        if self.endpoint is not None:
            return self.endpoint.rstrip("/")
        return f"https://{self.account_name}.file.core.windows.net"


def share_url(spec: FileShareSpec) -> str:
    """``https://<account>.file.core.windows.net/<share>``, or ``<endpoint>/<share>``."""
    return f"{spec.account_url}/{spec.share_name}"


def parse_fileshare(spec: Mapping[str, Any], *, path: str = "spec") -> FileShareSpec:
    """``spec`` (a FileShare's ``spec``) parsed and checked as the CRD's schema and rules check
    it; :class:`SpecError` (reason ``InvalidSpec``) naming the field otherwise."""
    if not isinstance(spec, Mapping):
        raise fields.wrong_type(path, spec, "an object")
    fields.reject_unknown(spec, _SPEC_FIELDS, path)
    account_name, endpoint = _account(spec, path)
    workload_identity = bool(fields.boolean(spec, "workloadIdentity", path))
    secret_name = _secret_name(spec, path)
    if (secret_name is not None) == workload_identity:
        raise SpecError(
            INVALID_SPEC, f"{path}: give exactly one of credentials (a Secret) or workloadIdentity: true"
        )
    return FileShareSpec(
        share_name=_share_name(spec, path),
        account_name=account_name,
        endpoint=endpoint,
        secret_name=secret_name,
        workload_identity=workload_identity,
        quota_gib=fields.integer(spec, "quotaGiB", path, minimum=1, maximum=MAX_QUOTA_GIB),
        access_tier=fields.choice(spec, "accessTier", path, ACCESS_TIERS),
        metadata=_metadata(spec, path),
        deletion_policy=cast(
            DeletionPolicy,
            fields.choice(spec, "deletionPolicy", path, ("Retain", "Delete")) or DEFAULT_DELETION_POLICY,
        ),
        resync_seconds=fields.integer(spec, "resyncSeconds", path, minimum=MIN_RESYNC_SECONDS)
        or DEFAULT_RESYNC_SECONDS,
    )


def _account(spec: Mapping[str, Any], path: str) -> tuple[str | None, str | None]:
    account = fields.mapping(spec, "account", path)
    where = fields.join(path, "account")
    if account is None:
        raise SpecError(INVALID_SPEC, f"{where}: Required value")
    fields.reject_unknown(account, ("name", "endpoint"), where)
    name = fields.string(account, "name", where)
    endpoint = fields.string(account, "endpoint", where)
    if (name is None) == (endpoint is None):
        raise SpecError(INVALID_SPEC, f"{where}: give exactly one of account.name or account.endpoint")
    if name is not None and not _ACCOUNT_NAME.fullmatch(name):
        raise SpecError(INVALID_SPEC, f"{where}.name {name!r} must be 3-24 lower-case letters and digits")
    if endpoint is not None and not _ENDPOINT.fullmatch(endpoint):
        raise SpecError(
            INVALID_SPEC,
            f"{where}.endpoint must be an http(s) URL with no query string (no SAS), e.g. "
            "https://acct.file.core.windows.net or http://emulator:10000/devstoreaccount1",
        )
    return name, endpoint


def _secret_name(spec: Mapping[str, Any], path: str) -> str | None:
    credentials = fields.mapping(spec, "credentials", path)
    if credentials is None:
        return None
    where = fields.join(path, "credentials")
    fields.reject_unknown(credentials, ("secretName",), where)
    name = fields.required_string(credentials, "secretName", where, max_length=253)
    if not _SECRET_NAME.fullmatch(name):
        raise SpecError(
            INVALID_SPEC,
            f"{where}.secretName {name!r} is not a Secret name (lower-case letters, digits, '-' and '.')",
        )
    return name


def _share_name(spec: Mapping[str, Any], path: str) -> str:
    name = fields.required_string(spec, "shareName", path)
    if not (3 <= len(name) <= 63 and _SHARE_NAME.fullmatch(name)):
        raise SpecError(
            INVALID_SPEC,
            f"{fields.join(path, 'shareName')} {name!r} must be 3 to 63 lower-case letters, digits and single "
            "hyphens, starting and ending with a letter or digit",
        )
    return name


def _metadata(spec: Mapping[str, Any], path: str) -> dict[str, str]:
    metadata = fields.string_map(spec, "metadata", path)
    for name in metadata:
        if not METADATA_NAME.fullmatch(name):
            raise SpecError(
                INVALID_SPEC,
                f"{fields.join(path, 'metadata')}: metadata names must be C identifiers (letters, digits, _; "
                f"not starting with a digit), not {name!r}",
            )
    return metadata
