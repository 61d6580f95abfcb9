"""Command line: `python -m bot serve | db | grids | members | privacy | demo seed | ops`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jieba
import structlog
import uvloop
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import audit, retention
from bot.audit import AuditAction
from bot.db.engine import create_engine, create_session_factory
from bot.db.migrate import upgrade
from bot.db.models import Grid, Member, Ticket, new_invite
from bot.handoff.roles import ROLES
from bot.handoff.schedule import ScheduleError, describe, parse_schedule, slots_to_json
from bot.handoff.states import OPEN_STATUSES
from bot.ops import commands as ops_commands
from bot.ops.commands import OpsError
from bot.privacy import MaskingFilter
from bot.serve import CannotShare, serve_worker, supervise
from bot.settings import Settings, load_settings
from bot.web.auth import hash_password, issue_token, revoke_all

MIN_PASSWORD = 8


class CommandError(Exception):
    """A mistake in what was asked; printed without a traceback."""


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(MaskingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # jieba sets its own logger to DEBUG when imported; quiet it after that.
    jieba.setLogLevel(logging.WARNING)
    # Rasa's structured debug lines carry residents' raw words; only its warnings are ours to see.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


@contextlib.asynccontextmanager
async def transaction(settings: Settings) -> AsyncIterator[AsyncSession]:
    """One transaction on the configured database, for one command."""
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            yield session
    finally:
        await engine.dispose()


async def _grid(session: AsyncSession, name: str) -> Grid:
    grid = await session.scalar(select(Grid).where(Grid.name == name))
    if grid is None:
        raise CommandError(f"no grid named {name!r}; add it first: python -m bot grids add")
    return grid


def room_link(settings: Settings, grid: Grid) -> str:
    """The link to print as a QR code on the grid's poster; it lets a neighbour join the room."""
    return f"{settings.public_url}/webchat/?room={grid.invite}"


async def add_grid(settings: Settings, name: str, code: str, aliases: str) -> str:
    async with transaction(settings) as session:
        if await session.scalar(select(Grid).where(Grid.name == name)):
            raise CommandError(f"grid {name!r} exists")
        grid = Grid(name=name, code=code, aliases=aliases, invite=new_invite())
        session.add(grid)
    return f"grid {name} ({code}) added; its room: {room_link(settings, grid)}"


async def grid_invite(settings: Settings, name: str, renew: bool) -> str:
    """The room link; `--renew` makes a new one (the old poster stops working)."""
    async with transaction(settings) as session:
        grid = await _grid(session, name)
        if renew:
            grid.invite = new_invite()
        return room_link(settings, grid)


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


def _slots(hours: str) -> list[list[int]] | None:
    try:
        return slots_to_json(parse_schedule(hours)) or None
    except ScheduleError as e:
        raise CommandError(str(e)) from None


async def add_member(settings: Settings, new: NewMember) -> str:
    schedule = _slots(new.hours)
    async with transaction(settings) as session:
        if await session.scalar(select(Member).where(Member.name == new.name)):
            raise CommandError(f"member {new.name!r} exists")
        member = Member(
            name=new.name,
            role=new.role,
            skills=new.skills,
            phone=new.phone,
            wecom_userid=new.wecom_userid,
            schedule=schedule,
            password_hash=hash_password(new.password) if new.password else None,
            grids=[await _grid(session, g) for g in new.grids],
        )
        session.add(member)
        await session.flush()
        _audit(session, AuditAction.MEMBER_ADDED, member, new.role)
    return f"member {new.name} ({new.role}) added, on duty {describe(schedule)}"


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
    """Changes made here are the administrator's, at the command line."""
    audit.record(session, action, datetime.now(UTC), target=member.name, detail=detail or "命令行")


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


async def list_members(settings: Settings) -> str:
    async with transaction(settings) as session:
        members = (await session.scalars(select(Member).order_by(Member.id))).all()
        lines = [
            f"{m.name}\t{m.role}\t{','.join(g.name for g in m.grids) or '-'}\t"
            f"{m.skills or '-'}\t{_state(m)}"
            for m in members
        ]
    return "\n".join(lines) or "no members yet"


def _state(member: Member) -> str:
    if not member.active:
        return "已移除"
    return "暂停接单" if member.paused else describe(member.schedule)


