"""`python -m bot ops export | train | evaluate MODEL | activate MODEL | rollback | models`."""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import sessionmaker

from bot.db.engine import create_engine, create_session_factory
from bot.ops.evaluation import evaluate, report_path
from bot.ops.export import NoFileForIntent, export_accepted
from bot.ops.registry import (
    NothingToRollBack,
    UnknownModel,
    activate,
    active_model,
    discover,
    list_models,
    prune,
    register,
    resolve_archive,
    rollback,
)
from bot.ops.runs import RunLog, print_now
from bot.ops.training import TrainingFailed, train_candidate
from bot.settings import Settings


class OpsError(Exception):
    """Printed without a traceback; the command exits non-zero."""


def add_parser(sub: Any) -> None:
    ops = sub.add_parser("ops", help="review corrections, train, evaluate and switch models")
    osub = ops.add_subparsers(dest="action", required=True)
    by = argparse.ArgumentParser(add_help=False)
    by.add_argument("--by", default=_user(), help="who does this (recorded in the audit)")
    project = argparse.ArgumentParser(add_help=False)
    project.add_argument(
        "--project", type=Path, default=Path("."), help="holds config.yml, domain.yml, data/"
    )
    osub.add_parser("export", parents=[project], help="accepted review items → data/nlu/")
    train = osub.add_parser("train", parents=[project, by], help="train a candidate model")
    train.add_argument(
        "--export", action="store_true", help="first export the accepted review items"
    )
    train.add_argument("--no-evaluate", action="store_true", help="skip scoring it afterwards")
    evaluate_ = osub.add_parser("evaluate", parents=[project, by], help="score on data/test/")
    evaluate_.add_argument("model", help="archive name in models/ or a path")
    act = osub.add_parser("activate", parents=[project, by], help="switch the service to MODEL")
    act.add_argument("model")
    act.add_argument("--force", action="store_true", help="past the promotion gate (audited)")
    act.add_argument("--reason", default="", help="why it is forced")
    osub.add_parser("rollback", parents=[by], help="back to the previously active model")
    osub.add_parser("models", help="list models")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


