"""The ticket state machine: every allowed transition, in one table.

A transition not listed here is refused (HTTP 409); every transition that happens is
written as a `TicketEvent` by `bot.handoff.service`.

    new ─assign→ assigned ─claim→ claimed ─resolve→ resolved ─rate/expire→ closed
    unclaimed ─escalate→ escalated (timeout, or handed back)      resolved/closed ─reopen→ reopened
    unclaimed ─confirm_urgent→ escalated, ─not_urgent→ assigned (可能紧急 decided by a member)
    claimed/unclaimed ─transfer→ transferred (to a named colleague, who claims it)
    unclaimed ─redispatch→ assigned (its category corrected, to a member with the new skill)
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    ESCALATED = "escalated"
    TRANSFERRED = "transferred"
    REOPENED = "reopened"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    CLOSED = "closed"


STATUS_LABELS = {
    Status.NEW: "待分派",
    Status.ASSIGNED: "待认领",
    Status.ESCALATED: "已升级",
    Status.TRANSFERRED: "已转交",
    Status.REOPENED: "重新打开",
    Status.CLAIMED: "处理中",
    Status.RESOLVED: "已解决",
    Status.CLOSED: "已关闭",
}

# Waiting for someone to claim them; a claim deadline runs.
UNCLAIMED = frozenset(
    {Status.NEW, Status.ASSIGNED, Status.ESCALATED, Status.TRANSFERRED, Status.REOPENED}
)
OPEN_STATUSES = UNCLAIMED | {Status.CLAIMED}

# event kind -> (statuses it may leave, status it enters)
TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    "assign": (frozenset({Status.NEW}), Status.ASSIGNED),
    "claim": (UNCLAIMED, Status.CLAIMED),
    "escalate": (UNCLAIMED, Status.ESCALATED),
    # 可能紧急 decided by a member (`bot.handoff.urgency`): offered as urgent, or as ordinary.
    "confirm_urgent": (UNCLAIMED, Status.ESCALATED),
    "not_urgent": (UNCLAIMED, Status.ASSIGNED),
    "hand_back": (OPEN_STATUSES, Status.ESCALATED),
    "transfer": (OPEN_STATUSES, Status.TRANSFERRED),
    "redispatch": (UNCLAIMED, Status.ASSIGNED),
    # The holder may resolve without claiming first (the service checks who holds it).
    "resolve": (OPEN_STATUSES - {Status.NEW}, Status.RESOLVED),
    "rate": (frozenset({Status.RESOLVED}), Status.CLOSED),
    "expire": (frozenset({Status.RESOLVED}), Status.CLOSED),
    "reopen": (frozenset({Status.RESOLVED, Status.CLOSED}), Status.REOPENED),
}


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
