"""Outbound messages: stored first, then handed to the channel that owns the chat."""

from __future__ import annotations

import logging

from sqlalchemy.orm import sessionmaker

from bot.channels.base import ChannelSender, ChatMessage, ChatRef
from bot.conversation.messages import chat_message, store_outbound

logger = logging.getLogger(__name__)


class Delivery:
    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions
        self._senders: dict[str, ChannelSender] = {}

    def register(self, channel: str, sender: ChannelSender) -> None:
        self._senders[channel] = sender

    async def send(
        self,
        chat: ChatRef,
        text: str,
        *,
        member_id: int | None = None,
        ticket_id: int | None = None,
    ) -> ChatMessage:
        async with self._sessions() as session, session.begin():
            message = chat_message(
                await store_outbound(session, chat, text, member_id=member_id, ticket_id=ticket_id)
            )
        sender = self._senders.get(chat.channel)
        if sender is None:
            logger.error("no sender for channel %s; message %s kept", chat.channel, message.id)
        else:
            await sender.deliver(chat, message)
        return message
