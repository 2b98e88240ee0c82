"""District staff and admins on Telegram through the real Application and the fake Bot API, on
both databases: claiming (one winner), notes, resolution and the resident's verdict, transfers,
rejections, duplicates, refusals, /queue, /ticket, /staff, /linkgroup, escalations."""

from __future__ import annotations

import asyncio

import pytest

from quickresponse.models import User
from quickresponse.tickets.service import NewTicket
from tests.conftest import ADMIN_ID
from tests.fakebot import callback_update, forbidden
from tests.ticket_helpers import (
    DONGCHENG,
    DONGCHENG_GROUP,
    HAIDIAN,
    HAIDIAN_GROUP,
    NEIGHBOUR,
    OUTSIDER,
    RESIDENT,
    STAFF,
    STAFF_2,
    TIANANMEN,
    Person,
    answer_of,
    assert_within_telegram_limits,
    text_of,
    to,
    with_buttons,
)

HAIDIAN_STAFF = 2101


@pytest.fixture
async def districts(services):
    """Dongcheng (two staff) and Haidian (one) each have their staff group."""
    tickets = services.tickets
    await tickets.add_staff(None, STAFF, DONGCHENG, display_name="王芳")
    await tickets.add_staff(None, STAFF_2, DONGCHENG, display_name="李强")
    await tickets.add_staff(None, HAIDIAN_STAFF, HAIDIAN, display_name="赵敏")
    await tickets.link_group(ADMIN_ID, DONGCHENG, DONGCHENG_GROUP)
    await tickets.link_group(ADMIN_ID, HAIDIAN, HAIDIAN_GROUP)


@pytest.fixture
def staff(app, fake_api) -> Person:
    return Person(app, fake_api, user_id=STAFF, chat_id=DONGCHENG_GROUP, first_name="Wang Fang")


@pytest.fixture
def resident(app, fake_api) -> Person:
    """A resident whose Telegram is in English: status messages reach them in English."""
    return Person(app, fake_api, language_code="en")


async def file_ticket(app, fake_api, services, *, lang: str = "en", category: str = "manhole",
                      point: tuple[float, float] = TIANANMEN, resident_id: int = RESIDENT) -> tuple:
    """File a ticket as the report flow does; returns (ticket id, the group's card)."""
    before = len(fake_api.calls)
    outcome = await services.tickets.file(NewTicket(
        resident_id=resident_id, lang=lang, category=category,
        description="Manhole cover missing at the crossing", district_id=DONGCHENG,
        routing_method="location", latitude=point[0], longitude=point[1],
        contact_consent=True, contact_name="Li Lei", contact_phone="+86 138 0000 1111"))
    card = next(c for c in fake_api.calls[before:]
            if c.chat_id == DONGCHENG_GROUP and c.method == "sendMessage")
    return outcome.ticket.id, card


async def test_claim_note_resolve_then_the_resident_rates_it_in_english(
        app, fake_api, services, districts, staff, resident):
    ticket_id, card = await file_ticket(app, fake_api, services)
    assert "Li Lei" in card.text and "138 0000 1111" in card.text  # shared with consent

    calls = await staff.press(card, "认领")
    assert "#1" in answer_of(calls).params["text"]
    edited = [c for c in calls if c.method == "editMessageText"]
    assert edited and "Wang Fang" in edited[0].text
    assert [label for label, _ in edited[0].buttons] == [
        "💬 添加备注", "✅ 办结", "↪️ 转派", "⛔ 不予受理", "🔁 重复工单"]
    (claimed,) = to(calls, RESIDENT, "sendMessage")
    assert "has been taken up by the staff of Dongcheng" in claimed.text

    calls = await staff.press(edited[0], "添加备注")
    prompt = to(calls, DONGCHENG_GROUP, "sendMessage")[-1]
    assert prompt.params["reply_markup"]["force_reply"] is True
    assert f"tg://user?id={STAFF}" in prompt.text
    calls = await staff.send("Crew on the way, cones placed around the hole.")
    (note,) = to(calls, RESIDENT, "sendMessage")
    assert "Update on ticket <b>#1</b>" in note.text and "cones placed" in note.text
    assert "备注已发给" in text_of(to(calls, DONGCHENG_GROUP))

    calls = await staff.press(edited[0], "办结")
    calls = await staff.send("New cover installed & checked.")
    (resolved,) = to(calls, RESIDENT, "sendMessage")
    assert "New cover installed &amp; checked." in resolved.text
    assert "Is the problem solved?" in resolved.text
    calls = await resident.press(resolved, "Solved")
    calls = await resident.press(with_buttons(calls), "Basically satisfied")
    assert "Thank you for your rating" in text_of(calls)
    view = await services.tickets.view(ticket_id)
    assert view.state == "closed" and view.satisfaction == "basic" and view.solved is True
    assert "基本满意" in text_of(to(calls, DONGCHENG_GROUP))
    # Pressing the verdict again changes nothing.
    calls = await resident.press(resolved, "Not solved")
    assert answer_of(calls).params["show_alert"] is True
    assert (await services.tickets.view(ticket_id)).state == "closed"
    assert_within_telegram_limits(fake_api, staff.presses + resident.presses)


