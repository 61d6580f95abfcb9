"""Urgent wins when the model seriously considers it.

A missed emergency costs far more than a party member answering a fall that turns out to be
a dripping tap, so the dispatcher's rule 1 (`data/README.md`) is also the decision rule:
when `urgent` is not the top intent but its probability reaches `threshold`, the message is
read as urgent. It runs last in the pipeline, after the FallbackClassifier, so that a
message unsure between "urgent" and anything else is treated as urgent, not as 未分类.
The threshold is chosen by cross validation (docs/nlu.md).
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
)
from rasa.shared.nlu.training_data.message import Message

log = logging.getLogger(__name__)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class UrgentFirstClassifier(GraphComponent, IntentClassifier):
    @classmethod
    def required_components(cls) -> list[type]:
        return [IntentClassifier]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"intent": "urgent", "threshold": 0.3}

    def __init__(self, config: dict[str, Any]) -> None:
        self._intent = config["intent"]
        self._threshold = config["threshold"]

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UrgentFirstClassifier:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            urgent = self._considered_urgent(message)
            if urgent is not None:
                log.debug(
                    "urgent (%.2f) chosen over %s", urgent[PREDICTED_CONFIDENCE_KEY],
                    message.data[INTENT].get(INTENT_NAME_KEY),
                )  # fmt: skip
                message.data[INTENT] = dict(urgent)
                ranking = message.data[INTENT_RANKING_KEY]
                ranking.remove(urgent)
                ranking.insert(0, urgent)
        return messages

    def _considered_urgent(self, message: Message) -> dict[str, Any] | None:
        """The ranking's entry for the urgent intent when it should win, else None."""
        top = (message.data.get(INTENT) or {}).get(INTENT_NAME_KEY)
        if top in (None, self._intent):
            return None
        for entry in message.data.get(INTENT_RANKING_KEY) or []:
            if entry.get(INTENT_NAME_KEY) == self._intent:
                confident = entry.get(PREDICTED_CONFIDENCE_KEY, 0.0) >= self._threshold
                return entry if confident else None
        return None
