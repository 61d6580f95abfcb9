"""The Rasa dialogue engine, loaded in-process from a trained model archive."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, ConversationResumed
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)


class NoModel(Exception):
    pass


def latest_model(models_dir: Path) -> Path:
    archives = sorted(models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not archives:
        raise NoModel(f"no trained model in {models_dir}/; run `make train` first")
    return archives[-1]


def tracker_store_for(database_url: str) -> TrackerStore:
    """Rasa's own SQL tracker store, on the service's database."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return SQLTrackerStore(dialect="sqlite", db=url.database)
    return SQLTrackerStore(
        dialect="postgresql",
        host=url.host,
        port=url.port,
        db=url.database,
        username=url.username,
        password=url.password,
    )


class RasaEngine:
    def __init__(self, agent: Agent, model_path: Path) -> None:
        self._agent = agent
        self.model_path = model_path

    @classmethod
    async def load(
        cls, model_path: Path, tracker_store: TrackerStore, action_endpoint: EndpointConfig
    ) -> RasaEngine:
        # Loading restores TensorFlow graphs for seconds; keep the event loop free meanwhile.
        agent = await asyncio.to_thread(
            Agent.load,
            model_path,
            tracker_store=tracker_store,
            action_endpoint=action_endpoint,
        )
        # The first parse loads jieba's dictionary; pay for it now, not on a resident's message.
        await agent.parse_message("你好")
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
