"""Fault rules (CLI and JSON forms), the injector's decisions and the request counters."""

from __future__ import annotations

import json

import pytest

from shareferry.emulator.faults import (
    KNOWN_OPS,
    Fault,
    FaultInjector,
    FaultRule,
    RequestCounters,
)
from shareferry.emulator.routing import operation_names

parse = FaultInjector.parse_spec
from_json = FaultInjector.rule_from_json


# --- KNOWN_OPS -------------------------------------------------------------------------------


def test_known_ops_cover_the_router_and_the_copy_variants() -> None:
    assert operation_names() == KNOWN_OPS
    for op in ("PutRange", "GetFile", "CreateFile", "ListDirectory", "CreateShare", "ListShares"):
        assert op in KNOWN_OPS
    assert "CopyFile" in KNOWN_OPS
    assert "PutRangeFromURL" in KNOWN_OPS


# --- parse_spec ------------------------------------------------------------------------------


def test_spec_busy_with_probability_and_retry_after() -> None:
    rule = parse("busy:PutRange:probability=0.3,retry_after=2")
    assert rule == FaultRule("busy", frozenset({"PutRange"}), probability=0.3, retry_after=2)


def test_spec_drop_with_count() -> None:
    rule = parse("drop:GetFile:count=2")
    assert rule.kind == "drop"
    assert rule.ops == frozenset({"GetFile"})
    assert rule.count == 2
    assert rule.probability == 1.0


def test_spec_latency_on_every_op() -> None:
    rule = parse("latency:*:latency_ms=50")
    assert rule.kind == "latency"
    assert rule.ops == frozenset()
    assert rule.latency_ms == 50


@pytest.mark.parametrize("text", ["error::count=3", "error:count=3", "error:*:count=3", " error::count=3, "])
def test_spec_empty_or_star_ops_mean_every_op(text: str) -> None:
    assert parse(text) == FaultRule("error", frozenset(), count=3)


def test_spec_kind_alone_and_several_ops() -> None:
    assert parse("drop") == FaultRule("drop")
    assert parse("busy:PutRange+CreateFile").ops == frozenset({"PutRange", "CreateFile"})


def test_spec_accepts_an_unknown_but_op_shaped_name() -> None:
    assert parse("error:GetFooBar").ops == frozenset({"GetFooBar"})


def test_spec_round_trips_through_to_spec() -> None:
    for text in (
        "busy:PutRange:probability=0.3,retry_after=5",
        "drop:GetFile:count=2",
        "latency:*:latency_ms=50",
        "error::count=3",
        "busy:CreateFile+PutRange",
    ):
        rule = parse(text)
        assert parse(rule.to_spec()) == rule


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "bad fault spec '': it is empty"),
        ("   ", "it is empty; expected KIND[:OPS][:key=value,...]"),
        ("slow:PutRange", "unknown fault kind 'slow'"),
        ("busy:PutRange:probability=1.5", "probability must be between 0 and 1, got 1.5"),
        ("busy:PutRange:probability=-0.1", "probability must be between 0 and 1"),
        ("busy:PutRange:probability=nan", "probability must be between 0 and 1"),
        ("busy:PutRange:probability=often", "probability must be a number, got 'often'"),
        ("drop:GetFile:count=-1", "count must not be negative, got -1"),
        ("drop:GetFile:count=two", "count must be an integer, got 'two'"),
        ("latency:*:latency_ms=-5", "latency_ms must not be negative, got -5"),
        ("busy:*:retry_after=-1", "retry_after must not be negative"),
        ("busy:PutRange:colour=red", "bad fault spec 'busy:PutRange:colour=red': unknown key 'colour'"),
        ("busy:PutRange:count", "parameter 'count' is not key=value"),
        ("busy:PutRange:count=", "key 'count' has no value"),
        ("busy:PutRange:count=1,count=2", "key 'count' is given twice"),
        ("busy:PutRange:count=1:extra", "too many ':' parts"),
        ("busy:putrange", "'putrange' is not an operation name; did you mean PutRange?"),
        ("busy:Put-Range", "'Put-Range' is not an operation name"),
        ("busy:PutRange+", "empty operation name"),
        ("busy:*+PutRange", "'*' (every operation) cannot be combined"),
        ("busy:PutRange:latency_ms=50", "latency_ms only applies to latency rules, not to busy rules"),
        ("error::retry_after=3", "retry_after only applies to busy rules, not to error rules"),
    ],
)
def test_spec_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse(text)
    assert message in str(info.value)


def test_unknown_op_error_lists_the_known_ops() -> None:
    with pytest.raises(ValueError) as info:
        parse("busy:put_range")
    assert "known operations:" in str(info.value)
    assert "ListDirectory" in str(info.value)


