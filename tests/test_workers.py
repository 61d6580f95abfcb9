"""Two real worker processes on one PostgreSQL database and one Redis (skipped where either
is missing): what one worker receives reaches a console on the other, one conversation stays
in order, WeChat's retries landing on both give one ticket, and a worker killed with -9
leaves nothing unanswered and nothing answered twice; its timers fire on the other."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.channels.webchat.identity import COOKIE
from bot.db.engine import create_engine, create_session_factory
from bot.db.migrate import upgrade
from bot.db.models import Message, Ticket, TicketEvent
from bot.demo import DEMO_PASSWORD, seed
from bot.settings import Settings
from tests.helpers import WAIT_S, Chat, Console
from tests.served import (
    WECHAT_TOKEN,
    Worker,
    count,
    create_database,
    drop_database,
    flush_redis,
    is_,
    start_worker,
    until,
    wait_ready,
)
from tests.wechat_pusher import WechatPusher, text_xml

LEAK = "3号楼2单元501 厨房水管漏水了，麻烦来看看"
# One for the module: WeChat's message ids are unique, and the workers drop a repeated one.
PUSHER = WechatPusher(WECHAT_TOKEN, "wx-workers")


@dataclass
class Pair:
    database_url: str
    a: Worker
    b: Worker

    async def count(self, model: type, *where: object) -> int:
        return await count(self.database_url, model, *where)


@pytest.fixture(scope="module")
def pair(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    flush_redis()
    database_url = asyncio.run(create_database())
    upgrade(database_url)
    asyncio.run(seed(Settings(database_url=database_url)))
    log = tmp_path_factory.mktemp("workers") / "workers.log"
    a = start_worker(database_url, trained_model, log)
    b = start_worker(database_url, trained_model, log)
    try:
        wait_ready(a, log)
        wait_ready(b, log)
        yield Pair(database_url, a, b)
    finally:
        for worker in (a, b):
            if worker.process.poll() is None:
                worker.process.terminate()
                worker.process.wait(30)
        asyncio.run(drop_database(database_url))


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
    await until(lambda: pair.count(Message, *inbound, Message.ticket_id.is_not(None)), is_(3))
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
    await until(lambda: pair.count(Ticket, *tickets), is_(1))
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
    await until(lambda: pair.count(Message, mine, Message.handled_at.is_(None)), is_(0), 30)
    conversations = Ticket.conversation_id.in_([f"wechat:{o}" for o in openids])
    assert await pair.count(Ticket, conversations) == len(openids)
    # Each resident's line who is coming, exactly once: stored with the ticket, so none is
    # lost between the two (a line A stored but never handed on goes out from B's sweep:
    # tests/test_tickets.py).
    for openid in openids:
        conversation = Message.conversation_id == f"wechat:{openid}"
        assert await pair.count(Message, conversation, Message.sender_kind == "bot") == 1
    # Unclaimed for 4 s, the requests go up the chain: worker B does it, A is gone.
    escalated = (TicketEvent.kind == "escalate", TicketEvent.created_at > killed_at)
    await until(lambda: pair.count(TicketEvent, *escalated), lambda n: n >= 1, 30)
