"""What a job plan remembers of the request that started it, as JSON, so it can be resumed.

Only what is safe to store: the source and destination without any SAS (the user gives SAS
tokens again on resume, or the environment supplies the credentials), ``--from-to`` and the
options. :func:`options_to_json` / :func:`options_from_json` convert the option dataclasses
field by field (enums by value, date/times in ISO 8601, tuples as lists).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from datetime import datetime
from typing import Any, TypeVar

from shareferry.core.errors import UsageError
from shareferry.core.locations import Location

T = TypeVar("T")


def stored_location(location: Location, raw: str) -> str:
    """The location as a plan stores it: a URL without its SAS (the share snapshot kept), or
    the local path as given."""
    if location.kind == "local":
        return raw
    return location.url(with_sas=False)


def with_sas(stored: str, sas: str | None) -> str:
    """A stored URL with a SAS given on resume (``?`` or ``&`` as needed; a leading ``?`` in
    the SAS is dropped)."""
    if not sas:
        return stored
    sas = sas.lstrip("?")
    return f"{stored}{'&' if '?' in stored else '?'}{sas}"


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _to_json(item) for key, item in value.items()}
    return value


def options_to_json(options: Any) -> dict[str, Any]:
    """An options dataclass as a JSON-able dict."""
    result = _to_json(options)
    assert isinstance(result, dict)
    return result


def _from_json(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return _from_json(options[0], value)
    if origin is tuple:
        return tuple(_from_json(typing.get_args(kind)[0], item) for item in value)
    if origin is dict:
        return dict(value)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(value)
    if kind is datetime:
        return datetime.fromisoformat(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return options_from_json(kind, value)
    if kind is float and isinstance(value, int):
        return float(value)
    return value


def options_from_json(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild an options dataclass stored by :func:`options_to_json`; fields it does not know
    (a plan written by another version) are ignored, missing ones take their defaults."""
    assert dataclasses.is_dataclass(cls)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    try:
        values = {name: _from_json(hints[name], value) for name, value in data.items() if name in known}
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"the job plan's options cannot be read back: {exc}") from None
