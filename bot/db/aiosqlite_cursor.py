"""One trip to aiosqlite's thread per SQLite statement instead of three or four.

SQLAlchemy 1.4's aiosqlite adapter (`AsyncAdapt_aiosqlite_cursor.execute`) awaits aiosqlite
for a cursor, the statement, its rows and the cursor's close: each a trip to the connection's
thread and back, waking the thread and then the event loop. A SELECT cost four trips, an
INSERT three. Here the same steps, on the same `sqlite3` connection and in the same order, run
in one trip; what the adapter keeps (description, rows, lastrowid, rowcount) and how errors
reach SQLAlchemy are unchanged. Server-side cursors keep SQLAlchemy's own code.

A commit or rollback with no transaction open makes no trip either. `sqlite3` begins a
transaction only before a write, and its commit and rollback do nothing outside one; yet
SQLAlchemy commits every read-only `session.begin()` and rolls back every connection the pool
takes back, even after a commit. A request message made 34 trips, 9 of them such rollbacks
(bench/profile_message.py); it now makes 25.

`tests/test_aiosqlite_cursor.py` holds it to the adapter's results; when upgrading SQLAlchemy
or aiosqlite, check `AsyncAdapt_aiosqlite_cursor.execute`/`executemany`,
`AsyncAdapt_aiosqlite_connection.commit`/`rollback` and aiosqlite's `Connection._execute` and
`_conn`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)

# SQLAlchemy's own methods: the server-side cursor still uses them, the tests compare with them.
sqlalchemy_execute = AsyncAdapt_aiosqlite_cursor.execute
sqlalchemy_executemany = AsyncAdapt_aiosqlite_cursor.executemany
sqlalchemy_commit = AsyncAdapt_aiosqlite_connection.commit
sqlalchemy_rollback = AsyncAdapt_aiosqlite_connection.rollback

Outcome = tuple[Any, list[Any], int | None, int]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> Outcome:
    """In aiosqlite's thread: what the adapter awaited step by step."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, [] if parameters is None else parameters)
        description = cursor.description
        rows = cursor.fetchall() if description and not many else []
        return description, rows, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


def _in_one_trip(
    cursor: AsyncAdapt_aiosqlite_cursor, operation: str, parameters: Any, many: bool
) -> Outcome:
    connection = cursor._connection
    return cursor.await_(connection._execute(_run, connection._conn, operation, parameters, many))


def execute(
    self: AsyncAdapt_aiosqlite_cursor, operation: str, parameters: Sequence[Any] | None = None
) -> None:
    if self.server_side:
        return sqlalchemy_execute(self, operation, parameters)
    try:
        description, rows, lastrowid, rowcount = _in_one_trip(self, operation, parameters, False)
    except Exception as error:
        self._adapt_connection._handle_exception(error)
        return None
    if description:
        self.description, self._rows = description, rows
        self.lastrowid = self.rowcount = -1
    else:
        self.description = None
        self.lastrowid, self.rowcount = lastrowid, rowcount
    return None


def executemany(
    self: AsyncAdapt_aiosqlite_cursor, operation: str, seq_of_parameters: Sequence[Any]
) -> None:
    try:
        _, _, lastrowid, rowcount = _in_one_trip(self, operation, seq_of_parameters, True)
    except Exception as error:
        self._adapt_connection._handle_exception(error)
        return None
    self.description = None
    self.lastrowid, self.rowcount = lastrowid, rowcount
    return None


def _in_transaction(adapted: AsyncAdapt_aiosqlite_connection) -> bool:
    """Read from the loop's thread: nothing else runs on the connection between statements.
    A closed connection counts as in one, so that SQLAlchemy's own method reports it."""
    try:
        return bool(adapted._connection._conn.in_transaction)
    except (ValueError, sqlite3.ProgrammingError):
        return True


def commit(self: AsyncAdapt_aiosqlite_connection) -> None:
    if _in_transaction(self):
        sqlalchemy_commit(self)


def rollback(self: AsyncAdapt_aiosqlite_connection) -> None:
    if _in_transaction(self):
        sqlalchemy_rollback(self)


def one_trip_per_statement() -> None:
    """Installs the one-trip methods, process-wide; installing twice changes nothing."""
    AsyncAdapt_aiosqlite_cursor.execute = execute
    AsyncAdapt_aiosqlite_cursor.executemany = executemany
    AsyncAdapt_aiosqlite_connection.commit = commit
    AsyncAdapt_aiosqlite_connection.rollback = rollback
