"""Counting attempts per key in a sliding window: wrong passwords per account and per address,
new webchat identities per address, messages per sender.

With Redis every worker counts into one sorted set per key, so a guesser spreading attempts
over workers is held back as if there were one; without it (or while it is down) each worker
counts for itself."""

from __future__ import annotations

import math
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from redis import asyncio as aioredis

from bot.cluster.redis import SharedRedis
from bot.core.clock import Clock

# Idle keys are forgotten once this many are held, so memory does not grow with every address.
PRUNE_AT = 4096
PREFIX = "bot:throttle:"
T = TypeVar("T")


class Throttle:
    def __init__(
        self,
        name: str,
        limit: int,
        window: timedelta,
        clock: Clock,
        redis: SharedRedis | None = None,
    ) -> None:
        self._name = name
        self._limit = limit
        self._window = window
        self._clock = clock
        self._redis = redis
        self._hits: dict[str, deque[datetime]] = {}

    async def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it may now."""
        oldest, count = await self._shared_recent(key) or self._recent(key)
        if count < self._limit or oldest is None:
            return 0
        wait = oldest + self._window.total_seconds() - self._clock.now().timestamp()
        return max(1, math.ceil(wait))

    async def take(self, key: str) -> int:
        """Count one attempt if `key` may try now (0); else the seconds to wait, uncounted."""
        wait = await self.retry_after(key)
        if not wait:
            await self.record(key)
        return wait

    async def record(self, key: str) -> None:
        now = self._clock.now()
        if not await self._shared(lambda c: self._record_shared(c, key, now)):
            if len(self._hits) >= PRUNE_AT:
                self._prune()
            self._hits.setdefault(key, deque()).append(now)

    async def clear(self, key: str) -> None:
        self._hits.pop(key, None)
        await self._shared(lambda c: c.delete(self._key(key)))

    def _key(self, key: str) -> str:
        return f"{PREFIX}{self._name}:{key}"

    async def _shared(self, command: Callable[[aioredis.Redis], Awaitable[T]]) -> T | None:
        return None if self._redis is None else await self._redis.run(command)

    async def _shared_recent(self, key: str) -> tuple[float | None, int] | None:
        return await self._shared(lambda c: self._recent_shared(c, key))

    async def _recent_shared(self, client: aioredis.Redis, key: str) -> tuple[float | None, int]:
        since = (self._clock.now() - self._window).timestamp()
        async with client.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(self._key(key), "-inf", since)
            pipe.zrange(self._key(key), 0, 0, withscores=True)
            pipe.zcard(self._key(key))
            _, first, count = await pipe.execute()
        return (first[0][1] if first else None), int(count)

    async def _record_shared(self, client: aioredis.Redis, key: str, now: datetime) -> bool:
        hit = f"{now.timestamp()}:{secrets.token_hex(4)}"
        async with client.pipeline(transaction=True) as pipe:
            pipe.zadd(self._key(key), {hit: now.timestamp()})
            pipe.expire(self._key(key), math.ceil(self._window.total_seconds()) + 1)
            await pipe.execute()
        return True

    def _recent(self, key: str) -> tuple[float | None, int]:
        hits = self._hits.get(key, deque())
        since = self._clock.now() - self._window
        while hits and hits[0] <= since:
            hits.popleft()
        return (hits[0].timestamp() if hits else None), len(hits)

    def _prune(self) -> None:
        since = self._clock.now() - self._window
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= since]:
            del self._hits[key]
