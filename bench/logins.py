"""How a burst of password guesses affects everyone else: /healthz latency while N logins with
wrong passwords arrive at once, against a running service (`make demo` or `python -m bot serve`).

    .venv/bin/python bench/logins.py --url http://127.0.0.1:8080 --logins 40

Prints the statuses the guesses got and /healthz's latency (median, max) before and during the
burst. Argon2 runs in worker threads, two at a time, so the event loop keeps answering; the
per-address throttle turns guesses past the 20th into quick 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter

import aiohttp


async def probe(http: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> list[float]:
    latencies = []
    while not stop.is_set():
        started = time.perf_counter()
        async with http.get(f"{url}/healthz") as resp:
            await resp.read()
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.02)
    return latencies


async def guess(http: aiohttp.ClientSession, url: str, n: int) -> int:
    body = {"name": f"guess-{n}", "password": "wrong-password"}
    async with http.post(f"{url}/api/login", json=body) as resp:
        return resp.status


def summary(label: str, latencies: list[float]) -> str:
    return (
        f"{label}: /healthz median {statistics.median(latencies):.1f} ms, "
        f"max {max(latencies):.1f} ms over {len(latencies)} probes"
    )


async def main(url: str, logins: int) -> None:
    async with aiohttp.ClientSession() as http:
        stop = asyncio.Event()
        quiet = asyncio.create_task(probe(http, url, stop))
        await asyncio.sleep(1.0)
        stop.set()
        print(summary("quiet", await quiet))

        stop = asyncio.Event()
        busy = asyncio.create_task(probe(http, url, stop))
        started = time.perf_counter()
        statuses = await asyncio.gather(*(guess(http, url, n) for n in range(logins)))
        took = time.perf_counter() - started
        stop.set()
        print(summary(f"{logins} wrong logins at once", await busy))
        print(f"answers: {dict(Counter(statuses))} in {took:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--logins", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(main(args.url.rstrip("/"), args.logins))
