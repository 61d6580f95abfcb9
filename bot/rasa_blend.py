"""A second opinion for DIET: logistic regression on the same features, probabilities averaged.

DIET is confidently wrong on words it never saw (0.9 and more), so its FallbackClassifier never
fires on them. A linear model on the same features is less sure of itself where the data is
thin; the average of the two is better calibrated than either and keeps DIET's ranking where
both agree. It runs right after DIET, before the FallbackClassifier and the urgent-first rule.
docs/nlu.md has the measurements.

Rasa stores its LogisticRegressionClassifier with skops, whose import walks all of
scikit-learn (7 s of a cold start here); this one keeps the fitted weights as plain arrays.
Rasa builds each message's row by combining every featurizer's sequence and sentence features
through copies and scipy's generic stacking, a fifth of a parse here; this one lays the
sentence features side by side in the same order (`message_rows`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import (
    FEATURE_TYPE_SENTENCE,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from scipy.sparse import coo_matrix, csr_matrix
from sklearn.exceptions import ConvergenceWarning

WEIGHTS = "weights.npz"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class BlendedLogisticRegressionClassifier(LogisticRegressionClassifier):
    """`weight` is the share the earlier classifier's probabilities keep in the average."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**LogisticRegressionClassifier.get_default_config(), "weight": 0.5}

    def process(self, messages: list[Message]) -> list[Message]:
        earlier = [probabilities(m) for m in messages]
        super().process(messages)
        for message, before in zip(messages, earlier, strict=True):
            if before:
                ranking = blend(before, probabilities(message), self.config["weight"])
                message.set(INTENT, dict(ranking[0]), add_to_output=True)
                message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    def _create_X(self, messages: list[Message]) -> csr_matrix:
        return message_rows(messages)

    def train(self, training_data: TrainingData) -> Resource:
        # The solver is stopped early on purpose (config.yml: max_iter); scikit-learn's advice
        # to raise the limit would only alarm whoever runs `make train`.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return super().train(training_data)

    def persist(self) -> None:
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(
                directory / WEIGHTS,
                coef=self.clf.coef_,
                intercept=self.clf.intercept_,
                classes=self.clf.classes_.astype(str),
            )

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlendedLogisticRegressionClassifier:
        component = cls(config, execution_context.node_name, model_storage, resource)
        with (
            model_storage.read_from(resource) as directory,
            np.load(directory / WEIGHTS) as weights,
        ):
            component.clf.coef_ = weights["coef"]
            component.clf.intercept_ = weights["intercept"]
            component.clf.classes_ = weights["classes"]
        return component

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training examples keep their labelled intent; only parsed messages are blended."""
        return training_data


def blend(before: dict[str, float], own: dict[str, float], weight: float) -> list[dict[str, Any]]:
    """The weighted average of two intent distributions, as a ranking (most likely first)."""
    names = before.keys() | own.keys()
    average = {n: weight * before.get(n, 0.0) + (1 - weight) * own.get(n, 0.0) for n in names}
    return [
        {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence}
        for name, confidence in sorted(average.items(), key=lambda item: -item[1])
    ]


def message_rows(messages: list[Message]) -> csr_matrix:
    """One row a message, as Rasa's own rows: its text's sentence features side by side."""
    if not messages:
        return csr_matrix((0, 0))
    rows = [_sentence_row(m) for m in messages]
    starts = np.cumsum([0] + [len(columns) for columns, _, _ in rows])
    return csr_matrix(
        (
            np.concatenate([values for _, values, _ in rows]),
            np.concatenate([columns for columns, _, _ in rows]),
            starts,
        ),
        shape=(len(rows), rows[0][2]),
    )


def _sentence_row(message: Message) -> tuple[np.ndarray, np.ndarray, int]:
    """The columns and values of a message's row, and its width: the sparse features, then
    the dense ones, each kind in the order the featurizers added them."""
    sentence = [
        f for f in message.features if f.attribute == TEXT and f.type == FEATURE_TYPE_SENTENCE
    ]
    columns, values, width = [], [], 0
    for features in sorted(sentence, key=lambda f: not f.is_sparse()):
        block = coo_matrix(features.features)
        columns.append(block.col + width)
        values.append(block.data)
        width += block.shape[1]
    return np.concatenate(columns), np.concatenate(values), width


def probabilities(message: Message) -> dict[str, float]:
    ranking = message.get(INTENT_RANKING_KEY) or []
    return {r[INTENT_NAME_KEY]: float(r[PREDICTED_CONFIDENCE_KEY]) for r in ranking}
