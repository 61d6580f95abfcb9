"""Live ticket events to party members' consoles over websockets."""

from __future__ import annotations

from typing import Any

from bot.channels.base import ChatMessage
from bot.db.models import Ticket
from bot.handoff.access import Scope, Viewer, may_see
from bot.handoff.payloads import console_message, ticket_payload
from bot.web.sockets import SocketRegistry


class MemberHub(SocketRegistry[Viewer]):
    async def publish(
        self,
        kind: str,
        ticket: Ticket,
        message: ChatMessage | None = None,
        before: Scope | None = None,
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
