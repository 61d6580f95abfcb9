"""Pieces of bench/load.py: the requests it sends, CPU time of a process tree, the bare parse
(run in a child process: `python bench/load_parts.py parse MODEL IN OUT`), a fresh PostgreSQL
database, the fake WeChat API that notes when each resident is told who is coming, and the
secretary's console."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_wechat import FakeWechat, Received  # noqa: E402

# Requests written for this bench, one ticket each. None names a thing neighbours share
# (bot.handoff.incidents.SHARED_THINGS: 停水, 电梯, 垃圾...), so none joins another's incident.
REQUESTS: dict[str, tuple[str, ...]] = {
    "repair": (
        "我家厨房水管漏水了，{addr}",
        "卫生间马桶堵了冲不下去，麻烦派人来修一下，{addr}",
        "家里的热水器打不着火了，{addr}，能来看看吗",
        "窗户玻璃裂了一道缝，风一吹就响，请师傅来换一下，{addr}",
        "我家门锁坏了，钥匙插进去拧不动，{addr}",
        "厨房的水龙头一直滴水关不紧，帮忙修修，{addr}",
        "暖气片不热，屋里冷得很，{addr}，麻烦来看看",
        "阳台的晾衣架掉下来了，帮忙修一下，{addr}",
        "抽油烟机不转了，找人来修一下吧，{addr}",
        "客厅的插座松了，插头插不稳，请电工来看看，{addr}",
    ),
    "canteen": (
        "帮我订一份明天的午饭，送到{addr}",
        "我想在社区食堂订这周的晚饭，{addr}",
        "老伴腿脚不方便，想订每天中午的送餐，{addr}",
        "明天中午给我送两份饭，{addr}",
        "我要报名老年助餐，每天订一份午饭，{addr}",
        "帮我订三天的午饭，要软一点的，{addr}",
        "助餐点能送饭上门吗，我想订，{addr}",
        "报个饭，明天中午一份，{addr}",
        "订餐，两个人的晚饭，送到{addr}",
        "家里来亲戚了，中午帮我多订两份饭，{addr}",
    ),
    "medical": (
        "我血压有点高，头晕，想请社区医生来看看，{addr}",
        "老伴糖尿病的药吃完了，能帮忙配药送来吗，{addr}",
        "我想预约家庭医生上门量血压，{addr}",
        "腿疼得走不了路，想请医生上门看看，{addr}",
        "我妈咳嗽好几天了，能不能请医生来看一下，{addr}",
        "需要有人陪我去医院复查，{addr}",
        "想约社区医生打流感疫苗，{addr}",
        "膝盖肿了好几天，能请医生来家里看看吗，{addr}",
        "降压药快吃完了，帮我开点药，{addr}",
        "老人刚出院，需要护士上门换药，{addr}",
    ),
    "complaint": (
        "楼上每天半夜还在剁东西，吵得睡不着，{addr}",
        "楼下饭馆的油烟全飘进我家，希望社区管一管，{addr}",
        "邻居在楼道里堆了很多杂物，走路都不方便，{addr}",
        "有人在绿化带里种菜还浇粪，臭得很，{addr}",
        "小区里有人遛狗不拴绳，吓到孩子了，{addr}",
        "隔壁装修天天从早上七点就开始砸墙，{addr}",
        "楼上往下扔烟头，烫坏了我晾的衣服，{addr}",
        "广场舞音响声音太大，晚上十点还不停，{addr}",
        "有车总是停在消防通道上，投诉一下，{addr}",
        "物业保安态度太差，还骂人，{addr}",
    ),
}
ADDRESSES = ("3号楼2单元501", "3号楼1单元302", "3号楼4单元1101", "东村3组12号", "东村5组27号")
# The bot's line that names who is coming (bot.handoff.texts: coming(), urgent_coming()).
TOLD = re.compile(r"来帮您|第一位赶到的人")
CLK_TCK = os.sysconf("SC_CLK_TCK")
HELPER_PROCESSES = ("resource_tracker", "semaphore_tracker")


def request_texts() -> list[tuple[str, str]]:
    """(intent, text): every request at every address."""
    return [
        (intent, template.format(addr=address))
        for intent, templates in REQUESTS.items()
        for template in templates
        for address in ADDRESSES
    ]


# CPU time of the service: its process and every descendant


def _read_stat(path: Path) -> tuple[str, list[str]] | None:
    """A /proc stat file: the process's name, and its fields from field 3 (state) on: [1] is
    the ppid, [11..14] utime, stime, cutime, cstime, [19] the start time."""
    try:
        text = path.read_text()
    except OSError:
        return None
    name, _, rest = text[text.find("(") + 1 :].rpartition(")")
    return name, rest.split()


def _stat(pid: int) -> list[str] | None:
    found = _read_stat(Path(f"/proc/{pid}/stat"))
    return found[1] if found is not None else None


def _processes() -> Iterator[tuple[int, str, list[str]]]:
    """Every process now running: its pid, name and stat fields."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _read_stat(entry / "stat")) is not None:
            yield int(entry.name), *found


