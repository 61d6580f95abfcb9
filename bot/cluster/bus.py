"""Messages every worker hears: console events, lines for residents' open webchats, and
"a message waits to be routed".

A worker hands a message to its own subscribers at once and publishes it on Redis for the
others, who skip what they sent themselves. Without Redis (one worker, or Redis gone) only
the local subscribers hear it: a member connected to another worker misses it until Redis is
back, and `/readyz` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from bot.cluster.redis import SharedRedis

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]
RECONNECT_S = 1.0


def channel_prefix(redis: SharedRedis) -> str:
    """Redis's pub/sub channels are one space for every database on the server: services on
    databases 1 and 2 of one Redis (two districts, a staging copy) must not hear each other's
    console events, so the database is in the channel name."""
    return f"bot:{redis.database}:bus:"


class Bus:
    def __init__(self, redis: SharedRedis, origin: str) -> None:
        self._redis = redis
        self._origin = origin
        self._prefix = channel_prefix(redis)
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._listener: asyncio.Task[None] | None = None

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        await self._hand_out(topic, payload)
        if self._redis.configured:
            body = json.dumps({"origin": self._origin, "payload": payload}, ensure_ascii=False)
            await self._redis.run(lambda client: client.publish(self._prefix + topic, body))

    def start(self) -> None:
        if self._redis.configured:
            self._listener = asyncio.create_task(self._listen(), name="bus-listener")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def _hand_out(self, topic: str, payload: dict[str, Any]) -> None:
        for handler in self._handlers.get(topic, ()):
            try:
                await handler(payload)
            except Exception:
                logger.exception("bus handler for %s failed", topic)

    async def _listen(self) -> None:
        # A connection of its own: it waits for messages without the commands' timeout, and
        # pings now and then to notice a Redis that went away.
        client = aioredis.Redis.from_url(self._redis.url, health_check_interval=10)
        try:
            while True:
                if not self._redis.up:
                    # `SharedRedis` tells when Redis is gone, and finds when it is back.
                    await asyncio.sleep(RECONNECT_S)
                    continue
                try:
                    async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                        await pubsub.subscribe(*(self._prefix + topic for topic in self._handlers))
                        await self._receive(pubsub)
                except (RedisError, OSError) as e:
                    logger.info("bus lost Redis (%s); listening again once it answers", e)
                    await asyncio.sleep(RECONNECT_S)
        finally:
            await client.close(close_connection_pool=True)

    async def _receive(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            envelope = json.loads(message["data"])
            if envelope["origin"] == self._origin:
                continue
            topic = message["channel"].decode()[len(self._prefix) :]
            await self._hand_out(topic, envelope["payload"])
