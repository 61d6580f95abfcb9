"""The handoff lifecycle: open a ticket for a person, escalate it until someone claims it,
transfer or hand it back, resolve it, ask how it went, reopen it.

Every status change goes through `_transition` (or the conditional claim/escalate updates),
which consults the table in `bot.handoff.states` and writes a `TicketEvent`. Time comes from
the injected clock, so timers run in tests in milliseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defaultload, sessionmaker

from actions.handoff_client import HandoffRequest, HandoffResult
from bot import audit
from bot.audit import AuditAction
from bot.channels.base import ChatMessage, ChatRef
from bot.clock import Clock
from bot.conversation.delivery import Delivery
from bot.conversation.messages import StoredInbound, chat_message, mark_handled, message_by_id
from bot.db.models import Member, Message, Resident, Ticket, TicketEvent
from bot.handoff import texts
from bot.handoff.access import Scope, Viewer, may_act, may_see, visible_to, was_offered
from bot.handoff.categories import UNCLASSIFIED, category_for_intent
from bot.handoff.dispatcher import (
    Assignment,
    choose_assignee,
    find_grid,
    next_step,
    secretary,
    urgent_audience,
)
from bot.handoff.incidents import find_incident, incident_label
from bot.handoff.payloads import console_message
from bot.handoff.push import MemberHub
from bot.handoff.roles import Action, allowed
from bot.handoff.schedule import on_duty
from bot.handoff.states import OPEN_STATUSES, UNCLAIMED, IllegalTransition, Status, next_status
from bot.metrics import Metrics

logger = logging.getLogger(__name__)


class TicketNotFound(Exception):
    pass


class NotAllowed(Exception):
    pass


@dataclass(frozen=True)
class Timeouts:
    """How long a ticket may wait for a claim, and how long a resident's answers count."""

    claim: timedelta = timedelta(minutes=10)
    urgent_claim: timedelta = timedelta(minutes=1)
    survey: timedelta = timedelta(hours=24)
    reopen: timedelta = timedelta(hours=72)
    # Reports of the same thing in a grid within this long become one incident.
    incident: timedelta = timedelta(hours=2)

    def for_category(self, category: str) -> timedelta:
        return self.urgent_claim if category == "urgent" else self.claim


@dataclass(frozen=True)
class Visit:
    """上门走访: when a member went to the resident, and what came of it."""

    at: datetime
    outcome: str


@dataclass(frozen=True)
class TicketDetail:
    ticket: Ticket
    messages: list[ChatMessage]
    events: list[TicketEvent]
    earlier: list[Ticket]
    # For an incident: the neighbours' reports merged into it.
    reporters: list[Ticket]


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


async def visible_ticket(session: AsyncSession, viewer: Viewer, ticket_id: int) -> Ticket:
    """The ticket, if it exists and the viewer may see it."""
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound(str(ticket_id))
    if not may_see(viewer, ticket):
        raise NotAllowed(f"ticket {ticket_id} is not visible to member {viewer.member_id}")
    return ticket


async def open_ticket_id(session: AsyncSession, conversation_id: str) -> int | None:
    """The conversation's open ticket, if any. Routing asks for every message and needs only
    the id; a whole `Ticket` brings its resident, grid and assignee with it."""
    return await session.scalar(
        select(Ticket.id)
        .where(Ticket.conversation_id == conversation_id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.id.desc())
        .limit(1)
    )


def addressed(chat_type: str, resident_name: str, text: str) -> str:
    """In a group, a line meant for one resident names them."""
    return f"@{resident_name} {text}" if chat_type == "group" and resident_name else text


