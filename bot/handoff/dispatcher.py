"""Choosing the person.

A new request: its place (the resident's grid, and the grid's community) → members with the
request's skill → on duty now → fewest open tickets → longest since their last assignment;
nobody there → the community's branch secretary. Unclaimed in time, it climbs a chain: the
next candidate of the grid, then the secretary, then every on-duty member of the community's
branch. An urgent request skips the queue: everyone on duty in the grid and the secretary are
told at once, and the first to claim it owns it; one the model is unsure of (可能紧急) goes to
the grid's members on duty first, who confirm it or not. Nobody is ever chosen from another
community.

A request whose place nobody recognises (no address, no home grid, no grid's group) belongs
to the default community, whose secretary is asked as for any request without a grid: one
service for the district still hands it to a named person, who can ask the resident where
they live.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import lazyload

from bot.core.categories import CATEGORY_LABELS
from bot.core.chat import ChatRef
from bot.db.models import Community, Grid, Member, Resident, Ticket, default_community, member_grids
from bot.db.nlu_models import PossibleRequest
from bot.handoff.schedule import on_duty
from bot.handoff.states import OPEN_STATUSES

# "3号楼" must not match inside "13号楼" or "十三号楼".
_NO_DIGIT_BEFORE = r"(?<![0-9一二三四五六七八九十])"

SKILL_FOR_CATEGORY = {"repair": "维修", "medical": "医疗", "canteen": "助餐", "complaint": "调解"}

# Escalation levels: who a ticket is offered to at each step of the chain.
FIRST_CHOICE, NEXT_CANDIDATE, SECRETARY, WHOLE_BRANCH = 0, 1, 2, 3


@dataclass(frozen=True)
class Place:
    """Where a request is: its community, and its grid when anyone could tell."""

    community: Community
    grid: Grid | None = None

    @property
    def community_id(self) -> int:
        return self.community.id

    @classmethod
    def in_grid(cls, grid: Grid) -> Place:
        return cls(grid.community, grid)

    @classmethod
    def of(cls, placed: Ticket | PossibleRequest) -> Place:
        return cls(placed.community, placed.grid)


@dataclass(frozen=True)
class Assignment:
    grid: Grid | None
    member: Member | None
    reason: str
    level: int = FIRST_CHOICE
    # Everyone told at once (an urgent request, or the whole branch at the end of the chain).
    notified: tuple[Member, ...] = field(default_factory=tuple)
    # Maybe urgent: those told decide first whether it is (`bot.handoff.urgency`).
    unsure: bool = False

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
    """The address the resident gave, else their registered home, else the group they wrote in.
    A name two communities share ("3号楼") is the one in the resident's own community."""
    home = resident.grid.community_id if resident.grid is not None else None
    rows = (await session.scalars(select(Grid).order_by(Grid.id))).all()
    grids = sorted(rows, key=lambda g: g.community_id != home)
    mentioned = grid_mentioned(grids, *(t for t in (address, text) if t))
    if mentioned is not None:
        return mentioned
    if resident.grid is not None:
        return resident.grid
    if chat.chat_type == "group":
        return next((g for g in grids if g.code == chat.chat_id), None)
    return None


async def find_place(
    session: AsyncSession, resident: Resident, chat: ChatRef, address: str | None, text: str
) -> Place:
    """The grid as `find_grid` finds it, in its community; else the default community."""
    grid = await find_grid(session, resident, chat, address, text)
    if grid is not None:
        return Place.in_grid(grid)
    return Place(await session.scalar(default_community()))


def has_skill(member: Member, category: str) -> bool:
    """Members with no skills listed take every kind of request."""
    skill = SKILL_FOR_CATEGORY.get(category)
    skills = member.skill_list()
    return skill is None or not skills or skill in skills


