"""What members read: the tickets they may see, and one ticket with its conversation, its
history, the resident's earlier tickets and, for an incident, the neighbours' reports."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from bot.conversation.messages import chat_message
from bot.core.chat import ChatMessage
from bot.db.models import Message, Ticket, TicketEvent
from bot.handoff.access import Actor, visible_to
from bot.handoff.incidents import reports_of
from bot.handoff.ledger import visible_ticket
from bot.handoff.states import OPEN_STATUSES, Status


@dataclass(frozen=True)
class TicketDetail:
    ticket: Ticket
    messages: list[ChatMessage]
    events: list[TicketEvent]
    earlier: list[Ticket]
    # For an incident: the neighbours' reports merged into it.
    reporters: list[Ticket]


class Queries:
    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions

    async def visible_tickets(self, actor: Actor, status: str | None) -> list[Ticket]:
        query = select(Ticket).where(visible_to(actor)).order_by(Ticket.id.desc()).limit(200)
        if status == "open":
            query = query.where(Ticket.status.in_(OPEN_STATUSES))
        elif status:
            query = query.where(Ticket.status == Status(status))
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())

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
