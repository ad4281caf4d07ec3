"""The log file of one job: AzCopy's ``--log-level`` and ``AZCOPY_LOG_LOCATION``.

Each job that changes something writes ``<job id>.log`` in the log location
(``SHAREFERRY_LOG_LOCATION``, else the job directory beside the plans, see
:func:`~shareferry.core.jobplan.job_dir_from_env`); a resumed job appends to the same file. The
file is created ``0600`` (it names paths). A dry run writes none, and neither does ``NONE``.

Levels, each line keeping those of the levels above it:

* ``ERROR``: each file (or folder) that failed, with its error, and the job's own error;
* ``WARNING``: retries (what caused each: the status or the exception), requests that failed
  or were answered 5xx or 429, and slow answers (more than :data:`SLOW_RESPONSE_SECONDS`);
* ``INFO`` (the default): every request with its answer (method, redacted URL, status,
  ``x-ms-request-id``, duration in ms), and the job's start (command line, secrets redacted)
  and end (status and counters);
* ``DEBUG``: also each file that completed or was skipped, and each request's client request id.

The two request paths log through :func:`current_job_log` (a context variable set for the
job's tasks by :func:`job_logging`): the lean path in
:mod:`~shareferry.core.backends.storage_wire` and the SDK's transport in
:mod:`~shareferry.core.backends.sdk_transport`; retries are logged where they are decided
(:mod:`~shareferry.core.engine.retry`, :mod:`~shareferry.core.backends.listing_retry`).

Every line goes through :func:`~shareferry.core.printable.printable`: no SAS signature or account
key is ever written (the SDK's ``Authorization`` header and bearer tokens are never looked at),
and control characters in names are escaped. Lines are buffered in memory and written every
:data:`FLUSH_LINES` lines, at least every :data:`FLUSH_SECONDS` while the job logs, and at its end.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Final

from shareferry.core.accounting import FileResult, Outcome, Snapshot
from shareferry.core.errors import UsageError
from shareferry.core.jobplan import job_dir_from_env
from shareferry.core.printable import printable

LOG_LOCATION_ENV: Final = "SHAREFERRY_LOG_LOCATION"
#: An answer slower than this (seconds from sending the request) is logged as a warning.
SLOW_RESPONSE_SECONDS: Final = 1.0
#: Buffered lines are written when there are this many, or this many seconds after the last write.
FLUSH_LINES: Final = 512
FLUSH_SECONDS: Final = 2.0
#: Lines kept while the job's file is not open yet (its plan is being made); more are dropped.
_EARLY_LINES: Final = 1000


class LogLevel(IntEnum):
    """How much a job logs; a line is written when its level is at least the job's."""

    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40
    NONE = 50


#: The accepted spellings, as AzCopy lists them (any letter case).
LEVEL_NAMES: Final = ("INFO", "WARNING", "ERROR", "NONE", "DEBUG")


def parse_log_level(text: str) -> LogLevel:
    """``--log-level``'s value, any letter case; a one-line :class:`UsageError` otherwise."""
    name = text.strip().upper()
    if name not in LEVEL_NAMES:
        raise UsageError(f"--log-level takes INFO, WARNING, ERROR, NONE or DEBUG, not {text!r}")
    return LogLevel[name]


@dataclass(frozen=True)
class JobLogSettings:
    """How a job logs: its level and the command line its start line names (None: not known)."""

    level: LogLevel = LogLevel.INFO
    command_line: str | None = None


def log_dir_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """Where job logs are written: ``SHAREFERRY_LOG_LOCATION``, else the job directory."""
    env = os.environ if environ is None else environ
    location = env.get(LOG_LOCATION_ENV)
    return Path(location).expanduser() if location else job_dir_from_env(environ)


def job_log_path(job_id: str, environ: Mapping[str, str] | None = None) -> Path:
    """The log file of job ``job_id`` (it may not exist)."""
    return log_dir_from_env(environ) / f"{job_id}.log"


_current: contextvars.ContextVar[JobLog | None] = contextvars.ContextVar("shareferry_job_log", default=None)


def current_job_log() -> JobLog | None:
    """The log of the job the calling task works for, if it keeps one."""
    return _current.get()


@contextlib.contextmanager
def job_logging(job_id: str, settings: JobLogSettings, *, path: Path | None) -> Iterator[JobLog | None]:
    """The job's log (None when ``path`` is None or the level is ``NONE``), current for the tasks
    started inside the block; its lines are held in memory until :meth:`JobLog.attach` opens
    the file, and the file is closed at the end."""
    if path is None or settings.level is LogLevel.NONE:
        yield None
        return
    log = JobLog(job_id, settings, path=path)
    token = _current.set(log)
    try:
        yield log
    finally:
        _current.reset(token)
        log.close()


