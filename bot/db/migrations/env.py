"""Alembic environment: runs migrations on the async engine named by the configuration."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

# Every model module is imported, so that Base.metadata holds every table.
import bot.db.nlu_models  # noqa: F401
from bot.db.engine import create_engine
from bot.db.models import Base, UTCDateTime
from bot.settings import DEFAULT_DATABASE_URL

target_metadata = Base.metadata


def database_url() -> str:
    return (
        context.config.get_main_option("sqlalchemy.url")
        or os.environ.get("BOT_DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    # Migrations stay free of application imports: the UTC decorator is plain DateTime in SQL.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=render_item,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_engine(database_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
