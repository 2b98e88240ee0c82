"""Data protection: /forgetme, the retention purge and `export-my-data`, on both databases."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import col, func, select

from quickresponse import cli
from quickresponse.alerts.delivery import SendOutcome
from quickresponse.alerts.hazards import Hazard, Level
from quickresponse.alerts.models import (
    AlertDelivery,
    AlertHazardFilter,
    AlertPreference,
    AlertSubscription,
)
from quickresponse.alerts.service import AlertDraft
from quickresponse.conversations import Conversation
from quickresponse.models import FORGOTTEN_ID, ConversationState, QuestionLog, User
from quickresponse.privacy import PURGE_JOB, PURGE_LOCK_KEY, PURGE_START_JOB, REDACTED
from quickresponse.services import Services
from quickresponse.tickets.models import Ticket, TicketEvent, TicketFollower, TicketPhoto
from quickresponse.tickets.service import NewTicket
from tests.conftest import ADMIN_ID
from tests.fakebot import callback_update, message_update

RESIDENT = 1001
NEIGHBOUR = 1002
STAFF = 2001
CHAOYANG = "110105"
PHONE = "13800138000"


@dataclass
class RecordingSender:
    """The alerts' way out, recording who got what."""

    sent: list[int] = field(default_factory=list)

    async def send(self, chat_id: int, html: str, *, paid: bool) -> SendOutcome:
        self.sent.append(chat_id)
        return SendOutcome.sent()


def new_ticket(resident: int, description: str, **extra: object) -> NewTicket:
    values: dict[object, object] = dict(
        resident_id=resident, lang="zh", category="waterlogging", description=description,
        district_id=CHAOYANG, routing_method="location", latitude=39.92, longitude=116.44,
        address="朝阳区某小区3号楼", photos=("photo-of-my-yard",), contact_consent=True,
        contact_name="张三", contact_phone=PHONE)
    values.update(extra)
    return NewTicket(**values)  # type: ignore[arg-type]


async def count(services: Services, model: type, *where: object) -> int:
    async def work(session):  # type: ignore[no-untyped-def]
        stmt = select(func.count()).select_from(model)
        for condition in where:
            stmt = stmt.where(condition)
        return int((await session.exec(stmt)).one())

    return await services.db.run(work)


async def rows(services: Services, model: type, *where: object) -> list:
    async def work(session):  # type: ignore[no-untyped-def]
        stmt = select(model)
        for condition in where:
            stmt = stmt.where(condition)
        return list((await session.exec(stmt)).all())

    return await services.db.run(work)


async def send_alert(services: Services, sender: RecordingSender, **draft: object) -> int:
    services.alerts.attach(sender)
    now = services.clock.now()
    view = await services.alerts.compose(ADMIN_ID, AlertDraft(
        hazard=Hazard.RAINSTORM, level=Level.ORANGE, district_ids=(CHAOYANG,),
        expires_at=now + timedelta(hours=6), **draft))  # type: ignore[arg-type]
    await services.alerts.submit(ADMIN_ID, view.id)
    await services.alerts.run_due()
    return view.id


async def resident_with_everything(services: Services) -> dict[str, int]:
    """A resident who asked, subscribed, filed a report, follows a neighbour's, got a warning."""
    users, tickets = services.users, services.tickets
    await users.touch(RESIDENT)
    await users.set_language(RESIDENT, "en")
    await users.touch(NEIGHBOUR)
    await services.qa.ask(RESIDENT, "my basement at Chaoyang Road 5 is flooding")
    await services.conversations.set(RESIDENT, RESIDENT, Conversation(
        "report", "address", {"description": "water at my door, call Zhang San"}))
    await services.subscriptions.subscribe(RESIDENT, [CHAOYANG])
    await services.subscriptions.set_preferences(RESIDENT, hazards=[Hazard.RAINSTORM])
    await services.subscriptions.subscribe(NEIGHBOUR, [CHAOYANG])
    mine = (await tickets.file(new_ticket(RESIDENT, "我家门口积水很深，我是张三"))).ticket
    await tickets.add_info(mine.id, RESIDENT, text="水已经进屋了，电话13800138000")
    theirs = (await tickets.file(new_ticket(NEIGHBOUR, "小区门口积水", photos=(),
                                            contact_consent=False))).ticket
    await tickets.follow(theirs.id, RESIDENT, "en")
    await tickets.add_staff(ADMIN_ID, STAFF, CHAOYANG, display_name="李工")
    await tickets.claim(mine.id, STAFF)
    alert_id = await send_alert(services, RecordingSender())
    return {"mine": mine.id, "theirs": theirs.id, "alert": alert_id}


