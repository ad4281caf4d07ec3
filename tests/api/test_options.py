"""A CopyJob's options become the same core option objects the CLI builds from the same flags,
and every bad value is refused with reason InvalidOptions and a message naming the option."""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shareferry.api.copyjob import SpecError, build_request, parse_copyjob
from shareferry.api.options import spec_message, transfer_options
from shareferry.cli import copy_cmd, sync_cmd
from shareferry.cli.main import build_parser
from shareferry.cli.transfer_flags import options_from_args
from shareferry.core.jobs import CopyRequest, SyncRequest
from shareferry.core.options import DEFAULT_CONCURRENCY, MIB, CheckMd5, Overwrite, TransferOptions

SHARE = "https://contosodata.file.core.windows.net/reports/incoming"
OTHER_SHARE = "https://contosodr.file.core.windows.net/reports"

#: A realistic copy: filters of every kind, dates, properties, sizes and a rate cap.
COPY_FLAGS = [
    "--include-pattern", "*.csv", "--include-pattern", "*.txt;*.json",
    "--exclude-pattern", "*.tmp",
    "--include-path", "2024", "--exclude-path", "2024/private",
    "--include-regex", "^2024/", "--exclude-regex", r"\.bak$",
    "--include-after", "2024-01-01T00:00:00Z", "--include-before", "2024-12-31T23:59:59+02:00",
    "--overwrite", "ifSourceNewer", "--put-md5", "--check-md5", "FailIfDifferentOrMissing",
    "--preserve-smb-info", "--preserve-permissions", "--block-size-mb", "0.25", "--cap-mbps", "500",
    "--check-length=false", "--follow-symlinks", "--metadata", "team=finance;tier=gold",
]  # fmt: skip
COPY_OPTIONS: dict[str, Any] = {
    "recursive": True,
    "includePattern": ["*.csv", "*.txt;*.json"],
    "excludePattern": ["*.tmp"],
    "includePath": ["2024"],
    "excludePath": ["2024/private"],
    "includeRegex": ["^2024/"],
    "excludeRegex": [r"\.bak$"],
    "includeAfter": "2024-01-01T00:00:00Z",
    "includeBefore": "2024-12-31T23:59:59+02:00",
    "overwrite": "ifSourceNewer",
    "putMd5": True,
    "checkMd5": "FailIfDifferentOrMissing",
    "preserveSmbInfo": True,
    "preserveSmbPermissions": True,
    "blockSizeMb": 0.25,
    "capMbps": 500,
    "checkLength": False,
    "followSymlinks": True,
    "metadata": {"team": "finance", "tier": "gold"},
}
SYNC_FLAGS = [
    "--preserve-smb-info", "--preserve-permissions", "--exclude-pattern", "*.tmp", "--dry-run",
    "--delete-destination", "true", "--compare-hash", "MD5", "--max-delete-percent", "10",
    "--include-attributes", "A;r", "--exclude-attributes", "H", "--s2s-preserve-access-tier=false",
    "--trusted-microsoft-suffixes", "*.Example.net;127.0.0.1",
]  # fmt: skip
SYNC_OPTIONS: dict[str, Any] = {
    "preserveSmbInfo": True,
    "preserveSmbPermissions": True,
    "excludePattern": ["*.tmp"],
    "dryRun": True,
    "deleteDestination": "true",
    "compareHash": "MD5",
    "maxDeletePercent": 10,
    "includeAttributes": ["A;r"],
    "excludeAttributes": ["H"],
    "s2sPreserveAccessTier": False,
    "trustedMicrosoftSuffixes": ["*.Example.net;127.0.0.1"],
}


def cli_args(command: str, *argv: str) -> argparse.Namespace:
    return build_parser().parse_args([command, *argv])


def copy_spec(options: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "source": {"pvc": {"claimName": "data"}},
        "destination": {"url": SHARE, "credentials": {"secretName": "s"}},
        "options": options,
        **changes,
    }


