"""The command line for places and people: `python -m bot communities | grids | members`.

A district runs one service for its communities (社区); each has its grids and members. A
grid or member added without `--community` joins the default community (the first one), so
a single-community install never names one.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import audit
from bot.audit import AuditAction
from bot.cli_common import CommandError, transaction
from bot.db.models import Community, Grid, Member, Ticket, default_community, new_invite
from bot.handoff.roles import ROLES
from bot.handoff.schedule import ScheduleError, describe, parse_schedule, slots_to_json
from bot.handoff.states import OPEN_STATUSES
from bot.settings import Settings
from bot.web.auth import hash_password, issue_token, revoke_all

MIN_PASSWORD = 8
COMMANDS = ("communities", "grids", "members")


# ---------- communities ----------


async def _community(session: AsyncSession, code: str | None) -> Community:
    """The community with `code`, or the default one when none is named."""
    if code is None:
        community = await session.scalar(default_community())
    else:
        community = await session.scalar(select(Community).where(Community.code == code))
    if community is None:
        raise CommandError(
            f"no community with code {code!r}; add it first: python -m bot communities add"
        )
    return community


async def add_community(settings: Settings, name: str, code: str) -> str:
    async with transaction(settings) as session:
        taken = await session.scalar(
            select(Community).where((Community.name == name) | (Community.code == code))
        )
        if taken is not None:
            raise CommandError(f"community {taken.name} ({taken.code}) exists")
        session.add(Community(name=name, code=code))
    return f"community {name} ({code}) added; its grids: python -m bot grids add --community {code}"


async def list_communities(settings: Settings) -> str:
    async with transaction(settings) as session:
        default = await session.scalar(default_community())
        grids = dict(
            (
                await session.execute(
                    select(Grid.community_id, func.count()).group_by(Grid.community_id)
                )
            ).all()
        )
        members = dict(
            (
                await session.execute(
                    select(Member.community_id, func.count())
                    .where(Member.active.is_(True))
                    .group_by(Member.community_id)
                )
            ).all()
        )
        communities = (await session.scalars(select(Community).order_by(Community.id))).all()
        return "\n".join(
            f"{'*' if c.id == default.id else ' '} {c.code}\t{c.name}\t"
            f"{grids.get(c.id, 0)} grid(s)\t{members.get(c.id, 0)} member(s)"
            for c in communities
        )


# ---------- grids ----------


async def _grid(session: AsyncSession, name: str) -> Grid:
    grid = await session.scalar(select(Grid).where(Grid.name == name))
    if grid is None:
        raise CommandError(f"no grid named {name!r}; add it first: python -m bot grids add")
    return grid


def room_link(settings: Settings, grid: Grid) -> str:
    """The link to print as a QR code on the grid's poster; it lets a neighbour join the room."""
    return f"{settings.public_url}/webchat/?room={grid.invite}"


async def add_grid(
    settings: Settings, name: str, code: str, aliases: str, community: str | None = None
) -> str:
    async with transaction(settings) as session:
        # Names are the district's: the console and the residents' replies show them alone.
        if await session.scalar(select(Grid).where(Grid.name == name)):
            raise CommandError(f"grid {name!r} exists")
        place = await _community(session, community)
        grid = Grid(name=name, code=code, aliases=aliases, invite=new_invite(), community=place)
        session.add(grid)
    return f"grid {name} ({code}) added to {place.name}; its room: {room_link(settings, grid)}"


async def grid_invite(settings: Settings, name: str, renew: bool) -> str:
    """The room link; `--renew` makes a new one (the old poster stops working)."""
    async with transaction(settings) as session:
        grid = await _grid(session, name)
        if renew:
            grid.invite = new_invite()
        return room_link(settings, grid)


# ---------- members ----------


@dataclass(frozen=True)
class NewMember:
    name: str
    grids: Sequence[str]
    skills: str
    role: str
    password: str | None
    phone: str | None
    hours: str
    wecom_userid: str | None
    # A community's code; none: the named grids' community, else the default one.
    community: str | None = None


def _slots(hours: str) -> list[list[int]] | None:
    try:
        return slots_to_json(parse_schedule(hours)) or None
    except ScheduleError as e:
        raise CommandError(str(e)) from None


async def _member_community(
    session: AsyncSession, code: str | None, grids: Sequence[Grid]
) -> Community:
    """A member serves one community's branch, so their grids are all in it."""
    named = {g.community.code: g.community for g in grids}
    if code is None and len(named) == 1:
        return next(iter(named.values()))
    community = await _community(session, code)
    outside = [g.name for g in grids if g.community_id != community.id]
    if outside:
        raise CommandError(f"grid(s) {', '.join(outside)} are not in {community.name}")
    return community


