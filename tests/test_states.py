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
        ("escalate", Status.ASSIGNED, Status.ESCALATED),
        ("escalate", Status.ESCALATED, Status.ESCALATED),
        ("claim", Status.ESCALATED, Status.CLAIMED),
        ("transfer", Status.CLAIMED, Status.TRANSFERRED),
        ("claim", Status.TRANSFERRED, Status.CLAIMED),
        ("hand_back", Status.CLAIMED, Status.ESCALATED),
        ("rate", Status.RESOLVED, Status.CLOSED),
        ("expire", Status.RESOLVED, Status.CLOSED),
        ("reopen", Status.RESOLVED, Status.REOPENED),
        ("reopen", Status.CLOSED, Status.REOPENED),
        ("claim", Status.REOPENED, Status.CLAIMED),
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
        ("escalate", Status.CLAIMED),
        ("transfer", Status.RESOLVED),
        ("rate", Status.CLAIMED),
        ("rate", Status.CLOSED),
        ("reopen", Status.CLAIMED),
        ("hand_back", Status.CLOSED),
    ],
)
def test_refused_transitions(kind: str, current: Status) -> None:
    with pytest.raises(IllegalTransition):
        next_status(kind, current)


def test_only_a_reopen_leaves_closed_and_every_status_is_reachable() -> None:
    leaving_closed = [
        kind for kind, (sources, _) in TRANSITIONS.items() if Status.CLOSED in sources
    ]
    assert leaving_closed == ["reopen"]
    reachable = {Status.NEW} | {target for _, target in TRANSITIONS.values()}
    assert reachable == set(Status)
