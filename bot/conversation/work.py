"""Which worker routes which stored message.

Channels store a message and acknowledge it; routing it is work any worker may take from the
database. A worker claims one inbound message at a time with a conditional update, only the
oldest unrouted message of its conversation, so one conversation's messages are routed one
after another, in order, whichever workers take them. A claim lasts `lease` (far longer than
routing takes: a model turn and a ticket are well under a second): a worker that
dies (kill -9) leaves its claim to expire and another worker takes the message. A worker
takes work only while it routes fewer than `capacity` messages, so a busy worker leaves new
messages to an idle one and more workers mean more pace.

A worker that stores a message tries to claim it at once (no waiting for a poll); otherwise
workers look for claimable messages when woken (`wake`, e.g. by a message stored on another
worker, through `bot.cluster.bus`) and every `poll_s` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, sessionmaker

from bot.cluster.bus import Bus
from bot.conversation.messages import stored_from_row
from bot.core.chat import StoredInbound
from bot.core.clock import Clock
from bot.db.models import Message

logger = logging.getLogger(__name__)

# A message whose routing failed (the database restarting, say) is tried again after this.
RETRY_AFTER = timedelta(seconds=5)
# After this many failed claims a message is set aside as handled, with an error in the log,
# so that one poisonous message does not hold its conversation for ever.
MAX_ATTEMPTS = 5

Route = Callable[[StoredInbound], Awaitable[None]]
TOPIC = "work"


def _claimable() -> object:
    """An inbound message nobody routes at `:now`, the oldest unrouted one of its
    conversation.

    Why "is the first" and not "no earlier one exists": in a database's statistics nothing
    waits to be routed, so PostgreSQL proved that no earlier message exists by reading the
    whole backlog for each candidate. Walking the unrouted in order stops at the message
    itself; under a storm's backlog of 800, a look for work took 0.70 ms, now 0.06 ms."""
    unrouted = aliased(Message)
    first_unrouted = (
        select(unrouted.id)
        .where(
            unrouted.conversation_id == Message.conversation_id,
            unrouted.direction == "in",
            unrouted.handled_at.is_(None),
        )
        .order_by(unrouted.id)
        .limit(1)
        .scalar_subquery()
    )
    return and_(
        Message.direction == "in",
        Message.handled_at.is_(None),
        or_(Message.routing_until.is_(None), Message.routing_until < bindparam("now")),
        Message.id == first_unrouted,
    )


