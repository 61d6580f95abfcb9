"""Actions that tests/test_rasa_patches.py runs both in process and on rasa_sdk's own action
server (`python -m rasa_sdk --actions tests.sdk_actions`), to compare what Rasa gets back.

Imports nothing but rasa_sdk: the server registers every Action subclass it has imported."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import ActionExecutionRejection


class ActionEcho(Action):
    """Says what it read from the tracker, and sets a slot."""

    def name(self) -> str:
        return "action_echo"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        latest = tracker.latest_message
        dispatcher.utter_message(
            text=f"{tracker.sender_id}: {latest.get('text')}",
            buttons=[{"title": "好", "payload": "/affirm"}],
            custom={
                "intent": latest["intent"],
                "metadata": latest.get("metadata"),
                "channel": tracker.get_latest_input_channel(),
                "events": len(tracker.events),
                "domain": domain,
            },
        )
        return [SlotSet("ticket", 7), FollowupAction("action_listen")]


class ActionRefusing(Action):
    def name(self) -> str:
        return "action_refusing"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        raise ActionExecutionRejection(self.name(), "not for this message")


ACTIONS = [ActionEcho, ActionRefusing]
