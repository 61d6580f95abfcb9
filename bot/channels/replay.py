"""Refusing replayed WeChat-family callbacks.

A signature proves who made a query, not when: in plain mode it covers only the token, the
timestamp and the nonce, not the body, so a captured query could carry any body. A callback
is therefore refused when its timestamp is more than five minutes off, or when its nonce was
seen with a different body. WeChat's own retries repeat query and body exactly, pass here, and
are answered once by the message id.

With Redis the nonces are remembered for every worker (a replay sent to another worker is
refused too); without it, each worker remembers its own."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from redis import asyncio as aioredis

from bot.channels.wechat_crypto import SignatureError
from bot.cluster.redis import SharedRedis
from bot.core.clock import Clock

WINDOW = timedelta(seconds=300)
PREFIX = "bot:nonce:"


class ReplayGuard:
    def __init__(
        self, clock: Clock, redis: SharedRedis | None = None, window: timedelta = WINDOW
    ) -> None:
        self._clock = clock
        self._redis = redis
        self._window = window
        # (path, timestamp, nonce) -> (body digest, when first seen)
        self._seen: dict[tuple[str, str, str], tuple[str, datetime]] = {}
        self._next_prune = clock.now() + window

    async def check(self, path: str, timestamp: str, nonce: str, body: bytes) -> None:
        now = self._clock.now()
        if not (timestamp.isascii() and timestamp.isdigit()):
            raise SignatureError("timestamp is not a number")
        skew = abs(now.timestamp() - int(timestamp))
        if skew > self._window.total_seconds():
            raise SignatureError(f"timestamp {skew:.0f} s away from now")
        key, digest = (path, timestamp, nonce), hashlib.sha256(body).hexdigest()
        first = await self._first_shared(":".join(key), digest)
        if first is None:
            self._prune(now)
            first = self._seen.setdefault(key, (digest, now))[0]
        if first != digest:
            raise SignatureError("nonce seen before with another body")

    async def _first_shared(self, key: str, digest: str) -> str | None:
        """The body digest first seen with this nonce by any worker; None without Redis."""
        if self._redis is None:
            return None
        # A nonce must be remembered while its timestamp can still pass: two windows.
        ttl = int(2 * self._window.total_seconds())

        async def remember(client: aioredis.Redis) -> str:
            if await client.set(PREFIX + key, digest, nx=True, ex=ttl):
                return digest
            first = await client.get(PREFIX + key)
            return first.decode() if first is not None else digest

        return await self._redis.run(remember)

    def _prune(self, now: datetime) -> None:
        # A nonce must be remembered while its timestamp can still pass: two windows.
        if now < self._next_prune:
            return
        oldest = now - 2 * self._window
        self._seen = {k: v for k, v in self._seen.items() if v[1] > oldest}
        self._next_prune = now + self._window
