"""Urgent wins whenever the model seriously considers it."""

from __future__ import annotations

from typing import Any

from rasa.shared.nlu.training_data.message import Message

from bot.rasa_urgent import UrgentFirstClassifier


def _reading(*ranking: tuple[str, float]) -> Message:
    entries = [{"name": name, "confidence": confidence} for name, confidence in ranking]
    return Message(data={"text": "…", "intent": dict(entries[0]), "intent_ranking": entries})


def _read(message: Message) -> tuple[Any, list[str]]:
    UrgentFirstClassifier({"intent": "urgent", "threshold": 0.2}).process([message])
    intent = message.data["intent"]
    return (intent["name"], intent["confidence"]), [
        e["name"] for e in message.data["intent_ranking"]
    ]


def test_a_fire_read_mostly_as_a_repair_goes_out_as_urgent() -> None:
    intent, ranking = _read(_reading(("repair", 0.75), ("urgent", 0.22), ("complaint", 0.03)))
    assert intent == ("urgent", 0.22)
    assert ranking == ["urgent", "repair", "complaint"]


def test_an_unsure_reading_with_urgent_in_it_is_urgent_not_unclassified() -> None:
    intent, ranking = _read(
        _reading(("nlu_fallback", 0.45), ("complaint", 0.41), ("urgent", 0.38), ("repair", 0.21))
    )
    assert intent == ("urgent", 0.38)
    assert ranking[0] == "urgent"


def test_a_faint_trace_of_urgent_changes_nothing() -> None:
    intent, ranking = _read(_reading(("repair", 0.9), ("urgent", 0.08), ("canteen", 0.02)))
    assert intent == ("repair", 0.9)
    assert ranking == ["repair", "urgent", "canteen"]


def test_a_reading_without_urgent_is_left_alone() -> None:
    intent, _ = _read(_reading(("chitchat", 0.7), ("canteen", 0.3)))
    assert intent == ("chitchat", 0.7)