async def test_forgetting_deletes_personal_data_and_keeps_tickets_anonymised(services):
    ids = await resident_with_everything(services)
    questions_before = await count(services, QuestionLog)
    stats_before = await services.alerts.stats(ids["alert"])

    report = await services.privacy.forget(RESIDENT)

    assert report.user_row and report.questions == 1 and report.subscriptions == 1
    assert report.tickets_anonymised == 1 and report.follows == 1
    assert await count(services, User, User.id == RESIDENT) == 0
    # The question stays as an anonymous count (gaps and statistics), without its words.
    assert await count(services, QuestionLog) == questions_before
    assert await count(services, QuestionLog, col(QuestionLog.text).contains("Chaoyang")) == 0
    assert await count(services, QuestionLog, QuestionLog.user_id == RESIDENT) == 0
    assert await count(services, ConversationState) == 0
    for model in (AlertSubscription, AlertPreference, AlertHazardFilter):
        assert await count(services, model, model.chat_id == RESIDENT) == 0
    assert await count(services, AlertSubscription, AlertSubscription.chat_id == NEIGHBOUR) == 1

    ticket = (await rows(services, Ticket, Ticket.id == ids["mine"]))[0]
    assert (ticket.state, ticket.category, ticket.district_id) == ("claimed", "waterlogging",
                                                                  CHAOYANG)
    assert ticket.resident_id == ticket.chat_id == FORGOTTEN_ID
    assert ticket.description == REDACTED
    assert (ticket.address, ticket.latitude, ticket.longitude) == (None, None, None)
    assert (ticket.contact_name, ticket.contact_phone, ticket.contact_consent) == (
        None, None, False)
    assert ticket.claimed_by == STAFF  # the staff's work record stays
    assert await count(services, TicketPhoto) == 0
    events = await rows(services, TicketEvent, TicketEvent.ticket_id == ids["mine"])
    assert [e.action for e in events] == ["filed", "info_added", "claimed"]
    assert all(e.actor_id is None and e.note is None for e in events
               if e.actor_role == "resident")
    assert not any("13800138000" in (e.note or "") for e in events)
    assert await count(services, TicketFollower, TicketFollower.user_id == RESIDENT) == 0
    neighbours = (await rows(services, Ticket, Ticket.id == ids["theirs"]))[0]
    assert neighbours.resident_id == NEIGHBOUR and neighbours.description == "小区门口积水"

    # The broadcast's figures do not change; the rows no longer point at the resident.
    assert await services.alerts.stats(ids["alert"]) == stats_before
    assert await count(services, AlertDelivery, AlertDelivery.chat_id == RESIDENT) == 0
    exported = await services.privacy.export(RESIDENT)
    assert exported["user"] is None
    assert all(exported[k] == [] for k in exported if k not in ("user", "user_id",
                                                                 "exported_at"))

    # Nothing is sent to the forgotten resident any more: not ticket news, not warnings.
    outcome = await services.tickets.resolve(ids["mine"], STAFF, "已抽水")
    assert [n.audience for n in outcome.notifications] == []
    sender = RecordingSender()
    await send_alert(services, sender)
    assert sender.sent == [NEIGHBOUR]


