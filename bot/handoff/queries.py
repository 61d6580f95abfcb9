"""What members read: the tickets they may see (filtered and searched), one ticket with its
conversation, its history, the resident's earlier tickets and, for an incident, the
neighbours' reports; and for a ticket in hand, the colleagues it may go to and the open
tickets it may be merged into."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, select
from sqlalchemy.orm import sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from bot.conversation.messages import chat_message
from bot.core.chat import ChatMessage
from bot.db.models import Grid, Member, Message, Ticket, TicketEvent
from bot.handoff.access import Actor, acted_on_by, may_act, visible_to
from bot.handoff.dispatcher import OPEN_TICKETS_HELD
from bot.handoff.incidents import reports_of
from bot.handoff.ledger import NotAllowed, visible_ticket
from bot.handoff.roles import Action, roles_with
from bot.handoff.schedule import on_duty
from bot.handoff.states import OPEN_STATUSES, UNCLAIMED, Status
from bot.privacy import mask_text

LISTED = 200
CANDIDATES = 20
# A list's status filter: one status, or one of these groups.
STATUS_GROUPS = {
    "open": OPEN_STATUSES,
    "unclaimed": UNCLAIMED,
    "done": frozenset({Status.RESOLVED, Status.CLOSED}),
}


@dataclass(frozen=True)
class TicketDetail:
    ticket: Ticket
    messages: list[ChatMessage]
    events: list[TicketEvent]
    earlier: list[Ticket]
    # For an incident: the neighbours' reports merged into it.
    reporters: list[Ticket]


@dataclass(frozen=True)
class TicketFilter:
    """What a member narrows the ticket list to; None leaves a field out."""

    status: str | None = None
    category: str | None = None
    grid: str | None = None
    assignee_id: int | None = None
    # Words the resident's request contains.
    text: str | None = None

    def where(self) -> list[ColumnElement[bool]]:
        conditions = []
        if self.status in STATUS_GROUPS:
            conditions.append(Ticket.status.in_(STATUS_GROUPS[self.status]))
        elif self.status:
            conditions.append(Ticket.status == Status(self.status))
        if self.category:
            conditions.append(Ticket.category == self.category)
        if self.grid is not None:
            named = select(Grid.id).where(Grid.name == self.grid).scalar_subquery()
            conditions.append(Ticket.grid_id == named)
        if self.assignee_id is not None:
            conditions.append(Ticket.assignee_id == self.assignee_id)
        if self.text:
            conditions.append(Ticket.text.contains(self.text, autoescape=True))
        return conditions

    def shows(self, ticket: Ticket) -> bool:
        """The search matches the request as members read it, masked: searching digits does
        not find the part of a phone number the list hides."""
        return not self.text or self.text in mask_text(ticket.text)


@dataclass(frozen=True)
class Colleague:
    """Someone a ticket may be transferred to, with their open tickets now."""

    member: Member
    open_tickets: int
    on_duty: bool


class Queries:
    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions

    async def visible_tickets(
        self, actor: Actor, wanted: TicketFilter | None = None
    ) -> list[Ticket]:
        """Newest first, at most `LISTED`."""
        wanted = wanted or TicketFilter()
        query = (
            select(Ticket)
            .where(visible_to(actor), *wanted.where())
            .order_by(Ticket.id.desc())
            .limit(LISTED)
        )
        async with self._sessions() as session:
            return [t for t in (await session.scalars(query)).all() if wanted.shows(t)]

    async def transfer_targets(
        self, actor: Actor, ticket_id: int, now: datetime
    ) -> list[Colleague]:
        """Who the ticket may go to: active members of its community whose role takes
        tickets, but not the one holding it nor the one asking; on duty first, then the
        ticket's grid, then the least busy."""
        async with self._sessions() as session:
            ticket = await visible_ticket(session, actor, ticket_id)
            if not may_act(actor, ticket):
                raise NotAllowed("only the ticket's holder transfers it")
            excluded = {actor.member_id, ticket.assignee_id} - {None}
            members = await session.execute(
                select(Member, OPEN_TICKETS_HELD).where(
                    Member.active.is_(True),
                    Member.role.in_(roles_with(Action.HOLD)),
                    Member.community_id == ticket.community_id,
                    Member.id.not_in(excluded),
                )
            )
            colleagues = [
                Colleague(m, held, on_duty(m.schedule, m.paused, now)) for m, held in members.all()
            ]

        def rank(c: Colleague) -> tuple[bool, bool, int, int]:
            in_grid = ticket.grid_id in {g.id for g in c.member.grids}
            return not c.on_duty, not in_grid, c.open_tickets, c.member.id

        return sorted(colleagues, key=rank)

    async def merge_candidates(self, actor: Actor, ticket_id: int) -> list[Ticket]:
        """Open tickets of the same community this one may join as the same incident: ones
        the actor holds (a secretary: any), not part of an incident themselves; the same grid
        and category first, then the same grid, the same category, the newest."""
        async with self._sessions() as session:
            ticket = await visible_ticket(session, actor, ticket_id)
            same_grid = Ticket.grid_id == ticket.grid_id
            same_category = Ticket.category == ticket.category
            closeness = case(
                (and_(same_grid, same_category), 0), (same_grid, 1), (same_category, 2), else_=3
            )
            rows = await session.scalars(
                select(Ticket)
                .where(
                    Ticket.community_id == ticket.community_id,
                    Ticket.id != ticket.id,
                    Ticket.status.in_(OPEN_STATUSES),
                    Ticket.incident_id.is_(None),
                    visible_to(actor),
                    acted_on_by(actor),
                )
                .order_by(closeness, Ticket.id.desc())
                .limit(CANDIDATES)
            )
            return list(rows.all())

    async def detail(self, actor: Actor, ticket_id: int) -> TicketDetail:
        async with self._sessions() as session:
            ticket = await visible_ticket(session, actor, ticket_id)
            messages = await session.scalars(
                select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
            )
            events = await session.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(TicketEvent.id)
            )
            earlier = await session.scalars(
                select(Ticket)
                .where(
                    Ticket.resident_id == ticket.resident_id,
                    Ticket.id < ticket.id,
                    visible_to(actor),
                )
                .order_by(Ticket.id.desc())
                .limit(10)
            )
            return TicketDetail(
                ticket,
                [chat_message(m) for m in messages],
                list(events.all()),
                list(earlier.all()),
                await reports_of(session, ticket),
            )
