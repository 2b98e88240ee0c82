"""An emergency logged as an urgent ticket in one tap, after the answer that says call 110 / 119 /
120 first: where it goes without asking (a place in the question, the district the resident gets
warnings for, else the city's dispatch desk), and how the location the resident then shares moves
it to its district. Through the real Application and the fake Bot API, on both databases."""

from __future__ import annotations

import dataclasses

import pytest

from quickresponse.errors import StaleAction
from quickresponse.reports import ReportDesk
from quickresponse.telegram.keyboards import URGENT_CALL
from quickresponse.tickets.errors import NoDispatchDesk
from tests.conftest import ADMIN_ID
from tests.ticket_helpers import (
    CHAOYANG,
    DONGCHENG,
    DONGCHENG_GROUP,
    NEIGHBOUR,
    RESIDENT,
    STAFF,
    TIANANMEN,
    Person,
    answer_of,
    assert_within_telegram_limits,
    text_of,
    to,
    with_buttons,
)

FIRE = "楼下着火了，烟很大，我们被困在家里"
LOG_IT = "同时向工作人员紧急报告"
DISPATCH_GROUP = -100999
DISPATCH_STAFF = 2099


@pytest.fixture
async def dongcheng(services):
    await services.tickets.add_staff(None, STAFF, DONGCHENG, display_name="王芳")
    await services.tickets.link_group(ADMIN_ID, DONGCHENG, DONGCHENG_GROUP)


@pytest.fixture
async def dispatch_desk(services):
    """The dispatch desk has its own group and one operator."""
    await services.tickets.add_staff(None, DISPATCH_STAFF, "dispatch", display_name="派单员")
    await services.tickets.link_group(ADMIN_ID, "dispatch", DISPATCH_GROUP)


@pytest.fixture
def resident(app, fake_api) -> Person:
    return Person(app, fake_api)


async def log_fire_in_one_tap(resident: Person) -> list:
    calls = await resident.send(FIRE)
    answer = with_buttons(calls)
    assert answer.text.startswith("🚨") and "119" in answer.text
    # The one-tap button comes first, right under the numbers to call.
    assert answer.buttons[0][0] == "🆘 " + LOG_IT
    return await resident.press(answer, LOG_IT)


async def test_one_tap_files_an_urgent_ticket_at_the_dispatch_desk_at_once(
        app, fake_api, services, dongcheng, dispatch_desk, resident):
    calls = await log_fire_in_one_tap(resident)

    (mine,) = await services.tickets.my_tickets(RESIDENT)
    ticket = await services.tickets.view(mine.id)
    assert ticket.urgent and ticket.state == "new" and ticket.description == FIRE
    assert ticket.category == "person_help"
    assert (ticket.district_id, ticket.routing_method) == ("dispatch", "dispatch")
    # Urgent limits: claim within 30 minutes (10:00 -> 10:30 Beijing time).
    reply = to(calls, RESIDENT, "sendMessage")[-1]
    assert "紧急求助 #1 已登记" in reply.text and "市级派单中心" in reply.text
    assert "10:30" in reply.text and "110 / 119 / 120" in reply.text
    assert reply.params["reply_markup"]["keyboard"][0][0]["request_location"] is True
    assert answer_of(calls).params.get("text") == "紧急求助已登记"
    # The button is taken off the answer; the other buttons stay.
    (edit,) = [c for c in calls if c.method == "editMessageReplyMarkup"]
    labels = [label for label, _data in edit.buttons]
    assert LOG_IT not in " ".join(labels) and any("转人工" in label for label in labels)

    card = to(calls, DISPATCH_GROUP, "sendMessage")[0]
    assert "紧急工单" in card.text and "#1" in card.text and "等待居民位置" in card.text
    assert card.button("认领")
    assert_within_telegram_limits(fake_api, resident.presses)


