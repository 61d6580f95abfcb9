"""bot.db.aiosqlite_cursor against SQLAlchemy's own aiosqlite cursor: the same results and
errors for every kind of statement, in one trip to aiosqlite's thread instead of several, and
no trip for a commit or rollback with nothing to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_cursor
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from bot.db.aiosqlite_cursor import (
    execute,
    executemany,
    one_trip_per_statement,
    sqlalchemy_execute,
    sqlalchemy_executemany,
)
from bot.db.engine import create_engine, create_session_factory


async def outcomes(database: Path) -> list[Any]:
    """Rows, keys, row counts, last row ids and errors of each kind of statement."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{database}")
    seen: list[Any] = []
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
        inserted = await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
        seen.append((inserted.rowcount, inserted.lastrowid))
        many = await connection.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}]
        )
        seen.append(many.rowcount)
        updated = await connection.execute(text("UPDATE t SET v = v || 'x' WHERE id > 1"))
        seen.append(updated.rowcount)
        for query in ("SELECT id, v FROM t ORDER BY id", "SELECT id FROM t WHERE id < 0"):
            result = await connection.execute(text(query))
            seen.append((list(result.keys()), result.all()))
        streamed = await connection.stream(text("SELECT v FROM t ORDER BY id DESC"))
        seen.append([row async for row in streamed])
    for broken in ("INSERT INTO t (v) VALUES ('a')", "SELECT nothing FROM t"):
        async with engine.connect() as connection:
            with pytest.raises((IntegrityError, OperationalError)) as refused:
                await connection.execute(text(broken))
            seen.append((type(refused.value), str(refused.value.orig)))
    await engine.dispose()
    return seen


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of each call made on aiosqlite's thread, in order."""
    made: list[str] = []
    trip = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(getattr(fn, "__name__", ""))
        return await trip(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return made


async def test_statements_give_what_sqlalchemys_cursor_gives_in_one_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trips: list[str]
) -> None:
    monkeypatch.setattr(AsyncAdapt_aiosqlite_cursor, "execute", sqlalchemy_execute)
    monkeypatch.setattr(AsyncAdapt_aiosqlite_cursor, "executemany", sqlalchemy_executemany)
    sqlalchemys = await outcomes(tmp_path / "sqlalchemy.db")
    sqlalchemys_trips, trips[:] = list(trips), []

    one_trip_per_statement()
    assert AsyncAdapt_aiosqlite_cursor.execute is execute
    assert AsyncAdapt_aiosqlite_cursor.executemany is executemany
    assert await outcomes(tmp_path / "ours.db") == sqlalchemys
    assert sqlalchemys[0] == (1, 1) and sqlalchemys[1] == 2 and sqlalchemys[2] == 2
    # Every statement opens a cursor in SQLAlchemy's adapter; here each is one trip, but the
    # streamed one, which keeps SQLAlchemy's server-side cursor. Two trips or more saved each.
    statements = sqlalchemys_trips.count("cursor")
    assert statements >= 9
    assert trips.count("_run") == statements - 1 and trips.count("cursor") == 1
    assert len(sqlalchemys_trips) - len(trips) >= 2 * trips.count("_run")


def test_the_adapter_still_has_what_the_one_trip_methods_use() -> None:
    for name in ("_connection", "_adapt_connection", "await_", "_rows", "description"):
        assert name in AsyncAdapt_aiosqlite_cursor.__slots__
    assert hasattr(aiosqlite.Connection, "_execute") and hasattr(aiosqlite.Connection, "_conn")
    assert AsyncAdapt_aiosqlite_cursor.server_side is False


async def test_a_commit_or_rollback_with_nothing_written_makes_no_trip(
    tmp_path: Path, trips: list[str]
) -> None:
    # The service's engine: pooled, so a session reuses a connection already open.
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'trips.db'}")
    sessions = create_session_factory(engine)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    trips.clear()

    async with sessions() as session, session.begin():
        await session.execute(text("SELECT count(*) FROM t"))
    # The pool's rollback after the commit was a trip, and so was the read's commit.
    assert trips == ["_run"]
    trips.clear()

    async with sessions() as session, session.begin():
        await session.execute(text("INSERT INTO t (v) VALUES ('a')"))
    assert trips == ["_run", "commit"]
    trips.clear()

    async with sessions() as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('b')"))
    # Written, never committed: the rollback still goes, and nothing is kept.
    assert trips == ["_run", "rollback"]
    async with sessions() as session:
        assert (await session.execute(text("SELECT v FROM t"))).scalars().all() == ["a"]
    await engine.dispose()
