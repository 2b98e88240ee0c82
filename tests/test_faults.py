"""Faults: the database away for a moment or for longer while an update is handled, and the Bot
API failing or timing out during a broadcast. Nothing a resident sent is lost: a brief outage is
ridden out by the retry in ``Database.run``, a longer one ends in a localised "please send it
again" and leaves nothing half-written. On both databases.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, update
from sqlmodel import col, func, select

from quickresponse.alerts.models import AlertDelivery
from quickresponse.metrics import DB_RETRIES
from quickresponse.models import QuestionLog
from quickresponse.tickets.models import Ticket, TicketEvent, TicketNotification
from quickresponse.tickets.service import NewTicket
from tests.conftest import ADMIN_ID
from tests.fakebot import retry_after
from tests.ticket_helpers import (
    DONGCHENG,
    DONGCHENG_GROUP,
    RESIDENT,
    STAFF,
    TIANANMEN,
    Person,
    answer_of,
    last_shown,
    text_of,
    to,
    with_buttons,
)

RESEND_ZH = "未能保存，请过一分钟后重新发送"
RESEND_EN = "could not save that just now"
NOT_SAVED_EN = "I can't save messages just now"


@dataclass
class DatabaseOutage:
    """Makes the next statements fail as a dropped connection does, at the driver's door:
    every SQL statement passes ``before_cursor_execute`` on SQLite and PostgreSQL alike."""

    remaining: int = 0
    matching: Callable[[str], bool] | None = None
    failed: list[str] = field(default_factory=list)

    def attach(self, engine) -> None:  # type: ignore[no-untyped-def]
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)

    def fail(self, times: int, when: str | None = None) -> None:
        """Fail the next ``times`` statements (only those starting with ``when``, if given)."""
        self.remaining = times
        self.matching = None if when is None else (
            lambda sql: sql.lstrip().upper().startswith(when.upper()))

    def end(self) -> None:
        self.remaining = 0

    def _before(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if self.remaining and (self.matching is None or self.matching(statement)):
            self.remaining -= 1
            self.failed.append(statement.split()[0] + " " + statement.split()[2]
                               if len(statement.split()) > 2 else statement)
            # The driver's own error, so that SQLAlchemy wraps it as it wraps a real one.
            raise conn.dialect.loaded_dbapi.OperationalError(
                "connection is closed (fault injected)")


@pytest.fixture
def outage(services) -> DatabaseOutage:
    injected = DatabaseOutage()
    injected.attach(services.db.engine)
    return injected


@pytest.fixture
async def dongcheng(services):
    await services.tickets.add_staff(None, STAFF, DONGCHENG, display_name="王芳")
    await services.tickets.link_group(ADMIN_ID, DONGCHENG, DONGCHENG_GROUP)


async def count(services, model, *where) -> int:  # type: ignore[no-untyped-def]
    async def work(session):  # type: ignore[no-untyped-def]
        stmt = select(func.count()).select_from(model)
        for condition in where:
            stmt = stmt.where(condition)
        return int((await session.exec(stmt)).one())

    return await services.db.run(work)


def retries() -> float:
    return DB_RETRIES._value.get()


# -- a question --------------------------------------------------------------------------------

async def test_a_question_during_a_brief_outage_is_answered_once(app, fake_api, services,
                                                                outage):
    resident = Person(app, fake_api)
    before = retries()
    outage.fail(2)
    calls = await resident.send("闻到煤气味怎么办")
    assert len(outage.failed) == 2
    assert retries() - before == 2
    answer = to(calls, RESIDENT, "sendMessage")
    assert len(answer) == 1 and "燃气" in answer[0].text
    assert RESEND_ZH not in answer[0].text
    assert await count(services, QuestionLog) == 1


async def test_a_question_during_a_long_outage_is_answered_from_memory_and_says_so(
        app, fake_api, services, outage, caplog):
    resident = Person(app, fake_api, language_code="en")
    outage.fail(1000)
    with caplog.at_level("INFO"):
        calls = await resident.send("what to do when I smell gas")
    # Safety advice does not wait for the database: one answer, with the steps, saying that it
    # was not saved (so a resident in the middle of a report knows to send it again).
    (said,) = to(calls, RESIDENT, "sendMessage")
    assert "96777" in said.text and "window" in said.text.lower()
    assert NOT_SAVED_EN in said.text
    assert "Traceback" not in said.text
    outage.end()
    assert await count(services, QuestionLog) == 0

    calls = await resident.send("what to do when I smell gas")
    (answer,) = to(calls, RESIDENT, "sendMessage")
    assert "gas" in answer.text.lower() and NOT_SAVED_EN not in answer.text
    assert await count(services, QuestionLog) == 1


async def test_a_location_during_a_long_outage_asks_to_resend(app, fake_api, services, outage):
    resident = Person(app, fake_api, language_code="en")
    outage.fail(1000)
    calls = await resident.send(location=TIANANMEN)
    (said,) = to(calls, RESIDENT, "sendMessage")
    assert RESEND_EN in said.text and "119" in said.text


async def test_a_failed_write_does_not_put_the_residents_words_in_the_log(
        app, fake_api, services, outage, caplog):
    resident = Person(app, fake_api, language_code="en")
    outage.fail(1000, when="INSERT INTO question_log")
    with caplog.at_level("INFO"):
        calls = await resident.send("my neighbour Wang Wei at No. 5 smells gas")
    assert NOT_SAVED_EN in text_of(calls)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "INSERT INTO question_log" in logged
    assert "Wang Wei" not in logged, "a failed statement's parameters reached the log"


# -- a report ----------------------------------------------------------------------------------

async def start_report(resident: Person) -> list:
    calls = await resident.send("/report")
    return await resident.press(with_buttons(calls), "积水")


async def test_a_report_step_rides_out_a_brief_outage(app, fake_api, services, outage,
                                                      dongcheng):
    resident = Person(app, fake_api)
    await start_report(resident)
    # The description's write of the draft fails twice, then goes through.
    outage.fail(2, when="UPDATE conversation_state")
    calls = await resident.send("东长安街路口积水很深，已经没过膝盖")
    assert len(outage.failed) == 2
    assert "照片" in with_buttons(calls).text
    draft = await services.conversations.get(RESIDENT, RESIDENT)
    assert draft is not None and "没过膝盖" in str(draft.data)


async def test_a_report_step_during_a_long_outage_keeps_the_draft_where_it_was(
        app, fake_api, services, outage, dongcheng):
    resident = Person(app, fake_api)
    await start_report(resident)
    before = await services.conversations.get(RESIDENT, RESIDENT)
    outage.fail(1000, when="UPDATE conversation_state")
    calls = await resident.send("东长安街路口积水很深，已经没过膝盖")
    assert RESEND_ZH in text_of(calls)
    outage.end()
    assert await services.conversations.get(RESIDENT, RESIDENT) == before

    # Sending the same text again continues exactly where the report was.
    calls = await resident.send("东长安街路口积水很深，已经没过膝盖")
    assert "照片" in with_buttons(calls).text


async def summary_of_report(resident: Person) -> object:
    await start_report(resident)
    calls = await resident.send("东长安街路口积水很深，已经没过膝盖")
    calls = await resident.press(with_buttons(calls), "跳过照片")
    calls = await resident.send(location=TIANANMEN)
    calls = await resident.press(with_buttons(calls), "匿名反映")
    return with_buttons(calls)


@pytest.mark.parametrize("failures", [2, 1000], ids=["brief", "long"])
async def test_submitting_a_report_during_an_outage_files_exactly_one_ticket(
        app, fake_api, services, outage, dongcheng, failures):
    resident = Person(app, fake_api)
    summary = await summary_of_report(resident)
    outage.fail(failures, when="INSERT INTO tickets")
    calls = await resident.press(summary, "提交")
    if failures > 3:
        # The resident is told at the button, and the report waits for another press.
        assert RESEND_ZH in answer_of(calls).params["text"]
        assert await count(services, Ticket) == 0
        assert await services.conversations.get(RESIDENT, RESIDENT) is not None
        outage.end()
        calls = await resident.press(summary, "提交")
    assert "#1" in to(calls, RESIDENT, "sendMessage")[-1].text
    assert await count(services, Ticket) == 1
    assert len(to(calls, DONGCHENG_GROUP, "sendMessage")) == 1
    # Pressing again after it went through does not file it twice.
    calls = await resident.press(summary, "提交")
    assert await count(services, Ticket) == 1
    assert to(calls, DONGCHENG_GROUP, "sendMessage") == []


# -- a claim -----------------------------------------------------------------------------------

async def file_ticket(fake_api, services) -> tuple[int, object]:
    before = len(fake_api.calls)
    outcome = await services.tickets.file(NewTicket(
        resident_id=RESIDENT, lang="zh", category="manhole", description="路口井盖丢了",
        district_id=DONGCHENG, routing_method="location", latitude=TIANANMEN[0],
        longitude=TIANANMEN[1]))
    card = next(c for c in fake_api.calls[before:]
                if c.chat_id == DONGCHENG_GROUP and c.method == "sendMessage")
    return outcome.ticket.id, card


@pytest.mark.parametrize("failures", [2, 1000], ids=["brief", "long"])
async def test_a_claim_during_an_outage_is_done_once(app, fake_api, services, outage,
                                                      dongcheng, failures):
    ticket_id, card = await file_ticket(fake_api, services)
    staff = Person(app, fake_api, user_id=STAFF, chat_id=DONGCHENG_GROUP)
    outage.fail(failures, when="UPDATE tickets")
    calls = await staff.press(card, "认领")
    if failures > 3:
        assert RESEND_ZH in answer_of(calls).params["text"]
        assert (await services.tickets.view(ticket_id)).state == "new"
        outage.end()
        calls = await staff.press(card, "认领")
    assert "#1" in answer_of(calls).params["text"]
    view = await services.tickets.view(ticket_id)
    assert (view.state, view.claimed_by) == ("claimed", STAFF)
    assert await count(services, TicketEvent, TicketEvent.action == "claimed") == 1
    told = await count(services, TicketNotification, TicketNotification.kind == "claimed")
    assert told == 1
    assert len([c for c in to(fake_api.calls, RESIDENT, "sendMessage")
                if "认领" in c.text or "#1" in c.text]) == 1
    assert last_shown(calls)


# -- the Bot API during a broadcast --------------------------------------------------------------

def delivery_counts() -> dict[str, float]:
    from quickresponse.metrics import DELIVERIES

    return {result: DELIVERIES.labels(result)._value.get()
            for result in ("sent", "failed", "blocked", "throttled")}


async def test_bot_api_outage_longer_than_the_retries_delays_but_does_not_drop_alerts(
        app, fake_api, services):
    from telegram.error import TimedOut

    from quickresponse.telegram.sender import TelegramSender
    from tests.alert_helpers import CHAOYANG, FakeTime, add_residents, alert_service, send_now

    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(3001, 3041), [CHAOYANG])
    failed_attempts: list[int] = []

    def unreachable(call):  # type: ignore[no-untyped-def]
        # Telegram unreachable for the first 200 attempts: far longer than the four tries one
        # message gets when only it fails.
        if call.method == "sendMessage" and len(failed_attempts) < 200:
            failed_attempts.append(call.chat_id)
            raise TimedOut("Timed out")
        return None

    fake_api.failures.append(unreachable)
    alerts.attach(TelegramSender(app.bot))
    view = await send_now(alerts)
    await alerts.run_due()

    assert len(failed_attempts) == 200
    delivered = [c.chat_id for c in fake_api.sent("sendMessage")]
    assert sorted(delivered) == list(range(3001, 3041)), "everyone, once, after the outage"
    final = await alerts.get(view.id)
    assert (final.state, final.stats.sent, final.stats.failed) == ("sent", 40, 0)
    assert max(time.sleeps) <= 60.0, "pauses are capped, so sending resumes soon after"


async def test_isolated_server_errors_and_timeouts_are_retried_and_counted(
        app, fake_api, services):
    from telegram.error import TimedOut

    from quickresponse.telegram.sender import TelegramSender
    from tests.alert_helpers import CHAOYANG, FakeTime, add_residents, alert_service, send_now
    from tests.fakebot import bad_request, retry_after

    time = FakeTime()
    alerts = alert_service(services, time)
    await add_residents(services, range(4001, 4021), [CHAOYANG])
    seen: dict[int, int] = {}

    def flaky(call):  # type: ignore[no-untyped-def]
        if call.method != "sendMessage":
            return None
        chat = call.chat_id
        seen[chat] = seen.get(chat, 0) + 1
        if chat == 4003 and seen[chat] == 1:
            return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        if chat == 4007 and seen[chat] <= 2:
            raise TimedOut("Timed out")
        if chat == 4011 and seen[chat] == 1:
            return retry_after(3)
        if chat == 4015:
            return bad_request("Bad Request: can't parse entities")  # never gets through
        return None

    fake_api.failures.append(flaky)
    alerts.attach(TelegramSender(app.bot))
    before = delivery_counts()
    view = await send_now(alerts)
    await alerts.run_due()

    delivered = sorted(c.chat_id for c in fake_api.sent("sendMessage"))
    assert delivered == [c for c in range(4001, 4021) if c != 4015]
    assert (seen[4003], seen[4007], seen[4011], seen[4015]) == (2, 3, 2, 1)
    stats = await alerts.stats(view.id)
    assert (stats.sent, stats.failed) == (19, 1)
    after = delivery_counts()
    moved = {k: after[k] - before[k] for k in after}
    assert moved == {"sent": 19, "failed": 1, "blocked": 0, "throttled": 1}


# -- a process killed mid-broadcast ---------------------------------------------------------------

SUBSCRIBERS = range(6001, 6151)


async def seed_due_alert(settings, subscribers: range) -> int:  # type: ignore[no-untyped-def]
    """Subscribers in Chaoyang and a warning due now, written as the admin's process would."""
    from quickresponse.alerts.hazards import Hazard, Level
    from quickresponse.alerts.service import AlertDraft
    from quickresponse.services import build_services
    from tests.alert_helpers import CHAOYANG, add_residents

    services = await build_services(settings, migrate=False)  # the real clock: real processes
    try:
        await add_residents(services, subscribers, [CHAOYANG])
        view = await services.alerts.compose(ADMIN_ID, AlertDraft(
            hazard=Hazard.RAINSTORM, level=Level.RED, district_ids=(CHAOYANG,),
            expires_at=services.clock.now() + timedelta(hours=6)))
        await services.alerts.submit(ADMIN_ID, view.id)
        return view.id
    finally:
        await services.close()


