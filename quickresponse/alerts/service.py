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

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from quickresponse.alerts.delivery import (
    DeliveryReport,
    DeliveryStats,
    ProgressHook,
    Sender,
    SendOutcome,
)
from quickresponse.alerts.errors import (
    AlertError,
    AlertNotFound,
    AlertStateConflict,
    AlertTextInvalid,
    AlertTimeInvalid,
    ApprovalBySameAdmin,
    NoTargetDistricts,
    UnknownDistrict,
    UnknownHazard,
    UnknownLevel,
)
from quickresponse.alerts.hazards import Hazard, Level, parse_hazard, parse_level
from quickresponse.alerts.subscriptions import SubscriptionService, SubscriptionView
from quickresponse.clock import Clock
from quickresponse.db import Database
from quickresponse.qa import ActiveWarning
from quickresponse.scheduling import Scheduler
from quickresponse.settings import Settings

if TYPE_CHECKING:
    from quickresponse.districts import City

__all__ = [
    "AdminNotice", "AlertDraft", "AlertError", "AlertNotFound", "AlertService", "AlertState",
    "AlertStateConflict", "AlertTextInvalid", "AlertTexts", "AlertTimeInvalid", "AlertView",
    "ApprovalBySameAdmin", "DeliveryReport", "DeliveryStats", "DueReport", "Hazard", "Level",
    "MsgType", "NoTargetDistricts", "Preview", "ProgressHook", "SendOutcome", "Sender",
    "SubscriptionService", "SubscriptionView", "UnknownDistrict", "UnknownHazard",
    "UnknownLevel", "parse_hazard", "parse_level",
]

MAX_TEXT_CHARS = 2000
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
        sleep: Sleep | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self.city = city
        self.subscriptions = subscriptions

    # -- wiring ----------------------------------------------------------------------------
    def attach(
        self, sender: Sender, *, progress: ProgressHook | None = None,
        notify: Notifier | None = None,
    ) -> None:
        """Give the service its way out: the sender, a progress hook and an admin notifier."""
        raise NotImplementedError

    def is_admin(self, user_id: int | None) -> bool:
        return self._settings.is_admin(user_id)

    # -- composing -------------------------------------------------------------------------
    def prefill(self, hazard: Hazard, level: Level) -> AlertTexts:
        """The template texts for a hazard and level (what the admin starts from)."""
        raise NotImplementedError

    async def compose(self, admin_id: int, draft: AlertDraft) -> AlertView:
        """Save a new alert as a draft (nothing is sent). Raises NotPermitted, InvalidInput."""
        raise NotImplementedError

    async def compose_update(
        self, admin_id: int, original_id: int, draft: AlertDraft
    ) -> AlertView:
        """A draft CAP Update of a sent (or sending) alert, superseding it once sent."""
        raise NotImplementedError

    async def compose_all_clear(
        self, admin_id: int, original_id: int, *, text_zh: str | None = None,
        text_en: str | None = None, send_at: datetime | None = None,
    ) -> AlertView:
        """A draft all-clear (CAP Cancel) of a sent alert; texts default to the template."""
        raise NotImplementedError

    async def preview(self, alert_id: int) -> Preview:
        """Recipients count and the exact messages, before confirming."""
        raise NotImplementedError

    async def submit(self, admin_id: int, alert_id: int) -> AlertView:
        """Confirm a draft: to pending_approval if approval is required, else scheduled."""
        raise NotImplementedError

    async def approve(self, admin_id: int, alert_id: int) -> AlertView:
        """A second admin approves; raises ApprovalBySameAdmin for the author."""
        raise NotImplementedError

    async def cancel(self, admin_id: int, alert_id: int) -> AlertView:
        """Cancel a draft, pending or scheduled alert, or stop one that is sending.

        A sent alert cannot be cancelled (it has been read): send an all-clear instead.
        """
        raise NotImplementedError

    # -- reading ---------------------------------------------------------------------------
    async def get(self, alert_id: int) -> AlertView:
        raise NotImplementedError

    async def list_alerts(
        self, *, states: Iterable[AlertState] | None = None, limit: int = 20
    ) -> list[AlertView]:
        """Most recent first, with delivery figures."""
        raise NotImplementedError

    async def stats(self, alert_id: int) -> DeliveryStats:
        raise NotImplementedError

    def message_html(self, alert: AlertView, lang: str) -> str:
        """The Telegram-HTML message a recipient reading ``lang`` gets."""
        raise NotImplementedError

    async def cap_xml(self, alert_id: int) -> bytes:
        """The alert as an OASIS CAP 1.2 document (UTF-8 XML)."""
        raise NotImplementedError

    async def active_for_user(self, user_id: int) -> Sequence[ActiveWarning]:
        """Warnings in force now for the user's subscribed districts (``qa.WarningSource``)."""
        raise NotImplementedError

    # -- scheduling and delivery -----------------------------------------------------------
    async def restore_jobs(self, scheduler: Scheduler) -> int:
        """Schedule every pending alert (job ``alert:<id>``) and the sweep; return how many."""
        raise NotImplementedError

    async def run_due(self, now: datetime | None = None) -> DueReport:
        """Start what is due, mark missed and expired, resume interrupted broadcasts.

        Idempotent and safe in several processes at once.
        """
        raise NotImplementedError

    async def deliver(self, alert_id: int) -> DeliveryReport:
        """Send every pending delivery of a sending alert (resumable)."""
        raise NotImplementedError

    async def take_notices(self, limit: int = 50) -> list[AdminNotice]:
        """Claim undelivered admin notices (each is returned once)."""
        raise NotImplementedError
