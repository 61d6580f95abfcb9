"""The ticket state machine: every allowed transition, in one table.

A transition not listed here is refused (HTTP 409); every transition that happens is
written as a `TicketEvent` by `bot.handoff.service`.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    CLAIMED = "claimed"
    RESOLVED = "resolved"


STATUS_LABELS = {
    Status.NEW: "待分派",
    Status.ASSIGNED: "待认领",
    Status.CLAIMED: "处理中",
    Status.RESOLVED: "已解决",
}

# event kind -> (statuses it may leave, status it enters)
TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    "assign": (frozenset({Status.NEW}), Status.ASSIGNED),
    "claim": (frozenset({Status.NEW, Status.ASSIGNED}), Status.CLAIMED),
    "resolve": (frozenset({Status.ASSIGNED, Status.CLAIMED}), Status.RESOLVED),
}

OPEN_STATUSES = frozenset({Status.NEW, Status.ASSIGNED, Status.CLAIMED})


class IllegalTransition(Exception):
    def __init__(self, kind: str, current: str) -> None:
        super().__init__(f"cannot {kind} a ticket that is {current}")
        self.kind = kind
        self.current = current


def next_status(kind: str, current: str) -> Status:
    sources, target = TRANSITIONS[kind]
    if Status(current) not in sources:
        raise IllegalTransition(kind, current)
    return target
