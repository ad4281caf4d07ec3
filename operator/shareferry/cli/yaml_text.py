"""YAML for people (``shareferry run``'s status): readable, exact, and safe on a terminal.

Non-ASCII text is written as it is, but a string holding a character that
:mod:`shareferry.core.printable` counts as unsafe (a control character, a bidirectional control,
a line separator, a lone surrogate) is written double-quoted with every non-ASCII character
escaped (``"evil\\e]0;x\\a\\u202E.txt"``): the YAML still loads to the exact string, and nothing
in it can drive the terminal. Secrets are redacted.
"""

from __future__ import annotations

import importlib
from typing import Any

from shareferry.core.printable import UNSAFE
from shareferry.core.redact import redact

yaml: Any = importlib.import_module("yaml")  # PyYAML ships no type hints


def _write_double_quoted(dumper: Any, text: str, split: bool = True) -> None:
    """The emitter's own, with every character outside printable ASCII escaped (\\e, \\x85, \\u202E)."""
    allow_unicode = dumper.allow_unicode
    dumper.allow_unicode = False
    try:
        yaml.SafeDumper.write_double_quoted(dumper, text, split)
    finally:
        dumper.allow_unicode = allow_unicode


def _represent_str(dumper: Any, value: str) -> Any:
    style = '"' if UNSAFE.search(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


#: A safe dumper that double-quotes unsafe strings and escapes all non-ASCII in them.
_TerminalSafeDumper: Any = type(
    "_TerminalSafeDumper", (yaml.SafeDumper,), {"write_double_quoted": _write_double_quoted}
)
_TerminalSafeDumper.add_representer(str, _represent_str)


def yaml_text(value: Any) -> str:
    """``value`` as block-style YAML, keys in their order (see the module docstring)."""
    text: str = yaml.dump(value, Dumper=_TerminalSafeDumper, sort_keys=False, allow_unicode=True, width=120)
    return redact(text)
