"""Train and score candidate NLU pipelines on the fixed split (data/nlu → data/test).

    .venv/bin/python bench/nlu.py [--only NAME ...] [--epochs N] [--folds K] [--no-cv NAME ...]
                                  [--real PATH] [--show-cv-errors] [--blend-weights W ...]
                                  [--urgent-thresholds T ...]
    .venv/bin/python bench/nlu.py --model models/X.tar.gz [--real PATH] [--show-errors N]

Prints one row per pipeline: macro-F1, per-intent F1, urgent recall, misroute rate
(a confident wrong request category), fallback rate, chatter that would become a ticket,
training time, parse time per message and cold start; then the same scores from k-fold
cross validation over data/nlu. The "chosen" row is config.yml's own pipeline, as shipped.

`--real PATH` also scores each model on words nobody here wrote: a tab-separated file with
`text` and `label` columns (such as shared/nlu-real/dev.tsv, which is for evaluation only and
never goes into data/): heard rate (requests read as any request or as a fallback, so a person
sees them), silence kept (chatter read as chatter), accuracy, per-intent F1 and the confusion
matrix. `--model` scores an archive that is already trained instead of training candidates.
`--show-cv-errors` lists every training line that cross validation reads wrong (text, label,
read as, confidence), the lines to relabel, clarify or give siblings.
`--blend-weights` scores pipelines that blend a linear model with DIET
(`bot.rasa_blend`) at each given weight as well, from the same trainings: the weight plays no
part in training, so both opinions are recorded at every parse and averaged afterwards, then
read by the pipeline's own FallbackClassifier and urgent-first rule.
`--urgent-thresholds` reads the same recorded opinions with the urgent-first rule at each
given threshold (1 never promotes), with every blend weight given or config.yml's own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from itertools import product
from pathlib import Path
from typing import Any, NamedTuple

import yaml

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.conversation.engine import best_request  # noqa: E402
from bot.core.categories import REQUEST_INTENTS  # noqa: E402
from bot.ops.evaluation import load_examples, load_labelled_tsv, score  # noqa: E402

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


LOOKUP_FEATURES = {"name": "RegexFeaturizer", "use_lookup_tables": True, "use_regexes": False,
                   "use_word_boundaries": False}  # fmt: skip
CHARACTER_VECTORS = {"name": "bot.rasa_chars.CharacterVectorFeaturizer"}
# The blend as config.yml sets it up, so that a candidate with it differs from the shipped
# pipeline only in what it names.
BLEND = next(
    c for c in _config_pipeline() if c["name"].endswith("BlendedLogisticRegressionClassifier")
)
OPTIONAL = (LOOKUP_FEATURES["name"], CHARACTER_VECTORS["name"], BLEND["name"])


def config_with(
    *featurizers: dict[str, Any], blend: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """config.yml's pipeline with exactly these optional featurizers before its classifier,
    and a blended second classifier after it."""
    pipeline = [c for c in _config_pipeline() if c["name"] not in OPTIONAL]
    at = next(i for i, c in enumerate(pipeline) if c["name"].endswith("DIETClassifier"))
    return (
        pipeline[:at]
        + list(featurizers)
        + [pipeline[at]]
        + ([blend] if blend else [])
        + pipeline[at + 1 :]
    )


def with_epochs(pipeline: list[dict[str, Any]], epochs: int) -> list[dict[str, Any]]:
    return [{**c, "epochs": epochs} if "epochs" in c else c for c in pipeline]


def with_diet(pipeline: list[dict[str, Any]], **changes: Any) -> list[dict[str, Any]]:
    """The pipeline with its DIET classifier's options changed."""
    return [{**c, **changes} if c["name"].endswith("DIETClassifier") else c for c in pipeline]


COUNTS = "bot.rasa_counts.SentenceCountVectorsFeaturizer"
PINYIN = "bot.rasa_pinyin.PinyinCountVectorsFeaturizer"


def with_counts(analyzer: str, max_ngram: int) -> list[dict[str, Any]]:
    """config.yml's pipeline with its count featurizer of this analyzer reaching further."""
    return [
        {**c, "min_ngram": 1, "max_ngram": max_ngram}
        if c["name"] == COUNTS and c.get("analyzer", "word") == analyzer
        else c
        for c in _config_pipeline()
    ]


