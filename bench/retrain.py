"""Retraining as an operator does it: how long train + evaluate takes, and whether a hot swap
of the model costs residents anything.

    .venv/bin/python bench/retrain.py [--examples 1500] [--rate 10] [--model PATH]
        [--candidate PATH]

1. Train + evaluate: the project's config, domain and rules, with `--examples` training
   examples drawn from data/nlu/ (stratified by intent; 0 = all of them), trained with
   `bot.ops.training` (Rasa's `rasa train`) and scored on data/test/ with `bot.ops.evaluation`.
   Skipped with `--candidate PATH`, which swaps to that archive instead.
2. Hot swap under steady traffic: `python -m bot serve` in its own process running `--model`;
   residents on the webchat write at `--rate` messages a second (each one "你好", which the
   bot answers); an operator activates the candidate through the API (forced: the gate is
   not what is measured here), and later rolls back. Every worker polls the registry, as in
   production, so the swap is the service's own. Prints how long each switch took, messages
   sent / answered / failed (unanswered within 10 s), answer latency, and the longest gap
   between two answers during each switch and in steady traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import uvloop
import yaml

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wechat_callback import (  # noqa: E402
    READY_TIMEOUT,
    bot_command,
    find_model,
    free_port,
    start_service,
    stop_service,
    wait_ready,
)

from bot.channels.webchat.identity import COOKIE  # noqa: E402
from bot.demo import DEMO_PASSWORD  # noqa: E402

OPERATOR = "周晓燕"
SAVED = re.compile(r"^saved (\S+\.tar\.gz)$")
ANSWER_TIMEOUT_S = 10.0
RESIDENTS = 20
STEADY_S = 5.0


def sampled_project(where: Path, examples: int, seed: int = 7) -> Path:
    """The project with `examples` training examples, each intent keeping its share."""
    project = where / "project"
    nlu = project / "data" / "nlu"
    nlu.mkdir(parents=True)
    for name in ("config.yml", "domain.yml"):
        (project / name).write_bytes((ROOT / name).read_bytes())
    (project / "data" / "rules.yml").write_bytes((ROOT / "data" / "rules.yml").read_bytes())
    (project / "data" / "test").symlink_to(ROOT / "data" / "test")
    files = {
        p: yaml.safe_load(p.read_text())["nlu"] for p in sorted((ROOT / "data/nlu").glob("*.yml"))
    }
    total = sum(
        len(b["examples"].splitlines()) for bs in files.values() for b in bs if "intent" in b
    )
    share = examples / total if examples else 1.0
    rng = random.Random(seed)
    for path, blocks in files.items():
        text = 'version: "3.1"\nnlu:\n'
        for block in blocks:
            if "intent" not in block:
                text += yaml.safe_dump([block], allow_unicode=True, sort_keys=False)
                continue
            lines = block["examples"].splitlines()
            kept = rng.sample(lines, round(len(lines) * share)) if share < 1 else lines
            text += f"- intent: {block['intent']}\n  examples: |\n"
            text += "".join(f"    {line}\n" for line in kept)
        (nlu / path.name).write_text(text)
    return project


async def train_and_evaluate(examples: int, tmp: Path) -> Path:
    """`python -m bot ops train` on the sampled project, as an operator runs it: Rasa's
    training, then the evaluation on data/test/. Times each half from its output."""
    project = sampled_project(tmp, examples)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(
        BOT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp}/train.db",
        BOT_MODELS_DIR=str(tmp / "models"),
        BOT_LOG_LEVEL="WARNING",
    )
    await bot_command(env, "db", "upgrade")
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "ops", "train", "--project", str(project), "--by", "bench",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    trained_at, archive, output = None, None, []
    async for raw in process.stdout:
        line = raw.decode(errors="replace").rstrip()
        output.append(line)
        if found := SAVED.match(line):
            trained_at, archive = time.monotonic(), Path(found.group(1))
    if await process.wait() != 0 or trained_at is None or archive is None:
        sys.exit("error: `python -m bot ops train` failed:\n" + "\n".join(output[-25:]))
    done = time.monotonic()
    print(f"Train + evaluate with `python -m bot ops train` ({examples or 'all'} examples):")
    print(f"  train {trained_at - started:.1f} s, evaluate {done - trained_at:.1f} s, "
          f"total {done - started:.1f} s (target < 180 s)")  # fmt: skip
    print("\n".join(line for line in output if line.lstrip().startswith(("macro-F1", "training "))))
    print()
    return archive


@dataclass
class Traffic:
    sent: list[float] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    failed: int = 0


async def webchat_identity(http: aiohttp.ClientSession, base: str, name: str) -> dict[str, str]:
    """A resident's own identity cookie, as the page gets it, sent by hand: the session's jar
    would make every resident one and the same."""
    async with http.post(f"{base}/webchat/api/session", json={"name": name}) as resp:
        resp.raise_for_status()
        cookie = resp.cookies[COOKIE].value
    http.cookie_jar.clear()
    return {"Cookie": f"{COOKIE}={cookie}"}


async def resident_loop(
    http: aiohttp.ClientSession, base: str, index: int, period: float, stop: asyncio.Event,
    traffic: Traffic,
) -> None:  # fmt: skip
    """One resident writing every `period` seconds and waiting for the bot's answer."""
    headers = await webchat_identity(http, base, f"居民{index}")
    async with http.ws_connect(f"{base}/webchat/ws", headers=headers) as ws:
        await ws.receive_json()
        await asyncio.sleep(period * index / RESIDENTS)
        while not stop.is_set():
            started = time.monotonic()
            traffic.sent.append(started)
            await ws.send_json(
                {"type": "message", "id": f"{index}-{len(traffic.sent)}", "text": "你好"}
            )
            try:
                await asyncio.wait_for(_bot_answer(ws), ANSWER_TIMEOUT_S)
                traffic.answered.append(time.monotonic())
                traffic.latencies.append(time.monotonic() - started)
            except TimeoutError:
                traffic.failed += 1
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))


