"""A CopyJob's ``options`` (the CLI's flags in camelCase) checked and mapped onto the core's
option objects, exactly as ``shareferry copy`` / ``sync`` build them from their flags.

The values go through :mod:`shareferry.core.option_values`, the same code the commands use;
its messages name CLI flags (``--include-regex``), which are rewritten to the spec's field paths
(``spec.options.includeRegex``). Beyond what the commands check, a CopyJob runs unattended (no
``prompt``), and the sync-only options need ``mode: sync``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from shareferry.api import fields
from shareferry.api.errors import SpecError
from shareferry.core.errors import UsageError
from shareferry.core.filters import ObjectFilter
from shareferry.core.option_values import (
    SyncValues,
    TransferValues,
    build_sync_options,
    build_transfer_options,
)
from shareferry.core.options import (
    CONCURRENCY_ENV,
    DEFAULT_CONCURRENCY,
    DeleteDestination,
    Overwrite,
    SyncOptions,
    TransferOptions,
    concurrency_from_env,
)

if TYPE_CHECKING:  # the job machinery (and the Azure SDKs) load only when a request is built
    from shareferry.api.copyjob import CopyJobSpec
    from shareferry.core.jobs import CopyRequest, SyncRequest

INVALID_OPTIONS = "InvalidOptions"
Mode = Literal["copy", "sync"]

#: The CRD's defaults inside ``options`` (applied here too: the API server applies them only
#: when ``options`` is present at all).
OPTION_DEFAULTS: dict[str, Any] = {"recursive": True}

#: Each option and the CLI flag the core's messages call it by.
FLAG_OF_OPTION: dict[str, str] = {
    "recursive": "--recursive",
    "includePattern": "--include-pattern",
    "excludePattern": "--exclude-pattern",
    "includePath": "--include-path",
    "excludePath": "--exclude-path",
    "includeRegex": "--include-regex",
    "excludeRegex": "--exclude-regex",
    "includeAfter": "--include-after",
    "includeBefore": "--include-before",
    "overwrite": "--overwrite",
    "deleteDestination": "--delete-destination",
    "maxDeletePercent": "--max-delete-percent",
    "compareHash": "--compare-hash",
    "mirrorMode": "--mirror-mode",
    "putMd5": "--put-md5",
    "checkMd5": "--check-md5",
    "preserveSmbInfo": "--preserve-smb-info",
    "preserveSmbPermissions": "--preserve-permissions",
    "blockSizeMb": "--block-size-mb",
    "capMbps": "--cap-mbps",
    "dryRun": "--dry-run",
    "checkLength": "--check-length",
    "followSymlinks": "--follow-symlinks",
    "metadata": "--metadata",
    "concurrency": CONCURRENCY_ENV,
    "includeAttributes": "--include-attributes",
    "excludeAttributes": "--exclude-attributes",
    "s2sPreserveAccessTier": "--s2s-preserve-access-tier",
    "trustedMicrosoftSuffixes": "--trusted-microsoft-suffixes",
}
SYNC_ONLY = ("deleteDestination", "maxDeletePercent", "compareHash", "mirrorMode")
_OPTION_OF_FLAG = {flag: option for option, flag in FLAG_OF_OPTION.items()} | {
    "--preserve-smb-permissions": "preserveSmbPermissions"
}
_FLAG_OR_QUOTED = re.compile(r"'[^']*'|--[a-z][a-z0-9-]*")


def check_options(options: Mapping[str, Any] | None, *, mode: Mode, path: str = "spec") -> dict[str, Any]:
    """``options`` with the CRD's defaults, after every check :func:`build_request` would make
    (types, values, dates, regexes, metadata names, what the mode allows). :class:`SpecError`
    with reason ``InvalidOptions`` naming ``<path>.options.<field>`` otherwise."""
    where = fields.join(path, "options")
    given = fields.plain(options or {})
    fields.reject_unknown(given, FLAG_OF_OPTION, where, reason=INVALID_OPTIONS)
    checked = {**OPTION_DEFAULTS, **given}
    transfer, sync = _build(checked, mode=mode, where=where, shard_index=0, shard_count=1, environ=None)
    _check_mode(checked, mode=mode, where=where)
    _check_unattended(transfer, sync, where=where)
    return checked


def transfer_options(
    options: Mapping[str, Any],
    *,
    mode: Mode,
    shard_index: int = 0,
    shard_count: int = 1,
    environ: Mapping[str, str] | None = None,
    path: str = "spec",
) -> tuple[TransferOptions, SyncOptions | None]:
    """The core's options for checked ``options`` (see :func:`check_options`): the transfer
    options of shard ``shard_index`` of ``shard_count``, and the sync options for mode sync.
    Without ``options.concurrency``, ``SHAREFERRY_CONCURRENCY`` in ``environ`` (when given) or
    the default sets it."""
    where = fields.join(path, "options")
    return _build(
        {**OPTION_DEFAULTS, **options},
        mode=mode,
        where=where,
        shard_index=shard_index,
        shard_count=shard_count,
        environ=environ,
    )


def build_request(
    spec: CopyJobSpec,
    *,
    source: str,
    destination: str,
    shard_index: int = 0,
    shard_count: int = 1,
    environ: Mapping[str, str] | None = None,
) -> CopyRequest | SyncRequest:
    """The core request that runs shard ``shard_index`` of ``shard_count`` of the CopyJob
    ``spec`` (a :class:`~shareferry.api.copyjob.CopyJobSpec`) between ``source`` and
    ``destination``: AzCopy-style location strings (a local path or a URL, no SAS) for its two
    endpoints. ``--from-to`` comes from the endpoints' kinds; the options are mapped as the
    CLI maps its flags. :class:`SpecError` for a shard outside ``0 .. shard_count - 1``."""
    if shard_count < 1 or not 0 <= shard_index < shard_count:
        raise SpecError(
            fields.INVALID_SPEC,
            f"shard {shard_index} of {shard_count} does not exist: the index must be 0 to {shard_count - 1}",
        )
    transfer, sync = transfer_options(
        spec.options, mode=spec.mode, shard_index=shard_index, shard_count=shard_count, environ=environ
    )
    from shareferry.core.jobs import CopyRequest, SyncRequest

    from_to = spec.from_to
    if sync is not None:
        return SyncRequest(source, destination, from_to, transfer, sync)
    return CopyRequest(source, destination, from_to, transfer)


def spec_message(message: str, *, where: str) -> str:
    """A core message with the CLI's flag names replaced by the option paths under ``where``
    (quoted values are left as they are)."""

    def rename(match: re.Match[str]) -> str:
        text = match.group(0)
        option = _OPTION_OF_FLAG.get(text)
        return f"{where}.{option}" if option is not None else text

    return _FLAG_OR_QUOTED.sub(rename, message).replace(CONCURRENCY_ENV, f"{where}.concurrency")


def _check_mode(options: Mapping[str, Any], *, mode: Mode, where: str) -> None:
    if mode == "copy":
        for name in SYNC_ONLY:
            value = options.get(name)
            if value is None or (name == "deleteDestination" and value == "false"):
                continue
            raise SpecError(INVALID_OPTIONS, f"{where}.{name} needs mode: sync (this CopyJob has mode: copy)")
    elif options.get("overwrite") is not None:
        overwrite = options["overwrite"]
        if not (isinstance(overwrite, str) and overwrite.strip().lower() == "true"):
            raise SpecError(
                INVALID_OPTIONS,
                f"{where}.overwrite does not apply to mode: sync (it copies what differs; see "
                f"{where}.mirrorMode): remove it",
            )


def _check_unattended(transfer: TransferOptions, sync: SyncOptions | None, *, where: str) -> None:
    if transfer.overwrite is Overwrite.PROMPT:
        raise SpecError(
            INVALID_OPTIONS,
            f"{where}.overwrite: prompt needs a terminal and a CopyJob runs unattended: "
            "use true, false or ifSourceNewer",
        )
    if sync is not None and sync.delete_destination is DeleteDestination.PROMPT:
        raise SpecError(
            INVALID_OPTIONS,
            f'{where}.deleteDestination: prompt needs a terminal and a CopyJob runs unattended: use "true" or "false"',
        )


def _build(
    options: Mapping[str, Any],
    *,
    mode: Mode,
    where: str,
    shard_index: int,
    shard_count: int,
    environ: Mapping[str, str] | None,
) -> tuple[TransferOptions, SyncOptions | None]:
    try:
        transfer_values = _transfer_values(
            options, where=where, shard_index=shard_index, shard_count=shard_count, environ=environ
        )
        sync_values = _sync_values(options, where=where)
        transfer = build_transfer_options(transfer_values)
        ObjectFilter.build(transfer.filters)
        sync = build_sync_options(sync_values)
    except SpecError:
        raise
    except UsageError as exc:
        raise SpecError(INVALID_OPTIONS, spec_message(str(exc), where=where)) from None
    return transfer, (sync if mode == "sync" else None)


def _transfer_values(
    options: Mapping[str, Any],
    *,
    where: str,
    shard_index: int,
    shard_count: int,
    environ: Mapping[str, str] | None,
) -> TransferValues:
    reason = INVALID_OPTIONS

    def flag(name: str, default: bool) -> bool:
        value = fields.boolean(options, name, where, reason=reason)
        return default if value is None else value

    def text(name: str, default: str) -> str:
        value = fields.string(options, name, where, reason=reason)
        return default if value is None else value

    def strings(name: str) -> list[str]:
        return fields.string_list(options, name, where, reason=reason)

    concurrency = fields.integer(options, "concurrency", where, minimum=1, maximum=1000, reason=reason)
    if concurrency is None:
        concurrency = concurrency_from_env(dict(environ)) if environ is not None else DEFAULT_CONCURRENCY
    return TransferValues(
        recursive=flag("recursive", True),
        overwrite=text("overwrite", Overwrite.TRUE.value),
        put_md5=flag("putMd5", False),
        check_md5=text("checkMd5", TransferValues.check_md5),
        preserve_smb_info=flag("preserveSmbInfo", False),
        preserve_smb_permissions=flag("preserveSmbPermissions", False),
        block_size_mb=fields.number(options, "blockSizeMb", where, above=0, maximum=4000, reason=reason),
        cap_mbps=fields.number(options, "capMbps", where, above=0, reason=reason),
        concurrency=concurrency,
        dry_run=flag("dryRun", False),
        check_length=flag("checkLength", True),
        follow_symlinks=flag("followSymlinks", False),
        shard_index=shard_index,
        shard_count=shard_count,
        include_pattern=strings("includePattern"),
        exclude_pattern=strings("excludePattern"),
        include_path=strings("includePath"),
        exclude_path=strings("excludePath"),
        include_regex=strings("includeRegex"),
        exclude_regex=strings("excludeRegex"),
        include_after=fields.date_time_text(options, "includeAfter", where, reason=reason),
        include_before=fields.date_time_text(options, "includeBefore", where, reason=reason),
        metadata=fields.string_map(options, "metadata", where, reason=reason),
        include_attributes=strings("includeAttributes"),
        exclude_attributes=strings("excludeAttributes"),
        s2s_preserve_access_tier=flag("s2sPreserveAccessTier", True),
        trusted_microsoft_suffixes=strings("trustedMicrosoftSuffixes"),
    )


def _sync_values(options: Mapping[str, Any], *, where: str) -> SyncValues:
    reason = INVALID_OPTIONS
    delete = fields.string(options, "deleteDestination", where, reason=reason)
    compare = fields.string(options, "compareHash", where, reason=reason)
    return SyncValues(
        delete_destination=DeleteDestination.FALSE.value if delete is None else delete,
        compare_hash="None" if compare is None else compare,
        mirror_mode=bool(fields.boolean(options, "mirrorMode", where, reason=reason)),
        max_delete_percent=fields.number(
            options, "maxDeletePercent", where, minimum=0, maximum=100, reason=reason
        ),
    )
