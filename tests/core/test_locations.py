"""Parsing AzCopy-style arguments into locations: URL styles, decoding, --from-to, error messages.

Every message and every describe() is also checked to never carry the SAS signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shareferry.core.errors import UsageError
from shareferry.core.locations import FromTo, Location, LocationKind, parse_location, resolve

SIG = "SeCrEtSiGnAtUrE%2Bab%3D"
SAS = f"sv=2022-11-02&sp=rl&se=2030-01-01T00%3A00%3A00Z&sig={SIG}"
SECRET_PARTS = ("SeCrEtSiGnAtUrE", "SeCrEt")
SNAP = "2024-05-01T10:20:30.1234567Z"
EMU = "http://127.0.0.1:10000/devstoreaccount1"


def assert_no_secret(text: str) -> None:
    for part in SECRET_PARTS:
        assert part not in text


@dataclass(frozen=True)
class Case:
    text: str
    hint: LocationKind | None
    expected: dict[str, Any]


PARSE_CASES = {
    "files public endpoint": Case(
        "https://acct.file.core.windows.net/share/dir/file.txt",
        None,
        {
            "kind": "file",
            "endpoint": "https://acct.file.core.windows.net",
            "account": "acct",
            "container": "share",
            "path": "dir/file.txt",
            "trailing_slash": False,
            "snapshot": None,
            "sas": None,
        },
    ),
    "blob public endpoint with SAS": Case(
        f"https://acct.blob.core.windows.net/cont/a/b.bin?{SAS}",
        None,
        {"kind": "blob", "account": "acct", "container": "cont", "path": "a/b.bin", "sas": SAS},
    ),
    "host is case-insensitive": Case(
        "HTTPS://Acct.FILE.Core.Windows.Net/share",
        None,
        {"kind": "file", "endpoint": "https://acct.file.core.windows.net", "account": "acct"},
    ),
    "China cloud": Case(
        "https://acct.file.core.chinacloudapi.cn/share",
        None,
        {
            "kind": "file",
            "endpoint": "https://acct.file.core.chinacloudapi.cn",
            "container": "share",
            "path": "",
        },
    ),
    "US Government cloud": Case(
        "https://acct.blob.core.usgovcloudapi.net/cont/x",
        None,
        {"kind": "blob", "account": "acct", "container": "cont", "path": "x"},
    ),
    "Azure DNS zone endpoint": Case(
        "https://acct.z12.file.storage.azure.net/share/x",
        None,
        {"kind": "file", "endpoint": "https://acct.z12.file.storage.azure.net", "account": "acct"},
    ),
    "read-access secondary": Case(
        "https://acct-secondary.blob.core.windows.net/cont",
        None,
        {"kind": "blob", "endpoint": "https://acct-secondary.blob.core.windows.net", "account": "acct"},
    ),
    "account level": Case(
        "https://acct.blob.core.windows.net",
        None,
        {"kind": "blob", "container": None, "path": "", "trailing_slash": False},
    ),
    "account level with slash": Case(
        f"https://acct.file.core.windows.net/?{SAS}",
        None,
        {"kind": "file", "container": None, "path": "", "sas": SAS},
    ),
    "share root with trailing slash": Case(
        "https://acct.file.core.windows.net/share/",
        None,
        {"container": "share", "path": "", "trailing_slash": True},
    ),
    "directory with trailing slash": Case(
        "https://acct.file.core.windows.net/share/dir/sub/",
        None,
        {"path": "dir/sub", "trailing_slash": True},
    ),
    "contents of a directory": Case(
        "https://acct.file.core.windows.net/share/dir/*",
        None,
        {"path": "dir/*", "trailing_slash": False},
    ),
    "wildcard in a name": Case(
        "https://acct.blob.core.windows.net/cont/logs/2024-*.txt",
        None,
        {"path": "logs/2024-*.txt"},
    ),
    "special blob containers": Case(
        "https://acct.blob.core.windows.net/$web/index.html", None, {"container": "$web"}
    ),
    "encoded #, %, + and space": Case(
        "https://acct.file.core.windows.net/share/a%23b/c%25d/e+f/g%20h",
        None,
        {"path": "a#b/c%d/e+f/g h"},
    ),
    "decoded once only": Case("https://acct.file.core.windows.net/share/%2541", None, {"path": "%41"}),
    "unicode, encoded and raw": Case(
        "https://acct.file.core.windows.net/share/%C3%A9t%C3%A9/日本 語.txt",
        None,
        {"path": "été/日本 語.txt"},
    ),
    "Files share snapshot": Case(
        f"https://acct.file.core.windows.net/share/dir?sharesnapshot={SNAP}&{SAS}",
        None,
        {"snapshot": SNAP, "sas": SAS, "path": "dir"},
    ),
    "Files share snapshot encoded, no SAS": Case(
        "https://acct.file.core.windows.net/share?sharesnapshot=2024-05-01T10%3A20%3A30.1234567Z",
        None,
        {"snapshot": SNAP, "sas": None},
    ),
    "Blob snapshot": Case(
        f"https://acct.blob.core.windows.net/cont/a.bin?{SAS}&snapshot={SNAP}",
        None,
        {"snapshot": SNAP, "sas": SAS},
    ),
    "emulator path-style, Files": Case(
        f"{EMU}/share1/dir/f.txt",
        "file",
        {
            "kind": "file",
            "endpoint": EMU,
            "account": "devstoreaccount1",
            "container": "share1",
            "path": "dir/f.txt",
        },
    ),
    "Azurite path-style, Blob, localhost": Case(
        "http://localhost:10000/devstoreaccount1/cont/",
        "blob",
        {
            "kind": "blob",
            "endpoint": "http://localhost:10000/devstoreaccount1",
            "container": "cont",
            "trailing_slash": True,
        },
    ),
    "path-style account level": Case(
        f"{EMU}/", "file", {"kind": "file", "endpoint": EMU, "container": None, "path": ""}
    ),
    "Kubernetes service name": Case(
        f"http://shareferry-emulator.storage.svc.cluster.local:10000/acct1/share1/x/?{SAS}",
        "file",
        {
            "endpoint": "http://shareferry-emulator.storage.svc.cluster.local:10000/acct1",
            "account": "acct1",
            "container": "share1",
            "path": "x",
            "trailing_slash": True,
            "sas": SAS,
        },
    ),
    "short host without a port": Case(
        "http://files/acct1/share1", "file", {"endpoint": "http://files/acct1", "container": "share1"}
    ),
    "IPv6 host": Case(
        "http://[::1]:10000/devstoreaccount1/share1/a",
        "file",
        {"endpoint": "http://[::1]:10000/devstoreaccount1", "container": "share1", "path": "a"},
    ),
    "public endpoint agrees with a hint": Case(
        "https://acct.blob.core.windows.net/cont", "blob", {"kind": "blob"}
    ),
}


@pytest.mark.parametrize("case", PARSE_CASES.values(), ids=PARSE_CASES.keys())
def test_parse_remote(case: Case) -> None:
    location = parse_location(case.text, kind_hint=case.hint)
    actual = {name: getattr(location, name) for name in case.expected}
    assert actual == case.expected
    assert location.raw == case.text
    assert location.local_path is None
    assert_no_secret(location.describe())
    assert_no_secret(repr(location))


def test_parse_local(tmp_path: Path) -> None:
    location = parse_location(f"{tmp_path}/dir/")
    assert (location.kind, location.local_path, location.path) == ("local", f"{tmp_path}/dir/", "")
    assert location.trailing_slash
    assert location.describe() == f"{tmp_path}/dir/"
    assert location.endpoint is None and location.container is None and location.sas is None

    home = parse_location("~/data/*.csv")
    assert home.local_path == str(Path.home() / "data") + "/*.csv"
    assert not home.trailing_slash

    assert parse_location("relative/file.txt", kind_hint="local").local_path == "relative/file.txt"


def test_describe_redacts_only_the_signature() -> None:
    location = parse_location(f"https://acct.file.core.windows.net/share/my dir/*?sharesnapshot={SNAP}&{SAS}")
    assert location.describe() == (
        "https://acct.file.core.windows.net/share/my%20dir/*"
        f"?sharesnapshot={SNAP}&sv=2022-11-02&sp=rl&se=2030-01-01T00%3A00%3A00Z&sig=REDACTED"
    )
    assert repr(location) == f"Location(kind='file', {location.describe()!r})"
    trailing = parse_location(f"{EMU}/share1/dir/", kind_hint="file")
    assert trailing.describe() == f"{EMU}/share1/dir/"


def test_url_encodes_each_segment_and_keeps_the_query() -> None:
    location = parse_location(
        f"https://acct.file.core.windows.net/share/a%23b/c%25d?sharesnapshot={SNAP}&{SAS}"
    )
    assert (
        location.url() == f"https://acct.file.core.windows.net/share/a%23b/c%25d?sharesnapshot={SNAP}&{SAS}"
    )
    assert (
        location.url(with_sas=False)
        == f"https://acct.file.core.windows.net/share/a%23b/c%25d?sharesnapshot={SNAP}"
    )
    assert location.url("x y/é+1.txt", with_sas=False) == (
        f"https://acct.file.core.windows.net/share/x%20y/%C3%A9%2B1.txt?sharesnapshot={SNAP}"
    )
    assert location.url("") == f"https://acct.file.core.windows.net/share?sharesnapshot={SNAP}&{SAS}"
    blob = parse_location("https://acct.blob.core.windows.net/cont/a?snapshot=2024-01-01T00%3A00%3A00Z")
    assert blob.url() == "https://acct.blob.core.windows.net/cont/a?snapshot=2024-01-01T00:00:00Z"


def test_url_of_a_parsed_name_parses_back_to_the_same_name() -> None:
    names = ["a#b", "c%d", "e+f", "g h", "été", "日本", "x?y", "semi;colon", "amp&er=sand"]
    base = parse_location(f"{EMU}/share1", kind_hint="file")
    for name in names:
        again = parse_location(base.url(f"dir/{name}"), kind_hint="file")
        assert again.path == f"dir/{name}"


def test_with_path() -> None:
    location = parse_location(f"{EMU}/share1/dir/?{SAS}", kind_hint="file")
    child = location.with_path("dir/sub/file.txt")
    assert (child.path, child.trailing_slash, child.sas, child.container) == (
        "dir/sub/file.txt",
        False,
        SAS,
        "share1",
    )
    assert child.url(with_sas=False) == f"{EMU}/share1/dir/sub/file.txt"
    assert location.with_path("other/").trailing_slash
    local = parse_location("/data/in")
    assert local.with_path("a/b.txt").describe() == "/data/in/a/b.txt"


def test_url_misuse_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="local"):
        parse_location("/data").url()
    with pytest.raises(ValueError, match="account-level"):
        parse_location("https://acct.blob.core.windows.net").url("x")


ERROR_CASES = {
    "empty": ("", None, "an empty string is not a location: give a local path or an http(s) URL"),
    "other scheme": (
        "s3://bucket/key",
        None,
        "s3:// URLs are not supported: give an http(s) URL of Azure Files or Blob, or a local path",
    ),
    "no host": (f"https:///share/x?{SAS}", "file", "https:///share/x: the URL has no host"),
    "port not a number": (
        f"http://127.0.0.1:port/devstoreaccount1/share1?{SAS}",
        "file",
        "http://127.0.0.1:port/devstoreaccount1/share1: the URL has an invalid port",
    ),
    "port out of range": (
        f"http://127.0.0.1:99999/devstoreaccount1/share1?{SAS}",
        "file",
        "http://127.0.0.1:99999/devstoreaccount1/share1: the URL has an invalid port",
    ),
    "broken IPv6 brackets": (
        f"http://[::1:10000/devstoreaccount1/share1?{SAS}",
        "file",
        "http://[::1:10000/devstoreaccount1/share1: the URL is malformed (check the host and its brackets)",
    ),
    "user info": (
        "https://user:hunter2@acct.blob.core.windows.net/cont",
        None,
        "https://acct.blob.core.windows.net/cont: a user name or password in the URL is not supported",
    ),
    "path-style without account": (
        f"http://127.0.0.1:10000/?{SAS}",
        "file",
        "http://127.0.0.1:10000/: the URL names no account: path-style URLs are "
        "http://HOST:PORT/<account>/<container>/<path>",
    ),
    "path-style without path": (
        "http://127.0.0.1:10000",
        "blob",
        "http://127.0.0.1:10000: the URL names no account: path-style URLs are "
        "http://HOST:PORT/<account>/<container>/<path>",
    ),
    "path-style bad account": (
        "http://127.0.0.1:10000/Dev_Store/share1",
        "file",
        "http://127.0.0.1:10000/Dev_Store/share1: account name 'Dev_Store' must be 3-24 lower-case letters and "
        "digits (path-style URLs are http://HOST:PORT/<account>/<container>/<path>)",
    ),
    "raw #": (
        f"https://acct.file.core.windows.net/share/a#b?{SAS}",
        None,
        "https://acct.file.core.windows.net/share/a: a URL cannot contain a raw '#': write it as %23",
    ),
    "not UTF-8": (
        f"https://acct.file.core.windows.net/share/%FF?{SAS}",
        None,
        "https://acct.file.core.windows.net/share/%FF: a path segment is not valid UTF-8 after percent-decoding",
    ),
    "Data Lake endpoint": (
        "https://acct.dfs.core.windows.net/fs/x",
        None,
        "https://acct.dfs.core.windows.net/fs/x is a dfs endpoint: ShareFerry copies to and from Azure Files "
        "(.file.) and Blob (.blob.) endpoints (use the .blob. endpoint of the same account)",
    ),
    "query cut by the shell": (
        "https://acct.blob.core.windows.net/cont/x?sv=2022-11-02",
        None,
        "https://acct.blob.core.windows.net/cont/x: the query is not a SAS (it has no sig=); "
        "quote the whole URL so the shell keeps every '&'",
    ),
    "empty snapshot": (
        "https://acct.file.core.windows.net/share?sharesnapshot=",
        None,
        "https://acct.file.core.windows.net/share: ?sharesnapshot= needs a snapshot time",
    ),
    "Blob snapshot on Files": (
        f"https://acct.file.core.windows.net/share/f?snapshot={SNAP}&{SAS}",
        None,
        f"https://acct.file.core.windows.net/share/f?snapshot={SNAP}&sv=2022-11-02&sp=rl&se=2030-01-01T00%3A00%3A00Z"
        "&sig=REDACTED: Azure Files snapshots are addressed with ?sharesnapshot=",
    ),
    "Files snapshot on Blob": (
        f"https://acct.blob.core.windows.net/cont/f?sharesnapshot={SNAP}",
        None,
        f"https://acct.blob.core.windows.net/cont/f?sharesnapshot={SNAP}: Azure Blob snapshots are addressed "
        "with ?snapshot=",
    ),
    "snapshot without share": (
        f"https://acct.file.core.windows.net/?sharesnapshot={SNAP}",
        None,
        f"https://acct.file.core.windows.net?sharesnapshot={SNAP}: a snapshot needs a share or container in the URL",
    ),
    "path-style needs --from-to": (
        f"{EMU}/share1/dir?{SAS}",
        None,
        f"cannot infer whether {EMU}/share1/dir?sv=2022-11-02&sp=rl&se=2030-01-01T00%3A00%3A00Z&sig=REDACTED "
        "is Files or Blob: pass --from-to (LocalFile, FileLocal, ...)",
    ),
    "hint disagrees with host": (
        f"https://acct.blob.core.windows.net/cont?{SAS}",
        "file",
        "https://acct.blob.core.windows.net/cont?sv=2022-11-02&sp=rl&se=2030-01-01T00%3A00%3A00Z&sig=REDACTED "
        "is an Azure Blob URL, not Azure Files",
    ),
    "URL where a local path is expected": (
        f"https://acct.blob.core.windows.net/cont?{SAS}",
        "local",
        "https://acct.blob.core.windows.net/cont?sv=2022-11-02&sp=rl&se=2030-01-01T00%3A00%3A00Z&sig=REDACTED "
        "is a URL, not a local path",
    ),
    "local path where a URL is expected": ("/data/in", "blob", "/data/in is a local path, not Azure Blob"),
}

BAD_NAMES = {
    "upper case": "Share1",
    "underscore": "share_1",
    "too short": "ab",
    "too long": "a" * 64,
    "double hyphen": "a--b",
    "leading hyphen": "-abc",
    "trailing hyphen": "abc-",
    "wildcard": "share*",
}


@pytest.mark.parametrize(("text", "hint", "message"), ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_parse_errors(text: str, hint: LocationKind | None, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_location(text, kind_hint=hint)
    assert str(caught.value) == message
    assert_no_secret(str(caught.value))
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
@pytest.mark.parametrize("kind", ["file", "blob"])
def test_share_and_container_names(name: str, kind: LocationKind) -> None:
    noun = "share" if kind == "file" else "container"
    with pytest.raises(UsageError) as caught:
        parse_location(f"https://acct.{kind}.core.windows.net/{name}/x?{SAS}")
    assert str(caught.value).endswith(
        f": {noun} name {name!r} must be 3-63 lower-case letters, digits and single hyphens, "
        "starting and ending with a letter or digit"
    )
    assert_no_secret(str(caught.value))


@pytest.mark.parametrize("name", ["abc", "a-b-c", "share1", "1" * 63])
def test_good_share_names(name: str) -> None:
    assert parse_location(f"{EMU}/{name}", kind_hint="file").container == name


def test_special_containers_are_blob_only() -> None:
    with pytest.raises(UsageError, match=r"share name '\$web'"):
        parse_location("https://acct.file.core.windows.net/$web")


# -- resolve ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", list(FromTo))
def test_from_to_kinds(pair: FromTo) -> None:
    words = {"local": "Local", "file": "File", "blob": "Blob"}
    assert words[pair.source_kind] + words[pair.destination_kind] == pair.value == pair.name
    assert FromTo.of(pair.source_kind, pair.destination_kind) is pair


def test_resolve_infers_from_public_endpoints(tmp_path: Path) -> None:
    pair, source, destination = resolve(
        str(tmp_path), f"https://acct.file.core.windows.net/share/?{SAS}", None
    )
    assert pair is FromTo.LocalFile
    assert (source.kind, source.local_path) == ("local", str(tmp_path))
    assert (destination.kind, destination.container, destination.trailing_slash) == ("file", "share", True)

    pair, source, destination = resolve(
        f"https://a.blob.core.windows.net/cont/x?snapshot={SNAP}", "https://b.file.core.windows.net/share", ""
    )
    assert pair is FromTo.BlobFile
    assert source.snapshot == SNAP

    pair, _, destination = resolve(
        "https://a.file.core.windows.net/share/f", str(tmp_path / "new" / "f"), None
    )
    assert pair is FromTo.FileLocal
    assert destination.local_path == str(tmp_path / "new" / "f")


@pytest.mark.parametrize("spelling", ["localfile", "LOCALFILE", "LocalFile", " localFile "])
def test_from_to_is_case_insensitive(tmp_path: Path, spelling: str) -> None:
    pair, _, destination = resolve(str(tmp_path), f"{EMU}/share1/dir", spelling)
    assert pair is FromTo.LocalFile and str(pair) == "LocalFile"
    assert (destination.kind, destination.endpoint, destination.path) == ("file", EMU, "dir")


def test_from_to_settles_path_style_kinds() -> None:
    pair, source, destination = resolve(
        "http://azurite:10000/devstoreaccount1/cont/a", "http://files.ns:10000/acct1/share1/", "BlobFile"
    )
    assert pair is FromTo.BlobFile
    assert (source.kind, source.container) == ("blob", "cont")
    assert (destination.kind, destination.endpoint) == ("file", "http://files.ns:10000/acct1")


def test_from_to_may_confirm_public_endpoints(tmp_path: Path) -> None:
    pair, _, _ = resolve(str(tmp_path), "https://acct.blob.core.windows.net/cont", "LocalBlob")
    assert pair is FromTo.LocalBlob


def test_local_source_with_wildcard_need_not_exist(tmp_path: Path) -> None:
    pair, source, _ = resolve(f"{tmp_path}/nothing/*.txt", "https://acct.blob.core.windows.net/cont", None)
    assert pair is FromTo.LocalBlob
    assert source.local_path == f"{tmp_path}/nothing/*.txt"


def _resolve_error(source: str, destination: str, from_to: str | None) -> str:
    with pytest.raises(UsageError) as caught:
        resolve(source, destination, from_to)
    message = str(caught.value)
    assert "\n" not in message
    assert_no_secret(message)
    return message


def test_resolve_errors(tmp_path: Path) -> None:
    file_url = f"https://acct.file.core.windows.net/share?{SAS}"
    blob_url = f"https://acct.blob.core.windows.net/cont?{SAS}"
    redacted_blob = (
        "https://acct.blob.core.windows.net/cont?sv=2022-11-02&sp=rl&se=2030-01-01T00%3A00%3A00Z&sig=REDACTED"
    )
    valid = "LocalFile, FileLocal, FileFile, LocalBlob, BlobLocal, BlobBlob, BlobFile, FileBlob"

    assert (
        _resolve_error(str(tmp_path), file_url, "LocalS3")
        == f"unknown --from-to 'LocalS3': use one of {valid}"
    )
    assert _resolve_error(str(tmp_path), blob_url, "LocalFile") == (
        f"--from-to LocalFile says the destination is Azure Files, but {redacted_blob} is an Azure Blob URL"
    )
    assert _resolve_error(blob_url, str(tmp_path), "FileLocal") == (
        f"--from-to FileLocal says the source is Azure Files, but {redacted_blob} is an Azure Blob URL"
    )
    assert _resolve_error(str(tmp_path), file_url, "FileLocal") == (
        f"--from-to FileLocal says the source is Azure Files, but {tmp_path} is a local path"
    )
    assert _resolve_error(str(tmp_path), f"{EMU}/share1", "LocalLocal").startswith(
        "unknown --from-to 'LocalLocal'"
    )
    assert _resolve_error(str(tmp_path), f"{EMU}/share1", "FileFile") == (
        f"--from-to FileFile says the source is Azure Files, but {tmp_path} is a local path"
    )
    assert _resolve_error(f"{EMU}/share1", f"{EMU}/share2", "FileLocal") == (
        f"--from-to FileLocal says the destination is a local path, but {EMU}/share2 is a URL"
    )
    assert _resolve_error(str(tmp_path), str(tmp_path / "copy"), None) == (
        "copying from a local path to a local path is not supported: one side must be Azure Files or Blob"
    )
    assert _resolve_error(str(tmp_path), f"{EMU}/share1?{SAS}", None) == (
        f"cannot infer whether {EMU}/share1?sv=2022-11-02&sp=rl&se=2030-01-01T00%3A00%3A00Z&sig=REDACTED is Files "
        "or Blob: pass --from-to (LocalFile, FileLocal, ...)"
    )
    missing = tmp_path / "missing.txt"
    assert _resolve_error(str(missing), file_url, None) == f"the source {missing} does not exist"
    assert _resolve_error(
        str(tmp_path), f"https://acct.file.core.windows.net/share/d?sharesnapshot={SNAP}&{SAS}", None
    ) == (
        f"https://acct.file.core.windows.net/share/d?sharesnapshot={SNAP}&sv=2022-11-02&sp=rl"
        "&se=2030-01-01T00%3A00%3A00Z&sig=REDACTED is a snapshot: snapshots are read-only, so it cannot be a "
        "destination"
    )
    assert "is a snapshot" in _resolve_error(
        "https://a.file.core.windows.net/share",
        f"https://b.blob.core.windows.net/cont/x?snapshot={SNAP}",
        None,
    )


def test_resolve_reports_parse_errors_of_either_side(tmp_path: Path) -> None:
    assert _resolve_error(
        str(tmp_path), f"https://acct.file.core.windows.net/Bad_Share?{SAS}", None
    ).endswith(
        "share name 'Bad_Share' must be 3-63 lower-case letters, digits and single hyphens, starting and ending "
        "with a letter or digit"
    )
    assert _resolve_error(
        str(tmp_path), f"http://127.0.0.1:10000/devstoreaccount1/Bad?{SAS}", "LocalBlob"
    ).endswith(
        "container name 'Bad' must be 3-63 lower-case letters, digits and single hyphens, starting and ending "
        "with a letter or digit"
    )


def test_location_is_immutable() -> None:
    location = parse_location("https://acct.file.core.windows.net/share")
    with pytest.raises(AttributeError):
        location.path = "x"  # type: ignore[misc]
    assert isinstance(location, Location)
