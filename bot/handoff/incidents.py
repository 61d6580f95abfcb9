"""One incident, many neighbours: recognising that a new report is about something a
neighbour in the same grid already reported a little earlier (停水 in 3号楼, the lift stuck).

Two reports are the same incident when they are in the same grid and category, the earlier one
is still open and recent, they come from different residents, and both name the same shared
thing: a supply or a facility many households depend on. Faults inside a home (a leaking pipe,
a broken stove) are each household's own, however alike they sound; members merge or split
by hand what this rule gets wrong.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Grid, Ticket
from bot.handoff.states import OPEN_STATUSES

# Outages and shared facilities: when these fail, many neighbours report the same thing.
SHARED_THINGS = (
    "停水", "没水", "断水", "水压", "停电", "没电", "断电", "跳闸", "停气", "没气",
    "电梯", "路灯", "楼道灯", "门禁", "单元门", "大门", "下水道", "化粪池", "积水", "垃圾",
    "噪音", "施工", "广场舞", "暖气", "供暖", "网络", "没信号", "消防通道",
)  # fmt: skip
# Categories where neighbours report the same thing (an outage, a noisy site); meals and health
# are each household's own, and an emergency is always its own ticket.
SHARED_CATEGORIES = frozenset({"repair", "complaint"})


def shared_things(a: str, b: str) -> list[str]:
    """The shared facilities or supplies both reports name."""
    return [thing for thing in SHARED_THINGS if thing in a and thing in b]


async def find_incident(
    session: AsyncSession,
    grid: Grid | None,
    category: str,
    text: str,
    resident_id: int,
    since: datetime,
) -> tuple[Ticket, str] | None:
    """The open, recent report this one repeats, with the words they share; None if new."""
    if grid is None or category not in SHARED_CATEGORIES:
        return None
    named = [thing for thing in SHARED_THINGS if thing in text]
    if not named:
        return None
    # In a burst (a burst main, a storm) a grid holds hundreds of such reports: the database
    # finds the earliest one naming the same thing, so one new report loads one row.
    earlier = await session.scalar(
        select(Ticket)
        .where(
            Ticket.grid_id == grid.id,
            Ticket.category == category,
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.incident_id.is_(None),
            Ticket.resident_id != resident_id,
            Ticket.created_at >= since,
            or_(*(Ticket.text.contains(thing, autoescape=True) for thing in named)),
        )
        .order_by(Ticket.id)
        .limit(1)
    )
    if earlier is None:
        return None
    return earlier, shared_things(text, earlier.text)[0]


def incident_label(ticket: Ticket) -> str:
    """How the incident is named in a group line: "3号楼停水", never anyone's details."""
    grid = ticket.grid.name if ticket.grid else ""
    return f"{grid}{(ticket.entities or {}).get('incident', '')}" or "这件事"


async def reports_of(session: AsyncSession, ticket: Ticket) -> list[Ticket]:
    """The neighbours' reports merged into an incident."""
    rows = await session.scalars(
        select(Ticket).where(Ticket.incident_id == ticket.id).order_by(Ticket.id)
    )
    return list(rows.all())
