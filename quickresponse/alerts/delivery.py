"""Exactly-once broadcast of an alert to its recipients.

One delivery row per recipient (UNIQUE alert_id, chat_id), created in bulk by SQL. Rows are
claimed in batches atomically, sent through a :class:`Sender` under a core token bucket, and
marked sent / failed / blocked. A row left in ``sending`` by a crashed process is claimed again
after a lease, so a restart finishes the broadcast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy import (
    Integer,
    String,
    Update,
    and_,
    bindparam,
    delete,
    func,
    literal,
    or_,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from quickresponse.alerts.hazards import Hazard, Level
from quickresponse.alerts.models import AlertDelivery, AlertSubscription
from quickresponse.alerts.subscriptions import wants_alert
from quickresponse.clock import Clock
from quickresponse.db import Database
from quickresponse.metrics import DELIVERIES
from quickresponse.models import FORGOTTEN_ID, User

OutcomeKind = Literal["sent", "retry_after", "blocked", "transient", "permanent"]
DeliveryState = Literal["pending", "sending", "sent", "failed", "blocked", "cancelled"]


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one send, in the core's terms (the Sender translates API errors)."""

    kind: OutcomeKind
    retry_after: float = 0.0
    detail: str = ""

    @classmethod
    def sent(cls) -> SendOutcome:
        return cls("sent")

    @classmethod
    def retry(cls, seconds: float, detail: str = "") -> SendOutcome:
        """Flood control: pause the whole broadcast for ``seconds``, then send this one again."""
        return cls("retry_after", retry_after=float(seconds), detail=detail)

    @classmethod
    def blocked(cls, detail: str = "") -> SendOutcome:
        """The recipient blocked the bot or the chat is gone: never send to them again."""
        return cls("blocked", detail=detail)

    @classmethod
    def transient(cls, detail: str = "") -> SendOutcome:
        """Network trouble or a server error: retry a bounded number of times."""
        return cls("transient", detail=detail)

    @classmethod
    def permanent(cls, detail: str = "") -> SendOutcome:
        """The API refused this message for good (e.g. bad request): record it as failed."""
        return cls("permanent", detail=detail)


class Sender(Protocol):
    """Sends one message; implemented for Telegram in ``quickresponse/telegram/sender.py``."""

    async def send(self, chat_id: int, html: str, *, paid: bool) -> SendOutcome: ...


@dataclass(frozen=True)
class DeliveryStats:
    """Delivery figures of one alert."""

    total: int = 0
    pending: int = 0
    sending: int = 0
    sent: int = 0
    failed: int = 0
    blocked: int = 0
    cancelled: int = 0

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.blocked + self.cancelled

    @property
    def remaining(self) -> int:
        return self.pending + self.sending


@dataclass(frozen=True)
class DeliveryReport:
    """The final report of one broadcast run (one process's share of it)."""

    alert_id: int
    stats: DeliveryStats
    started_at: datetime
    finished_at: datetime
    late: bool = False

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


class ProgressHook(Protocol):
    """Called as a broadcast goes (at most about once a second) and once at the end."""

    async def __call__(self, alert_id: int, stats: DeliveryStats, *, final: bool) -> None: ...


# -- the engine ----------------------------------------------------------------------------------

log = logging.getLogger(__name__)

