"""Custom actions, on trackers built the way Rasa sends them."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.chitchat import HOW_TO_ASK_TEXT, ActionChitchat
from actions.handoff import SERVICE_DOWN_TEXT, ActionHandoff
from bot.core.handoff import HandoffError, HandoffRequest, HandoffResult

# Rasa's FollowupAction event: the bot listens next.
WAIT_FOR_RESIDENT = {"event": "followup", "name": "action_listen", "timestamp": None}
LINE = {"id": 31, "text": "已请3号楼网格员王建国来帮您", "sender_kind": "bot"}


class RecordingClient:
    def __init__(self, fail: bool = False) -> None:
        self.requests: list[HandoffRequest] = []
        self.fail = fail

    async def open_ticket(self, request: HandoffRequest) -> HandoffResult:
        self.requests.append(request)
        if self.fail:
            raise HandoffError("database down")
        return HandoffResult(ticket_id=7, reply="已请3号楼网格员王建国来帮您", line=LINE)


def tracker(intent: str, confidence: float, chat_type: str = "private", **extra: Any) -> Tracker:
    latest = {
        "text": "我家水管漏了 3号楼2单元501 电话13900001234",
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": [
            {"name": intent, "confidence": confidence},
            {"name": "repair", "confidence": 0.31},
        ],
        "entities": [
            {"entity": "address", "value": "3号楼2单元501"},
            {"entity": "phone", "value": "13900001234"},
        ],
        "metadata": {"chat_type": chat_type, "resident_id": 1, "message_id": 3},
        **extra,
    }
    return Tracker.from_dict(
        {"sender_id": "webchat:u1", "slots": {}, "latest_message": latest, "events": [],
         "paused": False, "followup_action": None, "active_loop": {},
         "latest_action_name": "action_listen"}
    )  # fmt: skip


async def test_handoff_opens_a_ticket_tells_who_and_hands_back_its_id() -> None:
    client = RecordingClient()
    dispatcher = CollectingDispatcher()

    events = await ActionHandoff(client).run(dispatcher, tracker("repair", 0.93), {})

    # No pause: the open ticket holds the conversation (docs/architecture.md). The turn ends
    # waiting for the resident, as the rules would have it, without asking the policies.
    assert events == [WAIT_FOR_RESIDENT]
    # The service stored the line with the ticket: it rides as data for the router to hand
    # on, not as a text to store again.
    assert [m["text"] for m in dispatcher.messages] == [None]
    assert [m["custom"] for m in dispatcher.messages] == [
        {"ticket_id": 7, "told": "已请3号楼网格员王建国来帮您", "line": LINE}
    ]
    [request] = client.requests
    assert (request.intent, request.confidence) == ("repair", 0.93)
    assert request.entities == {"address": "3号楼2单元501", "phone": "13900001234"}
    assert request.origin.message_id == 3
    assert request.conversation_id == "webchat:u1"


async def test_fallback_keeps_the_best_guess_for_review() -> None:
    client = RecordingClient()
    await ActionHandoff(client).run(CollectingDispatcher(), tracker("nlu_fallback", 0.45), {})
    assert (client.requests[0].intent, client.requests[0].confidence) == ("nlu_fallback", 0.31)


async def test_a_failed_handoff_promises_nobody_and_does_not_pause() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionHandoff(RecordingClient(fail=True)).run(
        dispatcher, tracker("urgent", 0.99), {}
    )
    assert events == [WAIT_FOR_RESIDENT]
    assert [m["text"] for m in dispatcher.messages] == [SERVICE_DOWN_TEXT]


async def test_chitchat_is_silent_in_groups_and_one_line_in_private() -> None:
    in_group, in_private = CollectingDispatcher(), CollectingDispatcher()
    events = await ActionChitchat().run(in_group, tracker("chitchat", 0.9, chat_type="group"), {})
    await ActionChitchat().run(in_private, tracker("chitchat", 0.9), {})
    assert events == [WAIT_FOR_RESIDENT]
    assert in_group.messages == []
    assert [m["text"] for m in in_private.messages] == [HOW_TO_ASK_TEXT]
