"""The YAML files of ``shareferry run -f``: read with bounds, every refusal one clear line.

A manifest file is read whole, but never more than :data:`MAX_FILE_BYTES` of it (``-f
/dev/zero`` is refused, not read forever); it must be UTF-8 text (a UTF-8 byte order mark is
allowed). Before anything is built from it, its YAML events are walked once, in constant stack
depth: a document nested deeper than :data:`MAX_DEPTH`, an alias inside the node it names (an
alias loop, which would make a document contain itself) and aliases that expand a document to
more than :data:`MAX_VALUES` values (a "billion laughs") are refused there, so a hostile file
costs a bounded amount of memory and time. Then each document must be empty (skipped) or a
mapping with ``apiVersion`` and ``kind``; what those must be is for
:func:`shareferry.worker.manifests.collect` to say. An empty file (or one of comments only) is
skipped, as ``kubectl apply`` skips it, unless no file holds anything.

Every problem is a :class:`UsageError` naming the file (``-f FILE``) and, in a file of several
documents, the document's number.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO

from shareferry.core.errors import UsageError

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 100
MAX_VALUES = 100_000
_BOM = b"\xef\xbb\xbf"


def read_documents(paths: Sequence[str], *, stdin: BinaryIO | None = None) -> list[tuple[str, Any]]:
    """Every non-empty YAML document of ``paths`` (``-`` is ``stdin``), with where it came from:
    ``FILE``, or ``FILE (document N)`` in a file of several."""
    yaml: Any = importlib.import_module("yaml")
    documents: list[tuple[str, Any]] = []
    for path in paths:
        where = f"-f {path}"
        text = _decode(_read(path, stdin=stdin), where=where)
        _check_events(yaml, text, where=where)
        loaded = _load(yaml, text, where=where)
        for number, document in enumerate(loaded, start=1):
            if document is None:
                continue
            label = f"{path} (document {number})" if len(loaded) > 1 else path
            _check_shape(document, where=f"-f {label}")
            documents.append((label, document))
    if not documents:
        files = " ".join(f"-f {path}" for path in paths)
        raise UsageError(f"the manifests hold no CopyJob: {files} holds no manifest (empty or only comments)")
    return documents


def _read(path: str, *, stdin: BinaryIO | None) -> bytes:
    """At most :data:`MAX_FILE_BYTES` + 1 bytes of ``path``."""
    where = f"-f {path}"
    try:
        if path == "-":
            return (stdin or sys.stdin.buffer).read(MAX_FILE_BYTES + 1)
        with open(path, "rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except IsADirectoryError:
        raise UsageError(f"{where}: is a directory: give a YAML file of manifests") from None
    except OSError as exc:
        raise UsageError(f"{where}: {exc.strerror or exc}") from None
    return data


def _decode(data: bytes, *, where: str) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(
            f"{where}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB: not a file of manifests"
        )
    try:
        return data.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{where}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): "
            "give a YAML file of manifests"
        ) from None


def _loader(yaml: Any) -> Any:
    """libyaml's safe loader when PyYAML was built with it (fast on large files), else PyYAML's."""
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml_problem(yaml: Any, exc: Exception, *, where: str, document: int = 0) -> UsageError:
    """One line for a YAML error: what is wrong and where (the document, when known, and the
    line and column, counting from 1)."""
    invalid = f"document {document} is not valid YAML" if document > 1 else "not valid YAML"
    if isinstance(exc, yaml.MarkedYAMLError):
        what = ": ".join(part for part in (exc.context, exc.problem) if part) or "malformed"
        mark = exc.problem_mark or exc.context_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return UsageError(f"{where}: {invalid}: {what}{at}")
    if isinstance(exc, yaml.reader.ReaderError):
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return UsageError(
            f"{where}: {invalid}: character U+{character:04X} at offset {exc.position} is not allowed"
        )
    return UsageError(f"{where}: {invalid}: {' '.join(str(exc).split())}")


def _check_events(yaml: Any, text: str, *, where: str) -> None:
    """Walk the YAML events of ``text`` once (no recursion, constant memory per event) and refuse
    deep nesting, alias loops and alias expansion past the bounds (see the module docstring)."""
    events = yaml.events
    stack: list[tuple[str | None, int]] = []  # open collections: (anchor, values so far)
    sizes: dict[str, int] = {}  # anchor -> values its node expands to (per document)
    number = total = 0
    try:
        for event in yaml.parse(text, Loader=_loader(yaml)):
            if isinstance(event, events.DocumentStartEvent):
                number += 1
                sizes.clear()
                total = 0
                continue
            if isinstance(event, events.CollectionStartEvent):
                stack.append((event.anchor, 1))
                if len(stack) > MAX_DEPTH:
                    raise UsageError(f"{where}: document {number} nests deeper than {MAX_DEPTH} levels")
                size = 1
            elif isinstance(event, events.CollectionEndEvent):
                anchor, size = stack.pop()
                if anchor is not None:
                    sizes[anchor] = size
                _add(stack, size)
                continue
            elif isinstance(event, events.AliasEvent):
                if any(anchor == event.anchor for anchor, _ in stack):
                    raise UsageError(
                        f"{where}: document {number}: the alias *{event.anchor} is inside the node "
                        f"&{event.anchor} it refers to (an alias loop): a manifest cannot contain itself"
                    )
                size = sizes.get(event.anchor, 1)  # an undefined alias: the loader says so
                _add(stack, size)
            elif isinstance(event, events.ScalarEvent):
                size = 1
                if event.anchor is not None:
                    sizes[event.anchor] = size
                _add(stack, size)
            else:
                continue
            total += size
            if total > MAX_VALUES:
                raise UsageError(
                    f"{where}: document {number} expands to more than {MAX_VALUES} values "
                    "(YAML aliases repeating nodes?): a manifest is far smaller"
                )
    except yaml.YAMLError as exc:
        raise _yaml_problem(yaml, exc, where=where, document=number) from None


def _add(stack: list[tuple[str | None, int]], size: int) -> None:
    if stack:
        anchor, count = stack[-1]
        stack[-1] = (anchor, count + size)


def _load(yaml: Any, text: str, *, where: str) -> list[Any]:
    try:
        return list(yaml.load_all(text, Loader=_loader(yaml)))
    except yaml.YAMLError as exc:
        raise _yaml_problem(yaml, exc, where=where) from None


def _check_shape(document: Any, *, where: str) -> None:
    """A manifest is a mapping with ``apiVersion`` and ``kind`` (text)."""
    if not isinstance(document, dict):
        kind = "a list" if isinstance(document, list) else f"a single value ({type(document).__name__})"
        raise UsageError(
            f"{where}: is {kind}, not a manifest (a mapping of apiVersion, kind, metadata, spec)"
        )
    missing = [key for key in ("apiVersion", "kind") if not isinstance(document.get(key), str)]
    if missing:
        raise UsageError(
            f"{where}: has no {' or '.join(missing)}: every manifest says what it is "
            "(apiVersion and kind: a CopyJob, a FileShare or a Secret)"
        )
