"""Azure's limits on names and on the service properties document, through the real SDK.

Names: invalid characters and control characters (a newline included) are 400
``InvalidResourceName``; a segment of more than 255 characters (UTF-16 code units) is 400
``OutOfRangeInput``; a path of more than 2,048 characters or more than 250 levels of
subdirectories is 400 ``InvalidFileOrDirectoryPathName``. Set Service Properties round-trips what
the SDK sends, keeps what a later call leaves out, and refuses a bad document.
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.fileshare import (
    CorsRule,
    Metrics,
    RetentionPolicy,
    ShareClient,
    ShareProtocolSettings,
    ShareServiceClient,
    ShareSmbSettings,
    SmbMultichannel,
)


def refused(call: object) -> HttpResponseError:
    assert callable(call)
    with pytest.raises(HttpResponseError) as info:
        call()
    return info.value


# ---- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["new\nline", "tab\there", "nul\x00byte", "esc\x1b", "unit\x1fsep", "CON", "lpt1", "aux", "a\\b", "a|b"],
    ids=["newline", "tab", "nul", "esc", "unit-separator", "CON", "lpt1", "aux", "backslash", "pipe"],
)
def test_an_invalid_name_is_400_invalid_resource_name(share: ShareClient, name: str) -> None:
    for call in (
        lambda: share.get_file_client(name).create_file(0),
        lambda: share.create_directory(name),
    ):
        error = refused(call)
        assert error.status_code == 400
        assert error.error_code == "InvalidResourceName"
    assert list(share.list_directories_and_files()) == []


def test_a_newline_in_a_name_is_refused_on_reads_too(share: ShareClient) -> None:
    error = refused(lambda: share.get_file_client("a\nb").get_file_properties())
    assert error.status_code == 400
    assert error.error_code == "InvalidResourceName"  # the SDK reads it from x-ms-error-code (HEAD)


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("a" * 255, True),
        ("a" * 256, False),
        ("é" * 255, True),  # one UTF-16 unit each
        ("\U0001f600" * 127 + "a", True),  # 255 UTF-16 units
        ("\U0001f600" * 128, False),  # 256 UTF-16 units: over, though only 128 characters
    ],
    ids=["255-ascii", "256-ascii", "255-accented", "255-units-emoji", "256-units-emoji"],
)
def test_a_segment_may_have_255_characters(share: ShareClient, name: str, accepted: bool) -> None:
    client = share.get_file_client(name)
    if accepted:
        client.upload_file(b"ok")
        assert [entry["name"] for entry in share.list_directories_and_files()] == [name]
        assert client.download_file().readall() == b"ok"
    else:
        error = refused(lambda: client.create_file(0))
        assert error.status_code == 400
        assert error.error_code == "OutOfRangeInput"


def test_a_path_may_have_2048_characters(share: ShareClient) -> None:
    parents = ["d" * 250 + str(i) for i in range(8)]  # 8 x 251 + 7 slashes = 2015 characters
    for depth in range(1, len(parents) + 1):
        share.create_directory("/".join(parents[:depth]))
    longest = "/".join(parents) + "/" + "f" * 32  # 2048 characters
    assert len(longest) == 2048
    share.get_file_client(longest).upload_file(b"deep")
    assert share.get_file_client(longest).download_file().readall() == b"deep"
    error = refused(lambda: share.get_file_client(longest + "x").create_file(0))
    assert error.status_code == 400
    assert error.error_code == "InvalidFileOrDirectoryPathName"
    assert "too long" in error.message


def test_a_path_may_have_250_levels_of_subdirectories(share: ShareClient) -> None:
    path = ""
    for _ in range(250):
        path = f"{path}/d" if path else "d"
        share.create_directory(path)
    share.get_file_client(f"{path}/f").upload_file(b"at the bottom")
    assert share.get_file_client(f"{path}/f").download_file().readall() == b"at the bottom"
    error = refused(lambda: share.create_directory(f"{path}/d"))
    assert error.status_code == 400
    assert error.error_code == "InvalidFileOrDirectoryPathName"
    assert "too many subdirectories" in error.message
    error = refused(lambda: share.get_file_client(f"{path}/d/f").create_file(0))
    assert error.error_code == "InvalidFileOrDirectoryPathName"


def test_a_share_name_with_a_newline_is_refused(service: ShareServiceClient) -> None:
    error = refused(lambda: service.create_share("share\n"))
    assert error.status_code == 400
    assert error.error_code == "InvalidResourceName"
    assert [share.name for share in service.list_shares()] == []


# ---- service properties ---------------------------------------------------------------------------


def test_service_properties_round_trip(service: ShareServiceClient) -> None:
    hour = Metrics(enabled=True, include_apis=True, retention_policy=RetentionPolicy(enabled=True, days=7))
    cors = [
        CorsRule(["https://a.example"], ["GET", "PUT"], max_age_in_seconds=60, exposed_headers=["x-ms-*"])
    ]
    protocol = ShareProtocolSettings(smb=ShareSmbSettings(multichannel=SmbMultichannel(enabled=True)))
    service.set_service_properties(hour_metrics=hour, cors=cors, protocol=protocol)
    properties = service.get_service_properties()
    assert properties["hour_metrics"].enabled is True
    assert properties["hour_metrics"].retention_policy.days == 7
    assert properties["minute_metrics"].enabled is False  # the default, never set
    assert [rule.allowed_origins for rule in properties["cors"]] == ["https://a.example"]
    assert properties["cors"][0].max_age_in_seconds == 60
    assert properties["protocol"].smb.multichannel.enabled is True


def test_what_a_later_call_leaves_out_is_kept(service: ShareServiceClient) -> None:
    service.set_service_properties(cors=[CorsRule(["*"], ["GET"])])
    service.set_service_properties(minute_metrics=Metrics(enabled=False))
    properties = service.get_service_properties()
    assert [rule.allowed_origins for rule in properties["cors"]] == ["*"]


def test_a_bad_value_in_the_document_is_refused_and_changes_nothing(service: ShareServiceClient) -> None:
    service.set_service_properties(cors=[CorsRule(["*"], ["GET"])])
    too_many = [CorsRule([f"https://{i}.example"], ["GET"]) for i in range(6)]
    error = refused(lambda: service.set_service_properties(cors=too_many))
    assert error.status_code == 400
    assert error.error_code == "InvalidXmlDocument"
    error = refused(
        lambda: service.set_service_properties(
            hour_metrics=Metrics(enabled=True, retention_policy=RetentionPolicy(enabled=True, days=366))
        )
    )
    assert error.error_code == "InvalidXmlDocument"
    assert [rule.allowed_origins for rule in service.get_service_properties()["cors"]] == ["*"]
