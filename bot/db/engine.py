"""Engine and session factory for the service's database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import AsyncAdaptedQueuePool

from bot.db.aiosqlite_cursor import one_trip_per_statement


def _set_sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    # WAL lets the pool's other connections read while one writes; busy_timeout makes
    # writers wait for each other instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def ensure_sqlite_directory(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str) -> AsyncEngine:
    ensure_sqlite_directory(url)
    if make_url(url).get_backend_name() == "sqlite":
        # A pool instead of SQLite's default of one new connection (a thread and three
        # pragmas) per session; a local file needs no liveness ping.
        engine = create_async_engine(url, future=True, poolclass=AsyncAdaptedQueuePool)
    else:
        engine = create_async_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        one_trip_per_statement()
    return engine


def create_session_factory(engine: AsyncEngine) -> sessionmaker:
    return sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, future=True)
