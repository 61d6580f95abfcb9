"""The model registry: which archives exist, how they scored, which one the service runs.

The active model lives in the database, so every worker of the service follows it
(`bot.ops.switch`). Activation passes a promotion gate; forcing past it and rolling back are
recorded as model events with who did it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import iso
from bot.db.models import utcnow
from bot.db.nlu_models import ModelEvent, NluModel
from bot.ops.evaluation import report_path, stored_report, summary

# The candidate may lose at most half a point of macro-F1 against the active model.
MAX_F1_DROP = 0.005
TRAINING_INPUTS = ("config.yml", "domain.yml", "data")
HELD_OUT_DIR = "test"
OLD_CHARTS = (".confusion.png", ".f1.png")


class UnknownModel(Exception):
    pass


@dataclass(frozen=True)
class Activation:
    """The outcome of asking for a model: active now, or refused with the gate's reasons
    (the refusal is recorded either way, so the caller commits before reporting it)."""

    model: NluModel
    refusals: list[str]
    active: bool


class NothingToRollBack(Exception):
    pass


@dataclass(frozen=True)
class TrainingData:
    """What a model was trained from: a hash of its inputs and examples per intent."""

    data_hash: str
    example_counts: dict[str, int]

    @classmethod
    def of(cls, project: Path) -> TrainingData:
        from rasa.shared.nlu.training_data.loading import load_data

        digest = hashlib.sha256()
        for file in _training_files(project):
            digest.update(file.relative_to(project).as_posix().encode())
            digest.update(file.read_bytes())
        counts: dict[str, int] = {}
        for example in load_data(str(project / "data" / "nlu")).intent_examples:
            counts[example.get("intent")] = counts.get(example.get("intent"), 0) + 1
        return cls(digest.hexdigest(), dict(sorted(counts.items())))

    def save_beside(self, model: Path) -> None:
        _sidecar(model).write_text(
            json.dumps({"data_hash": self.data_hash, "example_counts": self.example_counts})
        )

    @classmethod
    def beside(cls, model: Path) -> TrainingData:
        """What `ops train` recorded for the archive; unknown for models trained elsewhere."""
        path = _sidecar(model)
        if not path.exists():
            return cls("", {})
        stored = json.loads(path.read_text())
        return cls(stored["data_hash"], stored["example_counts"])


def _training_files(project: Path) -> list[Path]:
    files = []
    for name in TRAINING_INPUTS:
        path = project / name
        if path.is_dir():
            files += [f for f in sorted(path.rglob("*.yml")) if HELD_OUT_DIR not in f.parts]
        elif path.exists():
            files.append(path)
    return files


def _sidecar(model: Path) -> Path:
    return model.with_name(model.name.removesuffix(".tar.gz") + ".training.json")


def resolve_archive(models_dir: Path, name_or_path: str) -> Path:
    """A model given by path, archive name, or name without `.tar.gz`."""
    candidates = [
        Path(name_or_path),
        models_dir / name_or_path,
        models_dir / f"{name_or_path}.tar.gz",
    ]
    for path in candidates:
        if path.is_file() and path.name.endswith(".tar.gz"):
            return path.absolute()
    raise UnknownModel(f"no model archive {name_or_path!r} (looked in {models_dir}/)")


def archive_named(models_dir: Path, name: str) -> Path:
    """An archive of `models_dir` by its name (with or without `.tar.gz`); never a path, so a
    name from the web cannot reach a file anywhere else."""
    for archive in models_dir.glob("*.tar.gz"):
        if name in (archive.name, archive.name.removesuffix(".tar.gz")) and archive.is_file():
            return archive.absolute()
    raise UnknownModel(f"no model archive {name!r} in {models_dir}/")


async def register(session: AsyncSession, archive: Path, actor: str) -> NluModel:
    """The archive's registry row, created on first sight; refreshes stored metrics."""
    model = await session.scalar(select(NluModel).where(NluModel.name == archive.name))
    if model is None:
        data = TrainingData.beside(archive)
        model = NluModel(
            name=archive.name,
            path=str(archive.absolute()),
            created_at=datetime.fromtimestamp(archive.stat().st_mtime, UTC),
            data_hash=data.data_hash,
            example_counts=data.example_counts,
        )
        session.add(model)
        session.add(ModelEvent(model_name=archive.name, kind="registered", actor=actor))
    report = stored_report(archive)
    if report is not None:
        model.metrics = summary(report)
    await session.flush()
    return model


async def discover(session: AsyncSession, models_dir: Path) -> None:
    """Register archives put into models/ by other means (`make train`, a copy)."""
    known = set(await session.scalars(select(NluModel.name)))
    for archive in sorted(models_dir.glob("*.tar.gz")):
        if archive.name not in known:
            await register(session, archive, "在 models/ 里发现")


async def active_model(session: AsyncSession) -> NluModel | None:
    return await session.scalar(select(NluModel).where(NluModel.active.is_(True)))


async def list_models(session: AsyncSession) -> list[NluModel]:
    return list(await session.scalars(select(NluModel).order_by(NluModel.created_at.desc())))