# A row claimed by a process that then died is taken again after this long.
LEASE = timedelta(minutes=2)
# A row claimed this many times without an outcome (the process keeps dying on it) gives up.
MAX_CLAIMS = 5
# Transient errors (network, 5xx) are retried this many times in all, with backoff.
MAX_SEND_ATTEMPTS = 4
# A message answered with RetryAfter this many times is given back to the queue.
MAX_RETRY_AFTERS = 10
# Transient failures for this many different recipients in a row, with no send getting through
# in between, mean the Bot API (or the network) is down rather than one message failing: the
# broadcast waits it out with a growing pause instead of spending every recipient's retries.
OUTAGE_STREAK = 3
MAX_OUTAGE_PAUSE = 60.0
# After this many outage pauses a message goes back to the queue (the alert's expiry and
# cancellation are checked between batches).
MAX_OUTAGE_PAUSES = 8
# Telegram: at most 20 messages a minute to one group.
GROUP_MESSAGES_PER_MINUTE = 20
# Outcomes are written in small batches; a crash between a send and its write is the only
# way a recipient gets a message twice, so the buffer is kept short.
FLUSH_EVERY = 20
FLUSH_SECONDS = 0.5
PROGRESS_SECONDS = 2.0
# The token bucket's shortest sleep (seconds): the pacing's granularity.
BUCKET_TICK = 0.005
FINAL_STATES = ("sent", "failed", "blocked", "cancelled")

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """Paces sends at ``rate`` per second overall; a RetryAfter pauses every sender."""

    def __init__(self, rate: float, *, monotonic: Monotonic, sleep: Sleep,
                 burst: float | None = None) -> None:
        self.rate = rate
        # A small burst: Telegram counts per second, so a full second's burst could exceed it.
        self.capacity = burst if burst is not None else max(1.0, rate / 20)
        self._tokens = self.capacity
        self._monotonic = monotonic
        self._sleep = sleep
        self._stamp = monotonic()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """Nobody sends for ``seconds`` (Telegram's flood control said so)."""
        self._paused_until = max(self._paused_until, self._monotonic() + seconds)
        self._tokens = 0.0

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._monotonic()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                # The epsilon keeps float rounding from leaving the bucket a hair short forever.
                if self._tokens >= 1.0 - 1e-6:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return
                # Not less than a tick: at 1,000/s waking for every token cost a timer and a
                # loop iteration per message; a tick's tokens (a tenth of the burst) then go
                # out back to back.
                await self._sleep(max((1.0 - self._tokens) / self.rate, BUCKET_TICK))


class GroupPacer:
    """At most 20 messages a minute to one group chat (negative chat ids)."""

    def __init__(self, *, monotonic: Monotonic, sleep: Sleep,
                 per_minute: int = GROUP_MESSAGES_PER_MINUTE) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self._per_minute = per_minute
        self._sent: dict[int, deque[float]] = {}

    async def acquire(self, chat_id: int) -> None:
        if chat_id > 0:
            return
        times = self._sent.setdefault(chat_id, deque())
        while True:
            now = self._monotonic()
            while times and now - times[0] >= 60.0:
                times.popleft()
            if len(times) < self._per_minute:
                times.append(now)
                return
            await self._sleep(60.0 - (now - times[0]))


@dataclass(frozen=True)
class _Claimed:
    id: int
    chat_id: int
    lang: str


@dataclass
class _Outcome:
    delivery_id: int
    chat_id: int
    state: DeliveryState
    error: str | None = None


