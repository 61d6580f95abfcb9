"""The service under load: signed WeChat callbacks on loopback, each from a new resident and
each a real request, at rising rates, for each configuration of database and workers.

    .venv/bin/python bench/load.py [--configs sqlite:1,postgres:1,postgres:2]
        [--rates 20,40,60,80] [--seconds 10] [--model PATH] [--json PATH]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
        [--redis-url redis://127.0.0.1:6379/0] [--kill-worker]

Before anything else a child process loads the model with `Agent.load` and times `parse_message`
on the bench's texts (the bare parse: after one warm-up parse and gc.freeze, as the service
loads it); only texts it reads as the request they were written as are sent. Then, for each
configuration: a fresh database (SQLite in a temp dir, or a PostgreSQL database created on the
`--postgres` server and dropped afterwards), migrated and seeded with the demo's people; the
fake WeChat API of bench/wechat_callback.py in this process; `python -m bot serve` in its own
process with BOT_DATABASE_URL, BOT_WORKERS=N and, for PostgreSQL, BOT_REDIS_URL=--redis-url (the
environment, which `serve --workers` overrides); the branch secretary logged in to the console
API (/api/login, /api/ws-ticket, /api/ws). Each rate is one phase of `--seconds`: one message a
new resident (new FromUserName, new MsgId) sent on schedule whatever the service does, retried
like WeChat (no answer within 5 s or an error: again, up to three times, same query and body).

Figures per phase:
- sent/s: the rate this process managed to send at; ans/s: residents told who is coming per
  second, from the first told to the last (the messages per second the service sustained).
- callback p50/p95/p99: from POST to the `success` answer, every callback answered.
- told p50/p95: from the first POST of a message until the fake WeChat API accepted the
  customer-service line naming who is coming (bot.handoff.texts.coming) for that resident.
- console p50/p95: from the first POST until the secretary's console got `ticket.created` for
  the ticket that message opened.
- CPU ms/msg: CPU seconds of the service's process and all its descendants (/proc, user +
  system, reaped children included) from the phase's start until it drained, per message;
  ×parse: that over the bare parse's CPU per message (both count every thread). The
  PostgreSQL and Redis servers' own CPU is not in it: it is the next column, servers ms/msg,
  every process of theirs on this machine over the same time (near nothing for SQLite).
- tickets: acknowledged messages that opened a ticket (read from the database); no tkt: a bot
  line but no ticket (the service read it otherwise); wait: acknowledged and stored, still
  waiting to be routed when the phase ended (a backlog, not a loss); lost: acknowledged, but
  neither stored unrouted nor answered with a ticket or a bot line; dup: a resident with two
  tickets or two told lines; unack: no attempt was answered `success`.
- sustained: every message acknowledged and told before `--drain` seconds after the last
  send, told p95 < 2 s, none lost, and this process sent at ≥ 90 % of the rate. Rates stop
  rising after the first phase not sustained (unless --keep-going).

The targets printed at the end (from the issue, for 2 workers on this 2-core machine): at
least 60 messages a second sustained with callback p99 < 100 ms and told p95 < 2 s, and CPU
per message at most 3 × the bare parse.

--kill-worker: for each configuration with 2 or more workers, one more phase at `--kill-rate`
for `--kill-seconds`, during which one worker child of the service gets SIGKILL halfway; it
reports sent, acknowledged, answered (told), lost and duplicated. A service that runs as one
process has no worker child to kill: the run says so and skips it.

This process and the service share the machine's CPUs; this process's own CPU is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from load_parts import (  # noqa: E402
    Config,
    Console,
    TimedFake,
    bare_parse,
    database,
    descendants,
    parse_configs,
    parse_rates,
    request_texts,
    servers_cpu,
    start_time,
    tree_cpu,
    worker_children,
)
from load_report import TOLD_P95_S, report, targets  # noqa: E402
from wechat_callback import (  # noqa: E402
    READY_TIMEOUT,
    TOKEN,
    Service,
    ServiceFailed,
    bot_command,
    find_model,
    free_port,
    pct,
    service_environment,
    start_service,
    stop_service,
    wait_ready,
)

from bot.demo import DEMO_PASSWORD  # noqa: E402
from tests.wechat_pusher import WechatPusher, text_xml  # noqa: E402

SECRETARY = "陈红梅"  # sees every ticket
WECHAT_TIMEOUT = 5.0  # WeChat waits this long for an answer, then tries again
RETRIES = 3
RETRY_GAP = 1.0


@dataclass
class Msg:
    openid: str
    text: str
    msg_id: int
    sent_at: float = 0.0
    acked_at: float | None = None
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Live:
    """One configuration's service and everything this process holds against it."""

    config: Config
    service: Service
    http: aiohttp.ClientSession
    fake: TimedFake
    console: Console
    sessions: Any
    pusher: WechatPusher
    texts: list[str]
    tag: str
    ids: itertools.count[int]
    known: dict[int, str | None] = field(default_factory=dict)  # pid → start time

    @property
    def pid(self) -> int:
        return self.service.process.pid

    def note_processes(self) -> int:
        """Remembers the service's descendants (to end leftovers); returns the workers."""
        for pid in descendants(self.pid):
            self.known.setdefault(pid, start_time(pid))
        return max(1, len(worker_children(self.pid)))


