"""Residents' calls on Telegram through the real Application and the fake Bot API, on both
databases: /report from the first tap to the ticket number and the district group's post, a
restart in the middle, /cancel, "talk to staff", duplicates nearby, status messages, the verdict,
/mytickets."""

from __future__ import annotations

import pytest

from quickresponse.services import build_services
from quickresponse.telegram.app import build_application
from quickresponse.tickets.service import NewTicket
from tests.conftest import ADMIN_ID
from tests.fakebot import FakeBotAPI
from tests.ticket_helpers import (
    DONGCHENG,
    DONGCHENG_GROUP,
    NEIGHBOUR,
    RESIDENT,
    SHIJIAZHUANG,
    STAFF,
    TIANANMEN,
    Person,
    answer_of,
    assert_within_telegram_limits,
    last_shown,
    text_of,
    to,
    with_buttons,
)


@pytest.fixture
async def dongcheng(services):
    """Dongcheng has a staff member and a staff group."""
    await services.tickets.add_staff(None, STAFF, DONGCHENG, display_name="王芳")
    await services.tickets.link_group(ADMIN_ID, DONGCHENG, DONGCHENG_GROUP)


@pytest.fixture
def resident(app, fake_api) -> Person:
    return Person(app, fake_api)


async def file_waterlogging_report(resident: Person, *, photo: bool = True) -> list:
    """The whole flow up to the summary; returns the calls of the last step."""
    calls = await resident.send("/report")
    categories = with_buttons(calls)
    assert "是哪一类问题" in categories.text
    calls = await resident.press(categories, "积水")
    assert "描述问题" in last_shown(calls).text
    calls = await resident.send("东长安街路口积水很深，已经没过膝盖，车辆无法通行")
    photos_prompt = with_buttons(calls)
    assert "照片" in photos_prompt.text
    if photo:
        calls = await resident.send(photo_id="photo-water-1")
        assert "第 1 张照片" in last_shown(calls).text
        calls = await resident.press(with_buttons(calls), "照片已发完")
    else:
        calls = await resident.press(photos_prompt, "跳过照片")
    ask_location = [c for c in calls if "问题在哪里" in c.text]
    assert ask_location, text_of(calls)
    keyboard = ask_location[0].params["reply_markup"]["keyboard"]
    assert keyboard[0][0]["request_location"] is True
    return await resident.send(location=TIANANMEN)


async def test_a_report_becomes_a_ticket_posted_to_the_district_group(
        app, fake_api, services, dongcheng, resident):
    calls = await file_waterlogging_report(resident)
    routed = [c for c in calls if "东城区" in c.text]
    assert routed and routed[0].params["reply_markup"] == {"remove_keyboard": True}
    consent = with_buttons(calls)
    calls = await resident.press(consent, "提供我的姓名")
    summary = with_buttons(calls)
    for part in ("积水内涝", "没过膝盖", "照片：1", "东城区", "Resident"):
        assert part in summary.text, part

    calls = await resident.press(summary, "提交")
    filed = to(calls, RESIDENT, "sendMessage")[-1]
    assert "#1" in filed.text
    # Filed at 10:00 Beijing time; waterlogging is urgent: claim in 30 min, resolve in 2 h.
    assert "7月20日 10:30" in filed.text and "7月20日 12:00" in filed.text

    card = to(calls, DONGCHENG_GROUP, "sendMessage")[0]
    assert "#1" in card.text and "积水内涝" in card.text and "没过膝盖" in card.text
    assert "按位置定位" in card.text and "Resident" in card.text
    assert card.button("认领")
    (photo,) = to(calls, DONGCHENG_GROUP, "sendPhoto")
    assert photo.params["photo"] == "photo-water-1"
    (pin,) = to(calls, DONGCHENG_GROUP, "sendLocation")
    assert (float(pin.params["latitude"]), float(pin.params["longitude"])) == TIANANMEN
    assert await services.tickets.pending_count() == 0
    assert await services.conversations.get(RESIDENT, RESIDENT) is None
    assert_within_telegram_limits(fake_api, resident.presses)


