"""Broadcasts reach every recipient exactly once, within Telegram's limits, and survive crashes."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from quickresponse.alerts.delivery import (
    LEASE,
    MAX_SEND_ATTEMPTS,
    Broadcaster,
    GroupPacer,
    SendOutcome,
    TokenBucket,
)
from quickresponse.alerts.hazards import Hazard, Level
from quickresponse.alerts.models import AlertDelivery
from quickresponse.alerts.service import AlertState
from quickresponse.models import User
from quickresponse.services import build_services
from tests.alert_helpers import (
    CHAOYANG,
    DONGCHENG,
    HAIDIAN,
    Crash,
    FakeSender,
    FakeTime,
    add_residents,
    alert_service,
    send_now,
)
from tests.fakebot import forbidden, retry_after


async def _users_active(services, ids):
    async def work(session):
        rows = (await session.exec(select(User.id, User.active).where(User.id.in_(ids)))).all()
        return dict(rows)

    return await services.db.run(work)


async def test_every_subscriber_gets_one_message_in_their_language(services):
    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(1, 31), [CHAOYANG, HAIDIAN])  # two target districts
    await add_residents(services, range(31, 41), [HAIDIAN], lang="en")
    await add_residents(services, range(41, 46), [DONGCHENG])  # not targeted
    sender = FakeSender()
    alerts.attach(sender)
    view = await send_now(alerts, districts=(CHAOYANG, HAIDIAN))
    report = (await alerts.run_due()).reports[0]

    counts = sender.counts()
    assert set(counts) == set(range(1, 41))
    assert set(counts.values()) == {1}
    texts = {chat: html for chat, html, _ in sender.sent}
    assert "暴雨橙色预警" in texts[1] and "朝阳区" in texts[1]
    assert "Rainstorm Orange warning" in texts[35] and "Haidian" in texts[35]
    assert report.stats.sent == 40 and report.stats.remaining == 0
    assert (await alerts.get(view.id)).state == AlertState.SENT


async def test_sends_are_paced_at_the_configured_rate(services):
    time = FakeTime()
    alerts = alert_service(services, time, broadcast_rate=10.0)
    await add_residents(services, range(1, 51), [CHAOYANG])
    sender = FakeSender()
    alerts.attach(sender)
    await send_now(alerts)
    start = time.now
    await alerts.run_due()
    assert len(sender.sent) == 50
    # 50 messages at 10/s: after the initial burst every message waits for its token.
    burst = alerts.broadcaster.bucket.capacity
    assert time.now - start >= (50 - burst) / 10.0 - 1e-6


async def _acquire_times(rate: float, count: int) -> tuple[TokenBucket, FakeTime, list[float]]:
    """When each of ``count`` acquisitions of a bucket at ``rate`` went through; checks that
    no one-second window holds more than the rate and the burst."""
    time = FakeTime()
    bucket = TokenBucket(rate, monotonic=time.monotonic, sleep=time.sleep)
    stamps = []
    for _ in range(count):
        await bucket.acquire()
        stamps.append(time.now)
    window = int(rate * 1.1 + bucket.capacity) + 1  # enough to see one too many
    for i, start in enumerate(stamps):
        in_window = sum(1 for s in stamps[i:i + window] if s < start + 1.0)
        assert in_window <= rate + bucket.capacity
    return bucket, time, stamps


async def test_token_bucket_never_exceeds_its_rate():
    await _acquire_times(30.0, 300)


async def test_token_bucket_at_1000_a_second_keeps_its_rate_waking_once_per_tick():
    bucket, time, stamps = await _acquire_times(1000.0, 5000)
    # The burst aside, the whole rate and no less.
    rate = (len(stamps) - bucket.capacity) / (stamps[-1] - stamps[0])
    assert 0.99 * 1000 <= rate <= 1000.0 + 1e-6
    # One wake-up per tick of 5 ms (5 messages), not one per message.
    assert len(time.sleeps) <= len(stamps) / 4


async def test_retry_after_pauses_the_whole_broadcast_and_resends(services):
    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(1, 21), [CHAOYANG])
    sender = FakeSender(script={5: [SendOutcome.retry(7)]})
    alerts.attach(sender)
    await send_now(alerts)
    await alerts.run_due()
    assert sender.counts()[5] == 1
    assert set(sender.counts()) == set(range(1, 21))
    assert any(s >= 6.9 for s in time.sleeps), time.sleeps


async def test_blocked_users_are_marked_inactive_and_the_broadcast_goes_on(services):
    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(1, 11), [CHAOYANG])
    sender = FakeSender(script={3: [SendOutcome.blocked("Forbidden")],
                                7: [SendOutcome.blocked("Forbidden")]})
    alerts.attach(sender)
    view = await send_now(alerts)
    await alerts.run_due()
    stats = await alerts.stats(view.id)
    assert (stats.sent, stats.blocked) == (8, 2)
    active = await _users_active(services, [3, 7, 8])
    assert active == {3: False, 7: False, 8: True}
    # The next alert does not even try them.
    second = await send_now(alerts, level=Level.RED)
    await alerts.run_due()
    assert (await alerts.stats(second.id)).total == 8


async def test_transient_failures_are_retried_a_bounded_number_of_times(services):
    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(1, 6), [CHAOYANG])
    sender = FakeSender(script={
        2: [SendOutcome.transient("timeout"), SendOutcome.transient("timeout")],
        4: [SendOutcome.transient("502")] * (MAX_SEND_ATTEMPTS + 5),
        5: [SendOutcome.permanent("Bad Request: message is too long")],
    })
    alerts.attach(sender)
    view = await send_now(alerts)
    await alerts.run_due()
    assert sender.counts()[2] == 1
    assert sender.attempts.count(4) == MAX_SEND_ATTEMPTS
    assert sender.attempts.count(5) == 1
    stats = await alerts.stats(view.id)
    assert (stats.sent, stats.failed) == (3, 2)
    assert (await alerts.get(view.id)).state == AlertState.SENT


async def test_paid_broadcast_flag_reaches_the_sender(services):
    time = FakeTime()
    alerts = alert_service(services, time, broadcast_rate=500.0, allow_paid_broadcast=True)
    await add_residents(services, range(1, 4), [CHAOYANG])
    sender = FakeSender()
    alerts.attach(sender)
    await send_now(alerts)
    await alerts.run_due()
    assert [paid for _, _, paid in sender.sent] == [True, True, True]


async def test_a_group_gets_at_most_20_messages_a_minute():
    time = FakeTime()
    pacer = GroupPacer(monotonic=time.monotonic, sleep=time.sleep)
    start = time.now
    for _ in range(20):
        await pacer.acquire(-100123)
    assert time.now == start
    await pacer.acquire(-100123)
    assert time.now - start >= 60.0
    before = time.now
    await pacer.acquire(5)  # private chats are not limited per chat
    assert time.now == before


async def test_crash_mid_broadcast_then_restart_finishes_it_exactly_once(services, settings,
                                                                         clock):
    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(1, 101), [CHAOYANG])
    first = FakeSender(crash_after=37)
    alerts.attach(first)
    view = await send_now(alerts)
    with pytest.raises(Crash):
        await alerts.run_due()
    assert len(first.sent) == 37
    assert (await alerts.get(view.id)).state == AlertState.SENDING

    # The process is gone. A new one starts on the same database once the lease has run out.
    clock.advance(seconds=LEASE.total_seconds() + 1)
    restarted = await build_services(settings, clock=clock, migrate=False)
    try:
        again = alert_service(restarted, time)
        second = FakeSender()
        again.attach(second)
        report = await again.run_due()
        assert report.resumed == (view.id,)
        counts = first.counts() + second.counts()
        assert set(counts) == set(range(1, 101))
        assert set(counts.values()) == {1}, "nobody skipped, nobody twice"
        final = await again.get(view.id)
        assert final.state == AlertState.SENT and final.stats.sent == 100
    finally:
        await restarted.close()


async def test_cancelled_task_is_resumed_without_duplicates(services, clock):
    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(1, 61), [CHAOYANG])
    stop = asyncio.Event()
    first = FakeSender(on_send=lambda n: stop.set() if n == 25 else None)
    alerts.attach(first)
    view = await send_now(alerts)
    task = asyncio.create_task(alerts.run_due())
    await stop.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 0 < len(first.sent) < 60

    clock.advance(seconds=LEASE.total_seconds() + 1)
    second = FakeSender()
    alerts.attach(second)
    await alerts.run_due()
    counts = first.counts() + second.counts()
    assert set(counts) == set(range(1, 61)) and set(counts.values()) == {1}
    assert (await alerts.get(view.id)).state == AlertState.SENT


async def test_rows_leased_by_a_live_process_are_not_taken(services):
    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(1, 11), [CHAOYANG])
    view = await send_now(alerts)
    crashing = FakeSender(crash_after=0)
    alerts.attach(crashing)
    with pytest.raises(Crash):
        await alerts.run_due()
    # The lease has not run out: another process finds nothing to claim yet.
    other = Broadcaster(services.db, services.clock, rate=30, paid=False, sleep=time.sleep,
                        monotonic=time.monotonic)
    sender = FakeSender()
    await other.run(view.id, {"zh": "x", "en": "x"}, sender)
    assert sender.sent == []


async def test_two_processes_sending_one_alert_never_double_send(services):
    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(1, 201), [CHAOYANG])
    view = await send_now(alerts)
    alerts.attach(FakeSender(crash_after=0))
    with pytest.raises(Crash):
        await alerts.run_due()  # enqueues, claims one batch and dies
    services.clock.advance(seconds=LEASE.total_seconds() + 1)
    senders = [FakeSender(), FakeSender()]
    workers = [Broadcaster(services.db, services.clock, rate=1000, paid=False, batch_size=15,
                           sleep=time.sleep, monotonic=time.monotonic) for _ in senders]
    await asyncio.gather(*(w.run(view.id, {"zh": "x", "en": "x"}, s)
                           for w, s in zip(workers, senders, strict=True)))
    counts = senders[0].counts() + senders[1].counts()
    assert set(counts) == set(range(1, 201)) and set(counts.values()) == {1}
    assert senders[0].sent and senders[1].sent, "both processes took a share"


async def test_delivery_rows_are_unique_per_alert_and_chat(services):
    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(1, 6), [CHAOYANG, HAIDIAN, DONGCHENG])
    alerts.attach(FakeSender())
    view = await send_now(alerts, districts=None)
    await alerts.run_due()

    async def rows(session):
        return (await session.exec(
            select(AlertDelivery.chat_id).where(AlertDelivery.alert_id == view.id))).all()

    assert sorted(await services.db.run(rows)) == [1, 2, 3, 4, 5]


async def test_progress_is_reported_and_ends_with_a_final_report(services):
    time = FakeTime()
    alerts = alert_service(services, time, broadcast_rate=5.0)
    await add_residents(services, range(1, 41), [CHAOYANG])
    updates = []

    async def progress(alert_id, stats, *, final):
        updates.append((alert_id, stats.sent, final))

    alerts.attach(FakeSender(), progress=progress)
    view = await send_now(alerts)
    await alerts.run_due()
    assert updates[-1] == (view.id, 40, True)
    partial = [sent for _, sent, final in updates if not final]
    assert any(0 < sent < 40 for sent in partial), "the admin sees it progress"
    assert partial == sorted(partial)


async def test_cancelling_while_sending_stops_the_rest(services):
    time = FakeTime()
    alerts = alert_service(services, time, broadcast_rate=10.0)
    await add_residents(services, range(1, 101), [CHAOYANG])
    view = await send_now(alerts)
    cancelled = asyncio.Event()

    def maybe_cancel(n):
        if not cancelled.is_set():
            cancelled.set()
            asyncio.get_running_loop().create_task(alerts.cancel(9001, view.id))

    alerts.attach(FakeSender(on_send=maybe_cancel))
    await alerts.run_due()
    final = await alerts.get(view.id)
    assert final.state == AlertState.CANCELLED
    assert final.stats.sent < 100 and final.stats.cancelled > 0
    assert final.stats.remaining == 0


async def test_through_the_telegram_sender_with_the_fake_bot_api(app, fake_api, services):
    from quickresponse.telegram.sender import TelegramSender

    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(2001, 2031), [CHAOYANG])
    await add_residents(services, [2100], [CHAOYANG], lang="en")
    answered_429 = set()

    def flood(call):
        chat = call.chat_id
        if call.method == "sendMessage" and chat in (2005, 2017) and chat not in answered_429:
            answered_429.add(chat)
            return retry_after(1)
        return None

    def blocked(call):
        return forbidden() if call.method == "sendMessage" and call.chat_id == 2010 else None

    fake_api.failures.extend([flood, blocked])
    alerts.attach(TelegramSender(app.bot))
    view = await send_now(alerts, hazard=Hazard.FLOOD, level=Level.RED)
    await alerts.run_due()

    delivered = [c.chat_id for c in fake_api.sent("sendMessage")]
    expected = set(range(2001, 2031)) - {2010} | {2100}
    assert sorted(delivered) == sorted(expected), "each recipient exactly once"
    assert answered_429 == {2005, 2017}
    assert sum(1 for s in time.sleeps if s >= 1.0) >= 2, "RetryAfter honoured"
    assert (await _users_active(services, [2010]))[2010] is False
    english = fake_api.last("sendMessage", 2100)
    assert english.params["parse_mode"] == "HTML"
    assert "Flood Red warning" in english.text
    stats = await alerts.stats(view.id)
    assert (stats.sent, stats.blocked, stats.failed) == (30, 1, 0)


async def test_a_paid_broadcast_goes_through_the_bots_rate_limiter(services, fake_api,
                                                                  monkeypatch):
    from telegram.ext import AIORateLimiter

    from quickresponse.telegram.app import build_application
    from quickresponse.telegram.sender import TelegramSender

    limited: list[tuple[str, object, object]] = []
    process_request = AIORateLimiter.process_request

    async def recording(self, **kwargs):  # type: ignore[no-untyped-def]
        data = kwargs["data"]
        if kwargs["endpoint"] == "sendMessage":
            limited.append((kwargs["endpoint"], data["chat_id"], data.get("allow_paid_broadcast")))
        return await process_request(self, **kwargs)

    monkeypatch.setattr(AIORateLimiter, "process_request", recording)
    time = FakeTime()
    alerts = alert_service(services, time, broadcast_rate=500.0, allow_paid_broadcast=True)
    await add_residents(services, range(2201, 2206), [CHAOYANG])
    application = build_application(services, request=fake_api)  # with PTB's rate limiter
    async with application:
        alerts.attach(TelegramSender(application.bot))
        view = await send_now(alerts)
        await alerts.run_due()

    sent = fake_api.sent("sendMessage")
    assert sorted(c.chat_id for c in sent) == list(range(2201, 2206))
    # PTB's limiter keeps paid broadcasts within Telegram's 1,000/s by this flag.
    assert sorted(limited) == [("sendMessage", chat, True) for chat in range(2201, 2206)]
    for call in sent:
        assert call.params["allow_paid_broadcast"] is True
        assert call.params["link_preview_options"] == {"is_disabled": True}
        assert call.params["parse_mode"] == "HTML"
        assert "暴雨橙色预警" in call.text
    assert (await alerts.stats(view.id)).sent == 5


async def test_each_recipient_keeps_its_own_outcome_and_reason_in_the_ledger(services):
    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(2301, 2311), [CHAOYANG])
    sender = FakeSender(script={
        2303: [SendOutcome.permanent("BadRequest: message is too long")],
        2305: [SendOutcome.permanent("BadRequest: can't parse entities")],
        2307: [SendOutcome.blocked("Forbidden: bot was blocked by the user")],
    })
    alerts.attach(sender)
    view = await send_now(alerts)
    await alerts.run_due()

    async def work(session):
        rows = (await session.exec(
            select(AlertDelivery).where(AlertDelivery.alert_id == view.id))).all()
        return {r.chat_id: (r.state, r.error, r.sent_at is not None, r.lease_until) for r in rows}

    ledger = await services.db.run(work)
    assert ledger.pop(2303) == ("failed", "BadRequest: message is too long", False, None)
    assert ledger.pop(2305) == ("failed", "BadRequest: can't parse entities", False, None)
    assert ledger.pop(2307) == ("blocked", "Forbidden: bot was blocked by the user", False, None)
    assert set(ledger.values()) == {("sent", None, True, None)}
    assert len(ledger) == 7
