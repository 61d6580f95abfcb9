"""Running the service: one worker in this process, or several worker processes on one port.

With `--workers N` this process starts N workers and looks after them; each opens the same
port (SO_REUSEPORT: the kernel spreads new connections among them) and shares the database
and Redis with the others. A worker that dies is started again; SIGTERM or SIGINT stops all.
Several workers need a database server (PostgreSQL) and, to share consoles' events and
conversation locks, Redis: docs/deploy.md.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time

from aiohttp import web
from sqlalchemy.engine import make_url

from bot.db.migrate import upgrade
from bot.settings import Settings

logger = logging.getLogger(__name__)

# A worker that dies sooner than this after its start is not restarted at once in a loop.
RESTART_PAUSE_S = 2.0
# How long stopping workers get to finish what they route before they are killed.
STOP_GRACE_S = 30.0


class CannotShare(Exception):
    """Several workers were asked for where they could not share state."""


async def serve_worker(settings: Settings, reuse_port: bool = False) -> None:
    # Imported here: Rasa and TensorFlow take seconds to import, which only serving needs.
    from bot.app import create_app, resume_after_restart

    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port)
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


def check_can_share(settings: Settings) -> None:
    if make_url(settings.database_url).get_backend_name() == "sqlite":
        raise CannotShare(
            "several workers need a database server: set BOT_DATABASE_URL to PostgreSQL "
            "(SQLite serves one worker; docs/deploy.md)"
        )
    if not settings.redis_url:
        logger.warning(
            "several workers without BOT_REDIS_URL: a console sees only what its own worker "
            "handled (docs/deploy.md)"
        )


def supervise(settings: Settings) -> None:
    """Start `settings.workers` workers on one port and keep them running until told to stop."""
    check_can_share(settings)
    # Once here, so that the workers do not race each other through the migrations.
    upgrade(settings.database_url)
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    command = [
        sys.executable, "-m", "bot", "serve", "--worker",
        "--host", settings.host, "--port", str(settings.port),
    ]  # fmt: skip
    workers = {slot: _start(command, slot) for slot in range(settings.workers)}
    started = dict.fromkeys(workers, time.monotonic())
    while not stopping:
        time.sleep(0.2)
        for slot, process in list(workers.items()):
            if process.poll() is None or stopping:
                continue
            logger.error("worker %d (pid %d) exited with %s", slot, process.pid, process.returncode)
            if time.monotonic() - started[slot] < RESTART_PAUSE_S:
                time.sleep(RESTART_PAUSE_S)
            workers[slot], started[slot] = _start(command, slot), time.monotonic()
    _stop_all(list(workers.values()))


def _start(command: list[str], slot: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command)
    logger.info("worker %d started (pid %d)", slot, process.pid)
    return process


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.error("worker pid %d did not stop in %s s; killed", process.pid, STOP_GRACE_S)
            process.kill()
            process.wait()
