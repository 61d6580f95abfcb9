"""EventsTrackerStore against Rasa's own SQLTrackerStore: the same rows, events and trackers.

The comparisons run on SQLite files whatever BOT_TEST_DATABASE_URL says: they compare two
stores, not a database. On PostgreSQL the store runs in every end-to-end test, in
test_migrations.py, and in the last test here, where Rasa reads what the service wrote.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from rasa.core.agent import Agent
from rasa.core.tracker_store import FailSafeTrackerStore, SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.conversation.tracker_store import EVENTS, EventsTrackerStore, _event_row
from bot.db.engine import create_engine

OurStore = Callable[..., Awaitable[EventsTrackerStore]]


class RecordingBroker:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.published.append(event)


@pytest.fixture
async def our_store(tmp_path: Path) -> AsyncIterator[OurStore]:
    """Ours on a SQLite file of its own, its table made as at the service's start."""
    engines = []

    async def make(domain: Domain | None = None, broker: Any = None) -> EventsTrackerStore:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/ours{len(engines)}.db")
        engines.append(engine)
        async with engine.begin() as connection:
            await connection.run_sync(EVENTS.create)
        return EventsTrackerStore(engine, domain or Domain.empty(), broker)

    yield make
    for engine in engines:
        await engine.dispose()


def rasa_store_on(
    database_url: str, domain: Domain | None = None, broker: Any = None
) -> SQLTrackerStore:
    """Rasa's own store on a test database, as `endpoints.yml` would configure it."""
    url = sa.engine.make_url(database_url)
    return SQLTrackerStore(
        domain or Domain.empty(),
        dialect=url.get_backend_name(),
        host=url.host,
        port=url.port,
        db=url.database,
        username=url.username,
        password=url.password,
        event_broker=broker,
    )


def rasas(tmp_path: Path, domain: Domain | None = None, broker: Any = None) -> SQLTrackerStore:
    return rasa_store_on(f"sqlite:///{tmp_path / 'rasa.db'}", domain, broker)


def conversation() -> DialogueStateTracker:
    return DialogueStateTracker.from_events(
        "wechat:o1",
        [
            ActionExecuted("action_session_start", timestamp=2.0),
            SessionStarted(timestamp=2.0),
            ActionExecuted("action_listen", timestamp=3.0),
            UserUttered(
                "我家水管漏了",
                intent={"name": "repair", "confidence": 0.93},
                metadata={"channel": "wechat", "message_id": 3},
                timestamp=4.0,
            ),
        ],
    )


async def rows_of(store: TrackerStore) -> list[tuple[object, ...]]:
    query = sa.select(EVENTS).order_by(EVENTS.c.id)
    if isinstance(store, EventsTrackerStore):
        async with store._engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(query)]
    assert isinstance(store, SQLTrackerStore)
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


async def saved_rows(store: TrackerStore) -> list[tuple[object, ...]]:
    tracker = conversation()
    await store.save(tracker)
    # The next save adds only what is new since.
    tracker.update(ActionExecuted("action_handoff", timestamp=5.0))
    tracker.update(BotUttered("已请3号楼网格员王建国来帮您", timestamp=6.0))
    tracker.update(ConversationPaused(timestamp=7.0))
    await store.save(tracker)
    return await rows_of(store)


def statements_run(store: TrackerStore) -> list[str]:
    """The SQL the store sends from now on, statement by statement."""
    run: list[str] = []
    engine = store._engine.sync_engine if isinstance(store, EventsTrackerStore) else store.engine
    sa.event.listen(engine, "before_cursor_execute", lambda *a: run.append(a[2]))
    return run


