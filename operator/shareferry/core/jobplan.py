"""The persistent plan of one job: its record, per-file progress and spooled sync deletions.

Every copy or sync run is a job with an id. Its plan is ``<job dir>/<job id>/plan.db``, a SQLite
database, so that a killed job can be resumed without re-sending the files it finished:

* ``job``: one row, the :class:`JobRecord` (command, printable SAS-free source and destination,
  options, status and counters of the last run);
* ``files``: one row per destination path (a :class:`PlannedFile`), planned, then finished;
* ``deletions``: what a sync found to delete, spooled while listing, deleted after both listings
  completed.

Writes are buffered in memory and committed in one transaction every :attr:`Batching.size` calls,
on the first call after :attr:`Batching.seconds` have passed since the last commit, and on
:meth:`JobPlan.flush` / :meth:`JobPlan.close`; reads (:meth:`JobPlan.previous`, :meth:`JobPlan.files`,
...) always see the buffered writes. The database runs in WAL mode with ``synchronous=NORMAL``: a
killed process loses nothing it committed (an operating-system crash may lose the last commits).

Nothing stored may hold a secret: a source or destination holding a SAS signature is refused, and
errors and JSON documents are redacted before they are written. A plan is used from one thread at
a time; other processes may read it (``shareferry jobs list``) while its job runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from shareferry.core.errors import NotFoundError, ShareFerryError, UsageError
from shareferry.core.jobowner import INTERRUPTED, owner_alive
from shareferry.core.redact import redact

JOB_DIR_ENV: Final = "SHAREFERRY_JOB_DIR"
DEFAULT_JOB_DIR: Final = "~/.shareferry/jobs"
PLAN_FILE: Final = "plan.db"
#: The status of a job while one of its runs is in progress.
RUNNING: Final = "Running"
#: The shortest id prefix :func:`resolve_job_id` accepts in place of a whole id (as git does).
MIN_PREFIX: Final = 8
SCHEMA_VERSION: Final = 1

_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SAS_SIGNATURE = re.compile(r"(?i)sig(?:=|%3D)")
_PAGE = 1000  # rows read per query by the iterators (no cursor stays open across a yield)
_LAST_SEQ = 2**63 - 1
_CASEFOLD = "shareferry_casefold"


class FileState(StrEnum):
    PLANNED = "planned"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class _Deletion(StrEnum):
    PENDING = "pending"
    DELETED = "deleted"
    FAILED = "failed"


class PlanUnreadableError(ShareFerryError):
    """A job directory whose plan cannot be read: not a database, damaged, or of another version."""


@dataclass(frozen=True)
class JobRecord:
    """One job as ``shareferry jobs`` shows it. ``source`` and ``destination`` are printable and
    hold no SAS; ``options`` and ``summary`` are JSON documents; times are timezone-aware UTC.
    ``status`` is :data:`RUNNING` while a run is in progress, else the ``JobStatus`` value of the
    last run (``Completed``, ``CompletedWithErrors``, ``Failed``, ``Cancelled``...); ``runs``
    counts the runs started (1 + resumes)."""

    job_id: str
    command: str  # "copy" | "sync"
    source: str
    destination: str
    from_to: str | None
    options: dict[str, Any]
    created: datetime
    updated: datetime
    status: str
    runs: int
    summary: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True)
class PlannedFile:
    """What the plan knows of one destination path."""

    destination: str
    source: str
    size: int
    source_mtime: str | None
    is_dir: bool
    state: FileState
    md5: str | None
    error: str | None


@dataclass(frozen=True)
class Batching:
    """When buffered writes are committed: every ``size`` calls, or on the first call once
    ``seconds`` have passed since the last commit."""

    size: int = 500
    seconds: float = 0.5

    def __post_init__(self) -> None:
        if self.size < 1 or self.seconds < 0:
            raise ValueError("batching needs a size of at least 1 and seconds of at least 0")


_Attributes = tuple[str, int, str | None, bool]  # source, size, source_mtime, is_dir
_Result = tuple[FileState, str | None, str | None]  # state, md5, error


@dataclass(slots=True)
class _Pending:
    """Buffered writes to one destination path: a planned() then a finished(), either optional."""

    planned: _Attributes | None = None
    finished: _Result | None = None


_SCHEMA = """
CREATE TABLE job (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    job_id TEXT NOT NULL,
    command TEXT NOT NULL,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    from_to TEXT,
    options TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    status TEXT NOT NULL,
    runs INTEGER NOT NULL,
    summary TEXT,
    error TEXT
);
CREATE TABLE files (
    destination TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    size INTEGER NOT NULL,
    source_mtime TEXT,
    is_dir INTEGER NOT NULL,
    state TEXT NOT NULL,
    md5 TEXT,
    error TEXT
) WITHOUT ROWID;
CREATE TABLE deletions (
    seq INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    is_dir INTEGER NOT NULL,
    state TEXT NOT NULL,
    error TEXT
);
"""
_JOB_COLUMNS = (
    "job_id, command, source, destination, from_to, options, created, updated, status, runs, summary, error"
)
_FILE_COLUMNS = "destination, source, size, source_mtime, is_dir, state, md5, error"
# A new run plans every file again; a file done before stays done while its source is unchanged.
_UPSERT_PLANNED = f"""
INSERT INTO files ({_FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'planned', NULL, NULL)
ON CONFLICT (destination) DO UPDATE SET
    source = excluded.source, size = excluded.size, source_mtime = excluded.source_mtime,
    is_dir = excluded.is_dir, state = 'planned', md5 = NULL, error = NULL
WHERE NOT (
    files.state = 'done' AND files.source = excluded.source AND files.size = excluded.size
    AND files.source_mtime IS excluded.source_mtime AND files.is_dir = excluded.is_dir
)
"""
_UPSERT_FINISHED = f"""
INSERT INTO files ({_FILE_COLUMNS}) VALUES (?, '', 0, NULL, 0, ?, ?, ?)
ON CONFLICT (destination) DO UPDATE SET state = excluded.state, md5 = excluded.md5, error = excluded.error
"""
# planned() then finished() of one path in one batch: whatever the row was, it ends as this.
_UPSERT_SETTLED = f"""
INSERT INTO files ({_FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (destination) DO UPDATE SET
    source = excluded.source, size = excluded.size, source_mtime = excluded.source_mtime,
    is_dir = excluded.is_dir, state = excluded.state, md5 = excluded.md5, error = excluded.error
"""
_INSERT_CANDIDATE = (
    "INSERT INTO deletions (path, is_dir, state) VALUES (?, ?, 'pending') ON CONFLICT (path) DO NOTHING"
)
_UPDATE_DELETED = "UPDATE deletions SET state = ?, error = ? WHERE path = ?"


def job_dir_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """Where job plans live: ``SHAREFERRY_JOB_DIR``, else ``~/.shareferry/jobs``. Not created here."""
    env = os.environ if environ is None else environ
    return Path(env.get(JOB_DIR_ENV) or DEFAULT_JOB_DIR).expanduser()


def resolve_job_id(directory: Path, job_id: str) -> str:
    """The id of the job in ``directory`` that ``job_id`` names: the id itself, or a unique prefix
    of at least :data:`MIN_PREFIX` characters. :class:`NotFoundError` when there is none,
    :class:`UsageError` when the prefix is ambiguous or the text cannot be a job id."""
    if not _JOB_ID.fullmatch(job_id):
        raise UsageError(f"{job_id!r} is not a job id")
    if (directory / job_id / PLAN_FILE).is_file():
        return job_id
    if len(job_id) >= MIN_PREFIX and directory.is_dir():
        matches = sorted(
            entry.name
            for entry in directory.iterdir()
            if entry.name.startswith(job_id) and (entry / PLAN_FILE).is_file()
        )
        if len(matches) == 1:
            return matches[0]
        if matches:
            shown = ", ".join(matches[:3]) + (", ..." if len(matches) > 3 else "")
            raise UsageError(
                f"job id prefix {job_id} matches {len(matches)} jobs ({shown}): give more of the id"
            )
    raise NotFoundError(f"no job {job_id} in {directory}")


class JobPlan:
    """One job's plan on disk (see the module docstring). Open with :meth:`create` or :meth:`open`;
    close with :meth:`close` or a ``with`` block, which commits what is buffered."""

    def __init__(self, connection: sqlite3.Connection, *, path: Path, batching: Batching) -> None:
        self._db = connection
        self.path = path  # the plan's database file
        self._batching = batching
        self._files: dict[str, _Pending] = {}
        self._candidates: dict[str, bool] = {}  # path -> is_dir, in insertion order
        self._deleted: dict[str, tuple[str, str | None]] = {}  # path -> (state, error)
        self._calls = 0
        self._last_commit = time.monotonic()
        self._folded = False  # whether temp.folded (case-folded destinations) exists

    # ---- opening ---------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, record: JobRecord, *, batching: Batching | None = None) -> JobPlan:
        """A new plan ``<directory>/<job id>/plan.db`` holding ``record`` (its ``runs`` and
        ``status`` as given: call :meth:`start_run` when the run starts). ``FileExistsError`` when
        the job exists; ``ValueError`` for an unusable id, naive times or a source or destination
        holding a SAS signature; ``TypeError`` when ``options`` or ``summary`` is not JSON."""
        _check_record(record)
        options = _json_text(record.options, what="options")
        summary = None if record.summary is None else _json_text(record.summary, what="summary")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        job_dir = directory / record.job_id
        job_dir.mkdir(mode=0o700)  # FileExistsError: ids are never reused
        path = job_dir / PLAN_FILE
        try:
            connection = _connect(path, create=True)
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                with _transaction(connection):
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            connection.execute(statement)
                    connection.execute(
                        f"INSERT INTO job (singleton, {_JOB_COLUMNS}) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            record.job_id,
                            record.command,
                            record.source,
                            record.destination,
                            record.from_to,
                            options,
                            _iso(record.created),
                            _iso(record.updated),
                            record.status,
                            record.runs,
                            summary,
                            _redacted(record.error),
                        ),
                    )
                    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except BaseException:
                connection.close()
                raise
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        return cls(connection, path=path, batching=batching or Batching())

    @classmethod
    def open(cls, directory: Path, job_id: str, *, batching: Batching | None = None) -> JobPlan:
        """The plan of job ``job_id`` (or of the one job whose id starts with it: see
        :func:`resolve_job_id`). :class:`PlanUnreadableError` when its database cannot be read."""
        resolved = resolve_job_id(directory, job_id)
        path = directory / resolved / PLAN_FILE
        try:
            connection = _connect(path, create=False)
        except sqlite3.Error as exc:
            raise PlanUnreadableError(f"job {resolved}: cannot open {path}: {exc}") from None
        plan = cls(connection, path=path, batching=batching or Batching())
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise PlanUnreadableError(
                    f"job {resolved}: {path} is not a job plan this version of shareferry reads "
                    f"(format {version}, expected {SCHEMA_VERSION})"
                )
            plan.record  # noqa: B018 (reads and checks the job row)
        except (sqlite3.Error, ValueError, TypeError, KeyError) as exc:
            connection.close()
            raise PlanUnreadableError(f"job {resolved}: cannot read {path}: {exc}") from None
        except BaseException:
            connection.close()
            raise
        return plan

    def __enter__(self) -> JobPlan:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Commit what is buffered and close the database."""
        try:
            self.flush()
        finally:
            self._db.close()

    # ---- the job row ------------------------------------------------------------------------

    @property
    def record(self) -> JobRecord:
        """The job as stored now (another process may be running it)."""
        row = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM job").fetchone()
        if row is None:
            raise PlanUnreadableError(f"{self.path} has no job row")
        record = _job_record(row)
        if record.status == RUNNING and owner_alive(self.path.parent) is False:
            return replace(record, status=INTERRUPTED)  # its process died mid-run
        return record

    def start_run(self) -> None:
        """A run starts: one more run, status :data:`RUNNING`, no error yet."""
        with _transaction(self._db):
            self._db.execute(
                "UPDATE job SET runs = runs + 1, status = ?, updated = ?, error = NULL",
                (RUNNING, _iso(_utc_now())),
            )

    def end_run(self, *, status: str, summary: dict[str, Any], error: str | None) -> None:
        """The run ended with ``status`` (a ``JobStatus`` value), its counters and its error:
        commits the buffered file states, then records the outcome."""
        if not status or status == RUNNING:
            raise ValueError(f"a run ends with a final status, not {status!r}")
        summary_text = _json_text(summary, what="summary")
        self.flush()
        with _transaction(self._db):
            self._db.execute(
                "UPDATE job SET status = ?, summary = ?, error = ?, updated = ?",
                (status, summary_text, _redacted(error), _iso(_utc_now())),
            )

    # ---- files -------------------------------------------------------------------------------

    def planned(
        self, *, destination: str, source: str, size: int, source_mtime: str | None, is_dir: bool
    ) -> None:
        """This run will transfer ``destination``. A file an earlier run finished stays
        :attr:`FileState.DONE` while its source, size, time and kind are unchanged; any other
        row is planned again (a failed or skipped file is retried)."""
        if destination in self._files:
            self.flush()  # applied after what is buffered for it, as a second call would be
        self._files[destination] = _Pending(planned=(source, size, source_mtime, bool(is_dir)))
        self._wrote()

    def finished(
        self, destination: str, *, state: FileState, md5: str | None = None, error: str | None = None
    ) -> None:
        """``destination`` settled: done (with the MD5 of what landed), failed (with why) or skipped."""
        state = FileState(state)
        if state is FileState.PLANNED:
            raise ValueError("finished() takes done, failed or skipped, not planned")
        result = (state, md5, _redacted(error))
        pending = self._files.get(destination)
        if pending is None:
            self._files[destination] = _Pending(finished=result)
        else:
            pending.finished = result
        self._wrote()

    def previous(self, destination: str) -> PlannedFile | None:
        """What the plan holds for ``destination``, buffered writes included; None if nothing."""
        row = self._db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE destination = ?", (destination,)
        ).fetchone()
        current = None if row is None else _planned_file(row)
        pending = self._files.get(destination)
        if pending is not None:
            if pending.planned is not None:
                current = _apply_planned(current, destination, pending.planned)
            if pending.finished is not None:
                current = _apply_finished(current, destination, pending.finished)
        return current

    def counts(self) -> dict[FileState, int]:
        """How many destination paths are in each state (every state present, zeros included)."""
        self.flush()
        counts = dict.fromkeys(FileState, 0)
        for state, count in self._db.execute("SELECT state, COUNT(*) FROM files GROUP BY state"):
            counts[FileState(state)] = count
        return counts

    def files(self, *, state: FileState | None = None, limit: int | None = None) -> Iterator[PlannedFile]:
        """The planned paths (only those in ``state`` if given), by destination path, at most ``limit``."""
        self.flush()
        where = "" if state is None else "AND state = ?"
        parameters: tuple[str, ...] = () if state is None else (FileState(state).value,)
        page = _PAGE if limit is None else max(1, min(_PAGE, limit))
        query = (
            f"SELECT {_FILE_COLUMNS} FROM files WHERE destination >= ? {where} ORDER BY destination LIMIT ?"
        )
        rows = self._db.execute(query, ("", *parameters, page)).fetchall()
        query = query.replace("destination >= ?", "destination > ?")
        yielded = 0
        while rows:
            for row in rows:
                if limit is not None and yielded >= limit:
                    return
                yielded += 1
                yield _planned_file(row)
            if len(rows) < page:
                return
            rows = self._db.execute(query, (rows[-1][0], *parameters, page)).fetchall()

    def planned_in_another_case(self, path: str) -> bool:
        """Whether any run of this job planned a destination path equal to ``path`` ignoring
        letter case (Unicode case folding) but not spelled the same: on a destination that
        ignores case, such a path is the file this job copied, not one to delete. (``path``
        itself, planned by an earlier run whose source has since gone, does not count.) The
        first call indexes the plan's paths (once)."""
        self.flush()
        if not self._folded:
            self._db.create_function(_CASEFOLD, 1, str.casefold, deterministic=True)
            self._db.execute(
                "CREATE TEMP TABLE folded (name TEXT, original TEXT, PRIMARY KEY (name, original)) WITHOUT ROWID"
            )
            self._db.execute(
                f"INSERT OR IGNORE INTO temp.folded SELECT {_CASEFOLD}(destination), destination FROM files"
            )
            self._folded = True  # from now on flush() adds every new path
        row = self._db.execute(
            "SELECT 1 FROM temp.folded WHERE name = ? AND original != ?", (path.casefold(), path)
        ).fetchone()
        return row is not None

    # ---- sync deletions ----------------------------------------------------------------------

    def delete_candidate(self, path: str, *, is_dir: bool) -> None:
        """``path`` is to be deleted once both listings are complete (kept in call order; a path
        already spooled keeps its place)."""
        if path in self._deleted:
            self.flush()
        self._candidates.setdefault(path, bool(is_dir))
        self._wrote()

    def delete_candidates(self) -> Iterator[tuple[str, bool]]:
        """``(path, is_dir)`` of the candidates not yet :meth:`deleted`: files first, in the order
        they were found, then directories in the reverse order (the deepest first)."""
        self.flush()
        after = 0
        while True:
            rows = self._db.execute(
                "SELECT seq, path FROM deletions WHERE is_dir = 0 AND state = 'pending' AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (after, _PAGE),
            ).fetchall()
            for _, path in rows:
                yield path, False
            if len(rows) < _PAGE:
                break
            after = rows[-1][0]
        before = _LAST_SEQ
        while True:
            rows = self._db.execute(
                "SELECT seq, path FROM deletions WHERE is_dir = 1 AND state = 'pending' AND seq < ? "
                "ORDER BY seq DESC LIMIT ?",
                (before, _PAGE),
            ).fetchall()
            for _, path in rows:
                yield path, True
            if len(rows) < _PAGE:
                break
            before = rows[-1][0]

    def count_delete_candidates(self) -> tuple[int, int]:
        """``(files, directories)`` that :meth:`delete_candidates` would yield now."""
        self.flush()
        counts = {0: 0, 1: 0}
        for is_dir, count in self._db.execute(
            "SELECT is_dir, COUNT(*) FROM deletions WHERE state = 'pending' GROUP BY is_dir"
        ):
            counts[int(is_dir)] = count
        return counts[0], counts[1]

    def clear_delete_candidates(self) -> None:
        """Forget every candidate (a new run lists both sides again)."""
        self._candidates.clear()
        self._deleted.clear()
        with _transaction(self._db):
            self._db.execute("DELETE FROM deletions")

    def deleted(self, path: str, *, error: str | None = None) -> None:
        """The candidate ``path`` was deleted, or could not be (``error``)."""
        state = _Deletion.DELETED if error is None else _Deletion.FAILED
        self._deleted[path] = (state.value, _redacted(error))
        self._wrote()

    # ---- committing --------------------------------------------------------------------------

    def flush(self) -> None:
        """Commit every buffered write in one transaction."""
        if self._files or self._candidates or self._deleted:
            planned, finished, settled = [], [], []
            for path, pending in self._files.items():
                if pending.planned is None:
                    assert pending.finished is not None
                    finished.append((path, *pending.finished))
                elif pending.finished is None:
                    planned.append((path, *pending.planned))
                else:
                    settled.append((path, *pending.planned, *pending.finished))
            with _transaction(self._db):
                self._db.executemany(_UPSERT_PLANNED, planned)
                self._db.executemany(_UPSERT_FINISHED, finished)
                self._db.executemany(_UPSERT_SETTLED, settled)
                if self._folded:
                    self._db.executemany(
                        "INSERT OR IGNORE INTO temp.folded VALUES (?, ?)",
                        ((path.casefold(), path) for path in self._files),
                    )
                self._db.executemany(_INSERT_CANDIDATE, self._candidates.items())
                self._db.executemany(
                    _UPDATE_DELETED, ((state, error, path) for path, (state, error) in self._deleted.items())
                )
            self._files.clear()
            self._candidates.clear()
            self._deleted.clear()
        self._calls = 0
        self._last_commit = time.monotonic()

    def _wrote(self) -> None:
        self._calls += 1
        if (
            self._calls >= self._batching.size
            or time.monotonic() - self._last_commit >= self._batching.seconds
        ):
            self.flush()


# ---- every job in a directory ----------------------------------------------------------------


def list_jobs(directory: Path) -> list[JobRecord]:
    """The jobs in ``directory``, newest first. Directories whose plan cannot be read are left out."""
    records = []
    for job_id in list_job_ids(directory):
        record = _read_record(directory, job_id)
        if record is not None:
            records.append(record)
    records.sort(key=lambda record: (record.created, record.job_id), reverse=True)
    return records


def remove_jobs(
    directory: Path,
    *,
    job_ids: Sequence[str] = (),
    older_than: timedelta | None = None,
    statuses: Collection[str] = (),
    now: datetime | None = None,
) -> list[str]:
    """Delete whole job directories and return their ids. Every selector given must hold: one of
    ``job_ids`` (ids or unique prefixes; all are resolved before anything is removed), last updated
    more than ``older_than`` before ``now``, a status in ``statuses`` (any letter case). A
    :data:`RUNNING` job is removed only when named in ``job_ids``; a named job whose plan cannot be
    read is removed when no other selector is given."""
    named = [resolve_job_id(directory, job_id) for job_id in job_ids]
    wanted = {status.casefold() for status in statuses}
    cutoff = None if older_than is None else (now or _utc_now()) - older_than
    removed = []
    for job_id in dict.fromkeys(named) if named else list_job_ids(directory):
        record = _read_record(directory, job_id)
        if record is None:
            selected = bool(named) and not wanted and cutoff is None
        else:
            selected = (
                (record.status != RUNNING or bool(named))
                and (not wanted or record.status.casefold() in wanted)
                and (cutoff is None or record.updated < cutoff)
            )
        if selected:
            shutil.rmtree(directory / job_id)
            removed.append(job_id)
    return removed


def list_job_ids(directory: Path) -> list[str]:
    """The ids of the job directories in ``directory``, sorted."""
    if not directory.is_dir():
        return []
    return sorted(
        entry.name for entry in directory.iterdir() if _JOB_ID.fullmatch(entry.name) and entry.is_dir()
    )


def _read_record(directory: Path, job_id: str) -> JobRecord | None:
    """The record of ``job_id``, or None when its plan is missing or cannot be read."""
    try:
        with JobPlan.open(directory, job_id) as plan:
            return plan.record
    except (ShareFerryError, sqlite3.Error, OSError, ValueError, TypeError, KeyError):
        return None


# ---- rows, values and transactions -----------------------------------------------------------


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    uri = path.absolute().as_uri() + ("?mode=rwc" if create else "?mode=rw")
    connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed on success, rolled back on any exception."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _check_record(record: JobRecord) -> None:
    if not _JOB_ID.fullmatch(record.job_id):
        raise ValueError(f"{record.job_id!r} cannot be a job id: letters, digits, '.', '_' and '-' only")
    for name, value in (("source", record.source), ("destination", record.destination)):
        if _SAS_SIGNATURE.search(value):
            raise ValueError(f"the job {name} holds a SAS signature: store it without its query")
    for name, moment in (("created", record.created), ("updated", record.updated)):
        if moment.utcoffset() is None:
            raise ValueError(f"the job's {name} time must be timezone-aware")


def _json_text(value: Mapping[str, Any], *, what: str) -> str:
    if not isinstance(value, Mapping):
        raise TypeError(f"the job {what} must be a JSON object (a dict), not {type(value).__name__}")
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"the job {what} must be JSON-serialisable (dicts, lists, strings, numbers, booleans, None): {exc}"
        ) from None
    return redact(text)


def _redacted(text: str | None) -> str | None:
    return None if text is None else redact(text)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _job_record(row: Sequence[Any]) -> JobRecord:
    job_id, command, source, destination, from_to, options, created, updated, status, runs, summary, error = (
        row
    )
    return JobRecord(
        job_id=job_id,
        command=command,
        source=source,
        destination=destination,
        from_to=from_to,
        options=json.loads(options),
        created=datetime.fromisoformat(created),
        updated=datetime.fromisoformat(updated),
        status=status,
        runs=int(runs),
        summary=None if summary is None else json.loads(summary),
        error=error,
    )


def _planned_file(row: Sequence[Any]) -> PlannedFile:
    destination, source, size, source_mtime, is_dir, state, md5, error = row
    return PlannedFile(
        destination=destination,
        source=source,
        size=int(size),
        source_mtime=source_mtime,
        is_dir=bool(is_dir),
        state=FileState(state),
        md5=md5,
        error=error,
    )


def _apply_planned(current: PlannedFile | None, destination: str, attributes: _Attributes) -> PlannedFile:
    """What :data:`_UPSERT_PLANNED` makes of ``current``."""
    source, size, source_mtime, is_dir = attributes
    if (
        current is not None
        and current.state is FileState.DONE
        and (current.source, current.size, current.source_mtime, current.is_dir) == attributes
    ):
        return current
    return PlannedFile(destination, source, size, source_mtime, is_dir, FileState.PLANNED, None, None)


def _apply_finished(current: PlannedFile | None, destination: str, result: _Result) -> PlannedFile:
    """What :data:`_UPSERT_FINISHED` makes of ``current``."""
    state, md5, error = result
    if current is None:
        return PlannedFile(destination, "", 0, None, False, state, md5, error)
    return PlannedFile(
        destination, current.source, current.size, current.source_mtime, current.is_dir, state, md5, error
    )
