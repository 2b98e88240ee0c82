"""Scheduled alerts live in the database: sent on time, after a restart, late or missed."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from quickresponse.alerts.hazards import Level
from quickresponse.alerts.service import AlertDraft, AlertState, Hazard
from quickresponse.scheduling import Scheduler
from quickresponse.services import build_services
from tests.alert_helpers import (
    ADMIN,
    CHAOYANG,
    FakeSender,
    FakeTime,
    add_residents,
    alert_service,
)


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


async def _schedule(alerts, clock, *, in_minutes: float, hours: float = 6,
                    level: Level = Level.ORANGE):
    at = clock.now() + timedelta(minutes=in_minutes)
    draft = AlertDraft(hazard=Hazard.RAINSTORM, level=level, district_ids=(CHAOYANG,),
                       send_at=at, expires_at=at + timedelta(hours=hours))
    view = await alerts.compose(ADMIN, draft)
    return await alerts.submit(ADMIN, view.id)


async def test_sent_when_due_and_only_once(services, clock, time):
    alerts = alert_service(services, time)
    sender = FakeSender()
    alerts.attach(sender)
    await add_residents(services, [1, 2], [CHAOYANG])
    view = await _schedule(alerts, clock, in_minutes=30)
    clock.advance(minutes=29)
    assert (await alerts.run_due()).started == ()
    assert sender.sent == []
    clock.advance(minutes=1)
    report = await alerts.run_due()
    assert report.started == (view.id,) and report.late == ()
    assert sorted(sender.counts()) == [1, 2]
    again = await alerts.run_due()
    assert again.started == () and len(sender.sent) == 2
    assert (await alerts.get(view.id)).state == AlertState.SENT


async def test_restore_jobs_schedules_every_pending_alert_by_id(services, clock, time):
    alerts = alert_service(services, time)
    alerts.attach(FakeSender())
    scheduler = Scheduler()
    first = await _schedule(alerts, clock, in_minutes=60)
    second = await _schedule(alerts, clock, in_minutes=120)
    draft = await alerts.compose(ADMIN, AlertDraft(hazard=Hazard.FLOOD, level=Level.BLUE))
    assert await alerts.restore_jobs(scheduler) == 2
    jobs = scheduler.job_ids()
    assert f"alert:{first.id}" in jobs and f"alert:{second.id}" in jobs
    assert f"alert:{draft.id}" not in jobs and "alerts:sweep" in jobs
    assert scheduler.next_run(f"alert:{first.id}") == first.send_at
    await alerts.cancel(ADMIN, first.id)
    assert f"alert:{first.id}" not in scheduler.job_ids()


async def test_restart_with_a_pending_alert_sends_it(services, settings, clock, time):
    alerts = alert_service(services, time)
    await add_residents(services, [1, 2, 3], [CHAOYANG])
    view = await _schedule(alerts, clock, in_minutes=60)
    await services.close()  # the bot stops before the alert is due

    clock.advance(minutes=60)
    restarted = await build_services(settings, clock=clock, migrate=False)
    try:
        scheduler = Scheduler()
        again = alert_service(restarted, time)
        sender = FakeSender()
        again.attach(sender)
        assert await again.restore_jobs(scheduler) == 1
        assert f"alert:{view.id}" in scheduler.job_ids()
        report = await again.run_due()
        assert report.started == (view.id,)
        assert sorted(sender.counts()) == [1, 2, 3]
    finally:
        await restarted.close()


async def test_within_the_grace_period_it_is_sent_late_and_admins_are_told(
        services, clock, time):
    alerts = alert_service(services, time, alert_grace_minutes=30)
    sender = FakeSender()
    notices = []

    async def notify(notice):
        notices.append((notice.kind, notice.alert_id))

    alerts.attach(sender, notify=notify)
    await add_residents(services, [1], [CHAOYANG])
    view = await _schedule(alerts, clock, in_minutes=10)
    clock.advance(minutes=10 + 25)  # the bot was down; 25 minutes late
    report = await alerts.run_due()
    assert report.started == (view.id,) and report.late == (view.id,)
    assert [chat for chat, _, _ in sender.sent] == [1]
    final = await alerts.get(view.id)
    assert final.late and final.state == AlertState.SENT
    assert ("late", view.id) in notices


async def test_beyond_the_grace_period_it_is_missed_not_sent(services, clock, time):
    alerts = alert_service(services, time, alert_grace_minutes=30)
    sender = FakeSender()
    alerts.attach(sender)
    await add_residents(services, [1], [CHAOYANG])
    view = await _schedule(alerts, clock, in_minutes=10)
    clock.advance(minutes=10 + 31)
    report = await alerts.run_due()
    assert report.missed == (view.id,) and report.started == ()
    assert sender.sent == []
    assert (await alerts.get(view.id)).state == AlertState.MISSED
    notices = await alerts.take_notices()
    assert [(n.kind, n.alert_id) for n in notices] == [("missed", view.id)]
    assert await alerts.take_notices() == [], "each notice is handed out once"


async def test_sent_alerts_expire_when_their_time_is_up(services, clock, time):
    alerts = alert_service(services, time)
    alerts.attach(FakeSender())
    await add_residents(services, [1], [CHAOYANG])
    view = await _schedule(alerts, clock, in_minutes=0, hours=2)
    await alerts.run_due()
    scheduler = Scheduler()
    await alerts.restore_jobs(scheduler)
    assert scheduler.next_run(f"alert:{view.id}:expire") == view.expires_at
    clock.advance(hours=2)
    report = await alerts.run_due()
    assert report.expired == (view.id,)
    assert (await alerts.get(view.id)).state == AlertState.EXPIRED
    assert await alerts.active_for_user(1) == []


async def test_two_processes_due_at_once_start_the_alert_once(services, clock, time):
    first, second = alert_service(services, time), alert_service(services, time)
    senders = [FakeSender(), FakeSender()]
    first.attach(senders[0])
    second.attach(senders[1])
    await add_residents(services, range(1, 41), [CHAOYANG])
    view = await _schedule(first, clock, in_minutes=5)
    clock.advance(minutes=5)
    reports = await asyncio.gather(first.run_due(), second.run_due())
    assert sum(len(r.started) for r in reports) == 1
    counts = senders[0].counts() + senders[1].counts()
    assert set(counts) == set(range(1, 41)) and set(counts.values()) == {1}
    assert (await first.get(view.id)).state == AlertState.SENT


async def test_a_notice_that_could_not_be_delivered_is_offered_again(services, clock, time):
    alerts = alert_service(services, time, alert_grace_minutes=0)
    seen = []

    async def flaky(notice):
        seen.append(notice.kind)
        if len(seen) == 1:
            raise ConnectionError("Telegram unreachable")

    alerts.attach(FakeSender(), notify=flaky)
    await _schedule(alerts, clock, in_minutes=1)
    clock.advance(minutes=5)
    await alerts.run_due()
    await alerts.run_due()
    assert seen == ["missed", "missed"]
    await alerts.run_due()
    assert seen == ["missed", "missed"]


async def test_without_a_sender_due_alerts_wait_rather_than_fail(services, clock, time):
    alerts = alert_service(services, time)
    await add_residents(services, [1], [CHAOYANG])
    view = await _schedule(alerts, clock, in_minutes=1)
    clock.advance(minutes=2)
    report = await alerts.run_due()  # e.g. the sweep firing before the bot attached its sender
    assert report.started == () and report.missed == ()
    assert (await alerts.get(view.id)).state == AlertState.SCHEDULED
    sender = FakeSender()
    alerts.attach(sender)
    assert (await alerts.run_due()).started == (view.id,)
    assert [chat for chat, _, _ in sender.sent] == [1]
