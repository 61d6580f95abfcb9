"""A simulated week of residents' requests through the real dispatcher, on a fake clock.

    .venv/bin/python bench/dispatch.py [--tickets 1000] [--members 20] [--days 7] [--seed 7]
                                       [--no-answer 0.15] [--database-url URL]

A fresh database (SQLite in a temp dir unless --database-url names an empty one, e.g.
PostgreSQL) is migrated and filled with 4 grids, a roster of party members (20 by default:
18 grid members with mixed skills and weekly hours, two of them paused, and two branch
secretaries) and residents who each live in a grid. Requests arrive over the simulated days,
more by day than by night (a Poisson process with an hourly intensity profile, fixed seed),
and go through the real ticket service (`opening.open_ticket`); the real `Timers.run_due` runs after
every step of the clock (--step seconds of simulated time), so claim timeouts escalate as in
service (up to one step late). Most requests are one household's own (a leak, a meal, a
noisy neighbour), worded in a dozen ways per category; --outages times a grid loses water,
power or its lift and 3-8 neighbours report it within the hour, which the service should merge
into one incident (`bot.handoff.incidents`).

Member behaviour model (what the simulated people do; everything else is the real service):

* A member learns of a ticket when the service offers it to them: named as its assignee, or
  among those told at once (an urgent request, or the whole branch at the end of the chain).
  The offers are read off what the service publishes to the members' consoles (`MemberHub`).
* Each member offered a ticket ignores it with probability --no-answer (busy, phone in a
  pocket); otherwise they try to claim it after a lognormal delay: median 5 min (sigma 0.8)
  for ordinary requests, 1.5 min (sigma 0.6) for urgent ones, times --night-slowdown between
  23:00 and 07:00 Beijing time (asleep). Each member of a broadcast decides independently;
  the first claim wins, later ones lose (counted).
* A member who is off duty when their moment comes (hours over, or paused) never claims; an
  offer passed by is never looked at again (no sweeping of the console).
* A claimed ticket is resolved by its holder after a lognormal time (median 0.5-6 h by
  category), so open tickets pile up on busy members and "fewest open" routing matters.
  Residents never rate; surveys expire through the timers.

Measured afterwards from the database (tickets and their events, times from the fake clock):
time to assign (created → first offer to someone), time to claim overall and by the escalation
level the ticket was claimed at, how many tickets reached each level (from the offers the
service published), the busiest/least-busy member load ratio, and the tickets that waited past
the whole chain: offered to the whole branch and still not claimed one claim timeout later.
Reports merged into a neighbour's incident are not dispatched on their own; they are counted
apart (and whether each merge joined two reports of the same outage or two different
households' problems).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import logging
import math
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import jieba
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.conversation.delivery import Delivery  # noqa: E402
from bot.core.categories import category_for_intent  # noqa: E402
from bot.core.chat import ChatMessage, ChatRef  # noqa: E402
from bot.core.clock import FakeClock  # noqa: E402
from bot.core.handoff import HandoffRequest, Origin  # noqa: E402
from bot.db.engine import create_engine, create_session_factory  # noqa: E402
from bot.db.migrate import upgrade_async  # noqa: E402
from bot.db.models import Grid, Member, Resident, Ticket, TicketEvent  # noqa: E402
from bot.handoff.access import Actor, Visibility  # noqa: E402
from bot.handoff.dispatcher import has_skill  # noqa: E402
from bot.handoff.ledger import NotAllowed, Timeouts  # noqa: E402
from bot.handoff.push import MemberHub  # noqa: E402
from bot.handoff.schedule import LOCAL, on_duty, parse_schedule, slots_to_json  # noqa: E402
from bot.handoff.service import TicketService  # noqa: E402
from bot.handoff.states import UNCLAIMED, IllegalTransition  # noqa: E402
from bot.handoff.timers import Timers  # noqa: E402
from bot.metrics import Metrics  # noqa: E402

T = TypeVar("T")
# A Monday midnight in Beijing.
START = datetime(2026, 11, 30, tzinfo=LOCAL)
LEVELS = ("0 first choice", "1 next candidate", "2 secretary/urgent", "3 whole branch")

# name, code, aliases, share of the residents
GRIDS = [
    ("3号楼", "b3", "三号楼,3栋,3幢", 0.2),
    ("5号楼", "b5", "五号楼,5栋,5幢", 0.2),
    ("东村", "dongcun", "东村组", 0.33),
    ("西村", "xicun", "西村组", 0.27),
]


@dataclass(frozen=True)
class Person:
    name: str
    grid: str | None  # None: a secretary, who covers every grid
    skills: str = ""  # none listed: takes every kind of request
    hours: str = ""  # none: on duty at any time
    paused: bool = False

    @property
    def role(self) -> str:
        return "member" if self.grid else "secretary"


# Per grid: a retiree at home all day, weekday workers, evening and weekend volunteers.
ROSTER = [
    Person("王建国", "3号楼", "维修,调解"),
    Person("李秀英", "3号楼", "医疗,助餐", "mon-fri 08:00-18:00"),
    Person("赵磊", "3号楼", "维修", "mon-fri 18:00-22:00, sat-sun 09:00-21:00"),
    Person("孙丽", "3号楼"),
    Person("周敏", "3号楼", "助餐", "mon-sat 10:00-14:00"),
    Person("吴涛", "5号楼", "维修", "mon-fri 08:00-18:00"),
    Person("郑芳", "5号楼", "医疗"),
    Person("冯伟", "5号楼", "调解,助餐"),
    Person("陈静", "5号楼", "", "sat-sun 08:00-20:00"),
    Person("张志强", "东村", "维修,调解"),
    Person("刘桂兰", "东村", "医疗,助餐"),
    Person("杨帆", "东村", "维修", "mon-fri 07:30-17:30"),
    Person("黄丽娟", "东村", "助餐", "mon-fri 10:30-13:30, mon-fri 16:30-18:30"),
    Person("何军", "东村", "", "", paused=True),
    Person("林国庆", "西村", "维修,调解"),
    Person("徐秀兰", "西村", "医疗,助餐", "mon-sun 07:00-21:00"),
    Person("高明", "西村", "", "mon-fri 19:00-23:00"),
    Person("罗小红", "西村", "医疗", "", paused=True),
]
SECRETARIES = [
    Person("陈红梅", None),
    Person("马卫东", None, "", "mon-fri 08:30-17:30"),
]

# category (the intent the NLU would give), share, resolve median in hours, how residents say it
CATEGORIES = [
    ("repair", 0.35, 3.0, [
        "厨房水管漏水了", "卫生间马桶堵了", "家里跳闸了，一半屋子没电", "热水器打不着火",
        "窗户玻璃裂了", "门锁坏了打不开", "洗衣机下水管漏水", "家里的灯不亮了，想请人换个灯泡",
        "暖气片不热", "燃气灶点不着", "阳台下水道返味", "天花板渗水了", "水龙头关不紧一直滴水",
        "防盗门关不上",
    ]),
    ("canteen", 0.20, 1.0, [
        "想订明天的老年餐", "助餐点今天中午送餐吗", "帮我妈订一份午饭", "我想取消明天的订餐",
        "这周的菜单是什么", "晚饭能送到家吗，腿脚不方便", "老年食堂的饭卡怎么充值",
        "能不能订一份软一点的饭菜",
    ]),
    ("medical", 0.20, 1.5, [
        "老伴血压高想请人来量一下", "想预约上门打针", "药吃完了能帮忙配吗", "想请医生上门看看我妈",
        "家里老人发烧了", "想做个免费体检", "糖尿病的药怎么领", "腿疼走不了路想请人看看",
    ]),
    ("complaint", 0.15, 6.0, [
        "楼上晚上太吵了", "有人在楼道堆杂物", "小区门口乱停车", "邻居家狗天天叫",
        "垃圾桶好几天没人清", "有人在绿化带种菜", "广场舞音乐太大声", "电动车在楼道充电很危险",
    ]),
    ("urgent", 0.05, 0.75, [
        "我爸摔倒了起不来", "闻到很大的煤气味", "家里着火了快来人", "老人晕倒了叫不醒",
        "有人被困在电梯里了",
    ]),
    ("nlu_fallback", 0.05, 0.5, [
        "那个事情怎么办", "你好请问一下", "我想找人说说", "上次说的还没弄", "能不能找个人来",
        "这个怎么弄",
    ]),
]  # fmt: skip
# What a whole grid loses at once, and how neighbours say so.
OUTAGES = [
    ["停水了", "我们这停水了，什么时候来水", "怎么又停水了", "停水了，家里一点水都没有"],
    ["停电了", "整栋楼停电了", "楼里停电了，冰箱都不转了", "怎么停电了"],
    ["电梯坏了", "电梯不动了，老人下不去楼", "电梯又坏了", "电梯卡在三楼不动了"],
]
# Relative request rate by hour of day, Beijing time; weekends a little quieter.
HOURLY = [0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.5, 1.0, 1.6, 1.9, 1.9, 1.6,
          1.2, 1.1, 1.5, 1.6, 1.5, 1.3, 1.2, 1.1, 0.9, 0.6, 0.4, 0.25]  # fmt: skip
WEEKEND = 0.85
NIGHT = (23, 7)


# Neighbours reporting an outage do so within about this long of the first.
OUTAGE_SPREAD_S = 20 * 60


@dataclass(frozen=True)
class Arrival:
    """A resident asking for help: when, who, what, and which outage it reports (if any)."""

    at: datetime
    resident: int  # index into Simulation.residents
    intent: str
    text: str
    outage: int | None = None


@dataclass(frozen=True)
class Offer:
    """The service offering a ticket to someone, as its consoles would learn of it."""

    ticket_id: int
    at: datetime
    level: int
    assignee_id: int | None
    audience: tuple[int, ...]
    category: str


class RecordingHub(MemberHub):
    """The members' consoles: notes every offer the service publishes (nobody is connected).
    A report merged into a neighbour's incident is never offered on its own."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self._clock = clock
        self._seen: dict[int, tuple[int, int]] = {}
        self.pending: list[Offer] = []
        self.offers: list[Offer] = []

    async def publish(
        self,
        kind: str,
        ticket: Ticket,
        message: ChatMessage | None = None,
        before: Visibility | None = None,
    ) -> None:
        if ticket.status not in UNCLAIMED or ticket.incident_id is not None:
            return
        tried = list(ticket.tried_member_ids or [])
        seen_count, seen_level = self._seen.get(ticket.id, (0, -1))
        if len(tried) == seen_count and ticket.escalation_level == seen_level:
            return
        self._seen[ticket.id] = (len(tried), ticket.escalation_level)
        offer = Offer(
            ticket.id,
            self._clock.now(),
            ticket.escalation_level,
            ticket.assignee_id,
            tuple(tried[seen_count:]),
            ticket.category,
        )
        self.pending.append(offer)
        self.offers.append(offer)


