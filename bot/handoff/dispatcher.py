"""Choosing the person.

A new request: the resident's grid → members with the request's skill → on duty now → fewest
open tickets → longest since their last assignment; nobody there → the branch secretary.
Unclaimed in time, it climbs a chain: the next candidate of the grid, then the secretary, then
every on-duty member of the branch. An urgent request skips the queue: everyone on duty in the
grid and the secretary are told at once, and the first to claim it owns it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.categories import CATEGORY_LABELS
from bot.core.chat import ChatRef
from bot.db.models import Grid, Member, Resident, Ticket, member_grids
from bot.handoff.schedule import on_duty
from bot.handoff.states import OPEN_STATUSES

# "3号楼" must not match inside "13号楼" or "十三号楼".
_NO_DIGIT_BEFORE = r"(?<![0-9一二三四五六七八九十])"

SKILL_FOR_CATEGORY = {"repair": "维修", "medical": "医疗", "canteen": "助餐", "complaint": "调解"}

# Escalation levels: who a ticket is offered to at each step of the chain.
FIRST_CHOICE, NEXT_CANDIDATE, SECRETARY, WHOLE_BRANCH = 0, 1, 2, 3


@dataclass(frozen=True)
class Assignment:
    grid: Grid | None
    member: Member | None
    reason: str
    level: int = FIRST_CHOICE
    # Everyone told at once (an urgent request, or the whole branch at the end of the chain).
    notified: tuple[Member, ...] = field(default_factory=tuple)

    @property
    def broadcast(self) -> bool:
        """Offered to the whole branch: at the end of the chain, or an emergency whose grid
        is unknown, so that every member told can also open and claim it."""
        if self.member is not None:
            return False
        return self.level == WHOLE_BRANCH or (self.grid is None and bool(self.notified))


def grid_mentioned(grids: list[Grid], *texts: str) -> Grid | None:
    for text in texts:
        for grid in grids:
            if any(re.search(_NO_DIGIT_BEFORE + re.escape(n), text) for n in grid.names()):
                return grid
    return None


async def find_grid(
    session: AsyncSession, resident: Resident, chat: ChatRef, address: str | None, text: str
) -> Grid | None:
    """The address the resident gave, else their registered home, else the group they wrote in."""
    grids = list((await session.scalars(select(Grid).order_by(Grid.id))).all())
    mentioned = grid_mentioned(grids, *(t for t in (address, text) if t))
    if mentioned is not None:
        return mentioned
    if resident.grid is not None:
        return resident.grid
    if chat.chat_type == "group":
        return next((g for g in grids if g.code == chat.chat_id), None)
    return None


def has_skill(member: Member, category: str) -> bool:
    """Members with no skills listed take every kind of request."""
    skill = SKILL_FOR_CATEGORY.get(category)
    skills = member.skill_list()
    return skill is None or not skills or skill in skills


async def open_ticket_counts(session: AsyncSession) -> dict[int, int]:
    rows = await session.execute(
        select(Ticket.assignee_id, func.count())
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.assignee_id.is_not(None))
        .group_by(Ticket.assignee_id)
    )
    return {member_id: count for member_id, count in rows.all()}


def least_busy(members: Iterable[Member], load: dict[int, int]) -> Member | None:
    def key(m: Member) -> tuple[int, float, int]:
        last = m.last_assigned_at.timestamp() if m.last_assigned_at else 0.0
        return load.get(m.id, 0), last, m.id

    return min(members, key=key, default=None)


async def _members(session: AsyncSession, grid: Grid | None, role: str) -> list[Member]:
    query = select(Member).where(Member.role == role, Member.active.is_(True)).order_by(Member.id)
    if grid is not None:
        query = query.join(member_grids, member_grids.c.member_id == Member.id).where(
            member_grids.c.grid_id == grid.id
        )
    return list((await session.scalars(query)).all())


def _on_duty(members: Iterable[Member], now: datetime) -> list[Member]:
    return [m for m in members if on_duty(m.schedule, m.paused, now)]


def _where(grid: Grid | None) -> str:
    return grid.name if grid is not None else "网格不明"


async def choose_assignee(
    session: AsyncSession,
    grid: Grid | None,
    category: str,
    now: datetime,
    exclude: Iterable[int] = (),
) -> Assignment:
    """The grid's best on-duty member with the skill, else the secretary, else nobody."""
    load = await open_ticket_counts(session)
    skipped = set(exclude)
    label = CATEGORY_LABELS.get(category, "未分类")
    if grid is not None:
        members = [
            m
            for m in await _members(session, grid, "member")
            if m.id not in skipped and has_skill(m, category)
        ]
        chosen = least_busy(_on_duty(members, now), load)
        if chosen is not None:
            reason = f"{grid.name} · {label} · 在岗 · 当前{load.get(chosen.id, 0)}单"
            return Assignment(grid, chosen, reason)
    return await secretary(session, grid, now, f"无在岗{label}网格员", skipped)


async def secretary(
    session: AsyncSession,
    grid: Grid | None,
    now: datetime,
    why: str,
    exclude: Iterable[int] = (),
) -> Assignment:
    """The on-duty branch secretary with the least open work."""
    load = await open_ticket_counts(session)
    skipped = set(exclude)
    secretaries = [m for m in await _members(session, None, "secretary") if m.id not in skipped]
    chosen = least_busy(_on_duty(secretaries, now), load)
    if chosen is not None:
        return Assignment(grid, chosen, f"{_where(grid)} · {why} · 转书记", level=SECRETARY)
    return Assignment(grid, None, f"{_where(grid)} · 无人在岗", level=SECRETARY)


async def urgent_audience(session: AsyncSession, grid: Grid | None, now: datetime) -> Assignment:
    """Everyone on duty in the grid (the whole branch when the grid is unknown) and the
    secretaries: the first to claim owns it."""
    members = _on_duty(await _members(session, grid, "member"), now)
    secretaries = _on_duty(await _members(session, None, "secretary"), now)
    notified = tuple(members + secretaries)
    reason = f"{_where(grid)} · 紧急 · 通知在岗{len(members)}人和书记"
    return Assignment(grid, None, reason, level=SECRETARY, notified=notified)


async def on_duty_for(session: AsyncSession, grid: Grid | None, now: datetime) -> list[Member]:
    """Who looks at something in a grid that nobody has asked for yet: its members on duty;
    when the grid is unknown or nobody there is on duty, the secretaries on duty."""
    members = _on_duty(await _members(session, grid, "member"), now) if grid is not None else []
    return members or _on_duty(await _members(session, None, "secretary"), now)


async def next_step(
    session: AsyncSession, ticket: Ticket, grid: Grid | None, now: datetime
) -> Assignment | None:
    """Where an unclaimed ticket goes next; None once the whole branch has been asked."""
    tried = set(ticket.tried_member_ids or [])
    if ticket.escalation_level < NEXT_CANDIDATE:
        step = await choose_assignee(session, grid, ticket.category, now, exclude=tried)
        if step.member is not None and step.level == FIRST_CHOICE:
            return Assignment(grid, step.member, step.reason, level=NEXT_CANDIDATE)
    if ticket.escalation_level < SECRETARY:
        step = await secretary(session, grid, now, "无人认领", tried)
        if step.member is not None:
            return step
    if ticket.escalation_level < WHOLE_BRANCH:
        everyone = _on_duty(await _members(session, None, "member"), now)
        reason = f"{_where(grid)} · 无人认领 · 通知全支部在岗{len(everyone)}人"
        return Assignment(grid, None, reason, level=WHOLE_BRANCH, notified=tuple(everyone))
    return None
