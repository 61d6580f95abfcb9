"""Open311 GeoReport v2, the read side, for the district's city systems (docs/api.md):
`/open311/v2/services`, `/open311/v2/requests` and `/open311/v2/requests/{id}`, each as
`.json` or `.xml`.

No key, as the specification has it for reading: what these answer carries nobody's personal
data (`bot.handoff.open311` selects only what may be shown). Errors are the specification's
list of {code, description} with a 400 or 404 (a 503 while the database does not answer), in
the format that was asked for. XML is built with ElementTree, which escapes every value."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import partial, wraps
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from aiohttp import web

from bot.handoff.open311 import SERVICES, Search, community_id, find_request, find_requests
from bot.handoff.schedule import LOCAL
from bot.typedefs import clock_key, sessions_key
from bot.web.middleware import DATABASE_AWAY, DATABASE_GONE, RETRY_AFTER

logger = logging.getLogger(__name__)

FORMATS = ("json", "xml")
# The specification's window: the last 90 days unless asked, and never wider.
WINDOW = timedelta(days=90)
STATUSES = {"open": True, "closed": False}
# The w3 note's datetime; the specification requires the zone.
_W3_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_W3_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A ticket id as the database can hold it.
_ID = re.compile(r"[0-9]{1,18}")
# Characters XML 1.0 cannot carry, e.g. a control character a caller put in a parameter that
# an error repeats.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

Rows = list[dict[str, Any]]


class Refused(Exception):
    """A request the specification answers with an error: 400, or 404 for what does not
    exist."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _xml(root_tag: str, item_tag: str, rows: Rows) -> bytes:
    root = Element(root_tag)
    for row in rows:
        item = SubElement(root, item_tag)
        for tag, value in row.items():
            SubElement(item, tag).text = _xml_text(value)
    return tostring(root, encoding="utf-8", xml_declaration=True)


def _xml_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _answer(fmt: str, root_tag: str, item_tag: str, rows: Rows, status: int = 200) -> web.Response:
    if fmt == "xml":
        body = _xml(root_tag, item_tag, rows)
        return web.Response(body=body, status=status, content_type="text/xml", charset="utf-8")
    return web.json_response(rows, status=status, dumps=partial(json.dumps, ensure_ascii=False))


Handler = Callable[[web.Request, str], Awaitable[web.Response]]


def _open311(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The format from the path (an unknown one is answered in JSON), and refusals as the
    specification's errors in that format."""

    @wraps(handler)
    async def view(request: web.Request) -> web.Response:
        fmt = request.match_info["format"]
        try:
            if fmt not in FORMATS:
                raise Refused(404, f"没有 .{fmt} 格式，请用 .json 或 .xml")
            return await handler(request, fmt)
        except Refused as e:
            logger.info("open311 %s -> %d: %s", request.path, e.status, e.description)
            return _errors(fmt, e.status, e.description)
        except DATABASE_GONE as e:
            # A city system retries as a callback does; it reads the error as any other.
            logger.error("open311 %s: the database does not answer (%s)", request.path, e)
            response = _errors(fmt, 503, DATABASE_AWAY)
            response.headers["Retry-After"] = RETRY_AFTER
            return response

    return view


def _errors(fmt: str, status: int, description: str) -> web.Response:
    answer_in = fmt if fmt in FORMATS else "json"
    error = {"code": status, "description": description}
    return _answer(answer_in, "errors", "error", [error], status)


def _values(request: web.Request, name: str) -> list[str]:
    """A parameter given once, several times or comma separated; given empty, it is not
    given (the specification's optional arguments)."""
    return [
        value.strip()
        for given in request.query.getall(name, [])
        for value in given.split(",")
        if value.strip()
    ]


def _moment(request: web.Request, name: str) -> datetime | None:
    # An unescaped "+08:00" arrives as " 08:00"; a w3 datetime holds no space.
    given = request.query.get(name, "").strip().replace(" ", "+")
    if not given:
        return None
    if not (_W3_DATE.fullmatch(given) or _W3_DATETIME.fullmatch(given)):
        raise Refused(400, f"{name} 要写成带时区的时间，例如 2026-11-01T00:00:00+08:00")
    try:
        moment = datetime.fromisoformat(given)
        # A date alone is the start of that day in Beijing.
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=LOCAL)).astimezone(UTC)
    except (ValueError, OverflowError) as e:
        raise Refused(400, f"{name} 不是一个存在的时间：{given}") from e
    # Far enough from the calendar's ends for a 90-day window on either side.
    if not 1900 <= moment.year <= 9000:
        raise Refused(400, f"{name} 不是一个存在的时间：{given}")
    return moment


