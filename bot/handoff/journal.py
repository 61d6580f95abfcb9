"""The consoles' journal: every live event for members' consoles, numbered and kept a few
minutes in the database, so that a console that lost its socket (a restart, a phone on a bad
network) is sent what it missed when it reconnects — to whichever worker it reaches.

The ids come from the database, one sequence for all workers. Two workers committing at the
same instant may number their events out of order; the console's reload of its lists on
reconnecting covers that sliver. Rows older than `keep` are deleted by whoever appends every
`PRUNE_EVERY`th event; a console away longer than `keep` only reloads its lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.core.clock import Clock
from bot.db.models import ConsoleEvent

KEEP = timedelta(minutes=15)
PRUNE_EVERY = 100
# At most this many events are sent on one reconnect; more is a console to reload anyway.
REPLAY_LIMIT = 500


@dataclass(frozen=True)
class Entry:
    id: int
    event: dict[str, Any]
    audience: dict[str, Any]


class Journal:
    def __init__(self, sessions: sessionmaker, clock: Clock, keep: timedelta = KEEP) -> None:
        self._sessions = sessions
        self._clock = clock
        self._keep = keep
        # Built once: SQLAlchemy then reuses its compiled form.
        self._insert = insert(ConsoleEvent)

    async def append(
        self, event: dict[str, Any], audience: dict[str, Any], resident_id: int | None
    ) -> int:
        """Store the event for its audience, with the resident whose words it carries; its id."""
        async with self._sessions() as session, session.begin():
            return await self.append_in(session, event, audience, resident_id)

    async def append_in(
        self,
        session: AsyncSession,
        event: dict[str, Any],
        audience: dict[str, Any],
        resident_id: int | None,
    ) -> int:
        """`append`, in the caller's transaction: a ticket change numbers its events as it
        commits, and they are kept only if it does."""
        now = self._clock.now()
        # A row, not an ORM object: one for every console event, on every request's path.
        inserted = await session.execute(
            self._insert,
            {"created_at": now, "audience": audience, "event": event, "resident_id": resident_id},
        )
        event_id = int(inserted.inserted_primary_key[0])
        if event_id % PRUNE_EVERY == 0:
            await session.execute(
                delete(ConsoleEvent).where(ConsoleEvent.created_at < now - self._keep)
            )
        return event_id

    async def since(self, last_id: int) -> list[Entry]:
        """The events after `last_id` still kept, oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ConsoleEvent)
                .where(
                    ConsoleEvent.id > last_id,
                    ConsoleEvent.created_at >= self._clock.now() - self._keep,
                )
                .order_by(ConsoleEvent.id)
                .limit(REPLAY_LIMIT)
            )
            return [Entry(row.id, row.event, row.audience) for row in rows.all()]

    async def latest(self) -> int:
        """The newest event's id (0 when there is none): where a console starts counting."""
        async with self._sessions() as session:
            return int(await session.scalar(select(func.max(ConsoleEvent.id))) or 0)
