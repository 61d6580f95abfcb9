"""The handoff channel API for party members (contract in docs/api.md)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web
from multidict import MultiMapping
from sqlalchemy import select

from bot.conversation import media
from bot.core.categories import CATEGORY_LABELS
from bot.db.models import Member, Ticket
from bot.handoff.access import Actor
from bot.handoff.holding import Visit
from bot.handoff.ledger import visible_ticket
from bot.handoff.payloads import (
    console_message,
    earlier_payload,
    event_payload,
    member_payload,
    possible_payload,
    reporter_payload,
    ticket_payload,
)
from bot.handoff.queries import STATUS_GROUPS, TicketFilter
from bot.handoff.roles import Action
from bot.handoff.schedule import LOCAL
from bot.handoff.states import Status
from bot.typedefs import (
    clock_key,
    hub_key,
    possible_key,
    sessions_key,
    settings_key,
    tickets_key,
)
from bot.web.accounts import actor, json_body, socket_member
from bot.web.origin import origin_allowed

logger = logging.getLogger(__name__)

MAX_REPLY = 2000
MAX_REASON = 200
MAX_SEARCH = 50
STATUS_FILTERS = {*STATUS_GROUPS, *(s.value for s in Status)}


def _id_in_path(request: web.Request, key: str, what: str) -> int:
    try:
        return int(request.match_info[key])
    except ValueError as e:
        raise web.HTTPNotFound(reason=f"no such {what}") from e


def ticket_id_of(request: web.Request) -> int:
    return _id_in_path(request, "ticket_id", "ticket")


def ticket_filter(query: MultiMapping[str]) -> TicketFilter:
    """The list's filters from the query string; anything unknown is a 400."""
    status = query.get("status") or None
    if status is not None and status not in STATUS_FILTERS:
        raise web.HTTPBadRequest(reason=f"status must be one of {sorted(STATUS_FILTERS)}")
    category = query.get("category") or None
    if category is not None and category not in CATEGORY_LABELS:
        raise web.HTTPBadRequest(reason=f"category must be one of {sorted(CATEGORY_LABELS)}")
    try:
        member = int(query["member"]) if query.get("member") else None
    except ValueError as e:
        raise web.HTTPBadRequest(reason="member must be a member id") from e
    text = query.get("q", "").strip()[:MAX_SEARCH] or None
    return TicketFilter(status, category, query.get("grid") or None, member, text)


async def list_tickets(request: web.Request) -> web.Response:
    who = await actor(request, Action.TICKETS)
    tickets = await request.app[tickets_key].queries.visible_tickets(
        who, ticket_filter(request.query)
    )
    return web.json_response({"tickets": [ticket_payload(t) for t in tickets]})


async def get_ticket(request: web.Request) -> web.Response:
    who = await actor(request, Action.TICKETS)
    detail = await request.app[tickets_key].queries.detail(who, ticket_id_of(request))
    payload = ticket_payload(detail.ticket)
    payload["messages"] = [console_message(m) for m in detail.messages]
    payload["events"] = [event_payload(e) for e in detail.events]
    payload["earlier"] = [earlier_payload(t) for t in detail.earlier]
    payload["reporters"] = [reporter_payload(t) for t in detail.reporters]
    return web.json_response(payload)


async def media_file(request: web.Request) -> web.Response:
    """A photo or voice clip a resident sent through the webchat, for members who may see the
    ticket its message went to; 404 while it went to none."""
    who = await actor(request, Action.TICKETS)
    token = request.match_info["token"]
    async with request.app[sessions_key]() as session:
        found = await media.media_file(session, token)
        if found is None:
            raise web.HTTPNotFound(reason="no such photo or voice clip")
        kept, ticket_id = found
        await visible_ticket(session, who, ticket_id)
    return web.Response(
        body=kept.data,
        content_type=kept.content_type,
        # A resident's photo stays out of shared caches and off the disk of the browser.
        headers={"Cache-Control": "private, no-store"},
    )


async def reveal_phone(request: web.Request) -> web.Response:
    phone = await request.app[tickets_key].holding.reveal_phone(
        await actor(request, Action.PHONE), ticket_id_of(request)
    )
    return web.json_response({"phone": phone})


async def transfer(request: web.Request) -> web.Response:
    who = await actor(request, Action.HOLD)
    body = await json_body(request)
    try:
        to_member = int(body["to"])
    except (KeyError, TypeError, ValueError) as e:
        raise web.HTTPBadRequest(reason="give 'to': a member id") from e
    reason = _reason(body)
    ticket = await request.app[tickets_key].holding.transfer(
        who, ticket_id_of(request), to_member, reason
    )
    return web.json_response(ticket_payload(ticket))


