"""The pretrained character vectors, the message-wide and syllable counts and the blended second
classifier in config.yml."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse
from rasa.core.agent import Agent
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE, INTENT, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.rasa_blend import blend, message_rows
from bot.rasa_chars import OOV_HANZI, CharacterTable
from bot.rasa_counts import SentenceCountVectorsFeaturizer
from bot.rasa_pinyin import PinyinCountVectorsFeaturizer, sounds
from bot.rasa_simplified import simplified


@pytest.fixture(scope="module")
def table() -> CharacterTable:
    return CharacterTable()


def similarity(table: CharacterTable, a: str, b: str) -> float:
    x, y = table.token_vector(a), table.token_vector(b)
    return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))


def test_jiebas_table_is_read_whole(table: CharacterTable) -> None:
    assert table.vectors.shape == (20941, 128)
    assert np.isfinite(table.vectors).all()
    assert len(table.ids) == 20940


def test_words_of_one_kind_lie_closer_than_words_of_different_kinds(
    table: CharacterTable,
) -> None:
    assert similarity(table, "肝癌", "肺癌") > similarity(table, "肝癌", "停水") + 0.3
    assert similarity(table, "停水", "断水") > similarity(table, "停水", "咳嗽") + 0.3


def test_a_character_the_table_lacks_gets_its_unknown_row(table: CharacterTable) -> None:
    rare = "鿏"  # meitnerium's character: Chinese, but not in LAC's vocabulary
    assert rare not in table.ids
    assert table.row(rare) == table.ids[OOV_HANZI]


def test_traditional_characters_become_simplified_ones_one_for_one() -> None:
    assert simplified("藥吃完了 電梯壞了兩天") == "药吃完了 电梯坏了两天"
    # Simplified characters the table maps to rare variants stay as written.
    assert simplified("呼吸困难 老糊涂了 出去溜达") == "呼吸困难 老糊涂了 出去溜达"
    assert simplified("3號樓 ☺ abc") == "3号楼 ☺ abc"


def test_blending_averages_two_readings_and_ranks_them_again() -> None:
    diet = {"repair": 0.95, "chitchat": 0.05}
    linear = {"repair": 0.2, "chitchat": 0.7, "complaint": 0.1}
    ranking = blend(diet, linear, weight=0.5)
    assert [(r["name"], round(r["confidence"], 3)) for r in ranking] == [
        ("repair", 0.575),
        ("chitchat", 0.375),
        ("complaint", 0.05),
    ]


def test_the_linear_model_reads_the_rows_rasa_would_build(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)

    def message(text: str) -> Message:
        m = Message(data={TEXT: text})
        for origin, width in (("words", 5), ("chars", 9)):
            counts = scipy.sparse.coo_matrix(rng.integers(0, 3, (1, width)).astype(float))
            m.add_features(Features(counts, FEATURE_TYPE_SENTENCE, TEXT, origin))
            m.add_features(Features(counts, FEATURE_TYPE_SEQUENCE, TEXT, origin))
        vectors = rng.normal(size=(1, 4)) * rng.integers(0, 2, (1, 4))
        m.add_features(Features(vectors, FEATURE_TYPE_SENTENCE, TEXT, "vectors"))
        regex = scipy.sparse.coo_matrix(np.array([[0.0, 1.0, 1.0]]))
        m.add_features(Features(regex, FEATURE_TYPE_SENTENCE, TEXT, "regex"))
        return m

    messages = [message(t) for t in ("厨房水管漏水", "灯不亮了", "好")]
    rasas = LogisticRegressionClassifier.create(
        LogisticRegressionClassifier.get_default_config(),
        LocalModelStorage(tmp_path),
        Resource("logreg"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    ours = message_rows(messages)
    assert ours.shape == (3, 5 + 9 + 3 + 4)
    assert (ours.toarray() == rasas._create_X(messages).toarray()).all()


async def test_the_trained_model_reads_with_both_and_its_confidences_sum_to_one(
    trained_model: Path,
) -> None:
    agent = Agent.load(str(trained_model))
    parsed = await agent.parse_message("小区停水两天了 啥时候来水")
    ranking = parsed["intent_ranking"]
    assert {r["name"] for r in ranking} >= {"repair", "chitchat", "urgent"}
    assert sum(r["confidence"] for r in ranking) == pytest.approx(1.0, abs=1e-3)
    assert parsed["intent"]["name"] == "repair"


def featurized_by(
    featurizer_class: type[CountVectorsFeaturizer], texts: list[str], tmp_path: Path, **options: Any
) -> Callable[[str], Message]:
    """config.yml's tokenizer and a count featurizer trained on `texts`; returns a function
    from a text to the message as the featurizer leaves it."""
    tmp_path.mkdir(exist_ok=True)
    storage, context = LocalModelStorage(tmp_path), ExecutionContext(GraphSchema({}), "test")
    tokenizer = JiebaTokenizer.create(
        JiebaTokenizer.get_default_config(), storage, Resource("jieba"), context
    )
    config = {**featurizer_class.get_default_config(), **options}
    featurizer = featurizer_class.create(
        config, storage, Resource(featurizer_class.__name__), context
    )
    data = TrainingData([Message(data={TEXT: t, INTENT: "repair"}) for t in texts])
    tokenizer.process_training_data(data)
    featurizer.train(data)

    def featurized(text: str) -> Message:
        [message] = tokenizer.process([Message(data={TEXT: text})])
        featurizer.process([message])
        return message

    return featurized


def sentence_counts(message: Message) -> np.ndarray:
    _, sentence = message.get_sparse_features(TEXT)
    assert sentence is not None
    return sentence.features.toarray()


def test_counts_describe_the_message_as_a_whole_as_rasas_do_and_nothing_per_token(
    tmp_path: Path,
) -> None:
    texts = ["厨房水管漏水了", "楼道灯坏了 好几天了", "食堂明天有饺子吗"]
    ours = featurized_by(SentenceCountVectorsFeaturizer, texts, tmp_path / "ours", analyzer="char",
                         max_ngram=3)  # fmt: skip
    rasas = featurized_by(CountVectorsFeaturizer, texts, tmp_path / "rasa", analyzer="char",
                          max_ngram=3)  # fmt: skip
    for text in ("卫生间水管漏水", "灯不亮了"):
        assert (sentence_counts(ours(text)) == sentence_counts(rasas(text))).all()
        assert ours(text).get_sparse_features(TEXT)[0] is None
        assert rasas(text).get_sparse_features(TEXT)[0] is not None


def test_letters_are_cut_into_the_syllables_they_spell() -> None:
    assert sounds("louxia shaokao") == ["lou", "xia", "shao", "kao"]
    assert sounds("3号楼水管") == ["3", "hao", "lou", "shui", "guan"]


def test_a_homophone_and_pinyin_sound_like_the_word_they_stand_for(tmp_path: Path) -> None:
    featurized = featurized_by(
        PinyinCountVectorsFeaturizer, ["燃气灶打不开", "血压高 头晕"], tmp_path, max_ngram=2
    )

    def features(text: str) -> np.ndarray:
        return sentence_counts(featurized(text))

    assert (features("然气灶打不开") == features("燃气灶打不开")).all()
    assert (features("ran qi zao da bu kai") == features("燃气灶打不开")).all()
    assert (features("血呀高") == features("血压高")).all()
    assert not (features("血压高") == features("燃气灶")).all()