class TicketService:
    def __init__(
        self,
        sessions: sessionmaker,
        delivery: Delivery,
        hub: MemberHub,
        resume_conversation: Callable[[str], Awaitable[None]],
        metrics: Metrics,
        clock: Clock,
        timeouts: Timeouts | None = None,
    ) -> None:
        self._sessions = sessions
        self._metrics = metrics
        self._delivery = delivery
        self._hub = hub
        self._resume = resume_conversation
        self._clock = clock
        self._timeouts = timeouts or Timeouts()
        self._on_opened: list[Callable[[Ticket], Awaitable[None]]] = []

    def on_opened(self, listener: Callable[[Ticket], Awaitable[None]]) -> None:
        """Also tell `listener` of every new ticket (a second route to party members)."""
        self._on_opened.append(listener)

    # ---------- opening ----------

    async def open_ticket(
        self, request: HandoffRequest, confirmed_by: Viewer | None = None
    ) -> HandoffResult:
        """`confirmed_by`: the member who said a message the model read as chatter is a
        request (`bot.handoff.possible`)."""
        chat = chat_from(request)
        now = self._clock.now()
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
            category = category_for_intent(request.intent)
            ticket = Ticket(
                conversation_id=request.conversation_id,
                resident=resident,
                channel=chat.channel,
                chat_type=chat.chat_type,
                chat_id=chat.chat_id,
                category=category,
                intent=request.intent,
                confidence=request.confidence,
                text=request.text,
                entities=entities,
                status=Status.NEW,
                grid=grid,
                created_at=now,
                updated_at=now,
                tried_member_ids=[],
            )
            session.add(ticket)
            await session.flush()
            self._event(session, ticket, "created", None, Status.NEW, None, "居民求助")
            if confirmed_by is not None:
                reason = "模型当成了闲聊"
                self._event(session, ticket, "confirmed", None, None, confirmed_by, reason)
            since = now - self._timeouts.incident
            repeated = await find_incident(
                session, grid, category, request.text, resident.id, since
            )
            if repeated is not None:
                reason, reply = self._join(session, ticket, *repeated, now)
            elif category == "urgent":
                assignment = await urgent_audience(session, grid, now)
                reason, reply = assignment.reason, texts.urgent_coming(assignment)
                self._offer(session, ticket, assignment, "assign", None, now)
            else:
                assignment = await choose_assignee(session, grid, category, now)
                reason, reply = assignment.reason, texts.who_is_coming(assignment)
                self._offer(session, ticket, assignment, "assign", None, now)
            if request.metadata.get("message_id"):
                await mark_handled(session, int(request.metadata["message_id"]), ticket.id)
        logger.info(
            "ticket %s opened: %s (%.2f) -> %s",
            ticket.id,
            ticket.category,
            ticket.confidence,
            reason,
        )
        self._metrics.tickets_opened.labels(ticket.category).inc()
        await self._hub.publish("ticket.created", ticket)
        for listener in self._on_opened:
            await listener(ticket)
        return HandoffResult(
            ticket_id=ticket.id, reply=addressed(chat.chat_type, resident.name, reply)
        )

    def _offer(
        self,
        session: AsyncSession,
        ticket: Ticket,
        assignment: Assignment,
        kind: str,
        viewer: Viewer | None,
        now: datetime,
        note: str = "",
    ) -> None:
        """Offer the ticket to the assignment's member (or everyone it names) and start the
        claim timer; the event's reason says who and why."""
        ticket.assignee = assignment.member
        ticket.escalation_level = assignment.level
        ticket.broadcast = assignment.broadcast
        offered = [m.id for m in (assignment.member, *assignment.notified) if m is not None]
        ticket.tried_member_ids = [*(ticket.tried_member_ids or []), *offered]
        if assignment.member is not None:
            assignment.member.last_assigned_at = now
        more_steps = assignment.level < 3 or assignment.member is not None
        ticket.claim_deadline = (
            now + self._timeouts.for_category(ticket.category) if more_steps else None
        )
        reason = " · ".join(r for r in (note, assignment.reason) if r)
        if kind == "assign" and assignment.member is None and not assignment.notified:
            self._event(session, ticket, "unassigned", None, None, viewer, reason)
            return
        self._transition(session, ticket, kind, viewer, reason, now)

    def _join(
        self, session: AsyncSession, ticket: Ticket, incident: Ticket, word: str, now: datetime
    ) -> tuple[str, str]:
        """Link a report to the incident a neighbour opened: same holder, no timer of its
        own (it follows the incident)."""
        ticket.incident_id = incident.id
        if not (incident.entities or {}).get("incident"):
            incident.entities = {**(incident.entities or {}), "incident": word}
        ticket.assignee = incident.assignee
        reason = f"并入工单#{incident.id}（{word}）"
        self._transition(session, ticket, "assign", None, reason, now)
        claimed = incident.status == Status.CLAIMED and incident.assignee is not None
        if claimed:
            self._transition(session, ticket, "claim", _as_viewer(incident.assignee), reason, now)
        return reason, texts.joined_incident(incident.assignee, claimed)

    async def open_unread(self, stored: StoredInbound, metadata: dict[str, Any]) -> HandoffResult:
        """A photo or a voice clip nobody transcribed: a person looks at it, as 未分类."""
        inbound = stored.inbound
        label = texts.PHOTO if inbound.kind == "image" else texts.VOICE
        request = HandoffRequest(
            conversation_id=stored.chat.conversation_id,
            intent=UNCLASSIFIED,
            confidence=0.0,
            text=f"{label} {inbound.text}".strip(),
            metadata=metadata,
        )
        return await self.open_ticket(request)

    # ---------- reading ----------

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
            ticket = await visible_ticket(session, viewer, ticket_id)
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
                    visible_to(viewer),
                )
                .order_by(Ticket.id.desc())
                .limit(10)
            )
            return TicketDetail(
                ticket,
                [chat_message(m) for m in messages],
                list(events.all()),
                list(earlier.all()),
                await self._reports_of(session, ticket),
            )

    async def reveal_phone(self, viewer: Viewer, ticket_id: int) -> str | None:
        """The resident's full number, for calling; every reveal is in the ticket's events."""
        async with self._sessions() as session, session.begin():
            ticket = await visible_ticket(session, viewer, ticket_id)
            phone = ticket.contact_phone()
            self._event(session, ticket, "phone_revealed", None, None, viewer, "查看完整电话")
            audit.record(
                session,
                AuditAction.PHONE_REVEALED,
                self._clock.now(),
                viewer,
                viewer.member_id,
                target=f"工单#{ticket.id}",
            )
        logger.info("member %s revealed the phone of ticket %s", viewer.member_id, ticket_id)
        return phone

    # ---------- members acting ----------

    async def claim(self, viewer: Viewer, ticket_id: int) -> Ticket:
        async with self._sessions() as session, session.begin():
            ticket = await session.get(Ticket, ticket_id)
            if ticket is not None and was_offered(viewer, ticket) and not may_see(viewer, ticket):
                # A colleague of the grid was quicker: a conflict, not a secret.
                raise IllegalTransition("claim", ticket.status)
            ticket = await visible_ticket(session, viewer, ticket_id)
            before = Scope.of(ticket)
            await self._claim(session, ticket, viewer)
            followers = await self._claim_reports(session, ticket, viewer)
        await self._after_claim(ticket, before)
        await self._after_incident_claim(ticket, followers)
        return ticket

    async def reply(
        self, viewer: Viewer, ticket_id: int, text: str, to_all: bool = False
    ) -> ChatMessage:
        """Relay a member's words to the resident (and, for an incident, to every neighbour
        who reported it when `to_all`)."""
        now = self._clock.now()
        followers: list[tuple[Ticket, Scope]] = []
        async with self._sessions() as session, session.begin():
            ticket = await visible_ticket(session, viewer, ticket_id)
            if ticket.status not in OPEN_STATUSES:
                raise IllegalTransition("reply", ticket.status)
            # Replying claims it: for the holder, or anyone offered a ticket nobody holds yet.
            open_to_all = ticket.assignee_id is None and ticket.status in UNCLAIMED
            if not (may_act(viewer, ticket) or open_to_all):
                raise NotAllowed("only the ticket's holder replies")
            before = Scope.of(ticket)
            claimed_now = ticket.status != Status.CLAIMED
            if claimed_now:
                await self._claim(session, ticket, viewer)
                followers = await self._claim_reports(session, ticket, viewer)
            reports = await self._reports_of(session, ticket) if to_all else []
            first_response = ticket.first_response_at is None
            if first_response:
                ticket.first_response_at = now
            ticket.updated_at = now
            chat = chat_of(ticket)
        if first_response:
            waited = (ticket.first_response_at - ticket.created_at).total_seconds()
            self._metrics.first_response.labels(ticket.category).observe(waited)
        if claimed_now:
            await self._after_claim(ticket, before)
            await self._after_incident_claim(ticket, followers)
        message = await self._delivery.send(
            chat, self._addressed(ticket, text), member_id=viewer.member_id, ticket_id=ticket.id
        )
        await self._hub.publish("ticket.message", ticket, message)
        for report in reports:
            if report.status in OPEN_STATUSES:
                await self._delivery.send(
                    chat_of(report),
                    self._addressed(report, text),
                    member_id=viewer.member_id,
                    ticket_id=report.id,
                )
        return message

    async def transfer(self, viewer: Viewer, ticket_id: int, to_member: int, reason: str) -> Ticket:
        """The holder passes the ticket to a named colleague, who then claims it."""
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            ticket = await visible_ticket(session, viewer, ticket_id)
            if not may_act(viewer, ticket):
                raise NotAllowed("only the ticket's holder transfers it")
            target = await session.get(Member, to_member)
            if target is None or target.id == ticket.assignee_id:
                raise TicketNotFound(f"no member {to_member} to transfer to")
            if not (target.active and allowed(target.role, Action.HOLD)):
                raise NotAllowed(f"member {to_member} cannot hold tickets")
            before, previous = Scope.of(ticket), ticket.assignee
            step = Assignment(ticket.grid, target, f"转交{target.name}", ticket.escalation_level)
            self._offer(session, ticket, step, "transfer", viewer, now, reason)
        await self._tell_resident(ticket, texts.now_coming(previous, step))
        await self._hub.publish("ticket.updated", ticket, before=before)
        return ticket

    async def hand_back(self, viewer: Viewer, ticket_id: int, reason: str) -> Ticket:
        """A member who cannot take it gives it back; it goes on to the next in the chain."""
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            ticket = await visible_ticket(session, viewer, ticket_id)
            if not may_act(viewer, ticket):
                raise NotAllowed("only the ticket's holder hands it back")
            next_status("hand_back", ticket.status)
            before, previous = Scope.of(ticket), ticket.assignee
            step = await next_step(session, ticket, ticket.grid, now)
            if step is None:
                raise IllegalTransition("hand_back", "offered to everyone")
            self._offer(session, ticket, step, "hand_back", viewer, now, f"退回：{reason}")
        await self._tell_resident(ticket, texts.now_coming(previous, step))
        await self._hub.publish("ticket.updated", ticket, before=before)
        return ticket

    async def resolve(
        self, viewer: Viewer, ticket_id: int, note: str, visit: Visit | None = None
    ) -> Ticket:
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            ticket = await visible_ticket(session, viewer, ticket_id)
            if not may_act(viewer, ticket):
                raise NotAllowed("only the ticket's holder resolves")
            before = Scope.of(ticket)
            self._close_request(session, ticket, viewer, note, now)
            if visit is not None:
                ticket.visit_at, ticket.visit_outcome = visit.at, visit.outcome
            holder = ticket.assignee.name if ticket.assignee else viewer.name
            reports = [
                r for r in await self._reports_of(session, ticket) if r.status in OPEN_STATUSES
            ]
            for report in reports:
                self._close_request(session, report, viewer, note, now)
        for resolved in (ticket, *reports):
            self._metrics.tickets_resolved.labels(resolved.category).inc()
            # Only now may the bot read this resident's messages again.
            await self._resume(resolved.conversation_id)
            await self._tell_resident(resolved, texts.survey(holder))
        if reports:
            await self._tell_groups(
                ticket, reports, texts.incident_resolved(incident_label(ticket))
            )
        await self._hub.publish("ticket.updated", ticket, before=before)
        return ticket

    def _close_request(
        self, session: AsyncSession, ticket: Ticket, viewer: Viewer, note: str, now: datetime
    ) -> None:
        self._transition(session, ticket, "resolve", viewer, note, now)
        ticket.resolved_at = now
        ticket.resolution_note = note
        ticket.claim_deadline = None
        ticket.survey_deadline = now + self._timeouts.survey

    # ---------- incidents ----------

    async def merge(self, viewer: Viewer, ticket_id: int, into: int) -> Ticket:
        """By hand: this report is about the same thing as incident `into`."""
        async with self._sessions() as session, session.begin():
            ticket = await visible_ticket(session, viewer, ticket_id)
            incident = await visible_ticket(session, viewer, into)
            if incident.incident_id is not None or incident.id == ticket.id:
                raise IllegalTransition("merge", "part of another incident")
            if ticket.status not in OPEN_STATUSES or not may_act(viewer, incident):
                raise NotAllowed("only the incident's holder merges open reports into it")
            ticket.incident_id = incident.id
            ticket.assignee = incident.assignee
            ticket.claim_deadline = None
            self._event(session, ticket, "merge", None, None, viewer, f"并入工单#{incident.id}")
        await self._hub.publish("ticket.updated", ticket)
        return ticket

    async def split(self, viewer: Viewer, ticket_id: int) -> Ticket:
        """By hand: this report is something else after all; it keeps its holder."""
        async with self._sessions() as session, session.begin():
            ticket = await visible_ticket(session, viewer, ticket_id)
            if ticket.incident_id is None:
                raise IllegalTransition("split", "not part of an incident")
            if not may_act(viewer, ticket):
                raise NotAllowed("only the holder splits a report off")
            reason = f"从工单#{ticket.incident_id}分出"
            ticket.incident_id = None
            self._event(session, ticket, "split", None, None, viewer, reason)
        await self._hub.publish("ticket.updated", ticket)
        return ticket

    @staticmethod
    async def _reports_of(session: AsyncSession, ticket: Ticket) -> list[Ticket]:
        rows = await session.scalars(
            select(Ticket).where(Ticket.incident_id == ticket.id).order_by(Ticket.id)
        )
        return list(rows.all())

    async def _claim_reports(
        self, session: AsyncSession, ticket: Ticket, viewer: Viewer
    ) -> list[tuple[Ticket, Scope]]:
        """Claiming an incident claims the neighbours' reports that follow it."""
        followers = []
        for report in await self._reports_of(session, ticket):
            if report.status in UNCLAIMED:
                before = Scope.of(report)
                await self._claim(session, report, viewer)
                followers.append((report, before))
        return followers

    async def _after_incident_claim(
        self, ticket: Ticket, followers: list[tuple[Ticket, Scope]]
    ) -> None:
        for report, before in followers:
            await self._after_claim(report, before)
        if followers:
            label = incident_label(ticket)
            line = texts.incident_claimed(label, ticket.assignee.name)
            await self._tell_groups(ticket, [r for r, _ in followers], line)

    async def _tell_groups(self, ticket: Ticket, reports: list[Ticket], text: str) -> None:
        """One short line in each group where the incident was reported; no one's details."""
        groups: dict[tuple[str, str], ChatRef] = {}
        for report in (ticket, *reports):
            if report.chat_type == "group":
                groups.setdefault((report.channel, report.chat_id), chat_of(report))
        for chat in groups.values():
            await self._delivery.send(chat, text, ticket_id=ticket.id)

    # ---------- the resident answering after a resolve ----------

    async def follow_up(self, stored: StoredInbound) -> bool:
        """A rating of the resolved ticket, or word that it is not fixed; True when the
        message was one of those (and has been dealt with)."""
        now = self._clock.now()
        ticket = await self._latest_if_resolved(stored.chat.conversation_id)
        if ticket is None:
            return False
        text = stored.inbound.text
        rating = texts.read_rating(text)
        if ticket.status == Status.RESOLVED and rating is not None:
            await self._rate(ticket, rating, stored)
            return True
        if now - ticket.resolved_at <= self._timeouts.reopen and texts.says_not_fixed(text):
            await self._reopen(ticket, stored, to_secretary=False, reason="居民说还没好")
            return True
        return False

    async def _latest_if_resolved(self, conversation_id: str) -> Ticket | None:
        """The conversation's latest ticket if it has been resolved. Every message that no
        open ticket takes comes here, and most find none or an unresolved one: two columns
        tell, and only a resolved ticket is loaded with everything it brings along."""
        async with self._sessions() as session:
            latest = (
                await session.execute(
                    select(Ticket.id, Ticket.resolved_at)
                    .where(Ticket.conversation_id == conversation_id)
                    .order_by(Ticket.id.desc())
                    .limit(1)
                )
            ).first()
            if latest is None or latest.resolved_at is None:
                return None
            return await session.get(Ticket, latest.id)

    async def _rate(self, ticket: Ticket, rating: str, stored: StoredInbound) -> None:
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            ticket = await session.get(Ticket, ticket.id)
            self._transition(session, ticket, "rate", None, rating, now)
            ticket.rating = rating
            ticket.closed_at = now
            ticket.survey_deadline = None
            await mark_handled(session, stored.message_id, ticket.id)
        self._metrics.ratings.labels(rating).inc()
        if rating == "不满意":
            await self._reopen(ticket, None, to_secretary=True, reason="居民不满意")
        else:
            await self._tell_resident(ticket, texts.THANKS)
            await self._hub.publish("ticket.updated", ticket)

    async def _reopen(
        self, ticket: Ticket, stored: StoredInbound | None, *, to_secretary: bool, reason: str
    ) -> None:
        """Back to the member who had it (if on duty), or to the secretary when the resident
        was not satisfied; the conversation is the member's again."""
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            ticket = await session.get(Ticket, ticket.id)
            before = Scope.of(ticket)
            holder = ticket.assignee
            step = await self._reopen_step(session, ticket, holder, to_secretary, now)
            self._offer(session, ticket, step, "reopen", None, now, reason)
            ticket.resolved_at = None
            ticket.survey_deadline = None
            if stored is not None:
                await mark_handled(session, stored.message_id, ticket.id)
        member = step.member
        text = texts.sorry_reopened(member) if to_secretary else texts.looked_at_again(member)
        await self._tell_resident(ticket, text)
        await self._hub.publish("ticket.updated", ticket, before=before)
        if stored is not None:
            async with self._sessions() as session:
                message = await message_by_id(session, stored.message_id)
            await self._hub.publish("ticket.message", ticket, message)

    @staticmethod
    async def _reopen_step(
        session: AsyncSession,
        ticket: Ticket,
        holder: Member | None,
        to_secretary: bool,
        now: datetime,
    ) -> Assignment:
        if to_secretary:
            return await secretary(session, ticket.grid, now, "居民不满意")
        if holder is not None and on_duty(holder.schedule, holder.paused, now):
            return Assignment(ticket.grid, holder, f"{holder.name} · 在岗 · 原经办人")
        skip = [holder.id] if holder is not None else []
        return await choose_assignee(session, ticket.grid, ticket.category, now, exclude=skip)

    # ---------- timers ----------

    async def due_for_escalation(self) -> list[tuple[int, int]]:
        """Unclaimed tickets past their claim deadline, as (id, escalation level)."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Ticket.id, Ticket.escalation_level)
                .where(
                    Ticket.status.in_(UNCLAIMED),
                    Ticket.claim_deadline <= self._clock.now(),
                )
                .order_by(Ticket.claim_deadline)
            )
            return [(row[0], row[1]) for row in rows.all()]

    async def escalate(self, ticket_id: int, level: int) -> bool:
        """One step up the chain for a ticket nobody claimed in time. Several workers may
        try at once: only the one whose update finds the ticket unchanged goes on."""
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None or ticket.escalation_level != level:
                return False
            before, previous = Scope.of(ticket), ticket.assignee
            step = await next_step(session, ticket, ticket.grid, now)
            won = await session.execute(
                update(Ticket)
                .where(
                    Ticket.id == ticket_id,
                    Ticket.escalation_level == level,
                    Ticket.status.in_(UNCLAIMED),
                    Ticket.claim_deadline <= now,
                )
                .values(claim_deadline=None)
                .execution_options(synchronize_session=False)
            )
            if won.rowcount != 1:
                return False
            if step is None:
                ticket.claim_deadline = None
                self._event(
                    session, ticket, "waiting", None, None, None, "全支部都已通知，仍无人认领"
                )
                return False
            waited = int(self._timeouts.for_category(ticket.category).total_seconds() // 60) or 1
            self._offer(session, ticket, step, "escalate", None, now, f"{waited}分钟无人认领")
        logger.info("ticket %s escalated to level %s: %s", ticket_id, step.level, step.reason)
        self._metrics.escalations.labels(str(step.level)).inc()
        await self._tell_resident(ticket, texts.now_coming(previous, step))
        await self._hub.publish("ticket.updated", ticket, before=before)
        return True

    async def expire_surveys(self) -> int:
        """Resolved tickets whose resident did not rate them in time: closed, never nagged."""
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            tickets = (
                await session.scalars(
                    select(Ticket).where(
                        Ticket.status == Status.RESOLVED, Ticket.survey_deadline <= now
                    )
                )
            ).all()
            for ticket in tickets:
                self._transition(session, ticket, "expire", None, "24小时未评价", now)
                ticket.closed_at = now
                ticket.survey_deadline = None
        return len(tickets)

    # ---------- undelivered messages ----------

    async def report_undelivered(self, chat: ChatRef, message: ChatMessage, reason: str) -> None:
        """A message the platform would not carry: the holder must call or visit instead."""
        ticket = await self.latest_ticket_for(chat.conversation_id)
        if ticket is None:
            logger.warning("undelivered message %s belongs to no ticket", message.id)
            return
        resident = ticket.resident
        phone = ticket.contact_phone()
        name = resident.name or "居民"
        notice = (
            texts.CALL_INSTEAD.format(name=name, phone=phone)
            if phone
            else texts.VISIT_INSTEAD.format(name=name)
        )
        fields = {"message": console_message(message), "notice": notice, "phone": phone}
        await self._hub.tell_holder("message.undelivered", ticket, fields)

    # ---------- resident messages while a ticket is open ----------

    async def relay_from_resident(self, ticket_id: int, message_id: int) -> None:
        """A message from a resident whose ticket is open goes to its member, not the bot.
        A shared location becomes the ticket's address."""
        async with self._sessions() as session, session.begin():
            # Reads first: on SQLite the first write takes the database's write lock, which
            # everyone else then waits for until this commits. The console's event shows
            # the holder's name, not the grids they cover.
            ticket = await session.get(
                Ticket, ticket_id, options=[defaultload(Ticket.assignee).lazyload(Member.grids)]
            )
            message = await message_by_id(session, message_id)
            ticket.updated_at = self._clock.now()
            if message.kind == "location" and message.media and message.media.label:
                ticket.entities = {**(ticket.entities or {}), "address": message.media.label}
            await mark_handled(session, message_id, ticket_id)
        await self._hub.publish("ticket.message", ticket, message)

    async def remember_location(self, stored: StoredInbound) -> None:
        """A location shared with no request open: the next request from them is there."""
        media = stored.inbound.media
        async with self._sessions() as session, session.begin():
            resident = await session.get(Resident, stored.resident_id)
            if media is not None and resident is not None:
                resident.location = media.label or f"{media.latitude},{media.longitude}"
            await mark_handled(session, stored.message_id, None)

    # ---------- internals ----------

    async def _after_claim(self, ticket: Ticket, before: Scope) -> None:
        """Tell the resident when someone other than the person we named has taken over."""
        if before.assignee_id != ticket.assignee_id:
            await self._tell_resident(ticket, texts.coming("现在由", ticket.assignee.name))
        await self._hub.publish("ticket.updated", ticket, before=before)

    async def _tell_resident(self, ticket: Ticket, text: str) -> None:
        await self._delivery.send(
            chat_of(ticket), self._addressed(ticket, text), ticket_id=ticket.id
        )

    @staticmethod
    def _addressed(ticket: Ticket, text: str) -> str:
        return addressed(ticket.chat_type, ticket.resident.name, text)

    async def _claim(self, session: AsyncSession, ticket: Ticket, viewer: Viewer) -> None:
        target = next_status("claim", ticket.status)
        now = self._clock.now()
        # A conditional update, so two members claiming at once cannot both win.
        result = await session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id, Ticket.status == ticket.status)
            .values(
                status=target,
                assignee_id=viewer.member_id,
                updated_at=now,
                claim_deadline=None,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise IllegalTransition("claim", "claimed")
        self._event(session, ticket, "claim", ticket.status, target, viewer, "", now)
        await session.refresh(ticket)

    def _transition(
        self,
        session: AsyncSession,
        ticket: Ticket,
        kind: str,
        viewer: Viewer | None,
        reason: str,
        now: datetime,
    ) -> None:
        target = next_status(kind, ticket.status)
        self._event(session, ticket, kind, ticket.status, target, viewer, reason, now)
        ticket.status = target
        ticket.updated_at = now

    def _event(
        self,
        session: AsyncSession,
        ticket: Ticket,
        kind: str,
        from_status: Any,
        to_status: Any,
        viewer: Viewer | None,
        reason: str,
        now: datetime | None = None,
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
                created_at=now or self._clock.now(),
            )
        )


def _as_viewer(member: Member) -> Viewer:
    return Viewer(member.id, member.name, member.role, frozenset())
