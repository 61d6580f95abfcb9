"""Routing a stored inbound message: to the member holding the resident's open ticket, or to Rasa.

Channels call `accept` (persist, before they acknowledge) and then `process_later`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from sqlalchemy.orm import sessionmaker

from bot.channels.base import EVENT_KINDS, Inbound
from bot.conversation.delivery import Delivery
from bot.conversation.engine import RasaEngine
from bot.conversation.messages import (
    StoredInbound,
    mark_handled,
    mark_inactive,
    store_inbound,
    unhandled_inbound,
)
from bot.handoff.service import TicketService
from bot.metrics import Metrics
from bot.privacy import mask_text

logger = logging.getLogger(__name__)

LOCATION_NOTED_TEXT = "收到您发的位置了。需要帮什么忙，直接说或者发语音就行。"


class Router:
    def __init__(
        self,
        sessions: sessionmaker,
        engine: RasaEngine,
        tickets: TicketService,
        delivery: Delivery,
        metrics: Metrics,
        concurrency: int = 4,
    ) -> None:
        self._sessions = sessions
        self._metrics = metrics
        self._engine = engine
        self._tickets = tickets
        self._delivery = delivery
        # One turn at a time per conversation: a second message must see the ticket the
        # first one opened, not race it into Rasa.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._tasks: set[asyncio.Task[None]] = set()
        # Routing a message costs several milliseconds of CPU on the event loop; left unbounded,
        # a burst of routing starves the callbacks that must answer WeChat within 5 seconds.
        self._routing_slots = asyncio.Semaphore(concurrency)

    async def accept(self, inbound: Inbound) -> StoredInbound | None:
        """Persist the message; None for a platform retry of one already stored."""
        stored = await store_inbound(self._sessions, inbound)
        if stored is None:
            logger.info(
                "duplicate %s message %s dropped", inbound.chat.channel, inbound.platform_msg_id
            )
        else:
            self._metrics.messages.labels(inbound.chat.channel).inc()
        return stored

    def process_later(self, stored: StoredInbound) -> None:
        task = asyncio.create_task(self._process_logged(stored))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for messages being routed (used at shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def resume_unhandled(self) -> int:
        """Route messages that were stored and acknowledged before the last stop, but not routed."""
        async with self._sessions() as session:
            pending = await unhandled_inbound(session)
        for stored in pending:
            self.process_later(stored)
        return len(pending)

    async def _process_logged(self, stored: StoredInbound) -> None:
        async with self._routing_slots:
            try:
                await self.process(stored)
            except Exception:
                logger.exception("routing message %s failed", stored.message_id)

    async def process(self, stored: StoredInbound) -> None:
        conversation_id = stored.chat.conversation_id
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        async with lock:
            inbound = stored.inbound
            if inbound.kind in EVENT_KINDS:
                await self._on_follow(stored)
                return
            ticket = await self._tickets.open_ticket_for(conversation_id)
            if ticket is not None:
                await self._tickets.relay_from_resident(ticket, stored.message_id)
            elif inbound.kind == "location":
                await self._tickets.remember_location(stored)
                await self._delivery.send(stored.chat, LOCATION_NOTED_TEXT)
            elif not inbound.readable:
                opened = await self._tickets.open_unread(stored, self._metadata(stored))
                await self._delivery.send(stored.chat, opened.reply, ticket_id=opened.ticket_id)
            elif not await self._tickets.follow_up(stored):
                await self._ask_model(stored)

    async def _ask_model(self, stored: StoredInbound) -> None:
        conversation_id = stored.chat.conversation_id
        replies = await self._engine.handle(
            stored.inbound.text, conversation_id, self._metadata(stored)
        )
        logger.info(
            "%s: %r -> %d bot line(s)",
            conversation_id,
            mask_text(stored.inbound.text),
            len(replies),
        )
        ticket = await self._tickets.open_ticket_for(conversation_id)
        ticket_id = ticket.id if ticket is not None else None
        async with self._sessions() as session, session.begin():
            await mark_handled(session, stored.message_id, ticket_id)
        for text in replies:
            await self._delivery.send(stored.chat, text, ticket_id=ticket_id)

    async def _on_follow(self, stored: StoredInbound) -> None:
        """Leaving the account marks the resident inactive. (The channel greets a new
        follower itself, in its answer to the callback.)"""
        async with self._sessions() as session, session.begin():
            if stored.inbound.kind == "unsubscribe":
                await mark_inactive(session, stored.resident_id)
            await mark_handled(session, stored.message_id, None)

    @staticmethod
    def _metadata(stored: StoredInbound) -> dict[str, object]:
        chat = stored.chat
        return {
            "channel": chat.channel,
            "chat_type": chat.chat_type,
            "chat_id": chat.chat_id,
            "user_id": chat.user_id,
            "resident_id": stored.resident_id,
            "resident_name": stored.resident_name,
            "message_id": stored.message_id,
        }
