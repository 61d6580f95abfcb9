"""Webchat pages and the residents' websocket."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from aiohttp import WSMsgType, web
from sqlalchemy import select

from bot.channels.base import ChatRef, Inbound
from bot.channels.webchat.sockets import CHANNEL, chat_key
from bot.conversation.messages import chat_history, message_by_id
from bot.db.models import Grid
from bot.typedefs import (
    router_key,
    sessions_key,
    settings_key,
    webchat_sockets_key,
)
from bot.web.origin import origin_allowed

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parents[2] / "web" / "static"
USER_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TEXT = 2000
MAX_NAME = 20


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "webchat.html")


def room_payload(grid: Grid) -> dict[str, str]:
    return {"id": grid.code, "name": f"{grid.name}邻里群", "grid": grid.name}


async def rooms(request: web.Request) -> web.Response:
    async with request.app[sessions_key]() as session:
        grids = (await session.scalars(select(Grid).order_by(Grid.id))).all()
    return web.json_response({"rooms": [room_payload(g) for g in grids]})


async def _chat_from_query(request: web.Request) -> tuple[ChatRef, str]:
    user_id = request.query.get("user_id", "")
    name = request.query.get("name", "").strip()
    chat = request.query.get("chat", "private")
    if not USER_ID.match(user_id) or not 0 < len(name) <= MAX_NAME:
        raise web.HTTPBadRequest(reason="user_id or name missing or invalid")
    if chat == "private":
        return ChatRef(CHANNEL, "private", user_id, user_id), name
    async with request.app[sessions_key]() as session:
        grid = await session.scalar(select(Grid).where(Grid.code == chat))
    if grid is None:
        raise web.HTTPNotFound(reason="no such room")
    return ChatRef(CHANNEL, "group", grid.code, user_id), name


async def socket(request: web.Request) -> web.WebSocketResponse:
    if not origin_allowed(request, request.app[settings_key].allowed_origins):
        logger.warning("webchat socket refused for origin %s", request.headers.get("Origin"))
        raise web.HTTPForbidden(reason="origin not allowed")
    chat, name = await _chat_from_query(request)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=16 * 1024)
    await ws.prepare(request)
    sockets = request.app[webchat_sockets_key]
    sockets.add(chat_key(chat), ws)
    try:
        async with request.app[sessions_key]() as session:
            history = await chat_history(session, chat)
        await ws.send_json({"type": "history", "messages": [m.to_json() for m in history]})
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                await _on_frame(request.app, ws, chat, name, frame.data)
    finally:
        sockets.remove(chat_key(chat), ws)
    return ws


async def _on_frame(
    app: web.Application, ws: web.WebSocketResponse, chat: ChatRef, name: str, data: str
) -> None:
    try:
        frame = json.loads(data)
        client_id, text = frame["id"], frame["text"].strip()
        valid = frame.get("type") == "message" and CLIENT_ID.match(client_id)
    except (ValueError, KeyError, TypeError, AttributeError):
        valid = False
    if not valid or not 0 < len(text) <= MAX_TEXT:
        logger.warning("bad webchat frame from %s", chat.user_id)
        await ws.send_json({"type": "error", "message": "消息没发出去，请再试一次。"})
        return
    router = app[router_key]
    # The client's id, scoped to the resident, makes a resend after a reconnect a duplicate.
    stored = await router.accept(Inbound(chat, f"{chat.user_id}:{client_id}", name, text))
    await ws.send_json({"type": "ack", "id": client_id})
    if stored is None:
        return
    async with app[sessions_key]() as session:
        own = await message_by_id(session, stored.message_id)
    # A chat shows the resident's own words too (in a group, to every neighbour).
    await app[webchat_sockets_key].deliver(chat, own)
    router.process_later(stored)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/webchat/", page, name="webchat")
    app.router.add_get("/webchat/api/rooms", rooms, name="webchat-rooms")
    app.router.add_get("/webchat/ws", socket, name="webchat-ws")
