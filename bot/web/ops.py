"""Operators' pages and API: the review queue (`/ops/review`) and the models (`/ops/models`).

Also the members' one-tap category correction, which feeds the review queue. Training (the
accepted corrections exported first, the candidate scored after) and evaluation run as
`python -m bot ops ...` child processes, so the service keeps answering; their progress is
read back from the database, step by step.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.channels.webchat.views import STATIC_DIR
from bot.db.nlu_models import ModelEvent, OpsRun
from bot.handoff.payloads import ticket_payload
from bot.handoff.roles import Action
from bot.ops.charts import CHARTS
from bot.ops.evaluation import stored_report
from bot.ops.export import waiting_count
from bot.ops.registry import (
    NothingToRollBack,
    UnknownModel,
    activate,
    archive_named,
    discover,
    list_models,
    model_payload,
    rollback,
)
from bot.ops.review import (
    AlreadyExported,
    BadDecision,
    Decision,
    NotDecided,
    correct_category,
    decide,
    undo,
)
from bot.ops.review import review_queue as pending_review
from bot.ops.runs import run_payload
from bot.settings import Settings
from bot.typedefs import ops_jobs_key, sessions_key, settings_key, tickets_key
from bot.web.accounts import actor, json_body
from bot.web.api import ticket_id_of

logger = logging.getLogger(__name__)

RECENT_RUNS = 5
RECENT_EVENTS = 20


async def ops_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "ops.html")


async def correct(request: web.Request) -> web.Response:
    who = await actor(request, Action.CORRECT)
    category = str((await json_body(request)).get("category", ""))
    try:
        async with request.app[tickets_key].ledger.change() as change:
            ticket = await correct_category(change, who, ticket_id_of(request), category)
            payload = ticket_payload(ticket)
    except BadDecision as e:
        raise web.HTTPBadRequest(reason=str(e)) from e
    logger.info("member %s corrected ticket %s to %s", who.member_id, ticket.id, category)
    return web.json_response(payload)


async def review_queue(request: web.Request) -> web.Response:
    await actor(request, Action.REVIEW)
    below = request.app[settings_key].review_below
    async with request.app[sessions_key]() as session:
        groups = await pending_review(session, below)
    return web.json_response({"groups": groups, "below": below})


async def review_decision(request: web.Request) -> web.Response:
    who = await actor(request, Action.REVIEW)
    body = await json_body(request)
    try:
        item_id = int(request.match_info["item_id"])
        decision = Decision(str(body.get("action", "")), body.get("intent"))
        async with request.app[sessions_key]() as session, session.begin():
            item = await decide(session, who, item_id, decision)
            result = {"id": item.id, "review": item.review, "label": item.label}
    except (BadDecision, ValueError) as e:
        raise web.HTTPBadRequest(reason=str(e)) from e
    except AlreadyExported as e:
        raise web.HTTPConflict(reason=str(e)) from e
    return web.json_response(result)


async def review_undo(request: web.Request) -> web.Response:
    who = await actor(request, Action.REVIEW)
    try:
        item_id = int(request.match_info["item_id"])
        async with request.app[sessions_key]() as session, session.begin():
            item = await undo(session, who, item_id)
            result = {"id": item.id, "review": item.review, "label": item.label}
    except ValueError as e:
        raise web.HTTPBadRequest(reason=str(e)) from e
    except (AlreadyExported, NotDecided) as e:
        raise web.HTTPConflict(reason=str(e)) from e
    logger.info("operator %s took back the decision on review item %s", who.member_id, item_id)
    return web.json_response(result)


async def models(request: web.Request) -> web.Response:
    await actor(request, Action.MODELS)
    async with request.app[sessions_key]() as session, session.begin():
        await discover(session, request.app[settings_key].models_dir)
        rows = await list_models(session)
        runs = await session.scalars(select(OpsRun).order_by(OpsRun.id.desc()).limit(RECENT_RUNS))
        events = await session.scalars(
            select(ModelEvent).order_by(ModelEvent.id.desc()).limit(RECENT_EVENTS)
        )
        return web.json_response(
            {
                "models": [model_payload(m) for m in rows],
                "runs": [run_payload(r) for r in runs],
                "events": [_event_payload(e) for e in events],
                "waiting_examples": await waiting_count(session),
            }
        )


def _event_payload(event: ModelEvent) -> dict[str, Any]:
    return {
        "model": event.model_name,
        "kind": event.kind,
        "actor": event.actor,
        "reason": event.reason,
        "at": event.created_at.isoformat(),
    }


def _archive(request: web.Request) -> Path:
    try:
        return archive_named(request.app[settings_key].models_dir, request.match_info["name"])
    except UnknownModel as e:
        raise web.HTTPNotFound(reason=str(e)) from e


def _stored_report(request: web.Request) -> dict[str, Any]:
    found = stored_report(_archive(request))
    if found is None:
        raise web.HTTPNotFound(reason="not evaluated yet")
    return found


async def report(request: web.Request) -> web.Response:
    await actor(request, Action.MODELS)
    # Where the test data lay on the server is nobody's business on the page.
    found = {key: value for key, value in _stored_report(request).items() if key != "test_data"}
    return web.json_response(found)


async def chart(request: web.Request) -> web.Response:
    await actor(request, Action.MODELS)
    draw = CHARTS.get(request.match_info["chart"])
    if draw is None:
        raise web.HTTPNotFound(reason="no such chart")
    return web.Response(text=draw(_stored_report(request)), content_type="image/svg+xml")


async def activate_model(request: web.Request) -> web.Response:
    who = await actor(request, Action.MODELS)
    body = await json_body(request)
    archive = _archive(request)
    async with request.app[sessions_key]() as session, session.begin():
        outcome = await activate(
            session,
            archive,
            who.name,
            force=bool(body.get("force")),
            reason=str(body.get("reason", ""))[:200],
        )
        payload = model_payload(outcome.model)
    if not outcome.active:
        return web.json_response(
            {
                "error": "gate_refused",
                "message": "没通过启用前的把关，没有启用。",
                "reasons": outcome.refusals,
            },
            status=409,
        )
    logger.info("operator %s activated model %s", who.name, archive.name)
    return web.json_response(payload)


async def rollback_model(request: web.Request) -> web.Response:
    who = await actor(request, Action.MODELS)
    try:
        async with request.app[sessions_key]() as session, session.begin():
            payload = model_payload(await rollback(session, who.name))
    except NothingToRollBack as e:
        raise web.HTTPConflict(reason=str(e)) from e
    logger.info("operator %s rolled back to %s", who.name, payload["name"])
    return web.json_response(payload)


async def start_training(request: web.Request) -> web.Response:
    """The page's one button: export the accepted corrections, train, evaluate."""
    who = await actor(request, Action.MODELS)
    await _start_job(request.app, ["train", "--export", "--by", who.name])
    return web.json_response({"started": "train"}, status=202)


