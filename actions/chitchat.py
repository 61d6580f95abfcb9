"""action_chitchat: silence in groups, one short pointer in a private chat."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.listen import then_listen

HOW_TO_ASK_TEXT = "您好！有事直接说就行，比如“水管漏了”“想订午饭”，发语音也可以，社区会有人来帮您。"


class ActionChitchat(Action):
    def name(self) -> str:
        return "action_chitchat"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        metadata = tracker.latest_message.get("metadata") or {}
        # Neighbours chatting in a group do not want a bot talking back.
        if metadata.get("chat_type") != "group":
            dispatcher.utter_message(text=HOW_TO_ASK_TEXT)
        return then_listen()