def _window(request: web.Request) -> tuple[datetime, datetime]:
    """start_date and end_date, each defaulting to 90 days from the other, both to the last
    90 days."""
    start, end = _moment(request, "start_date"), _moment(request, "end_date")
    if start is None:
        end = end or request.app[clock_key].now()
        start = end - WINDOW
    elif end is None:
        end = start + WINDOW
    if end < start:
        raise Refused(400, "end_date 早于 start_date")
    if end - start > WINDOW:
        raise Refused(400, "start_date 到 end_date 最多相隔 90 天")
    return start, end


def _ids(request: web.Request) -> frozenset[int]:
    given = _values(request, "service_request_id")
    if not all(_ID.fullmatch(value) for value in given):
        raise Refused(400, "service_request_id 是数字，多个用逗号隔开")
    return frozenset(int(value) for value in given)


def _chosen(request: web.Request, name: str, known: Iterable[str]) -> list[str]:
    given, known = _values(request, name), list(known)
    unknown = [value for value in given if value not in known]
    if unknown:
        raise Refused(400, f"{name} 只能是 {', '.join(known)}，没有 {', '.join(unknown)}")
    return given


async def _community(request: web.Request) -> int | None:
    """The community named by jurisdiction_id (its code); none named: the whole district."""
    code = request.query.get("jurisdiction_id", "").strip()
    if not code:
        return None
    found = await community_id(request.app[sessions_key], code)
    if found is None:
        raise Refused(404, f"没有 jurisdiction_id 为 {code} 的社区")
    return found


@_open311
async def services(request: web.Request, fmt: str) -> web.Response:
    # Every community offers every service; an unknown one is still a 404.
    await _community(request)
    return _answer(fmt, "services", "service", [s.fields() for s in SERVICES.values()])


@_open311
async def service_requests(request: web.Request, fmt: str) -> web.Response:
    statuses = {STATUSES[s] for s in _chosen(request, "status", STATUSES)}
    start, end = _window(request)
    search = Search(
        start=start,
        end=end,
        service_codes=frozenset(_chosen(request, "service_code", SERVICES)),
        open=statuses.pop() if len(statuses) == 1 else None,
        community_id=await _community(request),
        ids=_ids(request),
    )
    found = await find_requests(request.app[sessions_key], search)
    return _answer(fmt, "service_requests", "request", [r.fields() for r in found])


@_open311
async def service_request(request: web.Request, fmt: str) -> web.Response:
    given = request.match_info["service_request_id"]
    community = await _community(request)
    sessions = request.app[sessions_key]
    found = await find_request(sessions, int(given), community) if _ID.fullmatch(given) else None
    if found is None:
        raise Refused(404, f"没有 service_request_id 为 {given} 的请求")
    return _answer(fmt, "service_requests", "request", [found.fields()])


def setup_routes(app: web.Application) -> None:
    base = "/open311/v2"
    app.router.add_get(f"{base}/services.{{format}}", services, name="open311-services")
    app.router.add_get(f"{base}/requests.{{format}}", service_requests, name="open311-requests")
    app.router.add_get(
        f"{base}/requests/{{service_request_id:[^/.]+}}.{{format}}",
        service_request,
        name="open311-request",
    )
