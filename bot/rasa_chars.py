"""Pretrained character vectors for Rasa, from the table jieba's own package ships.

jieba carries Baidu LAC's small lexical-analysis model (`jieba/lac_small`), whose first layer
is a 128-dimensional embedding of 20,941 characters trained on a large Chinese corpus. Words
residents use that the training data never saw (a disease, a facility) still land near the
characters of words it did see. Nothing is downloaded: the table is read from the installed
package. config.yml names this featurizer; docs/nlu.md says what it was measured to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jieba
import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import FEATURIZER_CLASS_ALIAS, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import MEAN_POOLING

LAC_DIR = Path(jieba.__file__).parent / "lac_small"
DIMENSIONS = 128
# A Paddle tensor file: version (4 bytes), LoD level (8), tensor version (4), the size of its
# description (4), the description, then the float32 values, row after row.
_HEADER_FIXED = 4 + 8 + 4
OOV_HANZI = "OOV_HANZ"
OOV_OTHER = "OOV"


class CharacterTable:
    """Character → vector, with LAC's own rows for unknown Chinese and other characters."""

    def __init__(self, lac_dir: Path = LAC_DIR) -> None:
        raw = (lac_dir / "model_baseline" / "word_emb").read_bytes()
        description = int.from_bytes(raw[_HEADER_FIXED : _HEADER_FIXED + 4], "little")
        values = np.frombuffer(raw, dtype="<f4", offset=_HEADER_FIXED + 4 + description)
        self.vectors = values.reshape(-1, DIMENSIONS)
        self.ids: dict[str, int] = {}
        # Split on newlines only: the vocabulary holds characters splitlines() breaks at.
        for line in (lac_dir / "word.dic").read_text(encoding="utf-8").split("\n"):
            row, tab, char = line.partition("\t")
            if tab:
                self.ids[char] = int(row)

    def row(self, char: str) -> int:
        found = self.ids.get(char)
        if found is not None:
            return found
        return self.ids[OOV_HANZI if "\u4e00" <= char <= "\u9fff" else OOV_OTHER]

    def token_vector(self, token: str) -> np.ndarray:
        chars = [c for c in token if not c.isspace()] or [" "]
        return self.vectors[[self.row(c) for c in chars]].mean(axis=0)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class CharacterVectorFeaturizer(DenseFeaturizer, GraphComponent):
    """Each token is the mean of its characters' vectors; the message, the mean of its tokens."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**DenseFeaturizer.get_default_config(), "pooling": MEAN_POOLING}

    def __init__(self, config: dict[str, Any], execution_context: ExecutionContext) -> None:
        super().__init__(execution_context.node_name, config)
        self._table = CharacterTable()

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CharacterVectorFeaturizer:
        return cls(config, execution_context)

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Nothing to check: the table comes with jieba."""

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._featurize(message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def _featurize(self, message: Message) -> None:
        tokens = message.get(TOKENS_NAMES[TEXT])
        if not tokens:
            return
        sequence = np.stack([self._table.token_vector(t.text) for t in tokens])
        sentence = self.aggregate_sequence_features(sequence, self._config["pooling"])
        alias = self._config[FEATURIZER_CLASS_ALIAS]
        message.add_features(Features(sequence, FEATURE_TYPE_SEQUENCE, TEXT, alias))
        message.add_features(Features(sentence, FEATURE_TYPE_SENTENCE, TEXT, alias))
