"""The lean request path's own HTTP session: proxies from the environment as the SDK honours them
(``HTTP_PROXY`` / ``HTTPS_PROXY``, credentials, ``NO_PROXY``), read once per sender, and whole
answers handed back with case-insensitive headers. Real emulator, a real forward proxy."""

from __future__ import annotations

import base64
import hashlib

import pytest
from azure.storage.fileshare import ShareClient
from yarl import URL

from shareferry.core.backends.azfiles import AzureFilesBackend
from shareferry.core.backends.azfiles_wire import FilesWire, SharedKeySigner
from shareferry.core.backends.storage_wire import WireSender, environment_proxy
from shareferry.emulator import RunningEmulator
from tests.support.forward_proxy import forward_proxy

PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def files_wire(emulator: RunningEmulator, share: str) -> FilesWire:
    account = emulator.account()
    sender = WireSender(api_version="2024-08-04", signer=SharedKeySigner(account.name, account.key))
    return FilesWire(endpoint=emulator.account_url(), share=share, sender=sender)


async def test_requests_go_through_the_proxy_the_environment_names(
    emulator: RunningEmulator, share: ShareClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"through the proxy " * 100
    async with forward_proxy() as proxy:
        address = URL(proxy.url)
        monkeypatch.setenv("HTTP_PROXY", f"http://ferry:s3cret@{address.host}:{address.port}")
        wire = files_wire(emulator, share.share_name)
        try:
            await wire.create_file("via proxy.txt", len(data), _props(data), None, None)
            await wire.put_range("via proxy.txt", 0, data)
            read, headers = await wire.get_file("via proxy.txt", 0, len(data))
        finally:
            await wire.close()
    assert read == data
    assert base64.b64decode(headers["X-Ms-Content-MD5"]) == hashlib.md5(data).digest()  # any case
    assert [seen.method for seen in proxy.seen] == ["PUT", "PUT", "GET"]
    assert all(seen.url.startswith(emulator.account_url()) for seen in proxy.seen)
    expected = "Basic " + base64.b64encode(b"ferry:s3cret").decode()
    assert {seen.proxy_authorization for seen in proxy.seen} == {expected}
    monkeypatch.delenv("HTTP_PROXY")
    assert share.get_file_client("via proxy.txt").download_file().readall() == data


async def test_no_proxy_exempts_the_endpoint(
    emulator: RunningEmulator, share: ShareClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with forward_proxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setenv("no_proxy", "example.com,127.0.0.1")
        wire = files_wire(emulator, share.share_name)
        try:
            await wire.create_file("direct.txt", 3, _props(b"abc"), None, None)
            await wire.put_range("direct.txt", 0, b"abc")
        finally:
            await wire.close()
    assert proxy.seen == []
    monkeypatch.delenv("http_proxy")
    assert share.get_file_client("direct.txt").download_file().readall() == b"abc"


def test_environment_proxy_reads_scheme_credentials_and_exemptions(monkeypatch: pytest.MonkeyPatch) -> None:
    target = URL("https://acct.file.core.windows.net/share/a.txt")
    assert environment_proxy(target) is None
    monkeypatch.setenv("HTTP_PROXY", "http://plain:3128")
    assert environment_proxy(target) is None  # an https endpoint takes HTTPS_PROXY only
    monkeypatch.setenv("HTTPS_PROXY", "proxy.corp:8080")
    found = environment_proxy(target)
    assert found is not None and str(found.url) == "http://proxy.corp:8080" and found.headers is None
    monkeypatch.setenv("HTTPS_PROXY", "http://user:p%40ss@proxy.corp:8080")
    found = environment_proxy(target)
    assert found is not None and str(found.url) == "http://proxy.corp:8080"
    assert found.headers == {"Proxy-Authorization": "Basic " + base64.b64encode(b"user:p@ss").decode()}
    monkeypatch.setenv("NO_PROXY", ".core.windows.net")
    assert environment_proxy(target) is None


def _props(data: bytes):  # type: ignore[no-untyped-def]
    from shareferry.core.objects import WriteProps

    return WriteProps(content_md5=hashlib.md5(data).digest())


async def test_sdk_requests_take_the_environments_proxy_too(
    emulator: RunningEmulator, share: ShareClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What still goes through the SDK (here: creating a directory) has its own transport,
    told the same proxy once (aiohttp's per-request environment lookups are off)."""
    account = emulator.account()
    async with forward_proxy() as proxy:
        address = URL(proxy.url)
        monkeypatch.setenv("http_proxy", f"http://ferry:s3cret@{address.host}:{address.port}")
        backend = AzureFilesBackend(
            endpoint=emulator.account_url(),
            share=share.share_name,
            account_name=account.name,
            account_key=account.key,
        )
        try:
            await backend.make_dir("made through the proxy")
        finally:
            await backend.close()
    directory_requests = [seen for seen in proxy.seen if "restype=directory" in seen.url]
    assert [seen.method for seen in directory_requests] == ["PUT"]
    expected = "Basic " + base64.b64encode(b"ferry:s3cret").decode()
    assert {seen.proxy_authorization for seen in proxy.seen} == {expected}
    monkeypatch.delenv("http_proxy")
    assert share.get_directory_client("made through the proxy").exists()
