"""Who may see which ticket. The SQL filter and the Python check state the same rule:
a secretary sees every ticket; a member sees tickets assigned to them and the unclaimed
tickets of the grids they cover."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, true
from sqlalchemy.sql.elements import ColumnElement

from bot.db.models import Member, Ticket
from bot.handoff.states import Status

UNCLAIMED = (Status.NEW, Status.ASSIGNED)


@dataclass(frozen=True)
class Viewer:
    member_id: int
    name: str
    role: str
    grid_ids: frozenset[int]

    @classmethod
    def of(cls, member: Member) -> Viewer:
        return cls(member.id, member.name, member.role, frozenset(g.id for g in member.grids))

    @property
    def sees_everything(self) -> bool:
        return self.role == "secretary"


def may_see(viewer: Viewer, ticket: Ticket) -> bool:
    if viewer.sees_everything or ticket.assignee_id == viewer.member_id:
        return True
    return ticket.status in UNCLAIMED and ticket.grid_id in viewer.grid_ids


def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    if viewer.sees_everything:
        return true()
    return or_(
        Ticket.assignee_id == viewer.member_id,
        and_(Ticket.status.in_(UNCLAIMED), Ticket.grid_id.in_(viewer.grid_ids)),
    )


def may_act(viewer: Viewer, ticket: Ticket) -> bool:
    """Replying and resolving belong to the ticket's holder (or the secretary)."""
    return viewer.sees_everything or ticket.assignee_id == viewer.member_id
