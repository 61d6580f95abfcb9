"""The handoff channel API for party members (contract in docs/api.md)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import WSMsgType, web
from sqlalchemy import select

from bot.db.models import Member
from bot.handoff.access import Viewer
from bot.handoff.payloads import event_payload, member_payload, ticket_payload
from bot.handoff.states import Status
from bot.typedefs import hub_key, sessions_key, settings_key, tickets_key
from bot.web.auth import issue_token, member_for_token, password_matches
from bot.web.origin import origin_allowed

logger = logging.getLogger(__name__)

MAX_REPLY = 2000
STATUS_FILTERS = {"open", *(s.value for s in Status)}


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as e:
        raise web.HTTPBadRequest(reason="body is not JSON") from e
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="body must be a JSON object")
    return body


async def _member(request: web.Request, token: str) -> Member:
    async with request.app[sessions_key]() as session:
        member = await member_for_token(session, token)
    if member is None:
        raise web.HTTPUnauthorized(reason="missing or invalid token")
    return member


async def viewer(request: web.Request) -> Viewer:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise web.HTTPUnauthorized(reason="missing or invalid token")
    return Viewer.of(await _member(request, token.strip()))


def _ticket_id(request: web.Request) -> int:
    try:
        return int(request.match_info["ticket_id"])
    except ValueError as e:
        raise web.HTTPNotFound(reason="no such ticket") from e


async def login(request: web.Request) -> web.Response:
    body = await _json_body(request)
    name, password = str(body.get("name", "")).strip(), str(body.get("password", ""))
    async with request.app[sessions_key]() as session, session.begin():
        member = await session.scalar(select(Member).where(Member.name == name))
        if member is None or not password_matches(member, password):
            logger.warning("failed console login for %r", name)
            raise web.HTTPUnauthorized(reason="wrong name or password")
        token = await issue_token(session, member)
    return web.json_response({"token": token, "member": member_payload(member)})


async def me(request: web.Request) -> web.Response:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise web.HTTPUnauthorized(reason="missing or invalid token")
    return web.json_response(member_payload(await _member(request, token.strip())))


async def list_tickets(request: web.Request) -> web.Response:
    status = request.query.get("status") or None
    if status is not None and status not in STATUS_FILTERS:
        raise web.HTTPBadRequest(reason=f"status must be one of {sorted(STATUS_FILTERS)}")
    tickets = await request.app[tickets_key].visible_tickets(await viewer(request), status)
    return web.json_response({"tickets": [ticket_payload(t) for t in tickets]})


async def get_ticket(request: web.Request) -> web.Response:
    detail = await request.app[tickets_key].detail(await viewer(request), _ticket_id(request))
    payload = ticket_payload(detail.ticket)
    payload["messages"] = [m.to_json() for m in detail.messages]
    payload["events"] = [event_payload(e) for e in detail.events]
    return web.json_response(payload)


async def claim(request: web.Request) -> web.Response:
    ticket = await request.app[tickets_key].claim(await viewer(request), _ticket_id(request))
    return web.json_response(ticket_payload(ticket))


async def reply(request: web.Request) -> web.Response:
    who = await viewer(request)
    text = str((await _json_body(request)).get("text", "")).strip()
    if not 0 < len(text) <= MAX_REPLY:
        raise web.HTTPBadRequest(reason=f"text must be 1 to {MAX_REPLY} characters")
    message = await request.app[tickets_key].reply(who, _ticket_id(request), text)
    return web.json_response(message.to_json())


async def resolve(request: web.Request) -> web.Response:
    who = await viewer(request)
    note = str((await _json_body(request)).get("note", "")).strip()[:MAX_REPLY]
    ticket = await request.app[tickets_key].resolve(who, _ticket_id(request), note)
    return web.json_response(ticket_payload(ticket))


async def events_socket(request: web.Request) -> web.WebSocketResponse:
    if not origin_allowed(request, request.app[settings_key].allowed_origins):
        raise web.HTTPForbidden(reason="origin not allowed")
    who = Viewer.of(await _member(request, request.query.get("token", "")))
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    hub = request.app[hub_key]
    hub.add(who, ws)
    try:
        async for frame in ws:
            if frame.type == WSMsgType.ERROR:
                break
    finally:
        hub.remove(who, ws)
    return ws


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/login", login, name="api-login")
    app.router.add_get("/api/me", me, name="api-me")
    app.router.add_get("/api/tickets", list_tickets, name="api-tickets")
    app.router.add_get("/api/tickets/{ticket_id}", get_ticket, name="api-ticket")
    app.router.add_post("/api/tickets/{ticket_id}/claim", claim, name="api-claim")
    app.router.add_post("/api/tickets/{ticket_id}/reply", reply, name="api-reply")
    app.router.add_post("/api/tickets/{ticket_id}/resolve", resolve, name="api-resolve")
    app.router.add_get("/api/ws", events_socket, name="api-ws")
