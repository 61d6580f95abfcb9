"""Open webchat sockets by chat, and delivery of stored messages to them."""

from __future__ import annotations

from bot.channels.base import ChatMessage, ChatRef
from bot.web.sockets import SocketRegistry

CHANNEL = "webchat"


def chat_key(chat: ChatRef) -> tuple[str, str]:
    """Every socket of a private chat, or every neighbour's socket in a group room."""
    return (chat.chat_type, chat.chat_id)


class WebchatSockets(SocketRegistry[tuple[str, str]]):
    async def deliver(self, chat: ChatRef, message: ChatMessage) -> None:
        await self.send([chat_key(chat)], {"type": "message", "message": message.to_json()})
