"""The ticket state machine table."""

from __future__ import annotations

import pytest

from bot.handoff.states import TRANSITIONS, IllegalTransition, Status, next_status


@pytest.mark.parametrize(
    ("kind", "current", "expected"),
    [
        ("assign", Status.NEW, Status.ASSIGNED),
        ("claim", Status.NEW, Status.CLAIMED),
        ("claim", Status.ASSIGNED, Status.CLAIMED),
        ("resolve", Status.ASSIGNED, Status.RESOLVED),
        ("resolve", Status.CLAIMED, Status.RESOLVED),
    ],
)
def test_allowed_transitions(kind: str, current: Status, expected: Status) -> None:
    assert next_status(kind, current) == expected


@pytest.mark.parametrize(
    ("kind", "current"),
    [
        ("assign", Status.CLAIMED),
        ("claim", Status.CLAIMED),
        ("claim", Status.RESOLVED),
        ("resolve", Status.RESOLVED),
        ("resolve", Status.NEW),
    ],
)
def test_refused_transitions(kind: str, current: Status) -> None:
    with pytest.raises(IllegalTransition):
        next_status(kind, current)


def test_resolved_is_final_in_this_table() -> None:
    assert all(Status.RESOLVED not in sources for sources, _ in TRANSITIONS.values())
