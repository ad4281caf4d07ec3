"""Refused share properties through the real Azure SDK: the error names the refused header and
its value (Azure's HeaderName / HeaderValue), so a client can tell a bad quota from a bad tier."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.fileshare import ShareClient, ShareServiceClient

from shareferry.emulator import EmulatorConfig, RunningEmulator


def refusal(call: Callable[[], object]) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as info:
        call()
    return info.value


def test_unknown_access_tier_names_the_header(share: ShareClient) -> None:
    error = refusal(lambda: share.set_share_properties(access_tier="Glacier"))
    assert (error.status_code, error.error_code) == (400, "InvalidHeaderValue")
    assert error.additional_info == {"headername": "x-ms-access-tier", "headervalue": "Glacier"}
    assert share.get_share_properties().access_tier == "TransactionOptimized"


def test_create_with_a_quota_too_large_names_the_header(service: ShareServiceClient) -> None:
    error = refusal(lambda: service.create_share("huge", quota=102401, access_tier="Hot"))
    assert error.additional_info == {"headername": "x-ms-share-quota", "headervalue": "102401"}
    assert [s.name for s in service.list_shares()] == []


def test_quota_below_usage_names_the_header(tmp_path: Path) -> None:
    # On disk, a large file is a sparse file: gigabytes of usage cost nothing.
    with RunningEmulator(EmulatorConfig(data_dir=tmp_path)) as emulator:
        account = emulator.account()
        service = ShareServiceClient(
            emulator.account_url(), credential={"account_name": account.name, "account_key": account.key}
        )
        share = service.create_share("full", quota=5)
        share.get_file_client("big.bin").create_file(size=2 * 1024**3 + 1)
        error = refusal(lambda: share.set_share_quota(2))
        assert share.get_share_properties().quota == 5
        share.set_share_quota(3)
        assert share.get_share_properties().quota == 3
    assert (error.status_code, error.error_code) == (400, "InvalidHeaderValue")
    assert error.additional_info == {"headername": "x-ms-share-quota", "headervalue": "2"}
