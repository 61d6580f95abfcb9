"""What every channel hands downstream, and what it must offer for sending back.

Channels turn a platform message into one `Inbound`; nothing past them knows a platform format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
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


# What a resident sent. Voice carries the platform's own transcript as text when it made one;
# "subscribe" and "unsubscribe" are a resident following or leaving the account.
MessageKind = Literal["text", "voice", "image", "location", "subscribe", "unsubscribe"]
EVENT_KINDS = frozenset({"subscribe", "unsubscribe"})
# What the service writes: a plain line, or a question the resident answers with one of
# RATING_CHOICES (the webchat offers them as buttons; typed or spoken answers work as well).
LineKind = Literal["text", "rating"]
RATING_CHOICES = ("满意", "一般", "不满意")


@dataclass(frozen=True)
class Media:
    """A photo, voice clip or place; the platform keeps the bytes, we keep how to find them."""

    media_id: str = ""
    url: str = ""
    format: str = ""
    latitude: float | None = None
    longitude: float | None = None
    label: str = ""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", None)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Media | None:
        return cls(**data) if data else None


@dataclass(frozen=True)
class Inbound:
    chat: ChatRef
    # The platform's own message id; a retry repeats it.
    platform_msg_id: str
    user_name: str
    text: str
    kind: MessageKind = "text"
    media: Media | None = None
    # A one-off way to answer this very message (a WeCom robot's response_url).
    reply_handle: str | None = None

    @property
    def readable(self) -> bool:
        """Whether the model has words to read; a photo or an untranscribed voice has none."""
        return self.kind in ("text", "voice") and bool(self.text.strip())

    @property
    def blank(self) -> bool:
        """A text of only spaces or line breaks: nothing to read, and no media to look at."""
        return self.kind == "text" and not self.text.strip()


@dataclass(frozen=True)
class StoredInbound:
    """An inbound message once it is safely in the database."""

    message_id: int
    resident_id: int
    resident_name: str
    inbound: Inbound
    # Created by this very message: nothing of theirs (a ticket) can be in the database yet.
    new_resident: bool = False

    @property
    def chat(self) -> ChatRef:
        return self.inbound.chat


@dataclass(frozen=True)
class ChatMessage:
    """A stored message as a chat shows it."""

    id: int
    sender_kind: str
    sender_name: str
    # The resident whose conversation it is: who wrote an inbound line, whom an outbound one
    # is for.
    user_id: str | None
    text: str
    created_at: datetime
    kind: str = "text"
    media: Media | None = None
    # Outbound only: pending, sent, failed (retries used up) or undeliverable (the platform
    # refuses this route, e.g. WeChat's 48-hour window is closed).
    delivery: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sender_kind": self.sender_kind,
            "sender_name": self.sender_name,
            "user_id": self.user_id,
            "text": self.text,
            "kind": self.kind,
            "media": self.media.to_json() if self.media else None,
            "delivery": self.delivery,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChatMessage:
        fields = {**data, "created_at": datetime.fromisoformat(data["created_at"])}
        return cls(**{**fields, "media": Media.from_json(data.get("media"))})


class Undeliverable(Exception):
    """The platform will not carry this message by this route; retrying cannot help."""


class DeliveryFailed(Exception):
    """The platform could not be reached or kept failing; the message may be retried later."""


class ChannelSender(Protocol):
    """Delivers a stored message to the chat it belongs to.

    Raises `Undeliverable` or `DeliveryFailed`; returning means the platform accepted it.
    """

    async def deliver(self, chat: ChatRef, message: ChatMessage) -> None: ...


@dataclass(frozen=True)
class Intake:
    """What a channel hands inbound messages to. `store` persists (the channel acknowledges
    only after it returns; None for a platform retry already stored), `route_later` decides
    what the message is for once the channel has answered."""

    store: Callable[[Inbound], Awaitable[StoredInbound | None]]
    route_later: Callable[[StoredInbound], None]

    async def accept(self, inbound: Inbound) -> StoredInbound | None:
        stored = await self.store(inbound)
        if stored is not None:
            self.route_later(stored)
        return stored