async def test_not_solved_reopens_the_ticket_for_the_district(
        app, fake_api, services, districts, staff, resident):
    ticket_id, _card = await file_ticket(app, fake_api, services)
    await services.tickets.claim(ticket_id, STAFF)
    before = len(fake_api.calls)
    await services.tickets.resolve(ticket_id, STAFF, "Cover replaced")
    (resolved,) = to(fake_api.calls[before:], RESIDENT, "sendMessage")
    calls = await resident.press(resolved, "Not solved")
    assert "reopened" in text_of(calls)
    assert (await services.tickets.view(ticket_id)).state == "reopened"
    (post,) = to(calls, DONGCHENG_GROUP, "sendMessage")
    assert "重新办理" in post.text
    assert post.button("办结") and post.button("认领")


async def test_two_staff_claiming_at_once_one_wins_and_the_other_is_told_who(
        app, fake_api, services, districts):
    ticket_id, card = await file_ticket(app, fake_api, services)
    first = Person(app, fake_api, user_id=STAFF, chat_id=DONGCHENG_GROUP, first_name="Wang")
    second = Person(app, fake_api, user_id=STAFF_2, chat_id=DONGCHENG_GROUP, first_name="Li")
    data = card.button("认领")
    before = len(fake_api.calls)
    await asyncio.gather(*(
        app.process_update(callback_update(app.bot, data, user_id=p.user_id,
                                           chat_id=DONGCHENG_GROUP, first_name=p.first_name))
        for p in (first, second)))
    answers = [c for c in fake_api.calls[before:] if c.method == "answerCallbackQuery"]
    assert len(answers) == 2
    won = [a for a in answers if not a.params.get("show_alert")]
    lost = [a for a in answers if a.params.get("show_alert")]
    assert len(won) == 1 and len(lost) == 1
    view = await services.tickets.view(ticket_id)
    assert "already been claimed" not in lost[0].params["text"]  # in the group's language
    assert f"已由 {view.claimed_by_name} 认领" in lost[0].params["text"]
    assert len(to(fake_api.calls[before:], RESIDENT, "sendMessage")) == 1  # told once


async def test_someone_who_is_not_staff_of_the_district_is_refused(
        app, fake_api, services, districts):
    ticket_id, card = await file_ticket(app, fake_api, services)
    for user_id, chat_id in ((OUTSIDER, DONGCHENG_GROUP), (HAIDIAN_STAFF, DONGCHENG_GROUP),
                             (RESIDENT, RESIDENT)):
        person = Person(app, fake_api, user_id=user_id, chat_id=chat_id)
        for label in ("认领",):
            calls = await person.press(card, label)
            refusal = answer_of(calls)
            assert refusal.params["show_alert"] is True
            assert "只有该工单所属区的登记工作人员或管理员" in refusal.params["text"]
        for data in (f"snote:{ticket_id}", f"sxfer:{ticket_id}", f"sreject:{ticket_id}"):
            calls = await person.press_data(data)
            assert answer_of(calls).params["show_alert"] is True
            assert not [c for c in calls if c.method in ("sendMessage", "editMessageReplyMarkup")]
    assert (await services.tickets.view(ticket_id)).state == "new"
    assert await services.conversations.get(DONGCHENG_GROUP, OUTSIDER) is None


