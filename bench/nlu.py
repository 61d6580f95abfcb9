"""Train and score candidate NLU pipelines on the fixed split (data/nlu → data/test).

    .venv/bin/python bench/nlu.py [--only NAME ...] [--epochs N] [--folds K] [--no-cv NAME ...]

Prints one row per pipeline: macro-F1, per-intent F1, urgent recall, misroute rate
(a confident wrong request category), fallback rate, chatter that would become a ticket,
training time, parse time per message and cold start; then the same scores from k-fold
cross validation over data/nlu. The "chosen" row is config.yml's own pipeline, as shipped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
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

from bot.ops.evaluation import load_examples, score  # noqa: E402
from bot.ops.evaluation import predict as predict_with  # noqa: E402

TOKENIZE = [{"name": "JiebaTokenizer"}]
WORDS = [{"name": "CountVectorsFeaturizer"}]
CHARS = [{"name": "CountVectorsFeaturizer", "analyzer": "char", "min_ngram": 1, "max_ngram": 3}]
COLD_START_RUNS = 3


def _config_pipeline() -> list[dict[str, Any]]:
    return list(yaml.safe_load((ROOT / "config.yml").read_text())["pipeline"])


# Every candidate ends in config.yml's FallbackClassifier, so fallback figures compare.
FALLBACK = [c for c in _config_pipeline() if c["name"] == "FallbackClassifier"]


def _with_fallback(pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    has_fallback = any(c["name"] == "FallbackClassifier" for c in pipeline)
    return pipeline if has_fallback else pipeline + FALLBACK


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
        # config.yml as shipped (its own epochs; --epochs does not apply).
        "chosen": _config_pipeline(),
        # Rasa's default DIET: two transformer layers of 256 units, word counts only.
        "diet-default-words": TOKENIZE + WORDS + diet(epochs),
        "diet-words+chars": TOKENIZE + WORDS + CHARS + diet(epochs),
        "diet-light-words+chars": TOKENIZE + WORDS + CHARS + diet(epochs, **light),
        "logreg-words+chars": TOKENIZE
        + WORDS
        + CHARS
        + [{"name": "LogisticRegressionClassifier", "max_iter": 1000}],
    }


def train(pipeline: list[dict[str, Any]], nlu: Path, out: Path) -> tuple[Path, float]:
    from rasa.model_training import train_nlu

    config = out / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {"recipe": "default.v1", "language": "zh", "pipeline": _with_fallback(pipeline)},
            allow_unicode=True,
        )
    )
    started = time.perf_counter()
    model = train_nlu(str(config), str(nlu), str(out), domain=str(ROOT / "domain.yml"))
    return Path(model), time.perf_counter() - started


async def predict(model: Path, texts: list[str]) -> tuple[list[tuple[str, float]], float]:
    from rasa.core.agent import Agent

    return await predict_with(Agent.load(str(model)), texts)


LOAD_AND_PARSE = """
import asyncio, time
started = time.perf_counter()
from rasa.core.agent import Agent
agent = Agent.load({model!r})
asyncio.run(agent.parse_message("我家水管漏了"))
print(time.perf_counter() - started)
"""


def cold_start_s(model: Path, runs: int = COLD_START_RUNS) -> float:
    """Model loading and the first parse in a fresh process, imports included.

    The median of `runs` fresh processes, since other jobs on a small machine make any
    single run noisy.
    """
    code = LOAD_AND_PARSE.format(model=str(model))
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return sorted(times)[len(times) // 2]


def run_split(pipeline: list[dict[str, Any]], texts: list[str], gold: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        model, train_s = train(pipeline, ROOT / "data" / "nlu", Path(tmp))
        predicted, parse_s = asyncio.run(predict(model, texts))
        cold_s = cold_start_s(model)
    return {
        **score(gold, predicted),
        "train_s": train_s,
        "parse_ms": parse_s * 1000,
        "cold_s": cold_s,
    }


def run_folds(pipeline: list[dict[str, Any]], folds: int) -> dict[str, Any]:
    """k-fold cross validation over the training data; scores are averaged over folds."""
    from rasa.nlu.test import generate_folds
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(ROOT / "data" / "nlu"))
    fold_scores = []
    for train_part, test_part in generate_folds(folds, data):
        with tempfile.TemporaryDirectory() as tmp:
            nlu = Path(tmp) / "nlu.yml"
            nlu.write_text(train_part.nlu_as_yaml())
            model, _ = train(pipeline, nlu, Path(tmp))
            texts = [m.get("text") for m in test_part.intent_examples]
            gold = [m.get("intent") for m in test_part.intent_examples]
            predicted, _ = asyncio.run(predict(model, texts))
        fold_scores.append(score(gold, predicted))
    return {
        key: sum(f[key] for f in fold_scores) / len(fold_scores)
        for key in ("macro_f1", "urgent_recall", "misroute", "fallback", "chatter_to_ticket")
    }


def main() -> None:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="pipeline names to run")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds; 0 skips")
    parser.add_argument("--no-cv", nargs="*", default=[], help="pipelines scored on the split only")
    args = parser.parse_args()
    test = load_examples(ROOT / "data" / "test")
    texts, gold = [t for t, _ in test], [g for _, g in test]
    intents = sorted(set(gold))
    rows = []
    for name, pipeline in pipelines(args.epochs).items():
        if args.only and name not in args.only:
            continue
        split = run_split(pipeline, texts, gold)
        folds = run_folds(pipeline, args.folds) if args.folds and name not in args.no_cv else None
        rows.append((name, split, folds))
        print(f"done {name}: {split['train_s']:.0f} s", file=sys.stderr, flush=True)

    print(f"Held-out split data/test ({len(texts)} messages):\n")
    head = ["pipeline", "macro-F1", *intents, "urgent-R", "misroute", "fallback",
            "chat→ticket", "train s", "parse ms", "cold start s"]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, s, _ in rows:
        cells = [
            name,
            f"{s['macro_f1']:.3f}",
            *(f"{s['per_intent'][i]['f1']:.2f}" for i in intents),
            f"{s['urgent_recall']:.3f}",
            f"{s['misroute']:.1%}",
            f"{s['fallback']:.1%}",
            f"{s['chatter_to_ticket']:.1%}",
            f"{s['train_s']:.0f}",
            f"{s['parse_ms']:.1f}",
            f"{s['cold_s']:.1f}",
        ]
        print("| " + " | ".join(cells) + " |")
    if args.folds:
        print(f"\n{args.folds}-fold cross validation on data/nlu (means over folds):\n")
        print("| pipeline | macro-F1 | urgent-R | misroute | fallback | chat→ticket |")
        print("|---|---|---|---|---|---|")
        for name, _, f in rows:
            if f is None:
                print(f"| {name} | – | – | – | – | – |")
                continue
            print(
                f"| {name} | {f['macro_f1']:.3f} | {f['urgent_recall']:.3f} | {f['misroute']:.1%}"
                f" | {f['fallback']:.1%} | {f['chatter_to_ticket']:.1%} |"
            )


if __name__ == "__main__":
    main()
