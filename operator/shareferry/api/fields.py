"""Reading typed fields out of a spec mapping, with messages that name the field's path.

What the CRD's OpenAPI schema checks on the API server (types, enums, bounds, required and
unknown fields) is checked again here, so a manifest that never met a server (``shareferry run
-f``, a server without CEL) gets the same refusal. Every problem is a :class:`SpecError`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from shareferry.api.errors import SpecError

INVALID_SPEC = "InvalidSpec"


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def type_name(value: object) -> str:
    """The JSON word for ``value``'s type, as the API server says it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, Sequence):
        return "array"
    return type(value).__name__


def wrong_type(path: str, value: object, wanted: str, *, reason: str = INVALID_SPEC) -> SpecError:
    hint = ""
    if wanted == "a string" and isinstance(value, bool):
        hint = f' (quote it: "{str(value).lower()}")'
    return SpecError(reason, f"{path} must be {wanted}, not {type_name(value)}{hint}")


def mapping(
    spec: Mapping[str, Any], key: str, path: str, *, reason: str = INVALID_SPEC
) -> Mapping[str, Any] | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise wrong_type(join(path, key), value, "an object", reason=reason)
    return value


def string(spec: Mapping[str, Any], key: str, path: str, *, reason: str = INVALID_SPEC) -> str | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise wrong_type(join(path, key), value, "a string", reason=reason)
    return value


def required_string(spec: Mapping[str, Any], key: str, path: str, *, max_length: int | None = None) -> str:
    value = string(spec, key, path)
    if not value:
        raise SpecError(INVALID_SPEC, f"{join(path, key)}: Required value")
    if max_length is not None and len(value) > max_length:
        raise SpecError(INVALID_SPEC, f"{join(path, key)} is longer than {max_length} characters")
    return value


def boolean(spec: Mapping[str, Any], key: str, path: str, *, reason: str = INVALID_SPEC) -> bool | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise wrong_type(join(path, key), value, "true or false", reason=reason)
    return value


def integer(
    spec: Mapping[str, Any],
    key: str,
    path: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    reason: str = INVALID_SPEC,
) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(join(path, key), value, "a whole number", reason=reason)
    _check_bounds(join(path, key), value, minimum, maximum, reason=reason)
    return value


def number(
    spec: Mapping[str, Any],
    key: str,
    path: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    reason: str = INVALID_SPEC,
) -> float | None:
    """A finite number; ``above`` is an exclusive minimum."""
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise wrong_type(join(path, key), value, "a number", reason=reason)
    if above is not None and value <= above:
        raise SpecError(reason, f"{join(path, key)} must be greater than {above:g}, not {value:g}")
    _check_bounds(join(path, key), value, minimum, maximum, reason=reason)
    return float(value)


def _check_bounds(
    path: str, value: float, minimum: float | None, maximum: float | None, *, reason: str
) -> None:
    if minimum is not None and value < minimum:
        raise SpecError(reason, f"{path} must be at least {minimum:g}, not {value:g}")
    if maximum is not None and value > maximum:
        raise SpecError(reason, f"{path} must be at most {maximum:g}, not {value:g}")


def string_list(spec: Mapping[str, Any], key: str, path: str, *, reason: str = INVALID_SPEC) -> list[str]:
    value = spec.get(key)
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise wrong_type(join(path, key), value, "a list of strings", reason=reason)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise wrong_type(f"{join(path, key)}[{index}]", item, "a string", reason=reason)
    return list(value)


def string_map(spec: Mapping[str, Any], key: str, path: str, *, reason: str = INVALID_SPEC) -> dict[str, str]:
    found = mapping(spec, key, path, reason=reason)
    if found is None:
        return {}
    for name, item in found.items():
        if not isinstance(item, str):
            raise wrong_type(f"{join(path, key)}.{name}", item, "a string", reason=reason)
    return dict(found)


def object_list(spec: Mapping[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    value = spec.get(key)
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise wrong_type(join(path, key), value, "a list of objects")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise wrong_type(f"{join(path, key)}[{index}]", item, "an object")
    return [plain(item) for item in value]


def choice(
    spec: Mapping[str, Any], key: str, path: str, choices: Sequence[str], *, reason: str = INVALID_SPEC
) -> str | None:
    """One of ``choices`` (exact spelling, as the API server's enum)."""
    value = string(spec, key, path, reason=reason)
    if value is None or value in choices:
        return value
    raise SpecError(
        reason, f'{join(path, key)}: Unsupported value: "{value}": supported values: {", ".join(choices)}'
    )


def date_time_text(spec: Mapping[str, Any], key: str, path: str, *, reason: str = INVALID_SPEC) -> str | None:
    """A date/time as text; a YAML timestamp (already a datetime) is written back as ISO 8601."""
    value = spec.get(key)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return string(spec, key, path, reason=reason)


def reject_unknown(
    spec: Mapping[str, Any], known: Collection[str], path: str, *, reason: str = INVALID_SPEC
) -> None:
    """An unknown field is refused (kubectl's strict field validation does the same), with the
    nearest known name when it looks like a misspelling."""
    for key in spec:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), list(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SpecError(reason, f'{join(path, str(key))}: unknown field "{join(path, str(key))}"{hint}')


def plain(value: Any) -> Any:
    """``value`` as plain JSON-like data (dicts, lists), whatever mapping types it came in."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value
