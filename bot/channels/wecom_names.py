"""Residents' names as WeCom knows them, so a group answer can greet a resident by name."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from bot.channels.wechat_api import WecomApi
from bot.channels.wechat_errors import WechatApiError
from bot.core.chat import Inbound

logger = logging.getLogger(__name__)

# A name is nice to have; the callback's answer must not wait long for it.
NAME_WAIT = 1.5


class ResidentNames:
    """Names of WeCom users and external contacts, so a group answer can greet a resident by
    name. Looked up once per user, with a short wait: a missing name must not delay the ack."""

    def __init__(self, api: WecomApi | None, capacity: int = 4096) -> None:
        self._api = api
        self._known: OrderedDict[str, str] = OrderedDict()
        self._capacity = capacity

    async def name(self, inbound: Inbound) -> str:
        user = inbound.chat.user_id
        if user in self._known:
            self._known.move_to_end(user)
            return self._known[user]
        if self._api is None:
            return inbound.user_name
        try:
            found = await asyncio.wait_for(self._api.user_name(user), NAME_WAIT) or ""
        except (WechatApiError, TimeoutError) as failed:
            logger.info("no name for a wecom user: %r", failed)
            return inbound.user_name
        self._known[user] = found
        if len(self._known) > self._capacity:
            self._known.popitem(last=False)
        return found