async def test_the_location_shared_next_moves_the_call_to_its_district(
        app, fake_api, services, clock, dongcheng, dispatch_desk, resident):
    await log_fire_in_one_tap(resident)
    (mine,) = await services.tickets.my_tickets(RESIDENT)
    before = await services.tickets.view(mine.id)
    clock.advance(minutes=3)

    calls = await resident.send(location=TIANANMEN)

    after = await services.tickets.view(mine.id)
    assert after.district_id == DONGCHENG and after.routing_method == "location"
    assert (after.latitude, after.longitude) == TIANANMEN
    # The urgent clock keeps running: the deadlines are those of the first tap.
    assert (after.claim_due, after.resolve_due) == (before.claim_due, before.resolve_due)
    told = to(calls, RESIDENT, "sendMessage")[-1]
    assert "已转给<b>东城区</b>" in told.text and "手机号" in told.text
    # Only the phone button is left to press.
    (row,) = told.params["reply_markup"]["keyboard"]
    assert row[0]["request_contact"] is True
    card = to(calls, DONGCHENG_GROUP, "sendMessage")[0]
    assert "由市级派单中心转来" in card.text and card.button("认领")
    (pin,) = to(calls, DONGCHENG_GROUP, "sendLocation")
    assert (float(pin.params["latitude"]), float(pin.params["longitude"])) == TIANANMEN
    # The desk is told, and its card loses its Claim button.
    assert "已转给<b>东城区</b>" in to(calls, DISPATCH_GROUP, "sendMessage")[0].text
    (took_off,) = [c for c in calls if c.method == "editMessageReplyMarkup"]
    assert took_off.chat_id == DISPATCH_GROUP and not took_off.buttons
    actions = [e.action for e in (await services.tickets.show(mine.id, ADMIN_ID)).events]
    assert actions == ["filed", "location_added", "routed"]


async def test_the_phone_number_reaches_the_staff_and_then_the_questions_end(
        app, fake_api, services, dongcheng, dispatch_desk, resident):
    await log_fire_in_one_tap(resident)
    (mine,) = await services.tickets.my_tickets(RESIDENT)

    # A card from the address book is not the resident's consent.
    calls = await resident.send(contact=("+86 139 1111 2222", NEIGHBOUR))
    assert "您本人的号码" in to(calls, RESIDENT, "sendMessage")[-1].text
    assert not (await services.tickets.view(mine.id)).contact_phone

    calls = await resident.send(contact=("+86 138 0000 0000", RESIDENT))
    ticket = await services.tickets.view(mine.id)
    assert ticket.contact_consent and ticket.contact_phone == "+86 138 0000 0000"
    told = to(calls, RESIDENT, "sendMessage")[-1]
    assert "手机号已补充到工单 <b>#1</b>" in told.text and "发送您的位置" in told.text
    (row,) = told.params["reply_markup"]["keyboard"]
    assert row[0]["request_location"] is True
    assert "138 0000 0000" in to(calls, DISPATCH_GROUP, "sendMessage")[0].text

    calls = await resident.send(location=TIANANMEN)
    assert to(calls, RESIDENT, "sendMessage")[-1].params["reply_markup"] == {
        "remove_keyboard": True}
    assert await services.conversations.get(RESIDENT, RESIDENT) is None
    # The card the district gets carries the number.
    assert "138 0000 0000" in to(calls, DONGCHENG_GROUP, "sendMessage")[0].text


async def test_without_a_desk_group_the_admins_get_the_call(
        app, fake_api, services, dongcheng, resident):
    calls = await log_fire_in_one_tap(resident)
    to_admin = to(calls, ADMIN_ID, "sendMessage")
    assert to_admin and "紧急工单" in to_admin[0].text and "市级派单中心" in to_admin[0].text


async def test_the_district_the_resident_gets_warnings_for_is_used_until_a_location_comes(
        app, fake_api, services, dongcheng, resident):
    await services.subscriptions.subscribe(RESIDENT, [CHAOYANG])
    calls = await log_fire_in_one_tap(resident)
    (mine,) = await services.tickets.my_tickets(RESIDENT)
    ticket = await services.tickets.view(mine.id)
    assert (ticket.district_id, ticket.routing_method) == (CHAOYANG, "subscription")
    assert "朝阳区" in to(calls, RESIDENT, "sendMessage")[-1].text

    await resident.send(location=TIANANMEN)
    assert (await services.tickets.view(mine.id)).district_id == DONGCHENG


async def test_a_claimed_call_keeps_its_district_and_staff_get_the_pin(
        app, fake_api, services, dongcheng, resident):
    await services.subscriptions.subscribe(RESIDENT, [DONGCHENG])
    await log_fire_in_one_tap(resident)
    (mine,) = await services.tickets.my_tickets(RESIDENT)
    await services.tickets.claim(mine.id, STAFF)

    calls = await resident.send(location=(39.9834, 116.3160))  # Zhongguancun, Haidian

    ticket = await services.tickets.view(mine.id)
    assert ticket.district_id == DONGCHENG and ticket.latitude == 39.9834
    assert "位置已补充到工单" in to(calls, RESIDENT, "sendMessage")[-1].text
    assert "补充了工单 <b>#1</b> 的位置" in to(calls, DONGCHENG_GROUP, "sendMessage")[0].text
    assert to(calls, DONGCHENG_GROUP, "sendLocation")


