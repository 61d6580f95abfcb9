"""The service's tracker store writes what Rasa's own SQL tracker store writes."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    ConversationPaused,
    SessionStarted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.conversation.engine import BatchedSQLTrackerStore

COLUMNS = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")


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


async def saved_rows(store: SQLTrackerStore) -> list[tuple[object, ...]]:
    tracker = conversation()
    await store.save(tracker)
    # The next save adds only what is new since.
    tracker.update(ActionExecuted("action_handoff", timestamp=5.0))
    tracker.update(BotUttered("已请3号楼网格员王建国来帮您", timestamp=6.0))
    tracker.update(ConversationPaused(timestamp=7.0))
    await store.save(tracker)
    table = store.SQLEvent.__table__
    with store.engine.connect() as connection:
        query = sa.select(*(table.c[name] for name in COLUMNS)).order_by(table.c.id)
        return [tuple(row) for row in connection.execute(query)]


async def test_batched_saves_write_the_rows_rasa_writes(tmp_path: Path) -> None:
    domain = Domain.empty()
    rasa_store = SQLTrackerStore(domain, dialect="sqlite", db=str(tmp_path / "rasa.db"))
    ours = BatchedSQLTrackerStore(domain, dialect="sqlite", db=str(tmp_path / "ours.db"))

    expected = await saved_rows(rasa_store)
    assert len(expected) == 7
    assert await saved_rows(ours) == expected

    retrieved = await ours.retrieve("wechat:o1")
    assert retrieved is not None and retrieved.is_paused()
    assert retrieved.events == (await rasa_store.retrieve("wechat:o1")).events  # type: ignore[union-attr]
