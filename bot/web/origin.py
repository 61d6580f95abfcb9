"""Websocket Origin checks: browsers send Origin, and only our own pages may connect."""

from __future__ import annotations

from aiohttp import web


def origin_allowed(request: web.Request, allowed: tuple[str, ...]) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        # Not a browser (a test client, a script): nothing cross-site to defend against.
        return True
    return origin in allowed or origin == f"{request.scheme}://{request.host}"
