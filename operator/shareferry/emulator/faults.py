"""Fault injection and request counters, keyed by operation name.

Every request the emulator serves is classified into one operation name (``PutRange``,
``GetFile``, ``CreateShare``..., see :mod:`shareferry.emulator.routing`). A :class:`FaultInjector`
holds an ordered list of :class:`FaultRule`; for each request the app asks
:meth:`FaultInjector.decide` which faults to apply to that operation, and a
:class:`RequestCounters` tallies what was answered (and how often each file's content was
written).

Fault kinds
-----------
``busy``
    Answer ``503 ServerBusy`` with a ``Retry-After`` header of ``retry_after`` seconds (default 1).
``error``
    Answer ``500 InternalError``.
``drop``
    Cut the connection so the client never gets a whole answer. The app decides how: for a
    request with a body (``PutRange``) it reads half the body, then aborts, and the operation is
    not applied; a write without a body is aborted before it runs; a read that answers with a body
    (``GetFile``, listings) sends the headers and half the body, then aborts; a read without one
    (HEAD) is aborted before answering. Dropped requests count as faults, not as answers.
``latency``
    Delay the request by ``latency_ms`` milliseconds, then serve it normally.

``busy``, ``error`` and ``drop`` are *terminal*: they replace the normal answer, so at most one of
them applies to a request. ``latency`` combines with them: a request may be delayed and then
answered 503.

Rule matching
-------------
For one request, :meth:`FaultInjector.decide` walks the rules in order. A rule matches when its
``ops`` is empty (every operation) or contains the request's operation, and its ``count`` is not
yet spent. A matching rule fires with its ``probability`` (one draw per matching request from the
injector's own PRNG, seedable for reproducible runs); a rule that fires has its ``fired`` count
incremented. Once a terminal rule has fired, later terminal rules are skipped (not drawn, not
counted); latency rules keep being considered. The result lists the faults in rule order; when
several latency rules fire the app delays by the sum of their ``latency_ms``.

CLI syntax (``--fault``)
------------------------
``KIND[:OPS][:key=value,...]``

* ``KIND`` is ``busy``, ``error``, ``drop`` or ``latency``.
* ``OPS`` is ``*`` or empty (every operation), or ``+``-separated operation names
  (``PutRange+CreateFile``). Names are checked against :data:`KNOWN_OPS`; a name not in it is
  accepted only if it looks like an operation name (a CamelCase word such as ``GetFooBar``), so
  that a typo such as ``putrange`` is refused with a suggestion.
* The keys are ``probability`` (0..1, default 1), ``count`` (fire at most this many times, a
  non-negative integer; default unlimited), ``latency_ms`` (non-negative, ``latency`` rules only)
  and ``retry_after`` (seconds, non-negative, ``busy`` rules only). When there is no ``OPS`` part,
  the parameters may directly follow the kind (``error:count=3`` is ``error::count=3``).

Examples::

    busy:PutRange:probability=0.3,retry_after=1
    drop:GetFile:count=2
    latency:*:latency_ms=50
    error::count=3

JSON form (admin endpoint)
--------------------------
``{"kind": "busy", "ops": ["PutRange"], "probability": 0.3, "count": null, "retry_after": 1}``.
``ops`` may also be a string in the CLI ``OPS`` syntax; a missing or empty ``ops`` means every
operation. ``fired`` is accepted so that what :meth:`FaultInjector.to_json` returns can be sent
back. Unknown keys and values of the wrong type are refused with a :class:`ValueError` naming the
problem.
"""

from __future__ import annotations

import difflib
import math
import random
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from shareferry.emulator.routing import operation_names

FaultKind = Literal["busy", "error", "drop", "latency"]

#: Every fault kind, in the order error messages list them.
FAULT_KINDS: tuple[str, ...] = tuple(sorted(get_args(FaultKind)))
#: The kinds that replace the normal answer; at most one applies to a request.
TERMINAL_KINDS: frozenset[str] = frozenset({"busy", "error", "drop"})
#: Every operation name the router produces.
KNOWN_OPS: frozenset[str] = operation_names()

_OP_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_RULE_KEYS = ("kind", "ops", "probability", "count", "latency_ms", "retry_after", "fired")
_SPEC_KEYS = ("probability", "count", "latency_ms", "retry_after")


