"""The task state machine's transition table."""

from __future__ import annotations

import pytest

from api_server.workflow.state_machine import (
    OPEN_STATES,
    TRANSITIONS,
    IllegalTransition,
    TaskState,
    allowed,
    can,
    check,
)


def test_every_state_has_a_row_and_only_known_targets():
    assert set(TRANSITIONS) == set(TaskState)
    for targets in TRANSITIONS.values():
        assert set(targets) <= set(TaskState)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("new", "in_progress"),
        ("in_progress", "completed"),
        ("completed", "accepted"),
        ("completed", "rejected"),
        ("skipped", "in_progress"),
        ("skipped", "new"),
        ("rejected", "in_progress"),
        ("rejected", "new"),
        ("new", "completed"),
    ],
)
def test_the_lifecycle_moves_are_legal(current, target):
    assert can(current, target)
    check(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("new", "accepted"),
        ("new", "rejected"),
        ("in_progress", "accepted"),
        ("in_progress", "rejected"),
        ("skipped", "accepted"),
        ("skipped", "rejected"),
        ("completed", "skipped"),
    ],
)
def test_illegal_moves_name_the_current_state_and_the_allowed_ones(current, target):
    assert not can(current, target)
    with pytest.raises(IllegalTransition) as info:
        check(current, target)
    err = info.value
    assert err.current == current and err.target == target
    assert err.allowed == [s.value for s in allowed(current)]
    message = str(err)
    assert f"'{current}'" in message and f"'{target}'" in message
    for name in err.allowed:
        assert name in message


def test_staying_put_is_not_a_move():
    for state in TaskState:
        check(state, state)


def test_skipped_and_rejected_return_to_work_and_are_open():
    for state in ("skipped", "rejected"):
        assert {"in_progress", "new"} <= {s.value for s in allowed(state)}
        assert state in OPEN_STATES
    assert "completed" not in OPEN_STATES and "accepted" not in OPEN_STATES


def test_every_state_is_reachable_from_new():
    seen, frontier = {TaskState.new}, [TaskState.new]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(TaskState)


def test_unknown_state_is_rejected():
    with pytest.raises(ValueError):
        check("archived", "new")
