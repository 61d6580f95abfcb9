"""Choosing the grid and the person."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.chat import ChatRef
from bot.db.engine import create_engine, create_session_factory
from bot.db.models import Grid, Member, Resident, Ticket
from bot.demo import seed
from bot.handoff.dispatcher import Place, choose_assignee, find_grid
from bot.handoff.schedule import LOCAL, ScheduleError, on_duty, parse_schedule, slots_to_json
from bot.settings import Settings

PRIVATE = ChatRef("webchat", "private", "r1", "r1")
NOON = datetime(2026, 11, 27, 12, tzinfo=LOCAL)


@pytest.fixture
async def session(database_url: str) -> AsyncIterator[AsyncSession]:
    await seed(Settings(database_url=database_url))
    engine = create_engine(database_url)
    async with create_session_factory(engine)() as s:
        yield s
    await engine.dispose()


async def _grid(session: AsyncSession, name: str) -> Grid:
    return await session.scalar(select(Grid).where(Grid.name == name))


async def _member(session: AsyncSession, name: str) -> Member:
    return await session.scalar(select(Member).where(Member.name == name))


async def test_grid_comes_from_the_address_then_home_then_group(session: AsyncSession) -> None:
    resident = Resident(channel="webchat", external_id="r1", name="张阿姨")
    session.add(resident)
    await session.flush()

    assert (await find_grid(session, resident, PRIVATE, "3号楼2单元501", "")).name == "3号楼"
    assert (await find_grid(session, resident, PRIVATE, None, "三号楼的灯坏了")).name == "3号楼"
    assert (await find_grid(session, resident, PRIVATE, None, "东村组的路灯坏了")).name == "东村"
    # 13号楼 is not 3号楼.
    assert await find_grid(session, resident, PRIVATE, "13号楼1单元", "") is None

    resident.grid = await _grid(session, "东村")
    assert (await find_grid(session, resident, PRIVATE, None, "灯坏了")).name == "东村"

    resident.grid = None
    group = ChatRef("webchat", "group", "b3", "r1")
    assert (await find_grid(session, resident, group, None, "灯坏了")).name == "3号楼"


async def test_the_least_busy_on_duty_member_of_the_grid_is_chosen(session: AsyncSession) -> None:
    grid = await _grid(session, "3号楼")
    place = Place.in_grid(grid)
    wang, li = await _member(session, "王建国"), await _member(session, "李秀英")
    resident = Resident(channel="webchat", external_id="r2", name="赵奶奶")
    session.add(resident)
    await session.flush()
    session.add(
        Ticket(
            conversation_id="webchat:r2", resident=resident, channel="webchat",
            chat_type="private", category="repair", intent="repair", confidence=0.9,
            text="x", entities={}, status="assigned", grid=grid, assignee=wang,
            community_id=grid.community_id,
        )
    )  # fmt: skip
    await session.flush()

    chosen = await choose_assignee(session, place, "unclassified", NOON)
    assert chosen.member is li
    assert chosen.reason == "3号楼 · 未分类 · 在岗 · 当前0单"

    # Equal load: the one who waited longest since their last assignment.
    wang.last_assigned_at, li.last_assigned_at = NOON - timedelta(hours=2), NOON
    (await session.get(Ticket, 1)).status = "resolved"
    await session.flush()
    assert (await choose_assignee(session, place, "unclassified", NOON)).member is wang


async def test_each_candidate_is_weighed_by_their_own_open_tickets(session: AsyncSession) -> None:
    grid = await _grid(session, "3号楼")
    wang, li = await _member(session, "王建国"), await _member(session, "李秀英")
    secretary, east = await _member(session, "陈红梅"), await _member(session, "张志强")
    resident = Resident(channel="webchat", external_id="r3", name="钱大爷")
    session.add(resident)
    await session.flush()
    # Two open for 王建国, one open and one resolved for 李秀英, many for a member elsewhere.
    holders = [(wang, "assigned"), (wang, "claimed"), (li, "claimed"), (li, "resolved")]
    holders += [(east, "assigned")] * 5 + [(secretary, "claimed")]
    for n, (holder, status) in enumerate(holders):
        session.add(
            Ticket(
                conversation_id=f"webchat:r3-{n}", resident=resident, channel="webchat",
                chat_type="private", category="repair", intent="repair", confidence=0.9,
                text="x", entities={}, status=status, grid=grid, assignee=holder,
                community_id=grid.community_id,
            )
        )  # fmt: skip
    await session.flush()

    chosen = await choose_assignee(session, Place.in_grid(grid), "unclassified", NOON)
    assert (chosen.member, chosen.reason) == (li, "3号楼 · 未分类 · 在岗 · 当前1单")
    tried = await choose_assignee(session, Place.in_grid(grid), "unclassified", NOON, [li.id])
    assert (tried.member, tried.reason) == (wang, "3号楼 · 未分类 · 在岗 · 当前2单")


async def test_only_members_with_the_skill_are_asked(session: AsyncSession) -> None:
    grid = await _grid(session, "东村")
    place = Place.in_grid(grid)
    medical = await choose_assignee(session, place, "medical", NOON)
    assert medical.member.name == "刘桂兰"
    assert medical.reason == "东村 · 医疗 · 在岗 · 当前0单"
    assert (await choose_assignee(session, place, "complaint", NOON)).member.name == "张志强"
    # Nobody in the grid with the skill: the secretary.
    (await _member(session, "刘桂兰")).skills = "助餐"
    await session.flush()
    assert (await choose_assignee(session, place, "medical", NOON)).member.name == "陈红梅"


async def test_off_duty_at_six_pm_means_the_next_member(session: AsyncSession) -> None:
    grid = await _grid(session, "东村")
    place = Place.in_grid(grid)
    for name in ("张志强", "刘桂兰"):
        (await _member(session, name)).skills = ""
    (await _member(session, "张志强")).schedule = slots_to_json(
        parse_schedule("mon-fri 08:00-18:00")
    )
    await session.flush()
    friday = datetime(2026, 11, 27, tzinfo=LOCAL)  # a Friday
    before_six = friday.replace(hour=17, minute=59)
    at_six = friday.replace(hour=18)
    (await _member(session, "刘桂兰")).last_assigned_at = before_six
    await session.flush()
    assert (await choose_assignee(session, place, "repair", before_six)).member.name == "张志强"
    assert (await choose_assignee(session, place, "repair", at_six)).member.name == "刘桂兰"
    saturday = datetime(2026, 11, 28, 10, tzinfo=LOCAL)
    assert (await choose_assignee(session, place, "repair", saturday)).member.name == "刘桂兰"


async def test_paused_grid_goes_to_the_secretary_and_nobody_means_unassigned(
    session: AsyncSession,
) -> None:
    grid = await _grid(session, "东村")
    place = Place.in_grid(grid)
    for name in ("张志强", "刘桂兰"):
        (await _member(session, name)).paused = True
    await session.flush()

    chosen = await choose_assignee(session, place, "repair", NOON)
    assert chosen.member.name == "陈红梅"
    assert "转书记" in chosen.reason

    (await _member(session, "陈红梅")).paused = True
    await session.flush()
    nobody = await choose_assignee(session, place, "repair", NOON)
    assert nobody.member is None and nobody.grid is grid


def test_weekly_hours_are_read_as_an_operator_writes_them() -> None:
    night = slots_to_json(parse_schedule("sun 22:00-06:00, mon-fri 08:00-18:00"))
    monday = datetime(2026, 11, 30, tzinfo=LOCAL)
    assert on_duty(night, False, monday.replace(hour=5, minute=59))
    assert not on_duty(night, False, monday.replace(hour=6))
    assert on_duty(night, False, monday.replace(hour=8))
    assert not on_duty(night, True, monday.replace(hour=8))
    assert on_duty(None, False, monday.replace(hour=3))
    with pytest.raises(ScheduleError):
        parse_schedule("weekdays 9-5")