class SilentSender:
    """The webchat channel, accepting everything said to residents."""

    async def deliver(self, chat: ChatRef, message: ChatMessage) -> None:
        return None


def roster(size: int) -> list[Person]:
    """The fixed roster for 20; otherwise the secretaries and `size - 2` grid members taken
    round-robin over the grids (repeating the patterns with numbered names past 18)."""
    if size == len(ROSTER) + len(SECRETARIES):
        return [*ROSTER, *SECRETARIES]
    by_grid = [[p for p in ROSTER if p.grid == g[0]] for g in GRIDS]
    people: list[Person] = []
    for i in range(max(size - len(SECRETARIES), len(GRIDS))):
        pool = by_grid[i % len(GRIDS)]
        template = pool[(i // len(GRIDS)) % len(pool)]
        copy = i // (len(GRIDS) * len(pool))
        name = template.name if copy == 0 else f"{template.name}{copy + 1}"
        people.append(Person(name, template.grid, template.skills, template.hours, template.paused))
    return [*people, *SECRETARIES]


def at_night(moment: datetime) -> bool:
    hour = moment.astimezone(LOCAL).hour
    return hour >= NIGHT[0] or hour < NIGHT[1]


@dataclass
class Tally:
    offered: int = 0
    no_answer: int = 0
    off_duty: int = 0
    won: int = 0
    lost: int = 0
    not_visible: int = 0
    resolved: int = 0
    errors: list[str] = field(default_factory=list)


class Simulation:
    def __init__(self, args: argparse.Namespace, sessions: Any, clock: FakeClock) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.clock = clock
        self.hub = RecordingHub(clock)
        delivery = Delivery(sessions)
        delivery.register("webchat", SilentSender())
        self.timeouts = Timeouts()
        self.tickets = TicketService(
            sessions, delivery, self.hub, Metrics.create(), clock, self.timeouts
        )
        self.timers = Timers(self.tickets)
        self.sessions = sessions
        self.members: dict[int, Member] = {}
        self.actors: dict[int, Actor] = {}
        self.residents: list[tuple[int, str, str]] = []  # id, external id, grid name
        self.queue: list[tuple[datetime, int, str, int, int]] = []
        self.seq = 0
        self.tally = Tally()
        self.category_of: dict[int, str] = {}
        self.outage_of: dict[int, int] = {}
        self.spent: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self.steps = 0
        self.ended_at = START

    # ---------- setting up ----------

    async def populate(self, people: list[Person], residents: int) -> None:
        async with self.sessions() as session, session.begin():
            if await session.scalar(select(func.count()).select_from(Grid)):
                raise SystemExit("the database already has grids; give an empty one")
            grids = {}
            for name, code, aliases, _ in GRIDS:
                grids[name] = Grid(name=name, code=code, aliases=aliases, created_at=START)
                session.add(grids[name])
            for p in people:
                session.add(
                    Member(
                        name=p.name,
                        role=p.role,
                        skills=p.skills,
                        grids=[grids[p.grid]] if p.grid else list(grids.values()),
                        schedule=slots_to_json(parse_schedule(p.hours)) or None,
                        paused=p.paused,
                        created_at=START,
                    )
                )
            shares = [g[3] for g in GRIDS]
            for i in range(residents):
                grid = grids[self.rng.choices(GRIDS, weights=shares)[0][0]]
                session.add(
                    Resident(
                        channel="webchat",
                        external_id=f"r{i:04d}",
                        name=f"居民{i:04d}",
                        grid=grid,
                        created_at=START,
                    )
                )
        async with self.sessions() as session:
            for member in (await session.scalars(select(Member).order_by(Member.id))).all():
                self.members[member.id] = member
                self.actors[member.id] = Actor.of(member)
            rows = await session.execute(
                select(Resident.id, Resident.external_id, Grid.name)
                .join(Grid, Resident.grid_id == Grid.id)
                .order_by(Resident.id)
            )
            self.residents = [(r[0], r[1], r[2]) for r in rows.all()]

    def arrivals(self, count: int, days: int, outages: int) -> list[Arrival]:
        """`count` requests. Given their number, a Poisson process's points are independent
        draws from its intensity; each outage brings 3-8 reports from one grid at once."""
        rng = self.rng
        weights = []
        for minute in range(days * 24 * 60):
            local = START + timedelta(minutes=minute)
            weights.append(HOURLY[local.hour] * (WEEKEND if local.weekday() >= 5 else 1.0))

        def moments(k: int) -> list[datetime]:
            picked = rng.choices(range(len(weights)), weights=weights, k=k)
            return [START + timedelta(minutes=m + rng.random()) for m in picked]

        def said(text: str, grid: str) -> str:
            if rng.random() < 0.3:  # some say where, as residents do
                return f"{text}，{grid}{rng.randint(1, 6)}单元{rng.randint(1, 6)}01"
            return text

        # A few residents (the elderly living alone) ask far more often than the rest.
        often = [rng.lognormvariate(0, 1) for _ in self.residents]
        result: list[Arrival] = []
        for outage, first in enumerate(moments(outages)):
            grid = rng.choice(GRIDS)[0]
            kinds = OUTAGES if "号楼" in grid else OUTAGES[:2]  # the villages have no lift
            phrases = rng.choice(kinds)
            neighbours = [i for i, r in enumerate(self.residents) if r[2] == grid]
            for i in rng.sample(neighbours, min(len(neighbours), rng.randint(3, 8))):
                at = first + timedelta(seconds=rng.expovariate(1 / OUTAGE_SPREAD_S))
                result.append(Arrival(at, i, "repair", said(rng.choice(phrases), grid), outage))
        result = result[:count]
        for at in moments(count - len(result)):
            intent = rng.choices(CATEGORIES, weights=[c[1] for c in CATEGORIES])[0]
            i = rng.choices(range(len(self.residents)), weights=often)[0]
            result.append(
                Arrival(at, i, intent[0], said(rng.choice(intent[3]), self.residents[i][2]))
            )
        return sorted(result, key=lambda a: a.at)

    # ---------- running ----------

    async def timed(self, name: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await call
        finally:
            spent = self.spent[name]
            spent[0] += 1
            spent[1] += time.perf_counter() - started

    def schedule(self, at: datetime, action: str, ticket_id: int, member_id: int) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, action, ticket_id, member_id))

    async def open(self, arrival: Arrival) -> None:
        resident_id, external_id, _ = self.residents[arrival.resident]
        request = HandoffRequest(
            conversation_id=external_id,
            intent=arrival.intent,
            confidence=0.3 if arrival.intent == "nlu_fallback" else 0.9,
            text=arrival.text,
            origin=Origin(
                ChatRef("webchat", "private", external_id, external_id), resident_id=resident_id
            ),
        )
        try:
            result = await self.timed("open_ticket", self.tickets.opening.open_ticket(request))
        except Exception as e:
            self.tally.errors.append(f"open_ticket at {arrival.at}: {e!r}")
            return
        self.category_of[result.ticket_id] = category_for_intent(arrival.intent)
        if arrival.outage is not None:
            self.outage_of[result.ticket_id] = arrival.outage

    def react(self) -> None:
        """Every member told of a ticket decides whether and when to claim it."""
        offers, self.hub.pending = self.hub.pending, []
        for offer in offers:
            urgent = offer.category == "urgent"
            for member_id in offer.audience:
                self.tally.offered += 1
                if self.rng.random() < self.args.no_answer:
                    self.tally.no_answer += 1
                    continue
                median, sigma = (90.0, 0.6) if urgent else (300.0, 0.8)
                delay = self.rng.lognormvariate(math.log(median), sigma)
                if at_night(offer.at):
                    delay *= self.args.night_slowdown
                at = offer.at + timedelta(seconds=delay)
                self.schedule(at, "claim", offer.ticket_id, member_id)

    async def act(self, action: str, ticket_id: int, member_id: int) -> None:
        member, actor = self.members[member_id], self.actors[member_id]
        now = self.clock.now()
        if action == "claim":
            if not on_duty(member.schedule, member.paused, now):
                self.tally.off_duty += 1
                return
            try:
                await self.timed("claim", self.tickets.holding.claim(actor, ticket_id))
            except IllegalTransition:
                self.tally.lost += 1
                return
            except NotAllowed:
                self.tally.not_visible += 1
                return
            self.tally.won += 1
            category = self.category_of[ticket_id]
            hours = next(c[2] for c in CATEGORIES if category_for_intent(c[0]) == category)
            delay = self.rng.lognormvariate(math.log(hours * 3600), 0.8)
            self.schedule(now + timedelta(seconds=delay), "resolve", ticket_id, member_id)
        else:
            try:
                await self.timed(
                    "resolve", self.tickets.holding.resolve(actor, ticket_id, "已处理")
                )
            except Exception as e:  # the holder resolving must not fail: report it
                self.tally.errors.append(f"resolve {ticket_id} by {member.name}: {e!r}")
                return
            self.tally.resolved += 1

    async def until(self, moment: datetime, arrivals: list[Arrival]) -> None:
        """Everything that happens up to `moment`, in time order, each at its own time."""
        while True:
            action_at = self.queue[0][0] if self.queue else None
            arrival = arrivals[0] if arrivals else None
            if (
                arrival is not None
                and arrival.at <= moment
                and (action_at is None or arrival.at <= action_at)
            ):
                arrivals.pop(0)
                self.clock.set(arrival.at)
                await self.open(arrival)
                self.react()
            elif action_at is not None and action_at <= moment:
                _, _, action, ticket_id, member_id = heapq.heappop(self.queue)
                self.clock.set(action_at)
                await self.act(action, ticket_id, member_id)
            else:
                return

    async def waiting_on_timer(self) -> int:
        async with self.sessions() as session:
            return await session.scalar(
                select(func.count())
                .select_from(Ticket)
                .where(Ticket.status.in_(UNCLAIMED), Ticket.claim_deadline.is_not(None))
            )

    async def run(self, arrivals: list[Arrival]) -> None:
        """Step the clock until every request has come and nothing more can happen to the
        unclaimed ones (no claim on its way, no timer running), or --drain-hours after the last
        request."""
        step = timedelta(seconds=self.args.step)
        pending = list(arrivals)
        last = arrivals[-1].at if arrivals else START
        drain_until = last + timedelta(hours=self.args.drain_hours)
        moment = START
        while True:
            moment += step
            await self.until(moment, pending)
            self.clock.set(moment)
            try:
                await self.timed("run_due", self.timers.run_due())
            except Exception as e:
                self.tally.errors.append(f"run_due at {moment}: {e!r}")
            self.react()
            self.steps += 1
            if not pending and self.steps % 20 == 0:
                claims_left = any(a == "claim" for _, _, a, _, _ in self.queue)
                if moment >= drain_until or not (claims_left or await self.waiting_on_timer()):
                    break
        self.ended_at = moment


# ---------- measuring ----------


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def spread(values: list[float]) -> str:
    return " | ".join(
        dur(v) for v in (percentile(values, 0.5), percentile(values, 0.95), max(values or [0]))
    )


def wording(text: str) -> str:
    """A report without the address a resident may have added."""
    return text.split("，")[0]


def duty_fraction(member: Member, start: datetime, end: datetime) -> float:
    """Share of the simulated time the member was on duty (sampled every 10 minutes)."""
    samples = on = 0
    moment = start
    while moment < end:
        samples += 1
        on += on_duty(member.schedule, member.paused, moment)
        moment += timedelta(minutes=10)
    return on / samples if samples else 0.0


def check_offers(sim: Simulation, tickets: dict[int, Ticket]) -> Counter[str]:
    """The chain as the dispatcher describes it, checked offer by offer against the roster
    (which does not change during the run): who was asked, at which level, and when."""
    problems: Counter[str] = Counter()
    step = timedelta(seconds=sim.args.step)
    members = [m for m in sim.members.values() if m.role == "member"]
    secretaries = [m for m in sim.members.values() if m.role == "secretary"]
    by_ticket: dict[int, list[Offer]] = defaultdict(list)
    for offer in sim.hub.offers:
        by_ticket[offer.ticket_id].append(offer)

    def duty(people: list[Member], at: datetime) -> set[int]:
        return {m.id for m in people if on_duty(m.schedule, m.paused, at)}

    for ticket_id, offers in by_ticket.items():
        ticket = tickets[ticket_id]
        grid_members = [m for m in members if ticket.grid_id in {g.id for g in m.grids}]
        skilled = [m for m in grid_members if has_skill(m, ticket.category)]
        timeout = sim.timeouts.for_category(ticket.category)
        tried: set[int] = set()
        for i, offer in enumerate(offers):
            if any(not on_duty(sim.members[m].schedule, sim.members[m].paused, offer.at)
                   for m in offer.audience):  # fmt: skip
                problems["offered to someone off duty"] += 1
            if i and offer.level <= offers[i - 1].level:
                problems["level did not go up"] += 1
            if i and not (timeout <= offer.at - offers[i - 1].at <= timeout + step):
                problems["escalated off time"] += 1
            if offer.level < 3 and offer.assignee_id in tried:
                problems["the same member named twice"] += 1
            if offer.level == 3 and set(offer.audience) != duty(members, offer.at):
                problems["whole branch is not every member on duty"] += 1
            if i == 0 and ticket.category == "urgent":
                if set(offer.audience) != duty(grid_members + secretaries, offer.at):
                    problems["urgent audience is not the grid and secretaries on duty"] += 1
            elif i == 0 and offer.level == 2 and duty(skilled, offer.at):
                problems["went to the secretary with a skilled member on duty"] += 1
            elif i and offers[i - 1].level == 0 and offer.level > 1:
                if duty(skilled, offer.at) - tried - set(offer.audience):
                    problems["skipped the next candidate"] += 1
            if offer.level == 1 and offer.assignee_id not in duty(skilled, offer.at):
                problems["next candidate not a skilled grid member on duty"] += 1
            if offer.level == 2 and ticket.category != "urgent" and offer.assignee_id is not None:
                if offer.assignee_id not in {m.id for m in secretaries}:
                    problems["level 2 named someone other than a secretary"] += 1
            tried.update(offer.audience)
        last = offers[-1]
        if ticket.status in UNCLAIMED and ticket.claim_deadline is None and last.level < 3:
            problems["unclaimed below level 3 with no timer"] += 1
    return problems


async def measure(sim: Simulation, wall_s: float) -> None:
    async with sim.sessions() as session:
        tickets = (await session.scalars(select(Ticket).order_by(Ticket.id))).all()
        events = (await session.scalars(select(TicketEvent).order_by(TicketEvent.id))).all()
    by_ticket: dict[int, list[TicketEvent]] = defaultdict(list)
    for e in events:
        by_ticket[e.ticket_id].append(e)
    offers: dict[int, list[Offer]] = defaultdict(list)
    for offer in sim.hub.offers:
        offers[offer.ticket_id].append(offer)
    by_id = {t.id: t for t in tickets}

    def claim_of(t: Ticket) -> TicketEvent | None:
        return next((e for e in by_ticket[t.id] if e.kind == "claim"), None)

    dispatched = [t for t in tickets if t.incident_id is None]
    merged = [t for t in tickets if t.incident_id is not None]
    assign_s: list[float] = []
    never_offered = []
    claim_s: list[float] = []
    urgent_s: list[float] = []
    claim_by_level: dict[int, list[float]] = defaultdict(list)
    reached: Counter[int] = Counter()
    opened_at: Counter[int] = Counter()
    empty_broadcasts = 0
    unclaimed = []
    past_chain: list[tuple[int, str, str]] = []
    claimed: dict[int, set[int]] = defaultdict(set)
    named: dict[int, set[int]] = defaultdict(set)
    for t in dispatched:
        evs = by_ticket[t.id]
        first_offer = next((e for e in evs if e.kind in ("assign", "escalate")), None)
        # Offered to someone iff anyone was ever tried: only a last broadcast can reach nobody.
        if first_offer is not None and t.tried_member_ids:
            assign_s.append((first_offer.created_at - t.created_at).total_seconds())
        else:
            never_offered.append(t.id)
        reached.update({o.level for o in offers[t.id]})
        if offers[t.id]:
            opened_at[offers[t.id][0].level] += 1
        for o in offers[t.id]:
            if o.assignee_id is not None:
                named[o.assignee_id].add(t.id)
            empty_broadcasts += o.level == 3 and not o.audience
        claim = claim_of(t)
        if claim is not None:
            waited = (claim.created_at - t.created_at).total_seconds()
            claim_s.append(waited)
            if t.category == "urgent":
                urgent_s.append(waited)
            claim_by_level[t.escalation_level].append(waited)
            claimed[claim.actor_member_id].add(t.id)
        else:
            unclaimed.append(t)
        branch = next((o for o in offers[t.id] if o.level == 3), None)
        if branch is not None:
            limit = branch.at + sim.timeouts.for_category(t.category)
            if claim is None:
                past_chain.append((t.id, t.category, "never claimed"))
            elif claim.created_at > limit:
                late = (claim.created_at - branch.at).total_seconds()
                past_chain.append((t.id, t.category, f"claimed {dur(late)} after the broadcast"))

    args = sim.args
    print(
        f"{len(tickets)} requests over {args.days} simulated days (clock run to "
        f"{(sim.ended_at - START).total_seconds() / 86400:.2f} d), {len(sim.members)} members, "
        f"{len(sim.residents)} residents, seed {args.seed}, no-answer {args.no_answer:.0%}, "
        f"night slowdown x{args.night_slowdown:g}, step {args.step:g} s"
    )
    categories = Counter(t.category for t in tickets)
    print("categories: " + ", ".join(f"{c} {k}" for c, k in categories.most_common()))
    print(
        f"dispatched on their own: {len(dispatched)}; merged into a neighbour's incident: "
        f"{len(merged)}\n"
    )

    print("| dispatched tickets | p50 | p95 | max | n |")
    print("|---|---|---|---|---|")
    print(f"| time to assign | {spread(assign_s)} | {len(assign_s)} |")
    print(f"| time to claim | {spread(claim_s)} | {len(claim_s)} |")
    print(f"| time to claim, urgent | {spread(urgent_s)} | {len(urgent_s)} |")
    if never_offered:
        print(f"\nnever offered to anyone: {len(never_offered)} tickets {never_offered[:10]}")

    print("\n| escalation level | opened there | reached | claimed there | p50 | p95 | max |")
    print("|---|---|---|---|---|---|---|")
    for level, label in enumerate(LEVELS):
        times = claim_by_level[level]
        print(
            f"| {label} | {opened_at[level]} | {reached[level]} | {len(times)} | "
            f"{spread(times) if times else '- | - | -'} |"
        )
    if empty_broadcasts:
        print(f"whole-branch broadcasts that reached nobody on duty: {empty_broadcasts}")
    print(f"never claimed: {len(unclaimed)}")
    for t in unclaimed[:10]:
        last = offers[t.id][-1] if offers[t.id] else None
        print(
            f"  ticket {t.id} ({t.category}, {t.grid.name if t.grid else '-'}): {t.status}, "
            f"level {t.escalation_level}, timer {'on' if t.claim_deadline else 'off'}, "
            f"last offered to {len(last.audience) if last else 0}"
        )

    print(
        f"\nwaited past the whole chain (offered to the whole branch, not claimed within one "
        f"more claim timeout): {len(past_chain)} (target 0)"
    )
    for ticket_id, category, what in past_chain[:10]:
        print(f"  ticket {ticket_id} ({category}): {what}")
    if len(past_chain) > 10:
        print(f"  ... {len(past_chain) - 10} more")
    by_category = Counter(c for _, c, _ in past_chain)
    if by_category:
        print("  by category: " + ", ".join(f"{c} {k}" for c, k in by_category.most_common()))

    # Merged reports: did each join a report of the same outage, or another household's?
    same = [
        t
        for t in merged
        if t.id in sim.outage_of and sim.outage_of.get(t.incident_id) == sim.outage_of[t.id]
    ]
    wrong = [t for t in merged if t not in same]
    outage_reports: dict[int, list[int]] = defaultdict(list)
    for ticket_id, outage in sim.outage_of.items():
        outage_reports[outage].append(ticket_id)
    heads = sum(
        sum(1 for i in ids if by_id[i].incident_id is None) for ids in outage_reports.values()
    )
    merged_claim = [
        (c.created_at - t.created_at).total_seconds() for t in merged if (c := claim_of(t))
    ]
    worded_alike = [t for t in wrong if wording(t.text) == wording(by_id[t.incident_id].text)]
    print(
        f"\nincidents: {len(sim.outage_of)} reports of {len(outage_reports)} outages became "
        f"{heads} tickets of their own (ideal {len(outage_reports)}); {len(merged)} reports "
        f"merged: {len(same)} into the same outage, {len(wrong)} into another household's "
        f"problem ({len(worded_alike)} of them worded alike; by category "
        f"{dict(Counter(t.category for t in wrong))})"
    )
    print(
        f"merged reports claimed p50 | p95 | max: {spread(merged_claim)}; never claimed "
        f"{len(merged) - len(merged_claim)}"
    )
    for t in sorted(wrong, key=lambda t: t in worded_alike)[:6]:
        print(f"  #{t.id} {t.text!r} -> #{t.incident_id} {by_id[t.incident_id].text!r}")

    # Load: dispatched tickets each member was named for or claimed.
    print("\n| member | role | grid | skills | on duty | named | claimed | named or claimed |")
    print("|---|---|---|---|---|---|---|---|")
    loads: dict[str, tuple[int, float]] = {}
    excluded = []
    for member_id, member in sim.members.items():
        duty = duty_fraction(member, START, sim.ended_at)
        handled = len(named[member_id] | claimed[member_id])
        grids = "all" if member.role == "secretary" else "、".join(g.name for g in member.grids)
        print(
            f"| {member.name} | {member.role} | {grids} | {member.skills or '(all)'} | "
            f"{'paused' if member.paused else f'{duty:.0%}'} | {len(named[member_id])} | "
            f"{len(claimed[member_id])} | {handled} |"
        )
        if member.role == "member" and duty > 0:
            loads[member.name] = (handled, duty)
        else:
            excluded.append(member.name)
    if loads:
        busiest = max(loads, key=lambda n: loads[n][0])
        idlest = min(loads, key=lambda n: loads[n][0])
        ratio = loads[busiest][0] / loads[idlest][0] if loads[idlest][0] else math.inf
        print(
            f"\nload ratio busiest/least busy (named or claimed; grid members on duty some of "
            f"the time, i.e. without {'、'.join(excluded)}): {busiest} {loads[busiest][0]} / "
            f"{idlest} {loads[idlest][0]} = {ratio:.1f}"
        )
        per_day = {
            n: h / d / ((sim.ended_at - START).total_seconds() / 86400)
            for n, (h, d) in loads.items()
        }
        top = max(per_day, key=per_day.__getitem__)
        low = min(per_day, key=per_day.__getitem__)
        print(
            f"per day on duty: {top} {per_day[top]:.1f} / {low} {per_day[low]:.1f} = "
            f"{per_day[top] / per_day[low] if per_day[low] else math.inf:.1f}"
        )

    problems = check_offers(sim, by_id)
    print(
        f"\nchain checks over {len(sim.hub.offers)} offers: "
        + (", ".join(f"{k} {n}" for k, n in problems.most_common()) or "no violations")
    )

    tally = sim.tally
    print(
        f"\nmember actions: {tally.offered} offers, {tally.no_answer} ignored, {tally.off_duty} "
        f"too late (off duty by then), {tally.won} claims won, {tally.lost} lost to a colleague, "
        f"{tally.not_visible} no longer visible, {tally.resolved} resolved"
    )
    for error in tally.errors[:20]:
        print(f"ERROR {error}")
    if len(tally.errors) > 20:
        print(f"ERROR ... {len(tally.errors) - 20} more")
    calls = ", ".join(
        f"{name} {n} x {total / n * 1000:.1f} ms" for name, (n, total) in sim.spent.items() if n
    )
    print(
        f"\nwall clock {wall_s:.1f} s for {sim.steps} clock steps: "
        f"{len(tickets) / wall_s:.1f} tickets/s; {calls}"
    )


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/dispatch.db"
        await upgrade_async(url)
        engine = create_engine(url)
        try:
            clock = FakeClock(START)
            sim = Simulation(args, create_session_factory(engine), clock)
            await sim.populate(roster(args.members), args.residents)
            arrivals = sim.arrivals(args.tickets, args.days, args.outages)
            jieba.initialize()  # the service warms it up at start, too
            started = time.perf_counter()
            await sim.run(arrivals)
            wall_s = time.perf_counter() - started
            await measure(sim, wall_s)
        finally:
            await engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    jieba.setLogLevel(logging.WARNING)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--members", type=int, default=20, help="including two secretaries")
    parser.add_argument("--residents", type=int, default=300)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-answer", type=float, default=0.15, help="share of offers ignored")
    parser.add_argument(
        "--night-slowdown", type=float, default=2.0, help="claim delay factor 23:00-07:00"
    )
    parser.add_argument("--outages", type=int, default=6, help="grid-wide outages in the period")
    parser.add_argument("--step", type=float, default=15.0, help="simulated seconds per step")
    parser.add_argument(
        "--drain-hours", type=float, default=24.0, help="longest run after the last request"
    )
    parser.add_argument("--database-url", help="an empty database (default: temporary SQLite)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
