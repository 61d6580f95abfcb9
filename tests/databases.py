"""Where the tests' databases and Redis live.

By default every test database is a SQLite file. With `BOT_TEST_DATABASE_URL` naming a
PostgreSQL server (`postgresql+asyncpg://postgres@127.0.0.1:5432/test`), each is a database of
its own on that server; the database the URL names is only where they are created from.
Either way the newest schema is migrated once per session into a template, and a test's
database is a copy of it: migrating from scratch cost a tenth of a second, a test's whole
setup a few times that.

`BOT_TEST_REDIS_URL` (`redis://127.0.0.1:6379/15`) is the Redis the service's `redis_url`
gets; its database is emptied before each test, so the URL must name one of its own.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import redis
import sqlalchemy
from sqlalchemy.engine import URL, make_url

from bot.db.migrate import upgrade

DATABASE_ENV = "BOT_TEST_DATABASE_URL"
REDIS_ENV = "BOT_TEST_REDIS_URL"


class Databases(Protocol):
    def create(self, migrated: bool) -> str:
        """A new database's URL: at the newest migration, or empty."""

    def drop(self, url: str) -> None: ...

    def close(self) -> None: ...


class SqliteFiles:
    """Files in one directory of the session's temporary tree."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._numbers = itertools.count()
        self._template = directory / "template.db"
        upgrade(self._url(self._template))

    @staticmethod
    def _url(path: Path) -> str:
        return f"sqlite+aiosqlite:///{path}"

    def create(self, migrated: bool) -> str:
        path = self._directory / f"test{next(self._numbers)}.db"
        if migrated:
            shutil.copy(self._template, path)
        return self._url(path)

    def drop(self, url: str) -> None:
        # The write-ahead log and its index sit beside the file.
        path = Path(make_url(url).database or "")
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)

    def close(self) -> None:
        self._template.unlink(missing_ok=True)


class PostgresDatabases:
    """Databases on one server, named after this session so that sessions running at the
    same time (other checkouts, other people) never meet."""

    def __init__(self, server_url: str) -> None:
        self._server = make_url(server_url)
        if self._server.get_backend_name() != "postgresql":
            raise ValueError(f"{DATABASE_ENV} must name a PostgreSQL server, not {server_url}")
        # CREATE and DROP DATABASE refuse to run inside a transaction.
        self._admin = sqlalchemy.create_engine(
            self._server.set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT"
        )
        self._prefix = f"bot_test_{os.getpid()}_{secrets.token_hex(3)}"
        self._numbers = itertools.count()
        # A drop took from a tenth of a second to two; the next test need not wait for it.
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-database")
        self._drops: list[Future[None]] = []
        self._template = f"{self._prefix}_template"
        self._execute(f'CREATE DATABASE "{self._template}"')
        upgrade(self._url(self._template))

    def _url(self, name: str) -> str:
        url: URL = self._server.set(database=name)
        return url.render_as_string(hide_password=False)

    def _execute(self, statement: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(sqlalchemy.text(statement))

    def create(self, migrated: bool) -> str:
        name = f"{self._prefix}_{next(self._numbers)}"
        # A copy of the template is a file copy, not a migration; template0 is PostgreSQL's
        # pristine empty database.
        source = self._template if migrated else "template0"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        return self._url(name)

    def drop(self, url: str) -> None:
        # FORCE ends the connections a test left open (a subprocess, an undisposed engine).
        statement = f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'
        self._drops.append(self._dropper.submit(self._execute, statement))

    def close(self) -> None:
        self._dropper.shutdown(wait=True)
        self._execute(f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)')
        self._admin.dispose()
        # A drop that failed leaves a database behind: say so rather than let it pile up.
        for drop in self._drops:
            drop.result()


def databases_for(directory: Path) -> Databases:
    server = os.environ.get(DATABASE_ENV)
    return PostgresDatabases(server) if server else SqliteFiles(directory)


def redis_url_from_env() -> str:
    """`BOT_TEST_REDIS_URL`, checked to name a database index; "" when unset."""
    url = os.environ.get(REDIS_ENV, "")
    if url and not urlsplit(url).path.strip("/").isdigit():
        raise ValueError(
            f"{REDIS_ENV} must name a Redis database of its own, e.g. redis://127.0.0.1:6379/15: "
            "each test empties it"
        )
    return url


def empty_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
