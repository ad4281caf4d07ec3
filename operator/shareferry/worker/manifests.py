"""A CopyJob given as manifests (``shareferry run -f``): the objects, and the environment the
operator would give its worker pods.

The documents are one CopyJob, the FileShares it refers to and, optionally, the Secrets holding
each side's credentials. A side's Secret (its URL's ``credentials.secretName``, or its
FileShare's) becomes that side's variables exactly as the operator injects them: each key of
``CREDENTIAL_KEYS`` it has (``stringData`` as is, ``data`` base64-decoded) under the side's
prefix. A side whose Secret is not among the documents (or that has none) takes its credentials
from the process environment, as ``shareferry copy`` would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shareferry.api.copyjob import FileShareRef, UrlEndpoint, parse_copyjob
from shareferry.api.errors import SpecError
from shareferry.api.names import (
    API_VERSION,
    COPYJOB_KIND,
    CREDENTIAL_KEYS,
    DESTINATION_ENV_PREFIX,
    FILESHARE_KIND,
    SOURCE_ENV_PREFIX,
)
from shareferry.api.secrets import secret_credentials
from shareferry.core.errors import UsageError

DEFAULT_NAMESPACE = "default"
#: Credential variables taken from the process environment for a side without a Secret
#: document (AzCopy's names included, as the CLI reads them).
PROCESS_CREDENTIAL_KEYS = (*CREDENTIAL_KEYS, "ACCOUNT_NAME", "ACCOUNT_KEY")
_SIDES: tuple[tuple[Literal["source", "destination"], str], ...] = (
    ("source", SOURCE_ENV_PREFIX),
    ("destination", DESTINATION_ENV_PREFIX),
)


@dataclass
class Manifests:
    """The objects of a local run, by name (FileShares and Secrets of the CopyJob's namespace)."""

    copyjob: dict[str, Any]
    fileshares: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return str((self.copyjob.get("metadata") or {}).get("namespace") or DEFAULT_NAMESPACE)


def _name(document: Mapping[str, Any], where: str) -> str:
    meta = document.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if not isinstance(name, str) or not name:
        raise UsageError(f"{where}: metadata.name is missing")
    return name


def collect(documents: Iterable[tuple[str, Any]]) -> Manifests:
    """The objects among ``documents`` (``(where it came from, parsed document)`` pairs; empty
    documents are skipped). :class:`UsageError` for anything but exactly one CopyJob plus
    FileShares and Secrets."""
    copyjobs: list[dict[str, Any]] = []
    fileshares: list[tuple[str, dict[str, Any]]] = []
    secrets: list[tuple[str, dict[str, Any]]] = []
    for where, document in documents:
        if document is None:
            continue
        if not isinstance(document, Mapping):
            raise UsageError(f"{where}: a manifest must be a mapping (apiVersion, kind, metadata, ...)")
        kind, api_version = document.get("kind"), document.get("apiVersion")
        if (api_version, kind) == (API_VERSION, COPYJOB_KIND):
            copyjobs.append(dict(document))
        elif (api_version, kind) == (API_VERSION, FILESHARE_KIND):
            fileshares.append((where, dict(document)))
        elif (api_version, kind) == ("v1", "Secret"):
            secrets.append((where, dict(document)))
        else:
            raise UsageError(
                f"{where}: {api_version}/{kind} is not something shareferry run takes: "
                f"give one {COPYJOB_KIND}, the {FILESHARE_KIND}s it uses and, optionally, their Secrets"
            )
    if len(copyjobs) != 1:
        found = "no CopyJob" if not copyjobs else f"{len(copyjobs)} CopyJobs"
        raise UsageError(f"the manifests hold {found}: shareferry run runs exactly one")
    copyjob = copyjobs[0]
    _name(copyjob, "the CopyJob")
    meta = copyjob["metadata"] = dict(copyjob["metadata"])
    meta.setdefault("namespace", DEFAULT_NAMESPACE)  # where kubectl would create it
    manifests = Manifests(copyjob=copyjob)
    for where, document in fileshares:
        if _visible(document, manifests.namespace):
            manifests.fileshares[_name(document, where)] = document
    for where, document in secrets:
        if _visible(document, manifests.namespace):
            manifests.secrets[_name(document, where)] = document
    return manifests


def _visible(document: Mapping[str, Any], namespace: str) -> bool:
    """In the CopyJob's namespace (a document naming none is taken to be)."""
    meta = document.get("metadata") or {}
    return str(meta.get("namespace") or namespace) == namespace


def secret_values(secret: Mapping[str, Any], *, name: str) -> dict[str, str]:
    """The credential keys of a Secret document: ``data`` decoded, ``stringData`` over it (as the
    API server merges them)."""
    found = secret_credentials(secret)
    if found.undecodable:
        raise UsageError(f"Secret {name}: data.{found.undecodable[0]} is not base64 of UTF-8 text")
    return found.values


def side_secret_name(endpoint: object, fileshares: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The Secret the operator would inject for one side (None: none)."""
    if isinstance(endpoint, UrlEndpoint):
        return endpoint.secret_name
    if isinstance(endpoint, FileShareRef):
        fileshare = fileshares.get(endpoint.name) or {}
        credentials = (fileshare.get("spec") or {}).get("credentials") or {}
        name = credentials.get("secretName")
        return str(name) if name else None
    return None


def worker_environ(manifests: Manifests, process_environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a worker pod of this CopyJob would have, for a run in this process:
    ``process_environ`` (its settings; any side-prefixed variables dropped) plus each side's
    credentials under its prefix (see the module docstring)."""
    try:
        spec = parse_copyjob(manifests.copyjob.get("spec") or {})
    except SpecError:
        spec = None  # the run reports it
    environ = {
        key: value
        for key, value in process_environ.items()
        if not key.startswith((SOURCE_ENV_PREFIX, DESTINATION_ENV_PREFIX))
    }
    for side, prefix in _SIDES:
        endpoint = spec.endpoint(side) if spec is not None else None
        secret = side_secret_name(endpoint, manifests.fileshares)
        if secret is not None and secret in manifests.secrets:
            values = secret_values(manifests.secrets[secret], name=secret)
        else:
            values = {
                key: process_environ[key] for key in PROCESS_CREDENTIAL_KEYS if process_environ.get(key)
            }
            values.update(
                {
                    key[len(prefix) :]: value
                    for key, value in process_environ.items()
                    if key.startswith(prefix)
                }
            )
        environ.update({prefix + key: value for key, value in values.items()})
    return environ
