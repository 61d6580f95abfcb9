"""The Redis several workers share, and an honest account of when it is missing.

Every shared piece (`bot.cluster`) asks `SharedRedis.client` for the connection; None means
"this worker's own memory": Redis is not configured (one worker, `make demo`), or it stopped
answering. Then the piece falls back to memory, the service keeps serving, a warning is
logged once, and `/readyz` reports the degradation until Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis import asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

T = TypeVar("T")
# How long a command may take before Redis counts as gone; callbacks must answer fast.
COMMAND_TIMEOUT_S = 1.0
# How often a degraded worker tries Redis again.
RETRY_S = 5.0


class SharedRedis:
    def __init__(self, url: str) -> None:
        self.url = url
        self._client: aioredis.Redis | None = (
            aioredis.Redis.from_url(
                url, socket_timeout=COMMAND_TIMEOUT_S, socket_connect_timeout=COMMAND_TIMEOUT_S
            )
            if url
            else None
        )
        # None until the first check: a Redis missing from the start is worth a warning too.
        self._up: bool | None = None
        self._probe: asyncio.Task[None] | None = None

    @property
    def configured(self) -> bool:
        return self._client is not None

    @property
    def database(self) -> int:
        """The Redis database number in the URL (0 when none is given)."""
        if self._client is None:
            return 0
        return int(self._client.connection_pool.connection_kwargs.get("db", 0))

    @property
    def client(self) -> aioredis.Redis | None:
        """The connection while Redis answers; None when unconfigured or down."""
        return self._client if self._up else None

    @property
    def up(self) -> bool:
        return bool(self._up)

    @property
    def status(self) -> str:
        if not self.configured:
            return "not configured"
        return "ok" if self._up else "unavailable"

    async def open(self) -> None:
        if self._client is None:
            return
        await self._check()
        self._probe = asyncio.create_task(self._keep_checking(), name="redis-probe")

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        if self._client is not None:
            await self._client.close(close_connection_pool=True)

    async def run(self, command: Callable[[aioredis.Redis], Awaitable[T]]) -> T | None:
        """`command` on Redis; None (and degraded) when Redis is down or unconfigured."""
        client = self.client
        if client is None:
            return None
        try:
            return await command(client)
        except (RedisError, OSError, TimeoutError) as e:
            self._went_down(e)
            return None

    def _went_down(self, cause: BaseException) -> None:
        if self._up is not False:
            logger.warning(
                "Redis at %s does not answer (%s): this worker runs on its own memory",
                self.url,
                cause,
            )
        self._up = False

    async def _check(self) -> None:
        assert self._client is not None
        try:
            await self._client.ping()
        except (RedisError, OSError, TimeoutError) as e:
            self._went_down(e)
            return
        if not self._up:
            logger.info("Redis at %s answers: shared state in use", self.url)
        self._up = True

    async def _keep_checking(self) -> None:
        while True:
            await asyncio.sleep(RETRY_S)
            await self._check()