async def start_evaluation(request: web.Request) -> web.Response:
    who = await actor(request, Action.MODELS)
    archive = _archive(request)
    await _start_job(request.app, ["evaluate", str(archive), "--by", who.name])
    return web.json_response({"started": "evaluate", "model": archive.name}, status=202)


async def _start_job(app: web.Application, args: list[str]) -> None:
    jobs = app[ops_jobs_key]
    if any(job.returncode is None for job in jobs):
        raise web.HTTPConflict(reason="a training or evaluation is already running")
    jobs.clear()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "ops", *args,
        env=job_environment(app[settings_key]),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        # Its own process group, so stopping it also stops the `rasa train` it runs.
        start_new_session=True,
    )  # fmt: skip
    jobs.append(process)


def job_environment(settings: Settings) -> dict[str, str]:
    """The child sees the same database and models as this service."""
    return {
        **os.environ,
        "BOT_DATABASE_URL": settings.database_url,
        "BOT_MODELS_DIR": str(settings.models_dir),
    }


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/ops/review", ops_page, name="ops-review")
    app.router.add_get("/ops/models", ops_page, name="ops-models")
    app.router.add_post("/api/tickets/{ticket_id}/category", correct, name="api-category")
    app.router.add_get("/api/ops/review", review_queue, name="api-ops-review")
    app.router.add_post("/api/ops/review/{item_id}", review_decision, name="api-ops-decide")
    app.router.add_post("/api/ops/review/{item_id}/undo", review_undo, name="api-ops-undo")
    app.router.add_get("/api/ops/models", models, name="api-ops-models")
    app.router.add_post("/api/ops/models/rollback", rollback_model, name="api-ops-rollback")
    app.router.add_post("/api/ops/models/train", start_training, name="api-ops-train")
    app.router.add_get("/api/ops/models/{name}/report", report, name="api-ops-report")
    app.router.add_get("/api/ops/models/{name}/{chart}.svg", chart, name="api-ops-chart")
    app.router.add_post("/api/ops/models/{name}/evaluate", start_evaluation, name="api-ops-eval")
    app.router.add_post("/api/ops/models/{name}/activate", activate_model, name="api-ops-activate")
