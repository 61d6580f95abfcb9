"""Two real worker processes on one PostgreSQL database and one Redis (skipped where either
is missing): what one worker receives reaches a console on the other, one conversation stays
in order, WeChat's retries landing on both give one ticket, and a worker killed with -9
leaves nothing unanswered and nothing answered twice; its timers fire on the other."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import redis
from sqlalchemy import func, select

from bot.channels.webchat.identity import COOKIE
from bot.db.engine import create_engine, create_session_factory
from bot.db.migrate import upgrade
from bot.db.models import Message, Ticket, TicketEvent
from bot.demo import DEMO_PASSWORD, seed
from bot.settings import Settings
from tests.helpers import WAIT_S, Chat, Console
from tests.wechat_pusher import WechatPusher, text_xml

ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/14"
WECHAT_TOKEN = "workers-test-token"
LEAK = "3号楼2单元501 厨房水管漏水了，麻烦来看看"
START_S = 120.0
# One for the module: WeChat's message ids are unique, and the workers drop a repeated one.
PUSHER = WechatPusher(WECHAT_TOKEN, "wx-workers")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _create_database() -> str:
    try:
        admin = await asyncpg.connect(ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        pytest.skip(f"PostgreSQL not available on 127.0.0.1:5432: {e}")
    name = f"bot_workers_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def _drop_database(url: str) -> None:
    admin = await asyncpg.connect(ADMIN_DSN, timeout=3)
    await admin.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await admin.close()


def _flush_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).flushdb()
    except (redis.RedisError, OSError) as e:
        pytest.skip(f"Redis not available on 127.0.0.1:6379: {e}")


@dataclass
class Worker:
    url: str
    process: subprocess.Popen[bytes]


@dataclass
class Pair:
    database_url: str
    a: Worker
    b: Worker

    async def count(self, model: type, *where: object) -> int:
        engine = create_engine(self.database_url)
        try:
            async with create_session_factory(engine)() as session:
                query = select(func.count()).select_from(model).where(*where)
                return int(await session.scalar(query))
        finally:
            await engine.dispose()


def _start_worker(database_url: str, model: Path, log: Path) -> Worker:
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
    }
    command = [sys.executable, "-m", "bot", "serve", "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    return Worker(f"http://127.0.0.1:{port}", process)


def _wait_ready(worker: Worker, log: Path) -> None:
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


@pytest.fixture(scope="module")
def pair(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    _flush_redis()
    database_url = asyncio.run(_create_database())
    upgrade(database_url)
    asyncio.run(seed(Settings(database_url=database_url)))
    log = tmp_path_factory.mktemp("workers") / "workers.log"
    a = _start_worker(database_url, trained_model, log)
    b = _start_worker(database_url, trained_model, log)
    try:
        _wait_ready(a, log)
        _wait_ready(b, log)
        yield Pair(database_url, a, b)
    finally:
        for worker in (a, b):
            if worker.process.poll() is None:
                worker.process.terminate()
                worker.process.wait(30)
        asyncio.run(_drop_database(database_url))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _settled() -> None:
    """Another process routes: the waits in `Chat` and `Console` are the only settling."""


async def login(http: aiohttp.ClientSession, worker: Worker, name: str) -> str:
    answer = await http.post(
        f"{worker.url}/api/login", json={"name": name, "password": DEMO_PASSWORD}
    )
    assert answer.status == 200, await answer.text()
    return str((await answer.json())["token"])


async def console(http: aiohttp.ClientSession, worker: Worker, token: str) -> Console:
    headers = {"Authorization": f"Bearer {token}"}
    answer = await http.post(f"{worker.url}/api/ws-ticket", headers=headers)
    ticket = (await answer.json())["ticket"]
    ws = await http.ws_connect(f"{worker.url}/api/ws", params={"ticket": ticket})
    ready = await ws.receive_json(timeout=WAIT_S)
    assert ready["type"] == "ready"
    return Console(ws, _settled, [], ready["last_event_id"])


async def resident(http: aiohttp.ClientSession, worker: Worker, name: str) -> Chat:
    answer = await http.post(f"{worker.url}/webchat/api/session", json={"name": name})
    await answer.read()
    cookie = answer.cookies[COOKIE].value
    http.cookie_jar.clear()
    ws = await http.ws_connect(
        f"{worker.url}/webchat/ws",
        params={"chat": "private"},
        headers={"Cookie": f"{COOKIE}={cookie}"},
    )
    assert (await ws.receive_json(timeout=WAIT_S))["type"] == "history"
    return Chat(ws, cookie, [], _settled)


async def test_a_console_on_one_worker_follows_a_request_the_other_received(
    pair: Pair, http: aiohttp.ClientSession
) -> None:
    wang = await login(http, pair.b, "王建国")
    screen = await console(http, pair.b, wang)
    aunt = await resident(http, pair.a, "张阿姨")

    await aunt.say(LEAK)
    ticket = (await screen.event("ticket.created"))["ticket"]
    assert ticket["assignee"]["name"] == "王建国"
    headers = {"Authorization": f"Bearer {wang}"}
    for step, body in (("claim", None), ("reply", {"text": "我十分钟后到"})):
        answer = await http.post(
            f"{pair.b.url}/api/tickets/{ticket['id']}/{step}", headers=headers, json=body
        )
        body_text = await answer.text()
        assert answer.status == 200, body_text
    # Her page is connected to worker A; the reply was made on worker B.
    assert (await aunt.hear("member"))["text"] == "我十分钟后到"


async def test_one_conversation_stays_in_order_across_workers(
    pair: Pair, http: aiohttp.ClientSession
) -> None:
    pusher = PUSHER
    openid = f"o-order-{uuid.uuid4().hex[:8]}"
    lines = [LEAK, "水已经流到楼下了", "我在家等你们"]
    for number, (text, worker) in enumerate(zip(lines, (pair.a, pair.b, pair.a), strict=True)):
        call = pusher.call(text_xml(openid, text, pusher.next_msg_id(), int(time.time()) + number))
        answer = await http.post(
            f"{worker.url}/channels/wechat", params=call.params, data=call.body
        )
        assert (answer.status, await answer.text()) == (200, "success")

    conversation = Message.conversation_id == f"wechat:{openid}"
    inbound = (Message.direction == "in", conversation)
    await _until(lambda: pair.count(Message, *inbound, Message.ticket_id.is_not(None)), is_(3))
    engine = create_engine(pair.database_url)
    try:
        async with create_session_factory(engine)() as session:
            rows = (await session.execute(
                select(Message.text, Message.ticket_id, Message.handled_at)
                .where(*inbound).order_by(Message.id)
            )).all()  # fmt: skip
    finally:
        await engine.dispose()
    assert [r.text for r in rows] == lines
    assert len({r.ticket_id for r in rows}) == 1  # the first opened it, the others joined it
    handled = [r.handled_at for r in rows]
    assert handled == sorted(handled)
    assert await pair.count(Ticket, Ticket.conversation_id == f"wechat:{openid}") == 1


async def test_retries_on_both_workers_give_one_message_and_one_ticket(
    pair: Pair, http: aiohttp.ClientSession
) -> None:
    pusher = PUSHER
    openid = f"o-retry-{uuid.uuid4().hex[:8]}"
    call = pusher.call(text_xml(openid, LEAK, pusher.next_msg_id()))
    answers = await asyncio.gather(
        *(
            http.post(f"{worker.url}/channels/wechat", params=call.params, data=call.body)
            for worker in (pair.a, pair.b, pair.a, pair.b)
        )
    )
    assert [(a.status, await a.text()) for a in answers] == [(200, "success")] * 4
    tickets = (Ticket.conversation_id == f"wechat:{openid}",)
    await _until(lambda: pair.count(Ticket, *tickets), is_(1))
    await asyncio.sleep(1.0)  # a second ticket or line would have followed by now
    assert await pair.count(Ticket, *tickets) == 1
    conversation = Message.conversation_id == f"wechat:{openid}"
    assert await pair.count(Message, conversation, Message.direction == "in") == 1
    assert await pair.count(Message, conversation, Message.sender_kind == "bot") == 1


async def test_a_killed_worker_leaves_nothing_unanswered_and_its_timers_fire_elsewhere(
    pair: Pair, http: aiohttp.ClientSession
) -> None:
    pusher = PUSHER
    openids = [f"o-kill-{uuid.uuid4().hex[:8]}" for _ in range(12)]
    for openid in openids:
        call = pusher.call(text_xml(openid, LEAK, pusher.next_msg_id()))
        answer = await http.post(
            f"{pair.a.url}/channels/wechat", params=call.params, data=call.body
        )
        assert (answer.status, await answer.text()) == (200, "success")
    pair.a.process.send_signal(signal.SIGKILL)
    pair.a.process.wait()
    killed_at = datetime.now(UTC)

    mine = Message.conversation_id.in_([f"wechat:{o}" for o in openids])
    await _until(lambda: pair.count(Message, mine, Message.handled_at.is_(None)), is_(0), 30)
    conversations = Ticket.conversation_id.in_([f"wechat:{o}" for o in openids])
    assert await pair.count(Ticket, conversations) == len(openids)
    # Answered once at most: a line is never sent twice. (A worker killed between opening a
    # ticket and storing its line leaves that resident's line unsaid; the member has the
    # ticket. docs/deploy.md.)
    for openid in openids:
        bot_lines = Message.conversation_id == f"wechat:{openid}", Message.sender_kind == "bot"
        assert await pair.count(Message, *bot_lines) <= 1
    # Unclaimed for 4 s, the requests go up the chain: worker B does it, A is gone.
    escalated = (TicketEvent.kind == "escalate", TicketEvent.created_at > killed_at)
    await _until(lambda: pair.count(TicketEvent, *escalated), lambda n: n >= 1, 30)


def is_(wanted: int) -> Callable[[int], bool]:
    return lambda seen: seen == wanted


async def _until(
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