def sync_spec(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "mode": "sync",
        "source": {"url": SHARE, "credentials": {"secretName": "a"}},
        "destination": {"url": OTHER_SHARE, "credentials": {"secretName": "b"}},
        "options": options,
    }


def options_refusal(options: dict[str, Any], *, mode: str = "copy") -> str:
    spec = sync_spec(options) if mode == "sync" else copy_spec(options)
    with pytest.raises(SpecError) as caught:
        parse_copyjob(spec)
    assert caught.value.reason == "InvalidOptions"
    return caught.value.message


# -- the same objects both ways -----------------------------------------------------------------


def test_a_copy_builds_the_request_the_cli_builds(tmp_path: Path) -> None:
    environ = {"SHAREFERRY_CONCURRENCY": "64"}
    argv = [str(tmp_path), SHARE, "--from-to", "LocalFile", "--recursive", *COPY_FLAGS]
    argv += ["--shard-index", "1", "--shard-count", "3"]
    from_cli = copy_cmd._request(cli_args("copy", *argv), environ)
    spec = parse_copyjob(copy_spec(COPY_OPTIONS, parallelism=3))
    from_spec = build_request(
        spec, source=str(tmp_path), destination=SHARE, shard_index=1, shard_count=3, environ=environ
    )
    assert isinstance(from_spec, CopyRequest)
    # The CLI's job log records the command line it was given; a worker's has none to record.
    assert from_cli.logging.command_line is not None
    assert from_spec == replace(from_cli, logging=from_spec.logging)
    options = from_spec.options
    assert (options.concurrency, options.block_size, options.cap_mbps) == (64, MIB // 4, 500)
    assert options.filters.include_after == datetime(2024, 1, 1, tzinfo=UTC)
    assert (options.overwrite, options.check_md5) == (
        Overwrite.IF_SOURCE_NEWER,
        CheckMd5.FAIL_IF_DIFFERENT_OR_MISSING,
    )


def test_a_sync_builds_the_request_the_cli_builds() -> None:
    from_cli = sync_cmd._request(cli_args("sync", SHARE, OTHER_SHARE, *SYNC_FLAGS), {})
    from_spec = build_request(parse_copyjob(sync_spec(SYNC_OPTIONS)), source=SHARE, destination=OTHER_SHARE)
    assert isinstance(from_spec, SyncRequest)
    assert from_spec == SyncRequest(SHARE, OTHER_SHARE, "FileFile", from_cli.options, from_cli.sync)
    assert from_cli.from_to is None  # the CLI infers it from the hosts; the spec says it
    options = from_spec.options
    assert (options.filters.include_attributes, options.filters.exclude_attributes) == (("A;r",), ("H",))
    assert options.s2s_preserve_access_tier is False
    assert options.trusted_suffixes == ("example.net", "127.0.0.1")


def test_no_options_are_the_cli_defaults_but_recursive() -> None:
    spec = parse_copyjob(copy_spec({}))
    assert spec.options == {"recursive": True}
    transfer, sync = transfer_options(spec.options, mode="copy")
    assert transfer == options_from_args(cli_args("copy", "a", "b", "--recursive"), environ={})
    assert transfer == TransferOptions(recursive=True, concurrency=DEFAULT_CONCURRENCY)
    assert sync is None


def test_recursive_false_is_kept() -> None:
    transfer, _ = transfer_options(parse_copyjob(copy_spec({"recursive": False})).options, mode="copy")
    assert transfer.recursive is False


def test_the_specs_concurrency_wins_over_the_environment() -> None:
    spec = parse_copyjob(copy_spec({"concurrency": 8}))
    transfer, _ = transfer_options(spec.options, mode="copy", environ={"SHAREFERRY_CONCURRENCY": "64"})
    assert transfer.concurrency == 8


def test_a_yaml_timestamp_is_taken_as_its_iso_text() -> None:
    moment = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
    spec = parse_copyjob(copy_spec({"includeAfter": moment}))
    transfer, _ = transfer_options(spec.options, mode="copy")
    assert transfer.filters.include_after == moment


def test_a_shard_outside_the_job_is_refused() -> None:
    spec = parse_copyjob(copy_spec({}))
    with pytest.raises(SpecError, match="shard 3 of 3 does not exist: the index must be 0 to 2"):
        build_request(spec, source="/data", destination=SHARE, shard_index=3, shard_count=3)


# -- one refusal per rule ---------------------------------------------------------------------


def test_a_bad_regex() -> None:
    message = options_refusal({"includeRegex": ["(unclosed"]})
    assert message.startswith("spec.options.includeRegex '(unclosed' is not a valid regular expression: ")


def test_a_bad_date() -> None:
    assert options_refusal({"includeBefore": "next week"}).startswith(
        "spec.options.includeBefore 'next week' is not an ISO 8601 date/time"
    )


def test_dates_that_no_file_can_match() -> None:
    message = options_refusal(
        {"includeAfter": "2024-02-01T00:00:00Z", "includeBefore": "2024-01-01T00:00:00Z"}
    )
    assert message == "spec.options.includeAfter is later than spec.options.includeBefore: no file can match"


def test_overwrite_prompt_needs_a_terminal() -> None:
    assert options_refusal({"overwrite": "prompt"}) == (
        "spec.options.overwrite: prompt needs a terminal and a CopyJob runs unattended: "
        "use true, false or ifSourceNewer"
    )


def test_delete_destination_prompt_needs_a_terminal() -> None:
    assert options_refusal({"deleteDestination": "prompt"}, mode="sync") == (
        'spec.options.deleteDestination: prompt needs a terminal and a CopyJob runs unattended: use "true" or "false"'
    )


def test_an_unknown_attribute_letter() -> None:
    assert options_refusal({"includeAttributes": ["A;X"]}) == (
        "spec.options.includeAttributes has an unknown attribute 'X': use the letters "
        "R, A, S, H, C, N, E, T, O, I separated by ';' (for example A;S;R)"
    )


def test_attribute_filters_need_an_azure_files_source() -> None:
    assert options_refusal({"excludeAttributes": ["H"]}) == (
        "spec.options.excludeAttributes applies to Azure Files sources only: "
        "a local file on Linux has no Windows attributes"
    )


def test_a_trusted_suffix_that_is_a_url() -> None:
    assert options_refusal({"trustedMicrosoftSuffixes": ["https://evil.example/"]}) == (
        "spec.options.trustedMicrosoftSuffixes entry 'https://evil.example/' is not a domain suffix: "
        "give host names or domains like *.example.net or 127.0.0.1 (no scheme, port or path)"
    )


def test_an_unknown_overwrite_value() -> None:
    assert options_refusal({"overwrite": "sometimes"}) == (
        "spec.options.overwrite must be one of true, false, ifSourceNewer, prompt, not 'sometimes'"
    )


def test_an_unknown_compare_hash() -> None:
    assert options_refusal({"compareHash": "SHA1"}, mode="sync") == (
        "spec.options.compareHash must be one of None, MD5, not 'SHA1'"
    )


def test_an_unquoted_boolean_where_text_is_wanted() -> None:
    assert options_refusal({"overwrite": False}) == (
        'spec.options.overwrite must be a string, not boolean (quote it: "false")'
    )


def test_a_list_given_as_text() -> None:
    assert options_refusal({"excludePattern": "*.tmp"}) == (
        "spec.options.excludePattern must be a list of strings, not string"
    )


def test_an_empty_pattern_entry() -> None:
    assert options_refusal({"includePattern": [";"]}) == (
        "spec.options.includePattern ';' names nothing: give one or more entries separated by ';'"
    )


def test_a_path_filter_outside_the_source() -> None:
    assert options_refusal({"includePath": ["../x"]}) == (
        "spec.options.includePath '../x' must stay inside the source: '..' is not allowed"
    )


def test_a_metadata_name_that_is_no_identifier() -> None:
    assert options_refusal({"metadata": {"9lives": "cat"}}) == (
        "spec.options.metadata name '9lives' must be a letter or '_' followed by letters, digits or '_'"
    )


def test_a_metadata_name_given_twice() -> None:
    assert options_refusal({"metadata": {"team": "a", "Team": "b"}}) == (
        "spec.options.metadata names 'Team' twice (names are case-insensitive)"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"blockSizeMb": 4001}, "spec.options.blockSizeMb must be at most 4000, not 4001"),
        ({"blockSizeMb": 0}, "spec.options.blockSizeMb must be greater than 0, not 0"),
        ({"capMbps": -1}, "spec.options.capMbps must be greater than 0, not -1"),
        ({"concurrency": 0}, "spec.options.concurrency must be at least 1, not 0"),
        ({"concurrency": 2.5}, "spec.options.concurrency must be a whole number, not number"),
        ({"putMd5": "yes"}, "spec.options.putMd5 must be true or false, not string"),
    ],
)
def test_numbers_and_switches(options: dict[str, Any], message: str) -> None:
    assert options_refusal(options) == message


