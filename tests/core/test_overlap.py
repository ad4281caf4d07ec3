"""Which copies and syncs overlap their source: every way of naming one share, account, path or
local directory, and the places a copy lands. Pure: locations are parsed as the CLI parses them;
local cases use real directories, symlinks and (where the system allows) a bind mount."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest

from shareferry.core.errors import UsageError
from shareferry.core.locations import Location, parse_location, resolve
from shareferry.core.overlap import check_overlap, find_overlap, printable, shown

SIG = "SeCrEtSiGnAtUrE%2Bab%3D"
SAS = f"sv=2022-11-02&sp=rwdl&se=2030-01-01T00%3A00%3A00Z&sig={SIG}"
OTHER_SAS = f"sv=2022-11-02&sp=rl&se=2031-01-01T00%3A00%3A00Z&sig={SIG}x"
SNAP = "2024-05-01T10:20:30.1234567Z"
F = "https://acct.file.core.windows.net"
B = "https://acct.blob.core.windows.net"
EMU = "http://127.0.0.1:10000/devstoreaccount1"
Command = Literal["copy", "sync"]


def reason(
    source: str, destination: str, from_to: str | None = None, command: Command = "copy"
) -> str | None:
    _, src, dst = resolve(source, destination, from_to)
    return find_overlap(src, dst, command=command)


# (source, destination, --from-to): the same place or an overlapping one, for copy.
REFUSED_COPIES: dict[str, tuple[str, str, str | None]] = {
    "share onto itself, two SAS tokens": (f"{F}/share?{SAS}", f"{F}/share?{OTHER_SAS}", None),
    "share onto itself, trailing slash": (f"{F}/share", f"{F}/share/", None),
    "directory onto itself": (f"{F}/share/dir", f"{F}/share/dir/", None),
    "one file onto itself": (f"{F}/share/a/f.txt", f"{F}/share/a/f.txt", None),
    "one file into its own directory": (f"{F}/share/a/f.txt", f"{F}/share/a", None),
    "one file into its own directory, slash": (f"{F}/share/a/f.txt", f"{F}/share/a/", None),
    "a file at the root into the root": (f"{F}/share/f.txt", f"{F}/share", None),
    "case variant on Files": (f"{F}/share/Data/Set", f"{F}/share/data/SET", None),
    "case variant of a file on Files": (f"{F}/share/A.TXT", f"{F}/share/a.txt", None),
    "unicode case variant on Files": (f"{F}/share/%C3%84rger", f"{F}/share/%C3%A4RGER", None),
    "percent-encoded name": (f"{F}/share/sr%63/x", f"{F}/share/src/x", None),
    "encoded space and plus": (f"{F}/share/a%20b+c", f"{F}/share/a b+c/", None),
    "dot and dot-dot segments": (f"{F}/share/a/../src", f"{F}/share/./src/sub", None),
    "doubled slashes": (f"{F}/share//src//", f"{F}/share/src/sub", None),
    "destination inside the source": (f"{F}/share/src", f"{F}/share/src/sub", None),
    "destination deep inside the source": (f"{F}/share/src", f"{F}/share/src/a/b/c/", None),
    "directory into its own parent, slash": (f"{F}/share/a", f"{F}/share/", None),
    "directory into its own parent, no slash": (f"{F}/share/a", f"{F}/share", None),
    "nested directory into its own parent": (f"{F}/share/x/y/a", f"{F}/share/x/y", None),
    "parent spelled in another case": (f"{F}/share/X/a", f"{F}/share/x/", None),
    "share root into a directory of it": (f"{F}/share", f"{F}/share/backup", None),
    "source inside where it lands": (f"{F}/share/b/b", f"{F}/share/", None),
    "http and https of one account": ("http://acct.file.core.windows.net/share", f"{F}/share", None),
    "account in capitals": ("https://ACCT.file.core.windows.net/share/d", f"{F}/share/d/e", None),
    "read-access secondary as source": (
        "https://acct-secondary.file.core.windows.net/share",
        f"{F}/share",
        None,
    ),
    "read-access secondary as destination": (
        f"{F}/share/d",
        "https://acct-secondary.file.core.windows.net/share/d/x",
        None,
    ),
    "DNS zone endpoint of the account": (
        f"{F}/share/d",
        "https://acct.z12.file.storage.azure.net/share/d/",
        None,
    ),
    "two DNS zone endpoints": (
        "https://acct.z01.file.storage.azure.net/share",
        "https://acct.z99.file.storage.azure.net/share",
        None,
    ),
    "path-style, 127.0.0.1 and localhost": (
        f"{EMU}/share/a",
        "http://localhost:10000/devstoreaccount1/share/a/b",
        "FileFile",
    ),
    "path-style, 127.0.0.1 and [::1]": (
        f"{EMU}/share",
        "http://[::1]:10000/devstoreaccount1/share",
        "FileFile",
    ),
    "path-style, localhost and [::1]": (
        "http://localhost:10000/devstoreaccount1/share",
        "http://[::1]:10000/devstoreaccount1/share/x",
        "FileFile",
    ),
    "path-style, another loopback address": (
        f"{EMU}/share",
        "http://127.0.0.2:10000/devstoreaccount1/share",
        "FileFile",
    ),
    "path-style, IPv4-mapped IPv6": (
        f"{EMU}/share",
        "http://[::ffff:127.0.0.1]:10000/devstoreaccount1/share",
        "FileFile",
    ),
    "path-style, unspecified address": (
        f"{EMU}/share",
        "http://0.0.0.0:10000/devstoreaccount1/share",
        "FileFile",
    ),
    "path-style, this machine's name": (
        f"{EMU}/share",
        f"http://{socket.gethostname().lower()}:10000/devstoreaccount1/share",
        "FileFile",
    ),
    "path-style, host in capitals": (
        "http://files.test:10000/devstoreaccount1/share",
        "http://FILES.TEST:10000/devstoreaccount1/share",
        "FileFile",
    ),
    "path-style, default port written out": (
        "http://files.test/devstoreaccount1/share",
        "http://files.test:80/devstoreaccount1/share",
        "FileFile",
    ),
    "path-style, blob": (
        "http://127.0.0.1:10000/devstoreaccount1/cont/a",
        "http://localhost:10000/devstoreaccount1/cont/",
        "BlobBlob",
    ),
    "account-level source, share of it": (f"{F}/", f"{F}/share", None),
    "account-level source, no slash": (F, f"{F}/other/dir", None),
    "account-level destination": (f"{F}/share", f"{F}/", None),
    "account-level both": (f"{F}?{SAS}", f"{F}/?{OTHER_SAS}", None),
    "account-level, path-style": (EMU, "http://localhost:10000/devstoreaccount1/share", "FileFile"),
    "blob container onto itself": (f"{B}/cont", f"{B}/cont/", None),
    "blob destination inside source": (f"{B}/cont/logs", f"{B}/cont/logs/copy", None),
    "blob directory into its parent": (f"{B}/cont/a/b", f"{B}/cont/a/", None),
    "blob account-level source": (f"{B}/", f"{B}/cont/x", None),
    "wildcard contents onto their directory": (f"{F}/share/logs/*", f"{F}/share/logs", None),
    "wildcard contents into a subdirectory": (f"{F}/share/logs/*", f"{F}/share/logs/old", None),
    "wildcard prefix, destination matches it": (
        f"{F}/share/logs/2024*",
        f"{F}/share/logs/2024-archive",
        None,
    ),
    "wildcard prefix, destination below a match": (
        f"{F}/share/logs/2024*",
        f"{F}/share/logs/2024-01/x",
        None,
    ),
    "wildcard, case variant on Files": (f"{F}/share/Logs/2024*", f"{F}/share/logs/2024B", None),
    "wildcard at the root": (f"{F}/share/*", f"{F}/share/anything", None),
    "wildcard root onto the root": (f"{F}/share/*", f"{F}/share/", None),
    "wildcard, source's directory matches": (f"{F}/share/a/a*", f"{F}/share", None),
    "wildcard in the name only": (f"{F}/share/dir/*.txt", f"{F}/share/dir/", None),
    "blob wildcard onto its directory": (f"{B}/cont/d/*", f"{B}/cont/d/", None),
}

# Pairs that are apart: copying is fine.
ALLOWED_COPIES: dict[str, tuple[str, str, str | None]] = {
    "two shares": (f"{F}/share", f"{F}/backup", None),
    "two shares, same path": (f"{F}/share/dir", f"{F}/backup/dir", None),
    "snapshot into the live share": (f"{F}/share?sharesnapshot={SNAP}", f"{F}/share", None),
    "snapshot directory onto itself": (f"{F}/share/dir?sharesnapshot={SNAP}", f"{F}/share/dir", None),
    "two accounts": (f"{F}/share", "https://other.file.core.windows.net/share", None),
    "Files to Blob of one account": (f"{F}/share", f"{B}/share", None),
    "Blob to Files of one account": (f"{B}/cont/a", f"{F}/cont/a", None),
    "same account name in another cloud": (
        f"{F}/share",
        "https://acct.file.core.chinacloudapi.cn/share",
        None,
    ),
    "public and US Government clouds": (
        "https://acct.file.core.usgovcloudapi.net/share",
        f"{F}/share",
        None,
    ),
    "path-style, two ports": (f"{EMU}/share", "http://127.0.0.1:10001/devstoreaccount1/share", "FileFile"),
    "path-style, two accounts": (f"{EMU}/share", "http://127.0.0.1:10000/otheraccount/share", "FileFile"),
    "path-style, two remote hosts": (
        "http://10.0.0.1:10000/devstoreaccount1/share",
        "http://10.0.0.2:10000/devstoreaccount1/share",
        "FileFile",
    ),
    "path-style, http and https ports": (
        "http://files.test/devstoreaccount1/share",
        "https://files.test/devstoreaccount1/share",
        "FileFile",
    ),
    "path-style and public endpoint": (
        f"{EMU}/share",
        "https://devstoreaccount1.file.core.windows.net/share",
        "FileFile",
    ),
    "sibling directories": (f"{F}/share/a", f"{F}/share/b", None),
    "name sharing a prefix": (f"{F}/share/src", f"{F}/share/src2", None),
    "name sharing a prefix, other way": (f"{F}/share/src2", f"{F}/share/src", None),
    "directory into its grandparent": (f"{F}/share/x/a", f"{F}/share/", None),
    "directory into another directory": (f"{F}/share/a", f"{F}/share/b/", None),
    "directory into its sibling's child": (f"{F}/share/a", f"{F}/share/b/a", None),
    "file beside itself": (f"{F}/share/a/f.txt", f"{F}/share/a/g.txt", None),
    "file into another directory": (f"{F}/share/a/f.txt", f"{F}/share/b/", None),
    "blob case variant": (f"{B}/cont/Data", f"{B}/cont/data/sub", None),
    "blob file case variant": (f"{B}/cont/A.TXT", f"{B}/cont/a.txt", None),
    "wildcard prefix, other destination": (f"{F}/share/logs/2024*", f"{F}/share/logs/archive", None),
    "wildcard prefix, destination at the root": (f"{F}/share/logs/2024*", f"{F}/share/", None),
    "wildcard prefix, elsewhere": (f"{F}/share/logs/2024*", f"{F}/share/other/2024", None),
    "wildcard, blob prefix is case-sensitive": (f"{B}/cont/logs/2024*", f"{B}/cont/LOGS/2024", None),
    "upload from local": ("/tmp", f"{F}/share/tmp", None),
    "download to local": (f"{F}/share/tmp", "/tmp/share", None),
    "account-level source, other account": (f"{F}/", "https://other.file.core.windows.net/share", None),
    "account-level Files source to Blob": (f"{F}/", f"{B}/", None),
    "secondary source to another share": (
        "https://acct-secondary.file.core.windows.net/share",
        f"{F}/copy",
        None,
    ),
}


@pytest.mark.parametrize(
    ("source", "destination", "from_to"), REFUSED_COPIES.values(), ids=REFUSED_COPIES.keys()
)
def test_overlapping_copy_is_refused_with_one_line(
    source: str, destination: str, from_to: str | None
) -> None:
    _, src, dst = resolve(source, destination, from_to)
    with pytest.raises(UsageError) as raised:
        check_overlap(src, dst, command="copy")
    message = str(raised.value)
    assert message.startswith("refusing to copy: ")
    assert "\n" not in message
    assert "SeCrEt" not in message and "sig=" not in message
    assert shown(src) in message and shown(dst) in message


@pytest.mark.parametrize(
    ("source", "destination", "from_to"), ALLOWED_COPIES.values(), ids=ALLOWED_COPIES.keys()
)
def test_copy_between_separate_places_is_allowed(source: str, destination: str, from_to: str | None) -> None:
    assert reason(source, destination, from_to) is None


# The exact messages, one per rule.
MESSAGES: dict[str, tuple[str, str, Command, str]] = {
    "the same place": (
        f"{F}/share/src?{SAS}",
        f"{F}/share/SRC/",
        "copy",
        f"the destination {F}/share/SRC/ is the source {F}/share/src",
    ),
    "inside": (
        f"{F}/share/src",
        f"{F}/share/src/sub",
        "copy",
        f"the destination {F}/share/src/sub is inside the source {F}/share/src",
    ),
    "into its parent": (
        f"{F}/share/a",
        f"{F}/share/",
        "copy",
        f"the source {F}/share/a would be copied onto itself in the destination {F}/share/",
    ),
    "inside where it lands": (
        f"{F}/share/b/b",
        f"{F}/share",
        "copy",
        f"the source {F}/share/b/b is inside the place it would be copied to in the destination {F}/share",
    ),
    "wildcard into its directory": (
        f"{F}/share/logs/*",
        f"{F}/share/logs",
        "copy",
        f"the source {F}/share/logs/* would be copied onto itself in the destination {F}/share/logs",
    ),
    "wildcard, destination among the matches": (
        f"{F}/share/logs/2024*",
        f"{F}/share/logs/2024-old",
        "copy",
        f"the destination {F}/share/logs/2024-old is inside the source {F}/share/logs/2024*",
    ),
    "wildcard, the source below a match": (
        f"{F}/share/a/a*",
        f"{F}/share/",
        "copy",
        f"the destination {F}/share/ contains the source {F}/share/a/a*, "
        "and its files could be copied onto themselves",
    ),
    "sync into its source": (
        f"{F}/share/src",
        f"{F}/share/src/mirror",
        "sync",
        f"the destination {F}/share/src/mirror is inside the source {F}/share/src",
    ),
    "sync over its source": (
        f"{F}/share/data/current",
        f"{F}/share/data",
        "sync",
        f"the destination {F}/share/data contains the source {F}/share/data/current, "
        "which the sync would overwrite or delete",
    ),
    "account-wide source": (
        f"{F}/",
        f"{F}/share/x",
        "copy",
        f"the source {F} names every share and container of its account, "
        f"and the destination {F}/share/x is in that account",
    ),
    "account-wide destination": (
        f"{F}/share",
        f"{F}/",
        "copy",
        f"the destination {F} is the whole account of the source {F}/share",
    ),
}


@pytest.mark.parametrize(
    ("source", "destination", "command", "expected"), MESSAGES.values(), ids=MESSAGES.keys()
)
def test_each_refusal_says_why(source: str, destination: str, command: Command, expected: str) -> None:
    _, src, dst = resolve(source, destination, None)
    with pytest.raises(UsageError) as raised:
        check_overlap(src, dst, command=command)
    assert str(raised.value) == f"refusing to {command}: {expected}"


REFUSED_SYNCS: dict[str, tuple[str, str]] = {
    "share onto itself": (f"{F}/share", f"{F}/share/"),
    "directory onto itself, case variant": (f"{F}/share/Dir", f"{F}/share/dir"),
    "destination inside the source": (f"{F}/share/a", f"{F}/share/a/b"),
    "source inside the destination": (f"{F}/share/a/b", f"{F}/share/a"),
    "source inside the destination root": (f"{F}/share/a/b", f"{F}/share"),
    "file onto itself": (f"{F}/share/a/f.txt", f"{F}/share/a/F.TXT"),
    "file into its directory": (f"{F}/share/a/f.txt", f"{F}/share/a/"),
    "path-style loopback aliases": (f"{EMU}/share/a", "http://localhost:10000/devstoreaccount1/share/a/"),
    "blob container onto itself": (f"{B}/cont/d", f"{B}/cont/d"),
    "blob source inside destination": (f"{B}/cont/d/e", f"{B}/cont/d"),
}

ALLOWED_SYNCS: dict[str, tuple[str, str]] = {
    "two shares": (f"{F}/share", f"{F}/mirror"),
    "sibling directories": (f"{F}/share/a", f"{F}/share/b"),
    "prefix-sharing names": (f"{F}/share/a", f"{F}/share/ab"),
    "snapshot into the live share": (f"{F}/share?sharesnapshot={SNAP}", f"{F}/share"),
    "Files to Blob": (f"{F}/share/a", f"{B}/share/a"),
    "blob case variant": (f"{B}/cont/D", f"{B}/cont/d"),
}


@pytest.mark.parametrize(("source", "destination"), REFUSED_SYNCS.values(), ids=REFUSED_SYNCS.keys())
def test_overlapping_sync_is_refused(source: str, destination: str) -> None:
    from_to = "FileFile" if source.startswith("http://127") else None
    found = reason(source, destination, from_to, command="sync")
    assert found is not None


@pytest.mark.parametrize(("source", "destination"), ALLOWED_SYNCS.values(), ids=ALLOWED_SYNCS.keys())
def test_sync_between_separate_places_is_allowed(source: str, destination: str) -> None:
    assert reason(source, destination, command="sync") is None


def test_a_copy_may_go_to_where_a_sync_may_not() -> None:
    """A copy of a/b into a lands at a/b/b: its parent is fine for a copy, never for a sync."""
    assert reason(f"{F}/share/a/b", f"{F}/share/a/c", command="copy") is None
    assert reason(f"{F}/share/a/b", f"{F}/share/", command="copy") is None
    assert reason(f"{F}/share/a/b", f"{F}/share/", command="sync") is not None


# -- local paths ----------------------------------------------------------------------------------


def local(path: Path | str) -> Location:
    return parse_location(str(path), kind_hint="local")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for directory in ("src/sub", "other", "parent/a"):
        (tmp_path / directory).mkdir(parents=True)
    (tmp_path / "src" / "f.txt").write_bytes(b"data")
    (tmp_path / "link-to-src").symlink_to(tmp_path / "src")
    (tmp_path / "link-to-tmp").symlink_to(tmp_path)
    return tmp_path


# (source, destination) relative to the tree; True when the pair overlaps for a copy.
LOCAL_COPIES: dict[str, tuple[str, str, bool]] = {
    "same directory": ("src", "src", True),
    "same directory, trailing slash": ("src", "src/", True),
    "dot segments": ("src", "other/../src/./sub", True),
    "destination inside": ("src", "src/sub/new", True),
    "symlink to the source as destination": ("src", "link-to-src", True),
    "destination below a symlink to the source": ("src", "link-to-src/sub/x", True),
    "source through a symlink": ("link-to-src", "src/new", True),
    "both through symlinks": ("link-to-tmp/src", "link-to-src/deeper", True),
    "into its own parent": ("parent/a", "parent", True),
    "into its own parent through a symlink": ("src", "link-to-tmp", True),
    "file onto itself": ("src/f.txt", "link-to-src/f.txt", True),
    "file into its directory": ("src/f.txt", "src", True),
    "wildcard onto its directory": ("src/*", "src", True),
    "wildcard into a matching name": ("src/s*", "src/sub/x", True),
    "sibling": ("src", "other", False),
    "prefix-sharing name": ("src", "src2", False),
    "case differs (Linux is case-sensitive)": ("src", "SRC/x", False),
    "wildcard, destination not matching": ("src/s*", "src/other", False),
    "into grandparent": ("parent/a", ".", False),
}


@pytest.mark.parametrize(
    ("source", "destination", "overlaps"), LOCAL_COPIES.values(), ids=LOCAL_COPIES.keys()
)
def test_local_paths_compare_by_real_path(tree: Path, source: str, destination: str, overlaps: bool) -> None:
    found = find_overlap(local(tree / source), local(tree / destination), command="copy")
    assert (found is not None) == overlaps, found


def test_local_relative_paths_are_resolved(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree / "src")
    assert find_overlap(local("."), local("sub/x"), command="copy") is not None
    assert find_overlap(local("../src"), local("./"), command="sync") is not None
    assert find_overlap(local("sub"), local("../other"), command="sync") is None


def test_bind_mounted_destination_is_recognised_by_its_inode(tree: Path) -> None:
    """A directory mounted a second time elsewhere has another real path but the same inode."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare is not available")
    (tree / "mnt").mkdir()
    script = (
        "import sys\n"
        "from shareferry.core.locations import parse_location as p\n"
        "from shareferry.core.overlap import find_overlap\n"
        "src, dst = sys.argv[1], sys.argv[2]\n"
        "print(find_overlap(p(src, kind_hint='local'), p(dst, kind_hint='local'), command='copy'))\n"
    )
    mounted = subprocess.run(
        [
            unshare,
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind "$1" "$2" && exec "$3" -c "$4" "$1" "$2/sub/new"',
            "sh",
            str(tree / "src"),
            str(tree / "mnt"),
            sys.executable,
            script,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0 and "mount" in mounted.stderr + mounted.stdout:
        pytest.skip(f"no bind mounts here: {mounted.stderr.strip()}")
    assert mounted.returncode == 0, mounted.stderr
    assert mounted.stdout.strip() == (
        f"the destination {tree / 'mnt'}/sub/new is inside the source {tree / 'src'}"
    )


def test_control_characters_in_names_are_escaped(tmp_path: Path) -> None:
    evil = tmp_path / "evil\x1b]0;pwned\x07\nname\u202e"
    evil.mkdir()
    found = find_overlap(local(evil), local(evil / "in"), command="copy")
    assert found is not None
    assert "\x1b" not in found and "\n" not in found and "\u202e" not in found
    assert "evil\\x1b]0;pwned\\x07\\nname\\u202e" in found


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\tb", "a\\tb"),
        ("a\rb", "a\\rb"),
        ("del\x7f", "del\\x7f"),
        ("nel\x85", "nel\\x85"),
        ("é ü 中", "é ü 中"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown
