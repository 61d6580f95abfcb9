"""Live ticket events, and messages that may be requests, to party members' consoles over
websockets.

Each event names its audience as plain data (`Audience`), not as a list of sockets: it goes out
on the bus, and every worker hands it to the consoles connected to it that the audience
includes. So a member connected to one worker sees what another worker changed. Each event
is numbered in the journal first (`bot.handoff.journal`), so a console that reconnects is sent
what it missed after the last id it saw, whichever worker it reconnects to.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cluster.bus import Bus
from bot.core.chat import ChatMessage
from bot.core.sockets import SocketRegistry
from bot.db.models import Ticket
from bot.db.nlu_models import PossibleRequest
from bot.handoff.access import Actor, Visibility, covers, may_see
from bot.handoff.journal import Journal
from bot.handoff.payloads import console_message, possible_payload, ticket_payload

logger = logging.getLogger(__name__)

TOPIC = "members"


@dataclass(frozen=True)
class Audience:
    """Who is meant: members who may see a ticket as it is (or was), its holder (everyone who
    may see it while nobody holds it), members by id, or everyone covering a community's
    grid."""

    visible: tuple[Visibility, ...] = ()
    holder_only: bool = False
    holder_id: int | None = None
    member_ids: tuple[int, ...] = ()
    grid_id: int | None = None
    community_id: int = 0
    by_grid: bool = False

    def includes(self, actor: Actor) -> bool:
        if self.by_grid:
            return covers(actor, self)
        if self.member_ids:
            return actor.member_id in self.member_ids
        if self.holder_only and self.holder_id is not None:
            return actor.member_id == self.holder_id
        return any(may_see(actor, v) for v in self.visible)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Audience:
        visible = tuple(Visibility(**v) for v in data["visible"])
        return cls(**{**data, "visible": visible, "member_ids": tuple(data["member_ids"])})


@dataclass(frozen=True)
class Numbered:
    """A console event with its journal id, and who it is for."""

    event: dict[str, Any]
    audience: Audience


def _ticket_event(
    kind: str,
    ticket: Ticket,
    message: ChatMessage | None,
    before: Visibility | None,
    members: Collection[int],
) -> tuple[dict[str, Any], Audience]:
    event: dict[str, Any] = {"type": kind, "ticket": ticket_payload(ticket)}
    if message is not None:
        event["message"] = console_message(message)
    if members:
        return event, Audience(member_ids=tuple(sorted(members)))
    visible = (Visibility.of(ticket),) + ((before,) if before is not None else ())
    return event, Audience(visible=visible)


class MemberHub(SocketRegistry[Actor]):
    def __init__(self, bus: Bus | None = None, journal: Journal | None = None) -> None:
        super().__init__()
        self._bus = bus
        self._journal = journal
        if bus is not None:
            bus.subscribe(TOPIC, self._on_bus)

    async def missed(self, actor: Actor, last_id: int) -> list[dict[str, Any]]:
        """What `actor`'s console was sent after event `last_id` (while it was away)."""
        if self._journal is None:
            return []
        entries = await self._journal.since(last_id)
        return [
            {**entry.event, "id": entry.id}
            for entry in entries
            if Audience.from_json(entry.audience).includes(actor)
        ]

    async def latest(self) -> int:
        """The newest event's id: a console counts from here."""
        return await self._journal.latest() if self._journal is not None else 0

    async def publish(
        self,
        kind: str,
        ticket: Ticket,
        message: ChatMessage | None = None,
        before: Visibility | None = None,
        members: Collection[int] = (),
    ) -> None:
        """Send to every console whose member may see the ticket, or could see it `before` a
        change (so a colleague's screen learns the ticket was claimed and leaves it); or only
        to `members` (those asked first whether a request is urgent)."""
        event, audience = _ticket_event(kind, ticket, message, before, members)
        await self._fan_out(event, audience, ticket.resident_id)

    async def journal_in(
        self,
        session: AsyncSession,
        kind: str,
        ticket: Ticket,
        message: ChatMessage | None = None,
        before: Visibility | None = None,
        members: Collection[int] = (),
    ) -> Numbered:
        """`publish`'s event, numbered in the journal in a ticket change's own transaction;
        `send_numbered` sends it once the change is committed."""
        event, audience = _ticket_event(kind, ticket, message, before, members)
        if self._journal is not None:
            event_id = await self._journal.append_in(
                session, event, audience.to_json(), ticket.resident_id
            )
            event = {**event, "id": event_id}
        return Numbered(event, audience)

    async def send_numbered(self, numbered: Numbered) -> None:
        await self._spread(numbered.event, numbered.audience)

    async def tell_holder(self, kind: str, ticket: Ticket, fields: dict[str, Any]) -> None:
        """Something only the person answering for the ticket needs (e.g. a phone to call);
        with nobody holding it yet, everyone who may see it."""
        event: dict[str, Any] = {"type": kind, "ticket": ticket_payload(ticket), **fields}
        audience = Audience(
            visible=(Visibility.of(ticket),), holder_only=True, holder_id=ticket.assignee_id
        )
        await self._fan_out(event, audience, ticket.resident_id)

    async def ask(self, possible: PossibleRequest, member_ids: Collection[int]) -> None:
        """A message that may be a request, to the members asked to decide on it."""
        if not member_ids:
            return
        event = {"type": "possible_request.created", "possible_request": possible_payload(possible)}
        audience = Audience(member_ids=tuple(sorted(member_ids)))
        await self._fan_out(event, audience, possible.resident_id)

    async def decided(self, possible: PossibleRequest) -> None:
        """Someone decided: every console that could show the card learns it is done."""
        event = {"type": "possible_request.decided", "possible_request": possible_payload(possible)}
        await self._fan_out(
            event,
            Audience(grid_id=possible.grid_id, community_id=possible.community_id, by_grid=True),
            possible.resident_id,
        )

    async def _fan_out(
        self, event: dict[str, Any], audience: Audience, resident_id: int | None
    ) -> None:
        """`resident_id`: whose words the event carries (the journal keeps them a while)."""
        await self._spread(await self._numbered(event, audience, resident_id), audience)

    async def _spread(self, event: dict[str, Any], audience: Audience) -> None:
        """To the consoles here the audience includes, and through the bus to every other
        worker's."""
        if self._bus is None:
            await self._send_here(event, audience)
        else:
            await self._bus.publish(TOPIC, {"event": event, "audience": audience.to_json()})

    async def _numbered(
        self, event: dict[str, Any], audience: Audience, resident_id: int | None
    ) -> dict[str, Any]:
        """The event with its journal id; without one when the journal cannot be written (it
        still goes out live, only a reconnecting console cannot get it again)."""
        if self._journal is None:
            return event
        try:
            event_id = await self._journal.append(event, audience.to_json(), resident_id)
            return {**event, "id": event_id}
        except (SQLAlchemyError, OSError):
            logger.warning("console event %s not journaled; sent live only", event["type"])
            return event

    async def _on_bus(self, payload: dict[str, Any]) -> None:
        await self._send_here(payload["event"], Audience.from_json(payload["audience"]))

    async def _send_here(self, event: dict[str, Any], audience: Audience) -> None:
        await self.send([actor for actor in self.keys() if audience.includes(actor)], event)
