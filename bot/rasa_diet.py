"""Rasa's DIETClassifier, loading in a third of the time.

Loading is most of a cold start and of every model switch. Rasa rebuilds a loaded DIET's
variables by fitting it on one example, which traces the whole training step (forward
pass, loss, gradients, optimizer) into a TensorFlow graph with AutoGraph: about four
seconds on 2 cores, for a step that serving never runs. Here that fit runs eagerly, which
builds the same variables in well under a second; the trained weights are then loaded over
them as usual. Prediction still runs as a traced graph, so each parse stays as fast, but is
traced without AutoGraph's source rewriting (two seconds to 0.3 s) when the prediction step
allows it. Training is Rasa's own, unchanged.

It also stores only what serving reads: Rasa's checkpoint carries Adam's two moment estimates
for every weight, two thirds of the archive, written, compressed and unpacked on every
training and every load.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.diet_classifier import DIET, DIETClassifier
from rasa.utils.tensorflow.constants import RUN_EAGERLY
from rasa.utils.tensorflow.models import RasaModel


class PlainGraphDIET(DIET):
    # Rasa's RasaModel sets it in __init__; Rasa ships no types to say so.
    _tf_predict_step: Any

    def _trackable_children(self, save_type: str = "checkpoint", **kwargs: Any) -> dict[str, Any]:
        """The model's checkpoint without the optimizer. Fine-tuning a loaded model starts
        Adam afresh, as it would with a new learning rate."""
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "checkpoint":
            children.pop("optimizer", None)
        return dict(children)

    def _rasa_predict(self, batch_in: Any) -> dict[str, Any]:
        if self._tf_predict_step is None and not self.run_eagerly:
            self._tf_predict_step = _plain_graph(
                self.predict_step, self._dynamic_signature(batch_in)
            )
        return super()._rasa_predict(batch_in)


def _plain_graph(step: Any, signature: Any) -> Any:
    """`step` as a graph traced without AutoGraph, or None when it needs AutoGraph.

    A step that branches or loops on tensor values cannot be traced as plain Python; then
    Rasa's default tracing (with AutoGraph) takes over. The graph is called as the one
    concrete function its signature allows: a `tf.function` matches every call's inputs
    against that signature again first, a third of the graph's own time (0.4 ms a parse).
    """
    plain = tf.function(step, input_signature=signature, autograph=False)
    try:
        return plain.get_concrete_function()
    except TypeError:
        return None


@DefaultV1Recipe.register(
    [
        DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER,
        DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR,
    ],
    is_trainable=True,
)
class QuickLoadingDIETClassifier(DIETClassifier):
    @staticmethod
    def model_class() -> type[RasaModel]:
        return PlainGraphDIET

    @classmethod
    def _load_model_class(
        cls,
        tf_model_file: str,
        model_data_example: Any,
        label_data: Any,
        entity_tag_specs: Any,
        config: dict[str, Any],
        finetune_mode: bool,
    ) -> RasaModel:
        # Fine-tuning trains further, and an eager config predicts eagerly: Rasa's way for both.
        quick = not finetune_mode and not config.get(RUN_EAGERLY)
        model = super()._load_model_class(
            tf_model_file,
            model_data_example,
            label_data,
            entity_tag_specs,
            {**config, RUN_EAGERLY: True} if quick else config,
            finetune_mode,
        )
        if quick:
            model.run_eagerly = False
        return model