class JobLog:
    """The log file of one job; see the module docstring. Lines may come from any thread."""

    def __init__(self, job_id: str, settings: JobLogSettings, *, path: Path) -> None:
        self.job_id = job_id
        self.settings = settings
        self.level = settings.level
        self.path = path
        self._lines: list[str] = []
        self._fd: int | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._last_write = time.monotonic()
        self._stamp_second = -1
        self._stamp = ""

    # ---- the file ----------------------------------------------------------------------------

    def attach(self) -> None:
        """Open (or create, ``0600``, in a ``0700`` directory) the file and write what was held.
        ``OSError`` when it cannot be opened: the caller warns, and the job logs nothing."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.flush()

    def detach(self) -> None:
        """Log nothing more (the file could not be opened)."""
        self._closed = True
        self._lines.clear()

    def flush(self) -> None:
        """Write the buffered lines (a no-op until the file is open)."""
        with self._lock:
            if self._fd is None or not self._lines:
                return
            data = "".join(self._lines).encode("utf-8", "backslashreplace")
            self._lines.clear()
            self._last_write = time.monotonic()
            with contextlib.suppress(OSError):  # a full disk must not fail the copy
                os.write(self._fd, data)

    def close(self) -> None:
        self.flush()
        self._closed = True
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    # ---- lines -------------------------------------------------------------------------------

    def enabled(self, level: LogLevel) -> bool:
        return level >= self.level and not self._closed

    def write(self, level: LogLevel, text: str) -> None:
        """One line of ``level`` (dropped below the job's level): a UTC time, the level, and
        ``text`` redacted with its control characters escaped."""
        if not self.enabled(level):
            return
        line = f"{self._timestamp()} {level.name:<7} {printable(text)}\n"
        with self._lock:
            self._lines.append(line)
            if self._fd is None:
                if len(self._lines) > _EARLY_LINES:
                    del self._lines[0]
                return
            due = len(self._lines) >= FLUSH_LINES or time.monotonic() - self._last_write >= FLUSH_SECONDS
        if due:
            self.flush()

    def _timestamp(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._stamp_second:  # formatted once a second, the milliseconds added per line
            self._stamp_second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    # ---- what the request paths, the retries and the job report ---------------------------

    def response(
        self,
        method: str,
        url: str,
        *,
        status: int,
        request_id: str | None,
        seconds: float,
        client_request_id: str | None = None,
    ) -> None:
        """One request and its answer: a warning when it is 5xx, 429 or slow, else INFO."""
        slow = seconds > SLOW_RESPONSE_SECONDS
        level = LogLevel.WARNING if slow or status >= 500 or status == 429 else LogLevel.INFO
        if not self.enabled(level):
            return
        text = f"{method} {url} {status} request-id={request_id or '-'} {seconds * 1000:.0f} ms"
        if slow:
            text += f" (slow: over {SLOW_RESPONSE_SECONDS:g} s)"
        if client_request_id and self.level <= LogLevel.DEBUG:
            text += f" client-request-id={client_request_id}"
        self.write(level, text)

    def request_failed(self, method: str, url: str, *, error: BaseException, seconds: float) -> None:
        """A request that got no answer (a dropped connection, a timeout): a warning."""
        if self.enabled(LogLevel.WARNING):
            detail = str(error).splitlines()[0] if str(error) else ""
            self.write(
                LogLevel.WARNING,
                f"{method} {url} no answer after {seconds * 1000:.0f} ms: {type(error).__name__}"
                + (f": {detail}" if detail else ""),
            )

    def retry(self, cause: str, *, attempt: int, attempts: int, delay: float) -> None:
        """Attempt ``attempt`` of ``attempts`` retries is made in ``delay`` s because of ``cause``."""
        self.write(LogLevel.WARNING, f"retry {attempt} of {attempts} in {delay:.2f} s after: {cause}")

    def started(self, *, command: str, source: str, destination: str, run: int) -> None:
        line = self.settings.command_line or command
        self.write(LogLevel.INFO, f"job {self.job_id} run {run} started: {line}")
        self.write(LogLevel.INFO, f"{command} {source} -> {destination} (log level {self.level.name})")

    def ended(self, *, status: str, counters: Snapshot, error: str | None) -> None:
        if error:
            self.write(LogLevel.ERROR, f"job {self.job_id} error: {error}")
        self.write(
            LogLevel.INFO,
            f"job {self.job_id} ended: {status}; files completed {counters.files_completed}, "
            f"failed {counters.files_failed}, skipped {counters.files_skipped} of "
            f"{counters.files_enumerated}; folders completed {counters.folders_completed}, failed "
            f"{counters.folders_failed}; {counters.bytes_transferred} bytes transferred in "
            f"{counters.elapsed:.3f} s",
        )

    # ---- a subscriber of the job's accounting ---------------------------------------------

    def on_queued(self, path: str, size: int) -> None:
        return None

    def on_progress(self, nbytes: int) -> None:
        return None

    def on_done(self, result: FileResult) -> None:
        kind = "folder" if result.is_dir else "file"
        name = result.destination or result.path
        if result.outcome is Outcome.FAILED:
            self.write(LogLevel.ERROR, f"failed {kind} {name}: {result.error or 'failed'}")
        elif self.level <= LogLevel.DEBUG:
            why = f" ({result.reason})" if result.reason else ""
            self.write(LogLevel.DEBUG, f"{result.outcome.value} {kind} {name}{why}")
