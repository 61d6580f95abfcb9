"""A resident's messages and the tickets they touch: words for the member holding their open
ticket, a shared location kept for their next request, and a message to them that the
platform would not carry.
"""

from __future__ import annotations

import logging

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defaultload

from bot.conversation.messages import message_by_id
from bot.core.chat import ChatMessage, ChatRef, StoredInbound
from bot.db.models import Member, Resident, Ticket
from bot.handoff import texts
from bot.handoff.ledger import Ledger
from bot.handoff.payloads import console_message
from bot.handoff.states import OPEN_STATUSES

logger = logging.getLogger(__name__)

# Built once: routing runs it for every message.
_OPEN_TICKET_ID = (
    select(Ticket.id)
    .where(
        Ticket.conversation_id == bindparam("conversation_id"),
        Ticket.status.in_(OPEN_STATUSES),
    )
    .order_by(Ticket.id.desc())
    .limit(1)
)


async def open_ticket_id(session: AsyncSession, conversation_id: str) -> int | None:
    """The conversation's open ticket, if any: while there is one, the conversation is its
    holder's, and the bot does not answer. Routing asks for every message and needs only
    the id; a whole `Ticket` brings its resident, grid and assignee with it."""
    return await session.scalar(_OPEN_TICKET_ID, {"conversation_id": conversation_id})


class Residents:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def open_ticket_of(self, conversation_id: str) -> int | None:
        async with self._ledger.sessions() as session:
            return await open_ticket_id(session, conversation_id)

    async def relay_from_resident(self, ticket_id: int, message_id: int) -> None:
        """A message from a resident whose ticket is open goes to its member, not the bot.
        A shared location becomes the ticket's address."""
        async with self._ledger.change() as change:
            # Reads first: on SQLite the first write takes the database's write lock, which
            # everyone else then waits for until this commits. The console's event shows
            # the holder's name, not the grids they cover.
            ticket = await change.session.get(
                Ticket, ticket_id, options=[defaultload(Ticket.assignee).lazyload(Member.grids)]
            )
            message = await message_by_id(change.session, message_id)
            ticket.updated_at = change.now
            if message.kind == "location" and message.media and message.media.label:
                ticket.entities = {**(ticket.entities or {}), "address": message.media.label}
            await change.attach(message_id, ticket_id)
            change.push("ticket.message", ticket, message=message)

    async def remember_location(self, stored: StoredInbound) -> None:
        """A location shared with no request open: the next request from them is there."""
        media = stored.inbound.media
        async with self._ledger.change() as change:
            resident = await change.session.get(Resident, stored.resident_id)
            if media is not None and resident is not None:
                resident.location = media.label or f"{media.latitude},{media.longitude}"
            await change.attach(stored.message_id, None)

    async def report_undelivered(self, chat: ChatRef, message: ChatMessage, reason: str) -> None:
        """A message the platform would not carry: the holder must call or visit instead."""
        async with self._ledger.change() as change:
            ticket = await change.session.scalar(
                select(Ticket)
                .where(Ticket.conversation_id == chat.conversation_id)
                .order_by(Ticket.id.desc())
                .limit(1)
            )
            if ticket is None:
                logger.warning("undelivered message %s belongs to no ticket", message.id)
                return
            phone = ticket.contact_phone()
            name = ticket.resident.name or "居民"
            notice = (
                texts.CALL_INSTEAD.format(name=name, phone=phone)
                if phone
                else texts.VISIT_INSTEAD.format(name=name)
            )
            fields = {"message": console_message(message), "notice": notice, "phone": phone}
            change.tell_holder("message.undelivered", ticket, fields)
