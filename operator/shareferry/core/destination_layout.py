"""Whether a local destination is a directory the files go into, decided once for the life of a job.

A local destination without a trailing ``/`` is taken as a directory when it is one, else as
the new file's name (see :mod:`shareferry.core.backends.factory`). Asked again on every run,
that answer changes for a directory copied to a folder that did not exist yet: the first run
creates it, so the next run would root the destination one level lower and key every file of
the job plan differently (``dest/many/f1`` then ``many/f1``), finding nothing done and sending
everything again. So the first run decides, stores the decision in the job's record
(:data:`LAYOUT_KEY` in its options) and every later run of the job applies it.

The decision, for a destination that does not exist yet, follows the source: a directory (a
share or container root, a whole account, a wildcard, a directory) is copied into a directory
of that name, the same place it would have landed otherwise; a single file takes the name.
"""

from __future__ import annotations

import os
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from shareferry.core.backends.factory import open_source
from shareferry.core.credentials import Environ
from shareferry.core.errors import ShareFerryError
from shareferry.core.locations import Location
from shareferry.core.options import TransferOptions

#: Where the decision is kept in a job record's options.
LAYOUT_KEY = "local_destination"


class Layout(StrEnum):
    """How a local destination path is taken."""

    DIRECTORY = "directory"  # the files go into it (created when missing)
    NAME = "name"  # it names what is created: the file, or the directory recreated there


async def decide_layout(
    source: Location,
    destination: Location,
    *,
    command: Literal["copy", "sync"],
    options: TransferOptions,
    environ: Environ | None,
) -> Layout | None:
    """The layout of a local ``destination``; None for a remote one, and when the source cannot
    be looked at (the job itself then reports why)."""
    if destination.kind != "local":
        return None
    assert destination.local_path is not None
    target = _absolute(destination.local_path)
    if destination.trailing_slash or target.is_dir():
        return Layout.DIRECTORY
    if target.exists() or target.is_symlink():
        return Layout.NAME
    is_dir = await _source_is_directory(source, command=command, options=options, environ=environ)
    if is_dir is None:
        return None
    return Layout.DIRECTORY if is_dir else Layout.NAME


def stored_layout(options: dict[str, Any]) -> Layout | None:
    """The layout a job record keeps (None for a record without one)."""
    value = options.get(LAYOUT_KEY)
    return next((layout for layout in Layout if layout.value == value), None)


def with_layout(destination: Location, layout: Layout | None) -> Location:
    """``destination`` written so the backends take it as ``layout`` says: a directory gets its
    trailing ``/`` (it is then created when missing and always rooted at)."""
    if layout is not Layout.DIRECTORY or destination.trailing_slash:
        return destination
    assert destination.local_path is not None
    return replace(destination, local_path=destination.local_path + os.sep, trailing_slash=True)


async def _source_is_directory(
    source: Location, *, command: Literal["copy", "sync"], options: TransferOptions, environ: Environ | None
) -> bool | None:
    """Whether ``source`` is copied as a directory (None when it cannot be told)."""
    if source.kind == "local":
        assert source.local_path is not None
        if "*" in source.local_path:
            return True
    elif source.container is None or not source.path.strip("/") or "*" in source.path:
        return True
    if command == "sync" and source.trailing_slash:
        return True  # sync takes a trailing / as "the directory", whatever the name also holds
    try:
        opened = await open_source(source, environ=environ, options=options)
        try:
            found = await opened.backend.stat(opened.path.strip("/"))
        finally:
            await opened.backend.close()
    except ShareFerryError:
        return None
    if found is None:
        return None
    return found.is_dir


def _absolute(text: str) -> Path:
    """``~`` expanded and ``..`` folded lexically, as the backends take a local path."""
    return Path(os.path.abspath(os.path.expanduser(text)))  # noqa: PTH100, PTH111
