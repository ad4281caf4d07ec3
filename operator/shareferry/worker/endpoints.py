"""Where each side of a CopyJob is, for the core: a location string, and that side's environment.

* A FileShare: its share's URL (:func:`shareferry.api.fileshare.share_url`) and ``/<path>``.
* A URL: as given (``kind`` or its host says Files or Blob).
* A PVC: ``<volume root>/<source|destination>/<path>``, where the worker pod mounts the claim
  (``SHAREFERRY_VOLUME_ROOT``, default ``/mnt/shareferry``); ``shareferry run`` maps a claim to a
  local directory instead (``volumes``).

A copy whose source is a directory (a FileShare's directory, a volume's directory) copies what is
IN it, as a sync does: ``<location>/*``, so neither the mount point nor the directory's own name
appears at the destination. A URL source keeps AzCopy's meaning (a directory URL brings the
directory along; end it with ``/*`` for its contents).

Credentials are never part of a location: each side's are the variables under its prefix
(``SHAREFERRY_SOURCE_`` / ``SHAREFERRY_DESTINATION_``, the prefix removed), as the operator
injects them from the side's Secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from shareferry.api.copyjob import CopyJobSpec, Endpoint, FileShareRef, PvcEndpoint, UrlEndpoint
from shareferry.api.errors import SpecError
from shareferry.api.fileshare import parse_fileshare, share_url
from shareferry.api.names import (
    DEFAULT_VOLUME_ROOT,
    DESTINATION_ENV_PREFIX,
    ENV_VOLUME_ROOT,
    SOURCE_ENV_PREFIX,
)
from shareferry.core.credentials import SideEnvirons

Side = Literal["source", "destination"]
FILESHARE_NOT_FOUND = "FileShareNotFound"
VOLUME_NOT_FOUND = "VolumeNotFound"


@dataclass(frozen=True)
class Endpoints:
    """Both sides' location strings (no credential in either) and ``--from-to``."""

    source: str
    destination: str
    from_to: str


def side_environs(environ: Mapping[str, str]) -> SideEnvirons:
    """Each side's credentials: ``environ``'s variables under that side's prefix, prefix removed;
    ``environ`` itself holds the settings (job directory, buffers)."""
    return SideEnvirons.from_prefixes(
        environ, source_prefix=SOURCE_ENV_PREFIX, destination_prefix=DESTINATION_ENV_PREFIX
    )


def volume_root(environ: Mapping[str, str]) -> str:
    return environ.get(ENV_VOLUME_ROOT) or DEFAULT_VOLUME_ROOT


def fileshare_url(fileshare: Mapping[str, Any], *, name: str) -> str:
    """The share URL of the FileShare object (or its ``spec``) ``name``."""
    spec = fileshare.get("spec", fileshare)
    return share_url(parse_fileshare(spec, path=f"FileShare {name}: spec"))


def endpoint_location(
    endpoint: Endpoint,
    *,
    side: Side,
    fileshares: Mapping[str, Mapping[str, Any]],
    root: str,
    volumes: Mapping[str, str] | None = None,
) -> str:
    """The location string of one side (see the module docstring). ``fileshares`` maps names to
    FileShare objects; ``volumes`` maps claim names to local directories (``shareferry run``),
    ``None`` meaning the worker pod's mounts under ``root``. :class:`SpecError` (reason
    ``FileShareNotFound`` / ``VolumeNotFound``) when a FileShare or volume is not known."""
    if isinstance(endpoint, FileShareRef):
        fileshare = fileshares.get(endpoint.name)
        if fileshare is None:
            raise SpecError(
                FILESHARE_NOT_FOUND,
                f"spec.{side}.fileShare: FileShare {endpoint.name!r} not found in the CopyJob's namespace",
            )
        url = fileshare_url(fileshare, name=endpoint.name)
        return f"{url}/{quote(endpoint.path, safe='/')}" if endpoint.path else url
    if isinstance(endpoint, UrlEndpoint):
        return endpoint.url
    base = _volume_dir(endpoint, side=side, root=root, volumes=volumes)
    return str(Path(base).joinpath(*endpoint.path.split("/"))) if endpoint.path else base


def _volume_dir(endpoint: PvcEndpoint, *, side: Side, root: str, volumes: Mapping[str, str] | None) -> str:
    if volumes is None:
        return str(Path(root) / side)
    directory = volumes.get(endpoint.claim_name)
    if directory is None:
        raise SpecError(
            VOLUME_NOT_FOUND,
            f"spec.{side}.pvc: no local directory for the claim {endpoint.claim_name!r}: "
            f"give --pvc {endpoint.claim_name}=DIR",
        )
    return directory


def contents_of(location: str, endpoint: Endpoint) -> str:
    """A copy source that is a directory stands for its contents (see the module docstring)."""
    if isinstance(endpoint, FileShareRef):
        return f"{location.rstrip('/')}/*"
    if isinstance(endpoint, PvcEndpoint) and Path(location).is_dir():
        return str(Path(location) / "*")
    return location


def resolve_endpoints(
    spec: CopyJobSpec,
    *,
    fileshares: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    volumes: Mapping[str, str] | None = None,
) -> Endpoints:
    """Both sides of ``spec`` as the core takes them."""
    root = volume_root(environ)
    source = endpoint_location(spec.source, side="source", fileshares=fileshares, root=root, volumes=volumes)
    destination = endpoint_location(
        spec.destination, side="destination", fileshares=fileshares, root=root, volumes=volumes
    )
    if spec.mode == "copy":
        source = contents_of(source, spec.source)
    return Endpoints(source=source, destination=destination, from_to=spec.from_to)