# A member's load, read with the member: the index on holder and status finds their own
# tickets, however many the district has open (thousands in a storm).
OPEN_TICKETS_HELD = (
    select(func.count())
    .where(Ticket.assignee_id == Member.id, Ticket.status.in_(OPEN_STATUSES))
    .correlate(Member)
    .scalar_subquery()
)
# Built once: every new ticket runs them.
_MEMBERS = (
    select(Member, OPEN_TICKETS_HELD)
    .options(lazyload(Member.grids))
    .where(
        Member.role == bindparam("role"),
        Member.active.is_(True),
        Member.community_id == bindparam("community_id"),
    )
    .order_by(Member.id)
)
_GRID_MEMBERS = _MEMBERS.join(member_grids, member_grids.c.member_id == Member.id).where(
    member_grids.c.grid_id == bindparam("grid_id")
)


def least_busy(held: dict[Member, int]) -> Member | None:
    """Of members and the open tickets each holds: the fewest, then the longest since their
    last assignment."""

    def key(m: Member) -> tuple[int, float, int]:
        last = m.last_assigned_at.timestamp() if m.last_assigned_at else 0.0
        return held[m], last, m.id

    return min(held, key=key, default=None)


async def _loaded_members(
    session: AsyncSession, community_id: int, grid: Grid | None, role: str
) -> dict[Member, int]:
    """Active members with `role` in the community, and in `grid` when one is given, with the
    open tickets each holds, in id order. Choosing among them needs none of their grids: not
    loaded (a query more for every ticket)."""
    params = {"role": role, "community_id": community_id}
    if grid is None:
        rows = await session.execute(_MEMBERS, params)
    else:
        rows = await session.execute(_GRID_MEMBERS, {**params, "grid_id": grid.id})
    return {member: held for member, held in rows.all()}


async def _members(
    session: AsyncSession, community_id: int, grid: Grid | None, role: str
) -> list[Member]:
    return list(await _loaded_members(session, community_id, grid, role))


def _on_duty(members: Iterable[Member], now: datetime) -> list[Member]:
    return [m for m in members if on_duty(m.schedule, m.paused, now)]


def _available(
    held: dict[Member, int], now: datetime, skipped: set[int], category: str | None = None
) -> dict[Member, int]:
    """Those on duty, not skipped, and with the category's skill when one is given."""
    return {
        m: n
        for m, n in held.items()
        if m.id not in skipped
        and (category is None or has_skill(m, category))
        and on_duty(m.schedule, m.paused, now)
    }


def _where(grid: Grid | None) -> str:
    return grid.name if grid is not None else "网格不明"


async def choose_assignee(
    session: AsyncSession,
    place: Place,
    category: str,
    now: datetime,
    exclude: Iterable[int] = (),
) -> Assignment:
    """The grid's best on-duty member with the skill, else the secretary, else nobody."""
    skipped = set(exclude)
    label = CATEGORY_LABELS.get(category, "未分类")
    grid = place.grid
    if grid is not None:
        members = await _loaded_members(session, place.community_id, grid, "member")
        available = _available(members, now, skipped, category)
        chosen = least_busy(available)
        if chosen is not None:
            reason = f"{grid.name} · {label} · 在岗 · 当前{available[chosen]}单"
            return Assignment(grid, chosen, reason)
    return await secretary(session, place, now, f"无在岗{label}网格员", skipped)


async def skilled_instead(
    session: AsyncSession, ticket: Ticket, now: datetime
) -> Assignment | None:
    """After its category was corrected: the grid's best on-duty member with the new skill,
    when the member the ticket waits for lacks it; None when it may stay as it is (the holder
    has the skill, it is broadcast, or nobody in the grid has the skill on duty)."""
    holder = ticket.assignee
    if ticket.broadcast or ticket.grid is None:
        return None
    if holder is not None and has_skill(holder, ticket.category):
        return None
    exclude = [holder.id] if holder is not None else []
    step = await choose_assignee(session, Place.of(ticket), ticket.category, now, exclude)
    return step if step.member is not None and step.level == FIRST_CHOICE else None


