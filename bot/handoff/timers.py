"""The claim timers and survey deadlines, read from the database on every pass.

Nothing is kept in memory between passes, so a restart (or a second worker) simply picks up
whatever is due; `TicketService.escalate` makes sure only one worker acts on each step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.handoff.service import TicketService

logger = logging.getLogger(__name__)


class Timers:
    def __init__(self, tickets: TicketService, interval: float = 5.0) -> None:
        self._tickets = tickets
        self._interval = interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run_due(self) -> int:
        """Escalate every ticket past its claim deadline and close unrated ones past theirs;
        returns how many steps were taken."""
        steps = 0
        escalation = self._tickets.escalation
        for due in await escalation.overdue():
            if await escalation.escalate(due):
                steps += 1
        return steps + await self._tickets.aftercare.expire_surveys()

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="ticket-timers")

    async def close(self) -> None:
        """Stop after the pass in progress: cancelling one mid-transaction would leave its
        database connection half-closed."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            await task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_due()
            except Exception:
                logger.exception("ticket timers failed; trying again in %s s", self._interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
