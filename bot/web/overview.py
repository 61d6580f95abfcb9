"""The secretary's overview (`/console/overview`): the page, its figures as JSON with the
charts drawn as SVG, and the same figures as a CSV file for Excel (docs/overview.md)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from bot import audit
from bot.audit import AuditAction
from bot.channels.webchat.views import STATIC_DIR
from bot.core.categories import CATEGORY_LABELS
from bot.core.clock import iso
from bot.handoff.access import Actor
from bot.handoff.overview import (
    OVERDUE_AFTER,
    PERIODS,
    Overview,
    Period,
    UnknownCommunity,
    communities_for,
    overview,
    scope_for,
)
from bot.handoff.roles import ROLE_LABELS, Action
from bot.handoff.schedule import LOCAL
from bot.typedefs import clock_key, sessions_key
from bot.web import charts
from bot.web.accounts import actor
from bot.web.overview_csv import overview_csv

logger = logging.getLogger(__name__)

DEFAULT_DAYS = 30
# Darker tones of the console's category tags: white numbers on them stay readable.
CATEGORY_COLOURS = {
    "repair": "#1f5fa8",
    "canteen": "#8a4b00",
    "medical": "#00695c",
    "complaint": "#6a1b9a",
    "urgent": "#c4121c",
    "unclassified": "#4f5b62",
}


async def overview_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "overview.html")


def _days(request: web.Request) -> int:
    try:
        days = int(request.query.get("days", DEFAULT_DAYS))
    except ValueError:
        days = 0
    if days not in PERIODS:
        raise web.HTTPBadRequest(reason=f"days must be one of {list(PERIODS)}")
    return days


async def _figures(request: web.Request) -> tuple[Actor, Overview, list[dict[str, str]]]:
    who = await actor(request, Action.OVERVIEW)
    period = Period(_days(request), request.app[clock_key].now())
    async with request.app[sessions_key]() as session:
        try:
            scope = await scope_for(session, who, request.query.get("community") or None)
        except UnknownCommunity as e:
            raise web.HTTPBadRequest(reason=str(e)) from e
        figures = await overview(session, scope, period)
        choices = [{"code": c.code, "name": c.name} for c in await communities_for(session, who)]
    return who, figures, choices


async def overview_json(request: web.Request) -> web.Response:
    _, figures, choices = await _figures(request)
    return web.json_response({**overview_payload(figures), "communities": choices})


async def overview_export(request: web.Request) -> web.Response:
    """The figures as a CSV download; the export is in the audit log."""
    who, figures, _ = await _figures(request)
    now = figures.period.until
    async with request.app[sessions_key]() as session, session.begin():
        audit.record(
            session,
            AuditAction.OVERVIEW_EXPORT,
            now,
            who,
            who.member_id,
            target=figures.scope.name,
            detail=f"近{figures.period.days}天",
            community_id=figures.scope.community_id,
        )
    logger.info("member %s exported the overview of %s", who.member_id, figures.scope.name)
    day = now.astimezone(LOCAL).strftime("%Y%m%d")
    name = f"overview-{figures.scope.code or 'district'}-{figures.period.days}d-{day}.csv"
    return web.Response(
        body=overview_csv(figures).encode("utf-8-sig"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _seconds(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _share(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def week_label(start: datetime) -> str:
    local = start.astimezone(LOCAL)
    return f"{local.month}/{local.day}"


def overview_payload(figures: Overview) -> dict[str, Any]:
    period = figures.period
    reply = figures.first_reply
    return {
        "scope": {
            "name": figures.scope.name,
            "code": figures.scope.code,
            "district": figures.scope.community_id is None,
        },
        "period": {"days": period.days, "since": iso(period.since), "until": iso(period.until)},
        "requests": figures.requests,
        "open_now": figures.open_now,
        "overdue_now": figures.overdue_now,
        "overdue_after_hours": int(OVERDUE_AFTER.total_seconds() // 3600),
        "first_reply": {
            "answered": reply.answered,
            "waiting": reply.waiting,
            "median_s": _seconds(reply.median_s),
            "p90_s": _seconds(reply.p90_s),
        },
        "resolved": [
            {"hours": r.hours, "due": r.due, "resolved": r.resolved, "share": _share(r.share)}
            for r in figures.resolved
        ],
        "satisfaction": {
            "counts": figures.satisfaction.counts,
            "rated": figures.satisfaction.rated,
            "satisfied_share": _share(figures.satisfaction.satisfied_share),
        },
        "grids": [vars(g) for g in figures.grids],
        "members": [
            {**vars(m), "role_label": ROLE_LABELS.get(m.role, m.role)} for m in figures.members
        ],
        "categories": CATEGORY_LABELS,
        "weeks": [
            {
                "start": iso(w.start),
                "label": week_label(w.start),
                "counts": w.counts,
                "total": w.total,
            }
            for w in figures.weeks
        ],
        "escalations": vars(figures.escalations),
        "unseen": {
            "total": figures.unseen_total,
            "oldest": [{**vars(u), "created_at": iso(u.created_at)} for u in figures.unseen],
        },
        "charts": {chart.key: charts.render(chart) for chart in overview_charts(figures)},
    }


def overview_charts(figures: Overview) -> list[charts.Chart]:
    where = figures.scope.name
    days = figures.period.days
    grids = [g for g in figures.grids if g.open or g.requests]
    multi = figures.scope.community_id is None
    counts = figures.satisfaction.counts
    return [
        charts.Chart(
            "grids",
            f"{where}各网格现在在办和超时的求助",
            [f"{g.community} {g.grid}" if multi else g.grid for g in grids],
            [
                charts.Series("在办", "#0b4fb3", [g.open for g in grids]),
                charts.Series("超时", "#b3121b", [g.overdue for g in grids]),
            ],
            empty="现在没有在办的求助",
        ),
        charts.Chart(
            "weeks",
            f"{where}近{days}天每周的求助，按类别",
            [f"{week_label(w.start)} 起" for w in figures.weeks],
            [
                charts.Series(label, CATEGORY_COLOURS[c], [w.counts[c] for w in figures.weeks])
                for c, label in CATEGORY_LABELS.items()
            ],
            stacked=True,
        ),
        charts.Chart(
            "satisfaction",
            f"{where}近{days}天居民的评价",
            list(counts) if figures.satisfaction.rated else [],
            [charts.Series("人数", "#1b5e20", list(counts.values()))],
            empty="这段时间还没有居民评价",
        ),
    ]


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/console/overview", overview_page, name="overview")
    app.router.add_get("/api/overview", overview_json, name="api-overview")
    app.router.add_get("/api/overview.csv", overview_export, name="api-overview-csv")
