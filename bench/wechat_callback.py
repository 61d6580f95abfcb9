"""Load the Official Account callback the way WeChat does: signed (optionally encrypted)
callbacks at a steady rate, each one retried, against the service running in its own process.

    .venv/bin/python bench/wechat_callback.py [--messages 500] [--rate 50] [--retries 3] [--safe]
        [--model PATH] [--database-url URL]

This process runs the fake WeChat API server and the sender. It prepares the database
(`python -m bot db upgrade`, `python -m bot demo seed`), starts `python -m bot serve` as a
separate process on a free 127.0.0.1 port, configured through its environment as in production
(BOT_WECHAT_API_BASE points at the fake), and waits for GET /readyz. Then it sends N text
messages from N/5 residents (texts from data/test), each delivered 1 + retries times with the
same MsgId. Once the service has routed everything (polled in the database: no inbound message
of the run unhandled, no outbound one pending), it prints callback latency, what was stored and
routed (read from the database by this process), tickets, duplicates and the bot lines the fake
received, plus how loaded the service was (unrouted messages, CPU time of the service process)
and the warnings and errors the service logged on stderr.
Exit code 1 when a message was lost or duplicated, or a callback was not answered `success`,
and when the service could not be prepared or started (with the tail of its output).

The service has its own process and event loop, as WeChat's servers see it; the sender's CPU
cost is not in the service's figures, though both processes share this machine's CPUs. Send lag
is how late this process's own loop sent a callback.
A PostgreSQL URL must name an existing database; runs are told apart by their residents' ids.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import re
import secrets
import signal
import socket
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml
from sqlalchemy.orm import sessionmaker

# This process only imports SQLAlchemy (not Rasa); its 2.0 deprecation notices are not ours.
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
for category in (DeprecationWarning, PendingDeprecationWarning, UserWarning):
    warnings.filterwarnings("ignore", category=category)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "bench-wechat-token"
# A text with an entity annotation: "[3号楼2单元501](address)" or "[...]{...}".
ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
# A line of `bot.cli.configure_logging`'s format: "%(asctime)s %(levelname)s %(name)s: %(message)s".
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?P<level>[A-Z]+) (?P<name>\S+?): ?(?P<message>.*)$"
)
# A structlog line (Rasa's own warnings), which goes to stdout: "... [warning  ] event k=v".
STRUCTLOG_LINE = re.compile(r"\[(?P<level>warning|error|critical|exception)\s*\]\s*(?P<event>.*)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


@dataclass
class Planned:
    msg_id: int
    openid: str
    intent: str
    xml: str


@dataclass
class Sent:
    """One callback: which message, which delivery (0 = first), and what came of it."""

    message: int
    attempt: int
    lag: float = 0.0
    latency: float | None = None
    error: str | None = None


class ServiceFailed(Exception):
    """The service could not be prepared or started; the message says why."""


@dataclass
class LogSummary:
    """WARNING-and-above lines the service logged, grouped with their numbers blanked out."""

    counts: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)
    other_lines: int = 0
    other_sample: str = ""

    def add(self, text: str) -> None:
        key = re.sub(r"[0-9]+", "N", text)[:160]
        self.counts[key] += 1
        self.samples.setdefault(key, text[:240])


def summarise_stderr(text: str, summary: LogSummary) -> None:
    """Log records of WARNING and above, each with the exception it carried (the last line of
    its traceback, and the start of the SQL statement for a database error)."""
    records: list[list[str]] = []  # [level, "LEVEL name: message", exception]
    state = "none"  # "trace": inside a traceback; "tail": after its exception line
    for line in text.splitlines():
        match = LOG_LINE.match(line)
        if match:
            first = f"{match['level']} {match['name']}: {match['message']}"
            records.append([match["level"], first, ""])
            state = "none"
        elif line.startswith("Traceback (most recent call last)") and records:
            state = "trace"
        elif state == "trace" and line.strip() and not line[0].isspace():
            if not line.startswith(("During handling", "The above exception")):
                records[-1][2] = line.strip()
                state = "tail"
        elif state == "tail" and line.startswith("[SQL: "):
            records[-1][2] += f" in {line[6:38]}..."
        elif state == "none" and line.strip():
            summary.other_lines += 1
            summary.other_sample = summary.other_sample or line.strip()[:160]
    for level, first, exception in records:
        if level in ("WARNING", "ERROR", "CRITICAL"):
            summary.add(first + (f" [{exception}]" if exception else ""))


def summarise_stdout(text: str, summary: LogSummary) -> None:
    """Rasa logs through structlog, whose lines go to stdout."""
    for line in ANSI.sub("", text).splitlines():
        match = STRUCTLOG_LINE.search(line)
        if match:
            summary.add(f"{match['level'].upper()} rasa (structlog): {match['event'].strip()}")


@dataclass
class Service:
    """`python -m bot serve` in its own process, its output in files."""

    process: asyncio.subprocess.Process
    base_url: str
    stdout: Path
    stderr: Path

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process so far (/proc/<pid>/stat utime, stime)."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()  # fields[0] is field 3, the state
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def offsets(self) -> tuple[int, int]:
        return self.stdout.stat().st_size, self.stderr.stat().st_size

    def log_since(self, offsets: tuple[int, int]) -> LogSummary:
        summary = LogSummary()
        summarise_stderr(_read_from(self.stderr, offsets[1]), summary)
        summarise_stdout(_read_from(self.stdout, offsets[0]), summary)
        return summary

    def stderr_tail(self, lines: int = 25) -> str:
        return "\n".join(_read_from(self.stderr, 0).splitlines()[-lines:])


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", errors="replace")


def service_environment(
    database_url: str, model: Path, api_base: str, appid: str, secret: str, safe: bool
) -> dict[str, str]:
    """Configured as in production, through BOT_* variables; none is inherited from here."""
    from tests.wechat_pusher import AES_KEY

    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(
        BOT_DATABASE_URL=database_url,
        BOT_MODEL_PATH=str(model),
        BOT_WECHAT_TOKEN=TOKEN,
        BOT_WECHAT_APPID=appid,
        BOT_WECHAT_SECRET=secret,
        BOT_WECHAT_API_BASE=api_base,
        BOT_LOG_LEVEL="WARNING",
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    if safe:
        env["BOT_WECHAT_AES_KEY"] = AES_KEY
    return env


async def bot_command(env: dict[str, str], *command: str) -> None:
    """`python -m bot <command>`; ServiceFailed with its output when it fails."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *command,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        tail = "\n".join(output.decode(errors="replace").splitlines()[-25:])
        raise ServiceFailed(
            f"`python -m bot {' '.join(command)}` exited with {process.returncode}:\n{tail}"
        )