def with_token_counts() -> list[dict[str, Any]]:
    """config.yml's pipeline with Rasa's own count featurizers, which count per token too."""
    return [{**c, "name": "CountVectorsFeaturizer"} if c["name"] == COUNTS else c
            for c in _config_pipeline()]  # fmt: skip


def pipelines(epochs: int) -> dict[str, list[dict[str, Any]]]:
    light = {"number_of_transformer_layers": 0, "hidden_layers_sizes": {"text": [256]}}
    return {
        # config.yml as shipped (its own epochs; --epochs does not apply).
        "chosen": _config_pipeline(),
        # config.yml with or without lookup-table features and jieba's character vectors.
        "config-plain": config_with(),
        "config+lookups": config_with(LOOKUP_FEATURES),
        "config+charvectors": config_with(CHARACTER_VECTORS),
        "config+lookups+charvectors": config_with(LOOKUP_FEATURES, CHARACTER_VECTORS),
        "config+blend": config_with(blend=BLEND),
        "config+charvectors+blend": config_with(CHARACTER_VECTORS, blend=BLEND),
        "chosen-15-epochs": with_epochs(_config_pipeline(), 15),
        "chosen-10-epochs": with_epochs(_config_pipeline(), 10),
        "chosen-dense128-12-epochs": with_diet(
            with_epochs(_config_pipeline(), 12), dense_dimension={"text": 128}
        ),
        # Word order, cheaply: jieba word bigrams, or character n-grams up to 4.
        "chosen+word-bigrams": with_counts(analyzer="word", max_ngram=2),
        "chosen+char-4grams": with_counts(analyzer="char", max_ngram=4),
        # Without the sound of a message (bot/rasa_pinyin.py); with counts per token as well
        # as per message (bot/rasa_counts.py).
        "chosen-pinyin": [c for c in _config_pipeline() if c["name"] != PINYIN],
        "chosen+token-counts": with_token_counts(),
        # Word order through attention: one small transformer layer on DIET's features.
        "chosen+transformer-1x64": with_diet(
            _config_pipeline(), number_of_transformer_layers=1, transformer_size=64
        ),
        # DIET's hidden layer fully connected (Rasa keeps a random 20 % of its weights), and
        # a wider similarity space than Rasa's 20 dimensions.
        "chosen-fully-connected": with_diet(_config_pipeline(), connection_density=1.0),
        "chosen-embedding-64": with_diet(_config_pipeline(), embedding_dimension=64),
        "config+lookups+charvectors+blend": config_with(
            LOOKUP_FEATURES, CHARACTER_VECTORS, blend=BLEND
        ),
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


async def parse_all(
    model: Path, texts: list[str], opinions: list[Opinions] | None = None
) -> tuple[list[dict[str, Any]], float]:
    """Rasa's whole parse of each text (ranking and entities too); and seconds per parse.
    Given `opinions`, the two distributions the blend averaged for each text go into it."""
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    await agent.parse_message("你好")
    started = time.perf_counter()
    with recording_blends(opinions) if opinions is not None else nullcontext():
        parsed = [await agent.parse_message(text) for text in texts]
    return parsed, (time.perf_counter() - started) / max(len(texts), 1)


Opinions = tuple[dict[str, float], dict[str, float]]


@contextmanager
def recording_blends(into: list[Opinions]) -> Iterator[None]:
    """Every blend's two opinions (DIET's, the linear model's), in the order of the parses."""
    from bot import rasa_blend

    blend = rasa_blend.blend

    def recording(before: dict[str, float], own: dict[str, float], weight: float) -> Any:
        into.append((before, own))
        return blend(before, own, weight)

    rasa_blend.blend = recording
    try:
        yield
    finally:
        rasa_blend.blend = blend


class Reader(NamedTuple):
    """How recorded opinions are read afterwards: DIET's share in the blend, and the
    probability at which the urgent-first rule promotes urgent."""

    weight: float
    urgent_threshold: float


def readers(weights: list[float], thresholds: list[float]) -> list[Reader]:
    """Every pairing of the given weights and thresholds, config.yml's own standing in for
    the kind not given; none when neither is."""
    if not weights and not thresholds:
        return []
    config = {c["name"]: c for c in _config_pipeline()}
    own_weight = config["bot.rasa_blend.BlendedLogisticRegressionClassifier"]["weight"]
    own_threshold = config["bot.rasa_urgent.UrgentFirstClassifier"]["threshold"]
    return [
        Reader(w, t) for w, t in product(weights or [own_weight], thresholds or [own_threshold])
    ]


def reblended(opinions: list[Opinions], reader: Reader) -> list[tuple[str, float]]:
    """What the pipeline reads as `reader` says: the blend's average goes through config.yml's
    own FallbackClassifier and the urgent-first rule at the reader's threshold, as in a
    parse."""
    from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
    from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
    from rasa.shared.nlu.training_data.message import Message

    from bot.rasa_blend import blend
    from bot.rasa_urgent import UrgentFirstClassifier

    config = {c["name"]: c for c in _config_pipeline()}
    fallback = FallbackClassifier(
        {**FallbackClassifier.get_default_config(), **config["FallbackClassifier"]}
    )
    urgent_first = UrgentFirstClassifier(
        {
            **UrgentFirstClassifier.get_default_config(),
            **config[f"{UrgentFirstClassifier.__module__}.{UrgentFirstClassifier.__name__}"],
            "threshold": reader.urgent_threshold,
        }
    )
    messages = []
    for before, own in opinions:
        ranking = blend(before, own, reader.weight)
        messages.append(
            Message(data={TEXT: "", INTENT: dict(ranking[0]), INTENT_RANKING_KEY: ranking})
        )
    return readings([m.data for m in urgent_first.process(fallback.process(messages))])


def as_read_by(
    opinions: list[Opinions], parses: int, by: list[Reader] | None
) -> dict[Reader, list[tuple[str, float]]]:
    """Each reader's readings of the parses; none for a pipeline that does not blend (it
    recorded no opinions)."""
    if not by or len(opinions) != parses:
        return {}
    return {reader: reblended(opinions, reader) for reader in by}


SIGNAL_THRESHOLDS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)


