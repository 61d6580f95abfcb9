"""Rasa's conversation memory on the service's own database engine.

`EventsTrackerStore` keeps Rasa's SQL tracker store's `events` table, its rows and its
readings (so `rasa shell` or `rasa export` pointed at the same database read what the service
wrote), but runs on the service's async engine: a turn's read and save are two statements on
the event loop like every other query, instead of Rasa's synchronous store in a worker thread
with a connection pool (and on PostgreSQL a driver) of its own. On top of that it writes a
turn's new events in one statement, stores nothing for a tracker without events, and does not
count the stored events of the tracker it has just read (docs/rasa-patches.md).
"""

from __future__ import annotations

import itertools
import json
import weakref
from collections.abc import Iterable
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy import Table, bindparam, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Select

# Rasa's own table, made by migration 0015 as `SQLTrackerStore` makes it.
EVENTS: Table = SQLTrackerStore.SQLEvent.__table__


class EventsTrackerStore(TrackerStore):
    # More conversations read and never saved than this, and the memory starts again.
    REMEMBERED = 10_000

    def __init__(
        self,
        engine: AsyncEngine,
        domain: Domain | None = None,
        event_broker: EventBroker | None = None,
    ) -> None:
        super().__init__(domain, event_broker)
        self._engine = engine
        # A conversation's tracker as last read, and how many of its events were stored then;
        # no tracker when the read found none (a new conversation's is created next).
        self._read: dict[str, tuple[weakref.ref[DialogueStateTracker] | None, int]] = {}
        self._events_of = _events_query(latest_session=False)
        self._latest_session_events_of = _events_query(latest_session=True)
        self._count_latest_session = select(func.count()).select_from(
            self._latest_session_events_of.subquery()
        )

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        tracker = await self._retrieve(self._latest_session_events_of, sender_id)
        if len(self._read) >= self.REMEMBERED:
            self._read.clear()
        # One row per event: the rows are Rasa's own events, each of which it reads back.
        self._read[sender_id] = (
            (weakref.ref(tracker), len(tracker.events)) if tracker is not None else (None, 0)
        )
        return tracker

    async def retrieve_full_tracker(self, conversation_id: str) -> DialogueStateTracker | None:
        return await self._retrieve(self._events_of, conversation_id)

    async def _retrieve(self, query: Select, sender_id: str) -> DialogueStateTracker | None:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query, {"sender_id": sender_id})).scalars().all()
        if not (self.domain and rows):
            return None
        events = [json.loads(data) for data in rows]
        return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)

    async def save(self, tracker: DialogueStateTracker) -> None:
        sender_id = tracker.sender_id
        if not tracker.events:
            # A new conversation's tracker, saved as soon as it is created: Rasa's save counts
            # the stored events, then writes and publishes none.
            if sender_id in self._read and self._read[sender_id][0] is None:
                self._read[sender_id] = (weakref.ref(tracker), 0)
            return
        await self.stream_events(tracker)
        read, stored = self._read.pop(sender_id, (None, 0))
        async with self._engine.begin() as connection:
            if read is None or read() is not tracker:
                stored = await self._stored_in_latest_session(connection, sender_id)
            new_events = itertools.islice(tracker.events, stored, None)
            rows = [_event_row(sender_id, event) for event in new_events]
            if rows:
                await connection.execute(insert(EVENTS), rows)

    async def _stored_in_latest_session(self, connection: AsyncConnection, sender_id: str) -> int:
        """What Rasa's save counts to find a tracker's new events."""
        return int(await connection.scalar(self._count_latest_session, {"sender_id": sender_id}))

    async def keys(self) -> Iterable[str]:
        async with self._engine.connect() as connection:
            return list((await connection.execute(select(EVENTS.c.sender_id).distinct())).scalars())


def _events_query(latest_session: bool) -> Select:
    """`SQLTrackerStore._event_query` in Core: a conversation's stored events in order, those
    of its latest session (from its last `session_started` on) or all."""
    of_sender = EVENTS.c.sender_id == bindparam("sender_id")
    query = select(EVENTS.c.data).where(of_sender).order_by(EVENTS.c.id)
    if not latest_session:
        return query
    session_start = (
        select(func.max(EVENTS.c.timestamp))
        .where(of_sender, EVENTS.c.type_name == SessionStarted.type_name)
        .scalar_subquery()
    )
    return query.where(or_(EVENTS.c.timestamp >= session_start, session_start.is_(None)))


def _event_row(sender_id: str, event: Event) -> dict[str, Any]:
    """An `events` row as `SQLTrackerStore.save` makes it."""
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }
