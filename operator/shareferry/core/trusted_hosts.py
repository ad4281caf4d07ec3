"""Which hosts may receive a Microsoft Entra ID token: AzCopy's ``--trusted-microsoft-suffixes``.

A bearer token is good for every storage account the signed-in identity can reach, so it is only
ever sent to Microsoft's storage domains (:data:`DEFAULT_TRUSTED_SUFFIXES`, AzCopy's list) and
to the suffixes the user adds with ``--trusted-microsoft-suffixes`` (``;``-separated).

Matching: a host is trusted when it equals a suffix or is a subdomain of one (``acct.blob.
core.windows.net`` is under ``core.windows.net``; ``evilcore.windows.net`` is not). A leading
``*.`` (or ``.``) of a suffix is optional, letter case is ignored and so is the port of the URL.
An IP address is trusted only when listed exactly (``0.0.1`` does not cover ``127.0.0.1``).
AzCopy compares a raw string suffix; whole labels are stricter and never trust more.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from shareferry.core.errors import CredentialError, UsageError
from shareferry.core.printable import printable

FLAG = "--trusted-microsoft-suffixes"
#: AzCopy's default list (``azcopy copy --help``).
DEFAULT_TRUSTED_SUFFIXES: tuple[str, ...] = (
    "core.windows.net",
    "core.chinacloudapi.cn",
    "core.cloudapi.de",
    "core.usgovcloudapi.net",
    "storage.azure.net",
)
_SUFFIX = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


def parse_trusted_suffixes(values: Iterable[str]) -> tuple[str, ...]:
    """The suffixes ``values`` name (each a ``;``-separated list), lower-case, without ``*.``.
    :class:`UsageError` for an entry that is not a bare host or domain (a scheme, port, path or
    a wildcard elsewhere than in front)."""
    found: list[str] = []
    for value in values:
        for entry in value.split(";"):
            text = entry.strip()
            if not text:
                continue
            suffix = text.lower().removeprefix("*.").removeprefix(".")
            if not _SUFFIX.fullmatch(suffix):
                raise UsageError(
                    f"{FLAG} entry {text!r} is not a domain suffix: give host names or domains "
                    "like *.example.net or 127.0.0.1 (no scheme, port or path)"
                )
            found.append(suffix)
    return tuple(found)


def host_is_trusted(host: str, extra: Sequence[str] = ()) -> bool:
    """Whether ``host`` (no port) equals or lies below a default or an ``extra`` suffix."""
    name = host.lower().rstrip(".")
    suffixes = (*DEFAULT_TRUSTED_SUFFIXES, *extra)
    if _is_ip(name):
        return name in suffixes
    return any(name == suffix or name.endswith("." + suffix) for suffix in suffixes)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_token_host(host: str, extra: Sequence[str] = ()) -> None:
    """:class:`CredentialError` unless a token may be sent to ``host`` (nothing is sent here)."""
    if host_is_trusted(host, extra):
        return
    shown = printable(host)
    raise CredentialError(
        f"refusing to send a Microsoft Entra ID token to {shown}: it is not under a trusted Microsoft "
        f"domain; if {shown} is an Azure Storage endpoint, add it with {FLAG} {shown}, otherwise give a "
        "SAS or an account key"
    )
