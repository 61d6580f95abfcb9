"""Fakes at the ticket service's seams: the chats residents read, the consoles members watch,
and `Desk`, the real ticket service on a migrated database with the demo's people and a
fake clock (no Rasa, no HTTP)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.conversation.delivery import Delivery
from bot.conversation.engine import Turn
from bot.conversation.messages import store_inbound
from bot.core.categories import CHITCHAT
from bot.core.chat import ChatMessage, ChatRef, Inbound
from bot.core.clock import FakeClock
from bot.core.handoff import HandoffRequest, HandoffResult, Origin
from bot.db.models import Member, Ticket, TicketEvent
from bot.db.nlu_models import Classification, PossibleRequest
from bot.handoff.access import Actor, Visibility
from bot.handoff.possible import PossibleRequests
from bot.handoff.push import MemberHub, Numbered
from bot.handoff.service import TicketService
from bot.handoff.timers import Timers
from bot.metrics import Metrics
from bot.privacy import mask_text


class RecordingSender:
    """A channel that carries everything, and remembers what each chat was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[ChatRef, ChatMessage]] = []

    async def deliver(self, chat: ChatRef, message: ChatMessage) -> None:
        self.sent.append((chat, message))

    def lines_to(self, chat_id: str) -> list[str]:
        return [m.text for chat, m in self.sent if chat.chat_id == chat_id]


@dataclass(frozen=True)
class Pushed:
    """One console event as the hub was asked to send it."""

    kind: str
    ticket_id: int
    status: str
    assignee: str | None
    fields: dict[str, Any] = field(default_factory=dict)


class RecordingHub(MemberHub):
    """The consoles: nobody is connected, every event is noted."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Pushed] = []
        # Events a ticket change numbered, noted once it sends them (after its commit).
        self._unsent: dict[int, Pushed] = {}

    async def publish(
        self,
        kind: str,
        ticket: Ticket,
        message: ChatMessage | None = None,
        before: Visibility | None = None,
        members: Collection[int] = (),
    ) -> None:
        self.events.append(self._noted(kind, ticket, self._fields(message, members)))

    async def journal_in(
        self,
        session: AsyncSession,
        kind: str,
        ticket: Ticket,
        message: ChatMessage | None = None,
        before: Visibility | None = None,
        members: Collection[int] = (),
    ) -> Numbered:
        numbered = await super().journal_in(session, kind, ticket, message, before, members)
        self._unsent[id(numbered)] = self._noted(kind, ticket, self._fields(message, members))
        return numbered

    async def send_numbered(self, numbered: Numbered) -> None:
        self.events.append(self._unsent.pop(id(numbered)))

    async def tell_holder(self, kind: str, ticket: Ticket, fields: dict[str, Any]) -> None:
        self.events.append(self._noted(kind, ticket, fields))

    async def ask(self, possible: PossibleRequest, member_ids: Collection[int]) -> None:
        return None

    @staticmethod
    def _fields(message: ChatMessage | None, members: Collection[int]) -> dict[str, Any]:
        fields: dict[str, Any] = {"message": message.text} if message is not None else {}
        if members:
            fields["members"] = sorted(members)
        return fields

    @staticmethod
    def _noted(kind: str, ticket: Ticket, fields: dict[str, Any]) -> Pushed:
        assignee = ticket.assignee.name if ticket.assignee is not None else None
        return Pushed(kind, ticket.id, str(ticket.status), assignee, fields)

    def kinds(self, ticket_id: int) -> list[str]:
        return [e.kind for e in self.events if e.ticket_id == ticket_id]


@dataclass
class Desk:
    service: TicketService
    timers: Timers
    clock: FakeClock
    chats: RecordingSender
    hub: RecordingHub
    sessions: sessionmaker

    async def actor(self, name: str) -> Actor:
        async with self.sessions() as session:
            return Actor.of(await session.scalar(select(Member).where(Member.name == name)))

    async def asks(
        self,
        text: str,
        intent: str = "repair",
        *,
        resident: str = "zhang",
        group: str | None = None,
        confidence: float = 0.9,
    ) -> HandoffResult:
        """A resident's request as `action_handoff` hands it over, read as `intent` with
        `confidence`; in `group`'s chat if given, else in their private chat."""
        chat = ChatRef("webchat", "group" if group else "private", group or resident, resident)
        request = HandoffRequest(
            conversation_id=chat.conversation_id,
            intent=intent,
            confidence=confidence,
            text=text,
            origin=Origin(chat),
        )
        return await self.service.opening.open_ticket(request)

    async def ticket(self, ticket_id: int) -> Ticket:
        async with self.sessions() as session:
            ticket = await session.get(Ticket, ticket_id)
            assert ticket is not None
            return ticket

    def restarted(self) -> Desk:
        """A new service on the same database, as after a restart: nothing carried over in
        memory."""
        return desk_on(self.sessions, self.clock)

    async def everyone_takes_everything(self) -> None:
        """Members without skills take every kind of request: two candidates per grid."""
        async with self.sessions() as session, session.begin():
            await session.execute(update(Member).values(skills=""))

    async def history(self, ticket_id: int) -> list[TicketEvent]:
        async with self.sessions() as session:
            events = await session.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket_id)
                .order_by(TicketEvent.id)
            )
            return list(events.all())

    async def time_passes(self, **delta: float) -> int:
        """Move the clock and let the timers run once; how many steps they took."""
        self.clock.advance(**delta)
        return await self.timers.run_due()


def desk_on(sessions: sessionmaker, clock: FakeClock) -> Desk:
    chats, hub = RecordingSender(), RecordingHub()
    delivery = Delivery(sessions, "worker-a", clock)
    delivery.register("webchat", chats)
    service = TicketService(sessions, delivery, hub, Metrics.create(), clock)
    return Desk(service, Timers(service), clock, chats, hub, sessions)


async def chatter_that_may_be_a_request(
    possible: PossibleRequests, sessions: sessionmaker, text: str, resident: str
) -> int:
    """A resident's private message that the model read as chatter while half-hearing a
    repair request in it, stored and recorded as the router does; its id."""
    chat = ChatRef("webchat", "private", resident, resident)
    stored = await store_inbound(sessions, Inbound(chat, f"msg-{resident}", resident, text))
    assert stored is not None
    turn = Turn([], CHITCHAT, 0.8, "test-model", "repair", 0.2, {})
    async with sessions() as session, session.begin():
        reading = Classification(
            message_id=stored.message_id,
            text=mask_text(text),
            intent=CHITCHAT,
            confidence=0.8,
            model="test",
        )
        session.add(reading)
        return (await possible.record(session, stored, reading, turn)).id
