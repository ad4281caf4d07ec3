"""From a parsed :class:`Location` (and the environment's credentials) to an open backend.

Decides each backend's root and the path inside it that the planner starts from: a local source
is rooted at the deepest directory above its first wildcard (so names can never climb above what
the user named), a local destination at the directory the files land in (the local backend
refuses to write outside it), a remote one at its share or container.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shareferry.core.backends.base import Backend
from shareferry.core.credentials import Credential, Environ, resolve_credential, side_environ
from shareferry.core.errors import UsageError
from shareferry.core.locations import Location
from shareferry.core.options import TransferOptions

_WILDCARDS = {"*"}  # the planner treats only * as a wildcard; ? and [ are literal name characters


@dataclass(frozen=True)
class OpenedLocation:
    """A backend plus where in it the job starts."""

    backend: Backend
    path: str
    is_dir_hint: bool = False


def _remote(location: Location, credential: Credential) -> Backend:
    common: dict[str, object] = {
        "endpoint": location.endpoint,
        "root": "",
        "snapshot": location.snapshot,
        "sas": credential.sas,
        "account_name": credential.account_name,
        "account_key": credential.account_key,
        "token_credential": credential.token_credential,
    }
    if location.container is None:
        raise UsageError(f"{location.describe()} names an account: add a share or container to the URL")
    if location.kind == "file":
        from shareferry.core.backends.azfiles import AzureFilesBackend

        return AzureFilesBackend(share=location.container, **common)  # type: ignore[arg-type]
    from shareferry.core.backends.azblob import AzureBlobBackend

    return AzureBlobBackend(container=location.container, **common)  # type: ignore[arg-type]


def _absolute(text: str) -> Path:
    """``~`` expanded and ``..`` folded lexically (not through symlinks), as a shell user means it."""
    return Path(os.path.abspath(os.path.expanduser(text)))  # noqa: PTH100, PTH111


def _split_local_source(text: str) -> tuple[Path, str]:
    absolute = _absolute(text)
    parts = absolute.parts
    first_wild = next((i for i, part in enumerate(parts) if _WILDCARDS & set(part)), None)
    if first_wild is None:
        if len(parts) == 1:
            return absolute, ""
        return absolute.parent, absolute.name
    root = Path(*parts[:first_wild])
    return root, "/".join(parts[first_wild:])


async def open_source(
    location: Location, *, environ: Environ | None, options: TransferOptions
) -> OpenedLocation:
    """The source backend; its credential comes from ``environ``'s source side."""
    if location.kind == "local":
        from shareferry.core.backends.local import LocalBackend

        assert location.local_path is not None
        root, path = _split_local_source(location.local_path)
        return OpenedLocation(LocalBackend(root, follow_symlinks=options.follow_symlinks), path)
    credential = resolve_credential(
        location, environ=side_environ(environ, "source"), trusted_suffixes=options.trusted_suffixes
    )
    return OpenedLocation(_remote(location, credential), location.path)


async def open_destination(
    location: Location, *, environ: Environ | None, options: TransferOptions
) -> OpenedLocation:
    """The destination backend; its credential comes from ``environ``'s destination side."""
    if location.kind == "local":
        from shareferry.core.backends.local import LocalBackend

        assert location.local_path is not None
        target = _absolute(location.local_path)
        if target.is_dir() or location.local_path.endswith(("/", os.sep)):
            if not options.dry_run:
                target.mkdir(parents=True, exist_ok=True)
            return OpenedLocation(LocalBackend(target), "", is_dir_hint=True)
        if not options.dry_run:
            target.parent.mkdir(parents=True, exist_ok=True)
        return OpenedLocation(LocalBackend(target.parent), target.name)
    credential = resolve_credential(
        location, environ=side_environ(environ, "destination"), trusted_suffixes=options.trusted_suffixes
    )
    hint = location.trailing_slash or location.path == ""
    return OpenedLocation(_remote(location, credential), location.path.rstrip("/"), is_dir_hint=hint)
