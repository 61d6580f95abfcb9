"""Registry of the project's actions (rasa_sdk's `register_package` finds them here too)."""

from __future__ import annotations

from rasa_sdk import Action

from actions.chitchat import ActionChitchat
from actions.handoff import ActionHandoff
from bot.core.handoff import HandoffClient


def build_actions(handoff_client: HandoffClient | None = None) -> list[Action]:
    return [ActionHandoff(handoff_client), ActionChitchat()]