def readings(parsed: list[dict[str, Any]]) -> list[tuple[str, float]]:
    return [(p["intent"]["name"], float(p["intent"]["confidence"])) for p in parsed]


def signal_table(gold: list[str], parsed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For messages read as chatter: how many real requests a possible-request threshold
    would still put before a member, and how much chatter it would put there too."""
    silent = [(g, best_request(p)[1]) for g, p in zip(gold, parsed, strict=True)
              if p["intent"]["name"] == "chitchat"]  # fmt: skip
    missed = [s for g, s in silent if g in REQUEST_INTENTS]
    chatter = [s for g, s in silent if g == "chitchat"]
    return [
        {
            "threshold": threshold,
            "requests_caught": sum(1 for s in missed if s >= threshold),
            "requests_silent": len(missed),
            "chatter_flagged": sum(1 for s in chatter if s >= threshold),
            "chatter_silent": len(chatter),
        }
        for threshold in SIGNAL_THRESHOLDS
    ]


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


Examples = list[tuple[str, str]]


def misread(examples: Examples, predicted: list[tuple[str, float]]) -> list[tuple[str, ...]]:
    return [
        (text, gold, name, f"{confidence:.2f}")
        for (text, gold), (name, confidence) in zip(examples, predicted, strict=True)
        if name != gold
    ]


def print_misread(name: str, where: str, rows: list[tuple[str, ...]], limit: int) -> None:
    print(f"\n{name}, misread on {where} (labelled → read as):\n")
    for text, gold, read_as, confidence in rows[:limit]:
        print(f"  {gold:>9} → {read_as:<12} {confidence}  {text}")


def score_model(
    model: Path, test: Examples, real: Examples | None, by: list[Reader] | None = None
) -> dict[str, Any]:
    """Scores on the held-out split and, given one, on a real set; parse time and cold start;
    and with readers, the split's and the real set's scores as each reads the parses."""
    texts = [t for t, _ in test] + [t for t, _ in real or []]
    opinions: list[Opinions] = []
    parsed, parse_s = asyncio.run(parse_all(model, texts, opinions if by else None))
    predicted = readings(parsed)
    split = score([g for _, g in test], predicted[: len(test)])
    split["misread"] = misread(test, predicted[: len(test)])
    split["signals"] = signal_table([g for _, g in test], parsed[: len(test)])
    if real:
        split["real"] = score([g for _, g in real], predicted[len(test) :])
        split["real"]["signals"] = signal_table([g for _, g in real], parsed[len(test) :])
        split["real"]["misread"] = misread(real, predicted[len(test) :])
    split["by_reader"] = {}
    for reader, read in as_read_by(opinions, len(texts), by).items():
        split["by_reader"][reader] = {
            "split": score([g for _, g in test], read[: len(test)]),
            "real": score([g for _, g in real], read[len(test) :]) if real else None,
        }
    return {**split, "parse_ms": parse_s * 1000, "cold_s": cold_start_s(model)}


def run_split(
    pipeline: list[dict[str, Any]],
    test: Examples,
    real: Examples | None,
    by: list[Reader] | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        model, train_s = train(pipeline, ROOT / "data" / "nlu", Path(tmp))
        return {**score_model(model, test, real, by), "train_s": train_s}


MEANS = ("macro_f1", "urgent_recall", "misroute", "fallback", "chatter_to_ticket")


FOLDS_SEED = 20261207


def run_folds(
    pipeline: list[dict[str, Any]], folds: int, by: list[Reader] | None = None
) -> dict[str, Any]:
    """k-fold cross validation over the training data; scores are averaged over folds. With
    readers, also the means as each reads the parses. Every pipeline of a run is scored on
    the same folds: Rasa draws them from numpy's global random state, seeded here."""
    import numpy as np
    from rasa.nlu.test import generate_folds
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(ROOT / "data" / "nlu"))
    fold_scores, errors = [], []
    by_reader: dict[Reader, list[dict[str, Any]]] = {}
    np.random.seed(FOLDS_SEED)
    for train_part, test_part in generate_folds(folds, data):
        with tempfile.TemporaryDirectory() as tmp:
            nlu = Path(tmp) / "nlu.yml"
            nlu.write_text(train_part.nlu_as_yaml())
            model, _ = train(pipeline, nlu, Path(tmp))
            texts = [m.get("text") for m in test_part.intent_examples]
            gold = [m.get("intent") for m in test_part.intent_examples]
            opinions: list[Opinions] = []
            parsed, _ = asyncio.run(parse_all(model, texts, opinions if by else None))
            predicted = readings(parsed)
        fold_scores.append(score(gold, predicted))
        errors += misread(list(zip(texts, gold, strict=True)), predicted)
        for reader, read in as_read_by(opinions, len(texts), by).items():
            by_reader.setdefault(reader, []).append(score(gold, read))
    means = _means(fold_scores)
    per_intent = {
        intent: sum(f["per_intent"][intent]["f1"] for f in fold_scores) / len(fold_scores)
        for intent in fold_scores[0]["per_intent"]
    }
    return {
        **means,
        "per_intent": per_intent,
        "misread": sorted(errors, key=lambda e: e[1:3]),
        "by_reader": {reader: _means(scores) for reader, scores in by_reader.items()},
    }