def test_a_block_size_over_4_mib_towards_a_share_is_refused_not_cut() -> None:
    message = options_refusal({"blockSizeMb": 4.5})  # the destination is an Azure Files URL
    assert message.startswith("spec.options.blockSizeMb must be"), message
    assert "4.5" in message
    download = copy_spec(
        {"blockSizeMb": 4.5},
        source={"url": SHARE, "credentials": {"secretName": "s"}},
        destination={"pvc": {"claimName": "data"}},
    )
    assert parse_copyjob(download).options["blockSizeMb"] == 4.5  # a local disk takes it


def test_max_delete_percent_is_a_percentage() -> None:
    assert options_refusal({"maxDeletePercent": 101}, mode="sync") == (
        "spec.options.maxDeletePercent must be at most 100, not 101"
    )


def test_compare_hash_and_mirror_mode_exclude_each_other() -> None:
    assert options_refusal({"compareHash": "MD5", "mirrorMode": True}, mode="sync") == (
        "spec.options.compareHash and spec.options.mirrorMode cannot be combined: choose one way to compare"
    )


@pytest.mark.parametrize(
    "options",
    [{"deleteDestination": "true"}, {"maxDeletePercent": 5}, {"compareHash": "MD5"}, {"mirrorMode": True}],
    ids=lambda options: next(iter(options)),
)
def test_sync_options_need_mode_sync(options: dict[str, Any]) -> None:
    (name,) = options
    assert options_refusal(options) == f"spec.options.{name} needs mode: sync (this CopyJob has mode: copy)"


def test_delete_destination_false_is_fine_in_a_copy() -> None:
    parse_copyjob(copy_spec({"deleteDestination": "false"}))


def test_overwrite_does_not_apply_to_a_sync() -> None:
    assert options_refusal({"overwrite": "false"}, mode="sync") == (
        "spec.options.overwrite does not apply to mode: sync (it copies what differs; see "
        "spec.options.mirrorMode): remove it"
    )


def test_an_unknown_option() -> None:
    assert options_refusal({"putMD5": True}) == (
        'spec.options.putMD5: unknown field "spec.options.putMD5" (did you mean putMd5?)'
    )


def test_flag_names_are_renamed_outside_quoted_values_only() -> None:
    message = "--include-regex '--include-regex' is not valid; see --overwrite and --unknown-flag"
    assert spec_message(message, where="spec.options") == (
        "spec.options.includeRegex '--include-regex' is not valid; see spec.options.overwrite and --unknown-flag"
    )
