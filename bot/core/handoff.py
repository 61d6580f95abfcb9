"""The handoff contract: what an action asks of the ticket side, and what it gets back.

Actions import it (in-process and under `rasa run actions`), the ticket service implements it.
Where a message came from travels through Rasa's metadata as a plain dict; `Origin` is the one
place that writes and reads that dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core.chat import ChatMessage, ChatRef

# Rasa's name for "no intent is confident enough".
FALLBACK_INTENT = "nlu_fallback"
# The entities a request carries to its ticket, the first value of each.
ENTITY_NAMES = ("address", "phone", "time")
# Rasa's message metadata key naming the model archive that read the message.
MODEL_KEY = "model"


@dataclass(frozen=True)
class Origin:
    """The chat a message came from, and the stored message and resident behind it."""

    chat: ChatRef
    resident_id: int | None = None
    resident_name: str = ""
    message_id: int | None = None

    def to_metadata(self) -> dict[str, Any]:
        return {
            "channel": self.chat.channel,
            "chat_type": self.chat.chat_type,
            "chat_id": self.chat.chat_id,
            "user_id": self.chat.user_id,
            "resident_id": self.resident_id,
            "resident_name": self.resident_name,
            "message_id": self.message_id,
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], conversation_id: str) -> Origin:
        """Our channels fill every field; a bare Rasa client (`rasa shell`) sends none, and
        is taken as a private chat keyed by its sender id."""
        if {"channel", "chat_type", "chat_id", "user_id"} <= meta.keys():
            chat = ChatRef(meta["channel"], meta["chat_type"], meta["chat_id"], meta["user_id"])
        else:
            channel = str(meta.get("channel") or "rasa")
            chat = ChatRef(channel, "private", conversation_id, conversation_id)
        return cls(
            chat=chat,
            resident_id=_int_or_none(meta.get("resident_id")),
            resident_name=str(meta.get("resident_name") or ""),
            message_id=_int_or_none(meta.get("message_id")),
        )


def _int_or_none(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


@dataclass(frozen=True)
class HandoffRequest:
    conversation_id: str
    intent: str
    confidence: float
    text: str
    origin: Origin
    entities: dict[str, str] = field(default_factory=dict)
    # The model archive that read the message: its reading is stored with the ticket, for
    # review. Empty when no model read it (a photo, a member's confirmation).
    model: str = ""

    def to_json(self) -> dict[str, Any]:
        """As `/internal/handoff` takes it: the origin as the metadata it came from."""
        return {
            "conversation_id": self.conversation_id,
            "intent": self.intent,
            "confidence": self.confidence,
            "text": self.text,
            "origin": self.origin.to_metadata(),
            "entities": self.entities,
            "model": self.model,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> HandoffRequest:
        """Raises ValueError, TypeError, KeyError or AttributeError for a body that is not a
        request."""
        conversation_id = str(body["conversation_id"])
        return cls(
            conversation_id=conversation_id,
            intent=str(body["intent"]),
            confidence=float(body["confidence"]),
            text=str(body["text"]),
            origin=Origin.from_metadata(body["origin"], conversation_id),
            entities={str(k): str(v) for k, v in (body.get("entities") or {}).items()},
            model=str(body.get("model") or ""),
        )


@dataclass(frozen=True)
class HandoffResult:
    ticket_id: int
    reply: str
    # The reply as stored with the ticket, pending (`ChatMessage.to_json`): whoever asked for
    # the ticket hands it on, after its routing (bot.conversation.router); if that worker
    # dies first, another worker's sweep does (bot.conversation.delivery).
    line: dict[str, Any] | None = None

    def stored_line(self) -> ChatMessage | None:
        return ChatMessage.from_json(self.line) if self.line else None


class HandoffError(Exception):
    """The ticket could not be opened; the resident must not be told someone is coming."""


class HandoffClient(Protocol):
    async def open_ticket(self, request: HandoffRequest) -> HandoffResult: ...