def _cpu_ticks(fields: list[str]) -> int:
    """User + system CPU of a process and of the children it already reaped."""
    return sum(int(v) for v in fields[11:15])


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, _, fields in _processes():
        children.setdefault(int(fields[1]), []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def tree_cpu(pid: int) -> float | None:
    """User + system CPU seconds of `pid` and its descendants, with the children each one
    already reaped (cutime, cstime): a worker killed and reaped still counts."""
    fields = _stat(pid)
    if fields is None:
        return None
    tree = [fields] + [_stat(p) for p in descendants(pid)]
    return sum(_cpu_ticks(one) for one in tree if one is not None) / CLK_TCK


# The database and cache servers the service uses on this machine, by process name.
SERVERS = frozenset({"postgres", "redis-server"})


def servers_cpu() -> float:
    """User + system CPU seconds of every PostgreSQL and Redis server process on this machine,
    with the children each one already reaped (a backend whose connection ended still counts
    in the postmaster's)."""
    ticks = sum(_cpu_ticks(fields) for _, name, fields in _processes() if name in SERVERS)
    return ticks / CLK_TCK


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def worker_children(pid: int) -> list[int]:
    """The service's child processes that are workers (not multiprocessing's helpers)."""
    found = []
    for child in descendants(pid):
        fields = _stat(child)
        if (
            fields
            and int(fields[1]) == pid
            and not any(h in cmdline(child) for h in HELPER_PROCESSES)
        ):
            found.append(child)
    return found


def start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields else None


# The bare parse: the same model, the same texts, nothing around it


@dataclass
class BareParse:
    texts: int
    cpu_ms: float  # CPU per parse_message, all threads of the process
    wall_ms: float
    load_s: float
    intents: dict[str, str]  # text → intent read

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "intents"}


