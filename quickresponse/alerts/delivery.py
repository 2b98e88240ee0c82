"""Exactly-once broadcast of an alert to its recipients.

One delivery row per recipient (UNIQUE alert_id, chat_id), created in bulk by SQL. Rows are
claimed in batches atomically, sent through a :class:`Sender` under a core token bucket, and
marked sent / failed / blocked. A row left in ``sending`` by a crashed process is claimed again
after a lease, so a restart finishes the broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

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