async def hand_back(request: web.Request) -> web.Response:
    who = await actor(request, Action.HOLD)
    reason = _reason(await json_body(request))
    ticket = await request.app[tickets_key].holding.hand_back(who, ticket_id_of(request), reason)
    return web.json_response(ticket_payload(ticket))


def _reason(body: dict[str, Any]) -> str:
    reason = str(body.get("reason", "")).strip()[:MAX_REASON]
    if not reason:
        raise web.HTTPBadRequest(reason="give a reason")
    return reason


def _visit(body: dict[str, Any]) -> Visit | None:
    visit = body.get("visit")
    if visit is None:
        return None
    try:
        at = datetime.fromisoformat(str(visit["at"]))
        outcome = str(visit.get("outcome", "")).strip()[:MAX_REPLY]
    except (KeyError, TypeError, ValueError) as e:
        raise web.HTTPBadRequest(reason="visit needs 'at' (ISO time) and 'outcome'") from e
    # A time typed without a zone is Beijing time, as the console shows it.
    return Visit((at if at.tzinfo else at.replace(tzinfo=LOCAL)).astimezone(UTC), outcome)


async def list_members(request: web.Request) -> web.Response:
    who = await actor(request, Action.MEMBERS)
    now = request.app[clock_key].now()
    query = (
        select(Member)
        .where(Member.active.is_(True), who.reached_by(Member.community_id))
        .order_by(Member.id)
    )
    async with request.app[sessions_key]() as session:
        members = (await session.scalars(query)).all()
    return web.json_response({"members": [member_payload(m, now) for m in members]})


async def transfer_targets(request: web.Request) -> web.Response:
    """The colleagues the ticket may be handed to, each with their open tickets."""
    colleagues = await request.app[tickets_key].queries.transfer_targets(
        await actor(request, Action.HOLD), ticket_id_of(request), request.app[clock_key].now()
    )
    return web.json_response(
        {
            "members": [
                {**member_payload(c.member), "on_duty": c.on_duty, "open_tickets": c.open_tickets}
                for c in colleagues
            ]
        }
    )


async def merge_candidates(request: web.Request) -> web.Response:
    """The open tickets this one may be merged into, the likeliest first."""
    tickets = await request.app[tickets_key].queries.merge_candidates(
        await actor(request, Action.HOLD), ticket_id_of(request)
    )
    return web.json_response({"tickets": [ticket_payload(t) for t in tickets]})


async def _one_tap(
    request: web.Request, act: Callable[[Actor, int], Awaitable[Ticket]]
) -> web.Response:
    """A member's one-tap action on the ticket in the path, answered with the ticket."""
    who = await actor(request, Action.HOLD)
    return web.json_response(ticket_payload(await act(who, ticket_id_of(request))))


async def claim(request: web.Request) -> web.Response:
    return await _one_tap(request, request.app[tickets_key].holding.claim)


async def reply(request: web.Request) -> web.Response:
    who = await actor(request, Action.HOLD)
    body = await json_body(request)
    text = str(body.get("text", "")).strip()
    if not 0 < len(text) <= MAX_REPLY:
        raise web.HTTPBadRequest(reason=f"text must be 1 to {MAX_REPLY} characters")
    to_all = body.get("all") is True
    message = await request.app[tickets_key].holding.reply(who, ticket_id_of(request), text, to_all)
    return web.json_response(console_message(message))


async def confirm_urgent(request: web.Request) -> web.Response:
    return await _one_tap(request, request.app[tickets_key].urgency.confirm)


async def not_urgent(request: web.Request) -> web.Response:
    return await _one_tap(request, request.app[tickets_key].urgency.not_urgent)


async def merge(request: web.Request) -> web.Response:
    who = await actor(request, Action.HOLD)
    try:
        into = int((await json_body(request))["into"])
    except (KeyError, TypeError, ValueError) as e:
        raise web.HTTPBadRequest(reason="give 'into': the incident's ticket id") from e
    ticket = await request.app[tickets_key].holding.merge(who, ticket_id_of(request), into)
    return web.json_response(ticket_payload(ticket))


async def split(request: web.Request) -> web.Response:
    return await _one_tap(request, request.app[tickets_key].holding.split)


