"""Who may see which ticket. The SQL filter and the Python check state the same rule:
only roles that help residents see tickets at all (`bot.handoff.roles`), and only in their
own community unless their role reads the whole district; there, a secretary sees every
ticket; a member sees tickets assigned to them, the unclaimed tickets of the grids they
cover, and unclaimed tickets broadcast to the whole branch.

What belongs to a grid and nobody yet (a possible request) is seen by the members who cover
that grid and by the secretary of its community, who covers them all."""

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
    community_id: int

    @classmethod
    def of(cls, member: Member) -> Actor:
        grid_ids = frozenset(g.id for g in member.grids)
        return cls(member.id, member.name, member.role, grid_ids, member.community_id)

    def may(self, action: Action) -> bool:
        return allowed(self.role, action)

    @property
    def sees_tickets(self) -> bool:
        return self.may(Action.TICKETS)

    @property
    def sees_everything(self) -> bool:
        return self.may(Action.SEE_ALL)

    @property
    def sees_every_community(self) -> bool:
        return self.may(Action.DISTRICT)

    def reaches(self, community_id: int | None) -> bool:
        """The community is the actor's own, or the actor reads the whole district."""
        return self.sees_every_community or community_id == self.community_id

    def reached_by(self, community_id: ColumnElement[int]) -> ColumnElement[bool]:
        """`reaches` as a filter on a community id column."""
        return true() if self.sees_every_community else community_id == self.community_id


class Placed(Protocol):
    """Something in a community and maybe a grid: a ticket, a possible request."""

    @property
    def community_id(self) -> int: ...

    @property
    def grid_id(self) -> int | None: ...


class Scoped(Placed, Protocol):
    """What visibility depends on; a `Ticket`, or a `Visibility` taken before it changed."""

    @property
    def status(self) -> str: ...

    @property
    def assignee_id(self) -> int | None: ...

    @property
    def broadcast(self) -> bool: ...


@dataclass(frozen=True)
class Visibility:
    status: str
    assignee_id: int | None
    grid_id: int | None
    broadcast: bool
    community_id: int

    @classmethod
    def of(cls, ticket: Scoped) -> Visibility:
        return cls(
            ticket.status,
            ticket.assignee_id,
            ticket.grid_id,
            bool(ticket.broadcast),
            ticket.community_id,
        )


def covers(actor: Actor, place: Placed) -> bool:
    if not (actor.sees_tickets and actor.reaches(place.community_id)):
        return False
    return actor.sees_everything or place.grid_id in actor.grid_ids


def covered_by(
    actor: Actor, grid_id: ColumnElement[int], community_id: ColumnElement[int]
) -> ColumnElement[bool]:
    """`covers` as a filter on grid and community id columns."""
    if not actor.sees_tickets:
        return false()
    grids = true() if actor.sees_everything else grid_id.in_(actor.grid_ids)
    return and_(actor.reached_by(community_id), grids)


def was_offered(actor: Actor, ticket: Scoped) -> bool:
    """Every member of the ticket's grid was offered it while it was unclaimed (and everyone
    of its community's branch, once it was broadcast there)."""
    if ticket.community_id != actor.community_id:
        return False
    return bool(ticket.broadcast) or ticket.grid_id in actor.grid_ids


def may_see(actor: Actor, ticket: Scoped) -> bool:
    if not (actor.sees_tickets and actor.reaches(ticket.community_id)):
        return False
    if actor.sees_everything or ticket.assignee_id == actor.member_id:
        return True
    return ticket.status in UNCLAIMED and was_offered(actor, ticket)


def visible_to(actor: Actor) -> ColumnElement[bool]:
    if not actor.sees_tickets:
        return false()
    if actor.sees_everything:
        return actor.reached_by(Ticket.community_id)
    return and_(
        Ticket.community_id == actor.community_id,
        or_(
            Ticket.assignee_id == actor.member_id,
            and_(
                Ticket.status.in_(UNCLAIMED),
                or_(Ticket.grid_id.in_(actor.grid_ids), Ticket.broadcast.is_(True)),
            ),
        ),
    )


def may_act(actor: Actor, ticket: Scoped) -> bool:
    """Replying and resolving belong to the ticket's holder (or its community's secretary)."""
    if not (actor.may(Action.HOLD) and actor.reaches(ticket.community_id)):
        return False
    return actor.sees_everything or ticket.assignee_id == actor.member_id


def acted_on_by(actor: Actor) -> ColumnElement[bool]:
    """`may_act` as a filter on tickets."""
    if not actor.may(Action.HOLD):
        return false()
    holders = true() if actor.sees_everything else Ticket.assignee_id == actor.member_id
    return and_(actor.reached_by(Ticket.community_id), holders)
