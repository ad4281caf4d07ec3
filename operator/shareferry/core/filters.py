"""AzCopy's include/exclude filters, compiled once and asked per file or directory.

What each flag matches (``azcopy copy`` reference, checked against AzCopy's own filter code):

* ``--include-pattern`` / ``--exclude-pattern``: wildcards matched against the file NAME only
  (never a directory part): ``*`` any run of characters, ``?`` one character, ``[abc]`` one of a
  set. Matching is case-sensitive on every platform (as AzCopy is on Linux). A file passes the
  include list when ANY pattern matches.
* ``--include-path`` / ``--exclude-path``: paths relative to the source root, no wildcards
  (a ``*`` is an ordinary character here). The source root is what the walk starts from: for a
  recursive copy of ``dir`` the paths are relative to ``dir`` itself, so ``--include-path
  photos`` means ``dir/photos`` (and ``dir``'s name is not written); for ``dir/*`` they are
  relative to ``dir`` too. A path names a file or a directory, and a directory stands for
  everything below it. AzCopy compares a raw string prefix (so ``logs`` would also catch
  ``logs2``); ShareFerry compares whole path segments, so ``logs`` means ``logs`` and
  ``logs/...`` only.
* ``--include-regex`` / ``--exclude-regex``: Python regular expressions searched (``re.search``,
  so unanchored) in the path relative to the source root. AzCopy uses Go's RE2 syntax, which
  agrees with Python's for everyday expressions.
* ``--include-after`` / ``--include-before``: last-modified time on or after / on or before the
  given instant (both inclusive, as the reference says). A file whose time is unknown does not
  pass a date filter.
* ``--include-attributes`` / ``--exclude-attributes``: AzCopy's letters for Windows file
  attributes (:data:`ATTRIBUTE_LETTERS`: ``R`` ReadOnly, ``A`` Archive, ``S`` System, ``H``
  Hidden, ``C`` Compressed, ``N`` Normal, ``E`` Encrypted, ``T`` Temporary, ``O`` Offline, ``I``
  NotContentIndexed), any letter case, e.g. ``A;S;R``. A file passes the include list when it
  has ANY of the listed attributes, and is excluded when it has any of the excluded ones. They
  apply to the SMB attributes an Azure Files listing reports (no extra request per file); other
  sources have no such attributes and are refused (:func:`check_attribute_source`). An unknown
  letter is a :class:`UsageError`.

Each flag value is a tuple of strings; every string may hold several entries separated by ``;``.
Empty entries from a stray ``;`` are dropped (``"*.txt;"`` is ``*.txt``), but a value with no
entry at all is a :class:`UsageError`. Excludes always win over includes; different include
flags must all pass (AND), entries of one flag are alternatives (OR).

Directories: patterns and dates concern files only. Paths and regexes also decide whether a
directory is copied as a folder (:meth:`ObjectFilter.accepts_dir`), and :meth:`may_contain`
tells the walker whether anything below a directory could pass, so excluded subtrees are never
listed. As in AzCopy, when a file-only filter (a pattern, a date or attributes) is set, no folders are
copied at all (:attr:`ObjectFilter.file_only`): otherwise ``--include-pattern '*.txt'`` would
recreate every directory, even those holding no text file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase

from shareferry.core.errors import UsageError
from shareferry.core.objects import StoredObject
from shareferry.core.options import Filters


def parse_iso8601(text: str, flag: str) -> datetime:
    """An AzCopy date/time flag value as an aware UTC datetime.

    Accepts ``2020-08-19T15:04:00Z``, offsets (``2020-08-19T15:04:00+02:00``), fractions of a
    second, and a date alone (``2020-08-19``, midnight). Without a time zone the value is in the
    local time zone of the machine, as AzCopy documents (UTC in a container unless TZ says
    otherwise). Anything else is a :class:`UsageError` naming ``flag``.
    """
    cleaned = text.strip()
    try:
        parsed = datetime.fromisoformat(cleaned) if cleaned else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise UsageError(
            f"{flag} {text!r} is not an ISO 8601 date/time "
            "(for example 2020-08-19T15:04:00Z, 2020-08-19T15:04:00+02:00 or 2020-08-19)"
        )
    return as_utc(parsed, naive_is_local=True)


def as_utc(moment: datetime, *, naive_is_local: bool) -> datetime:
    """``moment`` as an aware UTC datetime; a naive one is local time or UTC as told."""
    if moment.tzinfo is None:
        moment = moment.astimezone() if naive_is_local else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _entries(values: Iterable[str], flag: str) -> tuple[str, ...]:
    """Split every value on ``;``, drop empty entries, refuse a value with none."""
    found: list[str] = []
    for value in values:
        pieces = [piece for piece in value.split(";") if piece]
        if not pieces:
            raise UsageError(f"{flag} {value!r} names nothing: give one or more entries separated by ';'")
        found.extend(pieces)
    return tuple(found)


def _relative_paths(values: Iterable[str], flag: str) -> tuple[str, ...]:
    """Entries of a path flag, normalised to ``a/b`` form (no leading ``./`` or ``/``)."""
    paths: list[str] = []
    for entry in _entries(values, flag):
        segments = [segment for segment in entry.split("/") if segment not in ("", ".")]
        if not segments:
            raise UsageError(f"{flag} {entry!r} is not a path below the source")
        if ".." in segments:
            raise UsageError(f"{flag} {entry!r} must stay inside the source: '..' is not allowed")
        paths.append("/".join(segments))
    return tuple(paths)


def _regexes(values: Iterable[str], flag: str) -> tuple[re.Pattern[str], ...]:
    compiled: list[re.Pattern[str]] = []
    for entry in _entries(values, flag):
        try:
            compiled.append(re.compile(entry))
        except re.error as exc:
            raise UsageError(f"{flag} {entry!r} is not a valid regular expression: {exc}") from exc
    return tuple(compiled)


#: AzCopy's attribute letters and the Azure Files attribute names they stand for. ``N`` (Normal)
#: is a file with no other attribute, which Azure Files reports as ``None`` (or ``Normal``).
ATTRIBUTE_LETTERS: dict[str, tuple[str, ...]] = {
    "R": ("ReadOnly",),
    "A": ("Archive",),
    "S": ("System",),
    "H": ("Hidden",),
    "C": ("Compressed",),
    "N": ("Normal", "None"),
    "E": ("Encrypted",),
    "T": ("Temporary",),
    "O": ("Offline",),
    "I": ("NotContentIndexed",),
}


def _attributes(values: Iterable[str], flag: str) -> frozenset[str]:
    """The attribute names (lower-case) the letters of ``values`` stand for."""
    names: set[str] = set()
    for entry in _entries(values, flag):
        letter = entry.strip().upper()
        if letter not in ATTRIBUTE_LETTERS:
            raise UsageError(
                f"{flag} has an unknown attribute {entry.strip()!r}: use the letters "
                f"{', '.join(ATTRIBUTE_LETTERS)} separated by ';' (for example A;S;R)"
            )
        names.update(name.lower() for name in ATTRIBUTE_LETTERS[letter])
    return frozenset(names)


def file_attributes(obj: StoredObject) -> frozenset[str]:
    """The object's SMB attributes as lower-case names (``ReadOnly | Archive``); none known: empty."""
    text = obj.smb.attributes if obj.smb is not None else None
    return frozenset(part.strip().lower() for part in (text or "").split("|") if part.strip())