def gate(candidate: dict[str, float], active: dict[str, float]) -> list[str]:
    """Why the candidate may not replace the active model; empty when it may."""
    reasons = []
    drop = active["macro_f1"] - candidate["macro_f1"]
    if drop > MAX_F1_DROP:
        reasons.append(
            f"macro-F1 {candidate['macro_f1']:.3f}，比正在用的模型（{active['macro_f1']:.3f}）"
            f"低 {drop * 100:.1f} 个百分点，最多只能低 {MAX_F1_DROP * 100:.1f}"
        )
    if candidate["urgent_recall"] < active["urgent_recall"]:
        reasons.append(
            f"紧急求助召回率 {candidate['urgent_recall']:.3f}，"
            f"低于正在用的模型（{active['urgent_recall']:.3f}）"
        )
    return reasons


def gate_for(candidate: NluModel, current: NluModel) -> list[str]:
    unscored = [m.name for m in (candidate, current) if not m.metrics]
    if unscored:
        return [f"还没在测试集上评估：{'、'.join(unscored)}"]
    return gate(candidate.metrics, current.metrics)


async def activate(
    session: AsyncSession,
    archive: Path,
    actor: str,
    *,
    force: bool = False,
    reason: str = "",
) -> Activation:
    """Make the archive the active model if it passes the gate (or is forced past it)."""
    candidate = await register(session, archive, actor)
    current = await active_model(session)
    refusals: list[str] = []
    if current is not None and current.id == candidate.id:
        return Activation(candidate, refusals, active=True)
    if current is not None:
        refusals = gate_for(candidate, current)
        if refusals and not force:
            session.add(
                ModelEvent(
                    model_name=candidate.name,
                    kind="refused",
                    actor=actor,
                    reason="; ".join(refusals),
                )
            )
            await session.flush()
            return Activation(candidate, refusals, active=False)
        if refusals:
            session.add(
                ModelEvent(
                    model_name=candidate.name,
                    kind="forced",
                    actor=actor,
                    reason="; ".join(refusals + ([f"why: {reason}"] if reason else [])),
                )
            )
    await _make_active(session, candidate, actor, "activated", reason)
    return Activation(candidate, refusals, active=True)


async def previous_model(session: AsyncSession) -> NluModel | None:
    """The model that was active before the current one and is still on disk: where a
    rollback goes."""
    current = await active_model(session)
    history = await session.scalars(
        select(ModelEvent.model_name)
        .where(ModelEvent.kind.in_(("activated", "rolled back")))
        .order_by(ModelEvent.id.desc())
    )
    for name in history:
        if current is not None and name == current.name:
            continue
        previous = await session.scalar(select(NluModel).where(NluModel.name == name))
        if previous is not None and Path(previous.path).is_file():
            return previous
    return None


async def rollback(session: AsyncSession, actor: str) -> NluModel:
    """Go back to the model that was active before the current one."""
    current = await active_model(session)
    previous = await previous_model(session)
    if previous is None:
        raise NothingToRollBack("no earlier model to go back to")
    came_from = f"原来用的是 {current.name}" if current is not None else ""
    await _make_active(session, previous, actor, "rolled back", came_from)
    return previous


def model_files(archive: Path) -> list[Path]:
    """The archive and what lies beside it: its training data summary, its report, and the
    PNG charts older versions drew."""
    stem = archive.name.removesuffix(".tar.gz")
    beside = [_sidecar(archive), report_path(archive)]
    return [archive, *beside, *(archive.with_name(stem + chart) for chart in OLD_CHARTS)]


async def prune(session: AsyncSession, models_dir: Path, keep: int, actor: str) -> list[str]:
    """Delete the archives of `models_dir` no one will go back to, with their files and
    registry rows (each a `pruned` event): all but the active model, the previous one
    (`previous_model`) and the `keep` newest. Archives elsewhere are never touched."""
    await discover(session, models_dir)
    models = await list_models(session)
    kept = {m.name for m in models[: max(keep, 1)]}
    kept |= {m.name for m in (await active_model(session), await previous_model(session)) if m}
    directory = models_dir.resolve()
    removed = []
    for model in models:
        archive = Path(model.path)
        if model.name in kept or model.active or archive.parent.resolve() != directory:
            continue
        for file in model_files(archive):
            file.unlink(missing_ok=True)
        await session.delete(model)
        session.add(ModelEvent(model_name=model.name, kind="pruned", actor=actor))
        removed.append(model.name)
    await session.flush()
    return removed


async def _make_active(
    session: AsyncSession, model: NluModel, actor: str, kind: str, reason: str
) -> None:
    await session.execute(update(NluModel).where(NluModel.active.is_(True)).values(active=False))
    model.active = True
    model.activated_at = utcnow()
    model.activated_by = actor
    session.add(ModelEvent(model_name=model.name, kind=kind, actor=actor, reason=reason))
    await session.flush()


def model_payload(model: NluModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "created_at": iso(model.created_at),
        "data_hash": model.data_hash[:12],
        "example_counts": model.example_counts,
        "examples": sum(model.example_counts.values()),
        "metrics": model.metrics,
        "active": model.active,
        "activated_at": iso(model.activated_at),
        "activated_by": model.activated_by,
    }