async def resolve(request: web.Request) -> web.Response:
    who = await actor(request, Action.HOLD)
    body = await json_body(request)
    note = str(body.get("note", "")).strip()[:MAX_REPLY]
    visit = _visit(body)
    ticket = await request.app[tickets_key].holding.resolve(who, ticket_id_of(request), note, visit)
    return web.json_response(ticket_payload(ticket))


def possible_id_of(request: web.Request) -> int:
    return _id_in_path(request, "possible_id", "possible request")


async def list_possible_requests(request: web.Request) -> web.Response:
    possible = await request.app[possible_key].open_for(await actor(request, Action.POSSIBLE))
    return web.json_response({"possible_requests": [possible_payload(p) for p in possible]})


async def confirm_possible_request(request: web.Request) -> web.Response:
    possible = await request.app[possible_key].confirm(
        await actor(request, Action.POSSIBLE), possible_id_of(request)
    )
    return web.json_response(possible_payload(possible))


async def dismiss_possible_request(request: web.Request) -> web.Response:
    possible = await request.app[possible_key].dismiss(
        await actor(request, Action.POSSIBLE), possible_id_of(request)
    )
    return web.json_response(possible_payload(possible))


async def events_socket(request: web.Request) -> web.WebSocketResponse:
    if not origin_allowed(request, request.app[settings_key].allowed_origins):
        raise web.HTTPForbidden(reason="origin not allowed")
    who = Actor.of(await socket_member(request))
    since = _last_event_id(request)
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    hub = request.app[hub_key]
    # Added first: an event during the catch-up arrives live, maybe also in it (consoles skip
    # ids they have).
    hub.add(who, ws)
    try:
        missed = await hub.missed(who, since) if since is not None else []
        for event in missed:
            await ws.send_json(event)
        await ws.send_json(
            {"type": "ready", "last_event_id": await hub.latest(), "missed": len(missed)}
        )
        async for frame in ws:
            if frame.type == WSMsgType.ERROR:
                break
            if frame.type == WSMsgType.TEXT and frame.data == "ping":
                # The page's own check that the connection still carries something.
                await ws.send_json({"type": "pong"})
    finally:
        hub.remove(who, ws)
    return ws


def _last_event_id(request: web.Request) -> int | None:
    """`since`: the last event id a reconnecting console saw."""
    since = request.query.get("since")
    if since is None:
        return None
    if not since.isdigit():
        raise web.HTTPBadRequest(reason="since must be an event id")
    return int(since)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/tickets", list_tickets, name="api-tickets")
    app.router.add_get("/api/tickets/{ticket_id}", get_ticket, name="api-ticket")
    app.router.add_post("/api/tickets/{ticket_id}/claim", claim, name="api-claim")
    app.router.add_post("/api/tickets/{ticket_id}/reply", reply, name="api-reply")
    app.router.add_post("/api/tickets/{ticket_id}/resolve", resolve, name="api-resolve")
    app.router.add_post("/api/tickets/{ticket_id}/transfer", transfer, name="api-transfer")
    app.router.add_post("/api/tickets/{ticket_id}/hand-back", hand_back, name="api-hand-back")
    app.router.add_post("/api/tickets/{ticket_id}/phone", reveal_phone, name="api-phone")
    app.router.add_get("/api/media/{token}", media_file, name="api-media")
    app.router.add_post(
        "/api/tickets/{ticket_id}/urgent", confirm_urgent, name="api-urgent-confirm"
    )
    app.router.add_post("/api/tickets/{ticket_id}/not-urgent", not_urgent, name="api-urgent-deny")
    app.router.add_post("/api/tickets/{ticket_id}/merge", merge, name="api-merge")
    app.router.add_get(
        "/api/tickets/{ticket_id}/merge-candidates", merge_candidates, name="api-merge-candidates"
    )
    app.router.add_get(
        "/api/tickets/{ticket_id}/transfer-targets", transfer_targets, name="api-transfer-targets"
    )
    app.router.add_post("/api/tickets/{ticket_id}/split", split, name="api-split")
    app.router.add_get("/api/members", list_members, name="api-members")
    app.router.add_get(
        "/api/possible-requests", list_possible_requests, name="api-possible-requests"
    )
    app.router.add_post(
        "/api/possible-requests/{possible_id}/confirm",
        confirm_possible_request,
        name="api-possible-confirm",
    )
    app.router.add_post(
        "/api/possible-requests/{possible_id}/dismiss",
        dismiss_possible_request,
        name="api-possible-dismiss",
    )
    app.router.add_get("/api/ws", events_socket, name="api-ws")
