"""AzCopy's copy flags through the real ``shareferry`` parser into TransferOptions: spellings,
defaults, the ``--flag=true|false`` form, and one clear usage error for every bad value."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from shareferry.cli.main import build_parser
from shareferry.cli.transfer_flags import (
    block_size_bytes,
    expand_boolean_flags,
    options_from_args,
    parse_metadata,
)
from shareferry.core.errors import UsageError
from shareferry.core.options import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_CONCURRENCY,
    MIB,
    CheckMd5,
    Overwrite,
    TransferOptions,
)


def parse(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(["copy", "src", "dst", *flags])


def options(*flags: str, environ: dict[str, str] | None = None) -> TransferOptions:
    return options_from_args(parse(*flags), environ=environ or {})


def usage_error(capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    """The one line argparse prints for a bad flag (it exits with status 2)."""
    with pytest.raises(SystemExit) as exited:
        parse(*flags)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("shareferry copy: ")
    return err


def test_defaults_are_azcopys() -> None:
    opts = options()
    assert opts == TransferOptions(concurrency=DEFAULT_CONCURRENCY)
    assert opts.overwrite is Overwrite.TRUE
    assert opts.check_md5 is CheckMd5.FAIL_IF_DIFFERENT
    assert opts.check_length is True
    assert opts.recursive is False and opts.put_md5 is False and opts.dry_run is False
    assert opts.block_size == DEFAULT_BLOCK_SIZE and opts.cap_mbps is None
    assert opts.guess_mime_type is True


def test_every_switch_sets_its_option() -> None:
    opts = options(
        "--recursive",
        "--put-md5",
        "--preserve-smb-info",
        "--preserve-permissions",
        "--dry-run",
        "--decompress",
        "--follow-symlinks",
        "--no-guess-mime-type",
    )
    assert opts.recursive and opts.put_md5 and opts.preserve_smb_info and opts.preserve_smb_permissions
    assert opts.dry_run and opts.decompress and opts.follow_symlinks
    assert opts.guess_mime_type is False


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("--recursive=true", True),
        ("--recursive=false", False),
        ("--recursive=True", True),
        ("--recursive=1", True),
    ],
)
def test_boolean_flags_take_azcopys_equals_form(flag: str, expected: bool) -> None:
    assert options(flag).recursive is expected


def test_check_length_defaults_true_and_turns_off_with_equals_false() -> None:
    assert options("--check-length").check_length is True
    assert options("--check-length=false").check_length is False


def test_the_older_smb_permissions_name_is_the_same_flag() -> None:
    assert options("--preserve-smb-permissions").preserve_smb_permissions is True
    assert options("--preserve-smb-permissions=true").preserve_smb_permissions is True
    assert options("--preserve-permissions=false").preserve_smb_permissions is False


def test_the_last_spelling_of_a_switch_wins() -> None:
    assert options("--recursive", "--recursive=false").recursive is False
    assert options("--recursive=false", "--recursive").recursive is True


def test_a_boolean_flag_does_not_swallow_the_next_argument() -> None:
    args = build_parser().parse_args(["copy", "--recursive", "src", "dst"])
    assert (args.source, args.destination, args.recursive) == ("src", "dst", True)


def test_equals_form_after_double_dash_is_left_alone() -> None:
    assert expand_boolean_flags(["--recursive=false", "--", "--recursive=true"]) == [
        "--no-recursive",
        "--",
        "--recursive=true",
    ]


def test_a_non_boolean_value_for_a_switch_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "--recursive=maybe")
    assert "--recursive takes true or false, not 'maybe'" in err


def test_an_unknown_flag_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert "unrecognized arguments: --bogus" in usage_error(capsys, "--bogus")


def test_abbreviated_flags_are_not_guessed(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--rec" in usage_error(capsys, "--rec")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", Overwrite.TRUE), ("FALSE", Overwrite.FALSE), ("ifsourcenewer", Overwrite.IF_SOURCE_NEWER)],
)
def test_overwrite_values_ignore_case(value: str, expected: Overwrite) -> None:
    assert options("--overwrite", value).overwrite is expected


@pytest.mark.parametrize("mode", list(CheckMd5))
def test_check_md5_modes(mode: CheckMd5) -> None:
    assert options("--check-md5", mode.value.lower()).check_md5 is mode


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--overwrite", "sometimes"), "--overwrite must be one of true, false, ifSourceNewer, prompt"),
        (("--check-md5", "Strict"), "--check-md5 must be one of NoCheck, LogOnly"),
        (("--include-after", "yesterday"), "--include-after 'yesterday' is not an ISO 8601 date/time"),
        (("--include-before", "2024-13-01"), "--include-before '2024-13-01' is not an ISO 8601"),
        (("--metadata", "novalue"), "--metadata entry 'novalue' is not NAME=VALUE"),
        (
            ("--block-size-mb", "-1"),
            "--block-size-mb must be a number of MiB from 0 to 4000 (0: the default, 8 MiB), not -1",
        ),
        (
            ("--block-size-mb", "5000"),
            "--block-size-mb must be a number of MiB from 0 to 4000 (0: the default, 8 MiB), not 5000",
        ),
        (
            ("--cap-mbps", "-5"),
            "--cap-mbps must be a number of megabits per second from 0 to 1000000 (0: no cap), not -5",
        ),
        (
            ("--shard-index", "3", "--shard-count", "3"),
            "--shard-index must be a whole number from 0 to 2 (one less than --shard-count 3), not 3",
        ),
        (
            ("--include-after", "2024-02-01T00:00:00Z", "--include-before", "2024-01-01T00:00:00Z"),
            "--include-after is later than --include-before",
        ),
    ],
)
def test_bad_values_are_usage_errors(flags: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError) as raised:
        options(*flags)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "flags", [("--block-size-mb", "big"), ("--cap-mbps", "nan"), ("--shard-count", "2.5")]
)
def test_numbers_that_are_not_numbers_stop_the_parser(
    capsys: pytest.CaptureFixture[str], flags: tuple[str, ...]
) -> None:
    err = usage_error(capsys, *flags)
    assert flags[0] in err and flags[1] in err


def test_block_size_takes_decimal_mib_and_zero_means_default() -> None:
    assert options("--block-size-mb", "0.25").block_size == MIB // 4
    assert options("--block-size-mb", "4").block_size == 4 * MIB
    assert block_size_bytes(0) == DEFAULT_BLOCK_SIZE
    assert block_size_bytes(None) == DEFAULT_BLOCK_SIZE


def test_cap_mbps_zero_means_no_cap() -> None:
    assert options("--cap-mbps", "0").cap_mbps is None
    assert options("--cap-mbps", "250.5").cap_mbps == 250.5


def test_filters_collect_lists_from_every_spelling() -> None:
    opts = options(
        "--include-pattern",
        "*.txt;*.csv",
        "--include-pattern",
        "*.md",
        "--exclude-pattern",
        "~*",
        "--include-path",
        "a/b;c",
        "--exclude-path",
        "c/tmp",
        "--include-regex",
        r"^logs/\d+",
        "--exclude-regex",
        r"\.bak$",
    )
    assert opts.filters.include_patterns == ("*.txt;*.csv", "*.md")
    assert opts.filters.exclude_patterns == ("~*",)
    assert opts.filters.include_paths == ("a/b;c",)
    assert opts.filters.exclude_paths == ("c/tmp",)
    assert opts.filters.include_regex == (r"^logs/\d+",)
    assert opts.filters.exclude_regex == (r"\.bak$",)


def test_dates_are_iso8601_in_utc() -> None:
    opts = options("--include-after", "2020-08-19T15:04:00+02:00", "--include-before", "2020-08-20T00:00:00Z")
    assert opts.filters.include_after == datetime(2020, 8, 19, 13, 4, tzinfo=UTC)
    assert opts.filters.include_before == datetime(2020, 8, 20, tzinfo=UTC)


def test_metadata_pairs() -> None:
    assert parse_metadata("project=ferry;owner=ops;empty=;eq=a=b") == {
        "project": "ferry",
        "owner": "ops",
        "empty": "",
        "eq": "a=b",
    }
    assert options("--metadata", "k=v;k2=v2").metadata == {"k": "v", "k2": "v2"}
    with pytest.raises(UsageError, match="names 'K' twice"):
        parse_metadata("k=1;K=2")
    with pytest.raises(UsageError, match="is not NAME=VALUE"):
        parse_metadata("9lives=cat")


def test_content_type_implies_no_guessing() -> None:
    opts = options("--content-type", "text/csv")
    assert opts.content_type == "text/csv" and opts.guess_mime_type is False


def test_sharding_flags() -> None:
    opts = options("--shard-index", "2", "--shard-count", "4")
    assert (opts.shard_index, opts.shard_count) == (2, 4)


def test_concurrency_comes_from_the_environment() -> None:
    assert options(environ={"SHAREFERRY_CONCURRENCY": "7"}).concurrency == 7
    with pytest.raises(UsageError, match="SHAREFERRY_CONCURRENCY"):
        options(environ={"SHAREFERRY_CONCURRENCY": "lots"})


def test_from_to_is_passed_through_for_the_core_to_check() -> None:
    assert parse("--from-to", "LocalFile").from_to == "LocalFile"
    assert parse().from_to is None


def test_cp_is_an_alias() -> None:
    args = build_parser().parse_args(["cp", "a", "b", "--recursive=true"])
    assert args.recursive is True and args.source == "a"
