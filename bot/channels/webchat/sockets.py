"""Open webchat sockets by chat, and what each resident's screen is shown.

A resident sees whether a line is their own, never another resident's id; in a neighbours'
room phone and ID numbers are masked; lines of the bot and of party members are marked
verified (their names are reserved, `identity.name_is_reserved`). A rating question carries its
answers as `choices`, for the resident it is put to only.

A line goes out on the bus: the resident's page may be connected to another worker."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from aiohttp import web

from bot.cluster.bus import Bus
from bot.core.chat import RATING_CHOICES, ChatMessage, ChatRef
from bot.core.sockets import SocketRegistry
from bot.privacy import mask_text

CHANNEL = "webchat"
TOPIC = "webchat"
VERIFIED_SENDERS = frozenset({"bot", "member"})


def chat_key(chat: ChatRef) -> tuple[str, str]:
    """Every socket of a private chat, or every neighbour's socket in a group room."""
    return (chat.chat_type, chat.chat_id)


def resident_view(
    message: ChatMessage, viewer: ChatRef, survey_open: bool = True
) -> dict[str, Any]:
    """`survey_open`: whether the viewer is still asked to rate (a history's old question,
    answered or expired, loses its buttons; a question just sent has them)."""
    shown = message.to_json()
    del shown["user_id"]
    viewers_own = message.user_id == viewer.user_id
    shown["own"] = message.sender_kind == "resident" and viewers_own
    shown["verified"] = message.sender_kind in VERIFIED_SENDERS
    asks_viewer = message.kind == "rating" and viewers_own and survey_open
    shown["choices"] = list(RATING_CHOICES) if asks_viewer else []
    if viewer.chat_type == "group":
        shown["text"] = mask_text(message.text)
    return shown


class WebchatSockets(SocketRegistry[tuple[str, str]]):
    def __init__(self, bus: Bus | None = None) -> None:
        super().__init__()
        self._viewers: dict[web.WebSocketResponse, ChatRef] = {}
        self._bus = bus
        if bus is not None:
            bus.subscribe(TOPIC, self._on_bus)

    def join(self, chat: ChatRef, ws: web.WebSocketResponse) -> None:
        self.add(chat_key(chat), ws)
        self._viewers[ws] = chat

    def leave(self, chat: ChatRef, ws: web.WebSocketResponse) -> None:
        self.remove(chat_key(chat), ws)
        self._viewers.pop(ws, None)

    async def deliver(self, chat: ChatRef, message: ChatMessage) -> None:
        if self._bus is None:
            await self._show_here(chat, message)
        else:
            await self._bus.publish(TOPIC, {"chat": asdict(chat), "message": message.to_json()})

    async def _on_bus(self, payload: dict[str, Any]) -> None:
        await self._show_here(ChatRef(**payload["chat"]), ChatMessage.from_json(payload["message"]))

    async def _show_here(self, chat: ChatRef, message: ChatMessage) -> None:
        await asyncio.gather(
            *(
                self._send(ws, {"type": "message", "message": resident_view(message, viewer)})
                for ws in self.sockets([chat_key(chat)])
                if (viewer := self._viewers.get(ws)) is not None
            )
        )
