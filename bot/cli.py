"""Command line: `python -m bot serve | db upgrade | grids | members | demo seed | ops`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import jieba
import structlog
import uvloop
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.engine import create_engine, create_session_factory
from bot.db.migrate import upgrade
from bot.db.models import Grid, Member
from bot.handoff.schedule import ScheduleError, describe, parse_schedule, slots_to_json
from bot.ops import commands as ops_commands
from bot.ops.commands import OpsError
from bot.privacy import MaskingFilter
from bot.settings import Settings, load_settings
from bot.web.auth import hash_password, issue_token

ROLES = ("member", "secretary", "operator")


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


async def serve(settings: Settings) -> None:
    # Imported here: Rasa and TensorFlow take seconds to import, which only serving needs.
    from bot.app import create_app, resume_after_restart

    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    await resume_after_restart(app)
    print(f"社区暖心助手 listening on http://{settings.host}:{settings.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def _grid(session, name: str) -> Grid:  # type: ignore[no-untyped-def]
    grid = await session.scalar(select(Grid).where(Grid.name == name))
    if grid is None:
        raise CommandError(f"no grid named {name!r}; add it first: python -m bot grids add")
    return grid


async def add_grid(settings: Settings, name: str, code: str, aliases: str) -> str:
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            if await session.scalar(select(Grid).where(Grid.name == name)):
                raise CommandError(f"grid {name!r} exists")
            session.add(Grid(name=name, code=code, aliases=aliases))
    finally:
        await engine.dispose()
    return f"grid {name} ({code}) added"


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
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
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
    finally:
        await engine.dispose()
    return f"member {new.name} ({new.role}) added, on duty {describe(schedule)}"


async def _named_member(session: AsyncSession, name: str) -> Member:
    member = await session.scalar(select(Member).where(Member.name == name))
    if member is None:
        raise CommandError(f"no member named {name!r}")
    return member


async def change_member(settings: Settings, name: str, action: str, hours: str = "") -> str:
    """暂停接单 / 恢复接单, or new weekly hours."""
    schedule = _slots(hours) if action == "hours" else None
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            member = await _named_member(session, name)
            if action == "hours":
                member.schedule = schedule
            else:
                member.paused = action == "pause"
            state = "暂停接单" if member.paused else f"on duty {describe(member.schedule)}"
    finally:
        await engine.dispose()
    return f"member {name}: {state}"


async def member_token(settings: Settings, name: str) -> str:
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            return await issue_token(session, await _named_member(session, name))
    finally:
        await engine.dispose()


async def list_members(settings: Settings) -> str:
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session:
            members = (await session.scalars(select(Member).order_by(Member.id))).all()
            lines = [
                f"{m.name}\t{m.role}\t{','.join(g.name for g in m.grids) or '-'}\t"
                f"{m.skills or '-'}\t{'暂停接单' if m.paused else describe(m.schedule)}"
                for m in members
            ]
    finally:
        await engine.dispose()
    return "\n".join(lines) or "no members yet"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the service")
    s.add_argument("--host")
    s.add_argument("--port", type=int)

    db = sub.add_parser("db", help="database")
    db.add_argument("action", choices=["upgrade"])

    grids = sub.add_parser("grids", help="grids (网格)")
    gsub = grids.add_subparsers(dest="action", required=True)
    ga = gsub.add_parser("add")
    ga.add_argument("--name", required=True, help="e.g. 3号楼")
    ga.add_argument("--code", required=True, help="ASCII id used in URLs, e.g. b3")
    ga.add_argument("--aliases", default="", help="comma separated, e.g. 三号楼,3栋")

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
    msub.add_parser("list")

    demo = sub.add_parser("demo", help="demo data")
    demo.add_argument("action", choices=["seed"])
    ops_commands.add_parser(sub)
    return p


def run(args: argparse.Namespace, settings: Settings) -> str | None:
    if args.command == "serve":
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
        asyncio.run(serve(settings.with_overrides(**overrides)))
        return None
    upgrade(settings.database_url)
    if args.command == "db":
        return "database is up to date"
    if args.command == "grids":
        return asyncio.run(add_grid(settings, args.name, args.code, args.aliases))
    if args.command == "demo":
        from bot.demo import seed

        return asyncio.run(seed(settings))
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
    return asyncio.run(list_members(settings))


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
