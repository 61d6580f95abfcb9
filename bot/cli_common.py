"""What every command of `python -m bot` shares: its mistakes and its one transaction."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.engine import create_engine, create_session_factory
from bot.settings import Settings


class CommandError(Exception):
    """A mistake in what was asked; printed without a traceback."""


@contextlib.asynccontextmanager
async def transaction(settings: Settings) -> AsyncIterator[AsyncSession]:
    """One transaction on the configured database, for one command."""
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            yield session
    finally:
        await engine.dispose()
