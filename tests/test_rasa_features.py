"""The pretrained character vectors and the blended second classifier in config.yml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasa.core.agent import Agent

from bot.rasa_blend import blend
from bot.rasa_chars import OOV_HANZI, CharacterTable


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


def test_blending_averages_two_readings_and_ranks_them_again() -> None:
    diet = {"repair": 0.95, "chitchat": 0.05}
    linear = {"repair": 0.2, "chitchat": 0.7, "complaint": 0.1}
    ranking = blend(diet, linear, weight=0.5)
    assert [(r["name"], round(r["confidence"], 3)) for r in ranking] == [
        ("repair", 0.575),
        ("chitchat", 0.375),
        ("complaint", 0.05),
    ]


async def test_the_trained_model_reads_with_both_and_its_confidences_sum_to_one(
    trained_model: Path,
) -> None:
    agent = Agent.load(str(trained_model))
    parsed = await agent.parse_message("小区停水两天了 啥时候来水")
    ranking = parsed["intent_ranking"]
    assert {r["name"] for r in ranking} >= {"repair", "chitchat", "urgent"}
    assert sum(r["confidence"] for r in ranking) == pytest.approx(1.0, abs=1e-3)
    assert parsed["intent"]["name"] == "repair"