def bare_parse(model: Path, texts: list[str], rounds: int) -> BareParse:
    """`Agent.load` and `parse_message` in a child process, so that TensorFlow is neither in
    this process nor competing with the service (it runs before the service starts)."""
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        given, result = Path(tmp) / "texts.json", Path(tmp) / "result.json"
        given.write_text(json.dumps({"texts": texts, "rounds": rounds}, ensure_ascii=False))
        env = dict(os.environ, RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="2")
        done = subprocess.run(
            [sys.executable, __file__, "parse", str(model), str(given), str(result)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if done.returncode != 0:
            tail = "\n".join(done.stderr.decode(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"the bare parse failed ({done.returncode}):\n{tail}")
        return BareParse(**json.loads(result.read_text()))


async def _parse_all(model: str, texts: list[str], rounds: int) -> dict[str, Any]:
    from rasa.core.agent import Agent

    began = time.perf_counter()
    agent = Agent.load(model)
    # As the service does (bot.conversation.engine): one parse loads jieba, then gc.freeze.
    await agent.parse_message("你好")
    gc.collect()
    gc.freeze()
    load_s = time.perf_counter() - began
    for text in texts[:10]:
        await agent.parse_message(text)
    intents: dict[str, str] = {}
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            intents[text] = (await agent.parse_message(text))["intent"]["name"]
    n = len(texts) * rounds
    return {
        "texts": len(texts),
        "cpu_ms": (time.process_time() - cpu) * 1000 / n,
        "wall_ms": (time.perf_counter() - wall) * 1000 / n,
        "load_s": load_s,
        "intents": intents,
    }


# A fresh PostgreSQL database for one configuration


@contextlib.asynccontextmanager
async def fresh_postgres(admin_dsn: str) -> AsyncIterator[str]:
    """CREATE DATABASE on the server of `admin_dsn` (an asyncpg DSN of its `postgres` admin
    database), yield its SQLAlchemy URL, DROP it afterwards."""
    import asyncpg

    name = f"bench_load_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(admin_dsn)
        yield urlunsplit(("postgresql+asyncpg", parts.netloc, f"/{name}", "", ""))
    finally:
        with contextlib.suppress(Exception):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# What bench/load.py runs: a database and a number of workers


@dataclass(frozen=True)
class Config:
    database: str  # "sqlite" or "postgres"
    workers: int

    @property
    def name(self) -> str:
        return f"{self.database}, {self.workers} worker{'s' if self.workers > 1 else ''}"


def parse_configs(text: str) -> list[Config]:
    configs = []
    for item in text.split(","):
        database, _, workers = item.strip().partition(":")
        if database not in ("sqlite", "postgres") or not workers.isdigit() or int(workers) < 1:
            raise argparse.ArgumentTypeError(f"{item!r}: expected sqlite:N or postgres:N")
        configs.append(Config(database, int(workers)))
    return configs


def parse_rates(text: str) -> list[float]:
    try:
        rates = [float(r) for r in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected rates like 20,40,60") from None
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError("rates must be positive")
    return rates


@contextlib.asynccontextmanager
async def database(config: Config, admin_dsn: str, tmp: Path) -> AsyncIterator[str]:
    """The service's database URL for `config`: a fresh PostgreSQL database, or SQLite in `tmp`."""
    if config.database == "postgres":
        async with fresh_postgres(admin_dsn) as url:
            yield url
    else:
        yield f"sqlite+aiosqlite:///{tmp}/bot.db"


# The fake WeChat API, noting the time of each line


class TimedFake(FakeWechat):
    """FakeWechat that notes when it accepted each resident's lines: `told` for the line
    naming who is coming, `other` for any other line."""

    def __init__(self) -> None:
        super().__init__()
        self.told: dict[str, list[float]] = {}
        self.other: dict[str, list[float]] = {}

    def _deliver(self, call: Received, touser: str) -> None:
        super()._deliver(call, touser)
        into = self.told if TOLD.search(self.deliveries[-1].content) else self.other
        into.setdefault(touser, []).append(time.monotonic())


# The branch secretary's console: every ticket.created, with the time it arrived


@dataclass
class Console:
    """Logged in through the API (POST /api/login, /api/ws-ticket, GET /api/ws); reconnects
    when its socket closes (a worker killed under it)."""

    http: aiohttp.ClientSession
    base_url: str
    name: str
    password: str
    created: dict[int, float] = field(default_factory=dict)
    frames: Counter[str] = field(default_factory=Counter)
    connects: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    _token: str = ""
    _task: asyncio.Task[None] | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def open(self, timeout: float = 10.0) -> None:
        async with self.http.post(
            f"{self.base_url}/api/login", json={"name": self.name, "password": self.password}
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"console login as {self.name}: {resp.status}")
            self._token = (await resp.json())["token"]
        self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        while True:
            try:
                async with self.http.post(
                    f"{self.base_url}/api/ws-ticket", headers=headers
                ) as resp:
                    ticket = (await resp.json())["ticket"]
                async with self.http.ws_connect(
                    f"{self.base_url}/api/ws", params={"ticket": ticket}, timeout=10
                ) as ws:
                    self.connects += 1
                    self._ready.set()
                    async for frame in ws:
                        if frame.type == aiohttp.WSMsgType.TEXT:
                            self._note(json.loads(frame.data))
            except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as e:
                self.failures[type(e).__name__] += 1
            await asyncio.sleep(0.5)

    def _note(self, event: dict[str, Any]) -> None:
        kind = str(event.get("type"))
        self.frames[kind] += 1
        if kind == "ticket.created":
            self.created.setdefault(int(event["ticket"]["id"]), time.monotonic())


def main() -> None:
    if len(sys.argv) != 5 or sys.argv[1] != "parse":
        sys.exit("usage: python bench/load_parts.py parse MODEL TEXTS.json RESULT.json")
    _, _, model, given, result = sys.argv
    job = json.loads(Path(given).read_text())
    answer = asyncio.run(_parse_all(model, job["texts"], job["rounds"]))
    Path(result).write_text(json.dumps(answer, ensure_ascii=False))


if __name__ == "__main__":
    main()