async def secretary(
    session: AsyncSession,
    place: Place,
    now: datetime,
    why: str,
    exclude: Iterable[int] = (),
) -> Assignment:
    """The community's on-duty branch secretary with the least open work."""
    skipped = set(exclude)
    grid = place.grid
    secretaries = await _loaded_members(session, place.community_id, None, "secretary")
    chosen = least_busy(_available(secretaries, now, skipped))
    if chosen is not None:
        return Assignment(grid, chosen, f"{_where(grid)} · {why} · 转书记", level=SECRETARY)
    return Assignment(grid, None, f"{_where(grid)} · 无人在岗", level=SECRETARY)


async def urgent_audience(session: AsyncSession, place: Place, now: datetime) -> Assignment:
    """Everyone on duty in the grid (the community's whole branch when the grid is unknown)
    and the community's secretaries: the first to claim owns it."""
    grid = place.grid
    members = _on_duty(await _members(session, place.community_id, grid, "member"), now)
    secretaries = _on_duty(await _members(session, place.community_id, None, "secretary"), now)
    notified = tuple(members + secretaries)
    reason = f"{_where(grid)} · 紧急 · 通知在岗{len(members)}人和书记"
    return Assignment(grid, None, reason, level=SECRETARY, notified=notified)


async def unsure_urgent_audience(session: AsyncSession, place: Place, now: datetime) -> Assignment:
    """Read as urgent, though not surely: the people who look first at anything in the grid
    (`on_duty_for`) say whether it is; unconfirmed in the urgent claim time, it goes to the
    urgent audience (`next_step`)."""
    asked = tuple(await on_duty_for(session, place, now))
    reason = f"{_where(place.grid)} · 可能紧急 · 先请在岗{len(asked)}人确认"
    return Assignment(place.grid, None, reason, notified=asked, unsure=True)


async def on_duty_for(session: AsyncSession, place: Place, now: datetime) -> list[Member]:
    """Who looks at something in a grid that nobody has asked for yet: its members on duty;
    when the grid is unknown or nobody there is on duty, the community's secretaries on duty."""
    community_id, grid = place.community_id, place.grid
    members = (
        _on_duty(await _members(session, community_id, grid, "member"), now)
        if grid is not None
        else []
    )
    return members or _on_duty(await _members(session, community_id, None, "secretary"), now)


async def next_step(session: AsyncSession, ticket: Ticket, now: datetime) -> Assignment | None:
    """Where an unclaimed ticket goes next; None once its community's whole branch has been
    asked (a ticket transferred to one person since is asked of the whole branch again)."""
    tried = set(ticket.tried_member_ids or [])
    place, grid = Place.of(ticket), ticket.grid
    if ticket.possibly_urgent:
        return await urgent_audience(session, place, now)
    if ticket.escalation_level < NEXT_CANDIDATE:
        step = await choose_assignee(session, place, ticket.category, now, exclude=tried)
        if step.member is not None and step.level == FIRST_CHOICE:
            return Assignment(grid, step.member, step.reason, level=NEXT_CANDIDATE)
    if ticket.escalation_level < SECRETARY:
        step = await secretary(session, place, now, "无人认领", tried)
        if step.member is not None:
            return step
    if ticket.escalation_level < WHOLE_BRANCH or not ticket.broadcast:
        return await whole_branch(session, place, now, "无人认领")
    return None


async def whole_branch(session: AsyncSession, place: Place, now: datetime, why: str) -> Assignment:
    """Every on-duty member of the community's branch, told at once."""
    everyone = _on_duty(await _members(session, place.community_id, None, "member"), now)
    reason = f"{_where(place.grid)} · {why} · 通知全支部在岗{len(everyone)}人"
    return Assignment(place.grid, None, reason, level=WHOLE_BRANCH, notified=tuple(everyone))