@pytest.mark.parametrize("data", [
    "sclaim:abc", "sclaim:0", "sclaim:-5", "sclaim:99999999999", "sclaim:424242",
    "sxferto:1:999999", "sxferto:1", "snote:1:2", "sdup:", "sback:x", "sresolve:1e3",
])
async def test_forged_or_stale_staff_buttons_are_refused(
        app, fake_api, services, districts, staff, data):
    await file_ticket(app, fake_api, services)
    calls = await staff.press_data(data)
    assert answer_of(calls).params["show_alert"] is True
    assert not [c for c in calls if c.method == "sendMessage"]
    assert (await services.tickets.view(1)).state == "new"


async def test_transfer_to_another_district_with_a_reason(
        app, fake_api, services, districts, staff, resident):
    ticket_id, card = await file_ticket(app, fake_api, services)
    await services.tickets.claim(ticket_id, STAFF)
    calls = await staff.press_data(f"sxfer:{ticket_id}", card)
    picker = next(c for c in calls if c.method == "editMessageReplyMarkup")
    labels = [label for label, _ in picker.buttons]
    assert "东城区" not in labels and "海淀区" in labels and "⬅️ 返回" in labels
    calls = await staff.press(picker, "海淀区")
    assert "转派到<b>海淀区</b>的原因" in text_of(calls)
    calls = await staff.send("井盖属于海淀区道路，已与海淀区沟通")
    (told,) = to(calls, RESIDENT, "sendMessage")
    assert "Haidian" in told.text and "已与海淀区沟通" in told.text
    post = to(calls, HAIDIAN_GROUP, "sendMessage")[0]
    assert "由东城区转派至本区" in post.text and post.button("认领")
    view = await services.tickets.view(ticket_id)
    assert view.district_id == HAIDIAN and view.state == "new"
    # Dongcheng's staff can no longer act on it; Haidian's can.
    calls = await staff.press(post, "认领")
    assert answer_of(calls).params["show_alert"] is True
    haidian = Person(app, fake_api, user_id=HAIDIAN_STAFF, chat_id=HAIDIAN_GROUP)
    calls = await haidian.press(post, "认领")
    assert not answer_of(calls).params.get("show_alert")


async def test_reject_as_outside_the_remit_tells_the_resident_why(
        app, fake_api, services, districts, staff, resident):
    ticket_id, card = await file_ticket(app, fake_api, services)
    calls = await staff.press(card, "认领")
    edited = next(c for c in calls if c.method == "editMessageText")
    calls = await staff.press(edited, "不予受理")
    # An empty reason is refused and the step stays open for the real one.
    calls = await staff.send("   ")
    assert "内容不能为空" in text_of(calls)
    calls = await staff.send("This is a private courtyard; the property company is responsible.")
    (told,) = to(calls, RESIDENT, "sendMessage")
    assert "outside the remit" in told.text and "property company" in told.text
    assert (await services.tickets.view(ticket_id)).state == "rejected"
    assert await services.conversations.get(DONGCHENG_GROUP, STAFF) is None


async def test_mark_as_duplicate_of_another_ticket(
        app, fake_api, services, districts, staff):
    original, _ = await file_ticket(app, fake_api, services, resident_id=NEIGHBOUR)
    duplicate, card = await file_ticket(app, fake_api, services, lang="zh")
    calls = await staff.press(card, "认领")
    edited = next(c for c in calls if c.method == "editMessageText")
    calls = await staff.press(edited, "重复工单")
    calls = await staff.send("not a number")
    assert "请检查原工单编号" in text_of(calls)
    calls = await staff.send(f"#{duplicate}")  # itself
    assert "请检查原工单编号" in text_of(calls)
    calls = await staff.send(f"＃{original}")  # a full-width # as a Chinese keyboard types it
    (told,) = to(calls, RESIDENT, "sendMessage")
    assert f"与工单 <b>#{original}</b> 反映的是同一问题" in told.text
    assert (await services.tickets.view(duplicate)).state == "duplicate"
    assert [t.id for t in await services.tickets.my_tickets(RESIDENT)] == [duplicate, original]


# -- commands ---------------------------------------------------------------------------------

