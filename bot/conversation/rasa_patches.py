"""Every place the service replaces or bends Rasa 3.6.21's internals.

What each patch replaces, why (with the measured figures), and what to check when upgrading
Rasa are in docs/rasa-patches.md; tests/test_rasa_patches.py fails when the Rasa behaviour a
patch relies on changes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import weakref
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from rasa.utils.endpoints import ClientResponseError, EndpointConfig
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException
from sqlalchemy import create_engine, insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

T = TypeVar("T")


# Tracker store -------------------------------------------------------------------------------


def tracker_store_for(database_url: str) -> TrackerStore:
    """Rasa's SQL tracker store on the service's database, batched and kept off the event loop;
    on SQLite, with its connections kept."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        store = BatchedSQLTrackerStore(dialect="sqlite", db=url.database)
        keep_sqlite_connections(store)
        return ThreadedTrackerStore(store)
    return ThreadedTrackerStore(
        BatchedSQLTrackerStore(
            dialect="postgresql",
            host=url.host,
            port=url.port,
            db=url.database,
            username=url.username,
            password=url.password,
        )
    )


class BatchedSQLTrackerStore(SQLTrackerStore):
    """`SQLTrackerStore`, writing a turn's new events in one INSERT instead of one each, not
    going to the database for a tracker without events, and not counting again the events of
    a tracker it has just read.

    Why: SQLite's write lock is held from the first insert to the commit, and the count is a
    query a turn (docs/rasa-patches.md).
    """

    # More conversations read and never saved than this, and the memory starts again.
    REMEMBERED = 10_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A conversation's tracker as last read, and how many of its events were stored then;
        # no tracker when the read found none (a new conversation's is created next).
        self._read: dict[str, tuple[weakref.ref[DialogueStateTracker] | None, int]] = {}

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        tracker = await super().retrieve(sender_id)
        if len(self._read) >= self.REMEMBERED:
            self._read.clear()
        # One row per event: the rows are Rasa's own events, each of which it reads back.
        self._read[sender_id] = (
            (weakref.ref(tracker), len(tracker.events)) if tracker is not None else (None, 0)
        )
        return tracker

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
        just_read = read is not None and read() is tracker
        with self.session_scope() as session:
            new_events = (
                itertools.islice(tracker.events, stored, None)
                if just_read
                else self._additional_events(session, tracker)
            )
            rows = [_event_row(tracker.sender_id, event) for event in new_events]
            if rows:
                session.execute(insert(self.SQLEvent.__table__), rows)
            session.commit()


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


def keep_sqlite_connections(store: SQLTrackerStore) -> None:
    """Replaces the store's engine by one that keeps its SQLite connections in a pool, for
    whichever worker thread runs the store next.

    Why: under SQLAlchemy 1.4 a SQLite file gets no pool, so each of a turn's sessions opened
    a connection that read the schema again: half the store's CPU (docs/rasa-patches.md)."""
    unpooled = store.engine
    store.engine = create_engine(
        unpooled.url, poolclass=QueuePool, connect_args={"check_same_thread": False}
    )
    store.sessionmaker = sessionmaker(bind=store.engine)
    unpooled.dispose()


class ThreadedTrackerStore(TrackerStore):
    """Runs a tracker store's methods in a worker thread.

    Why: Rasa's SQL store blocks behind `async def`, stalling the loop (docs/rasa-patches.md).
    """

    def __init__(self, store: TrackerStore) -> None:
        self._store = store
        super().__init__(store.domain, store.event_broker)

    @property
    def domain(self) -> Domain:
        return self._store.domain

    @domain.setter
    def domain(self, domain: Domain) -> None:
        self._store.domain = domain

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        return await _in_thread(self._store.retrieve(sender_id))

    async def retrieve_full_tracker(self, sender_id: str) -> DialogueStateTracker | None:
        return await _in_thread(self._store.retrieve_full_tracker(sender_id))

    async def save(self, tracker: DialogueStateTracker) -> None:
        await _in_thread(self._store.save(tracker))

    async def keys(self) -> Iterable[str]:
        return await _in_thread(self._store.keys())


async def _in_thread(call: Coroutine[Any, Any, T]) -> T:
    return await asyncio.to_thread(_run_through, call)


def _run_through(call: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine that never waits in one step, without an event loop.

    Why: a loop per call (`asyncio.run`) cost CPU two or three times a turn
    (docs/rasa-patches.md)."""
    try:
        call.send(None)
    except StopIteration as finished:
        return finished.value
    call.close()
    raise RuntimeError("the tracker store waited for I/O, which a worker thread cannot do")


# Action server answers -----------------------------------------------------------------------

# Rasa's own check, still used for every answer the prebuilt validator refuses.
rasa_validate_action_result = RemoteAction._validate_action_result
_response_schema = RemoteAction.action_response_format_spec()
action_response_validator = validator_for(_response_schema)(_response_schema)


def validate_action_result(action: RemoteAction, result: dict[str, Any]) -> bool:
    """`RemoteAction._validate_action_result` with a validator built once; Rasa's own check
    raises its errors. Why: most of a turn's CPU went to re-checking the schema
    (docs/rasa-patches.md)."""
    return action_response_validator.is_valid(result) or rasa_validate_action_result(action, result)


def speed_up_action_validation() -> None:
    RemoteAction._validate_action_result = validate_action_result


# Action endpoint -----------------------------------------------------------------------------


class InProcessActionEndpoint(EndpointConfig):
    """The endpoint `RemoteAction` posts each action call to, handing the call to rasa_sdk's
    executor in this process instead. Why: loopback HTTP's JSON cost a quarter of a turn's CPU
    (docs/rasa-patches.md).

    Actions get Rasa's own dicts, not a parsed copy: they must not change the tracker."""

    def __init__(self, executor: ActionExecutor) -> None:
        # Our actions never read the domain, so Rasa need not serialise it into every call.
        super().__init__(url="in-process", enable_selective_domain=True)
        self._executor = executor

    async def request(
        self,
        method: str = "post",
        subpath: str | None = None,
        content_type: str | None = "application/json",
        compress: bool = False,
        **kwargs: Any,
    ) -> Any:
        # Refusals get the action server's statuses, so Rasa treats them as over HTTP.
        try:
            return await self._executor.run(kwargs["json"])
        except ActionNotFoundException as e:
            raise _refusal(404, "Not Found", e.message, e.action_name) from e
        except ActionExecutionRejection as e:
            raise _refusal(400, "Bad Request", e.message, e.action_name) from e


def _refusal(status: int, reason: str, error: str, action_name: str) -> ClientResponseError:
    body = json.dumps({"error": error, "action_name": action_name})
    return ClientResponseError(status, reason, body)
