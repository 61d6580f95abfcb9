"""What workers share through Redis (`bot.cluster`), and a service whose Redis is gone.

The sharing tests need Redis on 127.0.0.1:6379 and skip without it; the degradation tests
point the service at a port where nothing listens, so they run everywhere."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from bot.channels.replay import ReplayGuard
from bot.channels.wechat_crypto import SignatureError
from bot.channels.wechat_tokens import AccessTokenCache
from bot.cluster.bus import Bus
from bot.cluster.redis import SharedRedis
from bot.cluster.throttle import Throttle
from bot.cluster.tokens import SharedTokens
from bot.conversation.engine import SharedLockStore
from bot.core.clock import FakeClock
from bot.settings import Settings
from tests.helpers import start_service

REDIS_URL = "redis://127.0.0.1:6379/13"
NOBODY = "redis://127.0.0.1:1/0"


@pytest.fixture
async def shared() -> AsyncIterator[list[SharedRedis]]:
    """Two workers' connections to one Redis, emptied first."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).flushdb()
    except (redis.RedisError, OSError) as e:
        pytest.skip(f"Redis not available on 127.0.0.1:6379: {e}")
    workers = [SharedRedis(REDIS_URL), SharedRedis(REDIS_URL)]
    for worker in workers:
        await worker.open()
    yield workers
    for worker in workers:
        await worker.close()


async def test_every_worker_hears_a_bus_message_once(shared: list[SharedRedis]) -> None:
    heard: dict[str, list[Any]] = {"a": [], "b": []}
    buses = {name: Bus(r, f"worker-{name}") for name, r in zip("ab", shared, strict=True)}
    for name, bus in buses.items():
        bus.subscribe("members", lambda payload, name=name: _note(heard[name], payload))
        bus.start()
    await asyncio.sleep(0.3)  # the listeners subscribe
    await buses["a"].publish("members", {"ticket": 7})
    for _ in range(50):
        if heard["b"]:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # anything doubled would have arrived
    assert heard == {"a": [{"ticket": 7}], "b": [{"ticket": 7}]}
    for bus in buses.values():
        await bus.close()


async def _note(into: list[Any], payload: Any) -> None:
    into.append(payload)


async def test_services_on_two_databases_of_one_redis_do_not_hear_each_other(
    shared: list[SharedRedis],
) -> None:
    other_district = SharedRedis(REDIS_URL.rsplit("/", 1)[0] + "/12")
    await other_district.open()
    heard: list[Any] = []
    listener = Bus(other_district, "district-b")
    listener.subscribe("members", lambda payload: _note(heard, payload))
    listener.start()
    same_database = Bus(shared[1], "worker-b")
    same_database.subscribe("members", lambda payload: _note(heard, payload))
    same_database.start()
    await asyncio.sleep(0.3)  # the listeners subscribe

    await Bus(shared[0], "district-a").publish("members", {"ticket": 7})
    await asyncio.sleep(0.5)

    # Only its own district's worker hears it; pub/sub itself spans every database.
    assert heard == [{"ticket": 7}]
    for bus in (listener, same_database):
        await bus.close()
    await other_district.close()


async def test_login_attempts_count_across_workers(shared: list[SharedRedis]) -> None:
    clock = FakeClock(datetime(2026, 12, 5, 9, tzinfo=UTC))
    workers = [Throttle("login-name", 5, timedelta(minutes=15), clock, r) for r in shared]
    for attempt in range(5):
        assert await workers[attempt % 2].take("王建国") == 0
    # The sixth guess is refused on either worker, for the rest of the window.
    assert await workers[0].take("王建国") == 15 * 60
    clock.advance(minutes=10)
    assert await workers[1].retry_after("王建国") == 5 * 60
    await workers[1].clear("王建国")
    assert await workers[0].take("王建国") == 0


async def test_a_replayed_callback_is_refused_by_the_other_worker(
    shared: list[SharedRedis],
) -> None:
    clock = FakeClock(datetime(2026, 12, 5, 9, tzinfo=UTC))
    a, b = (ReplayGuard(clock, r) for r in shared)
    stamp = str(int(clock.now().timestamp()))
    await a.check("/channels/wechat", stamp, "n-1", b"<xml>leak</xml>")
    await b.check("/channels/wechat", stamp, "n-1", b"<xml>leak</xml>")  # WeChat's own retry
    with pytest.raises(SignatureError):
        await b.check("/channels/wechat", stamp, "n-1", b"<xml>forged</xml>")


async def test_workers_share_one_access_token(shared: list[SharedRedis]) -> None:
    fetched: list[str] = []

    async def fetch() -> tuple[str, int]:
        await asyncio.sleep(0.1)  # the token endpoint takes a moment
        fetched.append(f"token-{len(fetched) + 1}")
        return fetched[-1], 7200

    caches = [AccessTokenCache(fetch, shared=(SharedTokens(r), "wx-app")) for r in shared]
    tokens = await asyncio.gather(*(cache.get() for cache in caches))
    assert tokens == ["token-1", "token-1"] and fetched == ["token-1"]
    # One worker's API call refuses the token: neither uses it again.
    await caches[0].invalidate("token-1")
    fresh = AccessTokenCache(fetch, shared=(SharedTokens(shared[1]), "wx-app"))
    assert await fresh.get() == "token-2"


async def test_without_redis_each_worker_counts_on_its_own() -> None:
    gone = SharedRedis(NOBODY)
    await gone.open()
    clock = FakeClock(datetime(2026, 12, 5, 9, tzinfo=UTC))
    throttle = Throttle("sender", 2, timedelta(minutes=1), clock, gone)
    assert [await throttle.take("r") for _ in range(3)] == [0, 0, 60]
    assert gone.status == "unavailable"
    await gone.close()


async def test_a_service_whose_redis_is_gone_still_answers_and_says_so(
    settings: Settings, aiohttp_client, caplog
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING, logger="bot.cluster.redis")
    service = await start_service(aiohttp_client, settings.with_overrides(redis_url=NOBODY))
    ready = await service.client.get("/readyz")
    assert ready.status == 200
    body = await ready.json()
    assert body["redis"] == "unavailable" and body["status"].startswith("degraded")
    assert "does not answer" in caplog.text

    wang = await service.login("王建国")
    screen = await service.console(wang)
    aunt = await service.resident("张阿姨")
    await aunt.say("3号楼2单元501 厨房水管漏水了")
    assert (await screen.event("ticket.created"))["ticket"]["assignee"]["name"] == "王建国"
    assert "王建国" in (await aunt.hear("bot"))["text"]


async def test_a_turn_lock_left_by_a_killed_worker_frees_with_the_routing_claim(
    shared: list[SharedRedis],
) -> None:
    # The killed worker's lock was taken a claim's length ago; the new one's is fresh.
    dead, alive = SharedLockStore(REDIS_URL, 1.0), SharedLockStore(REDIS_URL, 10.0)
    dead.issue_ticket("wechat:o-aunt")  # a worker killed mid-turn never cleans up after itself
    started = time.monotonic()
    async with alive.lock("wechat:o-aunt", wait_time_in_seconds=0.1):
        waited = time.monotonic() - started
    assert waited < 3.0  # not Rasa's 60 s
