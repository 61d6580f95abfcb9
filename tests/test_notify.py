"""Ticket cards for the WeCom group robot: content, the 20-a-minute limit, failures, restarts.

Time is a fake clock shared by the notifier and the fake WeCom server, and the notifier's sleep
moves it forward, so a minute of rate limiting passes in milliseconds.
"""

from __future__ import annotations

import asyncio
import gc
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from bot.channels.notify import ROUTE, RateWindow, RobotNotifier, backoff_delay
from bot.channels.robot_cards import ticket_card
from bot.channels.wechat_api import GroupRobot
from bot.db.engine import create_engine, create_session_factory
from bot.db.models import Grid, Notification, Resident, Ticket, default_community
from tests.fake_wechat import WEBHOOK_SEND, FakeWechat

CONSOLE = "https://care.example.org/console/"
PHONE = "13800138000"
WAIT_S = 5.0


@dataclass
class FakeTime:
    """A clock that only moves when someone sleeps."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.slept.append(delay)
        self.now += delay
        # Still yield, as a real sleep would, so other tasks (the fake server) get to run.
        await asyncio.sleep(0)


class RecordingRobot:
    """A GroupRobot that notes the (fake) time of every card the server accepted."""

    def __init__(self, robot: GroupRobot, time: FakeTime) -> None:
        self._robot = robot
        self._time = time
        self.accepted_at: list[float] = []

    async def send_markdown(self, content: str) -> None:
        await self._robot.send_markdown(content)
        self.accepted_at.append(self._time.now)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[sessionmaker]:
    engine = create_engine(database_url)
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def fake(fake_time: FakeTime) -> AsyncIterator[FakeWechat]:
    async with FakeWechat(clock=fake_time.clock) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def robot_for(
    http: aiohttp.ClientSession, fake: FakeWechat, fake_time: FakeTime, key: str | None = None
) -> GroupRobot:
    return GroupRobot(
        http, fake.base_url, key or fake.webhook_key, attempts=2, sleep=fake_time.sleep
    )


def notifier_for(
    sessions: sessionmaker, robot: object, fake_time: FakeTime, **kwargs: object
) -> RobotNotifier:
    return RobotNotifier(
        sessions,
        robot,  # type: ignore[arg-type]
        CONSOLE,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        **kwargs,  # type: ignore[arg-type]
    )


async def make_tickets(
    sessions: sessionmaker,
    count: int,
    *,
    name: str = "王阿姨",
    grid_name: str | None = "3号楼",
    category: str = "repair",
    text: str = "厨房水管漏水了，地上全是水，麻烦尽快派人来修一下，谢谢",
) -> list[Ticket]:
    async with sessions() as session:
        community = await session.scalar(default_community())
        grid = Grid(name=grid_name, code="b3", community=community) if grid_name else None
        resident = Resident(channel="webchat", external_id="u1", name=name, phone=PHONE, grid=grid)
        tickets = [
            Ticket(
                conversation_id="c1",
                resident=resident,
                channel="webchat",
                chat_type="private",
                category=category,
                intent=category,
                confidence=0.9,
                text=f"{text}（{n}）" if count > 1 else text,
                grid=grid,
                community=community,
            )
            for n in range(count)
        ]
        session.add_all(tickets)
        await session.commit()
        return tickets


async def stored_rows(sessions: sessionmaker) -> list[Notification]:
    async with sessions() as session:
        rows = await session.execute(select(Notification).order_by(Notification.id))
        return list(rows.scalars())


async def attempts_recorded(sessions: sessionmaker, attempts: int) -> None:
    """Returns once the oldest row has failed `attempts` times."""
    while (await stored_rows(sessions))[0].attempts < attempts:
        await asyncio.sleep(0.005)


def ticket_ids_received(fake: FakeWechat) -> list[int]:
    contents = [call.body["markdown"]["content"] for call in fake.webhook_messages]
    return [int(re.search(r"#t=(\d+)\)", content).group(1)) for content in contents]  # type: ignore[union-attr]


# ---------- the card ----------


async def test_card_shows_the_ticket_without_the_full_phone(sessions: sessionmaker) -> None:
    text = f"3号楼电梯坏了，我家老人出不了门，电话{PHONE}，请尽快处理"
    [ticket] = await make_tickets(sessions, 1, text=text)

    card = ticket_card(ticket, CONSOLE)

    assert card.splitlines()[0] == "**新求助 · 维修 · 3号楼**"
    assert "王阿姨" in card
    # Full-width stars: WeCom markdown would read "****" as formatting.
    assert "138＊＊＊＊8000" in card
    assert PHONE not in card
    assert "3号楼电梯坏了，我家老人出不了门" in card
    assert "请尽快处理" not in card  # only the first words
    assert f"({CONSOLE}#t={ticket.id})" in card


async def test_card_marks_urgent_and_copes_with_missing_name_and_grid(
    sessions: sessionmaker,
) -> None:
    [ticket] = await make_tickets(sessions, 1, name="", grid_name=None, category="urgent")

    card = ticket_card(ticket, CONSOLE + "#old")

    assert '<font color="warning">紧急</font>' in card
    assert "未定网格" in card
    assert "居民：居民" in card
    assert f"{CONSOLE}#t={ticket.id})" in card


async def test_card_says_possibly_urgent_when_the_model_was_unsure(
    sessions: sessionmaker,
) -> None:
    [ticket] = await make_tickets(sessions, 1, category="urgent")
    ticket.possibly_urgent = True

    card = ticket_card(ticket, CONSOLE)

    assert card.splitlines()[0] == '**新求助** · <font color="warning">可能紧急</font> · **3号楼**'


async def test_card_keeps_resident_text_from_formatting(sessions: sessionmaker) -> None:
    [ticket] = await make_tickets(sessions, 1, name="<b>张</b>", text="**[点我](x)**\n第二行")

    card = ticket_card(ticket, CONSOLE)

    assert "<b>" not in card
    assert "[点我](x)" not in card
    assert len(card.splitlines()) == 5


# ---------- the rate window ----------


def test_rate_window_allows_limit_events_per_sliding_period() -> None:
    time = FakeTime(now=0.0)
    window = RateWindow(2, 60.0, clock=time.clock)
    window.record()
    time.now = 10.0
    assert window.wait_time() == 0.0
    window.record()
    assert window.wait_time() == pytest.approx(50.0)
    time.now = 60.0
    assert window.wait_time() == 0.0
    window.record()
    assert window.wait_time() == pytest.approx(10.0)


def test_backoff_grows_and_stays_bounded() -> None:
    assert [backoff_delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert backoff_delay(50) == 60.0


# ---------- the queue ----------


async def test_twenty_five_cards_respect_twenty_a_minute_in_order(
    sessions: sessionmaker, fake: FakeWechat, http: aiohttp.ClientSession, fake_time: FakeTime
) -> None:
    tickets = await make_tickets(sessions, 25)
    robot = RecordingRobot(robot_for(http, fake, fake_time), fake_time)
    notifier = notifier_for(sessions, robot, fake_time)
    start = fake_time.now
    await notifier.start()
    try:
        for ticket in tickets:
            await notifier.enqueue(ticket)
        await asyncio.wait_for(notifier.drain(), WAIT_S)
    finally:
        await notifier.close()

    first_minute = [t for t in robot.accepted_at if t < start + 60.0]
    assert len(first_minute) == 20
    assert ticket_ids_received(fake) == [t.id for t in tickets]
    # The fake counts with the same clock: it never had to refuse one.
    assert all(call.errcode == 0 for call in fake.calls(WEBHOOK_SEND))
    rows = await stored_rows(sessions)
    assert [r.route for r in rows] == [ROUTE] * 25
    assert all(r.sent_at is not None and r.attempts == 1 for r in rows)
    assert await notifier.pending() == 0


async def test_platform_limits_and_outages_delay_cards_but_lose_none(
    sessions: sessionmaker, fake: FakeWechat, http: aiohttp.ClientSession, fake_time: FakeTime
) -> None:
    tickets = await make_tickets(sessions, 4)
    # Someone else filled the robot's minute, then the platform went down for a while.
    fake.fail(WEBHOOK_SEND, errcode=45009, times=3)
    fake.fail(WEBHOOK_SEND, status=500, times=4)
    notifier = notifier_for(sessions, robot_for(http, fake, fake_time), fake_time)
    for ticket in tickets:
        await notifier.enqueue(ticket)
    await notifier.start()
    try:
        await asyncio.wait_for(notifier.drain(), WAIT_S)
    finally:
        await notifier.close()

    assert ticket_ids_received(fake) == [t.id for t in tickets]
    rows = await stored_rows(sessions)
    assert all(r.sent_at is not None for r in rows)
    # 3 refusals, 2 outages (2 HTTP tries each), then success: all on the oldest card.
    assert [r.attempts for r in rows] == [6, 1, 1, 1]
    assert rows[0].last_error is not None and "ApiUnavailable" in rows[0].last_error
    assert all(row.content not in (row.last_error or "") for row in rows)
    assert max(fake_time.slept) <= 60.0


async def test_cards_queued_before_a_restart_are_sent_after_it(
    sessions: sessionmaker, fake: FakeWechat, http: aiohttp.ClientSession, fake_time: FakeTime
) -> None:
    tickets = await make_tickets(sessions, 3)
    # The first run's robot has a key the platform refuses (93000): nothing gets through.
    refused = robot_for(http, fake, fake_time, key="stale-key")
    first = notifier_for(sessions, refused, fake_time)
    await first.enqueue(tickets[0])
    await first.start()
    await asyncio.wait_for(attempts_recorded(sessions, 3), WAIT_S)
    await first.close()
    # Queued while no notifier runs.
    for ticket in tickets[1:]:
        await first.enqueue(ticket)
    rows = await stored_rows(sessions)
    assert [r.sent_at for r in rows] == [None, None, None]
    assert rows[0].attempts >= 3 and "93000" in (rows[0].last_error or "")

    second = notifier_for(sessions, robot_for(http, fake, fake_time), fake_time)
    await second.start()
    try:
        await asyncio.wait_for(second.drain(), WAIT_S)
    finally:
        await second.close()

    assert ticket_ids_received(fake) == [t.id for t in tickets]
    assert all(r.sent_at is not None for r in await stored_rows(sessions))


async def test_closing_at_any_moment_leaves_nothing_behind(
    sessions: sessionmaker, fake: FakeWechat, http: aiohttp.ClientSession, fake_time: FakeTime
) -> None:
    [ticket] = await make_tickets(sessions, 1)
    # A refused key keeps the sender busy: reading, sending, recording failures, backing off.
    refused = robot_for(http, fake, fake_time, key="stale-key")
    notifier = notifier_for(sessions, refused, fake_time)
    await notifier.enqueue(ticket)
    for step in range(20):
        await notifier.start()
        await asyncio.sleep(step * 0.0005)
        await notifier.close()
    # A connection cut off mid-statement would show up here as a ResourceWarning (an error).
    gc.collect()

    [row] = await stored_rows(sessions)
    assert row.sent_at is None
    # A send abandoned by close() may have reached the platform without being recorded.
    assert row.attempts <= len(fake.calls(WEBHOOK_SEND))


async def test_a_storm_of_cards_becomes_one_digest_and_then_cards_again(
    sessions: sessionmaker, fake: FakeWechat, http: aiohttp.ClientSession, fake_time: FakeTime
) -> None:
    *storm, later = await make_tickets(sessions, 121, category="urgent")
    notifier = notifier_for(sessions, robot_for(http, fake, fake_time), fake_time)
    for ticket in storm:
        await notifier.enqueue(ticket)
    await notifier.start()
    try:
        await asyncio.wait_for(notifier.drain(), WAIT_S)
        await notifier.enqueue(later)
        await asyncio.wait_for(notifier.drain(), WAIT_S)
    finally:
        await notifier.close()

    contents = [call.body["markdown"]["content"] for call in fake.webhook_messages]
    assert len(contents) == 2
    assert "120 个新求助在排队" in contents[0] and "紧急 120 个" in contents[0]
    assert CONSOLE in contents[0]
    assert f"#t={later.id})" in contents[1]
    rows = await stored_rows(sessions)
    assert all(r.sent_at is not None for r in rows)
    assert [r.last_error for r in rows].count("digest") == 120