@asynccontextmanager
async def _sessions(settings: Settings) -> AsyncIterator[sessionmaker]:
    engine = create_engine(settings.database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


# The commands that train or score a model: each takes every core it can get.
MODEL_WORK = ("train", "evaluate", "activate")


def lower_priority(niceness: int) -> None:
    """This process and the `rasa train` it starts yield the CPU to the service, so that
    residents' answers are not slowed while a model trains on the same cores."""
    os.nice(max(0, niceness - os.nice(0)))


async def run(args: argparse.Namespace, settings: Settings) -> str:
    if args.action in MODEL_WORK:
        lower_priority(settings.training_nice)
    async with _sessions(settings) as sessions:
        try:
            return await _run(args, settings, sessions)
        except (UnknownModel, NothingToRollBack, TrainingFailed, NoFileForIntent) as e:
            raise OpsError(str(e)) from e


async def _run(args: argparse.Namespace, settings: Settings, sessions: sessionmaker) -> str:
    if args.action == "export":
        async with sessions() as session, session.begin():
            return (await export_accepted(session, args.project)).describe()
    if args.action == "train":
        archive = await train_from_corrections(
            sessions,
            settings,
            args.project,
            args.by,
            export=args.export,
            evaluate=not args.no_evaluate,
        )
        return f"next: python -m bot ops activate {archive.name}"
    if args.action == "evaluate":
        archive = resolve_archive(settings.models_dir, args.model)
        await _evaluate(sessions, archive, args.project, args.by)
        return ""
    if args.action == "activate":
        return await _activate(args, settings, sessions)
    if args.action == "rollback":
        async with sessions() as session, session.begin():
            model = await rollback(session, args.by)
        return f"rolled back to {model.name}; running services switch within seconds"
    return await _list(sessions, settings.models_dir)


async def train_from_corrections(
    sessions: sessionmaker,
    settings: Settings,
    project: Path,
    actor: str,
    *,
    export: bool,
    evaluate: bool,
    on_line: Callable[[str], None] = print_now,
) -> Path:
    """One run, step by step: the accepted review items into data/nlu/ (when `export`), a
    candidate trained from the data, and its scores on the held-out split (when `evaluate`);
    then old archives are pruned (`registry.prune`). `/ops/models` starts it with both; each
    step's progress is on the run."""
    steps = [*(["export"] if export else []), "train", *(["evaluate"] if evaluate else [])]
    async with RunLog.running(sessions, "train", actor, steps, on_line) as log:
        if export:
            async with log.step("export") as detail:
                async with sessions() as session, session.begin():
                    exported = await export_accepted(session, project)
                log.line(exported.describe())
                detail.update(written=dict(exported.written), already_known=exported.already_known)
        async with log.step("train"):
            archive = await train_candidate(log, sessions, project, settings.models_dir, actor)
        if evaluate:
            async with log.step("evaluate"):
                await _score(log, sessions, archive, project, actor)
        async with sessions() as session, session.begin():
            pruned = await prune(session, settings.models_dir, settings.keep_models, actor)
        if pruned:
            log.line(f"pruned {len(pruned)} old model(s): {', '.join(pruned)}")
    return archive


async def _evaluate(sessions: sessionmaker, archive: Path, project: Path, actor: str) -> None:
    """Score the archive in a run of its own, printing the report and keeping it for
    `/ops/models`."""
    async with RunLog.running(sessions, "evaluate", actor, ["evaluate"]) as log:
        async with log.step("evaluate"):
            await _score(log, sessions, archive, project, actor)


async def _score(
    log: RunLog, sessions: sessionmaker, archive: Path, project: Path, actor: str
) -> None:
    log.line(f"evaluating {archive.name} on {project / 'data' / 'test'}")
    report = await evaluate(archive, project / "data" / "test")
    async with sessions() as session, session.begin():
        await register(session, archive, actor)
    for line in describe_report(report, archive).splitlines():
        log.line(line)
    log.model_name = archive.name


def describe_report(report: dict[str, Any], archive: Path) -> str:
    lines = [
        f"{archive.name} on {report['examples']} held-out examples:",
        f"  macro-F1 {report['macro_f1']:.3f}   urgent recall {report['urgent_recall']:.3f}"
        f"   misroute {report['misroute']:.1%}   fallback {report['fallback']:.1%}"
        f"   chat→ticket {report['chatter_to_ticket']:.1%}   parse {report['parse_ms']:.1f} ms",
        "  intent       precision  recall  f1     n",
    ]
    for intent, s in report["per_intent"].items():
        lines.append(
            f"  {intent:<12} {s['precision']:.3f}      {s['recall']:.3f}   {s['f1']:.3f}  "
            f"{s['support']}"
        )
    lines.append(f"  report: {report_path(archive)}")
    return "\n".join(lines)


async def _activate(args: argparse.Namespace, settings: Settings, sessions: sessionmaker) -> str:
    archive = resolve_archive(settings.models_dir, args.model)
    async with sessions() as session:
        current = await active_model(session)
        candidate = await register(session, archive, args.by)
        # The gate compares reports on the held-out split; score whichever side lacks one.
        compared = (candidate, current) if current is not None else ()
        unscored = [Path(m.path) for m in compared if not m.metrics and Path(m.path).is_file()]
        await session.commit()
    for path in unscored:
        await _evaluate(sessions, path, args.project, args.by)
    async with sessions() as session, session.begin():
        outcome = await activate(session, archive, args.by, force=args.force, reason=args.reason)
    if not outcome.active:
        raise OpsError(
            "\n".join(["the promotion gate refused it:", *outcome.refusals])
            + "\n(--force --reason '...' activates it anyway; that is recorded)"
        )
    forced = ["forced past the gate: " + "; ".join(outcome.refusals)] if outcome.refusals else []
    return "\n".join([*forced, f"activated {archive.name}; running services switch within seconds"])


async def _list(sessions: sessionmaker, models_dir: Path) -> str:
    async with sessions() as session, session.begin():
        await discover(session, models_dir)
        models = await list_models(session)
    lines = []
    for m in models:
        metrics = m.metrics or {}
        scored = (
            f"F1 {metrics['macro_f1']:.3f} urgent-R {metrics['urgent_recall']:.3f}"
            if metrics
            else "not evaluated"
        )
        who = f"activated by {m.activated_by}" if m.activated_by else ""
        lines.append(
            f"{'*' if m.active else ' '} {m.name}\t{m.created_at:%Y-%m-%d %H:%M}\t"
            f"data {m.data_hash[:12] or '?'}\t{sum(m.example_counts.values())} examples\t"
            f"{scored}\t{who}"
        )
    return "\n".join(lines) or "no models registered yet"
