"""CPU per request message, end to end, against the model's own parse, in one process.

    .venv/bin/python bench/profile_message.py [--model PATH] [--messages 40] [--warmup 5]
        [--statements] [--profile]

The service (`bot.app.create_app`) runs on a fresh SQLite file seeded with the demo's grids and
members, the WeChat channel in plain mode, its API pointed at the fake WeChat server
(tests/fake_wechat.py). N new residents each send one signed callback with a request ("3号楼2单元
501 厨房水管漏水了" and variations); each message is waited for until it is routed (a ticket
opened and the resident told who is coming), one at a time, and after each the same text goes
through `agent.parse_message` of the same loaded model: both see the same load of a shared
machine.

It prints CPU per message (time.process_time) for the whole path and for the bare parse, and
their ratio; where the path's CPU went (the event loop's thread, the other threads: aiosqlite's
connections and the tracker store's workers; and how much of all was in the kernel); and the
database statements per message (SQLAlchemy's `before_cursor_execute`, the service's and Rasa's
tracker store's), with --statements each kind of statement. The fake WeChat server and the
sender run in a thread of their own whose CPU is left out: it is WeChat's, not the service's.
Logging is configured as `python -m bot serve` does (INFO, masked), into var/profile_message.log.

With --profile, a cProfile of the event loop's thread over the measured messages goes to
var/profile_message.prof (read it with `python -m pstats` or snakeviz), timed in that thread's
CPU; the figures printed then include the profiler's own cost. The other threads are not in
it, nor is work SQLAlchemy runs in greenlets attributed well; py-spy samples every thread:

    py-spy record --gil -f raw -o var/spy.txt -- .venv/bin/python bench/profile_message.py

The model is the newest archive in models/, else in var/test-models/ (the tests' tiny model,
which parses faster than the production one) unless --model is given.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
for category in (DeprecationWarning, PendingDeprecationWarning, UserWarning):
    warnings.filterwarnings("ignore", category=category)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession, web  # noqa: E402
from sqlalchemy import event, func, select  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bench.wechat_callback import find_model  # noqa: E402
from bot.app import create_app  # noqa: E402
from bot.cli import configure_logging  # noqa: E402
from bot.db.models import Ticket  # noqa: E402
from bot.demo import seed  # noqa: E402
from bot.settings import CallbackSecrets, Settings, WechatSettings  # noqa: E402
from bot.typedefs import rasa_key, router_key, sessions_key  # noqa: E402
from tests.fake_wechat import CUSTOM_SEND, FakeWechat  # noqa: E402
from tests.wechat_pusher import WechatPusher, text_xml  # noqa: E402

T = TypeVar("T")
TOKEN = "profile-wechat-token"
LOG = ROOT / "var" / "profile_message.log"
PROFILE = ROOT / "var" / "profile_message.prof"
PLACES = ["3号楼2单元501", "3号楼1单元302", "三号楼4单元1101", "3栋2单元602", "东村组12号"]
TROUBLES = ["厨房水管漏水了", "卫生间马桶堵了", "楼道灯坏了好几天", "家里停电了", "门锁坏了打不开"]


def request_texts(count: int) -> list[str]:
    """Requests a resident might send, each place with each trouble, in turn."""
    pairs = [(p, t) for t in TROUBLES for p in PLACES]
    return [" ".join(pairs[n % len(pairs)]) for n in range(count)]


class Outside(threading.Thread):
    """WeChat's side, on its own event loop and thread: the fake API server the service sends
    to, and the client that posts the callbacks. Its CPU is measured so it can be left out."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.loop = asyncio.new_event_loop()
        self.fake = FakeWechat()
        self._ready = threading.Event()

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def start_and_wait(self) -> None:
        self.start()
        self._ready.wait()

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs `coroutine` on this thread's loop and awaits it from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    def cpu_seconds(self) -> float:
        assert self.ident is not None
        return time.clock_gettime(time.pthread_getcpuclockid(self.ident))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.join()


@dataclass
class Statements:
    """Database statements run, from any engine: the service's and the tracker store's."""

    total: int = 0
    tracker: int = 0
    seen: list[str] = field(default_factory=list)

    def count(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.total += 1
        # Rasa's tracker store reads and writes the `events` table and nothing else.
        if " events" in statement:
            self.tracker += 1
        self.seen.append(statement.split("\n")[0][:100])


@dataclass
class Spent:
    """CPU seconds over a stretch: the whole process, the event loop's thread, the outside."""

    process: float
    loop: float
    outside: float
    # In the kernel, the outside's included: system calls, switching threads, file writes.
    system: float

    @classmethod
    def now(cls, outside: Outside) -> Spent:
        return cls(
            time.process_time(), time.thread_time(), outside.cpu_seconds(), os.times().system
        )

    def since(self, before: Spent) -> Spent:
        return Spent(
            self.process - before.process,
            self.loop - before.loop,
            self.outside - before.outside,
            self.system - before.system,
        )

    def plus(self, other: Spent) -> Spent:
        return Spent(
            self.process + other.process,
            self.loop + other.loop,
            self.outside + other.outside,
            self.system + other.system,
        )

    @property
    def service(self) -> float:
        return self.process - self.outside

    @property
    def other_threads(self) -> float:
        return self.service - self.loop


def settings_for(database: Path, model: Path, fake: FakeWechat) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{database}",
        model_path=model,
        models_dir=database.parent / "models",
        # The model watcher's poll is not a message's cost.
        model_poll_s=3600.0,
        wechat=WechatSettings(
            callback=CallbackSecrets(TOKEN),
            appid=fake.appid,
            secret=fake.secret,
            api_base=fake.base_url,
        ),
    )


