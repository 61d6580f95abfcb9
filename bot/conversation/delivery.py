"""Outbound messages: stored first, then handed to the channel that owns the chat.

A message's `delivery` says how far it got: pending until its platform accepts it, then sent;
failed when the platform kept failing, undeliverable when it refuses this route for good.
Either failure is reported to whoever can reach the resident another way.

A pending line is claimed by the worker handing it on for `lease` (longer than a platform's
send API takes with its retries: three tries of 5 s and their pauses). Every worker sweeps
once a lease for pending lines whose claim ran out, so a line a dead worker stored (with the
ticket it announces, say) still goes out, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

from sqlalchemy.orm import sessionmaker

from bot.conversation.messages import (
    claim_outbound,
    pending_outbound,
    set_delivery,
    store_outbound,
)
from bot.core.chat import (
    ChannelSender,
    ChatMessage,
    ChatRef,
    DeliveryFailed,
    LineKind,
    Undeliverable,
)
from bot.core.clock import Clock, SystemClock

logger = logging.getLogger(__name__)

# Called with the chat, the message as it now stands, and the platform's reason.
FailureHandler = Callable[[ChatRef, ChatMessage, str], Awaitable[None]]


class Delivery:
    def __init__(
        self,
        sessions: sessionmaker,
        worker: str = "",
        clock: Clock | None = None,
        lease: timedelta = timedelta(seconds=30),
    ) -> None:
        self._sessions = sessions
        self._worker = worker
        self._clock = clock or SystemClock()
        self.lease = lease
        self._senders: dict[str, ChannelSender] = {}
        self._on_failure: list[FailureHandler] = []
        self._sweeping: asyncio.Task[None] | None = None

    def register(self, channel: str, sender: ChannelSender) -> None:
        self._senders[channel] = sender

    def on_failure(self, handler: FailureHandler) -> None:
        self._on_failure.append(handler)

    async def send(
        self,
        chat: ChatRef,
        text: str,
        *,
        member_id: int | None = None,
        ticket_id: int | None = None,
        resident_id: int | None = None,
        kind: LineKind = "text",
    ) -> ChatMessage:
        """`resident_id`: the chat's resident, when the caller knows it (spares a query)."""
        async with self._sessions() as session, session.begin():
            message = await store_outbound(
                session,
                chat,
                text,
                member_id=member_id,
                ticket_id=ticket_id,
                resident_id=resident_id,
                kind=kind,
                claimed_by=self._worker,
                claim_until=self._clock.now() + self.lease,
            )
        return await self._deliver(chat, message)

    async def send_stored(self, chat: ChatRef, line: ChatMessage) -> ChatMessage:
        """Hand on a line stored, claimed for `lease`, in the transaction that made it."""
        return await self._deliver(chat, line)

    async def record(self, chat: ChatRef, text: str) -> ChatMessage:
        """Keep a line the channel already said itself (a passive reply to a callback)."""
        async with self._sessions() as session, session.begin():
            return await store_outbound(session, chat, text, delivery="sent")

    def start_sweeping(self) -> None:
        self._sweeping = asyncio.create_task(self._sweep(), name="delivery-sweep")

    async def close(self) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeping

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds())
            try:
                if sent := await self.resume_pending():
                    logger.info("handed on %d line(s) another worker left pending", sent)
            except Exception:
                logger.exception("looking for lines left pending failed")

    async def resume_pending(self) -> int:
        """Hand on what was stored but not yet accepted, and that nobody is handing on: the
        process that stored it stopped or died first."""
        now = self._clock.now()
        async with self._sessions() as session:
            pending = await pending_outbound(session, now)
        sent = 0
        for chat, message in pending:
            if chat.channel not in self._senders:
                # Configured away (no WeChat credentials, say): kept for a worker that has it.
                continue
            async with self._sessions() as session, session.begin():
                mine = await claim_outbound(
                    session, message.id, self._worker, now, now + self.lease
                )
            if mine:
                await self._deliver(chat, message)
                sent += 1
        return sent

    async def _deliver(self, chat: ChatRef, message: ChatMessage) -> ChatMessage:
        sender = self._senders.get(chat.channel)
        if sender is None:
            logger.error("no sender for channel %s; message %s kept", chat.channel, message.id)
            return message
        try:
            await sender.deliver(chat, message)
        except Undeliverable as refused:
            return await self._failed(chat, message, "undeliverable", str(refused))
        except DeliveryFailed as failed:
            return await self._failed(chat, message, "failed", str(failed))
        return await self._mark(message, "sent")

    async def _failed(
        self, chat: ChatRef, message: ChatMessage, status: str, reason: str
    ) -> ChatMessage:
        logger.warning("message %s to %s %s: %s", message.id, chat.channel, status, reason)
        message = await self._mark(message, status)
        for handler in self._on_failure:
            await handler(chat, message, reason)
        return message

    async def _mark(self, message: ChatMessage, status: str) -> ChatMessage:
        async with self._sessions() as session, session.begin():
            await set_delivery(session, message.id, status)
        return replace(message, delivery=status)