async def test_a_half_filled_report_survives_a_restart(
        app, fake_api, services, settings, clock, dongcheng, resident):
    calls = await resident.send("/report")
    calls = await resident.press(with_buttons(calls), "积水")
    calls = await resident.send("胡同口积水，井盖被冲开了")
    photos_prompt = with_buttons(calls)

    # A new process on the same database (consecutive updates may land on different ones).
    services_2 = await build_services(settings, clock=clock, migrate=False)
    api_2 = FakeBotAPI()
    try:
        async with build_application(services_2, request=api_2, rate_limit=False) as app_2:
            again = Person(app_2, api_2)
            calls = await again.press(photos_prompt, "跳过照片")
            assert "问题在哪里" in text_of(calls)
            calls = await again.send(location=TIANANMEN)
            calls = await again.press(with_buttons(calls), "匿名反映")
            summary = with_buttons(calls)
            assert "胡同口积水" in summary.text and "未提供（对工作人员匿名）" in summary.text
            calls = await again.press(summary, "提交")
            assert "#1" in to(calls, RESIDENT, "sendMessage")[-1].text
            card = to(calls, DONGCHENG_GROUP, "sendMessage")[0]
            assert "胡同口积水" in card.text and "Resident" not in card.text  # anonymous
    finally:
        await services_2.close()


async def test_cancel_leaves_the_flow_at_any_step_and_removes_the_location_key(
        app, fake_api, services, resident):
    calls = await resident.send("/report")
    calls = await resident.press(with_buttons(calls), "其他")
    calls = await resident.send("小区门口的路灯坏了一周了")
    calls = await resident.press(with_buttons(calls), "跳过照片")
    assert any("keyboard" in (c.params.get("reply_markup") or {}) for c in calls)

    calls = await resident.send("/cancel")
    (cancelled,) = to(calls, RESIDENT, "sendMessage")
    assert "已取消" in cancelled.text
    assert cancelled.params["reply_markup"] == {"remove_keyboard": True}
    assert await services.conversations.get(RESIDENT, RESIDENT) is None
    # Typed text is a question again, not an address for a report.
    calls = await resident.send("朝阳区")
    assert "问题在哪里" not in text_of(calls)
    assert await services.tickets.my_tickets(RESIDENT) == []
    # The cancelled flow's buttons are stale now.
    calls = await resident.press_data("rdist:110105")
    assert answer_of(calls).params["show_alert"] is True
    assert not to(calls, RESIDENT, "sendMessage")


async def test_the_cancel_button_ends_the_report_too(app, fake_api, services, resident):
    calls = await resident.send("/report")
    calls = await resident.press(with_buttons(calls), "取消")
    assert "已取消" in text_of(calls)
    assert await services.conversations.get(RESIDENT, RESIDENT) is None
    assert_within_telegram_limits(fake_api, resident.presses)


# -- talk to staff ----------------------------------------------------------------------------

async def test_talk_to_staff_turns_the_question_into_a_report(
        app, fake_api, services, dongcheng, resident):
    calls = await resident.send("路口积水很深怎么办")
    answer = with_buttons(calls)
    calls = await resident.press(answer, "转人工")
    start = with_buttons(calls)
    assert "路口积水很深怎么办" in start.text and "是哪一类问题" in start.text
    calls = await resident.press(start, "积水")
    # The question is the description: the next question is about photos.
    assert "照片" in with_buttons(calls).text
    calls = await resident.press(with_buttons(calls), "跳过照片")
    calls = await resident.send(location=TIANANMEN)
    calls = await resident.press(with_buttons(calls), "匿名反映")
    calls = await resident.press(with_buttons(calls), "提交")
    (ticket,) = await services.tickets.my_tickets(RESIDENT)
    view = await services.tickets.view(ticket.id)
    assert view.description == "路口积水很深怎么办" and not view.urgent
    assert_within_telegram_limits(fake_api, resident.presses)


async def test_an_emergency_is_sent_to_119_first_then_logged_as_urgent(
        app, fake_api, services, dongcheng, resident):
    calls = await resident.send("楼下着火了，烟很大，我们被困在家里")
    answer = with_buttons(calls)
    assert answer.text.startswith("🚨") and "119" in answer.text
    calls = await resident.press(answer, "转人工")
    start = with_buttons(calls)
    assert "110" in start.text and "119" in start.text and "120" in start.text
    calls = await resident.press(start, "其他")
    # Urgent reports do not stop for photos: the location is next.
    assert "问题在哪里" in text_of(calls)
    calls = await resident.send(location=TIANANMEN)
    calls = await resident.press(with_buttons(calls), "提供姓名和手机号")
    calls = await resident.send(contact=("+86 138 0000 0000", RESIDENT))
    summary = with_buttons(calls)
    assert "紧急" in summary.text and "138 0000 0000" in summary.text
    calls = await resident.press(summary, "提交")
    filed = to(calls, RESIDENT, "sendMessage")[-1]
    assert "已标记为紧急" in filed.text
    # Urgent: claimed within 30 min, resolved within 2 h even for "other".
    assert "7月20日 10:30" in filed.text and "7月20日 12:00" in filed.text
    card = to(calls, DONGCHENG_GROUP, "sendMessage")[0]
    assert "紧急工单" in card.text and "138 0000 0000" in card.text


