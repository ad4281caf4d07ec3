"""A CopyJob's spec parsed into typed dataclasses, with the CRD's defaults and every check the
API server makes (schema and CEL rules) plus those it cannot (dates, regexes, URL kinds)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, cast

from shareferry.api import fields
from shareferry.api.errors import SpecError
from shareferry.api.fields import INVALID_SPEC
from shareferry.api.options import INVALID_OPTIONS, Mode, build_request, check_options, spec_message
from shareferry.core.errors import UsageError
from shareferry.core.filters import check_attribute_source
from shareferry.core.locations import FromTo, LocationKind, RemoteKind, parse_location
from shareferry.core.option_values import check_block_size_towards
from shareferry.core.options import Filters

__all__ = [
    "INVALID_OPTIONS",
    "INVALID_SPEC",
    "CopyJobSpec",
    "Endpoint",
    "FileShareRef",
    "PvcEndpoint",
    "SpecError",
    "UrlEndpoint",
    "build_request",
    "endpoint_kind",
    "parse_copyjob",
    "spec_hash",
]

Side = Literal["source", "destination"]

DEFAULT_MODE: Mode = "copy"
DEFAULT_PARALLELISM = 1
MAX_PARALLELISM = 64
DEFAULT_BACKOFF_LIMIT = 3
SPEC_HASH_LENGTH = 16

_SPEC_FIELDS = (
    "mode",
    "source",
    "destination",
    "options",
    "parallelism",
    "resources",
    "nodeSelector",
    "tolerations",
    "affinity",
    "backoffLimit",
    "activeDeadlineSeconds",
    "ttlSecondsAfterFinished",
    "stateVolume",
)
_ENDPOINT_FIELDS = ("fileShare", "url", "credentials", "workloadIdentity", "kind", "pvc")
_SOURCE_URL = re.compile(r"https?://[^?#]+(\?sharesnapshot=[^&#]+)?")
_DESTINATION_URL = re.compile(r"https?://[^?#]+")


@dataclass(frozen=True)
class FileShareRef:
    """A FileShare in the CopyJob's namespace, and a directory inside its share ("": the root)."""

    name: str
    path: str = ""


@dataclass(frozen=True)
class UrlEndpoint:
    """An Azure Files or Blob URL (no SAS). ``kind`` is settled: given, or implied by the host.
    Credentials come from the Secret ``secret_name``, or from the workload identity."""

    url: str
    secret_name: str | None = None
    workload_identity: bool = False
    kind: RemoteKind = "file"


@dataclass(frozen=True)
class PvcEndpoint:
    """A PersistentVolumeClaim and a directory inside it ("": the volume's root)."""

    claim_name: str
    path: str = ""
    read_only: bool = False


Endpoint: TypeAlias = FileShareRef | UrlEndpoint | PvcEndpoint


def endpoint_kind(endpoint: Endpoint) -> LocationKind:
    """What the core sees at this endpoint: Azure Files, Blob, or a local (mounted) path."""
    if isinstance(endpoint, FileShareRef):
        return "file"
    if isinstance(endpoint, PvcEndpoint):
        return "local"
    return endpoint.kind


@dataclass(frozen=True)
class CopyJobSpec:
    """A parsed CopyJob spec, defaults applied. ``options`` keeps the spec's camelCase options
    (checked, defaults applied); :func:`~shareferry.api.options.build_request` maps them."""

    source: Endpoint
    destination: Endpoint
    mode: Mode = DEFAULT_MODE
    options: dict[str, Any] = field(default_factory=dict)
    parallelism: int = DEFAULT_PARALLELISM
    resources: dict[str, Any] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    affinity: dict[str, Any] = field(default_factory=dict)
    backoff_limit: int = DEFAULT_BACKOFF_LIMIT
    active_deadline_seconds: int | None = None
    ttl_seconds_after_finished: int | None = None
    state_claim: str | None = None
    """A PVC for the workers' job plans (``stateVolume.claimName``): a retried pod resumes its
    shard's plan instead of starting over."""

    @property
    def from_to(self) -> str:
        """AzCopy's ``--from-to`` for the two endpoints (``LocalFile``, ``FileFile``, ...)."""
        return FromTo.of(endpoint_kind(self.source), endpoint_kind(self.destination)).value

    def endpoint(self, side: Side) -> Endpoint:
        return self.source if side == "source" else self.destination

    @property
    def fileshare_names(self) -> list[str]:
        """The FileShares the spec refers to, each once, source first."""
        names = [e.name for e in (self.source, self.destination) if isinstance(e, FileShareRef)]
        return list(dict.fromkeys(names))

    @property
    def secret_names(self) -> list[str]:
        """The Secrets its URL endpoints name, each once, source first (a FileShare's own Secret
        is the FileShare's business)."""
        names = [e.secret_name for e in (self.source, self.destination) if isinstance(e, UrlEndpoint)]
        return list(dict.fromkeys(name for name in names if name))


