"""Live ticket events to party members' consoles over websockets."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from aiohttp import web

from bot.channels.base import ChatMessage
from bot.db.models import Ticket
from bot.handoff.access import Viewer, may_see
from bot.handoff.payloads import ticket_payload

logger = logging.getLogger(__name__)


class MemberHub:
    def __init__(self) -> None:
        self._sockets: dict[Viewer, set[web.WebSocketResponse]] = defaultdict(set)

    def add(self, viewer: Viewer, ws: web.WebSocketResponse) -> None:
        self._sockets[viewer].add(ws)

    def remove(self, viewer: Viewer, ws: web.WebSocketResponse) -> None:
        sockets = self._sockets.get(viewer)
        if sockets is not None:
            sockets.discard(ws)
            if not sockets:
                del self._sockets[viewer]

    async def publish(self, kind: str, ticket: Ticket, message: ChatMessage | None = None) -> None:
        event: dict[str, Any] = {"type": kind, "ticket": ticket_payload(ticket)}
        if message is not None:
            event["message"] = message.to_json()
        targets = [
            ws
            for viewer, sockets in list(self._sockets.items())
            if may_see(viewer, ticket)
            for ws in list(sockets)
        ]
        await asyncio.gather(*(self._send(ws, event) for ws in targets))

    @staticmethod
    async def _send(ws: web.WebSocketResponse, event: dict[str, Any]) -> None:
        try:
            await ws.send_json(event)
        except (ConnectionResetError, RuntimeError):
            logger.info("console socket went away during send")

    async def close_all(self) -> None:
        sockets = [ws for group in self._sockets.values() for ws in group]
        await asyncio.gather(*(ws.close(code=1001) for ws in sockets))
        self._sockets.clear()