async def add_member(settings: Settings, new: NewMember) -> str:
    schedule = _slots(new.hours)
    async with transaction(settings) as session:
        if await session.scalar(select(Member).where(Member.name == new.name)):
            raise CommandError(f"member {new.name!r} exists")
        grids = [await _grid(session, g) for g in new.grids]
        community = await _member_community(session, new.community, grids)
        member = Member(
            name=new.name,
            role=new.role,
            skills=new.skills,
            phone=new.phone,
            wecom_userid=new.wecom_userid,
            schedule=schedule,
            password_hash=hash_password(new.password) if new.password else None,
            grids=grids,
            community=community,
        )
        session.add(member)
        await session.flush()
        _audit(session, AuditAction.MEMBER_ADDED, member, new.role)
    return f"member {new.name} ({new.role}) added to {community.name}, on duty {describe(schedule)}"


async def _named_member(session: AsyncSession, name: str) -> Member:
    member = await session.scalar(select(Member).where(Member.name == name))
    if member is None:
        raise CommandError(f"no member named {name!r}")
    return member


async def change_member(settings: Settings, name: str, action: str, hours: str = "") -> str:
    """暂停接单 / 恢复接单, or new weekly hours."""
    schedule = _slots(hours) if action == "hours" else None
    async with transaction(settings) as session:
        member = await _named_member(session, name)
        if action == "hours":
            member.schedule = schedule
        else:
            member.paused = action == "pause"
        state = "暂停接单" if member.paused else f"on duty {describe(member.schedule)}"
    return f"member {name}: {state}"


def _audit(
    session: AsyncSession, action: AuditAction, member: Member, detail: str | None = None
) -> None:
    """Changes made here are the administrator's, at the command line; the member's
    community's secretary reads them."""
    audit.record(
        session,
        action,
        datetime.now(UTC),
        target=member.name,
        detail=detail or "命令行",
        community_id=member.community_id,
    )


async def change_password(settings: Settings, name: str, password: str) -> str:
    """A new password ends every session the member had."""
    if len(password) < MIN_PASSWORD:
        raise CommandError(f"a password needs at least {MIN_PASSWORD} characters")
    async with transaction(settings) as session:
        member = await _named_member(session, name)
        member.password_hash = hash_password(password)
        ended = await revoke_all(session, member)
        _audit(session, AuditAction.PASSWORD_CHANGED, member)
    return f"member {name}: password changed, {ended} session(s) ended"


async def remove_member(settings: Settings, name: str) -> str:
    """Removed members keep their name on past tickets and can do nothing more."""
    async with transaction(settings) as session:
        member = await _named_member(session, name)
        held = (
            await session.scalars(
                select(Ticket.id).where(
                    Ticket.assignee_id == member.id, Ticket.status.in_(OPEN_STATUSES)
                )
            )
        ).all()
        if held:
            raise CommandError(f"{name} still holds tickets {list(held)}; transfer them first")
        member.active, member.paused, member.password_hash = False, True, None
        member.grids = []
        await revoke_all(session, member)
        _audit(session, AuditAction.MEMBER_REMOVED, member)
    return f"member {name} removed"


async def change_role(settings: Settings, name: str, role: str) -> str:
    async with transaction(settings) as session:
        member = await _named_member(session, name)
        was, member.role = member.role, role
        await revoke_all(session, member)
        _audit(session, AuditAction.ROLE_CHANGED, member, f"{was} → {role}")
    return f"member {name}: {was} → {role}"


async def member_token(settings: Settings, name: str) -> str:
    async with transaction(settings) as session:
        member = await _named_member(session, name)
        ttl = timedelta(hours=settings.token_hours)
        return await issue_token(session, member, datetime.now(UTC), ttl)


async def list_members(settings: Settings, community: str | None = None) -> str:
    """Every member, or one community's."""
    async with transaction(settings) as session:
        query = select(Member).order_by(Member.id)
        if community is not None:
            query = query.where(Member.community_id == (await _community(session, community)).id)
        members = (await session.scalars(query)).all()
        lines = [
            f"{m.name}\t{m.role}\t{','.join(g.name for g in m.grids) or '-'}\t"
            f"{m.skills or '-'}\t{_state(m)}\t{m.community.name}"
            for m in members
        ]
    return "\n".join(lines) or "no members yet"


