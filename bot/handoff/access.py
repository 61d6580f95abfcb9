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
class Actor:
    member_id: int
    name: str
    role: str
    grid_ids: frozenset[int]

    @classmethod
    def of(cls, member: Member) -> Actor:
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
    """What visibility depends on; a `Ticket`, or a `Visibility` taken before it changed."""

    @property
    def status(self) -> str: ...

    @property
    def assignee_id(self) -> int | None: ...

    @property
    def grid_id(self) -> int | None: ...

    @property
    def broadcast(self) -> bool: ...


@dataclass(frozen=True)
class Visibility:
    status: str
    assignee_id: int | None
    grid_id: int | None
    broadcast: bool

    @classmethod
    def of(cls, ticket: Scoped) -> Visibility:
        return cls(ticket.status, ticket.assignee_id, ticket.grid_id, bool(ticket.broadcast))


def covers(actor: Actor, grid_id: int | None) -> bool:
    return actor.sees_tickets and (actor.sees_everything or grid_id in actor.grid_ids)


def covered_by(actor: Actor, grid_id: ColumnElement[int]) -> ColumnElement[bool]:
    """`covers` as a filter on a grid id column."""
    if not actor.sees_tickets:
        return false()
    return true() if actor.sees_everything else grid_id.in_(actor.grid_ids)


def was_offered(actor: Actor, ticket: Scoped) -> bool:
    """Every member of the ticket's grid was offered it while it was unclaimed (and everyone,
    once it was broadcast to the branch)."""
    return bool(ticket.broadcast) or ticket.grid_id in actor.grid_ids


def may_see(actor: Actor, ticket: Scoped) -> bool:
    if not actor.sees_tickets:
        return False
    if actor.sees_everything or ticket.assignee_id == actor.member_id:
        return True
    return ticket.status in UNCLAIMED and was_offered(actor, ticket)


def visible_to(actor: Actor) -> ColumnElement[bool]:
    if not actor.sees_tickets:
        return false()
    if actor.sees_everything:
        return true()
    return or_(
        Ticket.assignee_id == actor.member_id,
        and_(
            Ticket.status.in_(UNCLAIMED),
            or_(Ticket.grid_id.in_(actor.grid_ids), Ticket.broadcast.is_(True)),
        ),
    )


def may_act(actor: Actor, ticket: Scoped) -> bool:
    """Replying and resolving belong to the ticket's holder (or the secretary)."""
    if not actor.may(Action.HOLD):
        return False
    return actor.sees_everything or ticket.assignee_id == actor.member_id