async def deliver(live: Live, msg: Msg) -> None:
    """One message as WeChat sends it: signed once, repeated as is when unanswered."""
    call = live.pusher.call(text_xml(msg.openid, msg.text, msg.msg_id))
    url = f"{live.service.base_url}/channels/wechat"
    timeout = aiohttp.ClientTimeout(total=WECHAT_TIMEOUT)
    msg.sent_at = time.monotonic()
    for attempt in range(1 + RETRIES):
        began = time.monotonic()
        try:
            async with live.http.post(
                url, params=call.params, data=call.body, timeout=timeout
            ) as resp:
                status, body = resp.status, await resp.text()
        except (TimeoutError, aiohttp.ClientError) as e:
            msg.errors.append(type(e).__name__)
        else:
            msg.latencies.append(time.monotonic() - began)
            if status == 200 and body == "success":
                msg.acked_at = time.monotonic()
                return
            msg.errors.append(f"HTTP {status}")
        if attempt < RETRIES:
            await asyncio.sleep(RETRY_GAP)


def spread(values: list[float], scale: float, ps: tuple[int, ...]) -> dict[str, float | None]:
    return {f"p{p}": (pct(values, p) * scale if values else None) for p in ps}


async def ticket_rows(
    live: Live, prefix: str
) -> tuple[dict[str, list[int]], dict[str, int], set[str]]:
    """Tickets by conversation, the bot's stored lines by conversation, and the conversations
    whose message is stored but not yet routed."""
    from sqlalchemy import func, select

    from bot.db.models import Message, Ticket

    async with live.sessions() as session:
        tickets: dict[str, list[int]] = {}
        for ticket_id, conversation in await session.execute(
            select(Ticket.id, Ticket.conversation_id).where(
                Ticket.conversation_id.like(f"{prefix}%")
            )
        ):
            tickets.setdefault(conversation, []).append(ticket_id)
        lines = dict(
            (
                await session.execute(
                    select(Message.conversation_id, func.count())
                    .where(Message.conversation_id.like(f"{prefix}%"), Message.direction == "out")
                    .group_by(Message.conversation_id)
                )
            ).all()
        )
        unrouted = set(
            (
                await session.scalars(
                    select(Message.conversation_id).where(
                        Message.conversation_id.like(f"{prefix}%"),
                        Message.direction == "in",
                        Message.handled_at.is_(None),
                    )
                )
            ).all()
        )
    return tickets, lines, unrouted


