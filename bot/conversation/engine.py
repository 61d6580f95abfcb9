"""The Rasa dialogue engine, loaded in-process from a trained model archive."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ConversationResumed
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

T = TypeVar("T")


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
        return ThreadedTrackerStore(SQLTrackerStore(dialect="sqlite", db=url.database))
    return ThreadedTrackerStore(
        SQLTrackerStore(
            dialect="postgresql",
            host=url.host,
            port=url.port,
            db=url.database,
            username=url.username,
            password=url.password,
        )
    )


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
    return await asyncio.to_thread(asyncio.run, call)


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

    RemoteAction._validate_action_result = validate  # type: ignore[method-assign]
    RemoteAction._fast_validation = True  # type: ignore[attr-defined]


class RasaEngine:
    def __init__(self, agent: Agent, model_path: Path) -> None:
        self._agent = agent
        self.model_path = model_path

    @classmethod
    async def load(
        cls, model_path: Path, tracker_store: TrackerStore, action_endpoint: EndpointConfig
    ) -> RasaEngine:
        speed_up_action_validation()
        # Loading restores TensorFlow graphs for seconds; keep the event loop free meanwhile.
        agent = await asyncio.to_thread(
            Agent.load,
            model_path,
            tracker_store=tracker_store,
            action_endpoint=action_endpoint,
        )
        # The first parse loads jieba's dictionary; pay for it now, not on a resident's message.
        await agent.parse_message("你好")
        # The model leaves over half a million long-lived objects; keeping them out of the
        # collector's full passes saves pauses of a quarter second on the event loop.
        gc.collect()
        gc.freeze()
        logger.info("model %s loaded", model_path.name)
        return cls(agent, model_path)

    async def handle(self, text: str, sender_id: str, metadata: dict[str, Any]) -> list[str]:
        """Run one turn; returns what the bot says (nothing while the conversation is paused)."""
        output = CollectingOutputChannel()
        await self._agent.handle_message(
            UserMessage(
                text,
                output,
                sender_id,
                input_channel=metadata.get("channel"),
                metadata=metadata,
            )
        )
        return [m["text"] for m in output.messages if m.get("text")]

    async def resume(self, sender_id: str) -> None:
        async with self._agent.lock_store.lock(sender_id):
            tracker = await self._agent.tracker_store.get_or_create_tracker(sender_id)
            tracker.update(ConversationResumed())
            # Without this the rules see "previous action action_handoff" and mispredict.
            tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
            await self._agent.tracker_store.save(tracker)

    async def is_paused(self, sender_id: str) -> bool:
        tracker = await self._agent.tracker_store.retrieve(sender_id)
        return tracker is not None and tracker.is_paused()
