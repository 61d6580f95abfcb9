"""One incident, many neighbours: recognising that a new report is about something a
neighbour in the same grid already reported a little earlier (停水 in 3号楼, the lift stuck).

Two reports are the same incident when they are in the same grid and category, the earlier one
is still open and recent, they come from different residents, and they share the thing that
is wrong: at least a third of the smaller report's key words (jieba words of two or more
characters, without the words every report has, like 我们, 师傅, 单元).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

import jieba
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Grid, Ticket
from bot.handoff.states import OPEN_STATUSES

# Words that say nothing about what is wrong.
COMMON_WORDS = frozenset(
    "我们 你们 他们 咱们 大家 邻居 社区 师傅 小区 号楼 单元 楼道 一下 帮忙 麻烦 请问 "
    "现在 今天 昨天 明天 早上 上午 下午 晚上 什么 怎么 怎么办 为什么 时候 还是 已经 "
    "一直 好像 这个 那个 问题 情况 赶紧 赶快 快点 谢谢 你好 您好 小助手 社区小助手 "
    "怎么回事 又是 了吗 没有 不能 可以 还有 一样 我家 家里 我们家 楼上 楼下".split()
)
# "@社区小助手" in a group message names the bot, not the problem.
MENTION = re.compile(r"@\S+")
# Categories where neighbours report the same thing (an outage, a noisy site); meals and health
# are each household's own, and an emergency is always its own ticket.
SHARED_CATEGORIES = frozenset({"repair", "complaint"})


def key_words(text: str, places: Iterable[str] = ()) -> set[str]:
    """What a report says is wrong; `places` (grid names) say where, not what."""
    for place in places:
        text = text.replace(place, " ")
    return {
        w
        for w in jieba.lcut(MENTION.sub(" ", text))
        if len(w) >= 2 and not any(c.isdigit() for c in w) and w not in COMMON_WORDS
    }


def shared_words(a: set[str], b: set[str]) -> set[str]:
    shared = a & b
    if not shared or len(shared) * 3 < min(len(a), len(b)):
        return set()
    return shared


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
    places = grid.names()
    words = key_words(text, places)
    if not words:
        return None
    earlier = await session.scalars(
        select(Ticket)
        .where(
            Ticket.grid_id == grid.id,
            Ticket.category == category,
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.incident_id.is_(None),
            Ticket.resident_id != resident_id,
            Ticket.created_at >= since,
        )
        .order_by(Ticket.id)
    )
    for ticket in earlier.all():
        shared = shared_words(words, key_words(ticket.text, places))
        if shared:
            return ticket, min(shared, key=lambda w: (text.find(w), w))
    return None


def incident_label(ticket: Ticket) -> str:
    """How the incident is named in a group line: "3号楼停水", never anyone's details."""
    grid = ticket.grid.name if ticket.grid else ""
    return f"{grid}{(ticket.entities or {}).get('incident', '')}" or "这件事"