async def test_an_update_of_an_alert_does_not_go_to_a_forgotten_recipient(services):
    await services.users.touch(RESIDENT)
    await services.subscriptions.subscribe(RESIDENT, [CHAOYANG])
    await services.subscriptions.subscribe(NEIGHBOUR, [CHAOYANG])
    first = await send_alert(services, RecordingSender())
    await services.privacy.forget(RESIDENT)
    # The neighbour unsubscribes after the first alert: the update still reaches them as a
    # recipient of the original, and only them.
    await services.subscriptions.unsubscribe(NEIGHBOUR)
    update = await services.alerts.compose_update(ADMIN_ID, first, AlertDraft(
        hazard=Hazard.RAINSTORM, level=Level.RED, district_ids=(CHAOYANG,),
        expires_at=services.clock.now() + timedelta(hours=6)))
    await services.alerts.submit(ADMIN_ID, update.id)
    sender = RecordingSender()
    services.alerts.attach(sender)
    await services.alerts.run_due()
    assert sender.sent == [NEIGHBOUR]


async def test_export_lists_everything_held_about_the_person(services, monkeypatch, capsys):
    ids = await resident_with_everything(services)
    data = await services.privacy.export(RESIDENT)
    assert data["user"]["language"] == "en"
    assert [q["text"] for q in data["questions"]] == [
        "my basement at Chaoyang Road 5 is flooding"]
    assert data["conversations"][0]["data"]["description"].startswith("water at my door")
    assert [s["district_id"] for s in data["alert_subscriptions"]] == [CHAOYANG]
    assert [f["hazard"] for f in data["alert_hazard_filters"]] == ["rainstorm"]
    (ticket,) = data["tickets"]
    assert ticket["contact_phone"] == PHONE and ticket["address"] == "朝阳区某小区3号楼"
    assert [e["action"] for e in ticket["events"]] == ["filed", "info_added", "claimed"]
    assert [p["file_id"] for p in ticket["photos"]] == ["photo-of-my-yard"]
    assert [f["ticket_id"] for f in data["following"]] == [ids["theirs"]]
    assert [d["alert_id"] for d in data["alert_deliveries"]] == [ids["alert"]]
    assert [d["state"] for d in data["alert_deliveries"]] == ["sent"]
    # Another person's data is not in it.
    assert "小区门口积水" not in json.dumps(data, ensure_ascii=False)

    # The same through the command line, as an operator answers an access request.
    monkeypatch.setenv("QR_DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("QR_LOG_LEVEL", "WARNING")
    capsys.readouterr()
    # In a thread: the command runs its own event loop, as it does from a shell.
    assert await asyncio.to_thread(cli.main, ["export-my-data", str(RESIDENT)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["tickets"][0]["description"] == "我家门口积水很深，我是张三"
    assert printed["user_id"] == RESIDENT


def test_export_refuses_a_missing_database(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("QR_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")
    assert cli.main(["export-my-data", "1001"]) == 1
    assert "no database" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
    with pytest.raises(SystemExit):
        cli.main(["export-my-data", "not-a-number"])


async def test_retention_purge_blanks_old_questions_and_anonymises_old_finished_tickets(
        services, clock):
    start = clock.now()
    await services.users.touch(RESIDENT)
    # Words the knowledge base has no answer for: a gap for the curators.
    await services.qa.ask(RESIDENT, "qwzx plorb vintage zumba")
    assert [gap.text for gap in await services.qa.gaps(days=365)] == [
        "qwzx plorb vintage zumba"]
    withdrawn = (await services.tickets.file(new_ticket(RESIDENT, "老问题，我叫张三"))).ticket
    await services.tickets.withdraw(withdrawn.id, RESIDENT, "已自己解决，电话13800138000")
    still_open = (await services.tickets.file(new_ticket(RESIDENT, "一直没人处理"))).ticket
    await services.updates.first_time(424242)
    await services.conversations.set(NEIGHBOUR, NEIGHBOUR, Conversation("report", "address"))
    old_alert = await send_alert(services, RecordingSender())  # nobody subscribed yet
    await services.subscriptions.subscribe(NEIGHBOUR, [CHAOYANG])
    await services.users.touch(NEIGHBOUR)
    subscribed_alert = await send_alert(services, RecordingSender())
    assert old_alert != subscribed_alert

    clock.set(start + timedelta(days=181))
    await services.qa.ask(NEIGHBOUR, "停电了冰箱里的食物还能吃吗")
    first = await services.privacy.run_due()
    assert first.questions_blanked == 1 and first.update_ids == 1
    assert first.tickets_anonymised == 0  # personal data is kept longer than question texts
    texts = sorted(q.text for q in await rows(services, QuestionLog))
    assert texts == ["", "停电了冰箱里的食物还能吃吗"]
    # The blanked question still counts, but is no longer a gap with empty words.
    assert await count(services, QuestionLog, QuestionLog.outcome == "no_answer") >= 1
    assert [gap.text for gap in await services.qa.gaps(days=365)
            if gap.outcome == "no_answer" and not gap.text] == []

    clock.set(start + timedelta(days=366))
    second = await services.privacy.run_due()
    assert second.tickets_anonymised == 1
    assert second.conversations == 1  # the neighbour's abandoned report draft
    assert second.deliveries_unlinked == 1  # the neighbour's copy of the year-old warning
    old = (await rows(services, Ticket, Ticket.id == withdrawn.id))[0]
    assert old.description == REDACTED and old.contact_phone is None and old.reason is None
    assert old.state == "withdrawn"
    kept = (await rows(services, Ticket, Ticket.id == still_open.id))[0]
    assert kept.description == "一直没人处理" and kept.contact_phone == PHONE
    # The resident has an open ticket, so their account stays; the subscribed neighbour too.
    assert second.users_forgotten == 0
    assert await count(services, User) == 2
    assert (await services.alerts.stats(subscribed_alert)).sent == 1

    third = await services.privacy.run_due()
    assert (third.questions_blanked, third.tickets_anonymised, third.users_forgotten,
            third.deliveries_unlinked) == (0, 0, 0, 0)


async def test_people_gone_quiet_are_forgotten_unless_something_still_needs_them(
        services, clock):
    start = clock.now()
    quiet, subscriber, waiting, staff = 5001, 5002, 5003, 5004
    for user_id in (quiet, subscriber, waiting, staff):
        await services.users.touch(user_id)
    await services.users.set_language(quiet, "en")
    await services.subscriptions.subscribe(subscriber, [CHAOYANG])
    await services.tickets.file(new_ticket(waiting, "路灯坏了"))
    await services.tickets.add_staff(ADMIN_ID, staff, CHAOYANG)
    await services.users.touch(RESIDENT)

    clock.set(start + timedelta(days=300))
    await services.users.touch(RESIDENT)  # seen recently
    clock.set(start + timedelta(days=370))
    report = await services.privacy.run_due()
    assert report.users_forgotten == 1
    left = {u.id for u in await rows(services, User)}
    assert left == {subscriber, waiting, staff, RESIDENT}


@pytest.mark.postgres
async def test_only_one_process_purges_at_a_time_on_postgres(services):
    if services.db.is_sqlite:
        pytest.skip("the advisory lock is PostgreSQL's")
    async with services.db.engine.connect() as other_process:
        assert await other_process.scalar(text(f"SELECT pg_try_advisory_lock({PURGE_LOCK_KEY})"))
        assert (await services.privacy.run_due()).skipped
        await other_process.execute(text(f"SELECT pg_advisory_unlock({PURGE_LOCK_KEY})"))
    assert not (await services.privacy.run_due()).skipped


async def test_the_purge_is_scheduled_when_the_bot_starts(services):
    await services.start_background()
    assert {PURGE_JOB, PURGE_START_JOB} <= set(services.scheduler.job_ids())
    assert services.scheduler.next_run(PURGE_JOB) is not None


# -- /forgetme on Telegram ------------------------------------------------------------------------

async def test_forgetme_asks_first_and_deletes_only_after_the_confirmation(app, fake_api,
                                                                            services):
    await services.users.touch(RESIDENT)
    await services.subscriptions.subscribe(RESIDENT, [CHAOYANG])
    await app.process_update(message_update(app.bot, "/forgetme", user_id=RESIDENT,
                                            language_code="en"))
    asked = fake_api.last(chat_id=RESIDENT)
    assert "cannot be undone" in asked.text
    assert await count(services, AlertSubscription) == 1

    await app.process_update(callback_update(app.bot, asked.button("Keep"), user_id=RESIDENT,
                                             language_code="en", message_text=asked.text))
    assert "nothing was deleted" in fake_api.last("editMessageText").text
    assert await count(services, AlertSubscription) == 1

    await app.process_update(callback_update(app.bot, asked.button("Yes"), user_id=RESIDENT,
                                             language_code="en", message_text=asked.text))
    done = fake_api.last("editMessageText").text
    assert "has been deleted" in done and "/subscribe" in done
    assert await count(services, AlertSubscription) == 0
    assert await count(services, User, User.id == RESIDENT) == 0


async def test_forgetme_speaks_the_residents_language_and_counts_kept_reports(app, fake_api,
                                                                              services):
    await services.users.set_language(RESIDENT, "zh")
    await services.tickets.file(new_ticket(RESIDENT, "井盖丢了"))
    await app.process_update(message_update(app.bot, "/forgetme", user_id=RESIDENT,
                                            language_code="en"))
    asked = fake_api.last(chat_id=RESIDENT)
    assert "无法恢复" in asked.text
    await app.process_update(callback_update(app.bot, asked.button("是的"), user_id=RESIDENT))
    done = fake_api.last("editMessageText").text
    assert "已删除" in done and "1 条报告" in done


async def test_forgetme_in_a_group_points_to_the_private_chat(app, fake_api, services):
    await services.users.touch(RESIDENT)
    await app.process_update(message_update(app.bot, "/forgetme", user_id=RESIDENT,
                                            chat_id=-100555, language_code="en"))
    said = fake_api.last(chat_id=-100555)
    assert "private chat" in said.text and said.buttons == []
    assert await count(services, User, User.id == RESIDENT) == 1


async def test_someone_elses_forgetme_button_deletes_nothing(app, fake_api, services):
    await services.users.touch(RESIDENT)
    await services.users.touch(NEIGHBOUR)
    await app.process_update(message_update(app.bot, "/forgetme", user_id=RESIDENT))
    data = fake_api.last(chat_id=RESIDENT).button("是的")
    await app.process_update(callback_update(app.bot, data, user_id=NEIGHBOUR,
                                             language_code="en"))
    refusal = fake_api.last("answerCallbackQuery")
    assert refusal.params["show_alert"] and "not allowed" in refusal.params["text"]
    assert await count(services, User) == 2
    for forged in ("forgetme:1001:7", "forgetme:1001", "forgetme:x:1"):
        await app.process_update(callback_update(app.bot, forged, user_id=RESIDENT,
                                                 language_code="en"))
        assert "no longer valid" in fake_api.last("answerCallbackQuery").params["text"]
    assert await count(services, User) == 2


async def test_forgetting_also_anonymises_the_card_in_the_district_group(app, fake_api,
                                                                          services):
    group = -100105
    await services.tickets.add_staff(ADMIN_ID, STAFF, CHAOYANG)
    await services.tickets.link_group(ADMIN_ID, CHAOYANG, group)
    await services.tickets.file(new_ticket(RESIDENT, "我家门口积水很深，我是张三"))
    card = fake_api.last(chat_id=group)
    assert PHONE in card.text and "张三" in card.text

    await app.process_update(message_update(app.bot, "/forgetme", user_id=RESIDENT))
    asked = fake_api.last(chat_id=RESIDENT)
    await app.process_update(callback_update(app.bot, asked.button("是的"), user_id=RESIDENT))
    posted = await services.tickets.group_post(1)
    assert posted is not None and posted[0] == group
    edited = [c for c in fake_api.sent("editMessageText", group)
              if int(c.params["message_id"]) == posted[1]]
    assert edited, "the group's card was not updated"
    shown = edited[-1].text
    assert PHONE not in shown and "张三" not in shown
    assert "匿名化" in shown and REDACTED in shown
    assert edited[-1].buttons, "staff can still work the ticket from the card"
