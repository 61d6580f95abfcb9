"""What every channel hands downstream, and what it must offer for sending back.

Channels turn a platform message into one `Inbound`; nothing past them knows a platform format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

ChatType = Literal["private", "group"]


@dataclass(frozen=True)
class ChatRef:
    """Where a conversation happens: a resident's private chat, or a resident inside a group."""

    channel: str
    chat_type: ChatType
    # The group's id, or the resident's own id for a private chat.
    chat_id: str
    user_id: str

    @property
    def conversation_id(self) -> str:
        """The Rasa sender id: one conversation per resident per chat."""
        if self.chat_type == "private":
            return f"{self.channel}:{self.user_id}"
        return f"{self.channel}:{self.chat_id}:{self.user_id}"


@dataclass(frozen=True)
class Inbound:
    chat: ChatRef
    # The platform's own message id; a retry repeats it.
    platform_msg_id: str
    user_name: str
    text: str


@dataclass(frozen=True)
class ChatMessage:
    """A stored message as a chat shows it."""

    id: int
    sender_kind: str
    sender_name: str
    user_id: str | None
    text: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sender_kind": self.sender_kind,
            "sender_name": self.sender_name,
            "user_id": self.user_id,
            "text": self.text,
            "created_at": self.created_at.isoformat(),
        }


class ChannelSender(Protocol):
    """Delivers a stored message to the chat it belongs to."""

    async def deliver(self, chat: ChatRef, message: ChatMessage) -> None: ...
