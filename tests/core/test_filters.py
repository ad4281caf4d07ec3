"""AzCopy's filters: each flag alone and combined, as the azcopy copy reference describes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shareferry.core.errors import UsageError
from shareferry.core.filters import ObjectFilter, parse_iso8601
from shareferry.core.objects import StoredObject
from shareferry.core.options import Filters

NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ONE_SECOND = timedelta(seconds=1)


def _file(relative_path: str, *, modified: datetime | None = NOON) -> StoredObject:
    # The source root is ``src`` in the backend: the object's own path carries that prefix,
    # the filters only ever see the path relative to the source root.
    return StoredObject(path=f"src/{relative_path}", is_dir=False, size=1, last_modified=modified)


def _accepts(filters: Filters, relative_path: str, *, modified: datetime | None = NOON) -> bool:
    return ObjectFilter.build(filters).accepts_file(_file(relative_path, modified=modified), relative_path)


# (case, filters, relative path, expected)
FILE_CASES = [
    ("no filter", Filters(), "a/b/c.txt", True),
    # --include-pattern: the file name only, ';' separates alternatives
    ("pattern matches name", Filters(include_patterns=("*.txt",)), "deep/dir/x.txt", True),
    ("pattern misses name", Filters(include_patterns=("*.txt",)), "deep/dir/x.pdf", False),
    ("pattern ignores dirs", Filters(include_patterns=("docs*",)), "docs/readme.md", False),
    ("pattern with slash never", Filters(include_patterns=("docs/*.md",)), "docs/readme.md", False),
    ("semicolon list 1st", Filters(include_patterns=("*.jpg;*.pdf;exactName",)), "a/b.jpg", True),
    ("semicolon list 3rd", Filters(include_patterns=("*.jpg;*.pdf;exactName",)), "a/exactName", True),
    ("semicolon list none", Filters(include_patterns=("*.jpg;*.pdf;exactName",)), "a/exactNameX", False),
    ("several values", Filters(include_patterns=("*.jpg", "*.pdf")), "x.pdf", True),
    ("trailing semicolon", Filters(include_patterns=("*.txt;",)), "x.txt", True),
    ("question mark", Filters(include_patterns=("file?.txt",)), "file1.txt", True),
    ("question mark one", Filters(include_patterns=("file?.txt",)), "file10.txt", False),
    ("char set", Filters(include_patterns=("file[12].txt",)), "file2.txt", True),
    ("case sensitive", Filters(include_patterns=("*.TXT",)), "x.txt", False),
    # --exclude-pattern
    ("exclude pattern", Filters(exclude_patterns=("foo*;*bar",)), "dir/foo1", False),
    ("exclude pattern end", Filters(exclude_patterns=("foo*;*bar",)), "dir/xbar", False),
    ("exclude pattern miss", Filters(exclude_patterns=("foo*;*bar",)), "foo/x", True),
    # --include-path: relative to the source root, files or directories, no wildcards
    ("include file path", Filters(include_paths=("docs/a.pdf",)), "docs/a.pdf", True),
    ("include path other", Filters(include_paths=("docs/a.pdf",)), "docs/b.pdf", False),
    ("include dir path", Filters(include_paths=("photos;docs/a.pdf",)), "photos/2024/x.jpg", True),
    ("include dir is segment", Filters(include_paths=("photos",)), "photos2/x.jpg", False),
    ("include path leading ./", Filters(include_paths=("./photos/",)), "photos/x.jpg", True),
    ("include path star literal", Filters(include_paths=("ph*",)), "photos/x.jpg", False),
    ("include path case", Filters(include_paths=("Photos",)), "photos/x.jpg", False),
    # --exclude-path
    ("exclude dir path", Filters(exclude_paths=("logs",)), "logs/app/1.log", False),
    ("exclude path segment", Filters(exclude_paths=("logs",)), "logs2/1.log", True),
    ("exclude file path", Filters(exclude_paths=("a/b.txt",)), "a/b.txt", False),
    ("exclude path sibling", Filters(exclude_paths=("a/b.txt",)), "a/c.txt", True),
    # --include-regex / --exclude-regex: searched in the relative path
    ("regex searches path", Filters(include_regex=(r"^2024/.*\.csv$",)), "2024/q1/x.csv", True),
    ("regex anchored miss", Filters(include_regex=(r"^2024/",)), "old/2024/x.csv", False),
    ("regex unanchored", Filters(include_regex=("2024",)), "old/2024/x.csv", True),
    ("regex alternatives", Filters(include_regex=(r"\.csv$;\.tsv$",)), "x.tsv", True),
    ("exclude regex", Filters(exclude_regex=("tmp",)), "a/tmp/x", False),
    ("exclude regex miss", Filters(exclude_regex=("^tmp",)), "a/tmp/x", True),
    # excludes win over includes
    (
        "exclude pattern wins",
        Filters(include_patterns=("*.txt",), exclude_patterns=("secret*",)),
        "secret.txt",
        False,
    ),
    (
        "exclude path wins",
        Filters(include_paths=("docs",), exclude_paths=("docs/private",)),
        "docs/private/a",
        False,
    ),
    (
        "exclude path spares",
        Filters(include_paths=("docs",), exclude_paths=("docs/private",)),
        "docs/public/a",
        True,
    ),
    ("exclude regex wins", Filters(include_regex=("docs",), exclude_regex=("draft",)), "docs/draft1", False),
    # different include flags must all pass
    ("path and pattern", Filters(include_paths=("docs",), include_patterns=("*.md",)), "docs/a.md", True),
    ("path not pattern", Filters(include_paths=("docs",), include_patterns=("*.md",)), "docs/a.txt", False),
    ("pattern not path", Filters(include_paths=("docs",), include_patterns=("*.md",)), "src/a.md", False),
]


@pytest.mark.parametrize(
    ("filters", "relative_path", "expected"),
    [case[1:] for case in FILE_CASES],
    ids=[case[0] for case in FILE_CASES],
)
def test_accepts_file(filters: Filters, relative_path: str, expected: bool) -> None:
    assert _accepts(filters, relative_path) is expected


# (case, filters, modified, expected): both bounds are inclusive, as the reference says
# ("modified on or after", "modified before or on").
DATE_CASES = [
    ("after: same instant", Filters(include_after=NOON), NOON, True),
    ("after: a second later", Filters(include_after=NOON), NOON + ONE_SECOND, True),
    ("after: a second earlier", Filters(include_after=NOON), NOON - ONE_SECOND, False),
    ("before: same instant", Filters(include_before=NOON), NOON, True),
    ("before: a second earlier", Filters(include_before=NOON), NOON - ONE_SECOND, True),
    ("before: a second later", Filters(include_before=NOON), NOON + ONE_SECOND, False),
    ("window inside", Filters(include_after=NOON - ONE_SECOND, include_before=NOON + ONE_SECOND), NOON, True),
    (
        "window outside",
        Filters(include_after=NOON + ONE_SECOND, include_before=NOON + 2 * ONE_SECOND),
        NOON,
        False,
    ),
    (
        "other zone same instant",
        Filters(include_after=NOON.astimezone(timezone(timedelta(hours=2)))),
        NOON,
        True,
    ),
    ("unknown time", Filters(include_after=NOON), None, False),
]


@pytest.mark.parametrize(
    ("filters", "modified", "expected"),
    [case[1:] for case in DATE_CASES],
    ids=[case[0] for case in DATE_CASES],
)
def test_dates(filters: Filters, modified: datetime | None, expected: bool) -> None:
    assert _accepts(filters, "a.txt", modified=modified) is expected


def test_dates_combine_with_patterns() -> None:
    filters = Filters(include_patterns=("*.log",), include_after=NOON)
    assert _accepts(filters, "x.log", modified=NOON)
    assert not _accepts(filters, "x.txt", modified=NOON)
    assert not _accepts(filters, "x.log", modified=NOON - ONE_SECOND)


# (case, filters, relative dir, may contain, folder copied)
DIR_CASES = [
    ("no filter", Filters(), "a/b", True, True),
    ("excluded dir", Filters(exclude_paths=("logs",)), "logs", False, False),
    ("below excluded", Filters(exclude_paths=("logs",)), "logs/app", False, False),
    ("sibling of excluded", Filters(exclude_paths=("logs",)), "logs2", True, True),
    ("inside included", Filters(include_paths=("docs",)), "docs/sub", True, True),
    ("included itself", Filters(include_paths=("docs",)), "docs", True, True),
    ("above included file", Filters(include_paths=("docs/a/b.txt",)), "docs", True, False),
    ("root above included", Filters(include_paths=("docs",)), "", True, False),
    ("away from included", Filters(include_paths=("docs",)), "src", False, False),
    ("patterns never prune", Filters(include_patterns=("*.txt",)), "a", True, True),
    ("regex never prunes", Filters(include_regex=("^docs/",)), "src", True, False),
]


@pytest.mark.parametrize(
    ("filters", "relative_dir", "may_contain", "folder"),
    [case[1:] for case in DIR_CASES],
    ids=[case[0] for case in DIR_CASES],
)
def test_directories(filters: Filters, relative_dir: str, may_contain: bool, folder: bool) -> None:
    compiled = ObjectFilter.build(filters)
    assert compiled.may_contain(relative_dir) is may_contain
    assert compiled.accepts_dir(relative_dir) is folder


@pytest.mark.parametrize(
    ("filters", "file_only"),
    [
        (Filters(), False),
        (Filters(exclude_paths=("a",), include_paths=("b",), include_regex=("x",)), False),
        (Filters(include_patterns=("*.txt",)), True),
        (Filters(exclude_patterns=("*.tmp",)), True),
        (Filters(include_after=NOON), True),
        (Filters(include_before=NOON), True),
    ],
)
def test_file_only_filters_turn_folders_off(filters: Filters, file_only: bool) -> None:
    assert ObjectFilter.build(filters).file_only is file_only


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (Filters(include_regex=("a(b",)), "--include-regex 'a(b' is not a valid regular expression"),
        (Filters(exclude_regex=("ok;[z-a]",)), "--exclude-regex '[z-a]' is not a valid regular expression"),
        (Filters(include_patterns=("",)), "--include-pattern '' names nothing"),
        (Filters(exclude_patterns=(";",)), "--exclude-pattern ';' names nothing"),
        (Filters(include_paths=("/",)), "--include-path '/' is not a path below the source"),
        (Filters(exclude_paths=("a/../../etc",)), "--exclude-path 'a/../../etc' must stay inside the source"),
    ],
)
def test_invalid_filters_are_usage_errors(filters: Filters, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        ObjectFilter.build(filters)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-08-19T15:04:00Z", datetime(2020, 8, 19, 15, 4, tzinfo=UTC)),
        ("2020-08-19T15:04:00+02:00", datetime(2020, 8, 19, 13, 4, tzinfo=UTC)),
        ("2020-08-19T15:04:00-05:30", datetime(2020, 8, 19, 20, 34, tzinfo=UTC)),
        ("2020-08-19T15:04:00.1234567Z", datetime(2020, 8, 19, 15, 4, 0, 123456, tzinfo=UTC)),
        (" 2020-08-19T15:04Z ", datetime(2020, 8, 19, 15, 4, tzinfo=UTC)),
    ],
)
def test_parse_iso8601_with_zone(text: str, expected: datetime) -> None:
    parsed = parse_iso8601(text, "--include-after")
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "local"),
    [
        ("2020-08-19", datetime(2020, 8, 19)),  # midnight, local time zone (AzCopy's rule)
        ("2020-08-19T15:04:00", datetime(2020, 8, 19, 15, 4)),
    ],
)
def test_parse_iso8601_without_zone_is_local_time(text: str, local: datetime) -> None:
    parsed = parse_iso8601(text, "--include-before")
    assert parsed.tzinfo is UTC
    assert parsed == local.astimezone(UTC)  # the machine's zone, whatever it is


@pytest.mark.parametrize("text", ["", "yesterday", "2020-13-01", "19/08/2020", "2020-08-19T25:00Z"])
def test_parse_iso8601_refuses_other_text(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_iso8601(text, "--include-after")
    message = str(caught.value)
    assert message.startswith(f"--include-after {text!r} is not an ISO 8601 date/time")
    assert "2020-08-19T15:04:00Z" in message  # shows the accepted form


def test_naive_filter_dates_are_local_time() -> None:
    local_noon = datetime(2024, 5, 1, 12, 0)  # as a caller that skipped parse_iso8601 might pass
    compiled = ObjectFilter.build(Filters(include_after=local_noon))
    assert compiled.include_after == local_noon.astimezone(UTC)


# -- attributes (Azure Files sources) -------------------------------------------------------------


def _attributed(attributes: str | None) -> StoredObject:
    from shareferry.core.objects import SmbInfo

    return StoredObject(
        path="f.txt", is_dir=False, smb=SmbInfo(attributes=attributes) if attributes else None
    )


@pytest.mark.parametrize(
    ("include", "exclude", "attributes", "passes"),
    [
        (("H",), (), "Hidden", True),
        (("h;r",), (), "ReadOnly | Archive", True),
        (("H",), (), "Archive", False),
        (("H",), (), None, False),  # nothing known: no attribute matches
        ((), ("S",), "System | Archive", False),
        ((), ("S",), None, True),
        (("A",), ("R",), "ReadOnly | Archive", False),  # excludes win
        (("N",), (), "None", True),
    ],
)
def test_attribute_filters(
    include: tuple[str, ...], exclude: tuple[str, ...], attributes: str | None, passes: bool
) -> None:
    built = ObjectFilter.build(Filters(include_attributes=include, exclude_attributes=exclude))
    assert built.accepts_file(_attributed(attributes), "f.txt") is passes
    assert built.file_only  # as for patterns and dates, no folders are copied


def test_an_unknown_attribute_letter_is_refused() -> None:
    with pytest.raises(UsageError, match="--exclude-attributes has an unknown attribute 'Z'"):
        ObjectFilter.build(Filters(exclude_attributes=("A;Z",)))
