"""Open webchat sockets by chat, and delivery of stored messages to them."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from aiohttp import web

from bot.channels.base import ChatMessage, ChatRef

logger = logging.getLogger(__name__)

CHANNEL = "webchat"


def _key(chat: ChatRef) -> tuple[str, str]:
    return (chat.chat_type, chat.chat_id)


class WebchatSockets:
    """Every socket of a private chat, and every member's socket of a group room."""

    def __init__(self) -> None:
        self._by_chat: dict[tuple[str, str], set[web.WebSocketResponse]] = defaultdict(set)

    def add(self, chat: ChatRef, ws: web.WebSocketResponse) -> None:
        self._by_chat[_key(chat)].add(ws)

    def remove(self, chat: ChatRef, ws: web.WebSocketResponse) -> None:
        sockets = self._by_chat.get(_key(chat))
        if sockets is not None:
            sockets.discard(ws)
            if not sockets:
                del self._by_chat[_key(chat)]

    async def deliver(self, chat: ChatRef, message: ChatMessage) -> None:
        frame: dict[str, Any] = {"type": "message", "message": message.to_json()}
        sockets = list(self._by_chat.get(_key(chat), ()))
        await asyncio.gather(*(self._send(ws, frame) for ws in sockets))

    @staticmethod
    async def _send(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        try:
            await ws.send_json(frame)
        except (ConnectionResetError, RuntimeError):
            logger.info("webchat socket went away during send")

    async def close_all(self) -> None:
        sockets = [ws for group in self._by_chat.values() for ws in group]
        await asyncio.gather(*(ws.close(code=1001) for ws in sockets))
        self._by_chat.clear()
