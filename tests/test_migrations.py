"""The migrations build exactly the schema the models describe, and carry old data over."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ConversationPaused
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text
from sqlalchemy.engine import Connection

# Every model module is imported, so that Base.metadata holds every table.
import bot.db.nlu_models  # noqa: F401
from bot.conversation.tracker_store import EVENTS, EventsTrackerStore
from bot.db.engine import create_engine
from bot.db.migrate import upgrade, upgrade_async
from bot.db.models import Base
from tests.test_tracker_store import rasa_store_on


def _schema_differences(connection: Connection) -> list[object]:
    # Ours, and Rasa's `events` table, which the migrations make as Rasa declares it.
    return compare_metadata(
        MigrationContext.configure(connection), [Base.metadata, EVENTS.metadata]
    )


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
    # That version ran Rasa's own SQL tracker store, which made its table.
    rasa_store = rasa_store_on(empty_database_url)
    held = DialogueStateTracker.from_events(
        "wechat:held", [ActionExecuted("action_handoff", timestamp=1.0), ConversationPaused()]
    )
    chatting = DialogueStateTracker.from_events(
        "wechat:chatting", [ActionExecuted("action_listen", timestamp=1.0)]
    )
    for tracker in (held, chatting):
        await rasa_store.save(tracker)
    rasa_store.engine.dispose()

    await upgrade_async(empty_database_url)

    engine = create_engine(empty_database_url)
    try:
        store = EventsTrackerStore(engine, Domain.empty())
        released = await store.retrieve("wechat:held")
        untouched = await store.retrieve("wechat:chatting")
    finally:
        await engine.dispose()
    assert released is not None and not released.is_paused()
    assert released.latest_action_name == "action_listen"
    assert untouched is not None and len(untouched.events) == 1


async def test_what_existed_before_communities_is_all_in_the_default_one(tmp_path: Path) -> None:
    """A single-community install upgrades to one community holding everything it had, so
    its secretary still sees every ticket and every audit entry."""
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    await asyncio.to_thread(upgrade, url, "0007")
    # On SQLite: the rows are written as a 0007 install left them, before the upgrade.
    engine = create_sync_engine(f"sqlite:///{tmp_path}/m.db", future=True)
    now = "2026-12-01 08:00:00+00:00"
    with engine.begin() as connection:
        for statement in (
            "INSERT INTO grids (id, name, code, aliases, invite, created_at)"
            " VALUES (1, '3号楼', 'b3', '', 'inv', :now)",
            "INSERT INTO members (id, name, role, skills, paused, active, created_at)"
            " VALUES (1, '陈红梅', 'secretary', '', 0, 1, :now)",
            "INSERT INTO member_grids (member_id, grid_id) VALUES (1, 1)",
            "INSERT INTO residents (id, channel, external_id, name, active, created_at)"
            " VALUES (1, 'webchat', 'zhang', '张阿姨', 1, :now)",
            "INSERT INTO tickets (id, conversation_id, resident_id, channel, chat_type,"
            " category, intent, confidence, text, entities, status, created_at, updated_at,"
            " escalation_level, tried_member_ids, broadcast)"
            " VALUES (1, 'webchat:zhang', 1, 'webchat', 'private', 'repair', 'repair', 0.9,"
            " '灯坏了', '{}', 'new', :now, :now, 0, '[]', 0)",
            "INSERT INTO audit_log (at, actor_id, actor_name, action)"
            " VALUES (:now, 1, '陈红梅', 'login')",
        ):
            connection.execute(text(statement), {"now": now})

    await upgrade_async(url)

    with engine.connect() as connection:
        communities = connection.execute(text("SELECT id, name, code FROM communities")).all()
        assert [tuple(c[1:]) for c in communities] == [("默认社区", "default")]
        (default,) = (c[0] for c in communities)
        for table in ("grids", "members", "tickets", "audit_log"):
            placed = connection.execute(text(f"SELECT DISTINCT community_id FROM {table}")).all()
            assert placed == [(default,)], table
    engine.dispose()