def _state(member: Member) -> str:
    if not member.active:
        return "已移除"
    return "暂停接单" if member.paused else describe(member.schedule)


def read_password() -> str:
    """Typed at a prompt, or piped in; never an argument, which the process list would show."""
    if sys.stdin.isatty():
        return getpass.getpass("new password: ")
    return sys.stdin.readline().rstrip("\n")


# ---------- the command line ----------


def add_parsers(sub: argparse._SubParsersAction) -> None:
    communities = sub.add_parser("communities", help="communities (社区) of the district")
    csub = communities.add_subparsers(dest="action", required=True)
    ca = csub.add_parser("add")
    ca.add_argument("--name", required=True, help="e.g. 东湖社区")
    ca.add_argument("--code", required=True, help="ASCII id, e.g. donghu")
    csub.add_parser("list", help="* marks the default community")

    grids = sub.add_parser("grids", help="grids (网格)")
    gsub = grids.add_subparsers(dest="action", required=True)
    ga = gsub.add_parser("add")
    ga.add_argument("--name", required=True, help="e.g. 3号楼")
    ga.add_argument("--code", required=True, help="ASCII id used in URLs, e.g. b3")
    ga.add_argument("--aliases", default="", help="comma separated, e.g. 三号楼,3栋")
    ga.add_argument("--community", help="its community's code (default: the default community)")
    gi = gsub.add_parser("invite", help="print the grid's room link for its poster")
    gi.add_argument("name")
    gi.add_argument("--renew", action="store_true", help="a new link; the old one stops working")

    members = sub.add_parser("members", help="party members")
    msub = members.add_subparsers(dest="action", required=True)
    ma = msub.add_parser("add")
    ma.add_argument("--name", required=True)
    ma.add_argument("--grid", default="", help="grid name(s), comma separated")
    ma.add_argument("--community", help="community code (default: the grids', else the default)")
    ma.add_argument("--skills", default="", help="e.g. 维修,医疗")
    ma.add_argument("--role", choices=ROLES, default="member")
    ma.add_argument("--password", help="console login password")
    ma.add_argument("--phone")
    ma.add_argument("--hours", default="", help="weekly hours, e.g. 'mon-fri 08:00-18:00'")
    ma.add_argument("--wecom-userid", help="their WeCom user id")
    for action, what in (("pause", "暂停接单"), ("resume", "恢复接单")):
        msub.add_parser(action, help=what).add_argument("name")
    mh = msub.add_parser("hours", help="set weekly hours ('' = always on duty)")
    mh.add_argument("name")
    mh.add_argument("hours")
    mt = msub.add_parser("token", help="print a new bearer token")
    mt.add_argument("name")
    mp = msub.add_parser("passwd", help="set a new password (read from stdin); ends sessions")
    mp.add_argument("name")
    msub.add_parser("remove", help="remove a member (kept on past tickets)").add_argument("name")
    mr = msub.add_parser("role", help="change a member's role")
    mr.add_argument("name")
    mr.add_argument("role", choices=ROLES)
    msub.add_parser("list").add_argument("--community", help="only this community's")


def run(args: argparse.Namespace, settings: Settings) -> str:
    if args.command == "communities":
        if args.action == "add":
            return asyncio.run(add_community(settings, args.name, args.code))
        return asyncio.run(list_communities(settings))
    if args.command == "grids":
        if args.action == "invite":
            return asyncio.run(grid_invite(settings, args.name, args.renew))
        return asyncio.run(add_grid(settings, args.name, args.code, args.aliases, args.community))
    return asyncio.run(_run_members(args, settings))


async def _run_members(args: argparse.Namespace, settings: Settings) -> str:
    if args.action == "add":
        new = NewMember(
            name=args.name,
            grids=[g.strip() for g in args.grid.split(",") if g.strip()],
            skills=args.skills,
            role=args.role,
            password=args.password,
            phone=args.phone,
            hours=args.hours,
            wecom_userid=args.wecom_userid,
            community=args.community,
        )
        return await add_member(settings, new)
    if args.action in ("pause", "resume", "hours"):
        return await change_member(settings, args.name, args.action, getattr(args, "hours", ""))
    if args.action == "token":
        return await member_token(settings, args.name)
    if args.action == "passwd":
        return await change_password(settings, args.name, read_password())
    if args.action == "remove":
        return await remove_member(settings, args.name)
    if args.action == "role":
        return await change_role(settings, args.name, args.role)
    return await list_members(settings, args.community)
