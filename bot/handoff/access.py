"""Who may see which ticket. The SQL filter and the Python check state the same rule:
only roles that help residents see tickets at all (`bot.handoff.roles`); a secretary sees
every ticket; a member sees tickets assigned to them, the unclaimed tickets
of the grids they cover, and unclaimed tickets broadcast to the whole branch.

What belongs to a grid and nobody yet (a possible request) is seen by the members who cover
that grid and by the secretary, who covers them all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import and_, false, or_, true
from sqlalchemy.sql.elements import ColumnElement

from bot.db.models import Member, Ticket
from bot.handoff.roles import Action, allowed
from bot.handoff.states import UNCLAIMED


@dataclass(frozen=True)
class Viewer:
    member_id: int
    name: str
    role: str
    grid_ids: frozenset[int]

    @classmethod
    def of(cls, member: Member) -> Viewer:
        return cls(member.id, member.name, member.role, frozenset(g.id for g in member.grids))

    def may(self, action: Action) -> bool:
        return allowed(self.role, action)

    @property
    def sees_tickets(self) -> bool:
        return self.may(Action.TICKETS)

    @property
    def sees_everything(self) -> bool:
        return self.may(Action.SEE_ALL)


class Scoped(Protocol):
    """What visibility depends on; a `Ticket`, or a `Scope` taken before it changed."""

    status: str
    assignee_id: int | None
    grid_id: int | None
    broadcast: bool


@dataclass(frozen=True)
class Scope:
    status: str
    assignee_id: int | None
    grid_id: int | None
    broadcast: bool

    @classmethod
    def of(cls, ticket: Scoped) -> Scope:
        return cls(ticket.status, ticket.assignee_id, ticket.grid_id, bool(ticket.broadcast))


def covers(viewer: Viewer, grid_id: int | None) -> bool:
    return viewer.sees_tickets and (viewer.sees_everything or grid_id in viewer.grid_ids)


def covered_by(viewer: Viewer, grid_id: ColumnElement[int]) -> ColumnElement[bool]:
    """`covers` as a filter on a grid id column."""
    if not viewer.sees_tickets:
        return false()
    return true() if viewer.sees_everything else grid_id.in_(viewer.grid_ids)


def was_offered(viewer: Viewer, ticket: Scoped) -> bool:
    """Every member of the ticket's grid was offered it while it was unclaimed (and everyone,
    once it was broadcast to the branch)."""
    return bool(ticket.broadcast) or ticket.grid_id in viewer.grid_ids


def may_see(viewer: Viewer, ticket: Scoped) -> bool:
    if not viewer.sees_tickets:
        return False
    if viewer.sees_everything or ticket.assignee_id == viewer.member_id:
        return True
    return ticket.status in UNCLAIMED and was_offered(viewer, ticket)


def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    if not viewer.sees_tickets:
        return false()
    if viewer.sees_everything:
        return true()
    return or_(
        Ticket.assignee_id == viewer.member_id,
        and_(
            Ticket.status.in_(UNCLAIMED),
            or_(Ticket.grid_id.in_(viewer.grid_ids), Ticket.broadcast.is_(True)),
        ),
    )


def may_act(viewer: Viewer, ticket: Scoped) -> bool:
    """Replying and resolving belong to the ticket's holder (or the secretary)."""
    if not viewer.may(Action.HOLD):
        return False
    return viewer.sees_everything or ticket.assignee_id == viewer.member_id