class RoutingWork:
    def __init__(
        self,
        sessions: sessionmaker,
        route: Route,
        clock: Clock,
        worker: str,
        bus: Bus | None = None,
        lease: timedelta = timedelta(seconds=30),
        capacity: int = 2,
        poll_s: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._route = route
        self._clock = clock
        self.worker = worker
        self._capacity = capacity
        self._poll_s = poll_s
        self._lease = lease
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        # One look for work at a time: `drain` must not see "nothing claimable, nothing in
        # flight" while the poll holds a claim it has not started routing yet.
        self._taking = asyncio.Lock()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._bus = bus
        self._notices: set[asyncio.Future[None]] = set()
        # Built once: SQLAlchemy then reuses their cache keys and compiled SQL, which
        # building them anew for every claim cost about a tenth of a message's CPU.
        self._candidates = (
            select(Message.id, Message.routing_attempts)
            .where(_claimable())
            .order_by(Message.id)
            .limit(capacity + 1)
        )
        self._claim = (
            update(Message)
            .where(
                Message.id == bindparam("message_id"),
                _claimable(),
                Message.routing_attempts < MAX_ATTEMPTS,
            )
            .values(
                routing_by=bindparam("worker"),
                routing_until=bindparam("until"),
                routing_attempts=Message.routing_attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        self._set_aside = (
            update(Message)
            .where(
                Message.id == bindparam("message_id"),
                _claimable(),
                Message.routing_attempts >= MAX_ATTEMPTS,
            )
            .values(handled_at=bindparam("now"))
            .execution_options(synchronize_session=False)
        )
        # Whether a message this worker has not taken may be waiting; while it is not, a
        # finished message needs no look for more, and only the poll looks.
        self._backlog = True
        if bus is not None:
            bus.subscribe(TOPIC, self._on_bus)

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="routing-work")

    async def close(self) -> None:
        """Take no more work; finish what is being routed."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
        await self._finish_in_flight()

    def offer(self, stored: StoredInbound) -> None:
        """A message this worker just stored: routed here at once when this worker has room."""
        if len(self._in_flight) < self._capacity and not self._stopping:
            self._spawn(self._claim_and_route(stored))
            return
        self.wake()
        if self._bus is not None and not self._notices:
            # Busy here: an idle worker may take it now rather than at its next poll. One
            # notice at a time: under a burst, one per message only had every worker look at
            # once and lose its claims to the others.
            notice = asyncio.ensure_future(self._bus.publish(TOPIC, {}))
            self._notices.add(notice)
            notice.add_done_callback(self._notices.discard)

    async def _on_bus(self, _payload: dict[str, object]) -> None:
        self.wake()

    def wake(self) -> None:
        self._backlog = True
        self._wake.set()

    async def drain(self) -> None:
        """Until nothing this worker could take is left (tests, and shutdown)."""
        while True:
            await self._finish_in_flight()
            # Full when it looked (the poll may have filled it meanwhile): look again once
            # those are done.
            if not await self._take_more() and not self._in_flight:
                return

    async def _finish_in_flight(self) -> None:
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._in_flight.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        # A routed message may let a waiting one be claimed: the next of its conversation, or
        # one stored while this worker was full.
        if self._backlog:
            self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s)
            self._wake.clear()
            # The poll itself may find work stored on another worker.
            self._backlog = True
            if self._stopping:
                return
            try:
                await self._take_more()
            except Exception:
                logger.exception("looking for messages to route failed")

    async def _take_more(self) -> bool:
        """Claim and start routing messages while there is room; True when any was taken."""
        took = False
        async with self._taking:
            while len(self._in_flight) < self._capacity and not self._stopping:
                stored = await self._claim_next()
                if stored is None:
                    self._backlog = False
                    break
                self._spawn(self._route_claimed(stored))
                took = True
        return took

    async def _claim_next(self) -> StoredInbound | None:
        now = self._clock.now()
        async with self._sessions() as session:
            candidates = (await session.execute(self._candidates, {"now": now})).all()
        for message_id, attempts in candidates:
            if attempts >= MAX_ATTEMPTS:
                await self._set_aside_message(message_id, now)
                continue
            stored = await self._claim_and_load(message_id)
            if stored is not None:
                return stored
        return None

    async def _set_aside_message(self, message_id: int, now: object) -> None:
        """Failed too often: handled, with an error in the log, so that one poisonous
        message does not hold its conversation for ever."""
        async with self._sessions() as session, session.begin():
            set_aside = await session.execute(
                self._set_aside, {"message_id": message_id, "now": now}
            )
        if set_aside.rowcount == 1:
            logger.error("message %s failed routing %d times; set aside", message_id, MAX_ATTEMPTS)

    async def _claim_and_load(self, message_id: int) -> StoredInbound | None:
        """The message, if this worker won it; loaded in the claim's own transaction."""
        async with self._sessions() as session, session.begin():
            if not await self._win(session, message_id):
                return None
            message = await session.get(Message, message_id)
            assert message is not None
            return stored_from_row(message)

    async def _claim_and_route(self, stored: StoredInbound) -> None:
        """A message this worker stored: it already holds it, so only the claim is needed."""
        async with self._sessions() as session, session.begin():
            won = await self._win(session, stored.message_id)
        if won:
            await self._route_claimed(stored)
        else:
            # Waiting behind an earlier message of its conversation, or taken elsewhere.
            self.wake()

    async def _win(self, session: AsyncSession, message_id: int) -> bool:
        """Claim the message if it is claimable and has attempts left (the poll sets aside
        one that has none)."""
        now = self._clock.now()
        won = await session.execute(
            self._claim,
            {
                "message_id": message_id,
                "now": now,
                "worker": self.worker,
                "until": now + self._lease,
            },
        )
        return bool(won.rowcount == 1)

    async def _route_claimed(self, stored: StoredInbound) -> None:
        try:
            await self._route(stored)
        except Exception:
            logger.exception("routing message %s failed; trying again later", stored.message_id)
            await self._retry_later(stored.message_id)

    async def _retry_later(self, message_id: int) -> None:
        # With the database gone this fails too; the claim then simply runs out its lease.
        with contextlib.suppress(Exception):
            async with self._sessions() as session, session.begin():
                await session.execute(
                    update(Message)
                    .where(Message.id == message_id, Message.handled_at.is_(None))
                    .values(routing_until=self._clock.now() + RETRY_AFTER)
                )