class Broadcaster:
    """Creates delivery rows and works through them; shared by all broadcasts of a process so
    that the rate limit is one limit."""

    def __init__(
        self, db: Database, clock: Clock, *, rate: float, paid: bool,
        sleep: Sleep | None = None, monotonic: Monotonic | None = None,
        batch_size: int | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self.paid = paid
        self._sleep = sleep or asyncio.sleep
        self._monotonic = monotonic or time.monotonic
        self.bucket = TokenBucket(rate, monotonic=self._monotonic, sleep=self._sleep)
        self.groups = GroupPacer(monotonic=self._monotonic, sleep=self._sleep)
        # About two seconds of sending per claim: small enough that a crash leaves few rows
        # leased, big enough that claiming is not the bottleneck.
        self.batch_size = batch_size or max(10, min(1000, int(rate * 2)))
        # Enough sends in flight to reach the rate over a slow link (1000/s at 250 ms each).
        self.concurrency = max(2, min(256, int(rate / 4)))
        # Recipients whose sends failed transiently since the Bot API last answered.
        self._failing_chats: set[int] = set()

    # -- recipients -----------------------------------------------------------------------------
    async def enqueue(
        self, session: AsyncSession, alert_id: int, *, district_ids: Sequence[str],
        hazard: Hazard, level: Level, default_lang: str, also_recipients_of: int | None = None,
    ) -> int:
        """Create one pending row per recipient, in SQL (``INSERT ... SELECT``), deduplicated.

        Recipients: active subscribers of the districts whose preferences let this alert
        through, plus (for an update or all-clear) the active recipients of the original.
        """
        insert = sqlite_insert if self._db.is_sqlite else pg_insert
        columns = ["alert_id", "chat_id", "lang", "state", "attempts"]
        subscribers = (
            select(
                literal(alert_id, Integer), AlertSubscription.chat_id,
                func.coalesce(func.max(User.language), default_lang),
                literal("pending", String), literal(0, Integer),
            )
            .select_from(AlertSubscription)
            .outerjoin(User, User.id == AlertSubscription.chat_id)
            .where(col(AlertSubscription.district_id).in_(list(district_ids)))
            .where(wants_alert(hazard, level))
            .group_by(AlertSubscription.chat_id)
        )
        total = 0
        result = await session.exec(  # type: ignore[call-overload]
            insert(AlertDelivery).from_select(columns, subscribers)
            .on_conflict_do_nothing(index_elements=["alert_id", "chat_id"]))
        total += max(result.rowcount or 0, 0)
        if also_recipients_of is not None:
            earlier = (
                select(
                    literal(alert_id, Integer), AlertDelivery.chat_id,
                    func.coalesce(User.language, AlertDelivery.lang),
                    literal("pending", String), literal(0, Integer),
                )
                .select_from(AlertDelivery)
                .outerjoin(User, User.id == AlertDelivery.chat_id)
                .where(AlertDelivery.alert_id == also_recipients_of)
                .where(AlertDelivery.state == "sent")
                # Rows of people who were forgotten point at stand-ins, not at a chat.
                .where(col(AlertDelivery.chat_id) > FORGOTTEN_ID)
                .where(or_(col(User.id).is_(None), User.active == true()))
            )
            result = await session.exec(  # type: ignore[call-overload]
                insert(AlertDelivery).from_select(columns, earlier)
                .on_conflict_do_nothing(index_elements=["alert_id", "chat_id"]))
            total += max(result.rowcount or 0, 0)
        return total

    # -- figures --------------------------------------------------------------------------------
    async def stats(self, alert_id: int) -> DeliveryStats:
        async def work(session: AsyncSession) -> DeliveryStats:
            return await stats_in(session, alert_id)

        return await self._db.run(work)

    # -- sending --------------------------------------------------------------------------------
    async def run(
        self, alert_id: int, messages: Mapping[str, str], sender: Sender, *,
        keep_going: Callable[[], Awaitable[bool]] | None = None,
        progress: ProgressHook | None = None,
    ) -> DeliveryStats:
        """Send every claimable row of ``alert_id``; return the figures when none is left.

        ``messages`` maps a language to the HTML to send. ``keep_going`` is asked between
        batches (the alert may have been cancelled or expired): when it says no, pending rows
        are cancelled. Safe to run in several processes at once; resumes after a crash.
        """
        writer = _OutcomeWriter(self._db, self._clock, self._monotonic)
        last_progress = self._monotonic()
        # Claimed rows waiting to be sent, each with the lease of its batch. The next batch is
        # claimed while this one still has half left, so workers never idle at a batch end.
        queue: deque[tuple[_Claimed, _Lease]] = deque()
        low_water = max(1, self.batch_size // 2)
        claim_lock = asyncio.Lock()
        exhausted = False

        async def fill() -> None:
            nonlocal exhausted, last_progress
            async with claim_lock:
                if exhausted or len(queue) >= low_water:
                    return
                await writer.flush()
                if progress is not None and \
                        self._monotonic() - last_progress >= PROGRESS_SECONDS:
                    last_progress = self._monotonic()
                    await progress(alert_id, await self.stats(alert_id), final=False)
                if keep_going is not None and not await keep_going():
                    # Cancelled, superseded or expired: nothing more goes out.
                    exhausted = True
                    dropped = [row.id for row, _ in queue]
                    queue.clear()
                    await self._cancel_pending(alert_id, also=dropped)
                    return
                batch = await self._claim(alert_id)
                if not batch:
                    exhausted = True
                    return
                lease = _Lease(self, [row.id for row in batch])
                queue.extend((row, lease) for row in batch)

        async def worker() -> None:
            while True:
                if not exhausted and len(queue) < low_water:
                    await fill()
                if not queue:
                    if exhausted:
                        return
                    continue
                row, lease = queue.popleft()
                outcome = await self._send_one(row, messages, sender, lease)
                lease.done(row.id)
                await writer.add(outcome)

        # Outcomes are written within FLUSH_SECONDS even while sending stalls (flood control,
        # an outage): a process killed during such a pause must not forget what it sent.
        flusher = asyncio.create_task(writer.flush_periodically())
        try:
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(self.concurrency):
                        group.create_task(worker())
            except BaseExceptionGroup as failed:
                # Sending errors are outcomes; what gets here stops the broadcast (a crash, a
                # shutdown, the database gone): raise it as itself. Rows in flight keep their
                # lease and are resumed later.
                raise failed.exceptions[0] from None
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            # Whatever was sent is recorded even when the broadcast is interrupted, so that
            # resuming does not send it again.
            await asyncio.shield(writer.flush())
        return await self.stats(alert_id)

    async def _send_one(
        self, row: _Claimed, messages: Mapping[str, str], sender: Sender, leased: _Lease
    ) -> _Outcome:
        html = messages.get(row.lang) or next(iter(messages.values()))
        failures = 0
        pauses = 0
        outage_pauses = 0
        while True:
            await self.bucket.acquire()
            await self.groups.acquire(row.chat_id)
            await leased.keep()
            try:
                outcome = await sender.send(row.chat_id, html, paid=self.paid)
            except Exception as exc:  # one bad send must not stop a broadcast
                log.exception("sender failed for delivery %s", row.id)
                outcome = SendOutcome.transient(f"{type(exc).__name__}: {exc}")
            if outcome.kind != "transient":
                self._failing_chats.clear()  # the Bot API answered
            if outcome.kind == "sent":
                DELIVERIES.labels("sent").inc()
                return _Outcome(row.id, row.chat_id, "sent")
            if outcome.kind == "blocked":
                DELIVERIES.labels("blocked").inc()
                return _Outcome(row.id, row.chat_id, "blocked", outcome.detail[:200] or None)
            if outcome.kind == "permanent":
                DELIVERIES.labels("failed").inc()
                return _Outcome(row.id, row.chat_id, "failed", outcome.detail[:200] or None)
            if outcome.kind == "retry_after":
                DELIVERIES.labels("throttled").inc()
                pauses += 1
                log.warning("flood control: pausing the broadcast for %.0f s",
                            outcome.retry_after)
                self.bucket.pause(outcome.retry_after)
                if pauses > MAX_RETRY_AFTERS:
                    return _Outcome(row.id, row.chat_id, "pending", "flood control")
                continue
            self._failing_chats.add(row.chat_id)
            if len(self._failing_chats) >= OUTAGE_STREAK:
                outage_pauses += 1
                wait = min(MAX_OUTAGE_PAUSE, 2.0 ** outage_pauses)
                log.warning("Bot API unreachable (%s): pausing the broadcast for %.0f s",
                            outcome.detail[:80], wait)
                self.bucket.pause(wait)
                if outage_pauses > MAX_OUTAGE_PAUSES:
                    return _Outcome(row.id, row.chat_id, "pending", "Bot API unreachable")
                continue
            failures += 1
            if failures >= MAX_SEND_ATTEMPTS:
                DELIVERIES.labels("failed").inc()
                return _Outcome(row.id, row.chat_id, "failed", outcome.detail[:200] or None)
            await self._sleep(min(30.0, 2.0 ** failures))

    async def _claim(self, alert_id: int) -> list[_Claimed]:
        """Take the next batch: pending rows and rows whose lease ran out, atomically."""
        now = self._clock.now()

        async def work(session: AsyncSession) -> list[_Claimed]:
            # A row that keeps killing its process is given up rather than retried forever.
            await session.exec(  # type: ignore[call-overload]
                update(AlertDelivery)
                .where(col(AlertDelivery.alert_id) == alert_id)
                .where(col(AlertDelivery.state) == "sending")
                .where(col(AlertDelivery.lease_until) < now)
                .where(col(AlertDelivery.attempts) >= MAX_CLAIMS)
                .values(state="failed", error="gave up after repeated interruptions",
                        lease_until=None))
            claimable = or_(
                col(AlertDelivery.state) == "pending",
                and_(col(AlertDelivery.state) == "sending",
                     col(AlertDelivery.lease_until) < now),
            )
            # A CTE, not ``IN (subquery)``: PostgreSQL may run a locking subquery once per
            # row and so claim far more than the batch. FOR UPDATE SKIP LOCKED makes
            # concurrent claimers skip each other's rows instead of waiting (PostgreSQL);
            # SQLite ignores it and runs the single statement under its write lock.
            picked = (
                select(AlertDelivery.id)
                .where(AlertDelivery.alert_id == alert_id)
                .where(claimable)
                .order_by(col(AlertDelivery.id))
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
                .cte("picked")
            )
            stmt = (
                update(AlertDelivery)
                .where(col(AlertDelivery.id) == picked.c.id)
                .where(claimable)
                .values(state="sending", lease_until=now + LEASE,
                        attempts=AlertDelivery.attempts + 1)
                .returning(AlertDelivery.id, AlertDelivery.chat_id, AlertDelivery.lang)
            )
            rows = (await session.exec(stmt)).all()  # type: ignore[call-overload]
            return sorted((_Claimed(r[0], r[1], r[2]) for r in rows), key=lambda c: c.id)

        return await self._db.run(work)

    async def _cancel_pending(self, alert_id: int, *, also: Sequence[int] = ()) -> None:
        """Pending rows, and ``also`` rows this process claimed but did not send, are
        cancelled."""
        async def work(session: AsyncSession) -> None:
            await session.exec(  # type: ignore[call-overload]
                update(AlertDelivery)
                .where(col(AlertDelivery.alert_id) == alert_id)
                .where(col(AlertDelivery.state) == "pending")
                .values(state="cancelled"))
            if also:
                await session.exec(  # type: ignore[call-overload]
                    update(AlertDelivery)
                    .where(col(AlertDelivery.id).in_(list(also)))
                    .where(col(AlertDelivery.state) == "sending")
                    .values(state="cancelled", lease_until=None))

        await self._db.run(work)

    async def renew(self, ids: Sequence[int]) -> datetime:
        until = self._clock.now() + LEASE

        async def work(session: AsyncSession) -> None:
            await session.exec(  # type: ignore[call-overload]
                update(AlertDelivery)
                .where(col(AlertDelivery.id).in_(list(ids)))
                .where(col(AlertDelivery.state) == "sending")
                .values(lease_until=until))

        if ids:
            await self._db.run(work)
        return until


class _Lease:
    """The rows of one claimed batch: renews their lease before it can run out (a long
    RetryAfter pause must not let another process take rows this one is about to send)."""

    def __init__(self, broadcaster: Broadcaster, ids: list[int]) -> None:
        self._broadcaster = broadcaster
        self._open = set(ids)
        self._until = broadcaster._clock.now() + LEASE
        self._lock = asyncio.Lock()

    def done(self, delivery_id: int) -> None:
        self._open.discard(delivery_id)

    async def keep(self) -> None:
        if self._until - self._broadcaster._clock.now() > LEASE / 2:
            return
        async with self._lock:
            if self._until - self._broadcaster._clock.now() > LEASE / 2:
                return
            self._until = await self._broadcaster.renew(sorted(self._open))


class _OutcomeWriter:
    """Buffers outcomes and writes them in small batches."""

    def __init__(self, db: Database, clock: Clock, monotonic: Monotonic) -> None:
        self._db = db
        self._clock = clock
        self._monotonic = monotonic
        self._buffer: list[_Outcome] = []
        self._last = monotonic()
        self._lock = asyncio.Lock()

    async def add(self, outcome: _Outcome) -> None:
        self._buffer.append(outcome)
        if len(self._buffer) >= FLUSH_EVERY or self._monotonic() - self._last >= FLUSH_SECONDS:
            await self.flush()

    async def flush_periodically(self) -> None:
        # Real time on purpose: this is about the process dying, not about pacing.
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except Exception:  # the outcomes stay buffered; the next flush writes them
                log.warning("could not record delivery outcomes yet; retrying", exc_info=True)

    async def flush(self) -> None:
        async with self._lock:
            if not self._buffer:
                return
            outcomes, self._buffer = self._buffer, []
            self._last = self._monotonic()
            now = self._clock.now()

            # One UPDATE per (state, error): normally a single one, all "sent".
            marks: dict[tuple[DeliveryState, str | None], list[int]] = {}
            for o in outcomes:
                marks.setdefault((o.state, o.error), []).append(o.delivery_id)

            async def work(session: AsyncSession) -> None:
                connection = await session.connection()
                for (state, error), ids in marks.items():
                    await connection.execute(
                        _MARK_SENT if state == "sent" else _MARK,
                        {"ids": ids, "to_state": state, "to_error": error, "sent_at_": now})
                blocked = [o.chat_id for o in outcomes if o.state == "blocked"]
                users = [c for c in blocked if c > 0]
                groups = [c for c in blocked if c < 0]
                if users:
                    # They blocked the bot: no more broadcasts until they talk to it again.
                    await session.exec(  # type: ignore[call-overload]
                        update(User).where(col(User.id).in_(users)).values(active=False))
                if groups:
                    # The bot was removed from the group: its subscriptions end.
                    await session.exec(  # type: ignore[call-overload]
                        delete(AlertSubscription)
                        .where(col(AlertSubscription.chat_id).in_(groups)))

            try:
                await self._db.run(work)
            except BaseException:
                self._buffer = outcomes + self._buffer
                raise


def _marking(*, sent: bool) -> Update:
    """The UPDATE that records outcomes of rows still ``sending``. Built once, in Core: building
    it anew through the ORM was about a third of each flush's CPU, at 50 flushes a second."""
    table = AlertDelivery.__table__
    stmt = (
        update(table)
        .where(table.c.id.in_(bindparam("ids", expanding=True)))
        .where(table.c.state == "sending")
        .values(state=bindparam("to_state"), error=bindparam("to_error"), lease_until=None)
    )
    return stmt.values(sent_at=bindparam("sent_at_")) if sent else stmt


_MARK = _marking(sent=False)
_MARK_SENT = _marking(sent=True)


async def stats_in(session: AsyncSession, alert_id: int) -> DeliveryStats:
    rows = (await session.exec(
        select(AlertDelivery.state, func.count())
        .where(AlertDelivery.alert_id == alert_id)
        .group_by(AlertDelivery.state))).all()
    counts = {state: int(n) for state, n in rows}
    return DeliveryStats(
        total=sum(counts.values()), pending=counts.get("pending", 0),
        sending=counts.get("sending", 0), sent=counts.get("sent", 0),
        failed=counts.get("failed", 0), blocked=counts.get("blocked", 0),
        cancelled=counts.get("cancelled", 0),
    )