async def test_saves_write_the_rows_and_publish_the_events_rasa_does(
    tmp_path: Path, our_store: OurStore
) -> None:
    rasa_broker, our_broker = RecordingBroker(), RecordingBroker()
    rasa_store = rasas(tmp_path, broker=rasa_broker)
    ours = await our_store(broker=our_broker)

    expected = await saved_rows(rasa_store)
    assert len(expected) == 7
    # Every column of Rasa's `events` table, a new one included.
    assert await saved_rows(ours) == expected
    assert our_broker.published == rasa_broker.published and len(rasa_broker.published) == 7

    retrieved = await ours.retrieve("wechat:o1")
    assert retrieved is not None and retrieved.is_paused()
    theirs = await rasa_store.retrieve("wechat:o1")
    assert theirs is not None and retrieved.events == theirs.events
    assert list(await ours.keys()) == list(await rasa_store.keys()) == ["wechat:o1"]


async def test_saving_a_tracker_without_events_writes_and_publishes_nothing_as_in_rasa(
    tmp_path: Path, our_store: OurStore
) -> None:
    stores = []
    for store in (rasas(tmp_path), await our_store()):
        broker = RecordingBroker()
        store.event_broker = broker
        # A conversation with events stored, and a new one.
        await store.save(conversation())
        broker.published.clear()
        stores.append((store, broker, statements_run(store)))
    for sender in ("wechat:o1", "wechat:new"):
        for store, _, _ in stores:
            await store.save(DialogueStateTracker(sender, []))

    (rasa_store, rasa_broker, rasa_statements), (ours, our_broker, our_statements) = stores
    assert rasa_statements and not our_statements
    assert await rows_of(ours) == await rows_of(rasa_store)
    assert rasa_broker.published == our_broker.published == []


async def test_a_turn_saves_what_rasa_saves_without_counting_the_events_it_just_read(
    tmp_path: Path, our_store: OurStore
) -> None:
    """Rasa's turn: read (or create) the tracker, add events, save it. Ours writes the same
    rows and does not ask the database how many events it has; a tracker it did not read
    still gets counted."""

    async def turns(store: TrackerStore) -> list[tuple[object, ...]]:
        new = await store.get_or_create_tracker("wechat:o1", append_action_listen=False)
        for event in conversation().events:
            new.update(event)
        await store.save(new)
        for second in (10.0, 20.0):
            tracker = await store.retrieve("wechat:o1")
            assert tracker is not None
            tracker.update(ActionExecuted("action_handoff", timestamp=second))
            tracker.update(BotUttered("已请3号楼网格员王建国来帮您", timestamp=second + 1))
            await store.save(tracker)
        # Saved again without a read in between: the count decides.
        tracker.update(ConversationPaused(timestamp=30.0))
        await store.save(tracker)
        # A tracker made elsewhere, not the one read.
        elsewhere = await store.retrieve("wechat:o1")
        assert elsewhere is not None
        copy = elsewhere.copy()
        copy.update(ConversationResumed(timestamp=40.0))
        await store.save(copy)
        return await rows_of(store)

    rasa_store, ours = rasas(tmp_path), await our_store()
    rasa_statements, our_statements = statements_run(rasa_store), statements_run(ours)

    expected = await turns(rasa_store)
    assert len(expected) == 4 + 4 + 1 + 1
    assert await turns(ours) == expected
    # Rasa counts at every save, the new tracker's empty one included.
    assert len([s for s in rasa_statements if "count(" in s]) == 6
    # The tracker saved twice and the copy: counted. The saves after a read: not.
    assert len([s for s in our_statements if "count(" in s]) == 2
    # Each save of new events is one INSERT, however many events it holds.
    assert len([s for s in our_statements if s.startswith("INSERT")]) == 5