async def test_talk_to_staff_about_someone_elses_question_is_refused(
        app, fake_api, services, resident):
    calls = await resident.send("路口积水很深怎么办")
    data = with_buttons(calls).button("转人工")
    neighbour = Person(resident.app, fake_api, user_id=NEIGHBOUR)
    calls = await neighbour.press_data(data)
    assert answer_of(calls).params["show_alert"] is True
    assert await services.conversations.get(NEIGHBOUR, NEIGHBOUR) is None


# -- location, address, consent ---------------------------------------------------------------

async def start_report_at_location_step(resident: Person, description: str) -> list:
    calls = await resident.send("/report")
    calls = await resident.press(with_buttons(calls), "其他")
    calls = await resident.send(description)
    return await resident.press(with_buttons(calls), "跳过照片")


async def test_a_place_outside_the_city_is_explained_and_nothing_is_routed(
        app, fake_api, services, resident):
    await start_report_at_location_step(resident, "路边有棵树倒了")
    calls = await resident.send(location=SHIJIAZHUANG)
    refusal = with_buttons(calls)
    assert "不在北京市" in refusal.text and "12345" in refusal.text
    assert refusal.button("东城区")  # the resident can still pick a district in the city
    calls = await resident.send("海淀区中关村大街")
    assert "海淀区" in text_of(calls) and "按地址识别" in text_of(calls)


async def test_a_typed_address_in_english_is_routed(app, fake_api, services):
    resident = Person(app, fake_api, language_code="en")
    calls = await resident.send("/report")
    assert "What kind of problem" in with_buttons(calls).text
    calls = await resident.press(with_buttons(calls), "Fallen tree")
    calls = await resident.send("A big tree fell across the road after the storm")
    calls = await resident.press(with_buttons(calls), "Skip photos")
    calls = await resident.send("Zhongguancun Street, Haidian District")
    assert "Haidian" in text_of(calls)
    consent = with_buttons(calls)
    assert "May the district staff" in consent.text


async def test_an_ambiguous_address_asks_which_district(app, fake_api, services, resident):
    await start_report_at_location_step(resident, "八里庄附近停电了")
    calls = await resident.send("八里庄")
    choice = with_buttons(calls)
    labels = [label for label, _ in choice.buttons]
    assert "朝阳区" in labels and "海淀区" in labels
    calls = await resident.press(choice, "海淀区")
    assert "海淀区" in text_of(calls) and "居民选择" in text_of(calls)


async def test_an_over_long_description_is_refused_and_the_report_kept(
        app, fake_api, services, resident):
    calls = await resident.send("/report")
    calls = await resident.press(with_buttons(calls), "其他")
    calls = await resident.send("水" * 1500)
    assert "内容太长了（1500 字）" in text_of(calls) and "1000" in text_of(calls)
    conversation = await services.conversations.get(RESIDENT, RESIDENT)
    assert conversation is not None and conversation.step == "description"
    calls = await resident.send("水管爆了")
    assert "照片" in with_buttons(calls).text


async def test_only_the_residents_own_phone_is_taken(app, fake_api, services, resident):
    await start_report_at_location_step(resident, "楼道里有燃气味")
    calls = await resident.send(location=TIANANMEN)
    calls = await resident.press(with_buttons(calls), "提供姓名和手机号")
    ask = [c for c in calls if "keyboard" in (c.params.get("reply_markup") or {})][-1]
    assert ask.params["reply_markup"]["keyboard"][0][0]["request_contact"] is True
    # Someone else's card from the address book is not consent.
    calls = await resident.send(contact=("+86 139 1111 1111", 4242))
    assert "您本人的号码" in text_of(calls)
    # Typing a number is not accepted either: only Telegram's button shares it.
    calls = await resident.send("13911111111")
    assert "请使用下方按钮" in text_of(calls)
    calls = await resident.send("不提供手机号，继续")
    summary = with_buttons(calls)
    assert "Resident（仅姓名）" in summary.text and "139" not in summary.text


