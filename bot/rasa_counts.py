"""Rasa's CountVectorsFeaturizer, giving a message's text its counts as a whole and none per
token.

With no transformer layers (config.yml), DIET reads a message's intent from its sentence
features alone: every token's own features pass through their dense layers and then go
nowhere. The blended linear model reads sentence features only too. Counting per token as
well, over 100,000 character n-grams and 23,000 syllable pairs, made DIET's training take 106 s
instead of 74 and changed no prediction (docs/nlu.md). Labels (intent names) keep their
features as Rasa makes them.
"""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer,
)
from rasa.shared.nlu.constants import TEXT
from scipy.sparse import spmatrix


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class SentenceCountVectorsFeaturizer(CountVectorsFeaturizer):
    def _create_features(
        self, attribute: str, all_tokens: list[list[str]]
    ) -> tuple[list[spmatrix | None], list[spmatrix | None]]:
        vectorizer = self.vectorizers.get(attribute)
        if attribute != TEXT or not vectorizer:
            return super()._create_features(attribute, all_tokens)
        sentences: list[spmatrix | None] = []
        for tokens in all_tokens:
            if not tokens:
                sentences.append(None)
                continue
            vector = vectorizer.transform([" ".join(tokens)])
            vector.sort_indices()
            sentences.append(vector.tocoo())
        return [None] * len(all_tokens), sentences