async def test_reading_a_conversation_gives_rasas_trackers_latest_session_or_all(
    tmp_path: Path, our_store: OurStore
) -> None:
    """Two sessions, events at the same second as the second session's start, and a
    conversation never stored: the latest session and the whole conversation as Rasa reads
    them."""
    domain = Domain.from_yaml("slots:\n  ticket:\n    type: any\n    mappings: []\n")
    second_session = [
        ActionExecuted("action_session_start", timestamp=50.0),
        SessionStarted(timestamp=50.0),
        SlotSet("ticket", 9, timestamp=50.0),
        ActionExecuted("action_listen", timestamp=51.0),
        UserUttered("电梯又坏了", intent={"name": "repair", "confidence": 0.9}, timestamp=52.0),
    ]
    readings = []
    for store in (rasas(tmp_path, domain), await our_store(domain)):
        tracker = conversation()
        await store.save(tracker)
        for event in second_session:
            tracker.update(event)
        await store.save(tracker)
        latest, whole = (
            await store.retrieve("wechat:o1"),
            await store.retrieve_full_tracker("wechat:o1"),
        )
        assert latest is not None and whole is not None
        readings.append(
            (
                [e.as_dict() for e in latest.events],
                [e.as_dict() for e in whole.events],
                latest.get_slot("ticket"),
                await store.retrieve("wechat:nobody"),
                await store.retrieve_full_tracker("wechat:nobody"),
            )
        )

    theirs, ours = readings
    assert ours == theirs
    assert len(theirs[0]) == len(second_session) and len(theirs[1]) == 4 + len(second_session)
    assert theirs[2:] == (9, None, None)


def test_the_store_implements_every_method_rasa_calls_on_a_store_by_rasas_names() -> None:
    def own_async_methods(cls: type) -> set[str]:
        return {
            name
            for name, member in vars(cls).items()
            if inspect.iscoroutinefunction(member) and not name.startswith("_")
        }

    # What Rasa's SQL store defines itself, and all the wrapper Agent puts around every
    # store calls, ours defines too.
    assert own_async_methods(EventsTrackerStore) == own_async_methods(SQLTrackerStore)
    assert own_async_methods(FailSafeTrackerStore) <= own_async_methods(SQLTrackerStore)
    assert list(inspect.signature(TrackerStore.__init__).parameters)[:3] == [
        "self",
        "domain",
        "event_broker",
    ]
    row = _event_row("s", ActionExecuted("action_listen", timestamp=1.0))
    assert set(EVENTS.columns.keys()) == {"id", *row}


async def test_the_agent_gives_the_store_the_models_domain(our_store: OurStore) -> None:
    ours = await our_store(Domain.empty())
    domain = Domain.from_dict({"intents": ["repair"]})
    wrapped = Agent._create_tracker_store(ours, domain)
    assert isinstance(wrapped, FailSafeTrackerStore) and wrapped._tracker_store is ours
    assert ours.domain is domain


async def test_the_migrations_make_rasas_table_and_rasa_reads_what_the_service_wrote(
    database_url: str,
) -> None:
    """`rasa shell` or `rasa export` with an SQL tracker store on the service's database
    (SQLite, or PostgreSQL when BOT_TEST_DATABASE_URL says so) finds every turn."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            columns, indexes = await connection.run_sync(
                lambda sync: (
                    sa.inspect(sync).get_columns("events"),
                    sa.inspect(sync).get_indexes("events"),
                )
            )
        await saved_rows(EventsTrackerStore(engine, Domain.empty()))
    finally:
        await engine.dispose()
    assert [(c["name"], c["nullable"]) for c in columns] == [
        (c.name, c.nullable) for c in EVENTS.columns
    ]
    assert [i["column_names"] for i in indexes] == [["sender_id"]]

    rasa_store = rasa_store_on(database_url)
    read = await rasa_store.retrieve("wechat:o1")
    rasa_store.engine.dispose()
    assert read is not None and read.is_paused()
    assert [e.as_dict() for e in read.events] == [
        e.as_dict()
        for e in [
            *conversation().events,
            ActionExecuted("action_handoff", timestamp=5.0),
            BotUttered("已请3号楼网格员王建国来帮您", timestamp=6.0),
            ConversationPaused(timestamp=7.0),
        ]
    ]
