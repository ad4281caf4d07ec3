"""Status conditions: set, replace, keep the transition time while the status holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shareferry.api.conditions import get_condition, is_true, set_condition

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_a_new_condition_is_added_with_the_time_and_generation() -> None:
    conditions = set_condition(
        [], type="Ready", status="False", reason="MissingSecret", message="no Secret x", generation=3, now=T0
    )
    assert conditions == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "MissingSecret",
            "message": "no Secret x",
            "lastTransitionTime": "2024-05-01T12:00:00Z",
            "observedGeneration": 3,
        }
    ]


def test_the_transition_time_is_kept_while_the_status_holds() -> None:
    first = set_condition([], type="Ready", status="False", reason="A", message="a", generation=1, now=T0)
    second = set_condition(first, type="Ready", status="False", reason="B", message="b", generation=2, now=T1)
    ready = get_condition(second, "Ready")
    assert ready is not None
    assert ready["lastTransitionTime"] == "2024-05-01T12:00:00Z"
    assert (ready["reason"], ready["message"], ready["observedGeneration"]) == ("B", "b", 2)
    assert len(second) == 1


def test_the_transition_time_changes_with_the_status() -> None:
    first = set_condition([], type="Ready", status="False", reason="A", message="a", generation=1, now=T0)
    second = set_condition(
        first, type="Ready", status="True", reason="Ready", message="", generation=1, now=T1
    )
    assert get_condition(second, "Ready")["lastTransitionTime"] == "2024-05-01T12:05:00Z"  # type: ignore[index]
    assert is_true(second, "Ready") and not is_true(first, "Ready")


def test_other_conditions_are_left_as_they_were_and_in_order() -> None:
    other = {
        "type": "Progressing",
        "status": "True",
        "reason": "X",
        "lastTransitionTime": "2020-01-01T00:00:00Z",
    }
    conditions = set_condition(
        [other], type="Ready", status="True", reason="R", message="m", generation=None, now=T0
    )
    assert conditions[0] == other and conditions[1]["type"] == "Ready"
    assert "observedGeneration" not in conditions[1]
    assert get_condition(conditions, "Missing") is None


def test_a_message_is_one_redacted_bounded_line() -> None:
    message = "copy failed:\n  https://a.file.core.windows.net/s?sv=1&sig=TOPSECRET " + "x" * 5000
    condition = set_condition(
        [], type="Ready", status="False", reason="R", message=message, generation=1, now=T0
    )[0]
    assert "TOPSECRET" not in condition["message"] and "\n" not in condition["message"]
    assert len(condition["message"]) <= 1024


def test_a_status_is_true_false_or_unknown() -> None:
    with pytest.raises(ValueError, match="True, False or Unknown"):
        set_condition([], type="Ready", status="yes", reason="R", message="m", generation=1, now=T0)
