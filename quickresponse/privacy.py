"""Residents' personal data: kept for a set time, then purged; forgotten on request; exported.

What is personal here: a user's row (language, when they were seen), the texts of their questions,
half-filled conversations, alert subscriptions and preferences, which alerts reached their chat,
and on tickets their id and chat, their words (description, added information, verdict notes,
withdrawal reason), address, location, photos, name and phone, and which tickets they follow.

Forgetting keeps what the city needs to account for its work without pointing to anyone: a
ticket stays with its category, district, state, times, urgency, satisfaction and the staff's own
notes, and a question stays as an anonymous count (outcome, matched entry, language). Where a
column needs an id, :data:`~quickresponse.models.FORGOTTEN_ID` stands in (and ``FORGOTTEN_ID - row
id`` where the id must be unique), so foreign keys and unique constraints stay valid and nothing
can be sent to a forgotten person.

The retention purge runs daily in every process; each step is idempotent, and on PostgreSQL an
advisory lock lets one process do it while the others skip.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, String, case, delete, false, literal, or_, text, true, update
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from quickresponse.alerts.models import (
    Alert,
    AlertDelivery,
    AlertHazardFilter,
    AlertPreference,
    AlertSubscription,
)
from quickresponse.clock import Clock, as_utc
from quickresponse.db import Database
from quickresponse.models import FORGOTTEN_ID, ConversationState, QuestionLog, User
from quickresponse.scheduling import Scheduler
from quickresponse.tickets.models import (
    Staff,
    Ticket,
    TicketEvent,
    TicketFollower,
    TicketNotification,
    TicketPhoto,
)
from quickresponse.tickets.service import FINISHED_STATES, Role
from quickresponse.updates import UpdateLog

log = logging.getLogger(__name__)

# What an anonymised ticket shows where the resident's words were (stored, so in both languages).
REDACTED = "（已应居民要求或按保存期限删除 · removed at the resident's request or after the " \
           "retention period）"
PURGE_JOB = "privacy:purge"
PURGE_START_JOB = "privacy:purge:start"
PURGE_EVERY = timedelta(days=1)
# The first purge after a start waits until the process has settled (and a crash loop does not
# purge in a loop).
PURGE_START_DELAY = timedelta(minutes=10)
BATCH = 500
# Any fixed number identifies the purge's PostgreSQL advisory lock; this one spells "QRPG".
PURGE_LOCK_KEY = 0x51525047
_FINISHED = tuple(str(s) for s in FINISHED_STATES)
# Params of ticket notifications that carry the resident's own words or photo.
_RESIDENT_PARAMS = ("text", "reason", "photo_file_id")


@dataclass(frozen=True)
class ForgetReport:
    """What forgetting one person changed (counts of rows)."""

    user_row: bool = False
    questions: int = 0
    conversations: int = 0
    subscriptions: int = 0
    tickets_anonymised: int = 0
    follows: int = 0
    photos: int = 0
    deliveries: int = 0
    # The anonymised tickets, so that a front end can refresh what it showed of them.
    ticket_ids: tuple[int, ...] = ()

    @property
    def anything(self) -> bool:
        return any(bool(getattr(self, f.name)) for f in fields(self))


@dataclass(frozen=True)
class PurgeReport:
    """What one retention purge removed or anonymised."""

    questions_blanked: int = 0
    tickets_anonymised: int = 0
    users_forgotten: int = 0
    conversations: int = 0
    notifications: int = 0
    deliveries_unlinked: int = 0
    staff_rows: int = 0
    update_ids: int = 0
    skipped: bool = False


class PrivacyService:
    """Retention purge, right to be forgotten and access requests."""

    def __init__(
        self, db: Database, clock: Clock, updates: UpdateLog, *,
        question_retention_days: int, personal_data_retention_days: int,
    ) -> None:
        self._db = db
        self._clock = clock
        self._updates = updates
        self.question_retention = timedelta(days=question_retention_days)
        self.personal_retention = timedelta(days=personal_data_retention_days)

    # -- the right to be forgotten ---------------------------------------------------------------
    async def forget(self, user_id: int) -> ForgetReport:
        """Delete ``user_id``'s personal data; their tickets stay, anonymised. All or nothing."""
        async def work(session: AsyncSession) -> ForgetReport:
            return await self._forget_in(session, user_id)

        report = await self._db.run(work)
        log.info("forgot a user's personal data: %d ticket(s) anonymised",
                 report.tickets_anonymised)
        return report

    async def _forget_in(self, session: AsyncSession, user_id: int) -> ForgetReport:
        ticket_ids = list((await session.exec(
            select(Ticket.id).where(Ticket.resident_id == user_id))).all())
        anonymised, ticket_photos = await _anonymise_tickets(session, ticket_ids)
        # Their part in other people's tickets: what they added there and that they follow.
        await session.exec(update(TicketEvent).where(  # type: ignore[call-overload]
            col(TicketEvent.actor_id) == user_id, col(TicketEvent.actor_role) == Role.RESIDENT
        ).values(actor_id=None, note=None))
        photos = await _count_delete(session, delete(TicketPhoto).where(
            col(TicketPhoto.added_by) == user_id))
        follows = await _count_delete(session, delete(TicketFollower).where(
            col(TicketFollower.user_id) == user_id))
        await session.exec(delete(TicketNotification).where(  # type: ignore[call-overload]
            col(TicketNotification.recipient_id) == user_id))
        questions = await _rowcount(session, update(QuestionLog).where(
            col(QuestionLog.user_id) == user_id).values(text="", user_id=None))
        conversations = await _count_delete(session, delete(ConversationState).where(or_(
            col(ConversationState.key) == f"{user_id}:{user_id}",
            col(ConversationState.key).like(f"%:{user_id}"))))
        subscriptions = await _count_delete(session, delete(AlertSubscription).where(
            col(AlertSubscription.chat_id) == user_id))
        await session.exec(delete(AlertHazardFilter).where(  # type: ignore[call-overload]
            col(AlertHazardFilter.chat_id) == user_id))
        await session.exec(delete(AlertPreference).where(  # type: ignore[call-overload]
            col(AlertPreference.chat_id) == user_id))
        deliveries = await _unlink_deliveries(
            session, col(AlertDelivery.chat_id) == user_id)
        user_row = await _count_delete(session, delete(User).where(col(User.id) == user_id))
        return ForgetReport(
            user_row=bool(user_row), questions=questions, conversations=conversations,
            subscriptions=subscriptions, tickets_anonymised=anonymised, follows=follows,
            photos=photos + ticket_photos, deliveries=deliveries,
            ticket_ids=tuple(i for i in ticket_ids if i is not None),
        )

    # -- retention ------------------------------------------------------------------------------
    async def run_due(self, now: datetime | None = None) -> PurgeReport:
        """Purge whatever outlived its retention period (idempotent; safe in every process)."""
        now = as_utc(now or self._clock.now())
        async with self._exclusive() as mine:
            if not mine:
                log.info("retention purge skipped: another process is running it")
                return PurgeReport(skipped=True)
            report = PurgeReport(
                questions_blanked=await self._blank_questions(now - self.question_retention),
                tickets_anonymised=await self._anonymise_finished(now - self.personal_retention),
                users_forgotten=await self._forget_silent(now - self.personal_retention),
                conversations=await self._drop_conversations(now - self.personal_retention),
                notifications=await self._drop_notifications(now - self.personal_retention),
                deliveries_unlinked=await self._unlink_old_deliveries(
                    now - self.personal_retention),
                staff_rows=await self._drop_former_staff(now - self.personal_retention),
                update_ids=await self._updates.purge(),
            )
        done = ", ".join(f"{k}={v}" for k, v in asdict(report).items() if v)
        log.info("retention purge done: %s", done or "nothing to purge")
        return report

    async def _blank_questions(self, cutoff: datetime) -> int:
        async def work(session: AsyncSession) -> int:
            ids = list((await session.exec(
                select(QuestionLog.id).where(col(QuestionLog.created_at) < cutoff)
                .where(or_(col(QuestionLog.text) != "", col(QuestionLog.user_id).is_not(None)))
                .order_by(col(QuestionLog.id)).limit(BATCH))).all())
            if not ids:
                return 0
            return await _rowcount(session, update(QuestionLog).where(
                col(QuestionLog.id).in_(ids)).values(text="", user_id=None))

        return await self._batches(work)

    async def _anonymise_finished(self, cutoff: datetime) -> int:
        async def work(session: AsyncSession) -> int:
            ids = list((await session.exec(
                select(Ticket.id).where(col(Ticket.state).in_(_FINISHED))
                .where(col(Ticket.updated_at) < cutoff)
                .where(col(Ticket.resident_id) != FORGOTTEN_ID)
                .order_by(col(Ticket.id)).limit(BATCH))).all())
            if not ids:
                return 0
            done, _photos = await _anonymise_tickets(session, ids)
            # A finished ticket sends nothing more: its followers and outbox go too.
            await session.exec(delete(TicketFollower).where(  # type: ignore[call-overload]
                col(TicketFollower.ticket_id).in_(ids)))
            await session.exec(delete(TicketNotification).where(  # type: ignore[call-overload]
                col(TicketNotification.ticket_id).in_(ids),
                col(TicketNotification.status) != "pending"))
            return done

        return await self._batches(work)

    async def _forget_silent(self, cutoff: datetime) -> int:
        """People not seen for the retention period with nothing that still needs them: no
        subscription, no open ticket of theirs or that they follow, no staff role."""
        unfinished = select(Ticket.id).where(col(Ticket.state).not_in(_FINISHED))
        busy = or_(
            col(User.id).in_(select(AlertSubscription.chat_id)),
            col(User.id).in_(select(Ticket.resident_id).where(
                col(Ticket.state).not_in(_FINISHED))),
            col(User.id).in_(select(TicketFollower.user_id).where(
                col(TicketFollower.ticket_id).in_(unfinished))),
            col(User.id).in_(select(Staff.user_id).where(col(Staff.active) == true())),
        )
        total = 0
        while True:
            async def candidates(session: AsyncSession) -> list[int]:
                return list((await session.exec(
                    select(User.id).where(col(User.last_seen_at) < cutoff).where(~busy)
                    .order_by(col(User.id)).limit(BATCH))).all())

            ids = await self._db.run(candidates)
            for user_id in ids:
                await self.forget(user_id)
            total += len(ids)
            if len(ids) < BATCH:
                return total

    async def _drop_conversations(self, cutoff: datetime) -> int:
        async def work(session: AsyncSession) -> int:
            return await _count_delete(session, delete(ConversationState).where(
                col(ConversationState.updated_at) < cutoff))

        return await self._db.run(work)

    async def _drop_notifications(self, cutoff: datetime) -> int:
        async def work(session: AsyncSession) -> int:
            return await _count_delete(session, delete(TicketNotification).where(
                col(TicketNotification.created_at) < cutoff,
                col(TicketNotification.status) != "pending"))

        return await self._db.run(work)

    async def _unlink_old_deliveries(self, cutoff: datetime) -> int:
        async def work(session: AsyncSession) -> int:
            old = select(Alert.id).where(col(Alert.expires_at) < cutoff)
            ids = list((await session.exec(
                select(AlertDelivery.id).where(col(AlertDelivery.alert_id).in_(old))
                .where(col(AlertDelivery.chat_id) > FORGOTTEN_ID)
                .order_by(col(AlertDelivery.id)).limit(BATCH * 10))).all())
            if not ids:
                return 0
            return await _unlink_deliveries(session, col(AlertDelivery.id).in_(ids))

        return await self._batches(work)

    async def _drop_former_staff(self, cutoff: datetime) -> int:
        async def work(session: AsyncSession) -> int:
            return await _count_delete(session, delete(Staff).where(
                col(Staff.active) == false(), col(Staff.updated_at) < cutoff))

        return await self._db.run(work)

    async def _batches(self, work: Any) -> int:
        total = 0
        while True:
            done = await self._db.run(work)
            total += done
            if not done:
                return total

    @asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[bool]:
        """On PostgreSQL, hold an advisory lock so that one process purges at a time. SQLite
        serialises writers itself and the steps are idempotent, so there it always proceeds."""
        if self._db.is_sqlite:
            yield True
            return
        async with self._db.engine.connect() as conn:
            got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"),
                                         {"k": PURGE_LOCK_KEY}))
            await conn.commit()
            try:
                yield got
            finally:
                if got:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"),
                                       {"k": PURGE_LOCK_KEY})
                    await conn.commit()

    async def restore_jobs(self, scheduler: Scheduler) -> None:
        """Purge daily, and once shortly after the start (a process restarted more often than
        daily still purges)."""
        scheduler.every(PURGE_JOB, PURGE_EVERY.total_seconds(), self._job)
        # Wall time on purpose: the delay is about this process, not about the data's dates.
        scheduler.at(PURGE_START_JOB, datetime.now(UTC) + PURGE_START_DELAY, self._job)

    async def _job(self) -> None:
        try:
            await self.run_due()
        except Exception:  # a failed purge is retried by the next run; the bot keeps going
            log.exception("retention purge failed")

    # -- access requests ------------------------------------------------------------------------
    async def export(self, user_id: int) -> dict[str, Any]:
        """Everything held about ``user_id``, as JSON-ready values."""
        async def work(session: AsyncSession) -> dict[str, Any]:
            user = await session.get(User, user_id)
            tickets = (await session.exec(select(Ticket).where(
                Ticket.resident_id == user_id).order_by(col(Ticket.id)))).all()
            ticket_ids = [t.id for t in tickets]
            events = (await session.exec(select(TicketEvent).where(or_(
                col(TicketEvent.ticket_id).in_(ticket_ids),
                col(TicketEvent.actor_id) == user_id)).order_by(col(TicketEvent.id)))).all()
            photos = (await session.exec(select(TicketPhoto).where(or_(
                col(TicketPhoto.ticket_id).in_(ticket_ids),
                col(TicketPhoto.added_by) == user_id)).order_by(col(TicketPhoto.id)))).all()
            return {
                "user_id": user_id,
                "exported_at": _plain(self._clock.now()),
                "user": _row(user) if user is not None else None,
                "questions": await _rows(session, select(QuestionLog).where(
                    QuestionLog.user_id == user_id).order_by(col(QuestionLog.id))),
                "conversations": await _rows(session, select(ConversationState).where(or_(
                    col(ConversationState.key) == f"{user_id}:{user_id}",
                    col(ConversationState.key).like(f"%:{user_id}")))),
                "alert_subscriptions": await _rows(session, select(AlertSubscription).where(
                    AlertSubscription.chat_id == user_id).order_by(col(AlertSubscription.id))),
                "alert_preferences": await _rows(session, select(AlertPreference).where(
                    AlertPreference.chat_id == user_id)),
                "alert_hazard_filters": await _rows(session, select(AlertHazardFilter).where(
                    AlertHazardFilter.chat_id == user_id)),
                "alert_deliveries": await _rows(session, select(AlertDelivery).where(
                    AlertDelivery.chat_id == user_id).order_by(col(AlertDelivery.id))),
                "tickets": [
                    {**_row(t),
                     "events": [_row(e) for e in events if e.ticket_id == t.id],
                     "photos": [_row(p) for p in photos if p.ticket_id == t.id]}
                    for t in tickets
                ],
                "events_on_other_tickets": [_row(e) for e in events
                                            if e.ticket_id not in ticket_ids],
                "photos_on_other_tickets": [_row(p) for p in photos
                                            if p.ticket_id not in ticket_ids],
                "following": await _rows(session, select(TicketFollower).where(
                    TicketFollower.user_id == user_id).order_by(col(TicketFollower.id))),
                "ticket_notifications": await _rows(session, select(TicketNotification).where(
                    TicketNotification.recipient_id == user_id).order_by(
                    col(TicketNotification.id))),
                "staff_roles": await _rows(session, select(Staff).where(
                    Staff.user_id == user_id).order_by(col(Staff.id))),
            }

        return await self._db.run(work)


