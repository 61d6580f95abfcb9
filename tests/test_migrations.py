"""The migrations build exactly the schema the models describe, and carry old data over."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ConversationPaused
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.engine import Connection

# Every model module is imported, so that Base.metadata holds every table.
import bot.db.nlu_models  # noqa: F401
from bot.conversation.rasa_patches import tracker_store_for
from bot.db.engine import create_engine
from bot.db.migrate import upgrade, upgrade_async
from bot.db.models import Base


def _schema_differences(connection: Connection) -> list[object]:
    return compare_metadata(MigrationContext.configure(connection), Base.metadata)


async def test_migrated_schema_matches_the_models(empty_database_url: str) -> None:
    await upgrade_async(empty_database_url)
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(_schema_differences)
    finally:
        await engine.dispose()
    assert diff == []


async def test_a_conversation_paused_by_an_older_version_is_released(
    empty_database_url: str,
) -> None:
    """Handoffs used to pause Rasa's conversation; now the open ticket holds it, and a
    tracker left paused would keep the bot silent for that resident for good."""
    await asyncio.to_thread(upgrade, empty_database_url, "0006")
    store = tracker_store_for(empty_database_url)
    store.domain = Domain.empty()
    held = DialogueStateTracker.from_events(
        "wechat:held", [ActionExecuted("action_handoff", timestamp=1.0), ConversationPaused()]
    )
    chatting = DialogueStateTracker.from_events(
        "wechat:chatting", [ActionExecuted("action_listen", timestamp=1.0)]
    )
    for tracker in (held, chatting):
        await store.save(tracker)

    await upgrade_async(empty_database_url)

    released = await store.retrieve("wechat:held")
    assert released is not None and not released.is_paused()
    assert released.latest_action_name == "action_listen"
    untouched = await store.retrieve("wechat:chatting")
    assert untouched is not None and len(untouched.events) == 1
