"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from bot.db.migrate import upgrade_async
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
