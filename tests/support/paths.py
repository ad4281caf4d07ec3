"""Where things live in the repository checkout."""

from __future__ import annotations

from pathlib import Path


def repo_root() -> Path:
    """The repository root: the nearest parent of this file that holds ``pyproject.toml``."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    raise RuntimeError(f"no pyproject.toml above {here}; is this a ShareFerry checkout?")


def cache_root() -> Path:
    """The git-ignored ``.cache/`` directory where tools are unpacked at test or bench time."""
    return repo_root() / ".cache"


def node_bin(name: str) -> Path:
    """The path of an npm-installed executable in ``node_modules/.bin``; it may not exist yet."""
    return repo_root() / "node_modules" / ".bin" / name