async def _anonymise_tickets(session: AsyncSession, ids: Sequence[int | None]
                             ) -> tuple[int, int]:
    """Anonymise these tickets; return how many, and how many photos went with them."""
    ids = [i for i in ids if i is not None]
    if not ids:
        return 0, 0
    await session.exec(update(Ticket).where(col(Ticket.id).in_(ids)).values(  # type: ignore[call-overload]
        resident_id=FORGOTTEN_ID, chat_id=FORGOTTEN_ID, description=REDACTED, address=None,
        latitude=None, longitude=None, contact_consent=False, contact_name=None,
        contact_phone=None,
        # A withdrawal's reason is the resident's; a rejection's is the staff's and stays.
        reason=case((col(Ticket.state) == "withdrawn", None), else_=col(Ticket.reason)),
        version=col(Ticket.version) + 1,
    ))
    await session.exec(update(TicketEvent).where(  # type: ignore[call-overload]
        col(TicketEvent.ticket_id).in_(ids), col(TicketEvent.actor_role) == Role.RESIDENT
    ).values(actor_id=None, note=None))
    photos = await _count_delete(session, delete(TicketPhoto).where(
        col(TicketPhoto.ticket_id).in_(ids)))
    # Messages still waiting in the outbox: the resident's own ones go; the staff's lose the
    # resident's words (the card they render shows the anonymised ticket).
    await session.exec(delete(TicketNotification).where(  # type: ignore[call-overload]
        col(TicketNotification.ticket_id).in_(ids),
        or_(col(TicketNotification.status) != "pending",
            col(TicketNotification.audience) == "resident")))
    pending = (await session.exec(select(TicketNotification).where(
        col(TicketNotification.ticket_id).in_(ids),
        col(TicketNotification.audience).in_(("district", "admins"))))).all()
    for row in pending:
        if any(key in row.params for key in _RESIDENT_PARAMS):
            row.params = {k: v for k, v in row.params.items() if k not in _RESIDENT_PARAMS}
            session.add(row)
    return len(ids), photos


async def _unlink_deliveries(session: AsyncSession, where: Any) -> int:
    """Point delivery rows at a unique stand-in instead of the chat; still-pending ones are
    cancelled. The counts of each alert's broadcast stay right."""
    return await _rowcount(session, update(AlertDelivery).where(where).values(
        chat_id=literal(FORGOTTEN_ID, BigInteger) - col(AlertDelivery.id),
        state=case((col(AlertDelivery.state).in_(("pending", "sending")),
                    literal("cancelled", String)), else_=col(AlertDelivery.state)),
        lease_until=None,
    ))


async def _rowcount(session: AsyncSession, statement: Any) -> int:
    result = await session.exec(statement)
    return max(int(result.rowcount or 0), 0)


async def _count_delete(session: AsyncSession, statement: Any) -> int:
    return await _rowcount(session, statement)


async def _rows(session: AsyncSession, statement: Any) -> list[dict[str, Any]]:
    return [_row(r) for r in (await session.exec(statement)).all()]


def _row(model: SQLModel) -> dict[str, Any]:
    return {key: _plain(value) for key, value in model.model_dump().items()}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return value


__all__ = ["REDACTED", "ForgetReport", "PrivacyService", "PurgeReport"]