# -- duplicates nearby ------------------------------------------------------------------------

async def file_directly(services, *, resident_id: int, category: str = "waterlogging",
                        point: tuple[float, float] = TIANANMEN, lang: str = "zh") -> int:
    outcome = await services.tickets.file(NewTicket(
        resident_id=resident_id, lang=lang, category=category, description="路口积水",
        district_id=DONGCHENG, routing_method="location", latitude=point[0],
        longitude=point[1]))
    return outcome.ticket.id


async def test_an_open_ticket_nearby_can_be_followed_instead_of_filing_again(
        app, fake_api, services, dongcheng, resident):
    first = await file_directly(services, resident_id=NEIGHBOUR)
    calls = await resident.send("/report")
    calls = await resident.press(with_buttons(calls), "积水")
    calls = await resident.send("天安门东边积水")
    calls = await resident.press(with_buttons(calls), "跳过照片")
    # About 20 m from the first ticket.
    calls = await resident.send(location=(TIANANMEN[0] + 0.00018, TIANANMEN[1]))
    offer = with_buttons(calls)
    assert "附近已经有人反映了类似的问题" in offer.text and "#1" in offer.text
    assert "20 米" in offer.text
    calls = await resident.press(offer, "关注 #1")
    assert "您已关注工单 <b>#1</b>" in text_of(calls)
    assert await services.conversations.get(RESIDENT, RESIDENT) is None
    mine = await services.tickets.my_tickets(RESIDENT)
    assert [t.id for t in mine] == [first]  # followed, not filed
    assert (await services.tickets.view(first)).followers == 1


async def test_a_different_problem_nearby_is_filed_on_its_own(
        app, fake_api, services, dongcheng, resident):
    await file_directly(services, resident_id=NEIGHBOUR)
    # Same place, other category: not offered. Same category 200 m away: not offered either.
    await file_directly(services, resident_id=NEIGHBOUR, category="outage")
    calls = await resident.send("/report")
    calls = await resident.press(with_buttons(calls), "积水")
    calls = await resident.send("积水")
    calls = await resident.press(with_buttons(calls), "跳过照片")
    calls = await resident.send(location=(TIANANMEN[0] + 0.0003, TIANANMEN[1]))
    offer = with_buttons(calls)
    assert "#1" in offer.text and "#2" not in offer.text
    calls = await resident.press(offer, "另一个问题")
    assert "是否允许" in with_buttons(calls).text
    calls = await resident.press(with_buttons(calls), "匿名反映")
    calls = await resident.press(with_buttons(calls), "提交")
    assert "#3" in to(calls, RESIDENT, "sendMessage")[-1].text


# -- the resident's tickets -------------------------------------------------------------------

async def test_my_tickets_lists_state_and_deadline_and_lets_me_add_or_withdraw(
        app, fake_api, services, dongcheng, resident):
    mine = await file_directly(services, resident_id=RESIDENT)
    followed = await file_directly(services, resident_id=NEIGHBOUR, category="outage",
                                   point=(39.95, 116.40))
    await services.tickets.follow(followed, RESIDENT, "zh")
    calls = await resident.send("/mytickets")
    listing = with_buttons(calls)
    assert "#1" in listing.text and "#2" in listing.text and "待认领" in listing.text
    assert "7月20日 10:30" in listing.text  # waterlogging: claim within 30 min
    labels = [label for label, _ in listing.buttons]
    assert labels == ["➕ 补充 #1", "↩️ 撤回 #1"]  # only for the ticket I filed

    calls = await resident.press(listing, "补充 #1")
    assert "补充到工单 <b>#1</b>" in text_of(calls)
    calls = await resident.send(photo_id="photo-more", caption="水又涨了")
    assert "已补充到工单" in text_of(calls)
    group = to(calls, DONGCHENG_GROUP, "sendPhoto")
    assert group and "水又涨了" in group[0].params["caption"]
    assert "photo-more" in (await services.tickets.view(mine)).photos

    calls = await resident.press(listing, "撤回 #1")
    confirm = with_buttons(calls)
    calls = await resident.press(confirm, "确定撤回")
    assert "已撤回" in text_of(calls)
    assert (await services.tickets.view(mine)).state == "withdrawn"
    assert "已被居民撤回" in text_of(to(calls, DONGCHENG_GROUP))
    # The ticket's card in the group shows the end and loses its Claim button.
    (card,) = to(calls, DONGCHENG_GROUP, "editMessageText")
    assert "已撤回" in card.text and not card.buttons
    # A forged withdraw of the neighbour's ticket is refused.
    calls = await resident.press_data(f"twdok:{followed}")
    assert answer_of(calls).params["show_alert"] is True
    assert (await services.tickets.view(followed)).state == "new"
    assert_within_telegram_limits(fake_api, resident.presses)


