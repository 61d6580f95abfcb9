"""What a WeChat / WeCom API answer's errcode means to the service, as one exception family.

Business errors are raised at once, never retried: `WindowClosed` when the message cannot
reach the person by this route, `RateLimited` for 45009, `WechatApiError` for the rest.
`ApiUnavailable` (errcode -1) is what the clients raise when no usable answer came at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "FREQ_LIMIT",
    "NO_ERRCODE",
    "TOKEN_ERRORS",
    "UNREACHABLE",
    "ApiUnavailable",
    "RateLimited",
    "WechatApiError",
    "WindowClosed",
    "error_for",
    "errcode_of",
    "errmsg_of",
]

# 40001 invalid or not the latest, 42001 expired, 40014 malformed: a fresh token fixes these.
TOKEN_ERRORS = frozenset({40001, 42001, 40014})
# Official Account: 45015 the 48-hour window is closed, 45047 the customer-service quota for this
# user is used up, 48001 API not authorised. WeCom: 48002 API forbidden for this app, 81013 every
# recipient is invalid or outside the app's visible range.
UNREACHABLE = frozenset({45015, 45047, 48001, 48002, 81013})
FREQ_LIMIT = 45009
NO_ERRCODE = -1


class WechatApiError(Exception):
    """A non-zero errcode from the API, or errcode -1 when no usable answer came at all."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    def __str__(self) -> str:
        return f"errcode {self.errcode}: {self.errmsg}"


class WindowClosed(WechatApiError):
    """The message cannot reach the person by this route now; retrying will not help."""


class RateLimited(WechatApiError):
    """45009: too many calls; the caller should queue and send later."""


class ApiUnavailable(WechatApiError):
    """HTTP 5xx, timeouts, connection errors or non-JSON answers on every try (errcode -1)."""


def errcode_of(payload: Mapping[str, Any]) -> int:
    try:
        return int(payload.get("errcode", 0) or 0)
    except (TypeError, ValueError):
        return NO_ERRCODE


def errmsg_of(payload: Mapping[str, Any]) -> str:
    return str(payload.get("errmsg", ""))


def error_for(payload: Mapping[str, Any]) -> WechatApiError:
    errcode, errmsg = errcode_of(payload), errmsg_of(payload)
    if errcode in UNREACHABLE:
        return WindowClosed(errcode, errmsg)
    if errcode == FREQ_LIMIT:
        return RateLimited(errcode, errmsg)
    return WechatApiError(errcode, errmsg)
