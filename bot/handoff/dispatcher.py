"""Choosing the person: the resident's grid, then its on-duty member with the least open work."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import ChatRef
from bot.db.models import Grid, Member, Resident, Ticket, member_grids
from bot.handoff.states import OPEN_STATUSES

# "3号楼" must not match inside "13号楼" or "十三号楼".
_NO_DIGIT_BEFORE = r"(?<![0-9一二三四五六七八九十])"


@dataclass(frozen=True)
class Assignment:
    grid: Grid | None
    member: Member | None
    reason: str


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


async def _open_ticket_counts(session: AsyncSession) -> dict[int, int]:
    rows = await session.execute(
        select(Ticket.assignee_id, func.count())
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.assignee_id.is_not(None))
        .group_by(Ticket.assignee_id)
    )
    return {member_id: count for member_id, count in rows.all()}


def _least_busy(members: list[Member], load: dict[int, int]) -> Member | None:
    def key(m: Member) -> tuple[int, float]:
        last = m.last_assigned_at.timestamp() if m.last_assigned_at else 0.0
        return load.get(m.id, 0), last

    return min(members, key=key, default=None)


async def choose_assignee(session: AsyncSession, grid: Grid | None) -> Assignment:
    load = await _open_ticket_counts(session)
    if grid is not None:
        members = list(
            (
                await session.scalars(
                    select(Member)
                    .join(member_grids, member_grids.c.member_id == Member.id)
                    .where(
                        member_grids.c.grid_id == grid.id,
                        Member.role == "member",
                        Member.on_duty.is_(True),
                    )
                )
            ).all()
        )
        chosen = _least_busy(members, load)
        if chosen is not None:
            return Assignment(grid, chosen, f"{grid.name} · 在岗 · 当前{load.get(chosen.id, 0)}单")
    secretaries = list(
        (
            await session.scalars(
                select(Member).where(Member.role == "secretary", Member.on_duty.is_(True))
            )
        ).all()
    )
    where = grid.name if grid is not None else "网格不明"
    chosen = _least_busy(secretaries, load)
    if chosen is not None:
        return Assignment(grid, chosen, f"{where} · 无在岗网格员 · 转书记")
    return Assignment(grid, None, f"{where} · 无人在岗")