async def test_queue_lists_open_tickets_by_deadline(app, fake_api, services, districts, staff,
                                                    clock):
    general, _ = await file_ticket(app, fake_api, services, category="other")
    urgent, _ = await file_ticket(app, fake_api, services, category="manhole")
    calls = await staff.send("/queue")
    (queue,) = to(calls, DONGCHENG_GROUP, "sendMessage")
    assert "东城区" in queue.text
    assert queue.text.index(f"#{urgent}") < queue.text.index(f"#{general}")
    # In private, staff see their district; an admin picks one; others are refused.
    private = Person(app, fake_api, user_id=STAFF)
    assert f"#{urgent}" in text_of(await private.send("/queue"))
    admin = Person(app, fake_api, user_id=ADMIN_ID)
    assert "没有待办工单" in text_of(await admin.send("/queue 朝阳"))
    assert f"#{urgent}" in text_of(await admin.send("/queue"))
    outsider = Person(app, fake_api, user_id=OUTSIDER)
    assert "只有区工作人员和管理员" in text_of(await outsider.send("/queue"))
    # Past the claim deadline the queue says it is overdue.
    clock.advance(minutes=45)
    assert "已超时" in text_of(await staff.send("/queue"))


async def test_ticket_shows_one_ticket_with_its_history(
        app, fake_api, services, districts, staff):
    ticket_id, _ = await file_ticket(app, fake_api, services)
    await services.tickets.claim(ticket_id, STAFF)
    await services.tickets.add_note(ticket_id, STAFF, "Cones placed")
    calls = await staff.send(f"/ticket {ticket_id}")
    (shown,) = to(calls, DONGCHENG_GROUP, "sendMessage")
    assert "办理记录" in shown.text
    for part in ("居民：提交", "工作人员：认领", "工作人员：备注", "Cones placed", "Li Lei"):
        assert part in shown.text, part
    assert shown.button("办结")
    stranger = Person(app, fake_api, user_id=OUTSIDER)
    calls = await stranger.send(f"/ticket {ticket_id}")
    assert "只有该工单所属区的登记工作人员" in text_of(calls)
    assert "Li Lei" not in text_of(calls)
    for bad in ("/ticket abc", "/ticket 99999999999999", "/ticket 77"):
        calls = await staff.send(bad)
        assert to(calls, DONGCHENG_GROUP, "sendMessage")  # a clear message, not silence


async def test_admins_manage_staff_and_link_groups_in_the_chat(app, fake_api, services):
    admin = Person(app, fake_api, user_id=ADMIN_ID)
    calls = await admin.send("/staff add 5555 朝阳")
    assert "5555" in text_of(calls) and "朝阳区" in text_of(calls)
    assert await services.tickets.staff_districts(5555) == ["110105"]
    calls = await admin.send("/staff list")
    assert "5555" in text_of(calls)
    calls = await admin.send("/staff add 5555 Atlantis")
    assert "Atlantis" in text_of(calls)
    calls = await admin.send("/staff remove 5555")
    assert await services.tickets.staff_districts(5555) == []
    assert "用法" in text_of(await admin.send("/staff"))

    group_admin = Person(app, fake_api, user_id=ADMIN_ID, chat_id=-100555)
    calls = await group_admin.send("/linkgroup Chaoyang")
    assert "朝阳区" in text_of(calls)
    assert await services.tickets.district_of_group(-100555) == "110105"
    calls = await admin.send("/linkgroup 朝阳")  # a private chat is not a group
    assert "只能在群组中" in text_of(calls)

    for user_id, chat_id in ((OUTSIDER, None), (OUTSIDER, -100555)):
        someone = Person(app, fake_api, user_id=user_id, chat_id=chat_id)
        for command in ("/staff add 6666 朝阳", "/staff list", "/linkgroup 海淀"):
            calls = await someone.send(command)
            assert "只有管理员可以" in text_of(calls), command
    assert await services.tickets.staff_districts(6666) == []
    assert await services.tickets.district_of_group(-100555) == "110105"


async def test_escalations_reach_the_group_then_the_admins(
        app, fake_api, services, districts, clock):
    _ticket_id, _ = await file_ticket(app, fake_api, services, category="manhole")
    clock.advance(minutes=31)  # urgent: to be claimed within 30 minutes
    before = len(fake_api.calls)
    await services.ticket_sla.run_due(clock.now())
    (repost,) = to(fake_api.calls[before:], DONGCHENG_GROUP, "sendMessage")
    assert "尚未认领" in repost.text and repost.button("认领")
    clock.advance(minutes=31)
    before = len(fake_api.calls)
    await services.ticket_sla.run_due(clock.now())
    (admins,) = to(fake_api.calls[before:], ADMIN_ID, "sendMessage")
    assert "督办" in admins.text and "东城区" in admins.text
    # Running again (a job firing twice) sends nothing more.
    before = len(fake_api.calls)
    await services.ticket_sla.run_due(clock.now())
    assert not [c for c in fake_api.calls[before:] if c.method == "sendMessage"]


