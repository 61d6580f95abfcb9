"""Command line: `python -m bot serve | db | communities | grids | members | privacy | demo seed
| ops`. Places and people are in `bot.cli_people`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import jieba
import structlog
import uvloop

from bot import audit, cli_people, retention
from bot.audit import AuditAction
from bot.cli_common import CommandError, transaction
from bot.db.migrate import upgrade
from bot.ops import commands as ops_commands
from bot.ops.commands import OpsError
from bot.privacy import MaskingFilter
from bot.serve import CannotShare, serve_worker, supervise
from bot.settings import Settings, load_settings


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(MaskingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # jieba sets its own logger to DEBUG when imported; quiet it after that.
    jieba.setLogLevel(logging.WARNING)
    # Rasa's structured debug lines carry residents' raw words; only its warnings are ours to see.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


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


async def privacy(settings: Settings, action: str, who: str) -> str:
    """A resident's right to see and to erase what is held about them; both audited."""
    async with transaction(settings) as session:
        try:
            resident = await retention.find_resident(session, who)
            # The secretary of the resident's community reads the entry; for a resident of no
            # known grid, only the district.
            community_id = resident.grid.community_id if resident.grid is not None else None
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
        audit.record(
            session,
            audit_action,
            now,
            target=f"居民#{resident.id}",
            detail=detail,
            community_id=community_id,
        )
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

    cli_people.add_parsers(sub)

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
    if args.command in cli_people.COMMANDS:
        return cli_people.run(args, settings)
    if args.command == "demo":
        from bot.demo import RealMembers, seed

        try:
            return asyncio.run(seed(settings, force=args.force))
        except RealMembers as e:
            raise CommandError(str(e)) from None
    if args.command == "privacy":
        return asyncio.run(privacy(settings, args.action, args.resident))
    return asyncio.run(ops_commands.run(args, settings))


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
