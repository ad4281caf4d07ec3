"""What a numeric option accepts, and the one message that says so.

Every number a person gives (``--block-size-mb``, ``--cap-mbps``, ``--quota-gb``,
``--max-failures``, ...) is described by a :class:`NumberRule`: the flag's name, the range, whether
it must be whole, its unit and what a special value means. The same rule reads the text of a
flag (:meth:`NumberRule.parse`: plain decimal notation only, so no ``nan``, ``inf``, ``0x10`` or
``1_000``) and checks a number that came from elsewhere, such as a CopyJob's YAML
(:meth:`NumberRule.check`); both refuse with one line naming the flag, the range and the value:
``--block-size-mb must be a number of MiB from 0 to 4000 (0: the default, 8 MiB), not '5000'``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from shareferry.core.errors import UsageError

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_WHOLE = re.compile(r"[+-]?\d+")
#: Digits beyond which a whole number is out of every range here (and int() is not asked to
#: read thousands of digits).
_MAX_DIGITS = 30


def _shown(value: float) -> str:
    """``value`` as a person writes it: ``1000000``, ``0.25``, ``1e-07``, ``1e+30``."""
    if math.isfinite(value) and float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


@dataclass(frozen=True)
class NumberRule:
    """A numeric option: ``minimum`` to ``maximum`` inclusive, whole numbers only when ``whole``.

    ``noun`` is what a value is (``a number of MiB``); ``note`` says what a special value in
    the range means (``0: the default, 8 MiB``)."""

    flag: str
    minimum: float
    maximum: float
    whole: bool = False
    noun: str = ""
    note: str = ""

    def allowed(self) -> str:
        """``a whole number from 1 to 1000``, with the unit and the note when there are."""
        noun = self.noun or ("a whole number" if self.whole else "a number")
        text = f"{noun} from {_shown(self.minimum)} to {_shown(self.maximum)}"
        return f"{text} ({self.note})" if self.note else text

    def refusal(self, given: object) -> UsageError:
        """The one line that refuses ``given`` (text as typed, or a number)."""
        shown = (
            repr(given)
            if isinstance(given, str)
            else _shown(given)
            if isinstance(given, int | float)
            else given
        )
        return UsageError(f"{self.flag} must be {self.allowed()}, not {shown}")

    def check(self, value: float) -> float:
        """``value`` when the rule allows it; :meth:`refusal` otherwise (NaN and infinities
        included; a fraction where a whole number is meant too)."""
        if isinstance(value, bool) or not math.isfinite(value):
            raise self.refusal(value)
        if not self.minimum <= value <= self.maximum or (self.whole and not float(value).is_integer()):
            raise self.refusal(value)
        return value

    def read(self, text: str) -> float:
        """The number ``text`` spells in decimal notation (a whole number when :attr:`whole`),
        not yet checked against the range: :meth:`refusal` for anything else."""
        stripped = text.strip()
        if not (_WHOLE if self.whole else _DECIMAL).fullmatch(stripped):
            raise self.refusal(text)
        if self.whole:
            if len(stripped.lstrip("+-")) > _MAX_DIGITS:
                raise self.refusal(text)
            return int(stripped)
        value = float(stripped)
        if not math.isfinite(value):  # 1e400
            raise self.refusal(text)
        return value

    def parse(self, text: str) -> float:
        """The number ``text`` spells, checked against the range (:meth:`check`)."""
        value = self.read(text)
        try:
            return self.check(value)
        except UsageError:
            raise self.refusal(text) from None

    def parse_whole(self, text: str) -> int:
        """:meth:`parse` for a rule of whole numbers, as an ``int``."""
        if not self.whole:
            raise TypeError(f"{self.flag} takes fractions: use parse()")
        return int(self.parse(text))
