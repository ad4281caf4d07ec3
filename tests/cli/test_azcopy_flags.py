"""AzCopy's ``--include-attributes`` / ``--exclude-attributes``, ``--s2s-preserve-access-tier`` and
``--trusted-microsoft-suffixes`` through ``shareferry copy`` and ``sync`` run as a child process,
against the Files emulator, Azurite and local HTTP(S) listeners. Checked as a user would: which
files arrived (bytes), the tier the destination blobs have, exit codes, the one-line errors, and
that no Entra ID token was asked for or sent where it must not go."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import AccountSasPermissions as BlobAccountSasPermissions
from azure.storage.blob import BlobServiceClient, ContainerClient, StandardBlobTier
from azure.storage.blob import ResourceTypes as BlobResourceTypes
from azure.storage.blob import generate_account_sas as generate_blob_account_sas
from azure.storage.fileshare import ContentSettings, ShareClient

from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.cli.test_copy_cli import account_sas, clean_environment, shareferry, shareferry_all
from tests.support.emulator_admin import service_client
from tests.support.shared_azurite import shared_azurite
from tests.support.token_endpoints import TOKEN, Seen, https_recorder, self_signed_certificate, token_endpoint
from tests.support.trees import read_local, read_share

# ---- --include-attributes / --exclude-attributes -------------------------------------------------

#: path -> (bytes, SMB attributes set on the emulator); the emulator gives a new file Archive.
ATTRIBUTED: dict[str, tuple[bytes, str]] = {
    "plain.txt": (b"plain", "Archive"),
    "none.txt": (b"no attributes", "None"),
    "ro.txt": (b"read only", "ReadOnly"),
    "hidden.txt": (b"hidden", "Hidden"),
    "sys.txt": (b"system and archive", "System|Archive"),
    "sub/deep-hidden.txt": (b"deep hidden", "Hidden|ReadOnly"),
    "sub/temp.txt": (b"temporary", "Temporary"),
}


def write_attributed(share: ShareClient, files: dict[str, tuple[bytes, str]]) -> None:
    for path, (data, attributes) in files.items():
        if "/" in path:
            directory = share.get_directory_client(path.rpartition("/")[0])
            if not directory.exists():
                directory.create_directory()
        client = share.get_file_client(path)
        client.upload_file(data)
        client.set_http_headers(ContentSettings(), file_attributes=attributes)


@pytest.fixture(scope="module")
def files_world() -> Iterator[tuple[RunningEmulator, ShareClient, str]]:
    """One emulator for the module: a share holding :data:`ATTRIBUTED`, and an account SAS."""
    with RunningEmulator(EmulatorConfig()) as emulator:
        share = service_client(emulator).create_share("attrs")
        write_attributed(share, ATTRIBUTED)
        yield emulator, share, account_sas(emulator)


def url_of(emulator: RunningEmulator, share: str, sas: str, path: str = "") -> str:
    return f"{emulator.account_url()}/{share}" + (f"/{path}" if path else "") + f"?{sas}"


def expected(*paths: str) -> dict[str, bytes]:
    return {path: ATTRIBUTED[path][0] for path in paths}


#: case -> (flags, the files that must arrive)
ATTRIBUTE_CASES: dict[str, tuple[tuple[str, ...], dict[str, bytes]]] = {
    "include hidden": (("--include-attributes", "H"), expected("hidden.txt", "sub/deep-hidden.txt")),
    "include read-only or system, lower case": (
        ("--include-attributes", "r;s"),
        expected("ro.txt", "sys.txt", "sub/deep-hidden.txt"),
    ),
    "include normal": (("--include-attributes", "N"), expected("none.txt")),
    "exclude hidden and read-only": (
        ("--exclude-attributes", "H;R"),
        expected("plain.txt", "none.txt", "sys.txt", "sub/temp.txt"),
    ),
    "include archive, exclude system": (
        ("--include-attributes", "A", "--exclude-attributes", "S"),
        expected("plain.txt"),
    ),
    "repeated flags add up": (
        ("--include-attributes", "T", "--include-attributes", "H"),
        expected("hidden.txt", "sub/deep-hidden.txt", "sub/temp.txt"),
    ),
}


@pytest.fixture(scope="module")
def attribute_downloads(
    files_world: tuple[RunningEmulator, ShareClient, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[subprocess.CompletedProcess[str], Path]]:
    emulator, share, sas = files_world
    root = tmp_path_factory.mktemp("attribute-downloads")
    targets = {case: root / f"case{index}" for index, case in enumerate(ATTRIBUTE_CASES)}
    results = shareferry_all(
        {
            case: [
                "copy",
                url_of(emulator, share.share_name, sas, "*"),
                str(targets[case]),
                "--recursive",
                "--from-to",
                "FileLocal",
                *flags,
            ]
            for case, (flags, _) in ATTRIBUTE_CASES.items()
        }
    )
    return {case: (results[case], targets[case]) for case in ATTRIBUTE_CASES}


@pytest.mark.parametrize("case", ATTRIBUTE_CASES)
def test_attribute_filters_choose_the_files_a_share_download_brings(
    attribute_downloads: dict[str, tuple[subprocess.CompletedProcess[str], Path]], case: str
) -> None:
    result, target = attribute_downloads[case]
    assert result.returncode == 0, result.stderr
    assert read_local(target).files == ATTRIBUTE_CASES[case][1]


def test_attribute_filters_on_a_share_to_share_copy(
    files_world: tuple[RunningEmulator, ShareClient, str],
) -> None:
    emulator, share, sas = files_world
    destination = service_client(emulator).create_share("attrs-copy")
    result = shareferry(
        "copy",
        url_of(emulator, share.share_name, sas),
        url_of(emulator, destination.share_name, sas),
        "--recursive",
        "--from-to",
        "FileFile",
        "--exclude-attributes",
        "A;T",
    )
    assert result.returncode == 0, result.stderr
    listing = read_share(destination)
    assert listing.files == expected("none.txt", "ro.txt", "hidden.txt", "sub/deep-hidden.txt")


def test_sync_neither_copies_nor_deletes_what_attributes_exclude(
    files_world: tuple[RunningEmulator, ShareClient, str],
) -> None:
    emulator, share, sas = files_world
    destination = service_client(emulator).create_share("attrs-sync")
    write_attributed(
        destination,
        {
            "hidden.txt": (b"the destination's own hidden.txt", "Archive"),
            "gone.txt": (b"only at the destination", "Archive"),
            "secret.txt": (b"hidden, only at the destination", "Hidden"),
        },
    )
    result = shareferry(
        "sync",
        url_of(emulator, share.share_name, sas),
        url_of(emulator, destination.share_name, sas),
        "--from-to",
        "FileFile",
        "--exclude-attributes",
        "H",
        "--delete-destination",
        "true",
        "--output-type",
        "json",
    )
    assert result.returncode == 0, result.stderr
    assert read_share(destination).files == {
        **expected("plain.txt", "none.txt", "ro.txt", "sys.txt", "sub/temp.txt"),
        "hidden.txt": b"the destination's own hidden.txt",  # excluded at the source: not replaced
        "secret.txt": b"hidden, only at the destination",  # excluded: never deleted
    }


@pytest.mark.azurite
def test_attribute_refusals_are_one_line_with_exit_2(
    files_world: tuple[RunningEmulator, ShareClient, str], tmp_path: Path
) -> None:
    emulator, share, sas = files_world
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_bytes(b"a")
    remote = url_of(emulator, share.share_name, sas)
    blob = shared_azurite().endpoint + "/somecontainer?sv=2020-10-02&sig=abc"
    cases = {
        "local source": (
            [
                "copy",
                str(local),
                remote,
                "--recursive",
                "--from-to",
                "LocalFile",
                "--include-attributes",
                "H",
            ],
            "shareferry copy: --include-attributes applies to Azure Files sources only: "
            "a local file on Linux has no Windows attributes",
        ),
        "local sync source": (
            ["sync", str(local), remote, "--from-to", "LocalFile", "--exclude-attributes", "R"],
            "shareferry sync: --exclude-attributes applies to Azure Files sources only: "
            "a local file on Linux has no Windows attributes",
        ),
        "blob source": (
            ["copy", blob, str(tmp_path / "out"), "--from-to", "BlobLocal", "--exclude-attributes", "A"],
            "shareferry copy: --exclude-attributes applies to Azure Files sources only: "
            "a blob has no Windows attributes",
        ),
        "unknown letter": (
            [
                "copy",
                remote,
                str(tmp_path / "out"),
                "--recursive",
                "--from-to",
                "FileLocal",
                "--include-attributes",
                "A;X",
            ],
            "shareferry copy: --include-attributes has an unknown attribute 'X': use the letters "
            "R, A, S, H, C, N, E, T, O, I separated by ';' (for example A;S;R)",
        ),
        "unknown letter in sync": (
            [
                "sync",
                remote,
                str(tmp_path / "out"),
                "--from-to",
                "FileLocal",
                "--exclude-attributes",
                "Hidden",
            ],
            "shareferry sync: --exclude-attributes has an unknown attribute 'Hidden': use the letters "
            "R, A, S, H, C, N, E, T, O, I separated by ';' (for example A;S;R)",
        ),
    }
    results = shareferry_all({name: args for name, (args, _) in cases.items()})
    for name, (_, message) in cases.items():
        result = results[name]
        assert result.returncode == 2, (name, result.stderr)
        assert result.stderr.splitlines() == [message], name
        assert "sig=abc" not in result.stderr
    assert not (tmp_path / "out").exists()


# ---- --s2s-preserve-access-tier -----------------------------------------------------------------

#: blob -> (bytes, tier set at upload; None: the account's default, Hot, inferred)
TIERED: dict[str, tuple[bytes, StandardBlobTier | None]] = {
    "cool.txt": (b"cool" * 100, StandardBlobTier.COOL),
    "cold/deep.txt": (b"cold", StandardBlobTier.COLD),
    "hot.txt": (b"hot, set on the blob", StandardBlobTier.HOT),
    "default.txt": (b"the account's default", None),
}


@pytest.fixture(scope="module")
def blob_world() -> tuple[BlobServiceClient, str, str]:
    azurite = shared_azurite()
    client = BlobServiceClient(azurite.endpoint, azurite.credential)
    sas = generate_blob_account_sas(
        azurite.account,
        azurite.key,
        BlobResourceTypes(service=True, container=True, object=True),
        BlobAccountSasPermissions(read=True, write=True, create=True, list=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return client, azurite.endpoint, sas


def key_environment() -> dict[str, str]:
    """Azurite answers 500 to Put Block From URL on a SAS-authorized request: destinations in
    Blob are authorized with the account key (a connection string), sources with a SAS."""
    return clean_environment(AZURE_STORAGE_CONNECTION_STRING=shared_azurite().connection_string)


def tiered_container(
    client: BlobServiceClient, files: dict[str, tuple[bytes, StandardBlobTier | None]]
) -> ContainerClient:
    container = client.create_container(f"tiers{os.urandom(4).hex()}")
    for name, (data, tier) in files.items():
        container.upload_blob(name, data, standard_blob_tier=tier)
    return container


def tiers(container: ContainerClient) -> dict[str, tuple[bytes, str, bool]]:
    """Each blob's bytes, tier and whether the tier is inferred (the account's default)."""
    found = {}
    for item in container.list_blobs():
        properties = container.get_blob_client(item.name).get_blob_properties()
        data = container.download_blob(item.name).readall()
        found[item.name] = (data, str(properties.blob_tier), bool(properties.blob_tier_inferred))
    return found


@pytest.mark.azurite
def test_blob_to_blob_keeps_the_source_tier_unless_told_not_to(
    blob_world: tuple[BlobServiceClient, str, str],
) -> None:
    client, endpoint, sas = blob_world
    source = tiered_container(client, TIERED)
    kept, dropped, synced = (client.create_container(f"dest{os.urandom(4).hex()}") for _ in range(3))

    def url(container: ContainerClient) -> str:
        return f"{endpoint}/{container.container_name}"  # authorized by the key (see below)

    bb = ("--from-to", "BlobBlob", "--recursive")
    results = shareferry_all(
        {
            "default": ["copy", f"{endpoint}/{source.container_name}/*?{sas}", url(kept), *bb],
            "false": [
                "copy",
                f"{endpoint}/{source.container_name}/*?{sas}",
                url(dropped),
                *bb,
                "--s2s-preserve-access-tier=false",
            ],
            "sync": ["sync", f"{url(source)}?{sas}", url(synced), "--from-to", "BlobBlob"],
        },
        env=key_environment(),
    )
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr)
    assert tiers(kept) == {
        "cool.txt": (TIERED["cool.txt"][0], "Cool", False),
        "cold/deep.txt": (b"cold", "Cold", False),
        "hot.txt": (TIERED["hot.txt"][0], "Hot", False),
        "default.txt": (TIERED["default.txt"][0], "Hot", True),  # inferred stays inferred
    }
    assert tiers(synced) == tiers(kept)
    assert tiers(dropped) == {name: (data, "Hot", True) for name, (data, _) in TIERED.items()}


@pytest.mark.azurite
def test_an_archived_source_blob_fails_clearly_and_the_rest_is_copied(
    blob_world: tuple[BlobServiceClient, str, str], tmp_path: Path
) -> None:
    client, endpoint, sas = blob_world
    source = tiered_container(client, {"online.txt": (b"online", None), "cold.txt": (b"archived", None)})
    source.get_blob_client("cold.txt").set_standard_blob_tier(StandardBlobTier.ARCHIVE)
    destination = client.create_container(f"dest{os.urandom(4).hex()}")
    results = shareferry_all(
        {
            "blob": [
                "copy",
                f"{endpoint}/{source.container_name}/*?{sas}",
                f"{endpoint}/{destination.container_name}",
                "--from-to",
                "BlobBlob",
            ],
            "local": [
                "copy",
                f"{endpoint}/{source.container_name}/*?{sas}",
                str(tmp_path / "out"),
                "--from-to",
                "BlobLocal",
            ],
        },
        env=key_environment(),
    )
    message = f"{endpoint}/{source.container_name}/cold.txt is in the Archive tier: its data is offline"
    for result in results.values():
        assert result.returncode == 1, result.stderr
        assert message in result.stdout + result.stderr
    assert {name: data for name, (data, _, _) in tiers(destination).items()} == {"online.txt": b"online"}
    assert read_local(tmp_path / "out").files == {"online.txt": b"online"}


def test_the_tier_flag_is_accepted_for_other_pairs_and_changes_nothing(
    files_world: tuple[RunningEmulator, ShareClient, str], tmp_path: Path
) -> None:
    emulator, share, sas = files_world
    result = shareferry(
        "copy",
        url_of(emulator, share.share_name, sas, "ro.txt"),
        str(tmp_path / "ro.txt"),
        "--from-to",
        "FileLocal",
        "--s2s-preserve-access-tier=false",
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ro.txt").read_bytes() == b"read only"
    bad = shareferry("copy", str(tmp_path), str(tmp_path / "x"), "--s2s-preserve-access-tier=maybe")
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "shareferry copy: --s2s-preserve-access-tier takes true or false, not 'maybe'"
    ]


# ---- --trusted-microsoft-suffixes ---------------------------------------------------------------


@pytest.fixture
def token_world(tmp_path: Path) -> Iterator[tuple[int, Seen, Seen, dict[str, str]]]:
    """An HTTPS host on 127.0.0.1 the child trusts, a managed-identity endpoint, and the child's
    environment: no storage credential, so a remote location falls back to Entra ID."""
    cert, key = self_signed_certificate(tmp_path)
    with https_recorder(cert, key) as (port, storage), token_endpoint() as (identity_url, identity):
        env = clean_environment(
            IDENTITY_ENDPOINT=identity_url, IDENTITY_HEADER="test-header", SSL_CERT_FILE=str(cert)
        )
        yield port, storage, identity, env


def test_a_token_goes_only_to_trusted_hosts(
    token_world: tuple[int, Seen, Seen, dict[str, str]], tmp_path: Path
) -> None:
    port, storage, identity, env = token_world
    files = f"https://127.0.0.1:{port}/devstoreaccount1/share/file.txt"
    blobs = f"https://127.0.0.1:{port}/devstoreaccount1/container/file.txt"
    out = str(tmp_path / "out.txt")
    refused = shareferry_all(
        {
            "no flag": ["copy", files, out, "--from-to", "FileLocal"],
            "another domain": [
                "copy",
                files,
                out,
                "--from-to",
                "FileLocal",
                "--trusted-microsoft-suffixes",
                "*.example.net",
            ],
            "a suffix of the IP": [
                "copy",
                files,
                out,
                "--from-to",
                "FileLocal",
                "--trusted-microsoft-suffixes",
                "0.0.1",
            ],
            "blob upload": ["copy", str(tmp_path), blobs, "--from-to", "LocalBlob", "--recursive"],
            "sync": ["sync", files.rpartition("/")[0], str(tmp_path), "--from-to", "FileLocal"],
        },
        env=env,
    )
    message = (
        "refusing to send a Microsoft Entra ID token to 127.0.0.1: it is not under a trusted Microsoft "
        "domain; if 127.0.0.1 is an Azure Storage endpoint, add it with --trusted-microsoft-suffixes "
        "127.0.0.1, otherwise give a SAS or an account key"
    )
    for name, result in refused.items():
        assert result.returncode == 1, (name, result.stderr)
        assert result.stderr.splitlines() == [f"shareferry {result.args[3]}: {message}"], name
    assert identity.requests == [] and storage.requests == []

    trusted = shareferry(
        "copy",
        files,
        out,
        "--from-to",
        "FileLocal",
        "--trusted-microsoft-suffixes",
        "example.net;127.0.0.1",
        env=env,
    )
    assert trusted.returncode == 1  # the stand-in host refuses every request
    assert len(identity.requests) >= 1
    assert set(storage.authorizations()) == {f"Bearer {TOKEN}"}


def test_a_sas_is_unaffected_by_the_trusted_suffixes(
    token_world: tuple[int, Seen, Seen, dict[str, str]], tmp_path: Path
) -> None:
    port, storage, identity, env = token_world
    url = f"https://127.0.0.1:{port}/devstoreaccount1/share/file.txt?sv=2020-10-02&sig=c2lnbmF0dXJl"
    result = shareferry("copy", url, str(tmp_path / "out.txt"), "--from-to", "FileLocal", env=env)
    assert result.returncode == 1  # the stand-in host answers 403
    assert "refusing to send" not in result.stderr
    assert storage.requests and storage.authorizations() == []
    assert identity.requests == []
    assert "c2lnbmF0dXJl" not in result.stdout + result.stderr


def test_a_malformed_suffix_is_one_line_with_exit_2(tmp_path: Path) -> None:
    result = shareferry(
        "copy", str(tmp_path), str(tmp_path / "x"), "--trusted-microsoft-suffixes", "https://evil.example/"
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "shareferry copy: --trusted-microsoft-suffixes entry 'https://evil.example/' is not a domain "
        "suffix: give host names or domains like *.example.net or 127.0.0.1 (no scheme, port or path)"
    ]
