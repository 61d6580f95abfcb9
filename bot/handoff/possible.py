"""Possible requests: messages the model read as chatter although something in them sounds
like a request ("小区停水7天了"). The bot says what it says to chatter (nothing in a group);
the grid's members on duty see the message and decide with one tap, so none is lost unseen.

    open ─confirm→ confirmed   a ticket opens as for any request; the resident hears who comes
    open ─dismiss→ dismissed   the message goes to the operators' review queue as chatter

Every decision goes through `_decide`, which consults `DECISIONS`, records who decided and
when, and writes an audit line; a confirmation is also an event of the ticket it opens.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.conversation.delivery import Delivery
from bot.conversation.engine import Turn
from bot.core.categories import CHITCHAT
from bot.core.chat import StoredInbound
from bot.core.clock import Clock
from bot.core.handoff import HandoffRequest, HandoffResult, Origin
from bot.db.models import Message, Resident
from bot.db.nlu_models import Classification, PossibleRequest
from bot.handoff.access import Actor, covered_by, covers
from bot.handoff.dispatcher import Place, find_place, on_duty_for
from bot.handoff.ledger import NotAllowed
from bot.handoff.opening import Opening
from bot.handoff.push import MemberHub
from bot.handoff.residents import open_ticket_id
from bot.privacy import mask_text

logger = logging.getLogger(__name__)


class PossibleStatus(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


# decision -> (status it may leave, status it enters)
DECISIONS: dict[str, tuple[PossibleStatus, PossibleStatus]] = {
    "confirm": (PossibleStatus.OPEN, PossibleStatus.CONFIRMED),
    "dismiss": (PossibleStatus.OPEN, PossibleStatus.DISMISSED),
}


class UnknownPossibleRequest(Exception):
    pass


class AlreadyDecided(Exception):
    pass


class PossibleRequests:
    def __init__(
        self,
        sessions: sessionmaker,
        opening: Opening,
        delivery: Delivery,
        hub: MemberHub,
        clock: Clock,
        threshold: float,
    ) -> None:
        self._sessions = sessions
        self._opening = opening
        self._delivery = delivery
        self._hub = hub
        self._clock = clock
        self._threshold = threshold

    def worth_asking(self, turn: Turn) -> bool:
        """Read as chatter, yet the model half-heard a request in it."""
        return (
            turn.intent == CHITCHAT
            and turn.request_intent is not None
            and turn.request_confidence >= self._threshold
        )

    async def record(
        self,
        session: AsyncSession,
        stored: StoredInbound,
        classification: Classification,
        turn: Turn,
    ) -> PossibleRequest:
        """Keep the message for a member to decide on, in the grid a request from it would go to."""
        chat, text = stored.chat, stored.inbound.text
        resident = await session.get(Resident, stored.resident_id)
        address = turn.entities.get("address") or resident.location
        place = await find_place(session, resident, chat, address, text)
        possible = PossibleRequest(
            message_id=stored.message_id,
            classification=classification,
            conversation_id=chat.conversation_id,
            resident=resident,
            community=place.community,
            grid=place.grid,
            channel=chat.channel,
            chat_type=chat.chat_type,
            chat_id=chat.chat_id,
            text=mask_text(text),
            intent=turn.request_intent,
            confidence=turn.request_confidence,
            entities=turn.entities,
            status=PossibleStatus.OPEN,
            created_at=self._clock.now(),
        )
        session.add(possible)
        await session.flush()
        return possible

    async def announce(self, possible: PossibleRequest) -> None:
        async with self._sessions() as session:
            members = await on_duty_for(session, Place.of(possible), self._clock.now())
        logger.info(
            "possible request %s (%s %.2f) shown to %d member(s)",
            possible.id,
            possible.intent,
            possible.confidence,
            len(members),
        )
        await self._hub.ask(possible, {m.id for m in members})

    async def open_for(self, actor: Actor) -> list[PossibleRequest]:
        """Undecided ones in the grids the actor covers (in their community), newest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(PossibleRequest)
                .where(
                    PossibleRequest.status == PossibleStatus.OPEN,
                    covered_by(actor, PossibleRequest.grid_id, PossibleRequest.community_id),
                )
                .order_by(PossibleRequest.id.desc())
                .limit(200)
            )
            return list(rows.all())

    async def confirm(self, actor: Actor, possible_id: int) -> PossibleRequest:
        """It is a request: a ticket opens exactly as if the model had read it as one, unless
        the resident has one open by now (then the message belongs to that one)."""
        async with self._sessions() as session, session.begin():
            possible = await self._decide(session, actor, possible_id, "confirm")
            message = await session.get(Message, possible.message_id)
            request = self._handoff_request(possible, message.text or possible.text)
            already_open = await open_ticket_id(session, possible.conversation_id)
        if already_open is None:
            opened = await self._open(actor, possible_id, request)
        async with self._sessions() as session, session.begin():
            possible = await session.get(PossibleRequest, possible_id)
            possible.ticket_id = already_open or opened.ticket_id
            # The model read a request as chatter: a lesson for the next training.
            possible.classification.correct(possible.intent, actor.member_id)
            possible.classification.ticket_id = possible.ticket_id
        if already_open is None and (line := opened.stored_line()) is not None:
            await self._delivery.send_stored(possible.chat, line)
        await self._hub.decided(possible)
        return possible

    async def _open(self, actor: Actor, possible_id: int, request: HandoffRequest) -> HandoffResult:
        """Open the ticket; if that fails, the possible request is open again for anyone to
        decide, never confirmed with no ticket."""
        try:
            return await self._opening.open_ticket(request, confirmed_by=actor)
        except Exception:
            async with self._sessions() as session, session.begin():
                await session.execute(
                    update(PossibleRequest)
                    .where(PossibleRequest.id == possible_id)
                    .values(status=PossibleStatus.OPEN, decided_by=None, decided_at=None)
                )
            raise

    async def dismiss(self, actor: Actor, possible_id: int) -> PossibleRequest:
        """Only chatter: the operators get it as a chatter example, the resident hears nothing."""
        async with self._sessions() as session, session.begin():
            possible = await self._decide(session, actor, possible_id, "dismiss")
            possible.classification.correct(CHITCHAT, actor.member_id)
        await self._hub.decided(possible)
        return possible

    async def _decide(
        self, session: AsyncSession, actor: Actor, possible_id: int, decision: str
    ) -> PossibleRequest:
        possible = await session.get(PossibleRequest, possible_id)
        if possible is None:
            raise UnknownPossibleRequest(f"no possible request {possible_id}")
        if not covers(actor, possible):
            raise NotAllowed(
                f"possible request {possible_id} is outside member {actor.member_id}'s grids"
            )
        source, target = DECISIONS[decision]
        # Conditional, so that two members tapping at once cannot both decide.
        won = await session.execute(
            update(PossibleRequest)
            .where(PossibleRequest.id == possible_id, PossibleRequest.status == source)
            .values(status=target, decided_by=actor.member_id, decided_at=self._clock.now())
            .execution_options(synchronize_session=False)
        )
        if won.rowcount != 1:
            raise AlreadyDecided(f"possible request {possible_id} was decided already")
        await session.refresh(possible)
        logger.info(
            "possible request %s %s by member %s (%s)",
            possible_id,
            target,
            actor.member_id,
            actor.name,
        )
        return possible

    @staticmethod
    def _handoff_request(possible: PossibleRequest, text: str) -> HandoffRequest:
        return HandoffRequest(
            conversation_id=possible.conversation_id,
            intent=possible.intent,
            confidence=possible.confidence,
            text=text,
            origin=Origin(
                possible.chat,
                resident_id=possible.resident_id,
                resident_name=possible.resident.name,
                message_id=possible.message_id,
            ),
            entities=dict(possible.entities or {}),
        )
