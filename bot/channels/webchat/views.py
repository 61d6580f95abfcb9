"""Webchat pages, residents' identities and the residents' websocket.

`POST /webchat/api/session` issues the identity cookie (`identity.ResidentCookies`); the
socket knows the resident only by it. A neighbours' room is joined with the invite printed on
the grid's poster (`python -m bot grids invite`)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from aiohttp import WSMsgType, web
from sqlalchemy import select

from bot.channels.webchat import privacy
from bot.channels.webchat.identity import (
    MAX_NAME,
    WebchatResident,
    name_is_reserved,
    new_user_id,
)
from bot.channels.webchat.sockets import CHANNEL, resident_view
from bot.conversation import media
from bot.conversation.messages import BOT_NAME, chat_history, message_by_id
from bot.core.chat import ChatRef, Inbound, StoredInbound
from bot.db.models import Grid, Member
from bot.typedefs import (
    identity_throttle_key,
    intake_key,
    resident_cookies_key,
    sessions_key,
    settings_key,
    tickets_key,
    upload_throttle_key,
    webchat_sockets_key,
)
from bot.web.accounts import client_address, json_body
from bot.web.auth import TooManyAttempts
from bot.web.origin import origin_allowed

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parents[2] / "web" / "static"
INVITE = re.compile(r"^[A-Za-z0-9_-]{6,40}$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TEXT = 2000


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "webchat.html")


def _resident(request: web.Request) -> WebchatResident:
    resident = request.app[resident_cookies_key].read(request)
    if resident is None:
        raise web.HTTPUnauthorized(reason="no webchat identity")
    return resident


async def get_session(request: web.Request) -> web.Response:
    return web.json_response({"name": _resident(request).name})


async def post_session(request: web.Request) -> web.Response:
    """Issue an identity, or rename the one this browser holds (display only)."""
    name = str((await json_body(request)).get("name", "")).strip()
    if not 0 < len(name) <= MAX_NAME:
        raise web.HTTPBadRequest(reason=f"name must be 1 to {MAX_NAME} characters")
    async with request.app[sessions_key]() as session:
        members = set((await session.scalars(select(Member.name))).all())
    if name_is_reserved(name, {BOT_NAME, *members}):
        logger.info("webchat name %r refused as reserved", name)
        raise web.HTTPBadRequest(reason="reserved name")
    cookies = request.app[resident_cookies_key]
    held = cookies.read(request)
    if held is None:
        await _count_new_identity(request)
    resident = WebchatResident(held.user_id if held else new_user_id(), name)
    response = web.json_response({"name": resident.name})
    cookies.issue(response, resident)
    return response


async def _count_new_identity(request: web.Request) -> None:
    wait = await request.app[identity_throttle_key].take(client_address(request))
    if wait:
        raise TooManyAttempts(wait)


async def room(request: web.Request) -> web.Response:
    grid = await _grid_by_invite(request, request.match_info["invite"])
    return web.json_response({"id": grid.invite, "name": f"{grid.name}邻里群", "grid": grid.name})


async def _grid_by_invite(request: web.Request, invite: str) -> Grid:
    grid = None
    if INVITE.match(invite):
        async with request.app[sessions_key]() as session:
            grid = await session.scalar(select(Grid).where(Grid.invite == invite))
    if grid is None:
        logger.info("webchat room invite refused")
        raise web.HTTPNotFound(reason="no such room")
    return grid


async def _chat(request: web.Request, resident: WebchatResident) -> ChatRef:
    chat = request.query.get("chat", "private")
    if chat == "private":
        return ChatRef(CHANNEL, "private", resident.user_id, resident.user_id)
    grid = await _grid_by_invite(request, chat)
    return ChatRef(CHANNEL, "group", grid.code, resident.user_id)


async def socket(request: web.Request) -> web.WebSocketResponse:
    if not origin_allowed(request, request.app[settings_key].allowed_origins):
        logger.warning("webchat socket refused for origin %s", request.headers.get("Origin"))
        raise web.HTTPForbidden(reason="origin not allowed")
    resident = _resident(request)
    chat = await _chat(request, resident)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=16 * 1024)
    await ws.prepare(request)
    sockets = request.app[webchat_sockets_key]
    sockets.join(chat, ws)
    try:
        async with request.app[sessions_key]() as session:
            history = await chat_history(session, chat)
        asked = await request.app[tickets_key].aftercare.survey_open(chat.conversation_id)
        shown = [resident_view(m, chat, asked) for m in history]
        await ws.send_json({"type": "history", "messages": shown})
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                await _on_frame(request.app, ws, chat, resident.name, frame.data)
    finally:
        sockets.leave(chat, ws)
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
    # The client's id, scoped to the resident, makes a resend after a reconnect a duplicate.
    stored = await app[intake_key].store(Inbound(chat, f"{chat.user_id}:{client_id}", name, text))
    await ws.send_json({"type": "ack", "id": client_id})
    if stored is not None:
        await _show_and_route(app, chat, stored)


async def _show_and_route(app: web.Application, chat: ChatRef, stored: StoredInbound) -> None:
    async with app[sessions_key]() as session:
        own = await message_by_id(session, stored.message_id)
    # A chat shows the resident's own words too (in a group, to every neighbour).
    await app[webchat_sockets_key].deliver(chat, own)
    app[intake_key].route_later(stored)


async def upload(request: web.Request) -> web.Response:
    """A photo or voice clip, kept as it came (`bot.conversation.media`). Like a WeChat image or
    voice message, it joins the resident's open ticket, or opens one for a person to look at or
    listen to. `?id=` is the page's id for it: a resend is stored once."""
    if not origin_allowed(request, request.app[settings_key].allowed_origins):
        logger.warning("webchat upload refused for origin %s", request.headers.get("Origin"))
        raise web.HTTPForbidden(reason="origin not allowed")
    resident = _resident(request)
    chat = await _chat(request, resident)
    client_id = request.query.get("id", "")
    if not CLIENT_ID.match(client_id):
        raise web.HTTPBadRequest(reason="give 'id': the page's id for this upload")
    data = await _body_within(request, media.MAX_UPLOAD)
    try:
        sniffed = media.check(data, request.content_type)
    except media.UnsupportedMedia as e:
        raise web.HTTPUnsupportedMediaType(reason=str(e)) from e
    except media.TooLarge as e:
        raise web.HTTPRequestEntityTooLarge(media.MAX_UPLOAD, len(data), reason=str(e)) from e
    except media.EmptyUpload as e:
        raise web.HTTPBadRequest(reason=str(e)) from e
    wait = await request.app[upload_throttle_key].take(resident.user_id)
    if wait:
        raise TooManyAttempts(wait, "照片和语音发得太多了")
    sessions = request.app[sessions_key]
    kept = await media.keep(sessions, sniffed, data)
    inbound = Inbound(chat, f"{chat.user_id}:{client_id}", resident.name, "", sniffed.kind, kept)
    stored = await request.app[intake_key].store(inbound)
    await media.attach(sessions, kept, stored.message_id if stored else None)
    if stored is None:
        return web.json_response({"id": client_id, "message_id": None})
    await _show_and_route(request.app, chat, stored)
    return web.json_response({"id": client_id, "message_id": stored.message_id}, status=201)


async def _body_within(request: web.Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is over `limit`: an upload may be far larger than
    the service's usual limit on bodies, but not without end."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(limit, request.content_length)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(limit, size)
        chunks.append(chunk)
    return b"".join(chunks)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/webchat/", page, name="webchat")
    app.router.add_get("/webchat/privacy", privacy.page, name="webchat-privacy")
    app.router.add_get("/webchat/api/session", get_session, name="webchat-session")
    app.router.add_post("/webchat/api/session", post_session, name="webchat-new-session")
    app.router.add_get("/webchat/api/rooms/{invite}", room, name="webchat-room")
    app.router.add_get("/webchat/ws", socket, name="webchat-ws")
    app.router.add_post("/webchat/api/media", upload, name="webchat-media")