async def expire_leases(url: str) -> int:
    """What two minutes of waiting would do: the dead process's claims run out."""
    from quickresponse.db import Database

    db = Database(url)
    try:
        async with db.session() as session:
            result = await session.exec(  # type: ignore[call-overload]
                update(AlertDelivery).where(col(AlertDelivery.state) == "sending")
                .values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
            return int(result.rowcount or 0)
    finally:
        await db.close()


@pytest.fixture
async def fake_server():
    from tests.fake_bot_server import FakeBotServer

    server = FakeBotServer()
    await server.start()
    yield server
    await server.stop()


async def test_a_process_killed_mid_broadcast_resumes_and_everyone_gets_it_once(
        settings, db_url, fake_server):
    from tests.bot_processes import BotProcess, bot_env, free_port, wait_for

    alert_id = await seed_due_alert(settings, SUBSCRIBERS)
    throttled: list[int] = []

    def flood_control_once(call):  # type: ignore[no-untyped-def]
        # Telegram slows a big broadcast down: the 60th message is answered "retry after 30".
        delivered = [c for c in fake_server.api.calls
                     if c.method == "sendMessage" and c.chat_id in SUBSCRIBERS]
        if call.method == "sendMessage" and len(delivered) >= 60 and not throttled:
            throttled.append(call.chat_id)
            call.params["_failed"] = 429
            return retry_after(30)
        return None

    fake_server.api.failures.append(flood_control_once)

    def received() -> list[int]:
        return [c.chat_id for c in fake_server.api.calls if c.method == "sendMessage"
                and c.chat_id in SUBSCRIBERS and "_failed" not in c.params]

    port = free_port()
    first = BotProcess("first", port, bot_env(fake_server, db_url, port,
                                              QR_BROADCAST_RATE="20"))
    await first.start()
    try:
        await wait_for(lambda: bool(throttled), 90, "flood control reached", [first])
        # While the broadcast waits out flood control, whatever was sent gets recorded;
        # then the process dies without any chance to clean up.
        await asyncio.sleep(1.5)
        first.kill()
        await first.wait_exit()
    finally:
        first.kill()
    before_restart = received()
    assert 60 <= len(before_restart) < len(SUBSCRIBERS)
    assert len(set(before_restart)) == len(before_restart)
    assert await expire_leases(db_url) > 0, "the killed process left claimed rows behind"

    port = free_port()
    second = BotProcess("second", port, bot_env(fake_server, db_url, port,
                                                QR_BROADCAST_RATE="20"))
    await second.start()
    try:
        await wait_for(lambda: len(set(received())) == len(SUBSCRIBERS), 90,
                       "every subscriber reached", [second])
        await asyncio.sleep(1.0)  # anything more would be a duplicate
    finally:
        await second.stop()
    counts = Counter(received())
    assert set(counts) == set(SUBSCRIBERS)
    duplicates = {chat: n for chat, n in counts.items() if n > 1}
    assert duplicates == {}, f"sent twice after the restart: {duplicates}\n{second.log()}"

    from quickresponse.db import Database

    db = Database(db_url)
    try:
        async with db.session() as session:
            states = dict((await session.exec(
                select(AlertDelivery.state, func.count()).where(
                    AlertDelivery.alert_id == alert_id).group_by(AlertDelivery.state))).all())
    finally:
        await db.close()
    assert states == {"sent": len(SUBSCRIBERS)}


async def test_a_process_killed_while_sending_resumes_and_nobody_is_missed(
        settings, db_url, fake_server):
    """Killed at an arbitrary moment, with messages in flight: a message Telegram accepted
    whose answer never came back cannot be told apart from one that was lost, so it is sent
    again. Nobody is missed; the copies are bounded by what was in flight and not yet
    recorded (at most the sends of half a second plus the open requests)."""
    from tests.bot_processes import BotProcess, bot_env, free_port, wait_for

    if not db_url.startswith("sqlite"):
        pytest.skip("the PostgreSQL path is covered by the flood-control kill above")
    await seed_due_alert(settings, SUBSCRIBERS)

    def received() -> list[int]:
        return [c.chat_id for c in fake_server.api.calls if c.method == "sendMessage"
                and c.chat_id in SUBSCRIBERS and "_failed" not in c.params]

    port = free_port()
    first = BotProcess("first", port, bot_env(fake_server, db_url, port,
                                              QR_BROADCAST_RATE="20"))
    await first.start()
    try:
        await wait_for(lambda: len(received()) >= 40, 90, "sending under way", [first])
        first.kill()
        await first.wait_exit()
    finally:
        first.kill()
    assert len(set(received())) < len(SUBSCRIBERS)
    await expire_leases(db_url)

    port = free_port()
    second = BotProcess("second", port, bot_env(fake_server, db_url, port,
                                                QR_BROADCAST_RATE="20"))
    await second.start()
    try:
        await wait_for(lambda: len(set(received())) == len(SUBSCRIBERS), 90,
                       "every subscriber reached", [second])
        await asyncio.sleep(1.0)
    finally:
        await second.stop()
    counts = Counter(received())
    assert set(counts) == set(SUBSCRIBERS), "nobody is missed"
    copies = sum(n - 1 for n in counts.values())
    assert max(counts.values()) <= 2 and copies <= 30, counts
