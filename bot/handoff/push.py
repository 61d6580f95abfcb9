"""Live ticket events, and messages that may be requests, to party members' consoles over
websockets."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from bot.core.chat import ChatMessage
from bot.core.sockets import SocketRegistry
from bot.db.models import Ticket
from bot.db.nlu_models import PossibleRequest
from bot.handoff.access import Actor, Visibility, covers, may_see
from bot.handoff.payloads import console_message, possible_payload, ticket_payload


class MemberHub(SocketRegistry[Actor]):
    async def publish(
        self,
        kind: str,
        ticket: Ticket,
        message: ChatMessage | None = None,
        before: Visibility | None = None,
    ) -> None:
        """Send to every console whose member may see the ticket, or could see it `before` a
        change (so a colleague's screen learns the ticket was claimed and leaves it)."""
        event: dict[str, Any] = {"type": kind, "ticket": ticket_payload(ticket)}
        if message is not None:
            event["message"] = console_message(message)
        audience = [
            v
            for v in self.keys()
            if may_see(v, ticket) or (before is not None and may_see(v, before))
        ]
        await self.send(audience, event)

    async def tell_holder(self, kind: str, ticket: Ticket, fields: dict[str, Any]) -> None:
        """Something only the person answering for the ticket needs (e.g. a phone to call);
        with nobody holding it yet, everyone who may see it."""
        event: dict[str, Any] = {"type": kind, "ticket": ticket_payload(ticket), **fields}
        audience = [
            v
            for v in self.keys()
            if v.member_id == ticket.assignee_id
            or (ticket.assignee_id is None and may_see(v, ticket))
        ]
        await self.send(audience, event)

    async def ask(self, possible: PossibleRequest, member_ids: Collection[int]) -> None:
        """A message that may be a request, to the members asked to decide on it."""
        event = {"type": "possible_request.created", "possible_request": possible_payload(possible)}
        await self.send([v for v in self.keys() if v.member_id in member_ids], event)

    async def decided(self, possible: PossibleRequest) -> None:
        """Someone decided: every console that could show the card learns it is done."""
        event = {"type": "possible_request.decided", "possible_request": possible_payload(possible)}
        await self.send([v for v in self.keys() if covers(v, possible)], event)
