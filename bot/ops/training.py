"""Training a candidate model with Rasa's own `rasa train`, its output kept as it runs.

The output goes to the caller (the terminal) and into the run's `OpsRun` row, which
`/ops/models` polls for the run's steps, so an operator can follow a training started from
either place.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from bot.ops.registry import TrainingData, register
from bot.ops.runs import RunLog

ROOT = Path(__file__).resolve().parents[2]
# tqdm redraws its progress bar with carriage returns.
_LINE_BREAK = re.compile(r"[\r\n]+")


class TrainingFailed(Exception):
    pass


async def train_candidate(
    log: RunLog, sessions: sessionmaker, project: Path, out: Path, actor: str
) -> Path:
    """Train `project` (config.yml, domain.yml, data/) into a new archive in `out`, and
    register it."""
    data = await asyncio.to_thread(TrainingData.of, project)
    name = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-candidate")
    out.mkdir(parents=True, exist_ok=True)
    archive = out.resolve() / f"{name}.tar.gz"
    command = [
        sys.executable, "-m", "rasa", "train",
        "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
        "--out", str(archive.parent), "--fixed-model-name", name,
    ]  # fmt: skip
    log.line(f"training {name} from {sum(data.example_counts.values())} examples")
    code = await _run(command, project, log)
    if code != 0 or not archive.is_file():
        raise TrainingFailed(f"rasa train exited with {code}")
    data.save_beside(archive)
    log.line(f"saved {archive}")
    async with sessions() as session, session.begin():
        await register(session, archive, actor)
    log.model_name = archive.name
    return archive


async def _run(command: list[str], cwd: Path, log: RunLog) -> int:
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # The project's config names this package's importer.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    pending = ""
    while chunk := await process.stdout.read(4096):
        *lines, pending = _LINE_BREAK.split(pending + chunk.decode(errors="replace"))
        for line in lines:
            log.line(line)
        await log.flush_if_due()
    log.line(pending)
    return await process.wait()