async def start_service(env: dict[str, str], port: int, tmp: Path) -> Service:
    stdout, stderr = tmp / "service.stdout", tmp / "service.stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            # Its own process group: a Ctrl-C meant for the bench reaches it as our SIGTERM.
            start_new_session=True,
        )
    return Service(process, f"http://127.0.0.1:{port}", stdout, stderr)


async def wait_ready(http: aiohttp.ClientSession, service: Service, timeout: float) -> None:
    """Until GET /readyz answers 200: the model is loaded and the database answers."""
    deadline = time.monotonic() + timeout
    while True:
        if service.process.returncode is not None:
            raise ServiceFailed(
                f"the service exited with {service.process.returncode} while starting:\n"
                + service.stderr_tail()
            )
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(
                f"{service.base_url}/readyz", timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                if resp.status == 200:
                    return
        if time.monotonic() > deadline:
            raise ServiceFailed(
                f"GET /readyz did not answer 200 within {timeout:g} s:\n" + service.stderr_tail()
            )
        await asyncio.sleep(0.25)


async def stop_service(service: Service, timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM (the service finishes routing and closes), then SIGKILL after `timeout`."""
    process = service.process
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            print(f"the service ignored SIGTERM for {timeout:g} s; killing it", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    return process.returncode


def find_model(given: str | None) -> Path:
    if given:
        path = Path(given)
        if not path.is_file():
            sys.exit(f"error: no model at {path}")
        return path
    for folder in (ROOT / "models", ROOT / "var" / "test-models"):
        archives = sorted(folder.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
        if archives:
            return archives[-1]
    sys.exit(
        "error: no trained model in models/ or var/test-models/; run `make train` first "
        "(or pass --model PATH)"
    )


def load_texts() -> dict[str, list[str]]:
    """data/test/*.yml examples by intent, entity annotations removed."""
    texts: dict[str, list[str]] = {}
    for path in sorted((ROOT / "data" / "test").glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            if "intent" not in block:
                continue
            for line in str(block.get("examples", "")).splitlines():
                line = line.strip()
                if line.startswith("- "):
                    text = ANNOTATION.sub(r"\1", line[2:].strip())
                    if text:
                        texts.setdefault(block["intent"], []).append(text)
    return texts


def plan(args: argparse.Namespace, rng: random.Random, tag: str) -> list[Planned]:
    from bot.core.categories import REQUEST_INTENTS
    from tests.wechat_pusher import text_xml

    texts = load_texts()
    requests = [i for i in REQUEST_INTENTS if texts.get(i)]
    if not requests or not texts.get("chitchat"):
        sys.exit("error: data/test/*.yml lacks request or chitchat examples")
    residents = [f"oBench{tag}{n:06d}" for n in range(max(1, args.messages // 5))]
    # Unique per run, so that a rerun against the same PostgreSQL database is no retry.
    base = time.time_ns() // 1000
    planned = []
    for n in range(args.messages):
        intent = rng.choice(requests) if rng.random() < args.request_share else "chitchat"
        openid = rng.choice(residents)
        msg_id = base + n
        planned.append(
            Planned(msg_id, openid, intent, text_xml(openid, rng.choice(texts[intent]), msg_id))
        )
    return planned


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def latency_row(name: str, values: list[float]) -> str:
    if not values:
        return f"  {name:<15} {0:>6}"
    ms = [v * 1000 for v in values]
    figures = " ".join(f"{pct(ms, p):>7.1f}" for p in (50, 95, 99))
    return f"  {name:<15} {len(ms):>6} {figures} {max(ms):>7.1f}"


@dataclass
class Backlog:
    """The run's messages in the database: inbound not yet routed, outbound not yet accepted
    by the fake, and all outbound lines."""

    unrouted: int
    pending: int
    outbound: int


async def backlog(sessions: sessionmaker, prefix: str) -> Backlog:
    from sqlalchemy import func, select

    from bot.db.models import Message

    ours = Message.conversation_id.like(f"{prefix}%")
    count = select(func.count()).select_from(Message)
    async with sessions() as session:
        unrouted = await session.scalar(
            count.where(
                Message.channel == "wechat",
                Message.direction == "in",
                Message.handled_at.is_(None),
                ours,
            )
        )
        pending = await session.scalar(
            count.where(Message.direction == "out", Message.delivery == "pending", ours)
        )
        outbound = await session.scalar(count.where(Message.direction == "out", ours))
    return Backlog(unrouted or 0, pending or 0, outbound or 0)


async def wait_routed(
    sessions: sessionmaker, prefix: str, timeout: float, settle: float = 0.5, every: float = 0.2
) -> float | None:
    """Polls until every inbound message of `prefix` is handled and no outbound one is pending,
    and no new outbound line appeared for `settle` seconds (a turn marks its message handled
    just before it stores the bot's lines). Returns when that state began; None on timeout."""
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    last_outbound = -1
    while time.monotonic() < deadline:
        now = time.monotonic()
        state = await backlog(sessions, prefix)
        if state.unrouted or state.pending:
            idle_since = None
        elif idle_since is None or state.outbound != last_outbound:
            idle_since = now
        elif now - idle_since >= settle:
            return idle_since
        last_outbound = state.outbound
        await asyncio.sleep(every)
    return None


@dataclass
class Load:
    """The service while loaded, sampled every `every` seconds: its unrouted messages (from
    the database) and its CPU use (from /proc)."""

    unrouted: list[int] = field(default_factory=list)
    busiest: float = 0.0  # highest CPU use over one interval, in cores


async def watch(
    service: Service, sessions: sessionmaker, prefix: str, load: Load, every: float
) -> None:
    before, then = service.cpu_seconds(), time.monotonic()
    while True:
        await asyncio.sleep(every)
        load.unrouted.append((await backlog(sessions, prefix)).unrouted)
        cpu, now = service.cpu_seconds(), time.monotonic()
        if cpu is not None and before is not None:
            load.busiest = max(load.busiest, (cpu - before) / (now - then))
        before, then = cpu, now


async def run(args: argparse.Namespace, model: Path, database_url: str, tmp: Path) -> int:
    from sqlalchemy import func, select

    from bot.db.engine import create_engine, create_session_factory
    from bot.db.models import Message, Ticket
    from tests.fake_wechat import CUSTOM_SEND, FakeWechat
    from tests.wechat_pusher import AES_KEY, WechatPusher, text_xml

    logging.basicConfig(level=logging.WARNING)
    load = Load()
    rng = random.Random(args.seed)
    tag = secrets.token_hex(3)
    planned = plan(args, rng, tag)
    prefix = f"wechat:oBench{tag}"

    fake = FakeWechat()
    await fake.start()
    port = free_port()
    env = service_environment(
        database_url, model, fake.base_url, fake.appid, fake.secret, args.safe
    )
    pusher = WechatPusher(TOKEN, fake.appid, AES_KEY if args.safe else None)
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    service: Service | None = None
    exit_code: int | None = None
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    http = aiohttp.ClientSession(connector=connector, timeout=timeout)
    started = time.monotonic()
    try:
        print("preparing the database...", file=sys.stderr, flush=True)
        await bot_command(env, "db", "upgrade")
        await bot_command(env, "demo", "seed")
        print("starting the service (loading the model)...", file=sys.stderr, flush=True)
        service = await start_service(env, port, tmp)
        await wait_ready(http, service, READY_TIMEOUT)
        print(
            f"ready in {time.monotonic() - started:.1f} s (pid {service.process.pid})",
            file=sys.stderr,
            flush=True,
        )
        url = f"{service.base_url}/channels/wechat"

        async def post(xml: str) -> tuple[int, str]:
            call = pusher.call(xml)
            async with http.post(url, params=call.params, data=call.body) as resp:
                return resp.status, await resp.text()

        # Warm-up outside the figures: one chitchat and one request from another resident.
        warm = f"oWarm{tag}"
        for n, text in enumerate(("你好", "我家厨房水管漏水了，3号楼2单元501")):
            await post(text_xml(warm, text, time.time_ns() // 1000 + 10**9 + n))
        if await wait_routed(sessions, f"wechat:{warm}", args.drain_timeout) is None:
            raise ServiceFailed(
                f"the warm-up messages were not routed within {args.drain_timeout:g} s:\n"
                + service.stderr_tail()
            )
        log_from = service.offsets()

        sends: list[Sent] = []
        schedule: list[tuple[float, Sent]] = []
        for n in range(len(planned)):
            due = n / args.rate
            original = Sent(n, 0)
            sends.append(original)
            schedule.append((due, original))
            for attempt in range(1, args.retries + 1):
                retry = Sent(n, attempt)
                sends.append(retry)
                schedule.append((due + rng.uniform(*args.retry_delay), retry))
        schedule.sort(key=lambda item: item[0])

        async def send(sent: Sent, due: float) -> None:
            began = time.monotonic()
            sent.lag = began - due
            try:
                status, body = await post(planned[sent.message].xml)
            except (TimeoutError, aiohttp.ClientError) as e:
                sent.error = f"{type(e).__name__} {str(e)[:60]}".strip()
                return
            sent.latency = time.monotonic() - began
            if status != 200 or body != "success":
                sent.error = f"{status} {body[:40]!r}"

        load_before = os.getloadavg()[0]
        cpu_before = service.cpu_seconds()
        own_cpu_before = time.process_time()
        watcher = asyncio.create_task(watch(service, sessions, prefix, load, 0.5))
        tasks = []
        t0 = time.monotonic()
        for offset, sent in schedule:
            due = t0 + offset
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(sent, due)))
        await asyncio.gather(*tasks)
        sending_s = time.monotonic() - t0
        answered = time.monotonic()
        routed = await wait_routed(sessions, prefix, args.drain_timeout)
        drained = routed is not None
        drain_s = (routed if routed is not None else time.monotonic()) - answered
        busy_s = (routed if routed is not None else time.monotonic()) - t0
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        cpu_after = service.cpu_seconds()
        own_cpu_s = time.process_time() - own_cpu_before
        load_after = os.getloadavg()[0]
        if service.process.returncode is not None:
            raise ServiceFailed(
                f"the service exited with {service.process.returncode} during the run:\n"
                + service.stderr_tail()
            )

        async with sessions() as session:
            ours = Message.conversation_id.like(f"{prefix}%")
            inbound = (Message.channel == "wechat", Message.direction == "in", ours)
            stored_ids = [
                row[0]
                for row in await session.execute(select(Message.platform_msg_id).where(*inbound))
            ]
            dup_rows = (
                await session.execute(
                    select(Message.platform_msg_id, func.count())
                    .where(*inbound)
                    .group_by(Message.platform_msg_id)
                    .having(func.count() > 1)
                )
            ).all()
            unhandled = await session.scalar(
                select(func.count())
                .select_from(Message)
                .where(*inbound, Message.handled_at.is_(None))
            )
            per_conversation = (
                await session.execute(
                    select(Ticket.conversation_id, func.count())
                    .where(Ticket.conversation_id.like(f"{prefix}%"))
                    .group_by(Ticket.conversation_id)
                )
            ).all()
            # Tickets no inbound message points at: opened, but not for a message we sent.
            linked = select(Message.ticket_id).where(*inbound, Message.ticket_id.is_not(None))
            orphans = await session.scalar(
                select(func.count())
                .select_from(Ticket)
                .where(Ticket.conversation_id.like(f"{prefix}%"), Ticket.id.not_in(linked))
            )
            outbound = dict(
                (
                    await session.execute(
                        select(Message.delivery, func.count())
                        .where(Message.direction == "out", ours)
                        .group_by(Message.delivery)
                    )
                ).all()
            )
        log = service.log_since(log_from)
    finally:
        await http.close()
        if service is not None:
            exit_code = await stop_service(service)
        await engine.dispose()
        await fake.close()

    residents = {p.openid for p in planned}
    sent_ids = {str(p.msg_id) for p in planned}
    stored = set(stored_ids)
    lost = len(sent_ids - stored)
    strangers = len(stored - sent_ids)
    duplicates = sum(count - 1 for _, count in dup_rows)
    tickets = sum(count for _, count in per_conversation)
    duplicate_tickets = sum(count - 1 for _, count in per_conversation if count > 1)
    requesters = {p.openid for p in planned if p.intent != "chitchat"}
    requests = sum(1 for p in planned if p.intent != "chitchat")
    cs_calls = [c for c in fake.calls(CUSTOM_SEND) if c.body.get("touser") in residents]
    refused = sum(1 for c in cs_calls if c.errcode not in (0, None) or c.status != 200)
    bot_lines = sum(1 for d in fake.deliveries if d.touser in residents)
    errors = Counter(s.error for s in sends if s.error)
    done = [s.latency for s in sends if s.latency is not None]
    first = [s.latency for s in sends if s.latency is not None and s.attempt == 0]
    again = [s.latency for s in sends if s.latency is not None and s.attempt > 0]
    # WeChat waits 5 s for an answer, then counts the callback as failed and retries.
    too_slow = sum(1 for s in sends if s.error or (s.latency or 0) > 5.0)
    lags = [s.lag * 1000 for s in sends]
    db = "sqlite (temp file)" if args.database_url is None else database_url.split("@")[-1]

    print(
        f"\nwechat callback: {args.messages} messages at {args.rate:g}/s, {args.retries} "
        f"retries each ({len(sends)} callbacks in {sending_s:.1f} s), "
        f"{'safe (AES)' if args.safe else 'plain'} mode"
    )
    print(
        f"model {model.relative_to(ROOT) if model.is_relative_to(ROOT) else model}, db {db}, "
        f"{len(residents)} residents, {requests} requests / {args.messages - requests} chitchat, "
        f"load avg {load_before:.1f} → {load_after:.1f} ({os.cpu_count()} CPUs)"
    )
    print("callback latency     count     p50     p95     p99     max  (ms)")
    print(latency_row("all", done))
    print(latency_row("first delivery", first))
    print(latency_row("retries", again))
    print(
        f"send lag (scheduled → sent): p50 {pct(lags, 50):.1f} p99 {pct(lags, 99):.1f} "
        f"max {max(lags):.1f} ms"
    )
    print(
        f"errors: {sum(errors.values())}"
        + (f" {dict(errors.most_common())}" if errors else "")
        + f"; failed or slower than WeChat's 5 s: {too_slow}"
    )
    print(
        f"messages stored: {len(stored)} / {len(sent_ids)} MsgIds sent; lost {lost}, "
        f"duplicates {duplicates}" + (f", unknown {strangers}" if strangers else "")
    )
    print(
        f"tickets created: {tickets} ({len(requesters)} residents sent a request); "
        f"duplicate tickets {duplicate_tickets}, tickets without a message {orphans}"
    )
    print(
        f"unhandled: {unhandled}; router drained {drain_s:.1f} s after the last answer"
        + ("" if drained else f" (TIMED OUT after {args.drain_timeout:g} s)")
    )
    print(
        f"bot lines via the fake: {bot_lines} ({len(cs_calls)} custom-send calls, {refused} "
        f"refused); outbound {dict(sorted(outbound.items(), key=str))}"
    )
    if cpu_before is None or cpu_after is None:
        cpu = "?"
    else:
        # Everything the service did for one message: its callbacks, routing, bot lines.
        per_message = (cpu_after - cpu_before) * 1000 / args.messages
        cpu = f"{cpu_after - cpu_before:.1f} CPU-s ({per_message:.1f} ms per message)"
    print(
        f"service while loaded (own process, pid {service.process.pid}): unrouted messages max "
        f"{max(load.unrouted, default=0)} (sampled every 0.5 s), it used {cpu} in "
        f"{busy_s:.1f} s (busiest 0.5 s: {load.busiest:.0%} of a CPU); "
        f"this process (sender, fake) used {own_cpu_s:.1f} CPU-s"
    )
    print(f"log: {sum(log.counts.values())} warnings/errors from the service during the run")
    for key, count in log.counts.most_common(8):
        print(f"  {count:>5} × {log.samples[key]}")
    if log.other_lines:
        print(f"  and {log.other_lines} other line(s) on its stderr, e.g. {log.other_sample}")
    if exit_code not in (0, None):
        print(f"the service exited with {exit_code} when stopped")
    p99 = pct(done, 99) * 1000 if done else float("nan")
    met = bool(done) and p99 < 100 and not errors and not lost and not duplicates
    print(
        f"target (p99 < 100 ms, no errors, 0 lost, 0 duplicates) at {args.rate:g} messages/s: "
        f"{'met' if met else 'NOT met'}"
    )
    failed = lost or duplicates or duplicate_tickets or errors
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=500, help="distinct messages (MsgIds)")
    parser.add_argument("--rate", type=float, default=50.0, help="new messages per second")
    parser.add_argument("--retries", type=int, default=3, help="extra deliveries of each message")
    parser.add_argument(
        "--retry-delay",
        type=float,
        nargs=2,
        default=(0.5, 1.5),
        metavar=("MIN", "MAX"),
        help="each retry goes out this many seconds after its original (uniform)",
    )
    parser.add_argument("--safe", action="store_true", help="safe mode: encrypted callbacks")
    parser.add_argument(
        "--model", help="Rasa model .tar.gz (default: newest in models/, else var/test-models/)"
    )
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temp dir")
    parser.add_argument("--request-share", type=float, default=0.4, help="share of requests")
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout, seconds")
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="seconds")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the message mix")
    args = parser.parse_args()
    if args.messages < 1 or args.rate <= 0 or args.retries < 0:
        parser.error("--messages and --rate must be positive, --retries not negative")
    model = find_model(args.model).resolve()
    with tempfile.TemporaryDirectory(prefix="bench-wechat-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bot.db"
        try:
            code = asyncio.run(run(args, model, url, Path(tmp)))
        except ServiceFailed as failed:
            sys.exit(f"error: {failed}")
    sys.exit(code)


if __name__ == "__main__":
    main()
