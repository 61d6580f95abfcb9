"""Counting attempts per key in a sliding window: wrong passwords per account and per address,
new webchat identities per address, messages per sender.

In-process memory: each worker counts for itself (a shared store is the scale issue's work)."""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta

from bot.core.clock import Clock

# Idle keys are forgotten once this many are held, so memory does not grow with every address.
PRUNE_AT = 4096


class Throttle:
    def __init__(self, limit: int, window: timedelta, clock: Clock) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._hits: dict[str, deque[datetime]] = {}

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it may now."""
        hits = self._recent(key)
        if len(hits) < self._limit:
            return 0
        wait = hits[0] + self._window - self._clock.now()
        return max(1, math.ceil(wait.total_seconds()))

    def take(self, key: str) -> int:
        """Count one attempt if `key` may try now (0); else the seconds to wait, uncounted."""
        wait = self.retry_after(key)
        if not wait:
            self.record(key)
        return wait

    def record(self, key: str) -> None:
        if len(self._hits) >= PRUNE_AT:
            self._prune()
        self._hits.setdefault(key, deque()).append(self._clock.now())

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)

    def _recent(self, key: str) -> deque[datetime]:
        hits = self._hits.get(key, deque())
        since = self._clock.now() - self._window
        while hits and hits[0] <= since:
            hits.popleft()
        return hits

    def _prune(self) -> None:
        since = self._clock.now() - self._window
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= since]:
            del self._hits[key]
