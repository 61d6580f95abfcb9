"""Train and score candidate NLU pipelines on the fixed split (data/nlu → data/test).

    .venv/bin/python bench/nlu.py [--only NAME ...] [--epochs N]

Prints one row per pipeline: macro-F1, per-intent F1, urgent recall, misroute rate
(a confident wrong request category), fallback rate, chatter that would become a ticket,
training time and parse time per message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.handoff.categories import REQUEST_INTENTS  # noqa: E402

TOKENIZE = [{"name": "JiebaTokenizer"}]
WORDS = [{"name": "CountVectorsFeaturizer"}]
CHARS = [{"name": "CountVectorsFeaturizer", "analyzer": "char", "min_ngram": 1, "max_ngram": 3}]
FALLBACK = [{"name": "FallbackClassifier", "threshold": 0.45, "ambiguity_threshold": 0.05}]


def diet(epochs: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": "DIETClassifier",
            "epochs": epochs,
            "entity_recognition": False,
            "constrain_similarities": True,
            "random_seed": 42,
            **extra,
        }
    ]


def pipelines(epochs: int) -> dict[str, list[dict[str, Any]]]:
    light = {"number_of_transformer_layers": 0, "hidden_layers_sizes": {"text": [256]}}
    return {
        "diet-default-words": TOKENIZE + WORDS + diet(epochs),
        "diet-words+chars": TOKENIZE + WORDS + CHARS + diet(epochs),
        "diet-light-words+chars": TOKENIZE + WORDS + CHARS + diet(epochs, **light),
        "logreg-words+chars": TOKENIZE
        + WORDS
        + CHARS
        + [{"name": "LogisticRegressionClassifier", "max_iter": 1000}],
    }


def load_examples(path: Path) -> list[tuple[str, str]]:
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [(m.get("text"), m.get("intent")) for m in data.intent_examples]


def train(pipeline: list[dict[str, Any]], out: Path) -> tuple[Path, float]:
    from rasa.model_training import train_nlu

    config = out / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {"recipe": "default.v1", "language": "zh", "pipeline": pipeline + FALLBACK},
            allow_unicode=True,
        )
    )
    started = time.perf_counter()
    model = train_nlu(
        str(config), str(ROOT / "data" / "nlu"), str(out), domain=str(ROOT / "domain.yml")
    )
    return Path(model), time.perf_counter() - started


async def predict(model: Path, texts: list[str]) -> tuple[list[tuple[str, float]], float]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    await agent.parse_message("你好")
    started = time.perf_counter()
    results = []
    for text in texts:
        parsed = await agent.parse_message(text)
        results.append((parsed["intent"]["name"], parsed["intent"]["confidence"]))
    return results, (time.perf_counter() - started) / len(texts)


def score(gold: list[str], predicted: list[tuple[str, float]]) -> dict[str, Any]:
    from sklearn.metrics import f1_score, recall_score

    labels = sorted(set(gold))
    names = [p for p, _ in predicted]
    per_intent = f1_score(gold, names, labels=labels, average=None, zero_division=0)
    requests = [i for i, g in enumerate(gold) if g in REQUEST_INTENTS]
    misroutes = sum(1 for i in requests if names[i] in REQUEST_INTENTS and names[i] != gold[i])
    chatter = [i for i, g in enumerate(gold) if g == "chitchat"]
    return {
        "macro_f1": f1_score(gold, names, labels=labels, average="macro", zero_division=0),
        "per_intent": dict(zip(labels, per_intent, strict=True)),
        "urgent_recall": recall_score(
            gold, names, labels=["urgent"], average="macro", zero_division=0
        ),
        "misroute": misroutes / len(requests),
        "fallback": names.count("nlu_fallback") / len(names),
        "chatter_to_ticket": sum(1 for i in chatter if names[i] != "chitchat") / len(chatter),
    }


def main() -> None:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="pipeline names to run")
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    test = load_examples(ROOT / "data" / "test")
    texts, gold = [t for t, _ in test], [g for _, g in test]
    rows = []
    for name, pipeline in pipelines(args.epochs).items():
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            model, train_s = train(pipeline, Path(tmp))
            predicted, parse_s = asyncio.run(predict(model, texts))
        rows.append((name, score(gold, predicted), train_s, parse_s))
        print(f"done {name}: {train_s:.0f} s", file=sys.stderr, flush=True)
    intents = sorted(set(gold))
    head = [
        "pipeline",
        "macro-F1",
        *intents,
        "urgent-R",
        "misroute",
        "fallback",
        "chat→ticket",
        "train s",
        "parse ms",
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, s, train_s, parse_s in rows:
        cells = [
            name,
            f"{s['macro_f1']:.3f}",
            *(f"{s['per_intent'][i]:.2f}" for i in intents),
            f"{s['urgent_recall']:.3f}",
            f"{s['misroute']:.1%}",
            f"{s['fallback']:.1%}",
            f"{s['chatter_to_ticket']:.1%}",
            f"{train_s:.0f}",
            f"{parse_s * 1000:.1f}",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
