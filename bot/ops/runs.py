"""A training or evaluation run as `/ops/models` sees it: status and the tail of its output.

Runs write their output as they go and a heartbeat while silent, so the page can tell a run
that is still working from one whose process was stopped without finishing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from bot.db.models import utcnow
from bot.db.nlu_models import OpsRun

# What the page keeps of a run's output: enough to see progress and the error.
OUTPUT_TAIL = 8000
FLUSH_EVERY_S = 1.0
HEARTBEAT_S = 10.0
# A "running" run not heard from for this long was stopped (a restart, a kill).
STALE_AFTER = timedelta(seconds=60)


def print_now(line: str) -> None:
    """Progress on the terminal as it happens, also when stdout is a pipe."""
    print(line, flush=True)


class RunLog:
    def __init__(self, sessions: sessionmaker, run_id: int, on_line: Callable[[str], None]) -> None:
        self._sessions = sessions
        self.run_id = run_id
        self._on_line = on_line
        self._output = ""
        self._flushed_at = 0.0
        self._heartbeat = asyncio.create_task(self._beat())

    @classmethod
    async def start(
        cls,
        sessions: sessionmaker,
        kind: str,
        actor: str,
        on_line: Callable[[str], None] = print_now,
    ) -> RunLog:
        async with sessions() as session, session.begin():
            run = OpsRun(kind=kind, started_by=actor)
            session.add(run)
        return cls(sessions, run.id, on_line)

    def line(self, text: str) -> None:
        text = text.rstrip()
        if not text:
            return
        self._on_line(text)
        self._output = (self._output + text + "\n")[-OUTPUT_TAIL:]

    async def flush_if_due(self) -> None:
        if time.monotonic() - self._flushed_at >= FLUSH_EVERY_S:
            await self._store()

    async def finish(self, status: str, model_name: str | None = None) -> None:
        self._heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._heartbeat
        await self._store(status=status, finished_at=utcnow(), model_name=model_name)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            await self._store()

    async def _store(self, **values: object) -> None:
        self._flushed_at = time.monotonic()
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(OpsRun)
                .where(OpsRun.id == self.run_id)
                .values(output=self._output, updated_at=utcnow(), **values)
            )


def run_payload(run: OpsRun) -> dict[str, Any]:
    stalled = run.status == "running" and utcnow() - run.updated_at > STALE_AFTER
    return {
        "id": run.id,
        "kind": run.kind,
        "status": "stalled" if stalled else run.status,
        "started_by": run.started_by,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "model": run.model_name,
        "output": run.output,
    }
