"""Storing messages and reading chat history."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.core.chat import ChatMessage, ChatRef, Inbound, LineKind, Media, StoredInbound
from bot.db.models import Member, Message, Resident, utcnow

BOT_NAME = "社区小助手"

# The statements every inbound message runs, built once: SQLAlchemy then reuses their cache
# keys and compiled SQL instead of building them anew for each message.
_STORED_ID = select(Message.id).where(
    Message.channel == bindparam("channel"),
    Message.platform_msg_id == bindparam("platform_msg_id"),
)
_RESIDENT_IN_CHAT = select(Resident.id, Resident.name, Resident.active).where(
    Resident.channel == bindparam("channel"), Resident.external_id == bindparam("external_id")
)
_NEW_RESIDENT = insert(Resident)
_NEW_MESSAGE = insert(Message)
# Core statements on the table: no ORM object in a session is brought up to date by them.
_HANDLED = (
    update(Message.__table__)
    .where(Message.id == bindparam("message_id"))
    .values(handled_at=bindparam("handled"))
)
_HANDLED_FOR_TICKET = _HANDLED.values(ticket_id=bindparam("ticket"))
_DELIVERY = (
    update(Message.__table__)
    .where(Message.id == bindparam("message_id"))
    .values(delivery=bindparam("status"))
)


class RecentlyStored:
    """Platform message ids lately stored, or found stored: under load most callbacks are
    WeChat's retries, and this spares the database a read for each. Only ids known to be in
    the database go in, so one missing here (evicted, or stored by another process) is still
    looked up there."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._ids: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __contains__(self, inbound: Inbound) -> bool:
        return (inbound.chat.channel, inbound.platform_msg_id) in self._ids

    def add(self, inbound: Inbound) -> None:
        self._ids[(inbound.chat.channel, inbound.platform_msg_id)] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)


def chat_message(message: Message) -> ChatMessage:
    """A message read from the database, with its resident and member loaded."""
    if message.sender_kind == "member" and message.member is not None:
        name = message.member.name
    elif message.sender_kind == "resident" and message.resident is not None:
        name = message.resident.name
    else:
        name = BOT_NAME
    return ChatMessage(
        id=message.id,
        sender_kind=message.sender_kind,
        sender_name=name,
        user_id=message.resident.external_id if message.resident is not None else None,
        text=message.text,
        created_at=message.created_at,
        kind=message.kind,
        media=Media.from_json(message.media),
        delivery=message.delivery,
    )


async def store_inbound(sessions: sessionmaker, inbound: Inbound) -> StoredInbound | None:
    """Persist a resident's message; None when the platform already delivered this one."""
    try:
        return await _insert_if_new(sessions, inbound)
    except IntegrityError:
        # Either a retry of a stored message, or two first messages of a new resident
        # racing to create them; the second attempt tells which.
        try:
            return await _insert_if_new(sessions, inbound)
        except IntegrityError:
            async with sessions() as session:
                if await _already_stored(session, inbound):
                    return None
            raise


async def _insert_if_new(sessions: sessionmaker, inbound: Inbound) -> StoredInbound | None:
    """Rows, not ORM objects: the message is not read back, and loading and flushing objects
    cost more than the statements."""
    chat = inbound.chat
    async with sessions() as session, session.begin():
        # Most callbacks under load are WeChat's retries: a read spots them without taking
        # the database's write lock, which an insert that fails on the unique key would.
        if await _already_stored(session, inbound):
            return None
        resident_id, name, new = await _writing_resident(
            session, chat, inbound.user_name, inbound.kind
        )
        inserted = await session.execute(
            _NEW_MESSAGE,
            {
                "channel": chat.channel,
                "platform_msg_id": inbound.platform_msg_id,
                "conversation_id": chat.conversation_id,
                "chat_type": chat.chat_type,
                "chat_id": chat.chat_id,
                "direction": "in",
                "sender_kind": "resident",
                "resident_id": resident_id,
                "text": inbound.text,
                "kind": inbound.kind,
                "media": inbound.media.to_json() if inbound.media else None,
                "reply_handle": inbound.reply_handle,
            },
        )
        return StoredInbound(inserted.inserted_primary_key[0], resident_id, name, inbound, new)


async def _writing_resident(
    session: AsyncSession, chat: ChatRef, name: str, inbound_kind: str
) -> tuple[int, str, bool]:
    """The id and name of the resident who writes in `chat`, created on their first message
    (then True). A name the platform gives replaces the stored one; anything but leaving
    makes them active."""
    chat_of = {"channel": chat.channel, "external_id": chat.user_id}
    found = (await session.execute(_RESIDENT_IN_CHAT, chat_of)).first()
    if found is None:
        created = await session.execute(_NEW_RESIDENT, {**chat_of, "name": name})
        return created.inserted_primary_key[0], name, True
    changes: dict[str, object] = {}
    if name and found.name != name:
        changes["name"] = name
    if inbound_kind != "unsubscribe" and not found.active:
        changes["active"] = True
    if changes:
        await session.execute(update(Resident).where(Resident.id == found.id).values(**changes))
    return found.id, name or found.name, False


async def resident_in(session: AsyncSession, chat: ChatRef, name: str = "") -> Resident:
    """The resident who writes in `chat`, created on their first message."""
    resident = await session.scalar(
        select(Resident).where(
            Resident.channel == chat.channel, Resident.external_id == chat.user_id
        )
    )
    if resident is None:
        resident = Resident(channel=chat.channel, external_id=chat.user_id, name=name)
        session.add(resident)
        await session.flush()
    return resident