async def _bot_answer(ws: aiohttp.ClientWebSocketResponse) -> None:
    while True:
        frame = await ws.receive_json()
        if frame.get("type") == "message" and frame["message"]["sender_kind"] == "bot":
            return


async def running_model(http: aiohttp.ClientSession, base: str) -> str:
    async with http.get(f"{base}/readyz") as resp:
        return (await resp.json())["model"]


async def switch(
    http: aiohttp.ClientSession, base: str, token: str, path: str, expect: str
) -> tuple[float, float]:
    """Ask for a switch; returns (when asked, when the service runs `expect`)."""
    asked = time.monotonic()
    async with http.post(
        f"{base}{path}",
        json={"force": True, "reason": "bench/retrain.py"},
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        if resp.status != 200:
            sys.exit(f"error: {path} answered {resp.status}: {await resp.text()}")
    while await running_model(http, base) != expect:
        await asyncio.sleep(0.05)
    return asked, time.monotonic()


def longest_gap(answers: list[float], start: float, end: float) -> float:
    inside = sorted(t for t in answers if start <= t <= end)
    points = [start, *inside, end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


async def hot_swap(model: Path, candidate: Path, rate: float, tmp: Path) -> int:
    database_url = f"sqlite+aiosqlite:///{tmp}/swap.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(
        BOT_DATABASE_URL=database_url,
        BOT_MODEL_PATH=str(model),
        BOT_MODELS_DIR=str(candidate.parent),
        BOT_MODEL_POLL="0.5",
        BOT_WEBCHAT_IDENTITIES_PER_HOUR=str(RESIDENTS),
        BOT_LOG_LEVEL="WARNING",
    )
    await bot_command(env, "db", "upgrade")
    await bot_command(env, "demo", "seed")
    port = free_port()
    service = await start_service(env, port, tmp)
    base = f"http://127.0.0.1:{port}"
    traffic, stop = Traffic(), asyncio.Event()
    try:
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, service, READY_TIMEOUT)
            async with http.post(
                f"{base}/api/login", json={"name": OPERATOR, "password": DEMO_PASSWORD}
            ) as resp:
                token = (await resp.json())["token"]
            period = RESIDENTS / rate
            residents = [
                asyncio.create_task(resident_loop(http, base, i, period, stop, traffic))
                for i in range(RESIDENTS)
            ]
            await asyncio.sleep(STEADY_S)
            steady = (time.monotonic() - STEADY_S + 1, time.monotonic())
            forward = await switch(http, base, token, f"/api/ops/models/{candidate.name}/activate",
                                   candidate.name)  # fmt: skip
            await asyncio.sleep(STEADY_S)
            back = await switch(http, base, token, "/api/ops/models/rollback", model.name)
            await asyncio.sleep(STEADY_S)
            stop.set()
            await asyncio.gather(*residents)
    finally:
        await stop_service(service)
    print(f"Hot swap under steady traffic ({rate:g} messages/s from {RESIDENTS} residents):")
    print(f"  messages sent {len(traffic.sent)}, answered {len(traffic.answered)}, "
          f"failed {traffic.failed} (unanswered within {ANSWER_TIMEOUT_S:g} s)")  # fmt: skip
    ms = [x * 1000 for x in traffic.latencies]
    print(f"  answer latency p50 {pct(ms, 50):.0f} ms, p99 {pct(ms, 99):.0f} ms, "
          f"max {max(ms, default=0):.0f} ms")  # fmt: skip
    print(f"  longest gap between answers, steady traffic: "
          f"{longest_gap(traffic.answered, *steady) * 1000:.0f} ms")  # fmt: skip
    for label, (asked, switched) in (("to the candidate", forward), ("rollback", back)):
        gap = longest_gap(traffic.answered, asked, switched + 1.0)
        print(f"  switch {label}: running after {switched - asked:.1f} s; "
              f"longest gap between answers meanwhile {gap * 1000:.0f} ms")  # fmt: skip
    return 1 if traffic.failed or len(traffic.answered) != len(traffic.sent) else 0


async def run(args: argparse.Namespace) -> int:
    model = find_model(args.model)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if args.candidate:
            candidate = Path(args.candidate).absolute()
        else:
            candidate = await train_and_evaluate(args.examples, tmp)
        return await hot_swap(model.absolute(), candidate, args.rate, tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1500, help="0 = all of data/nlu")
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second")
    parser.add_argument("--model", help="the model running before the swap")
    parser.add_argument("--candidate", help="swap to this archive instead of training one")
    # The service's own kind of event loop (bot/cli.py).
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
