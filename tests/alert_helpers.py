"""Helpers for the warnings tests: fake time for the rate limiter, a recording fake sender."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from quickresponse.alerts.delivery import SendOutcome
from quickresponse.alerts.service import AlertDraft, AlertService, AlertView, Hazard, Level
from quickresponse.services import Services
from quickresponse.settings import Settings

ADMIN = 9001
SECOND_ADMIN = 9002
CHAOYANG = "110105"
HAIDIAN = "110108"
DONGCHENG = "110101"


class FakeTime:
    """Monotonic time that moves only when the code under test sleeps (no real waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


class Crash(BaseException):
    """Stands for the process dying mid-broadcast (not an error the engine may swallow)."""


@dataclass
class FakeSender:
    """Records each send; ``script`` answers chosen chats with outcomes, in order."""

    script: dict[int, list[SendOutcome]] = field(default_factory=dict)
    crash_after: int | None = None
    sent: list[tuple[int, str, bool]] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)
    on_send: Callable[[int], None] | None = None

    async def send(self, chat_id: int, html: str, *, paid: bool) -> SendOutcome:
        if self.crash_after is not None and len(self.sent) >= self.crash_after:
            raise Crash
        self.attempts.append(chat_id)
        await asyncio.sleep(0)
        planned = self.script.get(chat_id)
        if planned:
            outcome = planned.pop(0)
            if outcome.kind != "sent":
                return outcome
        self.sent.append((chat_id, html, paid))
        if self.on_send is not None:
            self.on_send(chat_id)
        return SendOutcome.sent()

    def counts(self) -> Counter[int]:
        return Counter(chat for chat, _, _ in self.sent)


def alert_service(services: Services, time: FakeTime, settings: Settings | None = None,
                  **overrides: object) -> AlertService:
    """An AlertService on the test database, with fake time for pacing."""
    base = settings or services.settings
    if overrides:
        base = base.model_copy(update=overrides)
    return AlertService(services.db, services.clock, base, services.city,
                        services.subscriptions, templates=services.alerts.templates,
                        sleep=time.sleep, monotonic=time.monotonic)


async def add_residents(services: Services, ids: range | list[int], districts: list[str],
                        *, lang: str | None = None) -> None:
    for user_id in ids:
        await services.users.touch(user_id)
        if lang:
            await services.users.set_language(user_id, lang)  # type: ignore[arg-type]
        await services.subscriptions.subscribe(user_id, districts)


async def send_now(alerts: AlertService, *, hazard: Hazard = Hazard.RAINSTORM,
                   level: Level = Level.ORANGE, districts: tuple[str, ...] | None = (CHAOYANG,),
                   hours: float = 6) -> AlertView:
    """Compose and confirm an alert for now; the next ``run_due`` sends it."""
    now = alerts._clock.now()
    draft = AlertDraft(hazard=hazard, level=level, district_ids=districts,
                       expires_at=now + timedelta(hours=hours))
    view = await alerts.compose(ADMIN, draft)
    return await alerts.submit(ADMIN, view.id)