def _means(fold_scores: list[dict[str, Any]]) -> dict[str, float]:
    return {key: sum(f[key] for f in fold_scores) / len(fold_scores) for key in MEANS}


def print_real(rows: list[tuple[str, dict[str, Any], Any]], path: Path, show_errors: int) -> None:
    scored = [(name, split["real"]) for name, split, _ in rows]
    intents = list(scored[0][1]["per_intent"])
    print(f"\nReal text {path.name} ({scored[0][1]['examples']} messages):\n")
    head = ["model", "heard", "silence kept", "accuracy", "macro-F1", *intents, "fallback"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, r in scored:
        cells = [name, f"{r['heard']:.3f}", f"{r['silence_kept']:.3f}", f"{r['accuracy']:.3f}",
                 f"{r['macro_f1']:.3f}", *(f"{r['per_intent'][i]['f1']:.2f}" for i in intents),
                 f"{r['fallback']:.1%}"]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    for name, r in scored:
        confusion = r["confusion"]
        print(f"\n{name}, labelled (rows) × read as (columns):\n")
        print("| | " + " | ".join(confusion["columns"]) + " |")
        print("|" + "---|" * (len(confusion["columns"]) + 1))
        for label, counts in zip(confusion["rows"], confusion["matrix"], strict=True):
            print(f"| {label} | " + " | ".join(str(c) for c in counts) + " |")
        print_misread(name, path.name, r["misread"], show_errors)


def print_signals(rows: list[tuple[str, dict[str, Any], Any]], where: str, pick: Any) -> None:
    print(f"\nPossible requests on {where}: of the messages read as chatter, how many requests")
    print("and how much chatter reach a member when the best request intent is at the threshold:\n")
    print("| model | threshold | requests caught | chatter flagged |")
    print("|---|---|---|---|")
    for name, split, _ in rows:
        for r in pick(split):
            print(f"| {name} | {r['threshold']} | {r['requests_caught']}/{r['requests_silent']} "
                  f"| {r['chatter_flagged']}/{r['chatter_silent']} |")  # fmt: skip


def main() -> None:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="pipeline names to run")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds; 0 skips")
    parser.add_argument("--no-cv", nargs="*", default=[], help="pipelines scored on the split only")
    parser.add_argument("--real", type=Path, help="labelled real text (TSV: text, label)")
    parser.add_argument("--model", type=Path, help="score this trained model; train nothing")
    parser.add_argument("--show-errors", type=int, default=0, help="list N misread real lines")
    parser.add_argument("--show-cv-errors", action="store_true",
                        help="list every training line cross validation misreads")  # fmt: skip
    parser.add_argument("--blend-weights", nargs="*", type=float, default=[],
                        help="also score a blending pipeline at these weights")  # fmt: skip
    parser.add_argument("--urgent-thresholds", nargs="*", type=float, default=[],
                        help="also score a blending pipeline, urgent first at these")  # fmt: skip
    args = parser.parse_args()
    by = readers(args.blend_weights, args.urgent_thresholds)
    test = load_examples(ROOT / "data" / "test")
    real = load_labelled_tsv(args.real) if args.real else None
    intents = sorted({g for _, g in test})
    rows: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    if args.model:
        split = {
            **score_model(args.model, test, real, by),
            "train_s": float("nan"),
        }
        rows.append((args.model.name, split, None))
        args.folds = 0
    for name, pipeline in pipelines(args.epochs).items():
        if args.model or (args.only and name not in args.only):
            continue
        split = run_split(pipeline, test, real, by)
        cross = args.folds and name not in args.no_cv
        folds = run_folds(pipeline, args.folds, by) if cross else None
        rows.append((name, split, folds))
        print(f"done {name}: {split['train_s']:.0f} s", file=sys.stderr, flush=True)

    print(f"Held-out split data/test ({len(test)} messages):\n")
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
    for name, split, _ in rows if args.show_errors else []:
        print_misread(name, "data/test", split["misread"], args.show_errors)
    if real:
        print_real(rows, args.real, args.show_errors)
    print_signals(rows, "data/test", lambda split: split["signals"])
    if real:
        print_signals(rows, args.real.name, lambda split: split["real"]["signals"])
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
        for name, _, f in rows:
            if f is not None:
                print(
                    f"\n{name}, cross-validation F1 per intent: "
                    + ", ".join(f"{intent} {f1:.3f}" for intent, f1 in f["per_intent"].items())
                )
        for name, _, f in rows if args.show_cv_errors else []:
            if f is not None:
                print_misread(name, "cross validation", f["misread"], len(f["misread"]))
    print_readers(rows)


