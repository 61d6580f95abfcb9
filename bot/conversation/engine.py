"""The Rasa dialogue engine, loaded in-process from a trained model archive."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.lock_store import InMemoryLockStore, LockStore
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from bot.core.categories import REQUEST_INTENTS
from bot.core.handoff import ENTITY_NAMES

logger = logging.getLogger(__name__)

T = TypeVar("T")


async def _load_agent(
    model_path: Path,
    tracker_store: TrackerStore,
    action_endpoint: EndpointConfig,
    lock_store: LockStore,
) -> Agent:
    # Loading restores TensorFlow graphs for seconds; keep the event loop free meanwhile.
    agent = await asyncio.to_thread(
        Agent.load,
        model_path,
        tracker_store=tracker_store,
        lock_store=lock_store,
        action_endpoint=action_endpoint,
    )
    # The first parse loads jieba's dictionary; pay for it now, not on a resident's message.
    await agent.parse_message("你好")
    # The model leaves over half a million long-lived objects; keeping them out of the
    # collector's full passes saves pauses of a quarter second on the event loop. A model
    # switched out must be collectable again, hence the unfreeze first.
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    logger.info("model %s loaded", model_path.name)
    return agent


class NoModel(Exception):
    pass


def latest_model(models_dir: Path) -> Path:
    archives = sorted(models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not archives:
        raise NoModel(f"no trained model in {models_dir}/; run `make train` first")
    return archives[-1]


def tracker_store_for(database_url: str) -> TrackerStore:
    """Rasa's own SQL tracker store, on the service's database, kept off the event loop."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return ThreadedTrackerStore(BatchedSQLTrackerStore(dialect="sqlite", db=url.database))
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
    """Rasa's SQL tracker store, writing a turn's new events in one statement.

    Rasa adds each event as an ORM object and inserts them one by one. On SQLite the write
    lock is held from the first insert to the commit, and in a worker thread each statement
    also waits for the interpreter while the event loop runs, so callbacks waited for the
    lock through as many of those waits as the turn had events. The rows are the ones Rasa
    writes (tests/test_tracker_store.py).
    """

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        with self.session_scope() as session:
            rows = [
                _event_row(tracker.sender_id, event)
                for event in self._additional_events(session, tracker)
            ]
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


class ThreadedTrackerStore(TrackerStore):
    """Runs a tracker store in a worker thread.

    Rasa 3.6's SQLTrackerStore is synchronous behind `async def`. On the event loop, a save
    waiting for SQLite's write lock blocks the loop, so the service's own transaction that holds
    the lock can never commit: both stall for seconds and callbacks time out. In a thread the
    save waits while the loop goes on.
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
    """Rasa's SQL tracker store is synchronous behind `async def`: with no event broker its
    coroutines never wait, so one step runs them to the end. A new event loop for each call
    (`asyncio.run`) cost about half a millisecond of CPU, two or three times a turn."""
    try:
        call.send(None)
    except StopIteration as finished:
        return finished.value
    call.close()
    raise RuntimeError("the tracker store waited for I/O, which a worker thread cannot do")


def speed_up_action_validation() -> None:
    """Rasa checks every action server answer with `jsonschema.validate`, which first checks
    the schema itself: about 11 ms per turn, most of a turn's CPU. Valid answers are checked
    here with a validator built once; anything else still goes through Rasa's own check, so its
    errors are unchanged."""
    if getattr(RemoteAction, "_fast_validation", False):
        return
    schema = RemoteAction.action_response_format_spec()
    validator = validator_for(schema)(schema)
    rasa_check = RemoteAction._validate_action_result

    def validate(self: RemoteAction, result: dict[str, Any]) -> bool:
        return validator.is_valid(result) or rasa_check(self, result)

    RemoteAction._validate_action_result = validate
    RemoteAction._fast_validation = True


@dataclass(frozen=True)
class Turn:
    """What one resident message did: the bot's lines and how the model read it."""

    replies: list[str]
    intent: str
    confidence: float
    model: str
    # The request intent ranked highest, also when another intent won, and its confidence.
    request_intent: str | None
    request_confidence: float
    # The first address, phone and time found, as action_handoff would pass them on.
    entities: dict[str, str]
    # The ticket this turn's handoff opened.
    ticket_id: int | None = None


def best_request(parsed: dict[str, Any]) -> tuple[str | None, float]:
    """The request intent the model ranks highest, whichever intent won."""
    ranked = [r for r in parsed.get("intent_ranking") or [] if r.get("name") in REQUEST_INTENTS]
    if not ranked:
        return None, 0.0
    best = max(ranked, key=lambda r: float(r.get("confidence") or 0.0))
    return best["name"], float(best.get("confidence") or 0.0)


def first_entities(parsed: dict[str, Any], names: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for entity in parsed.get("entities") or []:
        name = entity.get("entity")
        if name in names and name not in found and entity.get("value"):
            found[name] = str(entity["value"])
    return found


class RasaEngine:
    """The loaded model; `switch_to` replaces it while messages keep flowing."""

    def __init__(
        self, agent: Agent, model_path: Path, tracker_store: TrackerStore, endpoint: EndpointConfig
    ) -> None:
        self._agent = agent
        self.model_path = model_path
        self._tracker_store = tracker_store
        self._endpoint = endpoint

    @property
    def model_name(self) -> str:
        return self.model_path.name

    @classmethod
    async def load(
        cls, model_path: Path, tracker_store: TrackerStore, action_endpoint: EndpointConfig
    ) -> RasaEngine:
        speed_up_action_validation()
        agent = await _load_agent(model_path, tracker_store, action_endpoint, InMemoryLockStore())
        return cls(agent, model_path, tracker_store, action_endpoint)

    async def switch_to(self, model_path: Path) -> None:
        """Load another model beside the current one, then swap. A turn already running
        finishes on the model it started with; the next turn uses the new one. Both share the
        tracker and lock stores, so no conversation loses its state."""
        agent = await _load_agent(
            model_path, self._tracker_store, self._endpoint, self._agent.lock_store
        )
        self._agent, previous = agent, self.model_path
        self.model_path = model_path
        logger.info("model switched from %s to %s", previous.name, model_path.name)

    async def handle(self, text: str, sender_id: str, metadata: dict[str, Any]) -> Turn:
        """Run one turn; the replies are empty while the conversation is paused."""
        agent, model = self._agent, self.model_name
        # Parsed first so the turn can report what the model read; Rasa then reuses the parse.
        parsed = await agent.parse_message(text)
        output = CollectingOutputChannel()
        await agent.handle_message(
            UserMessage(
                text,
                output,
                sender_id,
                parse_data=parsed,
                input_channel=metadata.get("channel"),
                metadata=metadata,
            )
        )
        request_intent, request_confidence = best_request(parsed)
        return Turn(
            replies=[m["text"] for m in output.messages if m.get("text")],
            intent=parsed["intent"]["name"],
            confidence=float(parsed["intent"]["confidence"]),
            model=model,
            request_intent=request_intent,
            request_confidence=request_confidence,
            entities=first_entities(parsed, ENTITY_NAMES),
            ticket_id=next(
                (
                    int(m["custom"]["ticket_id"])
                    for m in output.messages
                    if "ticket_id" in (m.get("custom") or {})
                ),
                None,
            ),
        )