async def test_a_photo_sent_outside_any_flow_starts_a_report_with_it(
        app, fake_api, services, resident):
    calls = await resident.send(photo_id="photo-tree", caption="树倒了压住了车")
    start = with_buttons(calls)
    assert "收到照片" in start.text and "是哪一类问题" in start.text
    calls = await resident.press(start, "树木")
    # Caption is the description and the photo is attached: photos step, with "done".
    prompt = with_buttons(calls)
    assert prompt.button("照片已发完")


@pytest.mark.parametrize("data", [
    "rcat:nope", "rcat:", "rdist:999999", "rsubmit", "redit:password", "rconsent:all",
    "rfollow:abc", "tsolved:1:7", "tsat:1:great", "twdok:99999999999", "tadd:0",
])
async def test_forged_or_stale_report_buttons_are_refused(app, fake_api, services, data):
    resident = Person(app, fake_api, language_code="en")
    calls = await resident.send("/report")
    calls = await resident.press_data(data)
    refusal = answer_of(calls)
    assert refusal.params["show_alert"] is True
    assert not [c for c in calls if c.method == "sendMessage"]
    # The report in progress is untouched.
    conversation = await services.conversations.get(RESIDENT, RESIDENT)
    assert conversation is not None and conversation.step == "category"


async def test_a_location_sent_outside_any_flow_starts_a_report_there(
        app, fake_api, services, resident):
    calls = await resident.send(location=TIANANMEN)
    start = with_buttons(calls)
    assert "收到位置" in start.text and "东城区" in start.text and "是哪一类问题" in start.text
    calls = await resident.press(start, "其他")
    calls = await resident.send("路面塌陷了一个坑")
    calls = await resident.press(with_buttons(calls), "跳过照片")
    # The location is known already: consent comes next.
    assert "是否允许" in with_buttons(calls).text


async def test_near_a_district_border_the_resident_confirms_the_district(
        app, fake_api, services, resident):
    await start_report_at_location_step(resident, "路灯杆歪了")
    # About 250 m inside Dongcheng from the Xicheng border.
    calls = await resident.send(location=(39.9087, 116.3905))
    confirm = with_buttons(calls)
    assert "靠近区界" in confirm.text and "东城区" in confirm.text
    assert [label for label, _ in confirm.buttons][:3] == ["东城区", "西城区", "其他区…"]
    calls = await resident.press(confirm, "西城区")
    assert "西城区" in text_of(calls) and "居民选择" in text_of(calls)
    draft = (await services.conversations.get(RESIDENT, RESIDENT)).data["draft"]
    assert draft["district_id"] == "110102" and draft["latitude"] == 39.9087


async def test_text_typed_before_the_category_is_kept_as_the_description(
        app, fake_api, services, resident):
    calls = await resident.send("/report")
    calls = await resident.send("小区门口的井盖丢了")
    prompt = with_buttons(calls)
    assert "已记下作为问题描述" in prompt.text and "是哪一类问题" in prompt.text
    calls = await resident.press(prompt, "井盖")
    assert "照片" in with_buttons(calls).text  # the description is not asked again
    draft = (await services.conversations.get(RESIDENT, RESIDENT)).data["draft"]
    assert draft["description"] == "小区门口的井盖丢了"


async def test_my_tickets_offers_the_verdict_on_a_resolved_ticket(
        app, fake_api, services, dongcheng, resident):
    ticket_id = await file_directly(services, resident_id=RESIDENT)
    await services.tickets.claim(ticket_id, STAFF)
    await services.tickets.resolve(ticket_id, STAFF, "积水已排除")
    listing = with_buttons(await resident.send("/mytickets"))
    assert "已办理，待评价" in listing.text
    calls = await resident.press(listing, "#1 未解决")
    assert "重新打开" in text_of(calls)
    assert (await services.tickets.view(ticket_id)).state == "reopened"