def print_readers(rows: list[tuple[str, dict[str, Any], Any]]) -> None:
    """One line per reader: the split and the real set from the one training on all of
    data/nlu, cross validation from the fold trainings."""
    lines = [(name, split, folds) for name, split, folds in rows if split["by_reader"]]
    if not lines:
        return
    print("\nBlend weight (DIET's share) and urgent-first threshold (the same trainings):\n")
    print("| pipeline | weight | urgent-first at | split macro-F1 | split urgent-R"
          " | real heard | real silence kept | real accuracy"
          " | CV macro-F1 | CV urgent-R | CV chat→ticket |")  # fmt: skip
    print("|" + "---|" * 11)
    for name, split, folds in lines:
        for reader, at in split["by_reader"].items():
            real = at["real"]
            cv = (folds or {}).get("by_reader", {}).get(reader)
            cells = [
                name,
                f"{reader.weight:g}",
                f"{reader.urgent_threshold:g}",
                f"{at['split']['macro_f1']:.3f}",
                f"{at['split']['urgent_recall']:.3f}",
                *(
                    (
                        f"{real['heard']:.3f}",
                        f"{real['silence_kept']:.3f}",
                        f"{real['accuracy']:.3f}",
                    )
                    if real
                    else ("–",) * 3
                ),
                *(
                    (
                        f"{cv['macro_f1']:.3f}",
                        f"{cv['urgent_recall']:.3f}",
                        f"{cv['chatter_to_ticket']:.1%}",
                    )  # fmt: skip
                    if cv
                    else ("–",) * 3
                ),
            ]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