async def _already_stored(session: AsyncSession, inbound: Inbound) -> bool:
    found = await session.scalar(
        _STORED_ID,
        {"channel": inbound.chat.channel, "platform_msg_id": inbound.platform_msg_id},
    )
    return found is not None


async def mark_handled(session: AsyncSession, message_id: int, ticket_id: int | None) -> None:
    if ticket_id is None:
        await session.execute(_HANDLED, {"message_id": message_id, "handled": utcnow()})
        return
    await session.execute(
        _HANDLED_FOR_TICKET, {"message_id": message_id, "handled": utcnow(), "ticket": ticket_id}
    )


async def store_outbound(
    session: AsyncSession,
    chat: ChatRef,
    text: str,
    *,
    member_id: int | None = None,
    ticket_id: int | None = None,
    delivery: str = "pending",
    resident_id: int | None = None,
    kind: LineKind = "text",
    claimed_by: str | None = None,
    claim_until: datetime | None = None,
) -> ChatMessage:
    """`resident_id`: the chat's resident, looked up when not given. A pending line is
    claimed until `claim_until` by whoever hands it on; after that, any worker's sweep may
    (its sender died). A row, not an ORM object: every request's answer is one."""
    if resident_id is None:
        found = await session.execute(
            _RESIDENT_IN_CHAT, {"channel": chat.channel, "external_id": chat.user_id}
        )
        resident_id = found.scalar()
    now, sender_kind = utcnow(), "member" if member_id else "bot"
    inserted = await session.execute(
        _NEW_MESSAGE,
        {
            "channel": chat.channel,
            "conversation_id": chat.conversation_id,
            "chat_type": chat.chat_type,
            "chat_id": chat.chat_id,
            "direction": "out",
            "sender_kind": sender_kind,
            "resident_id": resident_id,
            "member_id": member_id,
            "ticket_id": ticket_id,
            "text": text,
            "kind": kind,
            "created_at": now,
            "handled_at": now,
            "delivery": delivery,
            "routing_by": claimed_by,
            "routing_until": claim_until,
        },
    )
    return ChatMessage(
        id=inserted.inserted_primary_key[0],
        sender_kind=sender_kind,
        # A member's line shows its sender's name.
        sender_name=await _member_name(session, member_id) if member_id else BOT_NAME,
        user_id=chat.user_id,
        text=text,
        created_at=now,
        kind=kind,
        delivery=delivery,
    )


async def _member_name(session: AsyncSession, member_id: int) -> str:
    return str(await session.scalar(select(Member.name).where(Member.id == member_id)))


async def chat_history(session: AsyncSession, chat: ChatRef, limit: int = 50) -> list[ChatMessage]:
    """A private chat's own messages, or everything said in a group."""
    query = select(Message).order_by(Message.id.desc()).limit(limit)
    if chat.chat_type == "private":
        query = query.where(Message.conversation_id == chat.conversation_id)
    else:
        query = query.where(
            Message.channel == chat.channel,
            Message.chat_type == "group",
            Message.chat_id == chat.chat_id,
        )
    rows = (await session.scalars(query)).all()
    return [chat_message(m) for m in reversed(rows)]


def stored_from_row(message: Message) -> StoredInbound:
    """An inbound message row as channels first handed it over."""
    resident = message.resident
    chat = message.chat
    inbound = Inbound(
        chat=chat,
        platform_msg_id=message.platform_msg_id,
        user_name=resident.name,
        text=message.text,
        kind=message.kind,
        media=Media.from_json(message.media),
        reply_handle=message.reply_handle,
    )
    return StoredInbound(message.id, resident.id, resident.name, inbound)


async def message_by_id(session: AsyncSession, message_id: int) -> ChatMessage:
    message = await session.get(Message, message_id)
    if message is None:
        raise LookupError(f"no message {message_id}")
    return chat_message(message)


async def set_delivery(session: AsyncSession, message_id: int, status: str) -> None:
    await session.execute(_DELIVERY, {"message_id": message_id, "status": status})


def _unclaimed(now: datetime) -> object:
    return or_(Message.routing_until.is_(None), Message.routing_until < now)


async def pending_outbound(
    session: AsyncSession, now: datetime
) -> list[tuple[ChatRef, ChatMessage]]:
    """Outbound messages stored but not yet accepted by their platform, whose sender's claim
    ran out: the process stopped or died between storing and handing on."""
    rows = await session.scalars(
        select(Message)
        .where(Message.direction == "out", Message.delivery == "pending", _unclaimed(now))
        .order_by(Message.id)
    )
    return [(m.chat, chat_message(m)) for m in rows.all()]


async def claim_outbound(
    session: AsyncSession, message_id: int, worker: str, now: datetime, until: datetime
) -> bool:
    """Whether this worker may hand on a pending message left by a stop: not when another
    worker, sweeping at the same time, took it first."""
    won = await session.execute(
        update(Message)
        .where(Message.id == message_id, Message.delivery == "pending", _unclaimed(now))
        .values(routing_by=worker, routing_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(won.rowcount == 1)


async def latest_reply_handle(session: AsyncSession, chat: ChatRef) -> tuple[int, str] | None:
    """The newest unused one-off reply handle of a resident in a chat, with its message id."""
    row = (
        await session.execute(
            select(Message.id, Message.reply_handle)
            .where(
                Message.conversation_id == chat.conversation_id,
                Message.direction == "in",
                Message.reply_handle.is_not(None),
            )
            .order_by(Message.id.desc())
            .limit(1)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def spend_reply_handle(session: AsyncSession, message_id: int) -> None:
    await session.execute(update(Message).where(Message.id == message_id).values(reply_handle=None))


async def mark_inactive(session: AsyncSession, resident_id: int) -> None:
    await session.execute(update(Resident).where(Resident.id == resident_id).values(active=False))