async def privacy(settings: Settings, action: str, who: str) -> str:
    """A resident's right to see and to erase what is held about them; both audited."""
    async with transaction(settings) as session:
        try:
            resident = await retention.find_resident(session, who)
            if action == "export":
                held = await retention.export(session, resident)
                output = json.dumps(held, ensure_ascii=False, indent=2)
                audit_action, detail = AuditAction.PRIVACY_EXPORT, "命令行"
            else:
                erased = await retention.erase(session, resident)
                output = f"resident {resident.id} erased: {erased.describe()}"
                audit_action, detail = AuditAction.PRIVACY_ERASE, erased.describe()
        except (retention.ResidentNotFound, retention.ResidentBusy) as e:
            raise CommandError(str(e)) from None
        now = datetime.now(UTC)
        audit.record(session, audit_action, now, target=f"居民#{resident.id}", detail=detail)
    return output


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the service")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--workers", type=int, help="worker processes on one port (PostgreSQL)")
    # How a pool's supervisor starts each of its workers: on a port the others share.
    s.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)

    db = sub.add_parser("db", help="database")
    db.add_argument("action", choices=["upgrade"])

    grids = sub.add_parser("grids", help="grids (网格)")
    gsub = grids.add_subparsers(dest="action", required=True)
    ga = gsub.add_parser("add")
    ga.add_argument("--name", required=True, help="e.g. 3号楼")
    ga.add_argument("--code", required=True, help="ASCII id used in URLs, e.g. b3")
    ga.add_argument("--aliases", default="", help="comma separated, e.g. 三号楼,3栋")
    gi = gsub.add_parser("invite", help="print the grid's room link for its poster")
    gi.add_argument("name")
    gi.add_argument("--renew", action="store_true", help="a new link; the old one stops working")

    members = sub.add_parser("members", help="party members")
    msub = members.add_subparsers(dest="action", required=True)
    ma = msub.add_parser("add")
    ma.add_argument("--name", required=True)
    ma.add_argument("--grid", default="", help="grid name(s), comma separated")
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
    msub.add_parser("list")

    priv = sub.add_parser("privacy", help="a resident's data: export or erase")
    priv.add_argument("action", choices=["export", "erase"])
    priv.add_argument("resident", help="resident id, channel:external_id, or ticket:N")

    demo = sub.add_parser("demo", help="demo data")
    demo.add_argument("action", choices=["seed"])
    demo.add_argument("--force", action="store_true", help="seed even where other members exist")
    ops_commands.add_parser(sub)
    return p


def run(args: argparse.Namespace, settings: Settings) -> str | None:
    if args.command == "serve":
        serve(args, settings)
        return None
    upgrade(settings.database_url)
    if args.command == "db":
        return "database is up to date"
    if args.command == "grids":
        if args.action == "invite":
            return asyncio.run(grid_invite(settings, args.name, args.renew))
        return asyncio.run(add_grid(settings, args.name, args.code, args.aliases))
    if args.command == "demo":
        from bot.demo import RealMembers, seed

        try:
            return asyncio.run(seed(settings, force=args.force))
        except RealMembers as e:
            raise CommandError(str(e)) from None
    if args.command == "privacy":
        return asyncio.run(privacy(settings, args.action, args.resident))
    if args.command == "ops":
        return asyncio.run(ops_commands.run(args, settings))
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
        )
        return asyncio.run(add_member(settings, new))
    if args.action in ("pause", "resume", "hours"):
        return asyncio.run(
            change_member(settings, args.name, args.action, getattr(args, "hours", ""))
        )
    if args.action == "token":
        return asyncio.run(member_token(settings, args.name))
    if args.action == "passwd":
        return asyncio.run(change_password(settings, args.name, read_password()))
    if args.action == "remove":
        return asyncio.run(remove_member(settings, args.name))
    if args.action == "role":
        return asyncio.run(change_role(settings, args.name, args.role))
    return asyncio.run(list_members(settings))


def serve(args: argparse.Namespace, settings: Settings) -> None:
    overrides = {
        k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers)) if v
    }
    settings = settings.with_overrides(**overrides)
    if args.worker:
        asyncio.run(serve_worker(settings, reuse_port=True))
    elif settings.workers > 1:
        try:
            supervise(settings)
        except CannotShare as e:
            raise CommandError(str(e)) from None
    else:
        asyncio.run(serve_worker(settings))


def read_password() -> str:
    """Typed at a prompt, or piped in; never an argument, which the process list would show."""
    if sys.stdin.isatty():
        return getpass.getpass("new password: ")
    return sys.stdin.readline().rstrip("\n")


def main(argv: Sequence[str] | None = None) -> int:
    # Importing Rasa switches asyncio to uvloop's policy (through aiogram) whenever it happens;
    # choosing it first gives the whole process one kind of event loop, and child processes
    # (training from /ops/models) work on it.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    args = parser().parse_args(argv)
    settings = load_settings()
    configure_logging(settings.log_level)
    try:
        output = run(args, settings)
    except (CommandError, OpsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if output:
        print(output)
    return 0
