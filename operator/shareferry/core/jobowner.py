"""Who is running a job: an advisory lock held by the one process that runs it.

A run holds an exclusive ``flock`` on ``<job dir>/<job id>/owner.lock`` from its start to its
end; the file names the owner's process id for messages. The kernel drops the lock when the
process dies however it dies (``kill -9``, an evicted pod, a crash), so

* a second run of the same job (``jobs resume`` twice, or while the job still runs) is refused
  instead of writing the same files twice, and
* a job whose plan still says "Running" but whose lock is free was interrupted: its owner is
  gone (``jobs list`` shows it as :data:`INTERRUPTED`, and it can be resumed).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Final

from shareferry.core.errors import UsageError

LOCK_FILE: Final = "owner.lock"
#: What ``jobs list`` shows for a job whose plan says Running while no process runs it.
INTERRUPTED: Final = "Interrupted"


class JobBusyError(UsageError):
    """The job is being run by another process."""


class OwnerLock:
    """The lock of one job's run; :meth:`release` (or process death) frees it."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, job_directory: Path) -> OwnerLock:
        """Take the lock of the job in ``job_directory``; :class:`JobBusyError` when another
        process holds it."""
        path = job_directory / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            who = f" (process {owner})" if owner else ""
            raise JobBusyError(
                f"job {job_directory.name} is already running in another process{who}; "
                "wait for it to end, or stop it first"
            ) from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd)

    def release(self) -> None:
        """Free the lock; idempotent."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the last descriptor drops the flock


def owner_alive(job_directory: Path) -> bool | None:
    """Whether a process holds the job's lock now; ``None`` when the job has no lock file (a plan
    written before runs took one, or a job directory being created)."""
    try:
        fd = os.open(job_directory / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # also drops the shared lock just taken, if it was
    return False


def died_mid_run(job_directory: Path) -> bool:
    """Whether the job's last run died without ending: its lock file still names an owner (a
    run that ends empties it) and no process holds it. Costs a ``stat`` for every job that ended
    normally, so every job directory can be checked at a run's start."""
    try:
        if (job_directory / LOCK_FILE).stat().st_size == 0:
            return False
    except OSError:
        return False
    return owner_alive(job_directory) is False


def _read_owner(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    return ""
