"""Routing work taken from the database (bot/conversation/work.py): a message whose routing
keeps failing is tried again, then set aside, and never holds its conversation for ever; a
conversation's messages are taken one after another, other conversations' meanwhile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from bot.conversation.messages import store_inbound
from bot.conversation.work import MAX_ATTEMPTS, RETRY_AFTER, RoutingWork
from bot.core.chat import ChatRef, Inbound, StoredInbound
from bot.core.clock import FakeClock
from bot.db.engine import create_engine, create_session_factory
from bot.db.models import Message

CHAT = ChatRef("webchat", "private", "stuck-resident", "stuck-resident")


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[sessionmaker]:
    engine = create_engine(database_url)
    yield create_session_factory(engine)
    await engine.dispose()


async def _store(sessions: sessionmaker, number: int, text: str) -> StoredInbound:
    stored = await store_inbound(sessions, Inbound(CHAT, f"stuck:{number}", "孙大爷", text))
    assert stored is not None
    return stored


async def test_a_message_failing_every_time_is_set_aside_and_the_next_one_is_routed(
    sessions: sessionmaker, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[str] = []

    async def route(stored: StoredInbound) -> None:
        attempts.append(stored.inbound.text)
        if stored.inbound.text == "毒消息":
            raise RuntimeError("this message breaks the turn")
        async with sessions() as session, session.begin():
            message = await session.get(Message, stored.message_id)
            assert message is not None
            message.handled_at = clock.now()

    poisonous = await _store(sessions, 1, "毒消息")
    await _store(sessions, 2, "楼道灯坏了")
    work = RoutingWork(sessions, route, clock, "worker-a")
    await work.drain()
    # Only the first is tried: the second waits behind it, in order.
    assert attempts == ["毒消息"]

    for _ in range(MAX_ATTEMPTS + 2):
        clock.advance(seconds=RETRY_AFTER.total_seconds() + 1)
        with caplog.at_level(logging.ERROR, logger="bot.conversation.work"):
            await work.drain()

    assert attempts == ["毒消息"] * MAX_ATTEMPTS + ["楼道灯坏了"]
    assert f"message {poisonous.message_id} failed routing {MAX_ATTEMPTS} times" in caplog.text
    async with sessions() as session:
        handled = (await session.scalars(select(Message.handled_at).order_by(Message.id))).all()
    assert all(when is not None for when in handled)


async def test_each_conversation_offers_only_its_oldest_unrouted_message(
    sessions: sessionmaker, clock: FakeClock
) -> None:
    started: list[str] = []
    release = asyncio.Event()

    async def route(stored: StoredInbound) -> None:
        started.append(stored.inbound.text)
        await release.wait()
        async with sessions() as session, session.begin():
            message = await session.get(Message, stored.message_id)
            assert message is not None
            message.handled_at = clock.now()

    for number, (resident, text) in enumerate(
        [("a", "张家漏水"), ("b", "李家停电"), ("a", "张家又说一句"), ("c", "王家订饭")]
    ):
        chat = ChatRef("webchat", "private", resident, resident)
        assert await store_inbound(sessions, Inbound(chat, f"m{number}", resident, text))
    work = RoutingWork(sessions, route, clock, "worker-a", capacity=4)
    draining = asyncio.create_task(work.drain())
    while len(started) < 3:
        await asyncio.sleep(0.01)
    # Room for four, but 张家's second message waits behind the first.
    await asyncio.sleep(0.1)
    assert sorted(started) == sorted(["张家漏水", "李家停电", "王家订饭"])

    release.set()
    await draining
    assert started[-1] == "张家又说一句"
