"""What is held about residents, and for how long: the daily retention job, and a resident's
export and erasure (`python -m bot privacy export|erase`).

Erasing keeps the statistics (category, times, who helped, rating) and removes the words:
message bodies, media ids, transcripts, the photos and voice clips sent through the webchat,
request texts and notes, possible requests, review texts, queued notes to members, and Rasa's
tracker events (which hold all the resident typed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import TableClause

from bot import audit
from bot.audit import AuditAction
from bot.conversation.tracker_store import EVENTS
from bot.core.clock import Clock
from bot.db.models import (
    ConsoleEvent,
    MediaFile,
    Message,
    Notification,
    Resident,
    Ticket,
    TicketEvent,
)
from bot.db.nlu_models import Classification, PossibleRequest
from bot.handoff.states import OPEN_STATUSES, Status

logger = logging.getLogger(__name__)

ERASED_NAME = "已删除"
UNLINKED_UPLOAD = timedelta(days=1)
RUN_EVERY = timedelta(days=1)
# Not at start: startup is busy (loading the model, routing what waited for us).
FIRST_RUN_AFTER = timedelta(minutes=5)


@dataclass
class Erased:
    messages: int = 0
    media_files: int = 0
    tickets: int = 0
    possible_requests: int = 0
    review_texts: int = 0
    notifications: int = 0
    tracker_events: int = 0
    console_events: int = 0

    def describe(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in asdict(self).items())


class ResidentNotFound(Exception):
    pass


class ResidentBusy(Exception):
    """A resident with an open request: erasing now would leave a member with nothing."""


@dataclass(frozen=True)
class Scope:
    """Which rows lose their words."""

    messages: ColumnElement[bool]
    tickets: ColumnElement[bool]
    possible: ColumnElement[bool]
    tracker: Callable[[TableClause], ColumnElement[bool]]
    # Events kept for reconnecting consoles (`bot.handoff.journal`): a few minutes' worth.
    journal: ColumnElement[bool]


def _open_conversation(conversation_id: ColumnElement[str]) -> ColumnElement[bool]:
    return exists().where(
        Ticket.conversation_id == conversation_id, Ticket.status.in_(OPEN_STATUSES)
    )


async def _count(session: AsyncSession, statement: Any) -> int:
    # Bulk statements over subqueries: nothing loaded in this session needs refreshing.
    statement = statement.execution_options(synchronize_session=False)
    return (await session.execute(statement)).rowcount or 0


async def _erase(session: AsyncSession, scope: Scope) -> Erased:
    erased = Erased()
    message_ids = select(Message.id).where(scope.messages).scalar_subquery()
    ticket_ids = select(Ticket.id).where(scope.tickets).scalar_subquery()
    erased.review_texts = await _count(
        session,
        update(Classification)
        .where(
            or_(
                Classification.message_id.in_(message_ids), Classification.ticket_id.in_(ticket_ids)
            ),
            Classification.text != "",
        )
        .values(text=""),
    )
    erased.media_files = await _count(
        session, delete(MediaFile).where(MediaFile.message_id.in_(message_ids))
    )
    erased.messages = await _count(
        session,
        update(Message)
        .where(scope.messages, or_(Message.text != "", Message.media.is_not(None)))
        .values(text="", media=None, reply_handle=None),
    )
    await _count(
        session, update(TicketEvent).where(TicketEvent.ticket_id.in_(ticket_ids)).values(reason="")
    )
    erased.notifications = await _count(
        session, delete(Notification).where(Notification.ticket_id.in_(ticket_ids))
    )
    erased.tickets = await _count(
        session,
        update(Ticket)
        .where(scope.tickets, Ticket.text != "")
        .values(text="", entities={}, resolution_note=None, visit_outcome=None),
    )
    erased.possible_requests = await _count(
        session,
        update(PossibleRequest)
        .where(scope.possible, PossibleRequest.text != "")
        .values(text="", entities={}),
    )
    erased.console_events = await _count(session, delete(ConsoleEvent).where(scope.journal))
    # Rasa's tracker store's table, which migration 0015 makes on every database.
    erased.tracker_events = await _count(session, delete(EVENTS).where(scope.tracker(EVENTS)))
    return erased


def expired_scope(cutoff: datetime) -> Scope:
    """Conversations that ended before `cutoff`: their messages older than it, of no open
    request and of no request closed since; requests closed before it."""
    finished = and_(Ticket.status == Status.CLOSED, Ticket.closed_at < cutoff)
    kept_ticket = exists().where(Ticket.id == Message.ticket_id, not_(finished))

    def idle_trackers(events: TableClause) -> ColumnElement[bool]:
        idle = (
            select(events.c.sender_id)
            .group_by(events.c.sender_id)
            .having(func.max(events.c.timestamp) < cutoff.timestamp())
        )
        return and_(events.c.sender_id.in_(idle), not_(_open_conversation(events.c.sender_id)))

    return Scope(
        messages=and_(
            Message.created_at < cutoff,
            not_(kept_ticket),
            not_(_open_conversation(Message.conversation_id)),
        ),
        tickets=finished,
        possible=and_(
            PossibleRequest.created_at < cutoff,
            not_(_open_conversation(PossibleRequest.conversation_id)),
        ),
        tracker=idle_trackers,
        # The journal keeps minutes, pruned as events come; on a quiet service that can be
        # never, so past the retention time every row goes, whoever's words it carries.
        journal=ConsoleEvent.created_at < cutoff,
    )


async def expire(session: AsyncSession, now: datetime, days: int) -> Erased:
    erased = await _erase(session, expired_scope(now - timedelta(days=days)))
    # An upload whose message was never stored (the worker stopped in between) is nobody's.
    erased.media_files += await _count(
        session,
        delete(MediaFile).where(
            MediaFile.message_id.is_(None), MediaFile.created_at < now - UNLINKED_UPLOAD
        ),
    )
    audit.record(session, AuditAction.RETENTION, now, detail=f"{days}天前: {erased.describe()}")
    return erased


class RetentionJob:
    """Runs `expire` once a day, the first time a few minutes after the service starts."""

    def __init__(self, sessions: sessionmaker, clock: Clock, days: int) -> None:
        self._sessions = sessions
        self._clock = clock
        self._days = days
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> Erased:
        async with self._sessions() as session, session.begin():
            erased = await expire(session, self._clock.now(), self._days)
        logger.info("retention (%d days): erased %s", self._days, erased.describe())
        return erased

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        await asyncio.sleep(FIRST_RUN_AFTER.total_seconds())
        while True:
            try:
                await self.run_once()
            except Exception:
                logger.exception("retention run failed; trying again tomorrow")
            await asyncio.sleep(RUN_EVERY.total_seconds())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# ---------- one resident ----------


async def find_resident(session: AsyncSession, who: str) -> Resident:
    """A resident by id, `channel:external id`, or `ticket:N` (the ticket's resident)."""
    kind, _, value = who.partition(":")
    if who.isdigit():
        resident = await session.get(Resident, int(who))
    elif kind == "ticket" and value.isdigit():
        ticket = await session.get(Ticket, int(value))
        resident = ticket.resident if ticket is not None else None
    else:
        resident = await session.scalar(
            select(Resident).where(Resident.channel == kind, Resident.external_id == value)
        )
    if resident is None:
        raise ResidentNotFound(f"no resident {who!r}")
    return resident


def _conversations_of(resident: Resident) -> Select:
    """The conversations the resident wrote in: their words and the answers to them."""
    return select(Message.conversation_id).where(Message.resident_id == resident.id)


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def export(session: AsyncSession, resident: Resident) -> dict[str, Any]:
    """Everything held about one resident, unmasked: it is theirs."""
    tickets = await session.scalars(
        select(Ticket).where(Ticket.resident_id == resident.id).order_by(Ticket.id)
    )
    rows = (
        await session.scalars(
            select(Message)
            .where(Message.conversation_id.in_(_conversations_of(resident)))
            .order_by(Message.id)
        )
    ).all()
    return {
        "resident": {
            "id": resident.id,
            "channel": resident.channel,
            "external_id": resident.external_id,
            "name": resident.name,
            "phone": resident.phone,
            "grid": resident.grid.name if resident.grid else None,
            "location": resident.location,
            "created_at": _time(resident.created_at),
        },
        "messages": [
            {
                "at": _time(m.created_at),
                "from": m.sender_kind,
                "chat": m.chat_type,
                "kind": m.kind,
                "text": m.text,
                "media": m.media,
                "ticket_id": m.ticket_id,
            }
            for m in rows
        ],
        "tickets": [
            {
                "id": t.id,
                "category": t.category,
                "status": t.status,
                "text": t.text,
                "entities": t.entities,
                "created_at": _time(t.created_at),
                "resolved_at": _time(t.resolved_at),
                "resolution_note": t.resolution_note,
                "helper": t.assignee.name if t.assignee else None,
                "rating": t.rating,
            }
            for t in tickets.all()
        ],
    }


async def erase(session: AsyncSession, resident: Resident) -> Erased:
    """The resident's words and identity go; their requests stay as anonymous statistics."""
    open_tickets = await session.scalars(
        select(Ticket.id).where(Ticket.resident_id == resident.id, Ticket.status.in_(OPEN_STATUSES))
    )
    busy = list(open_tickets.all())
    if busy:
        raise ResidentBusy(f"resident {resident.id} has open tickets {busy}; resolve them first")
    conversations = _conversations_of(resident)
    erased = await _erase(
        session,
        Scope(
            messages=Message.conversation_id.in_(conversations),
            tickets=Ticket.resident_id == resident.id,
            possible=PossibleRequest.resident_id == resident.id,
            tracker=lambda events: events.c.sender_id.in_(conversations),
            journal=ConsoleEvent.resident_id == resident.id,
        ),
    )
    resident.name = ERASED_NAME
    resident.phone = None
    resident.location = None
    # A new message from the same account starts a new, unlinked resident.
    resident.external_id = f"erased:{resident.id}"
    resident.active = False
    return erased
