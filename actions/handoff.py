"""action_handoff: turn the resident's request into a ticket for a named party member."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff_client import HttpHandoffClient
from actions.listen import then_listen
from bot.core.handoff import (
    ENTITY_NAMES,
    FALLBACK_INTENT,
    MODEL_KEY,
    HandoffClient,
    HandoffError,
    HandoffRequest,
    Origin,
)

logger = logging.getLogger(__name__)

# Said only when the ticket could not be stored; no name is promised that nobody holds.
SERVICE_DOWN_TEXT = "抱歉，系统暂时有点忙，请稍后再发一次，或直接打社区电话。"


class ActionHandoff(Action):
    def __init__(self, client: HandoffClient | None = None) -> None:
        self._client = client

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        client = self._client or HttpHandoffClient.from_environment()
        try:
            result = await client.open_ticket(handoff_request(tracker))
        except HandoffError:
            logger.exception("handoff failed for %s", tracker.sender_id)
            dispatcher.utter_message(text=SERVICE_DOWN_TEXT)
            return then_listen()
        # The router learns which ticket this turn opened and which line, stored with it, to
        # hand on (as data: not a text to store again). The open ticket, not a paused tracker,
        # now holds the conversation.
        dispatcher.utter_message(
            json_message={"ticket_id": result.ticket_id, "told": result.reply, "line": result.line}
        )
        return then_listen()


def handoff_request(tracker: Tracker) -> HandoffRequest:
    message = tracker.latest_message
    metadata = message.get("metadata") or {}
    intent, confidence = _classification(message)
    entities: dict[str, str] = {}
    for name in ENTITY_NAMES:
        value = next(tracker.get_latest_entity_values(name), None)
        if value:
            entities[name] = str(value)
    return HandoffRequest(
        conversation_id=tracker.sender_id,
        intent=intent,
        confidence=confidence,
        text=message.get("text") or "",
        origin=Origin.from_metadata(metadata, tracker.sender_id),
        entities=entities,
        model=str(metadata.get(MODEL_KEY) or ""),
    )


def _classification(message: dict[str, Any]) -> tuple[str, float]:
    """The intent and its confidence; for a fallback, the best real guess is kept for review."""
    intent = message.get("intent") or {}
    if intent.get("name") != FALLBACK_INTENT:
        return intent.get("name") or FALLBACK_INTENT, float(intent.get("confidence") or 0.0)
    ranking = [r for r in message.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
    best = ranking[0] if ranking else {}
    return FALLBACK_INTENT, float(best.get("confidence") or 0.0)
