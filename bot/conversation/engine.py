"""The Rasa dialogue engine, loaded in-process from a trained model archive."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.lock_store import (
    LOCK_LIFETIME,
    InMemoryLockStore,
    LockStore,
    RedisLockStore,
    TicketLock,
)
from rasa.core.tracker_store import TrackerStore
from rasa.utils.endpoints import EndpointConfig
from redis import StrictRedis
from redis.exceptions import RedisError

from bot.conversation.rasa_patches import SequentialGraphRunner, speed_up_action_validation
from bot.core.categories import REQUEST_INTENTS
from bot.core.chat import ChatMessage
from bot.core.handoff import ENTITY_NAMES, MODEL_KEY, HandoffResult

logger = logging.getLogger(__name__)


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
    processor = agent.processor
    if processor is not None:
        processor.graph_runner = SequentialGraphRunner.taking_over(processor.graph_runner)
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


class SharedLockStore(RedisLockStore):
    """Rasa's RedisLockStore, so that one conversation's turns are ordered across workers;
    while Redis does not answer, this worker's own memory, so that residents still get
    answers (`/readyz` reports the degradation).

    A lock lasts as long as a routing claim (`bot.conversation.work`), not Rasa's 60 s: a
    worker killed mid-turn leaves its lock behind, and the worker that takes the message over
    once the claim ends must not then wait out the rest of a minute."""

    def __init__(self, url: str, lifetime: float) -> None:
        LockStore.__init__(self)
        self._lifetime = lifetime
        self.red = StrictRedis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.key_prefix = "lock:"
        self._memory = InMemoryLockStore()

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        return super().issue_ticket(conversation_id, min(lock_lifetime, self._lifetime))

    def get_lock(self, conversation_id: str) -> TicketLock | None:
        try:
            return super().get_lock(conversation_id)
        except (RedisError, OSError):
            return self._memory.get_lock(conversation_id)

    def delete_lock(self, conversation_id: str) -> None:
        try:
            super().delete_lock(conversation_id)
        except (RedisError, OSError):
            self._memory.delete_lock(conversation_id)

    def save_lock(self, lock: TicketLock) -> None:
        try:
            super().save_lock(lock)
        except (RedisError, OSError):
            self._memory.save_lock(lock)


def lock_store_for(redis_url: str, lifetime: float) -> LockStore:
    return SharedLockStore(redis_url, lifetime) if redis_url else InMemoryLockStore()


class NoModel(Exception):
    pass


def latest_model(models_dir: Path) -> Path:
    archives = sorted(models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not archives:
        raise NoModel(f"no trained model in {models_dir}/; run `make train` first")
    return archives[-1]


@dataclass(frozen=True)
class Turn:
    """What one resident message did: the bot's lines still to be said (a handoff's went out
    with its ticket) and how the model read it."""

    replies: list[str]
    intent: str
    confidence: float
    model: str
    # The request intent ranked highest, also when another intent won, and its confidence.
    request_intent: str | None
    request_confidence: float
    # The first address, phone and time found, as action_handoff would pass them on.
    entities: dict[str, str]
    # The ticket this turn's handoff opened, and its line to the resident, already stored.
    ticket_id: int | None = None
    line: ChatMessage | None = None


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
    def agent(self) -> Agent:
        """The agent now loaded (the benchmark parses with it alone, for comparison)."""
        return self._agent

    @property
    def model_name(self) -> str:
        return self.model_path.name

    @classmethod
    async def load(
        cls,
        model_path: Path,
        tracker_store: TrackerStore,
        action_endpoint: EndpointConfig,
        lock_store: LockStore | None = None,
    ) -> RasaEngine:
        speed_up_action_validation()
        agent = await _load_agent(
            model_path, tracker_store, action_endpoint, lock_store or InMemoryLockStore()
        )
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
        # Parsed first so the turn can report what the model read; Rasa then reuses the parse,
        # with the resident's own words (the pipeline reads traditional characters as
        # simplified ones and says so in the parse's text: bot/rasa_simplified.py).
        parsed = {**await agent.parse_message(text), "text": text}
        output = CollectingOutputChannel()
        await agent.handle_message(
            UserMessage(
                text,
                output,
                sender_id,
                parse_data=parsed,
                input_channel=metadata.get("channel"),
                # A ticket this turn opens stores the model's reading with it.
                metadata={**metadata, MODEL_KEY: model},
            )
        )
        request_intent, request_confidence = best_request(parsed)
        # What `action_handoff` said it opened, and the line it stored with the ticket.
        handoff = next(
            (
                HandoffResult(int(c["ticket_id"]), c["told"], c.get("line"))
                for m in output.messages
                if "ticket_id" in (c := m.get("custom") or {})
            ),
            None,
        )
        return Turn(
            replies=[m["text"] for m in output.messages if m.get("text")],
            intent=parsed["intent"]["name"],
            confidence=float(parsed["intent"]["confidence"]),
            model=model,
            request_intent=request_intent,
            request_confidence=request_confidence,
            entities=first_entities(parsed, ENTITY_NAMES),
            ticket_id=handoff.ticket_id if handoff else None,
            line=handoff.stored_line() if handoff else None,
        )
