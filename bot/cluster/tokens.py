"""One access token per WeChat or WeCom app for every worker.

Fetching a new access token ends the previous one a few minutes later, so workers that each
fetched their own would keep ending each other's. With Redis the token lives there: one
worker fetches it (holding a short lock), the others read it. Without Redis each worker
fetches its own, which is right for one worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis import asyncio as aioredis

from bot.cluster.redis import SharedRedis

logger = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[tuple[str, int]]]
PREFIX = "bot:token:"
# Longer than a token endpoint takes to answer; a worker that died holding it frees it then.
FETCH_LOCK_S = 10
WAIT_STEP_S = 0.1


class SharedTokens:
    def __init__(self, redis: SharedRedis) -> None:
        self._redis = redis

    def fetcher(self, app: str, fetch: Fetch) -> Fetch:
        """`fetch`, asked only when no worker holds a live token for `app`."""

        async def shared() -> tuple[str, int]:
            if self._redis.client is None:
                return await fetch()
            held = await self._redis.run(lambda c: _held(c, app))
            if held is not None and held[0]:
                return held
            if await self._redis.run(lambda c: c.set(_lock(app), 1, nx=True, ex=FETCH_LOCK_S)):
                return await self._fetch_for_all(app, fetch)
            return await self._wait_for_other(app, fetch)

        return shared

    async def forget(self, app: str, token: str) -> None:
        """An API refused `token`: no worker should use it again."""

        async def drop(client: aioredis.Redis) -> None:
            current = await client.get(PREFIX + app)
            if current is not None and current.decode() == token:
                await client.delete(PREFIX + app)

        await self._redis.run(drop)

    async def _fetch_for_all(self, app: str, fetch: Fetch) -> tuple[str, int]:
        try:
            token, expires_in = await fetch()
            await self._redis.run(lambda c: c.set(PREFIX + app, token, ex=expires_in))
            return token, expires_in
        finally:
            await self._redis.run(lambda c: c.delete(_lock(app)))

    async def _wait_for_other(self, app: str, fetch: Fetch) -> tuple[str, int]:
        for _ in range(int(FETCH_LOCK_S / WAIT_STEP_S)):
            await asyncio.sleep(WAIT_STEP_S)
            held = await self._redis.run(lambda c: _held(c, app))
            if held is not None and held[0]:
                return held
        logger.warning("no access token from another worker for %s; fetching one here", app)
        return await fetch()


def _lock(app: str) -> str:
    return f"{PREFIX}{app}:fetching"


async def _held(client: aioredis.Redis, app: str) -> tuple[str, int]:
    async with client.pipeline(transaction=False) as pipe:
        pipe.get(PREFIX + app)
        pipe.ttl(PREFIX + app)
        token, ttl = await pipe.execute()
    return (token.decode(), int(ttl)) if token is not None and ttl > 0 else ("", 0)
