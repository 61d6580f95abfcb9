"""The handoff lifecycle: open a ticket for a person, claim, reply, resolve.

Every status change goes through `_transition`, which consults the table in
`bot.handoff.states` and writes a `TicketEvent`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from actions.handoff_client import HandoffRequest, HandoffResult
from bot.channels.base import ChatMessage, ChatRef
from bot.conversation.delivery import Delivery
from bot.conversation.messages import StoredInbound, chat_message, mark_handled, message_by_id
from bot.db.models import Message, Resident, Ticket, TicketEvent, utcnow
from bot.handoff.access import Scope, Viewer, may_act, may_see, visible_to, was_offered
from bot.handoff.categories import UNCLASSIFIED, category_for_intent
from bot.handoff.dispatcher import Assignment, choose_assignee, find_grid
from bot.handoff.push import MemberHub
from bot.handoff.states import OPEN_STATUSES, IllegalTransition, Status, next_status
from bot.metrics import Metrics

logger = logging.getLogger(__name__)

NOBODY_ON_DUTY_TEXT = "已记下您的事，社区工作人员会尽快在这里回复您。"
CALL_INSTEAD_TEXT = "消息没能送到居民那里，请电话联系{name}：{phone}"
VISIT_INSTEAD_TEXT = "消息没能送到居民那里，居民没有留电话，请上门或在群里找{name}。"
PHOTO_TEXT = "[照片]"
VOICE_TEXT = "[语音]"


class TicketNotFound(Exception):
    pass


class NotAllowed(Exception):
    pass


@dataclass(frozen=True)
class TicketDetail:
    ticket: Ticket
    messages: list[ChatMessage]
    events: list[TicketEvent]


def chat_of(ticket: Ticket) -> ChatRef:
    return ChatRef(
        channel=ticket.channel,
        chat_type=ticket.chat_type,
        chat_id=ticket.chat_id,
        user_id=ticket.resident.external_id,
    )


def chat_from(request: HandoffRequest) -> ChatRef:
    """The chat a handoff came from. Our channels say so in the metadata; a bare Rasa client
    (`rasa shell`) does not, and is treated as a private chat keyed by its sender id."""
    meta = request.metadata
    if {"channel", "chat_type", "chat_id", "user_id"} <= meta.keys():
        return ChatRef(meta["channel"], meta["chat_type"], meta["chat_id"], meta["user_id"])
    channel = str(meta.get("channel") or "rasa")
    return ChatRef(channel, "private", request.conversation_id, request.conversation_id)


async def resident_of(session: AsyncSession, chat: ChatRef, meta: dict[str, Any]) -> Resident:
    if meta.get("resident_id") is not None:
        resident = await session.get(Resident, int(meta["resident_id"]))
        if resident is None:
            raise TicketNotFound(f"no resident {meta['resident_id']}")
        return resident
    resident = await session.scalar(
        select(Resident).where(
            Resident.channel == chat.channel, Resident.external_id == chat.user_id
        )
    )
    if resident is None:
        resident = Resident(channel=chat.channel, external_id=chat.user_id, name="")
        session.add(resident)
        await session.flush()
    return resident


def addressed(chat_type: str, resident_name: str, text: str) -> str:
    """In a group, a line meant for one resident names them."""
    return f"@{resident_name} {text}" if chat_type == "group" and resident_name else text


def coming(who: str, name: str) -> str:
    return f"{who}{name}来帮您，{name}会在这里直接回复您。"


def who_is_coming(assignment: Assignment) -> str:
    """The one thing the bot says about a request: who will help, by name."""
    member = assignment.member
    if member is None:
        return NOBODY_ON_DUTY_TEXT
    if member.role == "secretary":
        return coming("已请社区书记", member.name)
    grid = assignment.grid.name if assignment.grid else "社区"
    return coming(f"已请{grid}网格员", member.name)


class TicketService:
    def __init__(
        self,
        sessions: sessionmaker,
        delivery: Delivery,
        hub: MemberHub,
        resume_conversation: Callable[[str], Awaitable[None]],
        metrics: Metrics,
    ) -> None:
        self._sessions = sessions
        self._metrics = metrics
        self._delivery = delivery
        self._hub = hub
        self._resume = resume_conversation
        self._on_opened: list[Callable[[Ticket], Awaitable[None]]] = []

    def on_opened(self, listener: Callable[[Ticket], Awaitable[None]]) -> None:
        """Also tell `listener` of every new ticket (a second route to party members)."""
        self._on_opened.append(listener)

    async def open_ticket(self, request: HandoffRequest) -> HandoffResult:
        chat = chat_from(request)
        async with self._sessions() as session, session.begin():
            resident = await resident_of(session, chat, request.metadata)
            entities = dict(request.entities)
            if "address" not in entities and resident.location:
                entities["address"] = resident.location
            grid = await find_grid(session, resident, chat, entities.get("address"), request.text)
            if resident.grid is None and grid is not None and entities.get("address"):
                resident.grid = grid
            if resident.phone is None and entities.get("phone"):
                resident.phone = entities["phone"]
            ticket = Ticket(
                conversation_id=request.conversation_id,
                resident=resident,
                channel=chat.channel,
                chat_type=chat.chat_type,
                chat_id=chat.chat_id,
                category=category_for_intent(request.intent),
                intent=request.intent,
                confidence=request.confidence,
                text=request.text,
                entities=entities,
                status=Status.NEW,
                grid=grid,
            )
            session.add(ticket)
            await session.flush()
            self._event(session, ticket, "created", None, Status.NEW, None, "居民求助")
            assignment = await choose_assignee(session, grid)
            if assignment.member is not None:
                ticket.assignee = assignment.member
                assignment.member.last_assigned_at = utcnow()
                self._transition(session, ticket, "assign", None, assignment.reason)
            else:
                self._event(session, ticket, "unassigned", None, None, None, assignment.reason)
            if request.metadata.get("message_id"):
                await mark_handled(session, int(request.metadata["message_id"]), ticket.id)
        logger.info(
            "ticket %s opened: %s (%.2f) -> %s",
            ticket.id,
            ticket.category,
            ticket.confidence,
            assignment.reason,
        )
        self._metrics.tickets_opened.labels(ticket.category).inc()
        await self._hub.publish("ticket.created", ticket)
        for listener in self._on_opened:
            await listener(ticket)
        return HandoffResult(
            ticket_id=ticket.id,
            reply=addressed(chat.chat_type, resident.name, who_is_coming(assignment)),
        )

    async def open_ticket_for(self, conversation_id: str) -> Ticket | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(Ticket)
                .where(
                    Ticket.conversation_id == conversation_id,
                    Ticket.status.in_(OPEN_STATUSES),
                )
                .order_by(Ticket.id.desc())
                .limit(1)
            )

    async def open_unread(self, stored: StoredInbound, metadata: dict[str, Any]) -> HandoffResult:
        """A photo or a voice clip nobody transcribed: a person looks at it, as 未分类."""
        inbound = stored.inbound
        label = PHOTO_TEXT if inbound.kind == "image" else VOICE_TEXT
        request = HandoffRequest(
            conversation_id=stored.chat.conversation_id,
            intent=UNCLASSIFIED,
            confidence=0.0,
            text=f"{label} {inbound.text}".strip(),
            metadata=metadata,
        )
        return await self.open_ticket(request)

    async def relay_from_resident(self, ticket: Ticket, message_id: int) -> None:
        """A message from a resident whose ticket is open goes to its member, not the bot.
        A shared location becomes the ticket's address."""
        async with self._sessions() as session, session.begin():
            await mark_handled(session, message_id, ticket.id)
            ticket = await session.get(Ticket, ticket.id)
            ticket.updated_at = utcnow()
            message = await message_by_id(session, message_id)
            if message.kind == "location" and message.media and message.media.label:
                ticket.entities = {**(ticket.entities or {}), "address": message.media.label}
        await self._hub.publish("ticket.message", ticket, message)

    async def remember_location(self, stored: StoredInbound) -> None:
        """A location shared with no request open: the next request from them is there."""
        media = stored.inbound.media
        async with self._sessions() as session, session.begin():
            resident = await session.get(Resident, stored.resident_id)
            if media is not None and resident is not None:
                resident.location = media.label or f"{media.latitude},{media.longitude}"
            await mark_handled(session, stored.message_id, None)

    async def report_undelivered(self, chat: ChatRef, message: ChatMessage, reason: str) -> None:
        """A message the platform would not carry: the holder must call or visit instead."""
        ticket = await self.latest_ticket_for(chat.conversation_id)
        if ticket is None:
            logger.warning("undelivered message %s belongs to no ticket", message.id)
            return
        resident = ticket.resident
        phone = resident.phone or (ticket.entities or {}).get("phone")
        name = resident.name or "居民"
        notice = (
            CALL_INSTEAD_TEXT.format(name=name, phone=phone)
            if phone
            else VISIT_INSTEAD_TEXT.format(name=name)
        )
        fields = {"message": message.to_json(), "notice": notice, "phone": phone}
        await self._hub.tell_holder("message.undelivered", ticket, fields)

    async def latest_ticket_for(self, conversation_id: str) -> Ticket | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(Ticket)
                .where(Ticket.conversation_id == conversation_id)
                .order_by(Ticket.id.desc())
                .limit(1)
            )

    async def visible_tickets(self, viewer: Viewer, status: str | None) -> list[Ticket]:
        query = select(Ticket).where(visible_to(viewer)).order_by(Ticket.id.desc()).limit(200)
        if status == "open":
            query = query.where(Ticket.status.in_(OPEN_STATUSES))
        elif status:
            query = query.where(Ticket.status == Status(status))
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())

    async def detail(self, viewer: Viewer, ticket_id: int) -> TicketDetail:
        async with self._sessions() as session:
            ticket = await self._visible(session, viewer, ticket_id)
            messages = await session.scalars(
                select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
            )
            events = await session.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(TicketEvent.id)
            )
            return TicketDetail(ticket, [chat_message(m) for m in messages], list(events.all()))

    async def claim(self, viewer: Viewer, ticket_id: int) -> Ticket:
        async with self._sessions() as session, session.begin():
            ticket = await session.get(Ticket, ticket_id)
            if ticket is not None and was_offered(viewer, ticket) and not may_see(viewer, ticket):
                # A colleague of the grid was quicker: a conflict, not a secret.
                raise IllegalTransition("claim", ticket.status)
            ticket = await self._visible(session, viewer, ticket_id)
            before = Scope.of(ticket)
            await self._claim(session, ticket, viewer)
        await self._after_claim(ticket, before)
        return ticket

    async def reply(self, viewer: Viewer, ticket_id: int, text: str) -> ChatMessage:
        async with self._sessions() as session, session.begin():
            ticket = await self._visible(session, viewer, ticket_id)
            if ticket.status == Status.RESOLVED:
                raise IllegalTransition("reply", ticket.status)
            if not may_act(viewer, ticket):
                raise NotAllowed("only the ticket's holder replies")
            before = Scope.of(ticket)
            claimed_now = ticket.status != Status.CLAIMED
            if claimed_now:
                await self._claim(session, ticket, viewer)
            first_response = ticket.first_response_at is None
            if first_response:
                ticket.first_response_at = utcnow()
            ticket.updated_at = utcnow()
            chat = chat_of(ticket)
        if first_response:
            waited = (ticket.first_response_at - ticket.created_at).total_seconds()
            self._metrics.first_response.labels(ticket.category).observe(waited)
        if claimed_now:
            await self._after_claim(ticket, before)
        message = await self._delivery.send(
            chat, self._addressed(ticket, text), member_id=viewer.member_id, ticket_id=ticket.id
        )
        await self._hub.publish("ticket.message", ticket, message)
        return message

    async def resolve(self, viewer: Viewer, ticket_id: int, note: str) -> Ticket:
        async with self._sessions() as session, session.begin():
            ticket = await self._visible(session, viewer, ticket_id)
            if not may_act(viewer, ticket):
                raise NotAllowed("only the ticket's holder resolves")
            before = Scope.of(ticket)
            self._transition(session, ticket, "resolve", viewer, note)
            ticket.resolved_at = utcnow()
            ticket.resolution_note = note
        self._metrics.tickets_resolved.labels(ticket.category).inc()
        # Only now may the bot read this resident's messages again.
        await self._resume(ticket.conversation_id)
        await self._hub.publish("ticket.updated", ticket, before=before)
        return ticket

    async def _after_claim(self, ticket: Ticket, before: Scope) -> None:
        """Tell the resident when someone other than the person we named has taken over."""
        if before.assignee_id is not None and before.assignee_id != ticket.assignee_id:
            text = self._addressed(ticket, coming("现在由", ticket.assignee.name))
            await self._delivery.send(chat_of(ticket), text, ticket_id=ticket.id)
        await self._hub.publish("ticket.updated", ticket, before=before)

    @staticmethod
    def _addressed(ticket: Ticket, text: str) -> str:
        return addressed(ticket.chat_type, ticket.resident.name, text)

    async def _visible(self, session: AsyncSession, viewer: Viewer, ticket_id: int) -> Ticket:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            raise TicketNotFound(str(ticket_id))
        if not may_see(viewer, ticket):
            raise NotAllowed(f"ticket {ticket_id} is not visible to member {viewer.member_id}")
        return ticket

    async def _claim(self, session: AsyncSession, ticket: Ticket, viewer: Viewer) -> None:
        target = next_status("claim", ticket.status)
        # A conditional update, so two members claiming at once cannot both win.
        result = await session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id, Ticket.status == ticket.status)
            .values(status=target, assignee_id=viewer.member_id, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise IllegalTransition("claim", "claimed")
        self._event(session, ticket, "claim", ticket.status, target, viewer, "")
        await session.refresh(ticket)

    def _transition(
        self, session: AsyncSession, ticket: Ticket, kind: str, viewer: Viewer | None, reason: str
    ) -> None:
        target = next_status(kind, ticket.status)
        self._event(session, ticket, kind, ticket.status, target, viewer, reason)
        ticket.status = target
        ticket.updated_at = utcnow()

    @staticmethod
    def _event(
        session: AsyncSession,
        ticket: Ticket,
        kind: str,
        from_status: Any,
        to_status: Any,
        viewer: Viewer | None,
        reason: str,
    ) -> None:
        session.add(
            TicketEvent(
                ticket_id=ticket.id,
                kind=kind,
                from_status=from_status,
                to_status=to_status,
                actor_member_id=viewer.member_id if viewer else None,
                actor=viewer.name if viewer else "system",
                reason=reason,
            )
        )
