"""The secretary's overview figures on a small history made with the real ticket service and a
fake clock: first reply (median, 90th percentile), resolved within 24 h and 72 h, satisfaction,
open and overdue per grid and per member, requests per week, escalations, and the possible
requests nobody looked at. No model, no HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.conversation.delivery import Delivery
from bot.db.models import Ticket
from bot.handoff.overview import (
    Overview,
    Period,
    median,
    overview,
    percentile,
    scope_for,
    week_starts,
)
from bot.handoff.possible import PossibleRequests
from bot.handoff.schedule import LOCAL
from tests.conftest import MORNING
from tests.fakes import Desk, chatter_that_may_be_a_request

NOW = MORNING  # Friday 2026-11-27 10:00 Beijing time


async def request_answered(
    desk: Desk,
    text: str,
    intent: str,
    resident: str,
    *,
    ago: timedelta,
    reply_after: timedelta | None = None,
    resolve_after: timedelta | None = None,
) -> int:
    """A request opened `ago` before NOW, answered and resolved by whoever it went to."""
    desk.clock.set(NOW - ago)
    ticket_id = (await desk.asks(text, intent, resident=resident)).ticket_id
    holder = await desk.actor((await desk.ticket(ticket_id)).assignee.name)
    if reply_after is not None:
        desk.clock.set(NOW - ago + reply_after)
        await desk.service.holding.reply(holder, ticket_id, "我马上来")
    if resolve_after is not None:
        desk.clock.set(NOW - ago + resolve_after)
        await desk.service.holding.resolve(holder, ticket_id, "办好了")
    return ticket_id


async def rate(desk: Desk, ticket_id: int, rating: str) -> None:
    async with desk.sessions() as session, session.begin():
        await session.execute(update(Ticket).where(Ticket.id == ticket_id).values(rating=rating))


@pytest.fixture
async def history(tickets: Desk) -> Desk:
    """Six requests in the last week and one three weeks ago:

    | | opened | grid, category | first reply | resolved after | rating |
    |---|---|---|---|---|---|
    | A | 5 days ago | 3号楼 repair (王建国) | 1 min | 3 h | 满意 |
    | B | 4 days ago | 3号楼 medical (李秀英) | 2 min | 30 h | 不满意 |
    | C | 95 h ago | 东村 repair (张志强) | 5 min | 80 h | 一般 |
    | D | 94 h ago | 3号楼 complaint (王建国) | 10 min | open: overdue | |
    | E | 2 h ago | 东村 canteen (刘桂兰) | 60 min | open | |
    | F | 1 h ago | 3号楼 repair | none: escalated to 陈红梅 | open | |
    | G | 20 days ago | 3号楼 repair (王建国) | 1 min | 1 h | 满意 |
    """
    desk, h = tickets, timedelta(hours=1)
    minute = timedelta(minutes=1)
    a = await request_answered(
        desk, "3号楼水管漏了", "repair", "ra", ago=120 * h, reply_after=minute, resolve_after=3 * h
    )
    b = await request_answered(
        desk, "3号楼我想约家庭医生", "medical", "rb", ago=96 * h, reply_after=2 * minute,
        resolve_after=30 * h,
    )  # fmt: skip
    c = await request_answered(
        desk, "东村路灯坏了", "repair", "rc", ago=95 * h, reply_after=5 * minute,
        resolve_after=80 * h,
    )  # fmt: skip
    await request_answered(
        desk, "3号楼楼上装修太吵", "complaint", "rd", ago=94 * h, reply_after=10 * minute
    )
    await request_answered(
        desk, "东村想订午饭", "canteen", "re", ago=2 * h, reply_after=60 * minute
    )
    f = await request_answered(desk, "3号楼门禁坏了", "repair", "rf", ago=h)
    desk.clock.set(NOW - h)
    await desk.time_passes(minutes=11)
    assert (await desk.ticket(f)).assignee.name == "陈红梅"  # nobody claimed: up the chain
    g = await request_answered(
        desk, "3号楼水龙头坏了", "repair", "rg", ago=480 * h, reply_after=minute, resolve_after=h
    )
    for ticket_id, rating in ((a, "满意"), (b, "不满意"), (c, "一般"), (g, "满意")):
        await rate(desk, ticket_id, rating)
    desk.clock.set(NOW)
    return desk


async def figures(desk: Desk, days: int, who: str = "陈红梅") -> Overview:
    async with desk.sessions() as session:
        scope = await scope_for(session, await desk.actor(who), None)
        return await overview(session, scope, Period(days, NOW))


async def test_first_reply_and_resolution_shares_count_what_residents_waited(
    history: Desk,
) -> None:
    week = await figures(history, 7)

    assert week.requests == 6
    assert week.first_reply.answered == 5
    assert week.first_reply.median_s == 300  # 1, 2, 5, 10, 60 minutes
    assert week.first_reply.p90_s == 3600
    assert week.first_reply.waiting == 1  # F: nobody has answered yet
    # 24 h: A, B, C, D are a day old (E and F are not), A was done within it.
    # 72 h: the same four are three days old, A and B were done within it.
    assert [(r.hours, r.due, r.resolved) for r in week.resolved] == [(24, 4, 1), (72, 4, 2)]
    assert [r.share for r in week.resolved] == [0.25, 0.5]


async def test_satisfaction_counts_the_periods_ratings(history: Desk) -> None:
    week, month = await figures(history, 7), await figures(history, 30)

    assert week.satisfaction.counts == {"满意": 1, "一般": 1, "不满意": 1}
    assert week.satisfaction.satisfied_share == pytest.approx(1 / 3)
    assert month.requests == 7
    assert month.satisfaction.counts["满意"] == 2
    # G's minute joins: 1, 1, 2, 5, 10, 60 minutes, and the median falls between 2 and 5.
    assert month.first_reply.median_s == 210


async def test_open_and_overdue_per_grid_and_per_member(history: Desk) -> None:
    week = await figures(history, 7)

    by_grid = {g.grid: (g.open, g.overdue, g.requests, g.escalated) for g in week.grids}
    assert by_grid == {"3号楼": (2, 1, 4, 1), "东村": (1, 0, 2, 0)}
    assert (week.open_now, week.overdue_now) == (3, 1)
    by_member = {m.name: (m.open, m.overdue, m.resolved) for m in week.members}
    assert by_member == {
        "王建国": (1, 1, 1),
        "李秀英": (0, 0, 1),
        "张志强": (0, 0, 1),
        "刘桂兰": (1, 0, 0),
        "陈红梅": (1, 0, 0),
    }  # the operator takes no tickets: not listed


async def test_requests_per_week_by_category_and_escalations(history: Desk) -> None:
    week = await figures(history, 7)

    # The period starts on Friday 20 November; the next week on Monday the 23rd.
    assert [w.start.astimezone(LOCAL).strftime("%m-%d %H:%M") for w in week.weeks] == [
        "11-20 10:00",
        "11-23 00:00",
    ]
    assert [w.total for w in week.weeks] == [1, 5]
    assert week.weeks[1].counts == {
        "repair": 2,
        "canteen": 1,
        "medical": 1,
        "complaint": 1,
        "urgent": 0,
        "unclassified": 0,
    }
    assert (week.escalations.escalated, week.escalations.handed_back) == (1, 0)


async def test_possible_requests_nobody_looked_at_are_listed_masked(history: Desk) -> None:
    possible = PossibleRequests(
        history.sessions, history.service.opening, Delivery(history.sessions), history.hub,
        history.clock, threshold=0.15,
    )  # fmt: skip
    words = "3号楼家里好像不太对劲，电话13900001234"
    await chatter_that_may_be_a_request(possible, history.sessions, words, "rp")

    week = await figures(history, 7)

    assert week.unseen_total == 1
    assert week.unseen[0].text == "3号楼家里好像不太对劲，电话139****1234"
    assert week.unseen[0].grid == "3号楼"


def test_median_and_nearest_rank_percentile() -> None:
    assert median([4, 1, 3, 2]) == 2.5
    assert percentile(range(1, 11), 90) == 9
    assert percentile([7], 90) == 7
    assert median([]) is None and percentile([], 90) is None


def test_a_week_starting_on_monday_has_no_second_start() -> None:
    monday = MORNING.astimezone(LOCAL).replace(day=23, hour=0)
    assert week_starts(Period(7, monday + timedelta(days=7))) == [monday]
