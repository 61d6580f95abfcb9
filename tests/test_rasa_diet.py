"""The quick-loading DIET answers exactly as Rasa's own loading does."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf
from rasa.core.agent import Agent

import bot.rasa_diet
from bot.ops.evaluation import load_examples, predict

ROOT = Path(__file__).resolve().parents[1]


async def test_the_model_loads_its_fast_way_and_classifies_every_held_out_message_the_same(
    trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [text for text, _ in load_examples(ROOT / "data" / "test")]
    traced: list[Any] = []
    plain_graph = bot.rasa_diet._plain_graph

    def recording(step: Any, signature: Any) -> Any:
        traced.append(plain_graph(step, signature))
        return traced[-1]

    # Copies, so that the test session's cache of loaded models does not hand back a graph.
    monkeypatch.setattr(bot.rasa_diet, "_plain_graph", recording)
    quick = Agent.load(str(shutil.copy(trained_model, tmp_path / "quick.tar.gz")))
    quick_readings, _ = await predict(quick, texts)
    assert traced and all(graph is not None for graph in traced)

    monkeypatch.setattr(bot.rasa_diet, "_plain_graph", lambda step, signature: None)
    rasas_own = Agent.load(str(shutil.copy(trained_model, tmp_path / "rasa.tar.gz")))
    rasa_readings, _ = await predict(rasas_own, texts)

    assert [intent for intent, _ in quick_readings] == [intent for intent, _ in rasa_readings]
    for (_, quick_confidence), (_, rasa_confidence) in zip(
        quick_readings, rasa_readings, strict=True
    ):
        assert quick_confidence == pytest.approx(rasa_confidence, abs=1e-5)


def test_a_step_that_branches_on_a_tensor_is_left_to_autograph() -> None:
    signature = [tf.TensorSpec([None], tf.float32)]

    def branching(values: tf.Tensor) -> tf.Tensor:
        if tf.reduce_sum(values) > 0:
            return values
        return -values

    def straight(values: tf.Tensor) -> tf.Tensor:
        return values * 2

    assert bot.rasa_diet._plain_graph(branching, signature) is None
    doubled = bot.rasa_diet._plain_graph(straight, signature)
    assert doubled(tf.constant([1.0, 2.0])).numpy().tolist() == [2.0, 4.0]


def test_the_archive_keeps_the_weights_and_leaves_out_the_optimizer(
    trained_model: Path, tmp_path: Path
) -> None:
    with tarfile.open(trained_model) as archive:
        archive.extractall(tmp_path, filter="data")
    (index,) = tmp_path.rglob("*DIETClassifier.tf_model.index")
    stored = [name for name, _ in tf.train.list_variables(str(index.with_suffix("")))]

    assert any("sparse_to_dense/kernel" in name for name in stored)
    assert not [name for name in stored if "optimizer" in name]
