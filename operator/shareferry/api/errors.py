"""The one error the spec model raises: a spec a person must fix, with a reason for conditions."""

from __future__ import annotations

from shareferry.core.errors import UsageError


class SpecError(UsageError):
    """A spec that cannot run as written. ``reason`` is a CamelCase word for a condition
    ("InvalidSpec", "InvalidOptions"); ``message`` says what to change, naming the field
    (``spec.options.includeAfter ...``). A :class:`UsageError`, so commands treat it as bad input."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"SpecError({self.reason!r}, {self.message!r})"
