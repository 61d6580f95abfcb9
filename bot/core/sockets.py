"""A registry of open websockets by key, shared by the residents' chat and the members' console."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Hashable, Iterable
from typing import Any, Generic, TypeVar

from aiohttp import web

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class SocketRegistry(Generic[K]):
    def __init__(self) -> None:
        self._by_key: dict[K, set[web.WebSocketResponse]] = defaultdict(set)

    def add(self, key: K, ws: web.WebSocketResponse) -> None:
        self._by_key[key].add(ws)

    def remove(self, key: K, ws: web.WebSocketResponse) -> None:
        sockets = self._by_key.get(key)
        if sockets is not None:
            sockets.discard(ws)
            if not sockets:
                del self._by_key[key]

    def keys(self) -> list[K]:
        return list(self._by_key)

    def sockets(self, keys: Iterable[K]) -> list[web.WebSocketResponse]:
        return [ws for key in keys for ws in list(self._by_key.get(key, ()))]

    async def send(self, keys: Iterable[K], frame: dict[str, Any]) -> None:
        await asyncio.gather(*(self._send(ws, frame) for ws in self.sockets(keys)))

    @staticmethod
    async def _send(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        try:
            await ws.send_json(frame)
        except (ConnectionResetError, RuntimeError):
            logger.info("a socket went away during send")

    async def close_all(self) -> None:
        sockets = [ws for group in self._by_key.values() for ws in group]
        await asyncio.gather(*(ws.close(code=1001) for ws in sockets))
        self._by_key.clear()
