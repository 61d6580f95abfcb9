"""A candidate second opinion for DIET: a ridge classifier on the pipeline's own counts, each
featurizer's block weighed by tf-idf (sublinear counts, unit length). Scores become
probabilities through a softmax at `temperature`. docs/nlu.md has the measurements."""

from __future__ import annotations

from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from scipy.sparse import csr_matrix, hstack, vstack
from scipy.special import softmax
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import RidgeClassifier

from bot import rasa_blend
from bot.rasa_blend import probabilities

WEIGHTS = "ridge.npz"


def count_blocks(messages: list[Message]) -> list[csr_matrix]:
    """Each sparse sentence featurizer's rows for the messages, in the pipeline's order."""
    per_message = [
        [
            f.features
            for f in m.features
            if f.attribute == TEXT and f.type == FEATURE_TYPE_SENTENCE and f.is_sparse()
        ]
        for m in messages
    ]
    return [vstack(block).tocsr() for block in zip(*per_message, strict=True)]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class BlendedRidgeClassifier(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"alpha": 0.3, "temperature": 5.0, "weight": 0.5}

    def __init__(
        self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._idfs: list[TfidfTransformer] = []
        self._coef = np.zeros((0, 0))
        self._intercept = np.zeros(0)
        self._classes: list[str] = []

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> BlendedRidgeClassifier:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = training_data.intent_examples
        blocks = count_blocks(examples)
        self._idfs = [TfidfTransformer(sublinear_tf=True).fit(b) for b in blocks]
        ridge = RidgeClassifier(alpha=self._config["alpha"])
        ridge.fit(self._weighed(blocks), [m.get(INTENT) for m in examples])
        self._coef, self._intercept = ridge.coef_, np.atleast_1d(ridge.intercept_)
        self._classes = [str(c) for c in ridge.classes_]
        self.persist()
        return self._resource

    def _weighed(self, blocks: list[csr_matrix]) -> csr_matrix:
        return hstack([t.transform(b) for t, b in zip(self._idfs, blocks, strict=True)]).tocsr()

    def process(self, messages: list[Message]) -> list[Message]:
        if not self._classes or not messages:
            return messages
        scores = self._weighed(count_blocks(messages)) @ self._coef.T + self._intercept
        rows = softmax(np.asarray(scores) * self._config["temperature"], axis=1)
        for message, row in zip(messages, rows, strict=True):
            own = dict(zip(self._classes, map(float, row), strict=True))
            before = probabilities(message) or own
            ranking = rasa_blend.blend(before, own, self._config["weight"])
            message.set(INTENT, dict(ranking[0]), add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def persist(self) -> None:
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(
                directory / WEIGHTS,
                coef=self._coef,
                intercept=self._intercept,
                classes=np.array(self._classes, dtype=str),
                **{f"idf{i}": t.idf_ for i, t in enumerate(self._idfs)},
            )

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlendedRidgeClassifier:
        component = cls(config, model_storage, resource)
        with model_storage.read_from(resource) as directory, np.load(directory / WEIGHTS) as saved:
            for i in range(sum(key.startswith("idf") for key in saved.files)):
                transformer = TfidfTransformer(sublinear_tf=True)
                transformer.idf_ = saved[f"idf{i}"]
                component._idfs.append(transformer)
            component._coef = saved["coef"]
            component._intercept = saved["intercept"]
            component._classes = saved["classes"].tolist()
        return component
