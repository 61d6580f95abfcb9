"""A training or evaluation run as `/ops/models` sees it: its steps, status and output.

A run is a few steps in order (export the accepted corrections, train, evaluate); each step's
status, times and a small detail (how many examples were exported) are kept on the run, so the
page shows progress in plain words. The output is kept too, for whoever runs the command at a
terminal and for a technician looking into a failure; the page does not show it.

Runs write as they go and a heartbeat while silent, so the page can tell a run that is still
working from one whose process was stopped without finishing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from bot.db.models import utcnow
from bot.db.nlu_models import OpsRun

# What is kept of a run's output: enough to see progress and the error.
OUTPUT_TAIL = 8000
FLUSH_EVERY_S = 1.0
HEARTBEAT_S = 10.0
# A "running" run not heard from for this long was stopped (a restart, a kill).
STALE_AFTER = timedelta(seconds=60)


def print_now(line: str) -> None:
    """Progress on the terminal as it happens, also when stdout is a pipe."""
    print(line, flush=True)


class RunLog:
    def __init__(
        self,
        sessions: sessionmaker,
        run_id: int,
        steps: list[dict[str, Any]],
        on_line: Callable[[str], None],
    ) -> None:
        self._sessions = sessions
        self.run_id = run_id
        self._steps = steps
        self._on_line = on_line
        self._output = ""
        self._flushed_at = 0.0
        # The model the run made or scored, once known.
        self.model_name: str | None = None
        self._heartbeat = asyncio.create_task(self._beat())

    @classmethod
    @asynccontextmanager
    async def running(
        cls,
        sessions: sessionmaker,
        kind: str,
        actor: str,
        steps: Sequence[str],
        on_line: Callable[[str], None] = print_now,
    ) -> AsyncIterator[RunLog]:
        """A new run with its steps waiting; it ends failed if the body raises."""
        waiting = [{"name": name, "status": "waiting", "detail": {}} for name in steps]
        async with sessions() as session, session.begin():
            run = OpsRun(kind=kind, started_by=actor, steps=waiting)
            session.add(run)
        log = cls(sessions, run.id, waiting, on_line)
        try:
            yield log
        except Exception as failed:
            log.line(f"failed: {failed!r}")
            await log._finish("failed")
            raise
        await log._finish("succeeded")

    @asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[dict[str, Any]]:
        """Mark the step running, then done or failed; the body may fill in its detail."""
        step = next(s for s in self._steps if s["name"] == name)
        step.update(status="running", started_at=utcnow().isoformat())
        await self._store()
        try:
            yield step["detail"]
        except Exception:
            step.update(status="failed", finished_at=utcnow().isoformat())
            raise
        step.update(status="succeeded", finished_at=utcnow().isoformat())
        await self._store()

    def line(self, text: str) -> None:
        text = text.rstrip()
        if not text:
            return
        self._on_line(text)
        self._output = (self._output + text + "\n")[-OUTPUT_TAIL:]

    async def flush_if_due(self) -> None:
        if time.monotonic() - self._flushed_at >= FLUSH_EVERY_S:
            await self._store()

    async def _finish(self, status: str) -> None:
        self._heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._heartbeat
        await self._store(status=status, finished_at=utcnow(), model_name=self.model_name)

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
                .values(
                    output=self._output,
                    steps=[dict(s) for s in self._steps],
                    updated_at=utcnow(),
                    **values,
                )
            )


def run_payload(run: OpsRun, now: datetime | None = None) -> dict[str, Any]:
    """The run for the page: no output (it holds server paths and Rasa's own words), and
    seconds taken so far, which the page counts on from."""
    now = now or utcnow()
    stalled = run.status == "running" and now - run.updated_at > STALE_AFTER
    ended = run.finished_at or (run.updated_at if stalled else now)
    return {
        "id": run.id,
        "kind": run.kind,
        "status": "stalled" if stalled else run.status,
        "started_by": run.started_by,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "seconds": round((ended - run.started_at).total_seconds()),
        "model": run.model_name,
        "steps": [_step_payload(step, ended, stalled) for step in run.steps or []],
    }


def _step_payload(step: dict[str, Any], ended: datetime, stalled: bool) -> dict[str, Any]:
    status = step["status"]
    seconds = None
    if "started_at" in step:
        started = datetime.fromisoformat(step["started_at"])
        finished = step.get("finished_at")
        until = datetime.fromisoformat(finished) if finished else ended
        seconds = round((until - started).total_seconds())
    if stalled and status in ("running", "waiting"):
        status = "stalled"
    return {"name": step["name"], "status": status, "seconds": seconds, "detail": step["detail"]}
