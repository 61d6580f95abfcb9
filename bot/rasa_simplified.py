"""Traditional characters read as their simplified ones, before the tokenizer sees the text.

Residents whose phones are set to traditional characters (or who learned them) write 藥吃完了
for 药吃完了; `data/nlu` is written in simplified characters, so a traditional message shared
few words, characters or lookup words with it and read as chatter. Replacing each traditional
character by its simplified one, one for one, keeps every offset (entities, tokens) where it
was. The table is hanziconv's (a package, nothing downloaded); a character that GB2312, the
simplified standard set, holds is left as written, because the table also maps ordinary
simplified characters to rare variants (呼 → 唿, 糊 → 煳).

The message's text is replaced for every later component and in the parse result's `text`;
the service keeps the resident's own words (bot/conversation/engine.py).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from hanziconv.charmap import simplified_charmap, traditional_charmap
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


def _in_gb2312(char: str) -> bool:
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


@cache
def _table() -> dict[int, str]:
    return {
        ord(old): new
        for old, new in zip(traditional_charmap, simplified_charmap, strict=True)
        if old != new and not _in_gb2312(old)
    }


def simplified(text: str) -> str:
    return text.translate(_table())


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SimplifiedCharacters(GraphComponent):
    """First in the pipeline: each message's text in simplified characters."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SimplifiedCharacters:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        _simplify(messages)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        _simplify(training_data.training_examples)
        return training_data


def _simplify(messages: list[Message]) -> None:
    for message in messages:
        text = message.get(TEXT)
        if text:
            message.set(TEXT, simplified(text))
