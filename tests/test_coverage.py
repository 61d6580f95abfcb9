"""data/coverage.yml: every need and every way of writing has the examples it asks for.

Run `pytest tests/test_coverage.py -q` to see what is short: the failure lists each need or
register with how many examples it has and how many it asks for.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from bot.ops.evaluation import load_examples

ROOT = Path(__file__).resolve().parents[1]
COVERAGE = yaml.safe_load((ROOT / "data" / "coverage.yml").read_text())
SPLITS = {"nlu": ROOT / "data" / "nlu", "test": ROOT / "data" / "test"}


def examples(folder: Path) -> dict[str, list[str]]:
    """Each intent's example texts in a folder of Rasa NLU files, annotations stripped."""
    found: dict[str, list[str]] = defaultdict(list)
    for text, intent in load_examples(folder):
        found[intent].append(text)
    return found


EXAMPLES = {split: examples(folder) for split, folder in SPLITS.items()}


def shortfalls(intent: str) -> list[str]:
    wanted = [(f"need {name}", need) for name, need in COVERAGE["intents"][intent].items()]
    wanted += [(f"register {name}", reg) for name, reg in COVERAGE["registers"].items()]
    missing = []
    for label, spec in wanted:
        pattern = re.compile(spec["pattern"])
        for split in SPLITS:
            have = sum(1 for text in EXAMPLES[split][intent] if pattern.search(text))
            if have < spec[split]:
                missing.append(f"{label}: {have}/{spec[split]} in data/{split}")
    return missing


@pytest.mark.parametrize("intent", sorted(COVERAGE["intents"]))
def test_every_need_and_register_has_its_examples(intent: str) -> None:
    missing = shortfalls(intent)
    assert not missing, "\n".join(missing)


def test_every_intent_in_the_domain_has_a_map() -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    assert sorted(COVERAGE["intents"]) == sorted(domain["intents"])


def test_the_counter_sees_a_shortfall() -> None:
    """A need asking for more examples than exist is reported, naming the split."""
    need = COVERAGE["intents"]["repair"]["lifts"]
    lifts = sum(1 for t in EXAMPLES["test"]["repair"] if re.search(need["pattern"], t))
    COVERAGE["intents"]["repair"]["lifts"] = {**need, "test": lifts + 1}
    try:
        assert f"need lifts: {lifts}/{lifts + 1} in data/test" in shortfalls("repair")
    finally:
        COVERAGE["intents"]["repair"]["lifts"] = need


def bigrams(text: str) -> set[str]:
    chars = [c for c in text if not c.isspace()]
    return {a + b for a, b in itertools.pairwise(chars)}


MIN_BIGRAMS = 6


def near_copies(threshold: float = 0.5) -> list[str]:
    """Held-out lines whose character bigrams overlap a training line's by `threshold` or more
    (Jaccard): a held-out line must be written anew, not varied from a training line. Lines
    of a few characters ("好的", "门锁坏了") are left out: residents say them alike."""
    index: dict[str, set[int]] = defaultdict(set)
    training = [bigrams(t) for texts in EXAMPLES["nlu"].values() for t in texts]
    for i, grams in enumerate(training):
        for gram in grams:
            index[gram].add(i)
    found = []
    for texts in EXAMPLES["test"].values():
        for text in texts:
            grams = bigrams(text)
            if len(grams) < MIN_BIGRAMS:
                continue
            candidates = set().union(*(index[g] for g in grams))
            for i in candidates:
                overlap = len(grams & training[i]) / len(grams | training[i])
                if overlap >= threshold:
                    found.append(text)
                    break
    return found


def test_held_out_lines_are_not_near_copies_of_training_lines() -> None:
    copies = near_copies()
    assert not copies, "\n".join(copies)