def check_attribute_source(filters: Filters, *, source_kind: str) -> None:
    """Refuse attribute filters for a source that has no Windows attributes (local files on
    this platform, Blob storage); Azure Files (``file``) sources carry them."""
    if source_kind == "file":
        return
    what = {
        "blob": "a blob has no Windows attributes",
        "local": "a local file on Linux has no Windows attributes",
    }
    for flag, given in (
        ("--include-attributes", filters.include_attributes),
        ("--exclude-attributes", filters.exclude_attributes),
    ):
        if given:
            reason = what.get(source_kind, f"a {source_kind} source has no Windows attributes")
            raise UsageError(f"{flag} applies to Azure Files sources only: {reason}")


def _within(path: str, roots: tuple[str, ...]) -> bool:
    """``path`` is one of ``roots`` or lies below one of them."""
    return any(path == root or path.startswith(root + "/") for root in roots)


def _above(path: str, roots: tuple[str, ...]) -> bool:
    """``path`` is a directory with one of ``roots`` below it (``""`` is above everything)."""
    return any(path == "" or root.startswith(path + "/") for root in roots)


@dataclass(frozen=True, slots=True)
class ObjectFilter:
    """The compiled filters; build it with :meth:`build`."""

    include_patterns: tuple[str, ...] = ()
    exclude_patterns: tuple[str, ...] = ()
    include_paths: tuple[str, ...] = ()
    exclude_paths: tuple[str, ...] = ()
    include_regex: tuple[re.Pattern[str], ...] = ()
    exclude_regex: tuple[re.Pattern[str], ...] = ()
    include_after: datetime | None = None
    include_before: datetime | None = None
    include_attributes: frozenset[str] = frozenset()
    exclude_attributes: frozenset[str] = frozenset()

    @classmethod
    def build(cls, filters: Filters) -> ObjectFilter:
        """Compile ``filters``; :class:`UsageError` for an empty entry or an invalid regex."""
        return cls(
            include_patterns=_entries(filters.include_patterns, "--include-pattern"),
            exclude_patterns=_entries(filters.exclude_patterns, "--exclude-pattern"),
            include_paths=_relative_paths(filters.include_paths, "--include-path"),
            exclude_paths=_relative_paths(filters.exclude_paths, "--exclude-path"),
            include_regex=_regexes(filters.include_regex, "--include-regex"),
            exclude_regex=_regexes(filters.exclude_regex, "--exclude-regex"),
            include_after=None
            if filters.include_after is None
            else as_utc(filters.include_after, naive_is_local=True),
            include_before=None
            if filters.include_before is None
            else as_utc(filters.include_before, naive_is_local=True),
            include_attributes=_attributes(filters.include_attributes, "--include-attributes"),
            exclude_attributes=_attributes(filters.exclude_attributes, "--exclude-attributes"),
        )

    @property
    def file_only(self) -> bool:
        """A pattern, date or attribute filter is set: AzCopy then copies no folders (files only)."""
        return bool(
            self.include_patterns
            or self.exclude_patterns
            or self.include_attributes
            or self.exclude_attributes
            or self.include_after is not None
            or self.include_before is not None
        )

    @property
    def prunes(self) -> bool:
        """Path filters are set, so :meth:`may_contain` can rule out whole directories."""
        return bool(self.include_paths or self.exclude_paths)

    def accepts_file(self, obj: StoredObject, relative_path: str) -> bool:
        """Whether the file ``obj`` (at ``relative_path`` below the source root) is copied."""
        if not (self._path_included(relative_path) and self._path_passes(relative_path)):
            return False
        name = obj.name
        if any(fnmatchcase(name, pattern) for pattern in self.exclude_patterns):
            return False
        if self.include_patterns and not any(fnmatchcase(name, p) for p in self.include_patterns):
            return False
        return self._attributes_pass(obj) and self._time_passes(obj.last_modified)

    def _attributes_pass(self, obj: StoredObject) -> bool:
        if not (self.include_attributes or self.exclude_attributes):
            return True
        found = file_attributes(obj)
        if found & self.exclude_attributes:
            return False
        return not self.include_attributes or bool(found & self.include_attributes)

    def accepts_dir(self, relative_dir: str) -> bool:
        """Whether the directory itself is copied as a folder (when folders are copied at all):
        inside the included paths, outside the excluded ones, and passing the regexes."""
        return self._path_included(relative_dir) and self._path_passes(relative_dir)

    def may_contain(self, relative_dir: str) -> bool:
        """False when nothing below ``relative_dir`` can pass the path filters (it lies in an
        excluded path, or away from every included one): the walker need not list it."""
        if _within(relative_dir, self.exclude_paths):
            return False
        if self.include_paths:
            return _within(relative_dir, self.include_paths) or _above(relative_dir, self.include_paths)
        return True

    def _path_passes(self, relative_path: str) -> bool:
        if _within(relative_path, self.exclude_paths):
            return False
        if any(regex.search(relative_path) for regex in self.exclude_regex):
            return False
        return not self.include_regex or any(regex.search(relative_path) for regex in self.include_regex)

    def _path_included(self, relative_path: str) -> bool:
        return not self.include_paths or _within(relative_path, self.include_paths)

    def _time_passes(self, last_modified: datetime | None) -> bool:
        if self.include_after is None and self.include_before is None:
            return True
        if last_modified is None:
            return False
        moment = as_utc(last_modified, naive_is_local=False)
        if self.include_after is not None and moment < self.include_after:
            return False
        return self.include_before is None or moment <= self.include_before
