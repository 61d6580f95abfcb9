"""`python -m bot ops export`: accepted review decisions become training examples.

Each example is appended to its intent's own block in data/nlu/, in Rasa's YAML format, so
`rasa data validate` keeps passing and the files stay readable. Examples already present in
the training data or in the held-out split are left out (the split must stay unseen).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import utcnow
from bot.db.nlu_models import Classification
from bot.ops.evaluation import load_examples
from bot.privacy import mask_text

_INTENT_LINE = re.compile(r"^- intent:\s*(\S+)\s*$")
_SPACES = re.compile(r"\s+")


class NoFileForIntent(Exception):
    pass


@dataclass
class ExportResult:
    written: Counter[str] = field(default_factory=Counter)
    already_known: int = 0

    def describe(self) -> str:
        parts = [f"{intent} +{n}" for intent, n in sorted(self.written.items())]
        added = ", ".join(parts) if parts else "nothing new"
        return f"exported: {added}; {self.already_known} already in the data"


def example_text(text: str) -> str:
    """One line of training data: masked, on one line, and never read as an entity mark-up."""
    line = _SPACES.sub(" ", mask_text(text)).strip()
    return line.replace("](", "] (").replace("]{", "] {")


def _normalised(text: str) -> str:
    return _SPACES.sub("", text).lower()


def intent_files(nlu_dir: Path) -> dict[str, Path]:
    files = {}
    for path in sorted(nlu_dir.glob("*.yml")):
        for block in (yaml.safe_load(path.read_text()) or {}).get("nlu", []):
            if "intent" in block:
                files[block["intent"]] = path
    return files


def append_examples(path: Path, intent: str, texts: list[str]) -> None:
    """Add lines at the end of the intent's `examples: |` block, indented like its others."""
    lines = path.read_text().splitlines()
    start = _intent_line(lines, intent)
    last, indent = start, "    "
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if stripped.startswith("- ") and lines[i].startswith("  "):
            last, indent = i, lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        elif stripped and not lines[i].startswith("  "):
            break
    lines[last + 1 : last + 1] = [f"{indent}- {text}" for text in texts]
    path.write_text("\n".join(lines) + "\n")


def _intent_line(lines: list[str], intent: str) -> int:
    for i, line in enumerate(lines):
        match = _INTENT_LINE.match(line.strip())
        if match and match.group(1) == intent:
            return i
    raise NoFileForIntent(f"no block for intent {intent!r}")


# Accepted by an operator, not yet in data/nlu/.
_WAITING = (Classification.review == "accepted", Classification.exported_at.is_(None))


async def waiting_count(session: AsyncSession) -> int:
    """Accepted review items the next export adds to the training data."""
    query = select(func.count()).select_from(Classification).where(*_WAITING)
    return await session.scalar(query) or 0


async def export_accepted(session: AsyncSession, project: Path) -> ExportResult:
    nlu_dir = project / "data" / "nlu"
    files = intent_files(nlu_dir)
    known = {_normalised(text) for text, _ in load_examples(nlu_dir)}
    known |= {_normalised(text) for text, _ in load_examples(project / "data" / "test")}
    rows = await session.scalars(
        select(Classification).where(*_WAITING).order_by(Classification.id)
    )
    result = ExportResult()
    new: dict[str, list[str]] = {}
    for row in rows:
        if row.label not in files:
            raise NoFileForIntent(f"no file in {nlu_dir} holds intent {row.label!r}")
        text = example_text(row.text)
        if _normalised(text) in known:
            result.already_known += 1
        else:
            known.add(_normalised(text))
            new.setdefault(row.label, []).append(text)
            result.written[row.label] += 1
        row.exported_at = utcnow()
    for intent, texts in new.items():
        append_examples(files[intent], intent, texts)
    await session.flush()
    return result