async def phase(
    live: Live, number: int, rate: float, seconds: float, drain: float, kill_at: float | None
) -> dict[str, Any]:
    rng = random.Random(number)
    openid = f"oLoad{live.tag}{number:02d}"
    msgs = [
        Msg(f"{openid}{n:05d}", rng.choice(live.texts), next(live.ids))
        for n in range(max(1, round(rate * seconds)))
    ]
    killed: dict[str, Any] = {}
    cpu_before, own_before = tree_cpu(live.pid), time.process_time()
    servers_before = servers_cpu()
    t0 = time.monotonic()
    killer = asyncio.create_task(kill_worker(live, kill_at, killed)) if kill_at else None
    tasks = []
    for n, msg in enumerate(msgs):
        delay = t0 + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(deliver(live, msg)))
    sent_s = time.monotonic() - t0
    await asyncio.gather(*tasks)
    if killer is not None:
        await killer
    deadline = time.monotonic() + drain
    waiting = [m for m in msgs if m.acked_at is not None]
    while waiting and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        waiting = [m for m in waiting if m.openid not in live.fake.told]
    drained_at = time.monotonic()
    cpu_after, own_cpu = tree_cpu(live.pid), time.process_time() - own_before
    servers_s = servers_cpu() - servers_before
    await asyncio.sleep(0.5)  # console frames in flight

    tickets, lines, unrouted = await ticket_rows(live, f"wechat:{openid}")
    told, console, callbacks = [], [], []
    counts = dict.fromkeys(
        ("acked", "tickets", "no_ticket", "waiting", "lost", "dup", "unacked"), 0
    )
    errors: dict[str, int] = {}
    told_times: list[float] = []
    for msg in msgs:
        callbacks.extend(msg.latencies)
        for error in msg.errors:
            errors[error] = errors.get(error, 0) + 1
        conversation = f"wechat:{msg.openid}"
        ours, told_at = tickets.get(conversation, []), live.fake.told.get(msg.openid, [])
        if told_at:
            told.append(told_at[0] - msg.sent_at)
            told_times.append(told_at[0])
        if ours and ours[0] in live.console.created:
            console.append(live.console.created[ours[0]] - msg.sent_at)
        if len(ours) > 1 or len(told_at) > 1:
            counts["dup"] += 1
        if msg.acked_at is None:
            counts["unacked"] += 1
            continue
        counts["acked"] += 1
        if ours:
            counts["tickets"] += 1
        elif lines.get(conversation) or told_at:
            counts["no_ticket"] += 1
        elif conversation in unrouted:
            counts["waiting"] += 1
        else:
            counts["lost"] += 1
    sent = len(msgs)
    send_rate = sent / max(sent_s, 1 / rate)
    cpu_s = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    drained = not waiting
    told_spread = spread(told, 1.0, (50, 95))
    told_p95 = told_spread["p95"]
    sustained = (
        drained
        and counts["unacked"] == 0
        and counts["lost"] == 0
        and told_p95 is not None
        and told_p95 < TOLD_P95_S
        and send_rate >= 0.9 * rate
    )
    return {
        "rate": rate,
        "seconds": seconds,
        "sent": sent,
        "sent_per_s": send_rate,
        "answered": len(told),
        # How fast the told lines came out, first to last.
        "answered_per_s": (
            (len(told_times) - 1) / (max(told_times) - min(told_times))
            if len(told_times) > 1 and max(told_times) > min(told_times)
            else 0.0
        ),
        "callback_ms": spread(callbacks, 1000.0, (50, 95, 99)),
        "callbacks": len(callbacks),
        "errors": errors,
        "told_s": told_spread,
        "console_s": spread(console, 1.0, (50, 95)),
        "console_events": len(console),
        "cpu_s": cpu_s,
        "cpu_ms_per_message": cpu_s * 1000 / sent if cpu_s is not None else None,
        "servers_ms_per_message": servers_s * 1000 / sent,
        "bench_cpu_s": own_cpu,
        **counts,
        "drained": drained,
        "drain_s": drained_at - (t0 + sent_s),
        "sustained": sustained,
        **({"killed": killed} if kill_at else {}),
    }


async def kill_worker(live: Live, after: float, killed: dict[str, Any]) -> None:
    await asyncio.sleep(after)
    workers = worker_children(live.pid)
    if not workers:
        killed["skipped"] = "no worker child process to kill"
        return
    live.note_processes()
    victim = random.choice(workers)
    os.kill(victim, signal.SIGKILL)
    killed.update(pid=victim, at_s=after, workers_before=len(workers))
    await asyncio.sleep(3.0)
    killed["workers_3s_after"] = len(worker_children(live.pid))


async def warm_up(live: Live, timeout: float) -> None:
    """Outside the figures: a few requests from other residents, over fresh connections (so
    that each worker likely gets one), until each is told."""
    msgs = [
        Msg(f"oWarm{live.tag}{n}", live.texts[n % len(live.texts)], next(live.ids))
        for n in range(2 * live.config.workers + 1)
    ]
    await asyncio.gather(*(deliver(live, m) for m in msgs))
    deadline = time.monotonic() + timeout
    while any(m.openid not in live.fake.told for m in msgs):
        if time.monotonic() > deadline:
            raise ServiceFailed("the warm-up requests were not answered:\n" + live_tail(live))
        await asyncio.sleep(0.1)


def live_tail(live: Live) -> str:
    return live.service.stderr_tail()


