"""The console page, static files, health and readiness."""

from __future__ import annotations

import ipaddress
import logging

from aiohttp import web
from sqlalchemy import text

from bot.channels.webchat.views import STATIC_DIR
from bot.typedefs import metrics_key, rasa_key, redis_key, sessions_key, settings_key
from bot.web.auth import bearer_token, secret_matches

logger = logging.getLogger(__name__)


async def console(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "console.html")


async def console_worker(request: web.Request) -> web.FileResponse:
    """The console's service worker (notifications of urgent requests). Served from the
    console's own path, so its scope is the console without a Service-Worker-Allowed header."""
    return web.FileResponse(
        STATIC_DIR / "console-sw.js", headers={"Content-Type": "text/javascript; charset=utf-8"}
    )


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.app.router["webchat"].url_for())


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        async with request.app[sessions_key]() as session:
            await session.execute(text("SELECT 1"))
    except Exception:  # any database failure means "not ready", never a 500
        logger.exception("readiness check: the database does not answer")
        return web.json_response({"status": "database unavailable"}, status=503)
    engine = request.app.get(rasa_key)
    if engine is None:
        return web.json_response({"status": "model not loaded"}, status=503)
    ready = {"status": "ready", "model": engine.model_path.name}
    redis = request.app[redis_key]
    if redis.configured and redis.client is None:
        # Still serving, on this worker's own memory: keep taking traffic, but say so.
        ready["status"] = "degraded: Redis unavailable, this worker runs on its own memory"
    return web.json_response({**ready, "redis": redis.status})


async def metrics(request: web.Request) -> web.Response:
    """Loopback callers (a local Prometheus) or, when `BOT_METRICS_TOKEN` is set, only its
    bearer."""
    token = request.app[settings_key].metrics_token
    if token:
        allowed = secret_matches(bearer_token(request), token)
    else:
        allowed = ipaddress.ip_address(request.remote or "0.0.0.0").is_loopback
    if not allowed:
        logger.warning("metrics refused for %s", request.remote)
        raise web.HTTPForbidden(text="forbidden")
    return request.app[metrics_key].render()


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", index, name="index")
    app.router.add_get("/console/", console, name="console")
    app.router.add_get("/console/sw.js", console_worker, name="console-worker")
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics, name="metrics")
    app.router.add_static("/static/", STATIC_DIR, name="static")