@dataclass
class FaultRule:
    """One fault rule. Validated on construction: bad values raise :class:`ValueError`.

    ``ops`` empty means every operation. ``count`` ``None`` means the rule never runs out.
    ``latency_ms`` only applies to ``latency`` rules and ``retry_after`` only to ``busy`` rules;
    giving either a non-default value on another kind is refused as a likely mistake.
    """

    kind: FaultKind
    ops: frozenset[str] = field(default_factory=frozenset)
    probability: float = 1.0
    count: int | None = None
    latency_ms: int = 0
    retry_after: int = 1
    fired: int = 0

    def __post_init__(self) -> None:
        self.kind = _check_kind(self.kind)
        if isinstance(self.ops, str):
            raise ValueError("ops must be a set of operation names, not a string")
        self.ops = frozenset(_check_op(op) for op in self.ops)
        self.probability = _check_probability(self.probability)
        if self.count is not None:
            self.count = _check_non_negative("count", self.count)
        self.latency_ms = _check_non_negative("latency_ms", self.latency_ms)
        self.retry_after = _check_non_negative("retry_after", self.retry_after)
        self.fired = _check_non_negative("fired", self.fired)
        if self.kind != "latency" and self.latency_ms != 0:
            raise ValueError(f"latency_ms only applies to latency rules, not to {self.kind} rules")
        if self.kind != "busy" and self.retry_after != 1:
            raise ValueError(f"retry_after only applies to busy rules, not to {self.kind} rules")

    @property
    def terminal(self) -> bool:
        """The rule replaces the normal answer (``busy``, ``error``, ``drop``)."""
        return self.kind in TERMINAL_KINDS

    @property
    def spent(self) -> bool:
        """The rule has fired ``count`` times and fires no more."""
        return self.count is not None and self.fired >= self.count

    def matches(self, op: str) -> bool:
        """The rule applies to ``op`` (whether or not it is spent)."""
        return not self.ops or op in self.ops

    def fault(self) -> Fault:
        """The decision this rule makes when it fires."""
        return Fault(self.kind, latency_ms=self.latency_ms, retry_after=self.retry_after)

    def to_json(self) -> dict[str, Any]:
        """The JSON form, including ``fired``; :meth:`FaultInjector.rule_from_json` reads it back."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "ops": sorted(self.ops),
            "probability": self.probability,
            "count": self.count,
        }
        if self.kind == "latency":
            out["latency_ms"] = self.latency_ms
        if self.kind == "busy":
            out["retry_after"] = self.retry_after
        out["fired"] = self.fired
        return out

    def to_spec(self) -> str:
        """The CLI form (without ``fired``); :meth:`FaultInjector.parse_spec` reads it back."""
        params: list[str] = []
        if self.probability != 1.0:
            params.append(f"probability={self.probability!r}")
        if self.count is not None:
            params.append(f"count={self.count}")
        if self.kind == "latency":
            params.append(f"latency_ms={self.latency_ms}")
        if self.kind == "busy" and self.retry_after != 1:
            params.append(f"retry_after={self.retry_after}")
        ops = "+".join(sorted(self.ops)) or "*"
        return f"{self.kind}:{ops}" + (f":{','.join(params)}" if params else "")


@dataclass(frozen=True)
class Fault:
    """The decision for one request: what to do instead of, or before, serving it."""

    kind: FaultKind
    latency_ms: int = 0
    retry_after: int = 1

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL_KINDS


class FaultInjector:
    """An ordered list of fault rules and the PRNG that draws their probabilities.

    Thread-safe: the admin endpoint, the request handlers and a test driving an in-process
    emulator from another thread may all use it.
    """

    def __init__(self, rules: Iterable[FaultRule] = (), seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._rules: list[FaultRule] = list(rules)

    @property
    def rules(self) -> list[FaultRule]:
        """The rules, in order (a new list of the live rule objects)."""
        with self._lock:
            return list(self._rules)

    def __len__(self) -> int:
        with self._lock:
            return len(self._rules)

    def decide(self, op: str) -> list[Fault]:
        """The faults to apply to one request for ``op``, in rule order (empty: serve normally).

        At most one terminal fault (the first terminal rule that fires), plus every latency rule
        that fires. Spent rules are skipped; a rule that fires has its ``fired`` incremented.
        """
        faults: list[Fault] = []
        with self._lock:
            terminal = False
            for rule in self._rules:
                if not rule.matches(op) or rule.spent or (terminal and rule.terminal):
                    continue
                if not self._draw(rule.probability):
                    continue
                rule.fired += 1
                terminal = terminal or rule.terminal
                faults.append(rule.fault())
        return faults

    def _draw(self, probability: float) -> bool:
        # Certain outcomes take no draw, so adding an always-on rule does not shift the
        # seeded sequence the other rules see.
        if probability >= 1.0:
            return True
        if probability <= 0.0:
            return False
        return self._random.random() < probability

    def replace(self, rules: Iterable[FaultRule]) -> None:
        """Replace every rule (the new rules keep their own ``fired`` counts)."""
        new = list(rules)
        with self._lock:
            self._rules = new

    def add(self, rule: FaultRule) -> None:
        """Append one rule (it is considered after the existing ones)."""
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules = []

    def to_json(self) -> list[dict[str, Any]]:
        """Every rule in its JSON form, with its ``fired`` count."""
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    @staticmethod
    def parse_spec(text: str) -> FaultRule:
        """Parse the CLI syntax ``KIND[:OPS][:key=value,...]`` (see the module docstring)."""
        try:
            return _parse_spec(text)
        except ValueError as exc:
            raise ValueError(f"bad fault spec {text!r}: {exc}") from None

    @staticmethod
    def rule_from_json(obj: object) -> FaultRule:
        """Build a rule from its JSON form (see the module docstring), validating every field."""
        if not isinstance(obj, Mapping):
            raise ValueError(f"a fault rule must be a JSON object, got {_json_type(obj)}")
        unknown = sorted(str(key) for key in obj if key not in _RULE_KEYS)
        if unknown:
            raise ValueError(
                f"unknown key(s) in fault rule: {', '.join(unknown)} (known keys: {', '.join(_RULE_KEYS)})"
            )
        if "kind" not in obj:
            raise ValueError("a fault rule needs a 'kind' (one of " + ", ".join(FAULT_KINDS) + ")")
        kind = obj["kind"]
        if not isinstance(kind, str):
            raise ValueError(f"kind must be a string, got {_json_type(kind)}")
        ops_value = obj.get("ops")
        if ops_value is None:
            ops: frozenset[str] = frozenset()
        elif isinstance(ops_value, str):
            ops = _parse_ops_text(ops_value)
        elif isinstance(ops_value, list):
            ops = _parse_ops_list(ops_value)
        else:
            raise ValueError(f"ops must be a list of operation names, got {_json_type(ops_value)}")
        probability = obj.get("probability", 1.0)
        if isinstance(probability, bool) or not isinstance(probability, int | float):
            raise ValueError(f"probability must be a number, got {_json_type(probability)}")
        count = obj.get("count")
        if count is not None:
            count = _json_int("count", count)
        return FaultRule(
            kind=_check_kind(kind),
            ops=ops,
            probability=float(probability),
            count=count,
            latency_ms=_json_int("latency_ms", obj.get("latency_ms", 0)),
            retry_after=_json_int("retry_after", obj.get("retry_after", 1)),
            fired=_json_int("fired", obj.get("fired", 0)),
        )


#: How many files :class:`RequestCounters` tracks writes for; later new files are left out.
MAX_TRACKED_PATHS = 1_000_000


class RequestCounters:
    """Requests answered per operation and status, faults injected per operation and kind, and
    successful content writes per file and operation.

    A file is keyed ``account/share/path`` (the path decoded, spelled as stored). At most
    ``max_paths`` files are tracked (default :data:`MAX_TRACKED_PATHS`, read when the counters are
    made); writes to files beyond that are not counted and the snapshot says ``paths_truncated``.
    """

    def __init__(self, max_paths: int | None = None) -> None:
        self._lock = threading.Lock()
        self._statuses: dict[str, dict[int, int]] = {}
        self._faults: dict[str, dict[str, int]] = {}
        self._writes: dict[str, dict[str, int]] = {}
        self._writes_truncated = False
        self.max_paths = MAX_TRACKED_PATHS if max_paths is None else max_paths

    def record(self, op: str, status: int, written: str | None = None) -> None:
        """Count one answered request; ``written`` is the file a successful content write wrote."""
        with self._lock:
            by_status = self._statuses.setdefault(op, {})
            by_status[status] = by_status.get(status, 0) + 1
            if written is None:
                return
            by_op = self._writes.get(written)
            if by_op is None:
                if len(self._writes) >= self.max_paths:
                    self._writes_truncated = True
                    return
                by_op = self._writes[written] = {}
            by_op[op] = by_op.get(op, 0) + 1

    def moved(self, source: str, destination: str) -> None:
        """A file was renamed: the writes counted for ``source`` are added to ``destination``'s
        (a file staged under a temporary name and renamed into place counts where it landed)."""
        with self._lock:
            by_op = self._writes.pop(source, None)
            if by_op is None:
                return
            into = self._writes.setdefault(destination, {})
            for op, count in by_op.items():
                into[op] = into.get(op, 0) + count

    def record_fault(self, op: str, kind: str) -> None:
        """Count one injected fault (a request may have several: latency, then a terminal one)."""
        with self._lock:
            by_kind = self._faults.setdefault(op, {})
            by_kind[kind] = by_kind.get(kind, 0) + 1

    def snapshot(self, *, paths: bool = False) -> dict[str, Any]:
        """A JSON-ready copy of the counters (operations and statuses sorted).

        ``{"operations": {op: {"total": n, "by_status": {"201": n, ...}}},
        "faults": {op: {kind: n}}, "total": n}``; with ``paths`` also
        ``"paths": {"account/share/path": {op: n}}`` (sorted) and ``"paths_truncated": bool``.
        """
        with self._lock:
            operations: dict[str, Any] = {}
            total = 0
            for op in sorted(self._statuses):
                by_status = self._statuses[op]
                op_total = sum(by_status.values())
                total += op_total
                operations[op] = {
                    "total": op_total,
                    "by_status": {str(status): by_status[status] for status in sorted(by_status)},
                }
            faults = {
                op: {kind: self._faults[op][kind] for kind in sorted(self._faults[op])}
                for op in sorted(self._faults)
            }
            out: dict[str, Any] = {"operations": operations, "faults": faults, "total": total}
            if paths:
                out["paths"] = {
                    path: dict(sorted(self._writes[path].items())) for path in sorted(self._writes)
                }
                out["paths_truncated"] = self._writes_truncated
        return out

    def reset(self) -> None:
        """Forget every count, the per-file writes included."""
        with self._lock:
            self._statuses.clear()
            self._faults.clear()
            self._writes.clear()
            self._writes_truncated = False


def _parse_spec(text: str) -> FaultRule:
    spec = text.strip()
    if not spec:
        raise ValueError("it is empty; expected KIND[:OPS][:key=value,...]")
    parts = spec.split(":")
    if len(parts) > 3:
        raise ValueError("too many ':' parts; expected KIND[:OPS][:key=value,...]")
    kind = parts[0].strip().lower()
    ops_text = params_text = ""
    if len(parts) == 2:
        # ``error:count=3``: op names never contain '=', so this part holds parameters.
        if "=" in parts[1]:
            params_text = parts[1]
        else:
            ops_text = parts[1]
    elif len(parts) == 3:
        ops_text, params_text = parts[1], parts[2]
    values: dict[str, str] = {}
    for item in params_text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise ValueError(f"parameter {item!r} is not key=value")
        if key not in _SPEC_KEYS:
            raise ValueError(f"unknown key {key!r} (known keys: {', '.join(_SPEC_KEYS)})")
        if key in values:
            raise ValueError(f"key {key!r} is given twice")
        if not value:
            raise ValueError(f"key {key!r} has no value")
        values[key] = value
    count = values.get("count")
    return FaultRule(
        kind=_check_kind(kind),
        ops=_parse_ops_text(ops_text),
        probability=_float_text("probability", values.get("probability", "1")),
        count=None if count is None else _int_text("count", count),
        latency_ms=_int_text("latency_ms", values.get("latency_ms", "0")),
        retry_after=_int_text("retry_after", values.get("retry_after", "1")),
    )


def _check_kind(kind: object) -> FaultKind:
    if not isinstance(kind, str) or kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r} (expected one of {', '.join(FAULT_KINDS)})")
    return cast(FaultKind, kind)


def _check_op(op: object) -> str:
    if not isinstance(op, str):
        raise ValueError(f"an operation name must be a string, got {_json_type(op)}")
    if op in KNOWN_OPS or _OP_NAME.match(op):
        return op
    hint = ""
    by_lower = {known.lower(): known for known in KNOWN_OPS}
    close = [by_lower[op.lower()]] if op.lower() in by_lower else []
    close = close or difflib.get_close_matches(op, sorted(KNOWN_OPS), n=3)
    if close:
        hint = f"did you mean {' or '.join(close)}? "
    raise ValueError(
        f"{op!r} is not an operation name; {hint}known operations: {', '.join(sorted(KNOWN_OPS))}"
    )


def _parse_ops_text(text: str) -> frozenset[str]:
    text = text.strip()
    if text in ("", "*"):
        return frozenset()
    names = [name.strip() for name in text.split("+")]
    if "" in names:
        raise ValueError(f"empty operation name in {text!r} (separate names with '+')")
    return _parse_ops_list(names)


def _parse_ops_list(names: list[Any]) -> frozenset[str]:
    if names == ["*"]:
        return frozenset()
    if "*" in names:
        raise ValueError("'*' (every operation) cannot be combined with operation names")
    return frozenset(_check_op(name) for name in names)


def _check_probability(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"probability must be a number, got {_json_type(value)}")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"probability must be between 0 and 1, got {value!r}")
    return float(value)


def _check_non_negative(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {_json_type(value)}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def _float_text(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None


def _int_text(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None


def _json_int(name: str, value: object) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {_json_type(value)}")
    return value


def _json_type(value: object) -> str:
    """Name a value's type in JSON terms, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__
