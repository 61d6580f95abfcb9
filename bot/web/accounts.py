"""Members' accounts on the web: logging in and out, who is asking, websocket tickets, and the
audit log (a secretary's community's, or the district's). Contract in docs/api.md."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot import audit
from bot.audit import AuditAction
from bot.db.models import Member
from bot.handoff.access import Actor
from bot.handoff.ledger import NotAllowed
from bot.handoff.payloads import member_payload
from bot.handoff.roles import Action
from bot.typedefs import clock_key, login_guard_key, passwords_key, sessions_key, settings_key
from bot.web.auth import (
    SESSION,
    SOCKET,
    SOCKET_TICKET_TTL,
    bearer_token,
    issue_token,
    member_for_token,
    revoke_token,
)

logger = logging.getLogger(__name__)

MAX_NAME = 64
MAX_PASSWORD = 256
# A mobile (13800001111) or a landline with its area code (02166668888), written with or
# without spaces and dashes.
MEMBER_PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{9,11})$")
MEMBER_PHONE_SEPARATORS = re.compile(r"[\s-]+")


def client_address(request: web.Request) -> str:
    """The caller's address; behind a reverse proxy that says so, the one it saw."""
    if request.app[settings_key].behind_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.remote or "-"


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as e:
        raise web.HTTPBadRequest(reason="body is not JSON") from e
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="body must be a JSON object")
    return body


def bearer(request: web.Request) -> str:
    token = bearer_token(request)
    if not token:
        raise web.HTTPUnauthorized(reason="missing or invalid token")
    return token


async def _member(request: web.Request, token: str, kind: str = SESSION) -> Member:
    now = request.app[clock_key].now()
    async with request.app[sessions_key]() as session, session.begin():
        member = await member_for_token(session, token, now, kind)
    if member is None:
        raise web.HTTPUnauthorized(reason="missing, expired or invalid token")
    return member


async def signed_in(request: web.Request) -> Actor:
    return Actor.of(await _member(request, bearer(request)))


async def actor(request: web.Request, action: Action) -> Actor:
    """The logged-in member, if their role may take `action` (`bot.handoff.roles`)."""
    who = await signed_in(request)
    if not who.may(action):
        raise NotAllowed(f"{who.role} {who.member_id} may not {action}")
    return who


def own_payload(member: Member) -> dict[str, Any]:
    """`Member` as its own member reads it: with their phone and whether residents get it."""
    return {**member_payload(member), "phone": member.phone, "share_phone": member.share_phone}


async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    name = str(body.get("name", "")).strip()[:MAX_NAME]
    password = str(body.get("password", ""))[:MAX_PASSWORD]
    guard, address = request.app[login_guard_key], client_address(request)
    await guard.attempt(name, address)
    async with request.app[sessions_key]() as session:
        member = await session.scalar(select(Member).where(Member.name == name))
    ok = await request.app[passwords_key].matches(member, password)
    now = request.app[clock_key].now()
    async with request.app[sessions_key]() as session, session.begin():
        if not ok:
            # A name nobody has belongs to no community: only the district reads it.
            community_id = member.community_id if member is not None else None
            audit.record(
                session,
                AuditAction.LOGIN_FAILED,
                now,
                target=name,
                detail=address,
                community_id=community_id,
            )
        else:
            await guard.succeeded(name)
            assert member is not None
            ttl = timedelta(hours=request.app[settings_key].token_hours)
            token = await issue_token(session, member, now, ttl)
            audit.record(
                session,
                AuditAction.LOGIN,
                now,
                member,
                member.id,
                detail=address,
                community_id=member.community_id,
            )
    if not ok:
        logger.warning("failed console login for %r from %s", name, address)
        raise web.HTTPUnauthorized(reason="wrong name or password")
    return web.json_response({"token": token, "member": own_payload(member)})


async def logout(request: web.Request) -> web.Response:
    token = bearer(request)
    member = await _member(request, token)
    async with request.app[sessions_key]() as session, session.begin():
        await revoke_token(session, token)
        now = request.app[clock_key].now()
        audit.record(
            session, AuditAction.LOGOUT, now, member, member.id, community_id=member.community_id
        )
    return web.Response(status=204)


async def me(request: web.Request) -> web.Response:
    return web.json_response(own_payload(await _member(request, bearer(request))))


async def my_phone(request: web.Request) -> web.Response:
    """A member's own number, and whether a resident gets it when the member takes their
    request (`bot.handoff.texts.claimed`); the member chooses, and may stop at any time."""
    who = await actor(request, Action.HOLD)
    body = await json_body(request)
    phone = MEMBER_PHONE_SEPARATORS.sub("", str(body.get("phone", "")))
    share = body.get("share")
    if not isinstance(share, bool):
        raise web.HTTPBadRequest(reason="give 'share': true or false")
    if phone and not MEMBER_PHONE.match(phone):
        raise web.HTTPBadRequest(reason="phone must be a mobile or landline number")
    if share and not phone:
        raise web.HTTPBadRequest(reason="give a phone to share")
    async with request.app[sessions_key]() as session, session.begin():
        member = await session.get(Member, who.member_id)
        member.phone, member.share_phone = phone or None, share
    logger.info("member %s changed their phone; shared with residents: %s", who.member_id, share)
    return web.json_response(own_payload(member))


async def socket_ticket(request: web.Request) -> web.Response:
    """A one-time ticket to open `/api/ws`, so the long-lived token stays out of URLs."""
    member = await _member(request, bearer(request))
    async with request.app[sessions_key]() as session, session.begin():
        now = request.app[clock_key].now()
        ticket = await issue_token(session, member, now, SOCKET_TICKET_TTL, SOCKET)
    return web.json_response(
        {"ticket": ticket, "expires_in": int(SOCKET_TICKET_TTL.total_seconds())}
    )


async def socket_member(request: web.Request) -> Member:
    return await _member(request, request.query.get("ticket", ""), SOCKET)


async def audit_log(request: web.Request) -> web.Response:
    who = await actor(request, Action.AUDIT)
    community_id = None if who.sees_every_community else who.community_id
    async with request.app[sessions_key]() as session:
        entries = await audit.recent(session, community_id)
    return web.json_response({"entries": [audit.entry_payload(e) for e in entries]})


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/login", login, name="api-login")
    app.router.add_post("/api/logout", logout, name="api-logout")
    app.router.add_get("/api/me", me, name="api-me")
    app.router.add_put("/api/me/phone", my_phone, name="api-my-phone")
    app.router.add_post("/api/ws-ticket", socket_ticket, name="api-ws-ticket")
    app.router.add_get("/api/audit", audit_log, name="api-audit")
