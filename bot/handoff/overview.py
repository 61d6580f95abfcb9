"""The secretary's overview (概况): what residents feel, over the last 7, 30 or 90 days.

Only what matters to a resident is counted — how long until a person answered, whether the
request got done, whether they were satisfied, who is waiting now — never logins, clicks or
registrations. The district reads every community, or one at a time; a secretary her own.

How each figure is taken (docs/overview.md says the same for its readers):

- A period is the last `days` days up to now; its requests are the tickets opened in it.
- First human reply: from the ticket's opening to a member's first reply, or to its resolution
  when the member phoned or called round and resolved it without a typed reply
  (`first_response_at`), median and 90th percentile (nearest rank) over the period's requests
  that got one. A report merged into a neighbour's incident is answered on the incident, so
  it is left out here.
- Resolved within 24 h / 72 h: of the period's requests at least that old (a request from an
  hour ago has not had its day yet), the share resolved that soon and not reopened since.
- Satisfaction: the residents' ratings of the period's requests.
- Open and overdue: tickets open now; overdue when open longer than `OVERDUE_AFTER`.
- Possible requests nobody looked at: messages that may be requests, still undecided.

Counts are taken in SQL that SQLite and PostgreSQL read alike (no date functions: bounds are
computed here and bound as parameters); the median and percentile, which the two databases do
not share a function for, from the period's timings in Python.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, exists, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.core.categories import CATEGORY_LABELS
from bot.db.models import Community, Grid, Member, Ticket, TicketEvent
from bot.db.nlu_models import PossibleRequest
from bot.handoff.access import Actor
from bot.handoff.ledger import NotAllowed
from bot.handoff.possible import PossibleStatus
from bot.handoff.roles import Action, roles_with
from bot.handoff.schedule import LOCAL, on_duty
from bot.handoff.states import OPEN_STATUSES
from bot.handoff.texts import RATINGS

PERIODS = (7, 30, 90)
OVERDUE_AFTER = timedelta(hours=72)
RESOLVED_WITHIN = (24, 72)
# The oldest undecided possible requests listed by name; the rest are counted.
UNSEEN_LISTED = 20


class UnknownCommunity(Exception):
    pass


@dataclass(frozen=True)
class Scope:
    """Whose figures: one community, or the whole district (`community_id` None)."""

    community_id: int | None
    name: str
    code: str | None

    def where(self, community_id: ColumnElement[int]) -> ColumnElement[bool]:
        return true() if self.community_id is None else community_id == self.community_id


async def scope_for(session: AsyncSession, actor: Actor, code: str | None) -> Scope:
    """The community named by `code`, if the actor reaches it; without one, the actor's own
    community, or the whole district for a district role."""
    if code is None:
        if actor.sees_every_community:
            return Scope(None, "全街道", None)
        community = await session.get(Community, actor.community_id)
    else:
        community = await session.scalar(select(Community).where(Community.code == code))
        if community is None:
            raise UnknownCommunity(f"no community {code!r}")
    if not actor.reaches(community.id):
        raise NotAllowed(f"community {community.code} is not {actor.name}'s")
    return Scope(community.id, community.name, community.code)


async def communities_for(session: AsyncSession, actor: Actor) -> list[Community]:
    """The communities the actor may choose between."""
    rows = await session.scalars(
        select(Community).where(actor.reached_by(Community.id)).order_by(Community.id)
    )
    return list(rows.all())


@dataclass(frozen=True)
class Period:
    days: int
    until: datetime

    @property
    def since(self) -> datetime:
        return self.until - timedelta(days=self.days)


@dataclass(frozen=True)
class FirstReply:
    answered: int
    # The period's requests still open with nobody's reply yet.
    waiting: int
    median_s: float | None
    p90_s: float | None


@dataclass(frozen=True)
class ResolvedShare:
    hours: int
    # The period's requests at least `hours` old, and how many of them were resolved in time.
    due: int
    resolved: int

    @property
    def share(self) -> float | None:
        return self.resolved / self.due if self.due else None


@dataclass(frozen=True)
class Satisfaction:
    counts: dict[str, int]

    @property
    def rated(self) -> int:
        return sum(self.counts.values())

    @property
    def satisfied_share(self) -> float | None:
        return self.counts["满意"] / self.rated if self.rated else None


@dataclass(frozen=True)
class GridRow:
    grid: str
    community: str
    open: int
    overdue: int
    requests: int
    escalated: int


@dataclass(frozen=True)
class MemberRow:
    id: int
    name: str
    role: str
    community: str
    grids: list[str]
    on_duty: bool
    paused: bool
    open: int
    overdue: int
    resolved: int


@dataclass(frozen=True)
class Week:
    """A Monday-to-Sunday week in Beijing time; the first one starts with the period."""

    start: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Escalations:
    # The period's requests nobody claimed in time (they went up the chain)...
    escalated: int
    # ...that a member gave back...
    handed_back: int
    # ...where even the whole branch was asked and nobody claimed...
    unanswered_by_branch: int
    # ...and that were reopened (not fixed, or the resident not satisfied).
    reopened: int


@dataclass(frozen=True)
class Unseen:
    """A possible request nobody has decided on yet; its text is stored masked."""

    id: int
    created_at: datetime
    community: str
    grid: str | None
    text: str


@dataclass(frozen=True)
class Overview:
    scope: Scope
    period: Period
    requests: int
    first_reply: FirstReply
    resolved: list[ResolvedShare]
    satisfaction: Satisfaction
    grids: list[GridRow]
    members: list[MemberRow]
    weeks: list[Week]
    escalations: Escalations
    unseen_total: int
    unseen: list[Unseen]

    @property
    def open_now(self) -> int:
        return sum(g.open for g in self.grids)

    @property
    def overdue_now(self) -> int:
        return sum(g.overdue for g in self.grids)


UNKNOWN_GRID = "网格不明"


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _has_event(kind: str) -> ColumnElement[bool]:
    return exists().where(TicketEvent.ticket_id == Ticket.id, TicketEvent.kind == kind)


class Figures:
    """The queries behind one overview: one scope, one period, one moment."""

    def __init__(self, session: AsyncSession, scope: Scope, period: Period) -> None:
        self._session = session
        self._scope = scope
        self._period = period
        self._in_scope = scope.where(Ticket.community_id)
        self._in_period = Ticket.created_at >= period.since
        self._open = Ticket.status.in_(OPEN_STATUSES)
        self._overdue = and_(self._open, Ticket.created_at < period.until - OVERDUE_AFTER)

    async def overview(self) -> Overview:
        first_reply, resolved = await self._timings()
        weeks = await self._weeks()
        unseen_total, unseen = await self._unseen()
        return Overview(
            scope=self._scope,
            period=self._period,
            requests=sum(w.total for w in weeks),
            first_reply=first_reply,
            resolved=resolved,
            satisfaction=await self._satisfaction(),
            grids=await self._grids(),
            members=await self._members(),
            weeks=weeks,
            escalations=await self._escalations(),
            unseen_total=unseen_total,
            unseen=unseen,
        )

    async def _timings(self) -> tuple[FirstReply, list[ResolvedShare]]:
        rows = (
            await self._session.execute(
                select(
                    Ticket.created_at,
                    Ticket.first_response_at,
                    Ticket.resolved_at,
                    Ticket.incident_id,
                    self._open.label("is_open"),
                ).where(self._in_scope, self._in_period)
            )
        ).all()
        own = [r for r in rows if r.incident_id is None]
        waits = [
            (r.first_response_at - r.created_at).total_seconds() for r in own if r.first_response_at
        ]
        waiting = sum(1 for r in own if r.first_response_at is None and r.is_open)
        first_reply = FirstReply(len(waits), waiting, median(waits), percentile(waits, 90))
        until = self._period.until
        resolved = []
        for hours in RESOLVED_WITHIN:
            within = timedelta(hours=hours)
            due = [r for r in rows if r.created_at <= until - within]
            done = [r for r in due if r.resolved_at and r.resolved_at - r.created_at <= within]
            resolved.append(ResolvedShare(hours, len(due), len(done)))
        return first_reply, resolved

    async def _satisfaction(self) -> Satisfaction:
        rows = await self._session.execute(
            select(Ticket.rating, func.count())
            .where(self._in_scope, self._in_period, Ticket.rating.is_not(None))
            .group_by(Ticket.rating)
        )
        counts = dict.fromkeys(RATINGS, 0)
        for rating, count in rows.all():
            if rating in counts:
                counts[rating] = count
        return Satisfaction(counts)

    async def _grids(self) -> list[GridRow]:
        """Every grid of the scope, and each community's requests of no known grid."""
        rows = await self._session.execute(
            select(
                Ticket.community_id,
                Ticket.grid_id,
                _count_if(self._open),
                _count_if(self._overdue),
                _count_if(self._in_period),
                _count_if(and_(self._in_period, _has_event("escalate"))),
            )
            .where(self._in_scope, or_(self._open, self._in_period))
            .group_by(Ticket.community_id, Ticket.grid_id)
        )
        counts = {(c, g): tuple(numbers) for c, g, *numbers in rows.all()}
        grids = await self._session.scalars(
            select(Grid)
            .where(self._scope.where(Grid.community_id))
            .order_by(Grid.community_id, Grid.id)
        )
        table = [
            GridRow(g.name, g.community.name, *counts.get((g.community_id, g.id), (0, 0, 0, 0)))
            for g in grids
        ]
        communities = await self._session.scalars(
            select(Community).where(self._scope.where(Community.id)).order_by(Community.id)
        )
        for community in communities:
            unknown = counts.get((community.id, None))
            if unknown is not None:
                table.append(GridRow(UNKNOWN_GRID, community.name, *unknown))
        return table

    async def _members(self) -> list[MemberRow]:
        resolved = Ticket.resolved_at >= self._period.since
        rows = await self._session.execute(
            select(
                Ticket.assignee_id,
                _count_if(self._open),
                _count_if(self._overdue),
                _count_if(resolved),
            )
            .where(self._in_scope, Ticket.assignee_id.is_not(None), or_(self._open, resolved))
            .group_by(Ticket.assignee_id)
        )
        counts = {member_id: tuple(numbers) for member_id, *numbers in rows.all()}
        members = await self._session.scalars(
            select(Member)
            .where(
                Member.active.is_(True),
                Member.role.in_(roles_with(Action.HOLD)),
                self._scope.where(Member.community_id),
            )
            .order_by(Member.community_id, Member.id)
        )
        now = self._period.until
        return [
            MemberRow(
                m.id,
                m.name,
                m.role,
                m.community.name,
                [g.name for g in m.grids],
                on_duty(m.schedule, m.paused, now),
                m.paused,
                *counts.get(m.id, (0, 0, 0)),
            )
            for m in members
        ]

    async def _weeks(self) -> list[Week]:
        starts = week_starts(self._period)
        # Each request's week as the index of the latest start it is not before.
        week = case(
            *((Ticket.created_at >= s, i) for i, s in reversed(list(enumerate(starts)))),
            else_=-1,
        )
        # Grouped outside a subquery: PostgreSQL does not see two copies of an expression with
        # bound parameters as the same, so it cannot group by the expression itself.
        requests = (
            select(week.label("week"), Ticket.category.label("category"))
            .where(self._in_scope, self._in_period)
            .subquery()
        )
        rows = await self._session.execute(
            select(requests.c.week, requests.c.category, func.count()).group_by(
                requests.c.week, requests.c.category
            )
        )
        weeks = [Week(s, dict.fromkeys(CATEGORY_LABELS, 0)) for s in starts]
        for index, category, count in rows.all():
            if 0 <= index < len(weeks) and category in CATEGORY_LABELS:
                weeks[index].counts[category] += count
        return weeks

    async def _escalations(self) -> Escalations:
        row = (
            await self._session.execute(
                select(
                    _count_if(_has_event("escalate")),
                    _count_if(_has_event("hand_back")),
                    _count_if(_has_event("waiting")),
                    _count_if(_has_event("reopen")),
                ).where(self._in_scope, self._in_period)
            )
        ).one()
        return Escalations(*row)

    async def _unseen(self) -> tuple[int, list[Unseen]]:
        undecided = and_(
            PossibleRequest.status == PossibleStatus.OPEN,
            self._scope.where(PossibleRequest.community_id),
        )
        total = await self._session.scalar(select(func.count()).where(undecided))
        oldest = await self._session.scalars(
            select(PossibleRequest)
            .where(undecided)
            .order_by(PossibleRequest.id)
            .limit(UNSEEN_LISTED)
        )
        listed = [
            Unseen(p.id, p.created_at, p.community.name, p.grid.name if p.grid else None, p.text)
            for p in oldest
        ]
        return total or 0, listed


async def overview(session: AsyncSession, scope: Scope, period: Period) -> Overview:
    return await Figures(session, scope, period).overview()


def week_starts(period: Period) -> list[datetime]:
    """Where each week of the period starts: the period's own start, then every Monday
    00:00 Beijing time after it."""
    local = period.since.astimezone(LOCAL)
    monday = (local - timedelta(days=local.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    starts = [period.since]
    following = monday + timedelta(days=7)
    while following < period.until:
        starts.append(following)
        following += timedelta(days=7)
    return starts


def median(values: Iterable[float]) -> float | None:
    ordered = sorted(values)
    return statistics.median(ordered) if ordered else None


def percentile(values: Iterable[float], p: int) -> float | None:
    """Nearest rank: the smallest value that at least p % of the values do not exceed."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]
