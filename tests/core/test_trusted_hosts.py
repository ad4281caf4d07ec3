"""Which hosts an Entra ID token may be sent to (``--trusted-microsoft-suffixes``): Microsoft's
storage domains and their subdomains, plus the listed suffixes; whole labels only, any case, no
port; an IP address only when listed exactly. A token for any other host is refused while the
credential is resolved, before a token is asked for."""

from __future__ import annotations

import pytest

from shareferry.core.credentials import resolve_credential
from shareferry.core.errors import CredentialError, UsageError
from shareferry.core.locations import parse_location
from shareferry.core.trusted_hosts import host_is_trusted, parse_trusted_suffixes

TRUSTED = {
    "a blob account": ("acct.blob.core.windows.net", ()),
    "China": ("acct.file.core.chinacloudapi.cn", ()),
    "US government": ("acct.blob.core.usgovcloudapi.net", ()),
    "a DNS-zone endpoint": ("acct.z12.blob.storage.azure.net", ()),
    "upper case": ("ACCT.Blob.Core.Windows.Net", ()),
    "a listed domain": ("store.contoso.example", ("contoso.example",)),
    "the listed domain itself": ("contoso.example", ("contoso.example",)),
    "an exact IP": ("127.0.0.1", ("127.0.0.1",)),
}
UNTRUSTED = {
    "a look-alike": ("evilcore.windows.net", ()),
    "a Microsoft name inside another domain": ("core.windows.net.evil.example", ()),
    "loopback by default": ("127.0.0.1", ()),
    "part of an IP": ("127.0.0.1", ("0.0.1",)),
    "another listed domain": ("store.contoso.example", ("example.net",)),
}


@pytest.mark.parametrize("case", TRUSTED)
def test_trusted_hosts(case: str) -> None:
    host, extra = TRUSTED[case]
    assert host_is_trusted(host, parse_trusted_suffixes(extra))


@pytest.mark.parametrize("case", UNTRUSTED)
def test_untrusted_hosts(case: str) -> None:
    host, extra = UNTRUSTED[case]
    assert not host_is_trusted(host, parse_trusted_suffixes(extra))


def test_suffixes_are_read_as_azcopy_writes_them() -> None:
    assert parse_trusted_suffixes(["*.Contoso.example; .fabrikam.example;;", "127.0.0.1"]) == (
        "contoso.example",
        "fabrikam.example",
        "127.0.0.1",
    )


@pytest.mark.parametrize(
    "entry", ["https://a.example", "a.example:443", "a.example/path", "*", "a.*.example"]
)
def test_an_entry_that_is_not_a_suffix_is_refused(entry: str) -> None:
    with pytest.raises(UsageError, match=r"--trusted-microsoft-suffixes entry .* is not a domain suffix"):
        parse_trusted_suffixes([entry])


def test_the_token_credential_is_refused_for_an_untrusted_host_and_given_for_a_listed_one() -> None:
    location = parse_location("https://storage.contoso.example:8443/acct/share/x", kind_hint="file")
    with pytest.raises(
        CredentialError, match=r"^refusing to send a Microsoft Entra ID token to storage\.contoso\.example:"
    ):
        resolve_credential(location, environ={})
    credential = resolve_credential(location, environ={}, trusted_suffixes=("contoso.example",))
    assert credential.kind == "token"


def test_a_key_or_a_sas_is_not_affected() -> None:
    location = parse_location("https://storage.contoso.example/acct/share/x", kind_hint="file")
    environ = {"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": "a2V5"}
    assert resolve_credential(location, environ=environ).kind == "shared_key"
    assert resolve_credential(location, environ={"AZURE_STORAGE_SAS_TOKEN": "sv=1&sig=x"}).kind == "sas"
