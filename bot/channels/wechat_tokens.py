"""The access token each WeChat / WeCom app needs on every API call, cached in one place.

The clients in `bot.channels.wechat_api` fetch it through `AccessTokenCache` and invalidate it
when an API answers 40001 / 42001 / 40014. Logs never carry the token itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.channels.wechat_errors import NO_ERRCODE, WechatApiError, errcode_of, error_for
from bot.cluster.tokens import SharedTokens
from bot.core.clock import Clock, SystemClock

__all__ = ["DEFAULT_EXPIRES_IN", "AccessTokenCache", "token_from"]

logger = logging.getLogger(__name__)

DEFAULT_EXPIRES_IN = 7200
_LONG_AGO = datetime.min.replace(tzinfo=UTC)


class AccessTokenCache:
    """One token per app, refreshed in one place: early (before expiry, when less than
    `refresh_margin` seconds are left), and when an API call reports 40001/42001/40014.
    Concurrent callers share one refresh (asyncio.Lock, single flight).

    Callers queued behind a refresh that failed get that same failure instead of each trying
    the token endpoint again. An early refresh that fails leaves the current token in use
    until it really expires.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[tuple[str, int]]],
        *,
        clock: Clock | None = None,
        refresh_margin: float = 300.0,
        shared: tuple[SharedTokens, str] | None = None,
    ) -> None:
        # With other workers: the token they share (`bot.cluster.tokens`), and the app's name.
        self._shared = shared
        self._fetch = shared[0].fetcher(shared[1], fetch) if shared else fetch
        self._clock = clock or SystemClock()
        self._margin = refresh_margin
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._refresh_at = _LONG_AGO
        self._expires_at = _LONG_AGO
        # Fetches ended (well or not): tells a waiter whether one ended while it queued.
        self._finished = 0
        self._failure: Exception | None = None

    async def get(self) -> str:
        token = self._fresh()
        if token is not None:
            return token
        finished_before = self._finished
        async with self._lock:
            token = self._fresh()
            if token is not None:
                return token
            if self._finished != finished_before and self._failure is not None:
                return self._fallback(self._failure)
            return await self._refresh()

    async def invalidate(self, token: str) -> None:
        """Drops `token` only if it is still the cached one, so that several callers failing
        with the same old token cause one refresh, not one each."""
        if token == self._token:
            self._token = None
            logger.info("access token invalidated")
            if self._shared is not None:
                await self._shared[0].forget(self._shared[1], token)

    def _fresh(self) -> str | None:
        if self._token is not None and self._clock.now() < self._refresh_at:
            return self._token
        return None

    async def _refresh(self) -> str:
        # Cleared first so that a cancelled fetch never hands an older failure to waiters.
        self._failure = None
        try:
            token, expires_in = await self._fetch()
        except Exception as exc:
            self._failure = exc
            return self._fallback(exc)
        finally:
            self._finished += 1
        now = self._clock.now()
        # Short-lived tokens would otherwise be "due for refresh" the moment they arrive.
        margin = min(self._margin, expires_in / 2)
        self._token = token
        self._refresh_at = now + timedelta(seconds=expires_in - margin)
        self._expires_at = now + timedelta(seconds=expires_in)
        logger.info("access token fetched, valid for %d s", expires_in)
        return token

    def _fallback(self, failure: Exception) -> str:
        if self._token is not None and self._clock.now() < self._expires_at:
            logger.warning(
                "access token refresh failed (%s); the current one is used until it expires",
                type(failure).__name__,
            )
            return self._token
        raise failure


def token_from(payload: Mapping[str, Any]) -> tuple[str, int]:
    """The token and its lifetime in seconds from a token endpoint's answer."""
    token = payload.get("access_token")
    if errcode_of(payload) != 0:
        raise error_for(payload)
    if not isinstance(token, str) or not token:
        raise WechatApiError(NO_ERRCODE, "the token answer has no access_token")
    try:
        expires_in = int(payload.get("expires_in", DEFAULT_EXPIRES_IN))
    except (TypeError, ValueError):
        expires_in = DEFAULT_EXPIRES_IN
    return token, max(1, expires_in)
