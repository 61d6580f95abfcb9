"""Routing a stored inbound message: to the member holding the resident's open ticket, or to Rasa.
Chatter in which the model half-heard a request also goes to a member as a possible request.

Channels call `accept` (persist, before they acknowledge) and then `process_later`; which
worker then routes the message is decided by `bot.conversation.work`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.cluster.bus import Bus
from bot.cluster.redis import SharedRedis
from bot.cluster.throttle import Throttle
from bot.conversation.delivery import Delivery
from bot.conversation.engine import RasaEngine, Turn
from bot.conversation.messages import RecentlyStored, mark_handled, mark_inactive, store_inbound
from bot.conversation.work import RoutingWork
from bot.core.chat import EVENT_KINDS, ChatMessage, Inbound, StoredInbound
from bot.core.clock import Clock
from bot.core.handoff import HandoffResult, Origin
from bot.db.nlu_models import Classification, PossibleRequest
from bot.metrics import Metrics
from bot.privacy import mask_text

logger = logging.getLogger(__name__)

LOCATION_NOTED_TEXT = "收到您发的位置了。需要帮什么忙，直接说或者发语音就行。"
# Messages one resident may have routed a minute; more are kept (on their open ticket, if
# any) but not read again by the model or pushed to a member's screen one by one.
SENDER_LIMIT = (12, timedelta(minutes=1))


@dataclass(frozen=True)
class TicketDesk:
    """What routing asks of the ticket side (`bot.handoff`), which the app wires in."""

    # The conversation's open ticket: while there is one, it holds the conversation.
    open_ticket_of: Callable[[str], Awaitable[int | None]]
    relay_from_resident: Callable[[int, int], Awaitable[None]]
    remember_location: Callable[[StoredInbound], Awaitable[None]]
    open_for_media: Callable[[StoredInbound, Origin], Awaitable[HandoffResult]]
    # A rating or "not fixed" after a resolve; True when the message was one of those.
    follow_up: Callable[[StoredInbound], Awaitable[bool]]


class PossibleDesk(Protocol):
    """Chatter in which the model half-heard a request (`bot.handoff.possible`)."""

    def worth_asking(self, turn: Turn) -> bool: ...

    async def record(
        self,
        session: AsyncSession,
        stored: StoredInbound,
        classification: Classification,
        turn: Turn,
    ) -> PossibleRequest: ...

    async def announce(self, possible: PossibleRequest) -> None: ...


@dataclass(frozen=True)
class Reply:
    """A line the bot answers a message with, and the ticket it belongs to; `stored` when the
    line was stored with the ticket and only needs handing on."""

    text: str
    ticket_id: int | None = None
    stored: ChatMessage | None = None


class Router:
    def __init__(
        self,
        sessions: sessionmaker,
        engine: RasaEngine,
        tickets: TicketDesk,
        delivery: Delivery,
        metrics: Metrics,
        possible: PossibleDesk,
        clock: Clock,
        worker: str,
        bus: Bus | None = None,
        lease: timedelta = timedelta(seconds=30),
        redis: SharedRedis | None = None,
    ) -> None:
        self._sessions = sessions
        self._possible = possible
        self._metrics = metrics
        self._engine = engine
        self._tickets = tickets
        self._delivery = delivery
        # Across workers a conversation's messages are claimed one after another (`work`);
        # within one, this also keeps a turn's lines ahead of the next turn's.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.work = RoutingWork(sessions, self.process, clock, worker, bus, lease)
        self._stored = RecentlyStored()
        self._flood = Throttle("sender", *SENDER_LIMIT, clock, redis)
        self._flooders: set[str] = set()
        # Routing a message costs 10-20 ms of CPU in many short steps on the event loop. Each
        # message routed at the same time put its next step in the loop's queue ahead of a
        # callback's and its transactions in line for SQLite's one write lock: under a burst,
        # callbacks that must answer WeChat within 5 seconds took up to seconds. One at a
        # time, a callback waits behind one step at most; routing loses little pace, as it
        # is mostly CPU, which the one loop cannot do twice at once anyway.
        self._routing_slot = asyncio.Lock()

    async def accept(self, inbound: Inbound) -> StoredInbound | None:
        """Persist the message; None for a platform retry of one already stored."""
        stored = None if inbound in self._stored else await store_inbound(self._sessions, inbound)
        if stored is None:
            logger.info(
                "duplicate %s message %s dropped", inbound.chat.channel, inbound.platform_msg_id
            )
        else:
            self._metrics.messages.labels(inbound.chat.channel).inc()
        self._stored.add(inbound)
        return stored

    def process_later(self, stored: StoredInbound) -> None:
        self.work.offer(stored)

    async def drain(self) -> None:
        """Wait until every message this worker could route is routed (tests, shutdown)."""
        await self.work.drain()

    async def process(self, stored: StoredInbound) -> None:
        lock = self._locks.setdefault(stored.chat.conversation_id, asyncio.Lock())
        async with lock:
            async with self._routing_slot:
                replies = await self._route(stored)
            # Outside the slot: a platform's send API may take seconds to answer, and other
            # conversations are routed meanwhile. The conversation's lock keeps its order.
            for reply in replies:
                if reply.stored is not None:
                    await self._delivery.send_stored(stored.chat, reply.stored)
                    continue
                await self._delivery.send(
                    stored.chat,
                    reply.text,
                    ticket_id=reply.ticket_id,
                    resident_id=stored.resident_id,
                )

    async def _route(self, stored: StoredInbound) -> list[Reply]:
        """Decide what the message is for and act on it; returns what the bot answers."""
        inbound = stored.inbound
        if inbound.kind in EVENT_KINDS:
            await self._on_follow(stored)
            return []
        if inbound.blank:
            # A slip of the thumb, which WeChat delivers: kept, with nothing to answer or
            # relay, and no ticket for a person to puzzle over.
            await self._mark_handled(stored, None)
            return []
        ticket_id = await self._open_ticket_of(stored)
        if await self._flooding(stored):
            await self._mark_handled(stored, ticket_id)
            return []
        if ticket_id is not None:
            await self._tickets.relay_from_resident(ticket_id, stored.message_id)
            return []
        if inbound.kind == "location":
            await self._tickets.remember_location(stored)
            return [Reply(LOCATION_NOTED_TEXT)]
        if not inbound.readable:
            opened = await self._tickets.open_for_media(stored, self._origin(stored))
            return [Reply(opened.reply, opened.ticket_id, opened.stored_line())]
        if await self._tickets.follow_up(stored):
            return []
        return await self._ask_model(stored)

    async def _mark_handled(self, stored: StoredInbound, ticket_id: int | None) -> None:
        async with self._sessions() as session, session.begin():
            await mark_handled(session, stored.message_id, ticket_id)

    async def _open_ticket_of(self, stored: StoredInbound) -> int | None:
        """The ticket the conversation's messages go to; a resident this message created has
        none, and the database is not asked (a burst of new residents is a storm's first
        minutes)."""
        if stored.new_resident:
            return None
        return await self._tickets.open_ticket_of(stored.chat.conversation_id)

    async def _flooding(self, stored: StoredInbound) -> bool:
        """Over the sender's limit; the first message over it says so in the log, once."""
        sender = stored.chat.conversation_id
        if not await self._flood.take(sender):
            self._flooders.discard(sender)
            return False
        if sender not in self._flooders:
            self._flooders.add(sender)
            logger.warning(
                "%s sends more than %d messages a minute; more are kept, not routed",
                sender,
                SENDER_LIMIT[0],
            )
        return True

    async def _ask_model(self, stored: StoredInbound) -> list[Reply]:
        conversation_id = stored.chat.conversation_id
        turn = await self._engine.handle(
            stored.inbound.text, conversation_id, self._origin(stored).to_metadata()
        )
        logger.info(
            "%s: %r -> %s %.2f, %d bot line(s)",
            conversation_id,
            mask_text(stored.inbound.text),
            turn.intent,
            turn.confidence,
            len(turn.replies),
        )
        if turn.ticket_id is None:
            await self._record_reading(stored, turn)
        # Otherwise the ticket's opening stored the reading and marked the message handled.
        ticket_id = turn.ticket_id
        told = [Reply(turn.line.text, ticket_id, turn.line)] if turn.line else []
        return told + [Reply(text, ticket_id) for text in turn.replies]

    async def _record_reading(self, stored: StoredInbound, turn: Turn) -> None:
        """A turn that opened no ticket: the message is handled, the model's reading kept for
        review, and chatter in which a request was half-heard goes to a member."""
        possible = None
        async with self._sessions() as session, session.begin():
            await mark_handled(session, stored.message_id, None)
            classification = Classification(
                **Classification.reading(
                    stored.inbound.text,
                    turn.intent,
                    turn.confidence,
                    turn.model,
                    message_id=stored.message_id,
                )
            )
            session.add(classification)
            if self._possible.worth_asking(turn):
                # In the same transaction as "handled": a possible request is never dropped.
                possible = await self._possible.record(session, stored, classification, turn)
        if possible is not None:
            await self._possible.announce(possible)

    async def _on_follow(self, stored: StoredInbound) -> None:
        """Leaving the account marks the resident inactive. (The channel greets a new
        follower itself, in its answer to the callback.)"""
        async with self._sessions() as session, session.begin():
            if stored.inbound.kind == "unsubscribe":
                await mark_inactive(session, stored.resident_id)
            await mark_handled(session, stored.message_id, None)

    @staticmethod
    def _origin(stored: StoredInbound) -> Origin:
        return Origin(stored.chat, stored.resident_id, stored.resident_name, stored.message_id)
