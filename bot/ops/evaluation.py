"""Scoring a model on the held-out split: the figures the promotion gate and the model list use.

A report is stored next to its model archive in models/ as `<name>.report.json`; its charts
are drawn from it when asked for (`bot.ops.charts`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bot.core.categories import REQUEST_INTENTS
from bot.core.handoff import FALLBACK_INTENT

# The summary kept in the model registry and shown in the model list.
SUMMARY_KEYS = ("macro_f1", "urgent_recall", "misroute", "fallback", "chatter_to_ticket")


def load_examples(path: Path) -> list[tuple[str, str]]:
    """(text, intent) pairs from Rasa NLU files; entity annotations are stripped."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [(m.get("text"), m.get("intent")) for m in data.intent_examples]


async def predict(agent: Any, texts: list[str]) -> tuple[list[tuple[str, float]], float]:
    """Each text's intent and confidence from a loaded Rasa agent; and seconds per parse."""
    await agent.parse_message("你好")
    started = time.perf_counter()
    results = []
    for text in texts:
        parsed = await agent.parse_message(text)
        results.append((parsed["intent"]["name"], float(parsed["intent"]["confidence"])))
    return results, (time.perf_counter() - started) / max(len(texts), 1)


def load_labelled_tsv(path: Path) -> list[tuple[str, str]]:
    """(text, intent) pairs from a tab-separated file whose header names `text` and `label`."""
    import csv

    with path.open(encoding="utf-8", newline="") as file:
        rows = csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(row["text"], row["label"]) for row in rows]


def score(gold: list[str], predicted: list[tuple[str, float]]) -> dict[str, Any]:
    """Macro-F1 and per-intent precision/recall/F1 over the gold intents, plus what matters
    to residents: urgent recall, misroutes (a request sent to the wrong kind of helper; a
    fallback goes to a person as 未分类 and is not one), chatter that becomes a ticket, the
    share of requests heard (read as any request or as a fallback: a person sees them) and
    of chatter left in silence."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = sorted(set(gold))
    names = [name for name, _ in predicted]
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, names, labels=labels, average=None, zero_division=0
    )
    per_intent = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    columns = labels + sorted({n for n in names if n not in labels})
    requests = [i for i, g in enumerate(gold) if g in REQUEST_INTENTS]
    misroutes = sum(1 for i in requests if names[i] in REQUEST_INTENTS and names[i] != gold[i])
    chatter = [i for i, g in enumerate(gold) if g == "chitchat"]
    heard = sum(1 for i in requests if names[i] != "chitchat")
    return {
        "examples": len(gold),
        "accuracy": sum(1 for g, n in zip(gold, names, strict=True) if g == n) / len(gold)
        if gold
        else 0.0,
        "heard": heard / len(requests) if requests else 0.0,
        "silence_kept": (
            sum(1 for i in chatter if names[i] == "chitchat") / len(chatter) if chatter else 0.0
        ),
        "macro_f1": float(sum(f1) / len(labels)),
        "per_intent": per_intent,
        "urgent_recall": per_intent.get("urgent", {}).get("recall", 0.0),
        "misroute": misroutes / len(requests) if requests else 0.0,
        "fallback": names.count(FALLBACK_INTENT) / len(names) if names else 0.0,
        "chatter_to_ticket": (
            sum(1 for i in chatter if names[i] != "chitchat") / len(chatter) if chatter else 0.0
        ),
        "confusion": {
            "rows": labels,
            "columns": columns,
            "matrix": confusion_matrix(gold, names, labels=columns)[: len(labels)].tolist(),
        },
    }


def summary(report: dict[str, Any]) -> dict[str, float]:
    return {key: round(float(report[key]), 4) for key in SUMMARY_KEYS}


def report_path(model: Path) -> Path:
    return model.with_name(model.name.removesuffix(".tar.gz") + ".report.json")


async def evaluate(model: Path, test_dir: Path) -> dict[str, Any]:
    """Load the model, score it on `test_dir`, and store the report beside it."""
    import asyncio

    from rasa.core.agent import Agent

    examples = load_examples(test_dir)
    agent = await asyncio.to_thread(Agent.load, str(model))
    predicted, parse_s = await predict(agent, [text for text, _ in examples])
    report = score([intent for _, intent in examples], predicted)
    report.update(model=model.name, test_data=str(test_dir), parse_ms=round(parse_s * 1000, 2))
    report_path(model).write_text(json.dumps(report, ensure_ascii=False, indent=2))
    return report


def stored_report(model: Path) -> dict[str, Any] | None:
    path = report_path(model)
    return json.loads(path.read_text()) if path.exists() else None