def parse_copyjob(spec: Mapping[str, Any], *, path: str = "spec") -> CopyJobSpec:
    """``spec`` (a CopyJob's ``spec``, as the API server stores it or as written in a manifest)
    parsed and checked; ``path`` is how messages name it (``spec.jobTemplate.spec`` for a
    template). :class:`SpecError` with reason ``InvalidSpec`` or ``InvalidOptions``."""
    if not isinstance(spec, Mapping):
        raise fields.wrong_type(path, spec, "an object")
    fields.reject_unknown(spec, _SPEC_FIELDS, path)
    mode = cast(Mode, fields.choice(spec, "mode", path, ("copy", "sync")) or DEFAULT_MODE)
    source = _endpoint(spec, "source", path)
    destination = _endpoint(spec, "destination", path)
    if isinstance(source, PvcEndpoint) and isinstance(destination, PvcEndpoint):
        raise SpecError(
            INVALID_SPEC, f"{path}: a PVC to a PVC is not a transfer ShareFerry makes: one side must be Azure"
        )
    options = fields.mapping(spec, "options", path, reason=INVALID_OPTIONS)
    parsed = CopyJobSpec(
        source=source,
        destination=destination,
        mode=mode,
        options=check_options(options, mode=mode, path=path),
        parallelism=fields.integer(spec, "parallelism", path, minimum=1, maximum=MAX_PARALLELISM)
        or DEFAULT_PARALLELISM,
        resources=fields.plain(fields.mapping(spec, "resources", path) or {}),
        node_selector=fields.string_map(spec, "nodeSelector", path),
        tolerations=fields.object_list(spec, "tolerations", path),
        affinity=fields.plain(fields.mapping(spec, "affinity", path) or {}),
        backoff_limit=_backoff_limit(spec, path),
        active_deadline_seconds=fields.integer(spec, "activeDeadlineSeconds", path, minimum=1),
        ttl_seconds_after_finished=fields.integer(spec, "ttlSecondsAfterFinished", path, minimum=0),
        state_claim=_state_claim(spec, path),
    )
    if mode == "sync":
        _check_sync_endpoints(parsed, path)
    _check_block_size(parsed, path)
    _check_attribute_source(parsed, path)
    return parsed


def _check_attribute_source(spec: CopyJobSpec, path: str) -> None:
    """``includeAttributes`` / ``excludeAttributes`` need an Azure Files source, as the flags do."""
    filters = Filters(
        include_attributes=tuple(spec.options.get("includeAttributes") or ()),
        exclude_attributes=tuple(spec.options.get("excludeAttributes") or ()),
    )
    try:
        check_attribute_source(filters, source_kind=endpoint_kind(spec.source))
    except UsageError as exc:
        raise SpecError(INVALID_OPTIONS, spec_message(str(exc), where=fields.join(path, "options"))) from None


def _check_block_size(spec: CopyJobSpec, path: str) -> None:
    """``blockSizeMb`` as ``--block-size-mb`` is checked: Azure Files takes ranges of 4 MiB at
    most, so a larger block towards a share is refused rather than quietly cut."""
    mib = spec.options.get("blockSizeMb")
    if not isinstance(mib, int | float) or isinstance(mib, bool):
        return
    try:
        check_block_size_towards(mib, destination_kind=endpoint_kind(spec.destination))
    except UsageError as exc:
        raise SpecError(INVALID_OPTIONS, spec_message(str(exc), where=fields.join(path, "options"))) from None


