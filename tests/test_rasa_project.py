"""The Rasa project itself: data that validates, rules that hold, a model that understands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rasa.core.agent import Agent
from rasa.shared.importers.importer import TrainingDataImporter

ROOT = Path(__file__).resolve().parents[1]
REQUEST_INTENTS = {"repair", "canteen", "medical", "complaint", "urgent"}


def _rasa(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rasa", *args], cwd=cwd, capture_output=True, text=True
    )


def test_rasa_data_validate_passes() -> None:
    result = _rasa("data", "validate", "--fail-on-warnings")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_no_lookup_word_holds_a_shorter_word_of_its_own_table() -> None:
    """A table's feature is whether any of its words is in the message, so such a word
    changes no message's feature and only makes the table look wider than it is."""
    entries = yaml.safe_load((ROOT / "data" / "nlu" / "entities.yml").read_text())["nlu"]
    tables = {
        e["lookup"]: [line.removeprefix("- ") for line in e["examples"].splitlines()]
        for e in entries
        if "lookup" in e
    }
    held = [
        f"{name}: {long} holds {short}"
        for name, words in tables.items()
        for long in words
        for short in words
        if short != long and short in long
    ]
    assert not held, "\n".join(held)


def test_every_rule_has_a_story_test_and_they_all_pass(trained_model: Path, tmp_path: Path) -> None:
    result = _rasa(
        "test", "core", "--model", str(trained_model), "--stories", "tests/test_stories.yml",
        "--fail-on-prediction-errors", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    stories = (ROOT / "tests" / "test_stories.yml").read_text()
    rules = TrainingDataImporter.load_from_config(
        str(ROOT / "config.yml"), str(ROOT / "domain.yml"), [str(ROOT / "data")]
    ).get_stories()
    for step in rules.story_steps:
        for event in step.events:
            name = getattr(event, "action_name", None)
            if name and name not in ("action_listen", "..."):
                assert f"action: {name}" in stories


def test_training_never_sees_the_held_out_split() -> None:
    training = TrainingDataImporter.load_from_config(
        str(ROOT / "config.yml"), str(ROOT / "domain.yml"), [str(ROOT / "data")]
    ).get_nlu_data()
    held_out = TrainingDataImporter.load_from_dict(
        training_data_paths=[str(ROOT / "data" / "test")]
    ).get_nlu_data()
    train_texts = {m.get("text") for m in training.intent_examples}
    test_texts = [m.get("text") for m in held_out.intent_examples]
    assert not train_texts.intersection(test_texts)
    counts = {i: 0 for i in REQUEST_INTENTS | {"chitchat"}}
    for m in training.intent_examples:
        counts[m.get("intent")] += 1
    assert min(counts[i] for i in REQUEST_INTENTS) >= 300 and counts["chitchat"] >= 200
    held_out_counts = {i: 0 for i in REQUEST_INTENTS | {"chitchat"}}
    for m in held_out.intent_examples:
        held_out_counts[m.get("intent")] += 1
    assert min(held_out_counts.values()) >= 60


@pytest.fixture(scope="module")
def agent(trained_model: Path) -> Agent:
    return Agent.load(str(trained_model))


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("卫生间的马桶一直在漏水 帮我找个师傅", "repair"),
        ("明天中午给我送两份饭到家里 要软一点的", "canteen"),
        ("我爸血压高 想请家庭医生上门量一量", "medical"),
        ("楼上天天半夜剁东西 吵死了 说了也不听", "complaint"),
        ("快来人啊 我老伴倒在地上叫不醒", "urgent"),
        ("谢谢你们 辛苦了", "chitchat"),
    ],
)
async def test_the_model_understands_unseen_sentences(agent: Agent, text: str, intent: str) -> None:
    parsed = await agent.parse_message(text)
    assert parsed["intent"]["name"] == intent


async def test_address_phone_and_time_are_extracted(agent: Agent) -> None:
    parsed = await agent.parse_message("明天上午来修一下 3号楼2单元501 电话13900001234")
    found = {e["entity"]: e["value"] for e in parsed["entities"]}
    assert found == {"address": "3号楼2单元501", "phone": "13900001234", "time": "明天上午"}
    village = await agent.parse_message("东村3组18号的路灯坏了")
    assert {e["value"] for e in village["entities"] if e["entity"] == "address"} >= {"东村3组18号"}


async def test_traditional_characters_read_as_the_simplified_message_does(agent: Agent) -> None:
    traditional = await agent.parse_message("醫生什麼時候上門 我的腳腫了好幾天 住3號樓2單元501")
    simplified = await agent.parse_message("医生什么时候上门 我的脚肿了好几天 住3号楼2单元501")
    assert traditional["intent"] == simplified["intent"]
    assert traditional["intent"]["name"] == "medical"
    assert traditional["entities"] == simplified["entities"]
