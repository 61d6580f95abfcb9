"""One error middleware: domain errors become clear 4xx JSON; nothing leaks as a bare 500."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from bot.handoff.ledger import NotAllowed, TicketNotFound
from bot.handoff.possible import AlreadyDecided, UnknownPossibleRequest
from bot.handoff.states import IllegalTransition
from bot.web.auth import TooManyAttempts

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What a volunteer reads in the console for each kind of refusal.
MESSAGES = {
    400: "请求有误，请检查后再试。",
    401: "请先登录。",
    403: "这张工单不归您处理。",
    404: "没有找到这张工单。",
    409: "这张工单已被其他人认领，或已经处理完了。",
    413: "内容太长了。",
    429: "尝试次数太多了，请稍后再试。",
}


# The same refusals on the operators' pages, where they are not about a ticket.
OPS_MESSAGES = {
    **MESSAGES,
    403: "这里只有模型运营人员能用。",
    404: "没有找到，可能已经处理过了。",
    409: "现在不能这样做，请看下面的原因。",
}
# The same refusals about a message that may be a request ("群里可能有人需要帮忙").
POSSIBLE_MESSAGES = {
    **MESSAGES,
    403: "这条消息不在您的网格，由那里的同事来看。",
    404: "没有找到这条消息。",
    409: "这条消息已经有同事看过了。",
}
# What a resident reads in the webchat.
WEBCHAT_MESSAGES = {
    **MESSAGES,
    400: "这个称呼用不了，请换一个，比如：张阿姨。",
    401: "请先写上您的称呼。",
    404: "这个群的邀请码不对，请对照海报再扫一次。",
}
# A photo or voice clip from the webchat.
MEDIA_MESSAGES = {
    **WEBCHAT_MESSAGES,
    400: "照片或语音没发出去，请再试一次。",
    413: "太大了：照片请小于5MB，语音请短于1分钟。",
    415: "只能发照片或语音。",
}
# Pages for some roles only.
ROLE_MESSAGES = {**MESSAGES, 403: "这里您的角色用不了。"}
# Refusals worded for the page that asked, by path; anything else is about a ticket.
MESSAGES_BY_PATH = (
    ("/api/audit", ROLE_MESSAGES),
    ("/api/members", ROLE_MESSAGES),
    ("/api/overview", ROLE_MESSAGES),
    ("/api/ops/", OPS_MESSAGES),
    ("/api/possible-requests", POSSIBLE_MESSAGES),
    ("/webchat/api/media", MEDIA_MESSAGES),
    ("/webchat/api/", WEBCHAT_MESSAGES),
)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _error(request: web.Request, status: int, detail: str) -> web.Response:
    messages = next(
        (m for prefix, m in MESSAGES_BY_PATH if request.path.startswith(prefix)), MESSAGES
    )
    return web.json_response(
        {
            "error": CODES.get(status, "error"),
            "message": messages.get(status, "出错了，请稍后再试。"),
            "detail": detail,
        },
        status=status,
    )


def too_many(retry_after: int, what: str) -> web.Response:
    """429 with the wait in words a volunteer or a resident reads (重试时间) and in
    Retry-After."""
    minutes = max(1, -(-retry_after // 60))
    return web.json_response(
        {
            "error": "too_many_requests",
            "message": f"{what}，请 {minutes} 分钟后再试。",
            "retry_after": retry_after,
        },
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


# A database restarting or out of reach: not the request's fault, worth a retry.
DATABASE_GONE = (OperationalError, InterfaceError, DisconnectionError, ConnectionRefusedError)
# What a caller reads while the database is away, and the seconds it waits to try again.
DATABASE_AWAY = "暂时忙不过来，请稍后再试"
RETRY_AFTER = "5"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (TicketNotFound, UnknownPossibleRequest) as e:
        return _error(request, 404, str(e))
    except NotAllowed as e:
        logger.info("refused %s %s: %s", request.method, request.path, e)
        return _error(request, 403, str(e))
    except (IllegalTransition, AlreadyDecided) as e:
        return _error(request, 409, str(e))
    except TooManyAttempts as e:
        logger.warning("%s %s throttled for %d s", request.method, request.path, e.retry_after)
        return too_many(e.retry_after, e.what)
    except DATABASE_GONE as e:
        # WeChat retries a callback that is not answered 200: nothing acknowledged is lost.
        logger.error("%s %s: the database does not answer (%s)", request.method, request.path, e)
        return web.json_response(
            {"error": DATABASE_AWAY}, status=503, headers={"Retry-After": RETRY_AFTER}
        )
    except web.HTTPException as e:
        if e.status < 400 or not request.path.startswith(("/api/", "/internal/", "/webchat/api/")):
            raise
        logger.info("%s %s -> %s %s", request.method, request.path, e.status, e.reason)
        return _error(request, e.status, e.reason)


# Pages load their scripts and styles from /static only; nothing may frame them.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Pages and their script modules must come from the same deploy: a browser revalidates
    # each (a 304 when unchanged) rather than mixing a cached page with new modules.
    "Cache-Control": "no-cache",
}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
