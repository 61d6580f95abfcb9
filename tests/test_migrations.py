"""The migrations build exactly the schema the models describe, and carry old data over."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ConversationPaused
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import create_engine

# Every model module is imported, so that Base.metadata holds every table.
import bot.db.nlu_models  # noqa: F401
from bot.db.migrate import upgrade, upgrade_async
from bot.db.models import Base


async def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    await upgrade_async(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    engine = create_engine(f"sqlite:///{tmp_path}/m.db", future=True)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


async def test_a_conversation_paused_by_an_older_version_is_released(tmp_path: Path) -> None:
    """Handoffs used to pause Rasa's conversation; now the open ticket holds it, and a
    tracker left paused would keep the bot silent for that resident for good."""
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    await asyncio.to_thread(upgrade, url, "0006")
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "m.db"))
    held = DialogueStateTracker.from_events(
        "wechat:held", [ActionExecuted("action_handoff", timestamp=1.0), ConversationPaused()]
    )
    chatting = DialogueStateTracker.from_events(
        "wechat:chatting", [ActionExecuted("action_listen", timestamp=1.0)]
    )
    for tracker in (held, chatting):
        await store.save(tracker)

    await upgrade_async(url)

    released = await store.retrieve("wechat:held")
    assert released is not None and not released.is_paused()
    assert released.latest_action_name == "action_listen"
    untouched = await store.retrieve("wechat:chatting")
    assert untouched is not None and len(untouched.events) == 1
