"""New tickets announced in the party members' WeCom work group through its group robot.

This is the second route next to the console websocket. The robot's webhook takes at most 20
messages a minute (errcode 45009 beyond that), so cards are queued in the `notifications`
table and sent oldest first by one background task: a rate limit, an outage or a restart
delays a card but never drops it, nor skips it: the oldest waits for its turn, however long.
A row's `attempts` counts every try, the successful one included. A card whose send was
interrupted by shutdown may be sent twice (at least once, never lost).

In a storm the queue could hold hours of cards; once more wait than five minutes can send, one
digest card says how many (and how many urgent) and links the console, and those cards are
marked sent as part of it (`last_error` "digest"): the console shows every ticket anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from bot.channels.robot_cards import Backlog, digest_card, ticket_card
from bot.channels.wechat_errors import RateLimited, WechatApiError
from bot.db.models import Notification, Ticket, utcnow
from bot.privacy import mask_text

log = logging.getLogger(__name__)

ROUTE = "wecom-webhook"
WINDOW_S = 60.0
# Failures back off 1 s, 2 s, 4 s ... up to a minute; a platform rate limit means someone
# else filled the robot's minute too, so it starts later.
BACKOFF_FIRST_S = 1.0
RATE_LIMITED_FIRST_S = 5.0
BACKOFF_CAP_S = 60.0
LAST_ERROR_CHARS = 255


class MarkdownRobot(Protocol):
    """What the notifier needs of `bot.channels.wechat_api.GroupRobot`."""

    async def send_markdown(self, content: str) -> None: ...


# ---------- the rate window ----------


class RateWindow:
    """At most `limit` events in any `period` seconds (a sliding window of event times)."""

    def __init__(
        self, limit: int, period: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("a rate window needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._times: deque[float] = deque()

    def wait_time(self) -> float:
        """Seconds until one more event fits; 0.0 when it fits now."""
        now = self._clock()
        self._forget_before(now)
        if len(self._times) < self.limit:
            return 0.0
        return self._times[0] + self.period - now

    def record(self) -> None:
        now = self._clock()
        self._forget_before(now)
        self._times.append(now)

    def _forget_before(self, now: float) -> None:
        # The same sum as in wait_time, so that "wait 0 s" and "forgotten" never disagree.
        while self._times and self._times[0] + self.period <= now:
            self._times.popleft()


def backoff_delay(failures: int, first: float = BACKOFF_FIRST_S) -> float:
    """Bounded exponential back-off after `failures` consecutive failures (>= 1)."""
    return min(BACKOFF_CAP_S, first * 2 ** max(0, failures - 1))


# ---------- the queue and its sender ----------

DIGEST = "digest"
DIGEST_AFTER_MINUTES = 5


class _Stopping(BaseException):
    """Ends the sender at a safe point after `close()`; a BaseException so that the sender's
    own `except Exception` (which keeps it alive through failures) lets it through."""


class RobotNotifier:
    """Persistent, rate-limited, in-order queue of ticket cards for one WeCom group robot."""

    def __init__(
        self,
        sessions: sessionmaker,
        robot: MarkdownRobot,
        console_url: str,
        *,
        per_minute: int = 20,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        route: str = ROUTE,
    ) -> None:
        self._sessions = sessions
        self._robot = robot
        self._console_url = console_url
        self._route = route
        self._window = RateWindow(per_minute, WINDOW_S, clock=clock)
        self._digest_after = DIGEST_AFTER_MINUTES * per_minute
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self._stopping = False
        self._in_database = False

    async def enqueue(self, ticket: Ticket) -> None:
        """Store the ticket's card (the ticket must be committed) and wake the sender."""
        async with self._sessions() as session:
            # Reloaded here so that the card sees the committed ticket with its resident and
            # grid, whatever session (if any) the caller's object still belongs to.
            stored = await session.get(Ticket, ticket.id) if ticket.id is not None else None
            source = stored if stored is not None else ticket
            session.add(
                Notification(
                    route=self._route,
                    ticket_id=source.id,
                    content=ticket_card(source, self._console_url),
                )
            )
            await session.commit()
        self._idle.clear()
        self._wake.set()

    async def start(self) -> None:
        """Start the sender; it first sends whatever an earlier run left unsent."""
        if self._task is not None and not self._task.done():
            return
        self._idle.clear()
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name=f"notifier:{self._route}")

    async def close(self) -> None:
        """Stop the sender. Database work in progress finishes first; a send in progress is
        abandoned (it may have arrived: its card is then sent again after a restart)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        try:
            if not self._in_database:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self._stopping = False

    async def drain(self) -> None:
        """Wait until every queued card has been sent (for tests and orderly shutdowns)."""
        task = self._task
        if task is None:
            raise RuntimeError("the notifier is not running")
        idle = asyncio.create_task(self._idle.wait())
        try:
            await asyncio.wait({idle, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await idle
        if task.done():
            raise RuntimeError("the notifier stopped before its queue was empty")

    async def pending(self) -> int:
        """How many cards wait to be sent."""
        async with self._sessions() as session:
            query = select(func.count(Notification.id)).where(*self._pending_filter())
            return int((await session.execute(query)).scalar_one())

    # ---------- the background task ----------

    async def _run(self) -> None:
        with contextlib.suppress(_Stopping):
            await self._send_forever()

    async def _send_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                row = await self._oldest_pending()
                if row is not None:
                    backlog = await self._backlog()
                    if backlog.count > self._digest_after:
                        await self._deliver_digest(row, backlog)
                    else:
                        await self._deliver(row)
                    continue
            except Exception:
                # The database may be briefly locked or away; the rows are still there. (Our
                # statements carry ids and times only, so the traceback holds no card.)
                log.exception("notification queue unavailable; retrying")
                await self._after_failure(BACKOFF_FIRST_S)
                continue
            # An enqueue during the query has set _wake: look again instead of idling.
            if not self._wake.is_set():
                self._idle.set()
            await self._wake.wait()

    @contextlib.asynccontextmanager
    async def _database_work(self) -> AsyncIterator[None]:
        # Cancelling an AsyncSession mid-statement leaks its connection, so close() does not
        # cancel the sender in here; the sender stops on its own once the work is done.
        self._in_database = True
        try:
            yield
        finally:
            self._in_database = False
        if self._stopping:
            raise _Stopping

    async def _oldest_pending(self) -> Notification | None:
        async with self._database_work(), self._sessions() as session:
            query = (
                select(Notification)
                .where(*self._pending_filter())
                .order_by(Notification.id)
                .limit(1)
            )
            return (await session.execute(query)).scalar_one_or_none()

    async def _backlog(self) -> Backlog:
        async with self._database_work(), self._sessions() as session:
            query = (
                select(
                    func.count(Notification.id),
                    func.max(Notification.id),
                    func.count(Ticket.id).filter(Ticket.category == "urgent"),
                )
                .outerjoin(Ticket, Ticket.id == Notification.ticket_id)
                .where(*self._pending_filter())
            )
            count, last_id, urgent = (await session.execute(query)).one()
            return Backlog(int(count), int(last_id or 0), int(urgent))

    async def _deliver_digest(self, oldest: Notification, backlog: Backlog) -> None:
        if not await self._send(digest_card(backlog, self._console_url), oldest):
            return
        async with self._database_work(), self._sessions() as session:
            await session.execute(
                update(Notification)
                .where(*self._pending_filter(), Notification.id <= backlog.last_id)
                .values(attempts=Notification.attempts + 1, sent_at=utcnow(), last_error=DIGEST)
            )
            await session.commit()
        log.warning("%d waiting cards sent as one digest", backlog.count)

    def _pending_filter(self) -> tuple:
        return (Notification.route == self._route, Notification.sent_at.is_(None))

    async def _deliver(self, row: Notification) -> None:
        if await self._send(row.content, row):
            await self._mark_sent(row.id)
            log.info("notification %d for ticket %s sent", row.id, row.ticket_id)

    async def _send(self, content: str, row: Notification) -> bool:
        """One markdown message within the rate window; a failure is recorded on `row`."""
        await self._wait_for_window()
        # Counted before the call: a request that fails may still have reached the platform.
        self._window.record()
        try:
            await self._robot.send_markdown(content)
        except RateLimited as exc:
            await self._record_failure(row, exc, RATE_LIMITED_FIRST_S)
        except Exception as exc:
            await self._record_failure(row, exc, BACKOFF_FIRST_S)
        else:
            self._failures = 0
            return True
        return False

    async def _wait_for_window(self) -> None:
        while (delay := self._window.wait_time()) > 0:
            await self._sleep(delay)

    async def _record_failure(self, row: Notification, exc: Exception, first: float) -> None:
        error = describe_error(exc)
        log.warning(
            "notification %d for ticket %s not sent (attempt %d): %s",
            row.id,
            row.ticket_id,
            row.attempts + 1,
            error,
        )
        try:
            await self._mark_failed(row.id, error)
        except Exception:
            log.exception("could not record the failure of notification %d", row.id)
        await self._after_failure(first)

    async def _after_failure(self, first: float) -> None:
        self._failures += 1
        await self._sleep(backoff_delay(self._failures, first))

    async def _mark_sent(self, row_id: int) -> None:
        # last_error stays: it tells what delayed the card, while sent_at says it arrived.
        await self._update(row_id, attempts=Notification.attempts + 1, sent_at=utcnow())

    async def _mark_failed(self, row_id: int, error: str) -> None:
        await self._update(row_id, attempts=Notification.attempts + 1, last_error=error)

    async def _update(self, row_id: int, **values: object) -> None:
        async with self._database_work(), self._sessions() as session:
            await session.execute(
                update(Notification).where(Notification.id == row_id).values(**values)
            )
            await session.commit()


def describe_error(exc: Exception) -> str:
    """A short reason for logs and `last_error`; never the card itself."""
    if isinstance(exc, WechatApiError):
        text = f"{type(exc).__name__} errcode={exc.errcode}: {exc.errmsg}"
    else:
        text = type(exc).__name__
    return mask_text(text)[:LAST_ERROR_CHARS]
