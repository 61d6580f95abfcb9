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
from rasa.engine.exceptions import GraphRunError
from rasa.engine.graph import ExecutionContext, GraphNode, GraphNodeHook, GraphSchema
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.runner.interface import GraphRunner
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from rasa.utils.endpoints import ClientResponseError, EndpointConfig
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException
from sqlalchemy import Table, bindparam, create_engine, func, insert, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql import Select

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
    going to the database for a tracker without events, not counting again the events of a
    tracker it has just read, and reading a conversation with a statement built once.

    Why: SQLite's write lock is held from the first insert to the commit, the count is a
    query a turn, and building the read's ORM query anew cost more than running it
    (docs/rasa-patches.md).
    """

    # More conversations read and never saved than this, and the memory starts again.
    REMEMBERED = 10_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A conversation's tracker as last read, and how many of its events were stored then;
        # no tracker when the read found none (a new conversation's is created next).
        self._read: dict[str, tuple[weakref.ref[DialogueStateTracker] | None, int]] = {}
        self._events_of = _events_query(self.SQLEvent.__table__, latest_session=False)
        self._latest_session_events_of = _events_query(self.SQLEvent.__table__, latest_session=True)

    async def _retrieve(
        self, sender_id: str, fetch_events_from_all_sessions: bool
    ) -> DialogueStateTracker | None:
        query = (
            self._events_of if fetch_events_from_all_sessions else self._latest_session_events_of
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query, {"sender_id": sender_id}).scalars().all()
        if not (self.domain and rows):
            return None
        events = [json.loads(data) for data in rows]
        return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)

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


def _events_query(events: Table, latest_session: bool) -> Select:
    """`SQLTrackerStore._event_query` in Core: a conversation's stored events in order, those
    of its latest session (from its last `session_started` on) or all."""
    of_sender = events.c.sender_id == bindparam("sender_id")
    query = select(events.c.data).where(of_sender).order_by(events.c.id)
    if not latest_session:
        return query
    session_start = (
        select(func.max(events.c.timestamp))
        .where(of_sender, events.c.type_name == SessionStarted.type_name)
        .scalar_subquery()
    )
    return query.where(or_(events.c.timestamp >= session_start, session_start.is_(None)))


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


# Graph runner --------------------------------------------------------------------------------

# A node's plan: its name and the names of the nodes or inputs it needs, in order.
Plan = list[tuple[str, tuple[str, ...]]]


class SequentialGraphRunner(GraphRunner):
    """Rasa's prediction graph, its own nodes run one after another in an order worked out
    once per set of targets.

    Why: `DaskGraphRunner.run` cut the schema down to the targets, built a dask graph and
    ordered it again for every parse and every policy prediction: about 1.3 ms of a 10 ms
    parse (docs/rasa-patches.md)."""

    def __init__(self, schema: GraphSchema, nodes: dict[str, GraphNode]) -> None:
        self._schema = schema
        self._nodes = nodes
        self._plans: dict[tuple[str, ...], Plan] = {}

    @classmethod
    def create(
        cls,
        graph_schema: GraphSchema,
        model_storage: ModelStorage,
        execution_context: ExecutionContext,
        hooks: list[GraphNodeHook] | None = None,
    ) -> SequentialGraphRunner:
        nodes = DaskGraphRunner._instantiate_nodes(
            graph_schema, model_storage, execution_context, hooks
        )
        return cls(graph_schema, nodes)

    @classmethod
    def taking_over(cls, runner: GraphRunner) -> GraphRunner:
        """The same loaded nodes as the dask runner Rasa's agent loaded; any other runner
        stays as it is."""
        if not isinstance(runner, DaskGraphRunner):
            return runner
        return cls(runner._graph_schema, runner._instantiated_nodes)

    def run(
        self, inputs: dict[str, Any] | None = None, targets: list[str] | None = None
    ) -> dict[str, Any]:
        targets = targets or self._schema.target_names
        # As dask hands them on: each node's output, and each input, as (name, value).
        results: dict[str, Any] = {name: (name, value) for name, value in (inputs or {}).items()}
        try:
            for name, needs in self._plan(targets):
                # A name nothing provides goes through as itself; the node then refuses it.
                results[name] = self._nodes[name](*(results.get(need, need) for need in needs))
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e
        return dict(results[target] for target in targets)

    def _plan(self, targets: list[str]) -> Plan:
        key = tuple(targets)
        if key not in self._plans:
            self._plans[key] = self._dependencies_first(targets)
        return self._plans[key]

    def _dependencies_first(self, targets: list[str]) -> Plan:
        nodes = self._schema.nodes
        plan: Plan = []
        planned: set[str] = set()

        def add(name: str) -> None:
            if name in planned or name not in nodes:
                return
            needs = tuple(nodes[name].needs.values())
            for need in needs:
                add(need)
            planned.add(name)
            plan.append((name, needs))

        for target in targets:
            add(target)
        return plan


# Action server answers -----------------------------------------------------------------------

# Rasa's own check, still used for every answer the prebuilt validator refuses.
rasa_validate_action_result = RemoteAction._validate_action_result


class ActionAnswerValidator:
    """Rasa's schema for an action server's answer, with the class `jsonschema.validate` picks
    for it, built once; each event is checked against the one kind of event its name picks.

    Why: Rasa's schema says an event is one of 23 kinds (`oneOf`), so an event was checked
    against all 23 to find the one it is: 0.75 ms an answer of two events. Every kind names
    itself (its `event` is a `const`), so the kind an event's name picks is the only one it
    can be; an event with no such kind matches none, as `oneOf` finds too."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.validator_class = validator_for(schema)
        properties = schema["properties"]
        event = properties["events"]["items"]
        shared = {key: value for key, value in event.items() if key != "oneOf"}
        self._answer = self.validator_class(
            {**schema, "properties": {**properties, "events": {"type": "array"}}}
        )
        self._events = {
            kind["properties"]["event"]["const"]: self.validator_class({**shared, "allOf": [kind]})
            for kind in event["oneOf"]
        }

    def is_valid(self, answer: Any) -> bool:
        if not self._answer.is_valid(answer):
            return False
        return all(self._event_is_valid(event) for event in answer.get("events", []))

    def _event_is_valid(self, event: Any) -> bool:
        name = event.get("event") if isinstance(event, dict) else None
        validator = self._events.get(name) if isinstance(name, str) else None
        return validator is not None and validator.is_valid(event)


action_response_validator = ActionAnswerValidator(RemoteAction.action_response_format_spec())


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