def spec_hash(spec: Mapping[str, Any]) -> str:
    """A stable hash of ``spec`` (a prefix of the SHA-256 of its canonical JSON: keys sorted,
    no spaces), to tell whether a Job runs the spec as it is now."""
    canonical = json.dumps(
        fields.plain(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:SPEC_HASH_LENGTH]


def _backoff_limit(spec: Mapping[str, Any], path: str) -> int:
    value = fields.integer(spec, "backoffLimit", path, minimum=0, maximum=100)
    return DEFAULT_BACKOFF_LIMIT if value is None else value


def _endpoint(spec: Mapping[str, Any], side: Side, path: str) -> Endpoint:
    where = fields.join(path, side)
    given = fields.mapping(spec, side, path)
    if given is None:
        raise SpecError(INVALID_SPEC, f"{where}: Required value")
    fields.reject_unknown(given, _ENDPOINT_FIELDS, where)
    present = [key for key in ("fileShare", "url", "pvc") if given.get(key) is not None]
    if len(present) != 1:
        raise SpecError(INVALID_SPEC, f"{where}: give exactly one of fileShare, url or pvc")
    workload_identity = bool(fields.boolean(given, "workloadIdentity", where))
    credentials = fields.mapping(given, "credentials", where)
    secret_name: str | None = None
    if credentials is not None:
        fields.reject_unknown(credentials, ("secretName",), fields.join(where, "credentials"))
        secret_name = fields.required_string(
            credentials, "secretName", fields.join(where, "credentials"), max_length=253
        )
    kind = cast(RemoteKind | None, fields.choice(given, "kind", where, ("file", "blob")))
    if present == ["url"]:
        return _url_endpoint(given, side, where, secret_name, workload_identity, kind)
    for extra in ("credentials", "workloadIdentity", "kind"):
        if given.get(extra) not in (None, False):
            raise SpecError(
                INVALID_SPEC,
                f"{where}.{extra} applies to a url only"
                + (": a FileShare brings its own credentials" if present == ["fileShare"] else ""),
            )
    if present == ["fileShare"]:
        share = fields.mapping(given, "fileShare", where)
        assert share is not None
        at = fields.join(where, "fileShare")
        fields.reject_unknown(share, ("name", "path"), at)
        return FileShareRef(
            name=fields.required_string(share, "name", at, max_length=253),
            path=_inner_path(share, at),
        )
    pvc = fields.mapping(given, "pvc", where)
    assert pvc is not None
    at = fields.join(where, "pvc")
    fields.reject_unknown(pvc, ("claimName", "path", "readOnly"), at)
    return PvcEndpoint(
        claim_name=fields.required_string(pvc, "claimName", at, max_length=253),
        path=_inner_path(pvc, at),
        read_only=bool(fields.boolean(pvc, "readOnly", at)),
    )


def _url_endpoint(
    given: Mapping[str, Any],
    side: Side,
    where: str,
    secret_name: str | None,
    workload_identity: bool,
    kind: RemoteKind | None,
) -> UrlEndpoint:
    url = fields.required_string(given, "url", where)
    if "sig=" in url:
        raise SpecError(
            INVALID_SPEC,
            f"{where}: a URL must not carry a SAS: put the SAS token in the credentials Secret "
            "(AZURE_STORAGE_SAS_TOKEN)",
        )
    pattern = _SOURCE_URL if side == "source" else _DESTINATION_URL
    if not pattern.fullmatch(url):
        allowed = "no query but ?sharesnapshot=" if side == "source" else "no query"
        raise SpecError(INVALID_SPEC, f"{where}.url must be an http(s) URL with {allowed}, not {url!r}")
    if secret_name is None and not workload_identity:
        raise SpecError(
            INVALID_SPEC, f"{where}: a URL needs credentials (a Secret) or workloadIdentity: true"
        )
    return UrlEndpoint(
        url=url,
        secret_name=secret_name,
        workload_identity=workload_identity,
        kind=_url_kind(url, kind, where),
    )


def _url_kind(url: str, kind: RemoteKind | None, where: str) -> RemoteKind:
    """The kind given (checked against the host), or the one the host implies."""
    if kind is not None:
        try:
            parse_location(url, kind_hint=kind)
        except UsageError as exc:
            raise SpecError(INVALID_SPEC, f"{where}.url: {exc}") from None
        return kind
    fits: list[RemoteKind] = []
    problems: list[str] = []
    for candidate in ("file", "blob"):
        try:
            parse_location(url, kind_hint=candidate)
        except UsageError as exc:
            problems.append(str(exc))
        else:
            fits.append(candidate)
    if len(fits) == 2:
        raise SpecError(
            INVALID_SPEC,
            f"{where}.url {url} does not say whether it is Azure Files or Blob (its host is not "
            f"*.file.core.windows.net or *.blob.core.windows.net): add {where}.kind: file or blob",
        )
    if not fits:
        raise SpecError(INVALID_SPEC, f"{where}.url: {problems[0]}")
    return fits[0]


def _inner_path(spec: Mapping[str, Any], where: str) -> str:
    """A relative path inside a share or volume: '/'-separated, no '..'."""
    text = fields.string(spec, "path", where) or ""
    segments = [segment for segment in text.replace("\\", "/").split("/") if segment not in ("", ".")]
    if ".." in segments:
        raise SpecError(INVALID_SPEC, f"{where}.path {text!r} must stay inside: '..' is not allowed")
    return "/".join(segments)


def _check_sync_endpoints(spec: CopyJobSpec, path: str) -> None:
    """What ``sync`` refuses before it starts: an account-level URL, wildcards."""
    for side in ("source", "destination"):
        endpoint = spec.endpoint(side)
        where = fields.join(path, side)
        if isinstance(endpoint, UrlEndpoint):
            location = parse_location(endpoint.url, kind_hint=endpoint.kind)
            if location.container is None:
                raise SpecError(
                    INVALID_SPEC,
                    f"{where}.url names a whole account: mode: sync needs a share or container in the URL",
                )
            shown = location.path
        else:
            shown = endpoint.path
        if "*" in shown:
            raise SpecError(
                INVALID_SPEC,
                f"{where}: mode: sync takes no wildcards: name the directory and choose files with "
                f"{path}.options.includePattern / excludePattern",
            )


def _state_claim(spec: Mapping[str, Any], path: str) -> str | None:
    """``stateVolume.claimName``, or None when the plans may live and die with each pod."""
    volume = fields.mapping(spec, "stateVolume", path)
    if volume is None:
        return None
    at = f"{path}.stateVolume"
    fields.reject_unknown(volume, ("claimName",), at)
    return fields.required_string(volume, "claimName", at, max_length=253)