async def test_stats_for_admins_as_text_and_a_chart(app, fake_api, services, districts, clock):
    first, _ = await file_ticket(app, fake_api, services)
    await file_ticket(app, fake_api, services)
    clock.advance(minutes=10)
    await services.tickets.claim(first, STAFF)  # in time
    clock.advance(minutes=50)  # the second one is now past its claim deadline
    admin = Person(app, fake_api, user_id=ADMIN_ID)
    calls = await admin.send("/stats 7d")
    (table,) = to(calls, ADMIN_ID, "sendMessage")
    assert table.text.startswith("<pre>") and "东城区" in table.text
    assert "50%" in table.text  # one of two answered within the limit
    (chart,) = to(calls, ADMIN_ID, "sendPhoto")
    assert "响应率" in chart.params["caption"]
    assert "用法" in text_of(await admin.send("/stats last tuesday"))
    assert "没有" in text_of(await admin.send("/stats 2020-01-01 2020-01-31"))
    outsider = Person(app, fake_api, user_id=STAFF)
    calls = await outsider.send("/stats")
    assert "只有管理员可以" in text_of(calls) and not to(calls, STAFF, "sendPhoto")


async def test_followers_hear_of_changes_in_their_own_language(
        app, fake_api, services, districts, staff):
    ticket_id, card = await file_ticket(app, fake_api, services, lang="en")
    await services.tickets.follow(ticket_id, NEIGHBOUR, "zh")
    calls = await staff.press(card, "认领")
    assert "has been taken up" in text_of(to(calls, RESIDENT))
    assert "已由东城区工作人员认领" in text_of(to(calls, NEIGHBOUR))
    before = len(fake_api.calls)
    await services.tickets.resolve(ticket_id, STAFF, "修好了")
    after = fake_api.calls[before:]
    assert with_buttons(to(after, RESIDENT)).button("Solved")  # the resident gives the verdict
    (follower,) = to(after, NEIGHBOUR)
    assert "您关注的工单" in follower.text and not follower.buttons


async def test_photos_go_to_the_group_as_an_album(app, fake_api, services, districts):
    before = len(fake_api.calls)
    await services.tickets.file(NewTicket(
        resident_id=RESIDENT, lang="zh", category="fallen_tree", description="树倒了",
        district_id=DONGCHENG, routing_method="chosen", photos=("p-1", "p-2", "p-3")))
    calls = fake_api.calls[before:]
    (album,) = to(calls, DONGCHENG_GROUP, "sendMediaGroup")
    assert [m["media"] for m in album.params["media"]] == ["p-1", "p-2", "p-3"]
    assert not to(calls, DONGCHENG_GROUP, "sendLocation")  # no point was shared
    assert "未提供" in to(calls, DONGCHENG_GROUP, "sendMessage")[0].text


async def test_a_district_without_a_group_reaches_the_admins(app, fake_api, services):
    before = len(fake_api.calls)
    await services.tickets.file(NewTicket(
        resident_id=RESIDENT, lang="zh", category="outage", description="停电了",
        district_id="110105", routing_method="chosen"))
    (post,) = to(fake_api.calls[before:], ADMIN_ID, "sendMessage")
    assert "朝阳区还没有关联工作群" in post.text and post.button("认领")


async def test_a_resident_who_blocked_the_bot_is_not_retried(
        app, fake_api, services, districts, staff):
    await services.users.touch(RESIDENT)  # the resident has talked to the bot before
    _ticket_id, card = await file_ticket(app, fake_api, services)
    fake_api.failures.append(lambda call: forbidden() if call.chat_id == RESIDENT else None)
    calls = await staff.press(card, "认领")
    assert not answer_of(calls).params.get("show_alert")  # the claim itself worked
    assert await services.tickets.pending_count() == 0  # given up, not left pending
    async with services.db.session() as session:
        user = await session.get(User, RESIDENT)
    assert user is not None and user.active is False