# --- rule_from_json / to_json ----------------------------------------------------------------


def test_json_rule_minimal_and_full() -> None:
    assert from_json({"kind": "error"}) == FaultRule("error")
    rule = from_json(
        {"kind": "busy", "ops": ["PutRange", "CreateFile"], "probability": 0.25, "count": 4, "retry_after": 3}
    )
    assert rule == FaultRule("busy", frozenset({"PutRange", "CreateFile"}), 0.25, 4, retry_after=3)
    assert from_json({"kind": "latency", "ops": "*", "latency_ms": 20}).ops == frozenset()
    assert from_json({"kind": "drop", "ops": "GetFile+PutRange"}).ops == frozenset({"GetFile", "PutRange"})
    assert from_json({"kind": "drop", "ops": None, "count": None}) == FaultRule("drop")
    assert from_json({"kind": "busy", "probability": 1}).probability == 1.0


def test_to_json_round_trips_with_fired_counts() -> None:
    injector = FaultInjector(
        [parse("busy:PutRange:count=2,retry_after=4"), parse("latency::latency_ms=7"), parse("error:GetFile")]
    )
    injector.decide("PutRange")
    dumped = json.loads(json.dumps(injector.to_json()))
    assert dumped == [
        {"kind": "busy", "ops": ["PutRange"], "probability": 1.0, "count": 2, "retry_after": 4, "fired": 1},
        {"kind": "latency", "ops": [], "probability": 1.0, "count": None, "latency_ms": 7, "fired": 1},
        {"kind": "error", "ops": ["GetFile"], "probability": 1.0, "count": None, "fired": 0},
    ]
    assert [from_json(item) for item in dumped] == injector.rules


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (["busy"], "a fault rule must be a JSON object, got array"),
        ("busy", "a fault rule must be a JSON object, got string 'busy'"),
        ({}, "a fault rule needs a 'kind'"),
        ({"kind": "boom"}, "unknown fault kind 'boom'"),
        ({"kind": 3}, "kind must be a string, got number 3"),
        ({"kind": "busy", "colour": "red"}, "unknown key(s) in fault rule: colour"),
        ({"kind": "busy", "ops": 5}, "ops must be a list of operation names, got number 5"),
        ({"kind": "busy", "ops": ["PutRange", 5]}, "an operation name must be a string, got number 5"),
        ({"kind": "busy", "ops": ["getfile"]}, "did you mean GetFile?"),
        ({"kind": "busy", "probability": 2}, "probability must be between 0 and 1, got 2.0"),
        ({"kind": "busy", "probability": "0.5"}, "probability must be a number, got string '0.5'"),
        ({"kind": "busy", "probability": True}, "probability must be a number, got boolean true"),
        ({"kind": "busy", "count": -2}, "count must not be negative, got -2"),
        ({"kind": "busy", "count": 1.5}, "count must be an integer, got number 1.5"),
        ({"kind": "busy", "count": False}, "count must be an integer, got boolean false"),
        ({"kind": "latency", "latency_ms": -1}, "latency_ms must not be negative"),
        ({"kind": "latency", "latency_ms": "50"}, "latency_ms must be an integer, got string '50'"),
        ({"kind": "busy", "fired": -1}, "fired must not be negative"),
        ({"kind": "drop", "latency_ms": 10}, "latency_ms only applies to latency rules"),
    ],
)
def test_json_errors_name_the_problem(obj: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        from_json(obj)
    assert message in str(info.value)


def test_rule_constructor_validates_too() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultRule("nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="probability must be between 0 and 1"):
        FaultRule("busy", probability=3.0)
    with pytest.raises(ValueError, match="not a string"):
        FaultRule("busy", ops="PutRange")  # type: ignore[arg-type]


# --- decide ----------------------------------------------------------------------------------


def test_no_rules_no_faults() -> None:
    assert FaultInjector().decide("PutRange") == []


def test_decide_honours_ops() -> None:
    injector = FaultInjector([parse("busy:PutRange+CreateFile:retry_after=3")])
    assert injector.decide("PutRange") == [Fault("busy", retry_after=3)]
    assert injector.decide("CreateFile") == [Fault("busy", retry_after=3)]
    assert injector.decide("GetFile") == []
    assert injector.rules[0].fired == 2


def test_empty_ops_match_every_op() -> None:
    injector = FaultInjector([parse("error")])
    for op in sorted(KNOWN_OPS):
        assert injector.decide(op) == [Fault("error")]


def test_decide_honours_count() -> None:
    injector = FaultInjector([parse("drop:GetFile:count=2")])
    decisions = [injector.decide("GetFile") for _ in range(5)]
    assert decisions == [[Fault("drop")], [Fault("drop")], [], [], []]
    assert injector.rules[0].fired == 2
    assert injector.rules[0].spent


def test_count_zero_never_fires() -> None:
    injector = FaultInjector([parse("error::count=0")])
    assert injector.decide("PutRange") == []
    assert injector.rules[0].fired == 0


def test_probability_half_with_a_seed() -> None:
    injector = FaultInjector([parse("busy:PutRange:probability=0.5")], seed=1234)
    fired = sum(bool(injector.decide("PutRange")) for _ in range(1000))
    assert 400 <= fired <= 600
    assert injector.rules[0].fired == fired


def test_seeded_decisions_are_reproducible() -> None:
    def run() -> list[bool]:
        injector = FaultInjector([parse("error::probability=0.3")], seed=42)
        return [bool(injector.decide("GetFile")) for _ in range(200)]

    assert run() == run()


def test_probability_zero_never_and_one_always() -> None:
    injector = FaultInjector(
        [parse("error:GetFile:probability=0"), parse("busy:PutRange:probability=1")], seed=7
    )
    assert all(injector.decide("GetFile") == [] for _ in range(500))
    assert all(injector.decide("PutRange") == [Fault("busy")] for _ in range(500))
    assert [rule.fired for rule in injector.rules] == [0, 500]


def test_latency_combines_with_one_terminal_fault() -> None:
    injector = FaultInjector(
        [
            parse("latency:PutRange:latency_ms=50"),
            parse("busy:PutRange:count=1"),
            parse("error:PutRange"),
            parse("latency::latency_ms=5"),
        ]
    )
    first = injector.decide("PutRange")
    assert first == [Fault("latency", latency_ms=50), Fault("busy"), Fault("latency", latency_ms=5)]
    # busy is spent: the error rule is now the first terminal rule that fires.
    second = injector.decide("PutRange")
    assert second == [Fault("latency", latency_ms=50), Fault("error"), Fault("latency", latency_ms=5)]
    assert [f.terminal for f in second] == [False, True, False]
    # The error rule was skipped (not counted) while busy fired.
    assert [rule.fired for rule in injector.rules] == [2, 1, 1, 2]


def test_at_most_one_terminal_fault() -> None:
    injector = FaultInjector([parse("drop:GetFile"), parse("error:GetFile"), parse("busy")])
    for _ in range(10):
        assert injector.decide("GetFile") == [Fault("drop")]
    assert [rule.fired for rule in injector.rules] == [10, 0, 0]


def test_a_terminal_rule_that_does_not_fire_leaves_room_for_the_next() -> None:
    injector = FaultInjector([parse("error:GetFile:probability=0"), parse("busy:GetFile")])
    assert injector.decide("GetFile") == [Fault("busy")]


def test_replace_add_clear() -> None:
    injector = FaultInjector([parse("error")])
    injector.add(parse("busy:PutRange"))
    assert [rule.kind for rule in injector.rules] == ["error", "busy"]
    assert len(injector) == 2
    injector.replace([parse("drop:GetFile")])
    assert injector.decide("PutRange") == []
    assert injector.decide("GetFile") == [Fault("drop")]
    injector.clear()
    assert injector.rules == []
    assert injector.to_json() == []
    assert injector.decide("GetFile") == []


# --- counters --------------------------------------------------------------------------------


def test_counters_snapshot_and_reset() -> None:
    counters = RequestCounters()
    assert counters.snapshot() == {"operations": {}, "faults": {}, "total": 0}
    counters.record("PutRange", 201)
    counters.record("PutRange", 201)
    counters.record("PutRange", 503)
    counters.record("GetFile", 200)
    counters.record_fault("PutRange", "busy")
    counters.record_fault("PutRange", "latency")
    counters.record_fault("PutRange", "busy")
    snapshot = counters.snapshot()
    assert snapshot == {
        "operations": {
            "GetFile": {"total": 1, "by_status": {"200": 1}},
            "PutRange": {"total": 3, "by_status": {"201": 2, "503": 1}},
        },
        "faults": {"PutRange": {"busy": 2, "latency": 1}},
        "total": 4,
    }
    assert json.loads(json.dumps(snapshot)) == snapshot
    # A snapshot is a copy: later records do not change it.
    counters.record("GetFile", 200)
    assert snapshot["operations"]["GetFile"]["total"] == 1
    counters.reset()
    assert counters.snapshot() == {"operations": {}, "faults": {}, "total": 0}
