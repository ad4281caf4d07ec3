"""``shareferry emulator`` as a real process: the ready line, accounts, ``--loose``, bad options."""

from __future__ import annotations

import base64
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.pipeline import PipelineRequest
from azure.storage.fileshare import (
    AccountSasPermissions,
    ResourceTypes,
    ShareServiceClient,
    generate_account_sas,
)

from shareferry.emulator.config import WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY
from tests.support.emulator_process import EmulatorProcess, emulator_command

KEY_ONE = base64.b64encode(b"first account key, 32 bytes long").decode()
KEY_TWO = base64.b64encode(b"second account key, also 32 byte").decode()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``shareferry emulator`` expecting it to exit on its own."""
    return subprocess.run(emulator_command(*args), capture_output=True, text=True, timeout=30, check=False)


def named_key_service(process: EmulatorProcess, account: str, key: str) -> ShareServiceClient:
    return ShareServiceClient(
        f"{process.root}/{account}",
        credential={"account_name": account, "account_key": key},
        retry_total=0,
    )


def add_query_parameter(name: str, value: str) -> object:
    """A ``raw_request_hook``: runs before the SDK signs, so the extra parameter is signed too."""

    def hook(request: PipelineRequest[object]) -> None:
        request.http_request.format_parameters({name: value})  # type: ignore[attr-defined]

    return hook


@pytest.fixture(scope="module")
def default_process() -> Iterator[EmulatorProcess]:
    with EmulatorProcess("--port", "0") as process:
        yield process


# ---- the ready line -----------------------------------------------------------------------------


def test_ready_line_names_the_endpoint_and_a_working_connection_string() -> None:
    process = EmulatorProcess("--port", "0")
    try:
        service = ShareServiceClient.from_connection_string(process.connection_string, retry_total=0)
        service.create_share("via-conn-str")
        names = [share.name for share in service.list_shares()]
    finally:
        status = process.terminate()
    assert process.endpoint.startswith("http://127.0.0.1:")
    assert process.endpoint.endswith(f"/{WELL_KNOWN_ACCOUNT}")
    assert f"AccountName={WELL_KNOWN_ACCOUNT};" in process.connection_string
    assert f"AccountKey={WELL_KNOWN_KEY};" in process.connection_string
    assert f"FileEndpoint={process.endpoint};" in process.connection_string
    assert names == ["via-conn-str"]
    assert status == 0
    assert process.stdout_rest == ""  # the ready line is the only line printed


def test_endpoint_alone_is_enough_for_a_loopback_client(default_process: EmulatorProcess) -> None:
    service = ShareServiceClient(
        default_process.endpoint,
        credential={"account_name": WELL_KNOWN_ACCOUNT, "account_key": WELL_KNOWN_KEY},
    )
    assert service.account_name == WELL_KNOWN_ACCOUNT
    assert isinstance(list(service.list_shares()), list)


def test_sigterm_exits_cleanly_and_quietly() -> None:
    process = EmulatorProcess("--port", "0")
    status = process.terminate()
    assert status == 0
    assert process.stderr == ""


# ---- accounts -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_accounts() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(
        "--port", "0", "--account", f"alpha1:{KEY_ONE}", "--account", f"beta2:{KEY_TWO}"
    ) as process:
        yield process


def test_ready_line_uses_the_first_account(two_accounts: EmulatorProcess) -> None:
    assert two_accounts.endpoint.endswith("/alpha1")
    assert f"AccountName=alpha1;AccountKey={KEY_ONE};" in two_accounts.connection_string


def test_two_accounts_are_served_each_with_its_own_key(two_accounts: EmulatorProcess) -> None:
    one = named_key_service(two_accounts, "alpha1", KEY_ONE)
    two = named_key_service(two_accounts, "beta2", KEY_TWO)
    one.create_share("only-in-one")
    two.create_share("only-in-two")
    assert [s.name for s in one.list_shares()] == ["only-in-one"]
    assert [s.name for s in two.list_shares()] == ["only-in-two"]


def test_the_other_accounts_key_is_403(two_accounts: EmulatorProcess) -> None:
    with pytest.raises(ClientAuthenticationError) as denied:
        list(named_key_service(two_accounts, "beta2", KEY_ONE).list_shares())
    assert denied.value.status_code == 403
    assert denied.value.error_code == "AuthenticationFailed"


def test_the_default_account_is_not_served_when_accounts_are_given(two_accounts: EmulatorProcess) -> None:
    with pytest.raises(HttpResponseError) as denied:
        list(named_key_service(two_accounts, WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY).list_shares())
    assert denied.value.status_code == 403


@pytest.mark.parametrize(
    ("account", "message"),
    [
        ("nokey", "--account wants NAME:BASE64KEY"),
        ("emptykey:", "--account wants NAME:BASE64KEY"),
        (f"UPPER:{KEY_ONE}", "account name 'UPPER' must be 3-24 lower-case letters and digits"),
        (f"ab:{KEY_ONE}", "account name 'ab' must be 3-24 lower-case letters and digits"),
        (f"with-dash:{KEY_ONE}", "account name 'with-dash' must be"),
        ("goodname:not*base64!", "the key of account 'goodname' is not valid base64"),
    ],
)
def test_invalid_account_exits_2_with_a_message(account: str, message: str) -> None:
    result = run_cli("--port", "0", "--account", account)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.startswith("shareferry emulator: ")


def test_the_same_account_twice_exits_2() -> None:
    result = run_cli("--port", "0", "--account", f"same1:{KEY_ONE}", "--account", f"same1:{KEY_TWO}")
    assert result.returncode == 2
    assert "account 'same1' is given twice" in result.stderr


# ---- --loose ------------------------------------------------------------------------------------


def account_sas() -> str:
    return generate_account_sas(
        WELL_KNOWN_ACCOUNT,
        WELL_KNOWN_KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def http_get(url: str) -> tuple[int, str]:
    """Status and ``x-ms-error-code`` of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("x-ms-error-code", "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("x-ms-error-code", "")


@pytest.fixture(scope="module")
def loose_process() -> Iterator[EmulatorProcess]:
    with EmulatorProcess("--port", "0", "--loose") as process:
        yield process


def test_unknown_query_parameter_with_shared_key_is_400(default_process: EmulatorProcess) -> None:
    service = ShareServiceClient.from_connection_string(default_process.connection_string, retry_total=0)
    share = service.create_share("strict-shared-key")
    with pytest.raises(HttpResponseError) as rejected:
        share.get_share_properties(raw_request_hook=add_query_parameter("foo", "1"))
    assert rejected.value.status_code == 400
    assert rejected.value.error_code == "InvalidQueryParameterValue"
    assert "'foo'" in str(rejected.value.message)


def test_unknown_query_parameter_with_shared_key_is_ignored_when_loose(
    loose_process: EmulatorProcess,
) -> None:
    service = ShareServiceClient.from_connection_string(loose_process.connection_string, retry_total=0)
    share = service.create_share("loose-shared-key")
    properties = share.get_share_properties(raw_request_hook=add_query_parameter("foo", "1"))
    assert properties.name == "loose-shared-key"


def test_unknown_query_parameter_with_a_sas_is_400(default_process: EmulatorProcess) -> None:
    url = f"{default_process.endpoint}/?comp=list&{account_sas()}"
    assert http_get(url) == (200, "")
    assert http_get(url + "&foo=bar") == (400, "InvalidQueryParameterValue")


def test_unknown_query_parameter_with_a_sas_is_ignored_when_loose(loose_process: EmulatorProcess) -> None:
    assert http_get(f"{loose_process.endpoint}/?comp=list&{account_sas()}&foo=bar") == (200, "")


def test_loose_still_checks_signatures(loose_process: EmulatorProcess) -> None:
    status, code = http_get(f"{loose_process.endpoint}/?comp=list&{account_sas()}".replace("sig=", "sig=AA"))
    assert (status, code) == (403, "AuthenticationFailed")


# ---- listening -----------------------------------------------------------------------------------


def test_port_in_use_exits_1_with_a_clear_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--port", str(port))
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "address already in use" in result.stderr.lower()


def test_port_out_of_range_exits_2() -> None:
    result = run_cli("--port", "70000")
    assert result.returncode == 2
    assert "--port must be 0 to 65535" in result.stderr


def test_fixed_free_port_is_used_as_given() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with EmulatorProcess("--port", str(port)) as process:
        assert process.endpoint == f"http://127.0.0.1:{port}/{WELL_KNOWN_ACCOUNT}"
