"""Alerts: compose, approve, schedule, cancel, update and all-clear, in the CAP 1.2 model.

The public API the Telegram side (and ``python bot.py alerts``) uses. Everything takes and
returns plain values; times are aware UTC datetimes.

Life of an alert::

    draft -> [pending_approval] -> scheduled -> sending -> sent -> expired
         \\-> cancelled (draft, pending_approval, scheduled; or sending: the rest is not sent)
    scheduled -> missed (its time passed while the bot was down, beyond the grace period)

An update (CAP msgType Update) or all-clear (msgType Cancel) is a new alert that references the
original; it goes to the original's recipients as well as the current subscribers.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import and_, case, exists, func, or_, union, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from quickresponse.alerts.cap import CapInfo, CapMessage, CapReference, build_cap, split_body
from quickresponse.alerts.delivery import (
    Broadcaster,
    DeliveryReport,
    DeliveryStats,
    Monotonic,
    ProgressHook,
    Sender,
    SendOutcome,
    stats_in,
)
from quickresponse.alerts.errors import (
    AlertError,
    AlertNotFound,
    AlertStateConflict,
    AlertTextInvalid,
    AlertTimeInvalid,
    ApprovalBySameAdmin,
    LevelNotIssued,
    NoTargetDistricts,
    UnknownDistrict,
    UnknownHazard,
    UnknownLevel,
)
from quickresponse.alerts.hazards import Hazard, Level, parse_hazard, parse_level
from quickresponse.alerts.in_force import InForce
from quickresponse.alerts.models import (
    Alert,
    AlertDelivery,
    AlertDistrict,
    AlertNotice,
    AlertSubscription,
)
from quickresponse.alerts.subscriptions import SubscriptionService, SubscriptionView, wants_alert
from quickresponse.alerts.templates import MessageParts, Templates, load_templates, render_message
from quickresponse.clock import Clock, as_utc
from quickresponse.db import Database
from quickresponse.errors import ConfigError, NotPermitted
from quickresponse.i18n import LANGS, t
from quickresponse.models import User
from quickresponse.qa import ActiveWarning
from quickresponse.scheduling import Scheduler
from quickresponse.settings import Settings
from quickresponse.textnorm import clean_user_text

if TYPE_CHECKING:
    from quickresponse.districts import City

__all__ = [
    "AdminNotice", "AlertDraft", "AlertError", "AlertNotFound", "AlertService", "AlertState",
    "AlertStateConflict", "AlertTextInvalid", "AlertTexts", "AlertTimeInvalid", "AlertView",
    "ApprovalBySameAdmin", "DeliveryReport", "DeliveryStats", "DueReport", "Hazard", "Level",
    "LevelNotIssued", "MsgType", "NoTargetDistricts", "Preview", "ProgressHook", "SendOutcome",
    "Sender", "SubscriptionService", "SubscriptionView", "UnknownDistrict", "UnknownHazard",
    "UnknownLevel", "parse_hazard", "parse_level",
]

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 2000
# An alert may be in force for at most this long; an all-clear stays listed for ALL_CLEAR_FOR.
MAX_VALIDITY = timedelta(days=14)
ALL_CLEAR_FOR = timedelta(hours=6)
# "Now" chosen in the wizard may be a few minutes old by the time the admin confirms.
PAST_TOLERANCE = timedelta(minutes=5)
MAX_SCHEDULE_AHEAD = timedelta(days=30)
# Started this much after its time, an alert counts as late (and the admins are told).
LATE_AFTER = timedelta(minutes=1)
SWEEP_SECONDS = 30
MsgType = Literal["Alert", "Update", "Cancel"]


class AlertState(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"
    MISSED = "missed"
    EXPIRED = "expired"


@dataclass(frozen=True)
class AlertTexts:
    zh: str
    en: str

    def for_lang(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


@dataclass(frozen=True)
class AlertDraft:
    """What an admin composes. ``None`` texts are filled from the templates; ``district_ids``
    ``None`` means every district; ``send_at`` ``None`` means now; ``expires_at`` ``None`` means
    the default validity (``QR_ALERT_DEFAULT_HOURS`` after sending)."""

    hazard: Hazard
    level: Level
    district_ids: tuple[str, ...] | None = None
    text_zh: str | None = None
    text_en: str | None = None
    send_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class AlertView:
    """One alert as the admin sees it, with its delivery figures."""

    id: int
    identifier: str
    msg_type: MsgType
    hazard: Hazard
    level: Level
    district_ids: tuple[str, ...]
    all_districts: bool
    texts: AlertTexts
    state: AlertState
    created_by: int
    created_at: datetime
    send_at: datetime
    expires_at: datetime
    approved_by: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    late: bool = False
    references_id: int | None = None
    cancelled_by: int | None = None
    stats: DeliveryStats = field(default_factory=DeliveryStats)

    @property
    def job_id(self) -> str:
        return f"alert:{self.id}"


@dataclass(frozen=True)
class Preview:
    """What confirming would do: who gets it and exactly what they read."""

    alert: AlertView
    recipients: int
    messages: dict[str, str]  # lang -> the Telegram-HTML message recipients of that language get
    needs_approval: bool


NoticeKind = Literal["approval_needed", "approved", "late", "missed", "finished"]


@dataclass(frozen=True)
class AdminNotice:
    """Something the admins must be told (the Telegram side sends it to the admin chat)."""

    id: int
    kind: NoticeKind
    alert_id: int
    created_at: datetime
    # The admin it concerns most (author for 'approved' / 'finished'), or None for all admins.
    admin_id: int | None = None


@dataclass(frozen=True)
class DueReport:
    """What one ``run_due`` did."""

    started: tuple[int, ...] = ()
    late: tuple[int, ...] = ()
    missed: tuple[int, ...] = ()
    expired: tuple[int, ...] = ()
    resumed: tuple[int, ...] = ()
    reports: tuple[DeliveryReport, ...] = ()


Notifier = Callable[[AdminNotice], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]


class AlertService:
    """Everything admins do with alerts, plus scheduling and delivery."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        city: City,
        subscriptions: SubscriptionService,
        *,
        templates: Templates | None = None,
        sleep: Sleep | None = None,
        monotonic: Monotonic | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self.city = city
        self.subscriptions = subscriptions
        self.templates = templates or load_templates()
        self.sender_id = (settings.alert_sender or f"quickresponse@{city.id}").replace(" ", "")
        self.broadcaster = Broadcaster(
            db, clock, rate=settings.broadcast_rate, paid=settings.allow_paid_broadcast,
            sleep=sleep, monotonic=monotonic,
        )
        self._sender: Sender | None = None
        self._progress: ProgressHook | None = None
        self._notify: Notifier | None = None
        self._scheduler: Scheduler | None = None
        # Broadcasts this process is running now, so that a sweep does not start a second
        # loop over the same alert (which would still be correct, only wasteful).
        self._running: dict[int, asyncio.Task[DeliveryReport]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        # Most questions are asked while no warning is in force: they need no warnings query.
        self.in_force = InForce(self._in_force_ends, clock, monotonic=monotonic or time.monotonic)

    # -- wiring ----------------------------------------------------------------------------
    def attach(
        self, sender: Sender, *, progress: ProgressHook | None = None,
        notify: Notifier | None = None,
    ) -> None:
        """Give the service its way out: the sender, a progress hook and an admin notifier."""
        self._sender = sender
        self._progress = progress
        self._notify = notify

    def is_admin(self, user_id: int | None) -> bool:
        return self._settings.is_admin(user_id)

    def _require_admin(self, user_id: int) -> None:
        if not self.is_admin(user_id):
            raise NotPermitted(f"user {user_id} is not an admin")

    # -- composing -------------------------------------------------------------------------
    def levels_for(self, hazard: Hazard) -> tuple[Level, ...]:
        """The levels ``hazard`` is issued at (hail: orange and red), least severe first."""
        return self.templates.levels(Hazard(hazard))

    def prefill(self, hazard: Hazard, level: Level) -> AlertTexts:
        """The template texts for a hazard and level (what the admin starts from)."""
        hazard, level = Hazard(hazard), Level(level)
        self._check_level(hazard, level)
        return AlertTexts(zh=self.templates.body(hazard, level, "zh"),
                          en=self.templates.body(hazard, level, "en"))

    def all_clear_texts(self, hazard: Hazard) -> AlertTexts:
        hazard = Hazard(hazard)
        return AlertTexts(zh=self.templates.all_clear_body(hazard, "zh"),
                          en=self.templates.all_clear_body(hazard, "en"))

    async def compose(self, admin_id: int, draft: AlertDraft) -> AlertView:
        """Save a new alert as a draft (nothing is sent). Raises NotPermitted, InvalidInput."""
        self._require_admin(admin_id)
        return await self._create(admin_id, draft, msg_type="Alert", original=None)

    async def compose_update(
        self, admin_id: int, original_id: int, draft: AlertDraft
    ) -> AlertView:
        """A draft CAP Update of a sent (or sending) alert, superseding it once sent."""
        self._require_admin(admin_id)
        original = await self._referable(original_id)
        return await self._create(admin_id, draft, msg_type="Update", original=original)

    async def compose_all_clear(
        self, admin_id: int, original_id: int, *, text_zh: str | None = None,
        text_en: str | None = None, send_at: datetime | None = None,
    ) -> AlertView:
        """A draft all-clear (CAP Cancel) of a sent alert; texts default to the template."""
        self._require_admin(admin_id)
        original = await self._referable(original_id)
        texts = self.all_clear_texts(original.hazard)
        start = as_utc(send_at) if send_at else self._clock.now()
        draft = AlertDraft(
            hazard=original.hazard, level=original.level,
            district_ids=None if original.all_districts else original.district_ids,
            text_zh=text_zh or texts.zh, text_en=text_en or texts.en,
            send_at=send_at, expires_at=max(start, self._clock.now()) + ALL_CLEAR_FOR,
        )
        return await self._create(admin_id, draft, msg_type="Cancel", original=original)

    async def _referable(self, original_id: int) -> AlertView:
        original = await self.get(original_id)
        if original.msg_type == "Cancel" or original.state not in (
                AlertState.SENDING, AlertState.SENT):
            raise AlertStateConflict(
                f"alert #{original_id} is {original.state}; only a sent alert can be updated "
                "or lifted", alert_id=original_id, state=original.state.value)
        return original

    async def _create(
        self, admin_id: int, draft: AlertDraft, *, msg_type: MsgType,
        original: AlertView | None,
    ) -> AlertView:
        hazard, level = Hazard(draft.hazard), Level(draft.level)
        self._check_level(hazard, level)
        if draft.district_ids is None:
            all_districts, district_ids = True, tuple(d.id for d in self.city.districts)
        else:
            district_ids = self.subscriptions.check_districts(draft.district_ids)
            if not district_ids:
                raise NoTargetDistricts("no target districts")
            all_districts = len(district_ids) == len(self.city.districts)
        template = self.prefill(hazard, level) if msg_type != "Cancel" else \
            self.all_clear_texts(hazard)
        text_zh = _clean_text(draft.text_zh, template.zh, "zh")
        text_en = _clean_text(draft.text_en, template.en, "en")
        now = self._clock.now()
        send_at = as_utc(draft.send_at) if draft.send_at is not None else now
        expires_at = (as_utc(draft.expires_at) if draft.expires_at is not None
                      else send_at + timedelta(hours=self._settings.alert_default_hours))
        _check_times(send_at, expires_at, now)
        row = Alert(
            identifier=f"{self.city.id}-{uuid.uuid4().hex}", msg_type=msg_type,
            references_id=original.id if original else None, hazard=hazard.value,
            level=level.value, all_districts=all_districts, text_zh=text_zh, text_en=text_en,
            state=AlertState.DRAFT.value, created_by=admin_id, created_at=now, send_at=send_at,
            expires_at=expires_at,
        )

        async def work(session: AsyncSession) -> AlertView:
            session.add(row)
            await session.flush()
            assert row.id is not None
            for district_id in district_ids:
                session.add(AlertDistrict(alert_id=row.id, district_id=district_id))
            await session.flush()
            return _view(row, district_ids, DeliveryStats())

        view = await self._db.run(work)
        log.info("alert #%s drafted by %s: %s %s %s", view.id, admin_id, msg_type, hazard, level)
        return view

    def _check_level(self, hazard: Hazard, level: Level) -> None:
        if level not in self.templates.levels(hazard):
            raise LevelNotIssued(f"{hazard} has no {level} level", hazard=hazard.value,
                                 level=level.value)

    async def preview(self, alert_id: int) -> Preview:
        """Recipients count and the exact messages, before confirming."""
        view = await self.get(alert_id)

        async def work(session: AsyncSession) -> int:
            return await self._count_recipients(session, view)

        recipients = await self._db.run(work)
        return Preview(
            alert=view, recipients=recipients,
            messages={lang: self.message_html(view, lang) for lang in LANGS},
            needs_approval=self._settings.alert_require_approval
            and view.state == AlertState.DRAFT,
        )

    async def _count_recipients(self, session: AsyncSession, view: AlertView) -> int:
        subscribers = (
            select(AlertSubscription.chat_id)
            .where(col(AlertSubscription.district_id).in_(view.district_ids))
            .where(wants_alert(view.hazard, view.level))
        )
        if view.references_id is None:
            query = subscribers.subquery()
        else:
            earlier = (
                select(AlertDelivery.chat_id)
                .where(AlertDelivery.alert_id == view.references_id)
                .where(AlertDelivery.state == "sent")
                .where(~exists().where(User.id == AlertDelivery.chat_id,
                                       User.active == False))  # noqa: E712 - SQL comparison
            )
            query = union(subscribers, earlier).subquery()
        stmt = select(func.count(func.distinct(query.c.chat_id)))
        return int((await session.exec(stmt)).one())  # type: ignore[call-overload]

    async def submit(self, admin_id: int, alert_id: int) -> AlertView:
        """Confirm a draft: to pending_approval if approval is required, else scheduled."""
        self._require_admin(admin_id)
        approval = self._settings.alert_require_approval
        now = self._clock.now()

        async def work(session: AsyncSession) -> AlertView:
            row = await self._row(session, alert_id)
            if row.state != AlertState.DRAFT:
                raise AlertStateConflict(f"alert #{alert_id} is {row.state}",
                                         alert_id=alert_id, state=row.state)
            _confirm_times(row, now)
            row.state = (AlertState.PENDING_APPROVAL if approval else AlertState.SCHEDULED).value
            session.add(row)
            if approval:
                session.add(AlertNotice(kind="approval_needed", alert_id=alert_id,
                                        created_at=now))
            return await self._view_in(session, row)

        view = await self._db.run(work)
        log.info("alert #%s submitted by %s: %s", alert_id, admin_id, view.state)
        if view.state == AlertState.SCHEDULED:
            self._schedule(view)
        await self._flush_notices()
        return view

    async def approve(self, admin_id: int, alert_id: int) -> AlertView:
        """A second admin approves; raises ApprovalBySameAdmin for the author."""
        self._require_admin(admin_id)
        now = self._clock.now()

        async def work(session: AsyncSession) -> AlertView:
            row = await self._row(session, alert_id)
            if row.state != AlertState.PENDING_APPROVAL:
                raise AlertStateConflict(f"alert #{alert_id} is {row.state}",
                                         alert_id=alert_id, state=row.state)
            if row.created_by == admin_id:
                raise ApprovalBySameAdmin(f"admin {admin_id} wrote alert #{alert_id}")
            _confirm_times(row, now)
            row.state = AlertState.SCHEDULED.value
            row.approved_by = admin_id
            session.add(row)
            session.add(AlertNotice(kind="approved", alert_id=alert_id,
                                    admin_id=row.created_by, created_at=now))
            return await self._view_in(session, row)

        view = await self._db.run(work)
        log.info("alert #%s approved by %s", alert_id, admin_id)
        self._schedule(view)
        await self._flush_notices()
        return view

    async def cancel(self, admin_id: int, alert_id: int) -> AlertView:
        """Cancel a draft, pending or scheduled alert, or stop one that is sending.

        A sent alert cannot be cancelled (it has been read): send an all-clear instead.
        """
        self._require_admin(admin_id)
        cancellable = (AlertState.DRAFT, AlertState.PENDING_APPROVAL, AlertState.SCHEDULED,
                       AlertState.SENDING)

        async def work(session: AsyncSession) -> AlertView:
            row = await self._row(session, alert_id)
            result = await session.exec(  # type: ignore[call-overload]
                update(Alert)
                .where(col(Alert.id) == alert_id)
                .where(col(Alert.state).in_([s.value for s in cancellable]))
                .values(state=AlertState.CANCELLED.value, cancelled_by=admin_id))
            if result.rowcount != 1:
                raise AlertStateConflict(f"alert #{alert_id} is {row.state}",
                                         alert_id=alert_id, state=row.state)
            await session.refresh(row)
            return await self._view_in(session, row)

        view = await self._db.run(work)
        self.in_force.forget()
        log.info("alert #%s cancelled by %s", alert_id, admin_id)
        if self._scheduler is not None:
            self._scheduler.cancel(view.job_id)
        return view

    # -- reading ---------------------------------------------------------------------------
    async def get(self, alert_id: int) -> AlertView:
        async def work(session: AsyncSession) -> AlertView:
            return await self._view_in(session, await self._row(session, alert_id))

        return await self._db.run(work)

    async def list_alerts(
        self, *, states: Iterable[AlertState] | None = None, limit: int = 20
    ) -> list[AlertView]:
        """Most recent first, with delivery figures."""
        wanted = None if states is None else [AlertState(s).value for s in states]

        async def work(session: AsyncSession) -> list[AlertView]:
            stmt = select(Alert).order_by(col(Alert.id).desc()).limit(max(1, min(limit, 200)))
            if wanted is not None:
                stmt = stmt.where(col(Alert.state).in_(wanted))
            return [await self._view_in(session, row) for row in (await session.exec(stmt)).all()]

        return await self._db.run(work)

    async def stats(self, alert_id: int) -> DeliveryStats:
        return await self.broadcaster.stats(alert_id)

    def district_names(self, alert: AlertView, lang: str) -> list[str]:
        return [self.city.district(d).name(lang) for d in alert.district_ids
                if self.city.has_district(d)]

    def message_html(self, alert: AlertView, lang: str) -> str:
        """The Telegram-HTML message a recipient reading ``lang`` gets."""
        parts = MessageParts(
            msg_type=alert.msg_type, hazard=alert.hazard, level=alert.level,
            district_names=self.district_names(alert, lang),
            all_districts=alert.all_districts, city_name=self.city.name(lang),
            expires_at=alert.expires_at, body=alert.texts.for_lang(lang),
        )
        return render_message(parts, lang, self._settings.tz)

    async def cap_xml(self, alert_id: int) -> bytes:
        """The alert as an OASIS CAP 1.2 document (UTF-8 XML)."""
        alert = await self.get(alert_id)
        chain: list[AlertView] = []
        ref = alert.references_id
        while ref is not None and len(chain) < 50:
            earlier = await self.get(ref)
            chain.insert(0, earlier)
            ref = earlier.references_id
        infos = []
        for lang in LANGS:
            title = t("alerts.msg.title", lang, hazard=alert.hazard.label(lang),
                      level=alert.level.label(lang))
            area = (self.city.name(lang) if alert.all_districts
                    else t("alerts.msg.list_sep", lang).join(self.district_names(alert, lang)))
            if alert.msg_type == "Cancel":
                headline = t("alerts.cap.headline_cancel", lang, area=area, title=title)
            elif alert.msg_type == "Update":
                headline = t("alerts.cap.headline_update", lang, area=area, title=title)
            else:
                headline = t("alerts.cap.headline", lang, area=area, title=title)
            description, instruction = split_body(alert.texts.for_lang(lang))
            infos.append(CapInfo(
                lang=lang, event=title,
                sender_name=t("alerts.cap.sender_name", lang, city=self.city.name(lang)),
                headline=headline, description=description, instruction=instruction,
                area_desc=area,
            ))
        message = CapMessage(
            identifier=alert.identifier, sender=self.sender_id, sent=_cap_sent(alert),
            msg_type=alert.msg_type, hazard=alert.hazard, level=alert.level,
            effective=_cap_sent(alert), expires=alert.expires_at,
            geocodes=alert.district_ids, infos=infos,
            references=[CapReference(self.sender_id, a.identifier, _cap_sent(a))
                        for a in chain],
        )
        return build_cap(message, self._settings.tz)

    async def active_for_user(self, user_id: int) -> Sequence[ActiveWarning]:
        """Warnings in force now for the user's subscribed districts (``qa.WarningSource``)."""
        if not await self.in_force.any_now():
            return []
        now = self._clock.now()

        async def work(session: AsyncSession) -> list[tuple[Alert, str]]:
            stmt = (
                select(Alert, AlertDistrict.district_id)
                .join(AlertDistrict, col(AlertDistrict.alert_id) == col(Alert.id))
                .join(AlertSubscription, and_(
                    col(AlertSubscription.district_id) == col(AlertDistrict.district_id),
                    col(AlertSubscription.chat_id) == user_id))
                .where(col(Alert.msg_type).in_(["Alert", "Update"]))
                .where(col(Alert.state).in_([AlertState.SENDING.value, AlertState.SENT.value]))
                .where(col(Alert.superseded_by).is_(None))
                .where(col(Alert.expires_at) > now)
                .order_by(col(Alert.id))
            )
            return list((await session.exec(stmt)).all())

        rows = await self._db.run(work)
        if not rows:
            return []
        prefs = await self.subscriptions.get(user_id)
        found: dict[int, tuple[Alert, list[str]]] = {}
        for alert, district_id in rows:
            found.setdefault(alert.id or 0, (alert, []))[1].append(district_id)
        warnings = []
        for alert, districts in found.values():
            hazard, level = Hazard(alert.hazard), Level(alert.level)
            if not prefs.wants(hazard, level):
                continue
            order = [d.id for d in self.city.districts]
            warnings.append(ActiveWarning(
                alert_id=alert.id or 0, hazard=hazard.value, level=level.value,
                districts=tuple(sorted(districts, key=lambda d: order.index(d)
                                       if d in order else len(order))),
                until=as_utc(alert.expires_at), related_topics=hazard.related_topics,
            ))
        return sorted(warnings, key=lambda w: -Level(w.level).rank)

    async def _in_force_ends(self) -> tuple[datetime, ...]:
        """When each alert in force now ends (for ``self.in_force``)."""
        now = self._clock.now()

        async def work(session: AsyncSession) -> tuple[datetime, ...]:
            stmt = (
                select(Alert.expires_at)
                .where(col(Alert.msg_type).in_(["Alert", "Update"]))
                .where(col(Alert.state).in_([AlertState.SENDING.value, AlertState.SENT.value]))
                .where(col(Alert.superseded_by).is_(None))
                .where(col(Alert.expires_at) > now)
            )
            return tuple(as_utc(end) for end in (await session.exec(stmt)).all())

        return await self._db.run(work)

    # -- scheduling and delivery -----------------------------------------------------------
    async def restore_jobs(self, scheduler: Scheduler) -> int:
        """Schedule every pending alert (job ``alert:<id>``) and the sweep; return how many."""
        self._scheduler = scheduler

        async def work(session: AsyncSession) -> list[Alert]:
            stmt = select(Alert).where(col(Alert.state).in_([
                AlertState.SCHEDULED.value, AlertState.SENDING.value, AlertState.SENT.value]))
            return list((await session.exec(stmt)).all())

        rows = await self._db.run(work)
        count = 0
        for row in rows:
            if row.state == AlertState.SCHEDULED:
                scheduler.at(f"alert:{row.id}", as_utc(row.send_at), self._job)
                count += 1
            else:
                scheduler.at(f"alert:{row.id}:expire", as_utc(row.expires_at), self._job)
        # Right away: resume broadcasts a crash interrupted and catch what fell due while down.
        scheduler.at("alerts:restore", self._clock.now(), self._sweep)
        scheduler.every("alerts:sweep", SWEEP_SECONDS, self._sweep)
        log.info("alerts: %d scheduled alert(s) restored", count)
        return count

    def _schedule(self, view: AlertView) -> None:
        if self._scheduler is None:
            return
        self._scheduler.at(view.job_id, view.send_at, self._job)

    async def _job(self) -> None:
        try:
            await self.run_due()
        except Exception:
            log.exception("alerts: scheduled run failed")

    async def _sweep(self) -> None:
        try:
            await self.run_due(wait=False)
        except Exception:
            log.exception("alerts: sweep failed")

    async def run_due(self, now: datetime | None = None, *, wait: bool = True) -> DueReport:
        """Start what is due, mark missed and expired, resume interrupted broadcasts.

        Idempotent and safe in several processes at once. With ``wait`` the broadcasts it
        starts are awaited (their reports are returned); otherwise they run in the background.
        """
        now = as_utc(now) if now is not None else self._clock.now()
        grace = timedelta(minutes=self._settings.alert_grace_minutes)
        expired = await self._expire(now)
        missed: list[int] = []
        started: list[int] = []
        late: list[int] = []

        async def due(session: AsyncSession) -> list[Alert]:
            stmt = (select(Alert).where(Alert.state == AlertState.SCHEDULED.value)
                    .where(col(Alert.send_at) <= now).order_by(col(Alert.send_at)))
            return list((await session.exec(stmt)).all())

        for row in await self._db.run(due):
            assert row.id is not None
            overdue = now - as_utc(row.send_at)
            if overdue > grace or as_utc(row.expires_at) <= now:
                if await self._mark_missed(row.id, now):
                    missed.append(row.id)
            elif self._sender is None:
                # Nothing can go out yet (the front end attaches its sender at start): the
                # alert stays scheduled and a later run starts it.
                log.warning("alerts: #%s is due but no sender is attached yet", row.id)
            elif await self._start(row, now, is_late=overdue > LATE_AFTER):
                started.append(row.id)
                if overdue > LATE_AFTER:
                    late.append(row.id)

        async def sending(session: AsyncSession) -> list[int]:
            stmt = select(Alert.id).where(Alert.state == AlertState.SENDING.value)
            return [i for i in (await session.exec(stmt)).all() if i is not None]

        if self._sender is None:
            await self._flush_notices()
            return DueReport(missed=tuple(missed), expired=tuple(expired))
        to_deliver = await self._db.run(sending)
        resumed = [i for i in to_deliver if i not in started and i not in self._running]
        await self._flush_notices()
        tasks = [self._delivery_task(i) for i in to_deliver
                 if i in started or i in resumed or i in self._running]
        reports: list[DeliveryReport] = []
        if wait and tasks:
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    log.error("alerts: a broadcast failed", exc_info=result)
                elif isinstance(result, BaseException):
                    raise result
                else:
                    reports.append(result)
        return DueReport(started=tuple(started), late=tuple(late), missed=tuple(missed),
                         expired=tuple(expired), resumed=tuple(resumed),
                         reports=tuple(reports))

    def _delivery_task(self, alert_id: int) -> asyncio.Task[DeliveryReport]:
        task = self._running.get(alert_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self.deliver(alert_id))
            self._running[alert_id] = task
            self._background.add(task)

            def forget(done: asyncio.Task[DeliveryReport], alert_id: int = alert_id) -> None:
                self._background.discard(done)
                if self._running.get(alert_id) is done:
                    del self._running[alert_id]
                if not done.cancelled() and done.exception() is not None:
                    # Background broadcasts have nobody awaiting them; the next sweep resumes.
                    log.error("alerts: broadcast of #%s stopped", alert_id,
                              exc_info=done.exception())

            task.add_done_callback(forget)
        return task

    async def _expire(self, now: datetime) -> list[int]:
        async def work(session: AsyncSession) -> list[int]:
            stmt = (update(Alert)
                    .where(col(Alert.state) == AlertState.SENT.value)
                    .where(col(Alert.expires_at) <= now)
                    .values(state=AlertState.EXPIRED.value)
                    .returning(Alert.id))
            return sorted(i for (i,) in (await session.exec(stmt)).all())  # type: ignore[call-overload]

        expired = await self._db.run(work)
        if expired:
            self.in_force.forget()
        return expired

    async def _mark_missed(self, alert_id: int, now: datetime) -> bool:
        async def work(session: AsyncSession) -> bool:
            result = await session.exec(  # type: ignore[call-overload]
                update(Alert)
                .where(col(Alert.id) == alert_id)
                .where(col(Alert.state) == AlertState.SCHEDULED.value)
                .values(state=AlertState.MISSED.value))
            if result.rowcount != 1:
                return False
            session.add(AlertNotice(kind="missed", alert_id=alert_id, created_at=now))
            return True

        missed = await self._db.run(work)
        if missed:
            log.warning("alert #%s missed: its time passed while the bot was down", alert_id)
        return missed

    async def _start(self, row: Alert, now: datetime, *, is_late: bool) -> bool:
        """scheduled -> sending, and the recipients enqueued, in one transaction; only the
        process whose conditional UPDATE wins does it."""
        assert row.id is not None
        alert_id = row.id

        async def work(session: AsyncSession) -> bool:
            result = await session.exec(  # type: ignore[call-overload]
                update(Alert)
                .where(col(Alert.id) == alert_id)
                .where(col(Alert.state) == AlertState.SCHEDULED.value)
                .values(state=AlertState.SENDING.value, started_at=now, late=is_late))
            if result.rowcount != 1:
                return False
            district_ids = (await session.exec(
                select(AlertDistrict.district_id)
                .where(AlertDistrict.alert_id == alert_id))).all()
            count = await self.broadcaster.enqueue(
                session, alert_id, district_ids=list(district_ids),
                hazard=Hazard(row.hazard), level=Level(row.level),
                default_lang=self._settings.default_language,
                also_recipients_of=row.references_id,
            )
            if row.references_id is not None:
                # The original is superseded: residents see the newest message only, and an
                # original still going out stops (its remaining recipients get this one).
                await session.exec(  # type: ignore[call-overload]
                    update(Alert).where(col(Alert.id) == row.references_id)
                    .values(superseded_by=alert_id))
            if is_late:
                session.add(AlertNotice(kind="late", alert_id=alert_id, created_at=now))
            log.info("alert #%s sending to %d recipient(s)%s", alert_id, count,
                     " (late)" if is_late else "")
            return True

        started = await self._db.run(work)
        if started:
            self.in_force.forget()
        return started

    async def deliver(self, alert_id: int) -> DeliveryReport:
        """Send every pending delivery of a sending alert (resumable)."""
        if self._sender is None:
            raise ConfigError("alerts: no sender attached; call AlertService.attach first")
        started = self._clock.now()
        view = await self.get(alert_id)
        if view.state != AlertState.SENDING:
            return DeliveryReport(alert_id, view.stats, started, started, view.late)
        messages = {lang: self.message_html(view, lang) for lang in LANGS}

        async def keep_going() -> bool:
            async def work(session: AsyncSession) -> bool:
                row = await session.get(Alert, alert_id)
                return (row is not None and row.state == AlertState.SENDING
                        and row.superseded_by is None
                        and as_utc(row.expires_at) > self._clock.now())

            return await self._db.run(work)

        stats = await self.broadcaster.run(
            alert_id, messages, self._sender, keep_going=keep_going, progress=self._progress)
        finished = await self._finish(alert_id)
        if finished:
            stats = await self.stats(alert_id)
            if self._progress is not None:
                await self._progress(alert_id, stats, final=True)
            await self._flush_notices()
        log.info("alert #%s: %d sent, %d blocked, %d failed, %d cancelled", alert_id,
                 stats.sent, stats.blocked, stats.failed, stats.cancelled)
        return DeliveryReport(alert_id, stats, started, self._clock.now(), view.late)

    async def _finish(self, alert_id: int) -> bool:
        """sending -> sent (or expired) once no row is left; True for the process that did it."""
        now = self._clock.now()

        async def work(session: AsyncSession) -> bool:
            open_rows = exists().where(
                AlertDelivery.alert_id == alert_id,
                col(AlertDelivery.state).in_(["pending", "sending"]))
            row = await session.get(Alert, alert_id)
            if row is None:
                return False
            state = (AlertState.EXPIRED if as_utc(row.expires_at) <= now else AlertState.SENT)
            result = await session.exec(  # type: ignore[call-overload]
                update(Alert)
                .where(col(Alert.id) == alert_id)
                .where(or_(col(Alert.state) == AlertState.SENDING.value,
                           and_(col(Alert.state) == AlertState.CANCELLED.value,
                                col(Alert.finished_at).is_(None))))
                .where(~open_rows)
                .values(state=_final_state(state), finished_at=now))
            if result.rowcount != 1:
                return False
            session.add(AlertNotice(kind="finished", alert_id=alert_id,
                                    admin_id=row.created_by, created_at=now))
            return True

        finished = await self._db.run(work)
        if finished:
            self.in_force.forget()
        return finished

    # -- notices ---------------------------------------------------------------------------
    async def take_notices(self, limit: int = 50) -> list[AdminNotice]:
        """Claim undelivered admin notices (each is returned once)."""
        now = self._clock.now()

        async def work(session: AsyncSession) -> list[AdminNotice]:
            picked = (select(AlertNotice.id).where(col(AlertNotice.delivered_at).is_(None))
                      .order_by(col(AlertNotice.id)).limit(limit)
                      .with_for_update(skip_locked=True).cte("picked"))
            stmt = (update(AlertNotice)
                    .where(col(AlertNotice.id) == picked.c.id)
                    .where(col(AlertNotice.delivered_at).is_(None))
                    .values(delivered_at=now)
                    .returning(AlertNotice.id, AlertNotice.kind, AlertNotice.alert_id,
                               AlertNotice.created_at, AlertNotice.admin_id))
            rows = (await session.exec(stmt)).all()  # type: ignore[call-overload]
            return sorted((AdminNotice(id=r[0], kind=r[1], alert_id=r[2],
                                       created_at=as_utc(r[3]), admin_id=r[4])
                           for r in rows), key=lambda n: n.id)

        return await self._db.run(work)

    async def _flush_notices(self) -> None:
        if self._notify is None:
            return
        for notice in await self.take_notices():
            try:
                await self._notify(notice)
            except Exception:
                log.exception("alerts: could not deliver notice %s; will retry", notice.id)
                await self._release_notice(notice.id)

    async def _release_notice(self, notice_id: int) -> None:
        async def work(session: AsyncSession) -> None:
            await session.exec(  # type: ignore[call-overload]
                update(AlertNotice).where(col(AlertNotice.id) == notice_id)
                .values(delivered_at=None))

        await self._db.run(work)

    async def close(self) -> None:
        """Stop broadcasts of this process; their rows are resumed by the next start."""
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # -- rows and views --------------------------------------------------------------------
    async def _row(self, session: AsyncSession, alert_id: int) -> Alert:
        row = await session.get(Alert, alert_id)
        if row is None:
            raise AlertNotFound(f"no alert #{alert_id}", alert_id=alert_id)
        return row

    async def _view_in(self, session: AsyncSession, row: Alert) -> AlertView:
        assert row.id is not None
        district_ids = (await session.exec(
            select(AlertDistrict.district_id).where(AlertDistrict.alert_id == row.id))).all()
        order = {d.id: i for i, d in enumerate(self.city.districts)}
        ordered = tuple(sorted(district_ids, key=lambda d: (order.get(d, len(order)), d)))
        return _view(row, ordered, await stats_in(session, row.id))


def _final_state(state: AlertState) -> Any:
    """The final state, except that a cancelled alert stays cancelled."""
    return case((col(Alert.state) == AlertState.CANCELLED.value, AlertState.CANCELLED.value),
                else_=state.value)


def _view(row: Alert, district_ids: tuple[str, ...], stats: DeliveryStats) -> AlertView:
    assert row.id is not None
    return AlertView(
        id=row.id, identifier=row.identifier, msg_type=row.msg_type,  # type: ignore[arg-type]
        hazard=Hazard(row.hazard), level=Level(row.level), district_ids=district_ids,
        all_districts=row.all_districts, texts=AlertTexts(row.text_zh, row.text_en),
        state=AlertState(row.state), created_by=row.created_by,
        created_at=as_utc(row.created_at), send_at=as_utc(row.send_at),
        expires_at=as_utc(row.expires_at), approved_by=row.approved_by,
        started_at=as_utc(row.started_at) if row.started_at else None,
        finished_at=as_utc(row.finished_at) if row.finished_at else None, late=row.late,
        references_id=row.references_id, cancelled_by=row.cancelled_by, stats=stats,
    )


def _cap_sent(alert: AlertView) -> datetime:
    """CAP <sent>: when the message went out (its scheduled time until then)."""
    return alert.started_at or alert.send_at


def _clean_text(text: str | None, default: str, lang: str) -> str:
    if text is None:
        return default
    cleaned = clean_user_text(text, MAX_TEXT_CHARS + 1)
    # Counted as sent: escaped for Telegram HTML (an "&" is five characters), so that the
    # message with its heading always fits one Telegram message.
    if not cleaned or len(html.escape(cleaned, quote=False)) > MAX_TEXT_CHARS:
        raise AlertTextInvalid(f"{lang} text is empty or longer than {MAX_TEXT_CHARS}",
                               lang=lang, limit=MAX_TEXT_CHARS)
    return cleaned


def _check_times(send_at: datetime, expires_at: datetime, now: datetime) -> None:
    if send_at < now - PAST_TOLERANCE:
        raise AlertTimeInvalid("the send time is in the past", reason="past")
    if send_at > now + MAX_SCHEDULE_AHEAD:
        raise AlertTimeInvalid("the send time is more than 30 days ahead", reason="far")
    if expires_at <= send_at:
        raise AlertTimeInvalid("the warning must end after it is sent", reason="order")
    if expires_at - send_at > MAX_VALIDITY:
        raise AlertTimeInvalid("a warning may be in force for at most 14 days", reason="long")


def _confirm_times(row: Alert, now: datetime) -> None:
    """On confirming: a send time that passed while the admin read the preview means now."""
    if as_utc(row.expires_at) <= now:
        raise AlertTimeInvalid("the warning would already have ended", reason="ended")
    if as_utc(row.send_at) < now:
        row.send_at = now