class Sender:
    """Posts signed callbacks from the outside thread, one new resident each."""

    def __init__(self, outside: Outside, url: str) -> None:
        self._outside = outside
        self._url = url
        self._pusher = WechatPusher(TOKEN, outside.fake.appid)
        self._http: ClientSession | None = None
        self._sent = 0

    async def _post(self, text: str) -> str:
        if self._http is None:
            self._http = ClientSession()
        self._sent += 1
        openid = f"oProfile{self._sent:06d}{time.time_ns() % 10**6:06d}"
        call = self._pusher.call(text_xml(openid, text, self._pusher.next_msg_id()))
        async with self._http.post(self._url, params=call.params, data=call.body) as resp:
            return await resp.text()

    async def send(self, text: str) -> str:
        return await self._outside.call(self._post(text))

    async def close(self) -> None:
        if self._http is not None:
            await self._outside.call(self._http.close())


async def measure(
    app: web.Application, sender: Sender, outside: Outside, texts: list[str], profile: bool
) -> tuple[Spent, Statements, float]:
    """The whole path and the bare parse of each text in turn, so that both see the same
    machine: it is shared, and its pace drifts over a run."""
    router, agent = app[router_key], app[rasa_key].agent
    statements = Statements()
    # CPU time of this thread: wall time would charge it for waiting on the GIL.
    profiler = cProfile.Profile(time.thread_time) if profile else None
    whole, parse = Spent(0.0, 0.0, 0.0, 0.0), 0.0
    event.listen(Engine, "before_cursor_execute", statements.count)
    for text in texts:
        before = Spent.now(outside)
        if profiler is not None:
            profiler.enable()
        answer = await sender.send(text)
        await router.drain()
        if profiler is not None:
            profiler.disable()
        whole = whole.plus(Spent.now(outside).since(before))
        if answer != "success":
            raise RuntimeError(f"the callback answered {answer!r}")
        parse_began = time.process_time()
        await agent.parse_message(text)
        parse += time.process_time() - parse_began
    event.remove(Engine, "before_cursor_execute", statements.count)
    if profiler is not None:
        profiler.dump_stats(PROFILE)
    return whole, statements, parse


async def run(args: argparse.Namespace, model: Path, tmp: Path) -> int:
    outside = Outside()
    outside.start_and_wait()
    await outside.call(outside.fake.start())
    settings = settings_for(tmp / "bot.db", model, outside.fake)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    print(f"loading {model.name}...", file=sys.stderr, flush=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    await seed(settings)
    host, port = runner.addresses[0][:2]
    sender = Sender(outside, f"http://{host}:{port}/channels/wechat")
    try:
        for text in request_texts(args.warmup):
            await sender.send(text)
        await app[router_key].drain()
        texts = request_texts(args.warmup + args.messages)[args.warmup :]
        whole, statements, parse = await measure(app, sender, outside, texts, args.profile)
        async with app[sessions_key]() as session:
            tickets = await session.scalar(select(func.count()).select_from(Ticket))
        told = len(outside.fake.calls(CUSTOM_SEND))
    finally:
        await sender.close()
        await runner.cleanup()
        await outside.call(outside.fake.close())
        outside.stop()
    report(args, model, whole, statements, parse, tickets or 0, told)
    return 0


def report(
    args: argparse.Namespace,
    model: Path,
    whole: Spent,
    statements: Statements,
    parse: float,
    tickets: int,
    told: int,
) -> None:
    n, total = args.messages, args.warmup + args.messages

    def ms(seconds: float) -> str:
        return f"{seconds * 1000 / n:7.2f} ms"

    print(f"model {model.name}; {n} request messages from {n} new residents (+{args.warmup} warm)")
    print(f"  tickets opened {tickets}/{total}, residents told {told}/{total}")
    rows = [
        ("whole path, CPU per message", ms(whole.service)),
        ("  event loop thread", ms(whole.loop)),
        ("  other threads (SQLite, tracker store)", ms(whole.other_threads)),
        ("  in the kernel (all threads, outside too)", ms(whole.system)),
        ("bare agent.parse_message", ms(parse)),
        ("ratio whole / parse", f"{whole.service / parse:7.2f}"),
        ("statements per message", f"{statements.total / n:7.1f}"),
        ("  of the tracker store", f"{statements.tracker / n:7.1f}"),
    ]
    for name, figure in rows:
        print(f"  {name:<44} {figure}")
    if args.statements:
        for statement, count in Counter(statements.seen).most_common():
            print(f"    {count / n:5.1f}  {statement}")
    if args.profile:
        print(f"  profile of the event loop thread: {PROFILE.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model archive (default: the newest one found)")
    parser.add_argument("--messages", type=int, default=40, help="measured messages")
    parser.add_argument("--warmup", type=int, default=5, help="messages before measuring")
    parser.add_argument("--profile", action="store_true", help=f"cProfile into {PROFILE}")
    parser.add_argument("--statements", action="store_true", help="list statements by count")
    args = parser.parse_args()
    model = find_model(args.model)
    LOG.parent.mkdir(exist_ok=True)
    configure_logging("INFO")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(LOG.open("w", encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="profile-message-") as tmp:
        sys.exit(asyncio.run(run(args, model, Path(tmp))))


if __name__ == "__main__":
    main()