async def test_a_place_named_in_the_question_routes_it(
        app, fake_api, services, dongcheng, resident):
    calls = await resident.send("东城区王府井有人晕倒了，没有呼吸")
    answer = with_buttons(calls)
    assert answer.text.startswith("🚨")
    await resident.press(answer, LOG_IT)
    (mine,) = await services.tickets.my_tickets(RESIDENT)
    ticket = await services.tickets.view(mine.id)
    assert (ticket.district_id, ticket.routing_method) == (DONGCHENG, "address")


async def test_two_taps_file_one_ticket(app, fake_api, services, dispatch_desk, resident):
    calls = await resident.send(FIRE)
    answer = with_buttons(calls)
    data = answer.button(LOG_IT)
    await resident.press_data(data, answer)
    calls = await resident.press_data(data, answer)
    assert len(await services.tickets.my_tickets(RESIDENT)) == 1
    assert "#1" in text_of(calls)


async def test_only_urgent_answers_offer_it(app, fake_api, resident):
    calls = await resident.send("暴雨天出门要注意什么")
    answer = with_buttons(calls)
    assert not answer.text.startswith("🚨")
    assert all(LOG_IT not in label for label, _data in answer.buttons)


async def test_someone_elses_or_a_forged_question_is_refused(
        app, fake_api, services, resident):
    calls = await resident.send(FIRE)
    data = with_buttons(calls).button(LOG_IT)
    neighbour = Person(resident.app, fake_api, user_id=NEIGHBOUR)
    calls = await neighbour.press_data(data)
    assert answer_of(calls).params["show_alert"] is True
    calls = await neighbour.press_data(URGENT_CALL.pack(2**31 + 5))
    assert answer_of(calls).params["show_alert"] is True
    assert await services.tickets.my_tickets(NEIGHBOUR) == []


async def test_dispatch_staff_pass_the_call_on_by_transfer(
        app, fake_api, services, dispatch_desk, resident):
    await log_fire_in_one_tap(resident)
    (mine,) = await services.tickets.my_tickets(RESIDENT)
    outcome = await services.tickets.transfer(mine.id, DISPATCH_STAFF, DONGCHENG,
                                              "居民电话确认在东城区")
    assert outcome.ticket.district_id == DONGCHENG


async def test_without_a_dispatch_desk_the_guided_report_is_the_fallback(
        app, fake_api, services, resident):
    calls = await resident.send(FIRE)
    (question_id,) = [int(data.split(":")[1]) for label, data in with_buttons(calls).buttons
                      if LOG_IT in label]
    city = dataclasses.replace(services.city, dispatch=None)
    tickets = services.tickets
    desk = ReportDesk(tickets, services.router, services.db)
    desk.city = city
    object.__setattr__(tickets, "city", city)
    try:
        with pytest.raises(NoDispatchDesk):
            await desk.file_urgent_call(question_id, RESIDENT, RESIDENT, "zh")
        # Through the bot: the urgent report starts, pre-filled with the question.
        calls = await resident.send(FIRE)
        calls = await resident.press(with_buttons(calls), LOG_IT)
        start = with_buttons(calls)
        assert "110" in start.text and FIRE in start.text and "是哪一类问题" in start.text
    finally:
        object.__setattr__(tickets, "city", services.city)
    with pytest.raises(StaleAction):
        await desk.file_urgent_call(question_id, NEIGHBOUR, NEIGHBOUR, "zh")


async def test_nobody_subscribes_to_the_dispatch_desk(services):
    from quickresponse.alerts.errors import UnknownDistrict

    with pytest.raises(UnknownDistrict):
        await services.subscriptions.subscribe(RESIDENT, ["dispatch"])


async def test_the_desk_has_its_queue_and_admins_see_it_first(
        app, fake_api, services, dongcheng, dispatch_desk, resident):
    await log_fire_in_one_tap(resident)
    desk_staff = Person(app, fake_api, user_id=DISPATCH_STAFF, chat_id=DISPATCH_GROUP)
    calls = await desk_staff.send("/queue")
    assert "市级派单中心" in text_of(calls) and "#1" in text_of(calls)
    admin = Person(app, fake_api, user_id=ADMIN_ID)
    overview = text_of(await admin.send("/queue"))
    assert overview.index("市级派单中心") < overview.index("#1")
