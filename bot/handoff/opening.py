"""Opening a ticket: for a request the model read (through `action_handoff`), for a message a
member confirmed was a request, or for a photo or voice clip nobody can read. A new ticket
joins a neighbour's incident about the same thing, goes to the whole on-duty audience when
urgent (to the grid's members first when the model is unsure it is), or to one named member.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversation.messages import resident_in
from bot.core.categories import UNCLASSIFIED, URGENT, category_for_intent
from bot.core.chat import StoredInbound
from bot.core.handoff import HandoffRequest, HandoffResult, Origin
from bot.db.models import Resident, Ticket
from bot.db.nlu_models import Classification
from bot.handoff import texts
from bot.handoff.access import Actor
from bot.handoff.dispatcher import (
    Place,
    choose_assignee,
    find_place,
    unsure_urgent_audience,
    urgent_audience,
)
from bot.handoff.incidents import find_incident
from bot.handoff.ledger import Change, Ledger, TicketNotFound, addressed
from bot.handoff.states import Status

logger = logging.getLogger(__name__)

_NEW_READING = insert(Classification.__table__)


@dataclass(frozen=True)
class Routed:
    """Why the new ticket went where it did (the event's reason), and what the resident
    is told."""

    reason: str
    reply: str
    # Members asked first whether a request is urgent (可能紧急).
    asked: tuple[int, ...] = ()


async def resident_of(session: AsyncSession, origin: Origin) -> Resident:
    if origin.resident_id is None:
        return await resident_in(session, origin.chat)
    resident = await session.get(Resident, origin.resident_id)
    if resident is None:
        raise TicketNotFound(f"no resident {origin.resident_id}")
    return resident


async def _store_reading(session: AsyncSession, request: HandoffRequest, ticket_id: int) -> None:
    """How the model read the message, for the review queue, stored with the ticket it opened:
    the router then has nothing left to write for the turn."""
    reading = Classification.reading(
        request.text,
        request.intent,
        request.confidence,
        request.model,
        message_id=request.origin.message_id,
        ticket_id=ticket_id,
    )
    await session.execute(_NEW_READING, reading)


class Opening:
    def __init__(self, ledger: Ledger, possibly_urgent_below: float) -> None:
        self._ledger = ledger
        # An urgent reading less confident than this is only 可能紧急 (docs/nlu.md).
        self._possibly_urgent_below = possibly_urgent_below

    async def open_ticket(
        self, request: HandoffRequest, confirmed_by: Actor | None = None
    ) -> HandoffResult:
        """`confirmed_by`: the member who said a message the model read as chatter is a
        request (`bot.handoff.possible`)."""
        chat = request.origin.chat
        async with self._ledger.change() as change:
            session = change.session
            resident = await resident_of(session, request.origin)
            entities = dict(request.entities)
            if "address" not in entities and resident.location:
                entities["address"] = resident.location
            place = await find_place(session, resident, chat, entities.get("address"), request.text)
            grid = place.grid
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
                community=place.community,
                grid=grid,
                created_at=change.now,
                updated_at=change.now,
                tried_member_ids=[],
            )
            change.record(ticket, "created", None, "居民求助", None, Status.NEW)
            if confirmed_by is not None:
                change.record(ticket, "confirmed", confirmed_by, "模型当成了闲聊")
            # Routed before it is stored: inserted as routed, it needs no update after.
            routed = await self._route(change, ticket, unsure=self._unsure(request, confirmed_by))
            session.add(ticket)
            await session.flush()
            if request.origin.message_id is not None:
                # The message shows in the ticket; a confirmed one was handled long ago.
                await change.attach(request.origin.message_id, ticket.id)
            if request.model:
                await _store_reading(session, request, ticket.id)
            change.count("tickets_opened", ticket.category)
            change.push("ticket.created", ticket)
            if routed.asked:
                # Their consoles ring; the others (the secretary) only list it.
                change.push("ticket.alarm", ticket, members=routed.asked)
            change.opened(ticket)
            reply = addressed(chat.chat_type, resident.name, routed.reply)
            # Handed on by the router once routing is done, outside its one-at-a-time slot: a
            # platform's send API may take seconds.
            change.tell_chat(chat, reply, ticket.id, resident.id, by_caller=True)
        logger.info(
            "ticket %s opened: %s (%.2f) -> %s",
            ticket.id,
            ticket.category,
            ticket.confidence,
            routed.reason,
        )
        [line] = change.lines_for_caller()
        return HandoffResult(ticket_id=ticket.id, reply=reply, line=line.to_json())

    async def open_for_media(self, stored: StoredInbound, origin: Origin) -> HandoffResult:
        """A photo or a voice clip nobody transcribed: a person looks at it, as 未分类."""
        inbound = stored.inbound
        label = texts.PHOTO if inbound.kind == "image" else texts.VOICE
        request = HandoffRequest(
            conversation_id=stored.chat.conversation_id,
            intent=UNCLASSIFIED,
            confidence=0.0,
            text=f"{label} {inbound.text}".strip(),
            origin=origin,
        )
        return await self.open_ticket(request)

    def _unsure(self, request: HandoffRequest, confirmed_by: Actor | None) -> bool:
        """Read as urgent by the model alone, and not surely; a member who confirmed the
        message is a request has looked at it already."""
        return (
            confirmed_by is None
            and category_for_intent(request.intent) == URGENT
            and request.confidence < self._possibly_urgent_below
        )

    async def _route(self, change: Change, ticket: Ticket, unsure: bool) -> Routed:
        session, grid, place = change.session, ticket.grid, Place.of(ticket)
        # A group reads the answer too: it says which problem it answers.
        about = (
            texts.problem_of(ticket.category, ticket.text) if ticket.chat_type == "group" else ""
        )
        since = change.now - change.timeouts.incident
        repeated = await find_incident(
            session, grid, ticket.category, ticket.text, ticket.resident.id, since
        )
        if repeated is not None:
            return self._join(change, ticket, *repeated, about)
        if ticket.category == URGENT:
            audience = unsure_urgent_audience if unsure else urgent_audience
            assignment = await audience(session, place, change.now)
            change.offer(ticket, assignment, "assign", None)
            asked = tuple(m.id for m in assignment.notified) if unsure else ()
            return Routed(
                assignment.reason, texts.urgent_coming(assignment, ticket.text, about), asked
            )
        assignment = await choose_assignee(session, place, ticket.category, change.now)
        change.offer(ticket, assignment, "assign", None)
        return Routed(assignment.reason, texts.who_is_coming(assignment, about))

    @staticmethod
    def _join(change: Change, ticket: Ticket, incident: Ticket, word: str, about: str) -> Routed:
        """Link a report to the incident a neighbour opened: same holder, no timer of its
        own (it follows the incident)."""
        ticket.incident_id = incident.id
        if not (incident.entities or {}).get("incident"):
            incident.entities = {**(incident.entities or {}), "incident": word}
        ticket.assignee = incident.assignee
        reason = f"并入工单#{incident.id}（{word}）"
        change.transition(ticket, "assign", None, reason)
        claimed = incident.status == Status.CLAIMED and incident.assignee is not None
        if claimed:
            # The incident's holder holds its reports; the service claims on their behalf.
            change.transition(ticket, "claim", incident.assignee, reason)
        return Routed(reason, texts.joined_incident(incident.assignee, claimed, about))
