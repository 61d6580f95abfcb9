"""Real `python -m bot serve` processes for tests: a PostgreSQL database of their own, an
emptied Redis database, a worker started and waited for, and counting rows until they settle.
Tests that use them skip where PostgreSQL or Redis is missing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis
from sqlalchemy import func, select

from bot.db.engine import create_engine, create_session_factory
from tests.helpers import WAIT_S

ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/14"
WECHAT_TOKEN = "workers-test-token"
START_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def create_database() -> str:
    try:
        admin = await asyncpg.connect(ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        pytest.skip(f"PostgreSQL not available on 127.0.0.1:5432: {e}")
    name = f"bot_workers_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def drop_database(url: str) -> None:
    admin = await asyncpg.connect(ADMIN_DSN, timeout=3)
    await admin.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await admin.close()


def flush_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).flushdb()
    except (redis.RedisError, OSError) as e:
        pytest.skip(f"Redis not available on 127.0.0.1:6379: {e}")


@dataclass
class Worker:
    url: str
    process: subprocess.Popen[bytes]


def start_worker(database_url: str, model: Path, log: Path, **settings: str) -> Worker:
    """`settings`: more BOT_ variables, or other values for these."""
    port = free_port()
    env = {
        **os.environ,
        "BOT_DATABASE_URL": database_url,
        "BOT_REDIS_URL": REDIS_URL,
        "BOT_MODEL_PATH": str(model),
        "BOT_WECHAT_TOKEN": WECHAT_TOKEN,
        "BOT_ROUTING_LEASE": "3",
        "BOT_CLAIM_TIMEOUT": "4",
        "BOT_WEBCHAT_IDENTITIES_PER_HOUR": "1000",
        "BOT_LOG_LEVEL": "WARNING",
        **settings,
    }
    command = [sys.executable, "-m", "bot", "serve", "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    return Worker(f"http://127.0.0.1:{port}", process)


def wait_ready(worker: Worker, log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise AssertionError(f"worker exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{worker.url}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        time.sleep(0.5)
    raise AssertionError(f"worker not ready in {START_S} s: {log.read_text()[-2000:]}")


async def count(database_url: str, model: type, *where: object) -> int:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            query = select(func.count()).select_from(model).where(*where)
            return int(await session.scalar(query))
    finally:
        await engine.dispose()


def is_(wanted: int) -> Callable[[int], bool]:
    return lambda seen: seen == wanted


async def until(
    read: Callable[[], Awaitable[int]], ok: Callable[[int], bool], at_most: float = WAIT_S
) -> None:
    deadline = time.monotonic() + at_most
    seen = None
    while time.monotonic() < deadline:
        seen = await read()
        if ok(seen):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"waited {at_most} s, last count {seen}")