async def run_config(
    config: Config, args: argparse.Namespace, model: Path, texts: list[str], tmp: Path
) -> dict[str, Any]:
    from bot.db.engine import create_engine, create_session_factory

    result: dict[str, Any] = {"name": config.name, **vars(config), "phases": []}
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(database(config, args.postgres, tmp))
        fake = TimedFake()
        await fake.start()
        stack.push_async_callback(fake.close)
        env = service_environment(url, model, fake.base_url, fake.appid, fake.secret, False)
        env["BOT_WORKERS"] = str(config.workers)
        if config.database == "postgres" and args.redis_url:
            env["BOT_REDIS_URL"] = args.redis_url
        progress(f"{config.name}: preparing the database")
        await bot_command(env, "db", "upgrade")
        await bot_command(env, "demo", "seed")
        engine = create_engine(url)
        stack.push_async_callback(engine.dispose)
        # New connections for every callback, as WeChat's servers open them: the kernel
        # spreads them over the workers listening on the port.
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))
        stack.push_async_callback(http.close)
        progress(f"{config.name}: starting the service (loading the model)")
        service = await start_service(env, free_port(), tmp)
        live = Live(
            config,
            service,
            http,
            fake,
            Console(http, service.base_url, SECRETARY, DEMO_PASSWORD),
            create_session_factory(engine),
            WechatPusher(TOKEN, fake.appid),
            texts,
            secrets.token_hex(3),
            itertools.count(time.time_ns() // 1000),
        )
        stack.push_async_callback(stop, live)
        await wait_ready(http, service, READY_TIMEOUT)
        await live.console.open()
        stack.push_async_callback(live.console.close)
        await warm_up(live, 60.0)
        result["processes"] = live.note_processes()
        if result["processes"] < config.workers:
            progress(
                f"{config.name}: WARNING the service runs {result['processes']} worker "
                "process(es); BOT_WORKERS is not in effect yet"
            )
        log_from = service.offsets()
        for number, rate in enumerate(args.rates):
            progress(f"{config.name}: {rate:g} messages/s for {args.seconds:g} s")
            figures = await phase(live, number, rate, args.seconds, args.drain, None)
            result["phases"].append(figures)
            check_alive(live)
            if not figures["sustained"] and not args.keep_going:
                progress(f"{config.name}: {rate:g}/s not sustained; stopping here")
                break
            await asyncio.sleep(args.rest)
        if args.kill_worker and config.workers > 1:
            progress(f"{config.name}: kill -9 run at {args.kill_rate:g}/s")
            kill = await phase(
                live, 99, args.kill_rate, args.kill_seconds, args.kill_drain, args.kill_seconds / 2
            )
            result["kill"] = kill
        log = service.log_since(log_from)
        result["log"] = {"warnings_and_errors": sum(log.counts.values())}
        result["log_top"] = [
            f"{count} × {log.samples[key]}" for key, count in log.counts.most_common(5)
        ]
        result["console"] = {
            "connects": live.console.connects,
            "failures": dict(live.console.failures),
        }
    return result


def check_alive(live: Live) -> None:
    code = live.service.process.returncode
    if code is not None:
        raise ServiceFailed(f"the service exited with {code} during the run:\n" + live_tail(live))


async def stop(live: Live) -> None:
    """SIGTERM to the service; then SIGKILL to any of its processes still there (only those
    this run saw, checked by their start time)."""
    live.note_processes()
    await stop_service(live.service)
    for pid, started in live.known.items():
        if started is not None and start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def main_async(args: argparse.Namespace, model: Path, tmp: Path) -> dict[str, Any]:
    progress("bare parse: loading the model in a child process")
    written = request_texts()
    bare = await asyncio.to_thread(
        bare_parse, model, [text for _, text in written], args.parse_rounds
    )
    texts = [text for intent, text in written if bare.intents.get(text) == intent]
    misread = len(written) - len(texts)
    if not texts:
        raise ServiceFailed("the model reads none of the bench's requests as written")
    print(
        f"model {model.name}; bare parse {bare.cpu_ms:.2f} ms CPU ({bare.wall_ms:.2f} ms wall) "
        f"per message over {bare.texts} texts; {len(texts)} texts sent "
        f"({misread} left out: the model misreads them); {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    results = []
    for n, config in enumerate(args.configs):
        folder = tmp / f"config{n}"
        folder.mkdir()
        result = await run_config(config, args, model, texts, folder)
        report(result, bare)
        results.append(result)
    print("\ntargets (from the issue; they are meant for 2 workers on PostgreSQL + Redis):")
    for result in results:
        print(targets(result, bare))
    return {
        "model": str(model),
        "cpus": os.cpu_count(),
        "bare_parse": bare.as_dict(),
        "texts_sent": len(texts),
        "texts_misread": misread,
        "configs": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--configs", type=parse_configs, default=parse_configs("sqlite:1,postgres:1,postgres:2"))
    add("--rates", type=parse_rates, default=[20.0, 40.0, 60.0, 80.0], help="messages/s")
    add("--seconds", type=float, default=10.0, help="length of each phase")
    add("--drain", type=float, default=20.0, help="seconds after the last send to be told")
    add("--rest", type=float, default=2.0, help="seconds between phases")
    add("--keep-going", action="store_true", help="raise the rate past an unsustained one")
    add("--model", help="Rasa model .tar.gz (default: newest in models/, else var/test-models/)")
    add("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin DSN")
    add("--redis-url", default="redis://127.0.0.1:6379/0", help="BOT_REDIS_URL for PostgreSQL")
    add("--kill-worker", action="store_true", help="the kill -9 run for 2+ workers")
    add("--kill-rate", type=float, default=20.0)
    add("--kill-seconds", type=float, default=20.0)
    add("--kill-drain", type=float, default=60.0)
    add("--parse-rounds", type=int, default=1, help="bare parse: passes over the texts")
    add("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    model = find_model(args.model).resolve()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        try:
            figures = asyncio.run(main_async(args, model, Path(tmp)))
        except (ServiceFailed, RuntimeError) as failed:
            sys.exit(f"error: {failed}")
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
