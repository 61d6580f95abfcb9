"""PostgreSQL going away under traffic, as in a restart: every connection dropped and none to
be had for a while. A real `serve` process reaches the database through a TCP proxy that the
test cuts and restores (skipped where PostgreSQL or Redis is missing). While it is gone,
callbacks answer 503 with Retry-After, never 500, and WeChat's retries are stored once it is
back; every acknowledged message ends in one ticket and one line to its resident."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from bot.db.migrate import upgrade
from bot.db.models import Message, Ticket
from bot.demo import seed
from bot.settings import Settings
from tests.served import (
    REDIS_URL,
    WECHAT_TOKEN,
    count,
    create_database,
    drop_database,
    flush_redis,
    free_port,
    is_,
    start_worker,
    until,
    wait_ready,
)
from tests.wechat_pusher import SignedCall, WechatPusher, text_xml

LEAK = "3号楼2单元501 厨房水管漏水了，麻烦来看看"
RESIDENTS_BEFORE = RESIDENTS_DURING = 6
AWAY_S = 2.0


class Proxy:
    """127.0.0.1:`port` → PostgreSQL. `cut` drops every connection and refuses new ones, as a
    restarting server does; `restore` listens on the same port again."""

    def __init__(self, host: str, port: int) -> None:
        self._target = host, port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _accept(self, client_in: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        try:
            server_in, server = await asyncio.open_connection(*self._target)
        except OSError:
            client.transport.abort()
            return
        self._open |= {client, server}
        await asyncio.gather(
            self._pipe(client_in, server), self._pipe(server_in, client), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()
            self._open.discard(writer)


@pytest.fixture
def database_url() -> Iterator[str]:
    flush_redis()
    url = asyncio.run(create_database())
    upgrade(url)
    asyncio.run(seed(Settings(database_url=url)))
    yield url
    asyncio.run(drop_database(url))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_callbacks_while_postgresql_is_away_get_503_and_nothing_acknowledged_is_lost(
    database_url: str, trained_model: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    real = make_url(database_url)
    proxy = Proxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.restore()
    through_proxy = str(real.set(host="127.0.0.1", port=proxy.port))
    log = tmp_path / "worker.log"
    worker = start_worker(through_proxy, trained_model, log, BOT_REDIS_URL=REDIS_URL)
    pusher = WechatPusher(WECHAT_TOKEN, "wx-outage")

    async def post(call: SignedCall) -> tuple[int, str, str | None]:
        answer = await http.post(
            f"{worker.url}/channels/wechat", params=call.params, data=call.body
        )
        return answer.status, await answer.text(), answer.headers.get("Retry-After")

    def request() -> tuple[str, SignedCall]:
        openid = f"o-outage-{uuid.uuid4().hex[:8]}"
        return openid, pusher.call(text_xml(openid, LEAK, pusher.next_msg_id()))

    try:
        await asyncio.to_thread(wait_ready, worker, log)
        before = [request() for _ in range(RESIDENTS_BEFORE)]
        for _, call in before:
            assert (await post(call))[:2] == (200, "success")

        await proxy.cut()  # some of those are being routed right now
        during = [request() for _ in range(RESIDENTS_DURING)]
        while_away = [await post(call) for _, call in during]
        assert {(status, retry_after) for status, _, retry_after in while_away} == {(503, "5")}
        await asyncio.sleep(AWAY_S)
        await proxy.restore()

        for _, call in during:  # WeChat tries again, with the same query and body
            for _ in range(10):
                status, body, _ = await post(call)
                if status == 200:
                    break
                assert status == 503, body
                await asyncio.sleep(1.0)
            assert (status, body) == (200, "success")

        everyone = [openid for openid, _ in before + during]
        conversations = Ticket.conversation_id.in_([f"wechat:{o}" for o in everyone])
        await until(lambda: count(database_url, Ticket, conversations), is_(len(everyone)), 60)
        for openid in everyone:
            conversation = f"wechat:{openid}"
            assert await count(database_url, Ticket, Ticket.conversation_id == conversation) == 1
            mine = Message.conversation_id == conversation
            assert await count(database_url, Message, mine, Message.direction == "in") == 1
            assert await count(database_url, Message, mine, Message.sender_kind == "bot") == 1
    finally:
        worker.process.terminate()
        await asyncio.to_thread(worker.process.wait, 30)
        await proxy.cut()
    assert " 500 " not in log.read_text()
