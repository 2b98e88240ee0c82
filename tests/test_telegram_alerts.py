"""Admins' warnings through the real Application and the fake Bot API, on both databases: the
/alert wizard, scheduling with the fake clock, cancel, update and all-clear, approval, CAP,
broadcast progress, and the warning banner residents see on related answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from lxml import etree

from quickresponse.alerts.delivery import DeliveryStats
from quickresponse.alerts.service import AlertState
from quickresponse.errors import InvalidInput
from quickresponse.settings import Settings, load_settings
from quickresponse.telegram import alerts as alerts_ui
from quickresponse.telegram.alerts import BroadcastProgress, parse_time
from quickresponse.telegram.codec import MAX_BYTES
from tests.conftest import ADMIN_ID
from tests.fakebot import TOKEN, Call, FakeBotAPI, forbidden
from tests.test_telegram_subscriptions import Person, answer, texts, with_buttons

SECOND_ADMIN = 9002
ZH_RESIDENT = 2001  # subscribed to 东城区, reads Chinese
EN_RESIDENT = 2002  # subscribed to 东城区, reads English
HAIDIAN_RESIDENT = 2003  # subscribed to 海淀区 only
STRANGER = 2004  # not subscribed
RESIDENTS = (ZH_RESIDENT, EN_RESIDENT, HAIDIAN_RESIDENT, STRANGER)
DONGCHENG = "110101"
HAIDIAN = "110108"
CAP_NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}


@pytest.fixture
def settings(db_url, kb_dir) -> Settings:
    return load_settings(
        _env_file=None, telegram_token=TOKEN, database_url=db_url,
        admin_ids=f"{ADMIN_ID},{SECOND_ADMIN}", knowledge_base_dir=kb_dir,
        default_language="zh",
    )


@pytest.fixture
async def residents(services) -> None:
    subs = services.alerts.subscriptions
    for user_id, district, lang in ((ZH_RESIDENT, DONGCHENG, "zh"),
                                    (EN_RESIDENT, DONGCHENG, "en"),
                                    (HAIDIAN_RESIDENT, HAIDIAN, "zh")):
        await services.users.touch(user_id)
        await services.users.set_language(user_id, lang)
        await subs.subscribe(user_id, [district])
    await services.users.touch(STRANGER)


@pytest.fixture
def admin(app, fake_api) -> Person:
    return Person(app, fake_api, user_id=ADMIN_ID)


def alert_messages(api: FakeBotAPI, chat_id: int) -> list[Call]:
    """What a resident received, leaving out anything they asked for themselves."""
    return [c for c in api.sent("sendMessage", chat_id) if "预警" in c.text or
            "warning" in c.text.lower() or "LIFTED" in c.text or "解除" in c.text]


async def compose(admin: Person, *, when: str = "10 分钟后", until: str = "+6 小时",
                  en_text: str | None = "Heavy rain test: stay indoors, keep off underpasses."
                  ) -> Call:
    """Go through the whole wizard for an orange rainstorm warning for 东城区; return the
    preview."""
    step = with_buttons(await admin.send("/alert"))
    assert "第 1/6 步" in step.text
    step = with_buttons(await admin.press(step.button("暴雨"), step))
    assert "第 2/6 步" in step.text
    step = with_buttons(await admin.press(step.button("橙色"), step))
    assert "第 3/6 步" in step.text and "全市" in step.text
    step = with_buttons(await admin.press(step.button("东城区"), step))
    assert "<b>东城区</b>" in step.text
    step = with_buttons(await admin.press(step.button("下一步"), step))
    assert "第 4/6 步" in step.text and "暴雨" in step.text  # the template, pre-filled
    if en_text is not None:
        calls = await admin.press(step.button("修改 English"), step)
        assert "<b>英文</b>" in texts(calls)
        step = with_buttons(await admin.send(en_text))
        assert en_text in step.text
    step = with_buttons(await admin.press(step.button("使用此内容"), step))
    assert "第 5/6 步" in step.text
    if when.startswith("type:"):
        step = with_buttons(await admin.send(when.removeprefix("type:")))
    else:
        step = with_buttons(await admin.press(step.button(when), step))
    assert "第 6/6 步" in step.text
    return with_buttons(await admin.press(step.button(until), step))


async def confirm(admin: Person, preview: Call) -> int:
    calls = await admin.press(preview.button("确认发送"), preview)
    confirmed = [c for c in calls if c.method in ("editMessageText", "sendMessage")][-1]
    return int(confirmed.text.split("#", 1)[1].split()[0])


# -- the wizard and scheduled delivery ------------------------------------------------------------

async def test_admin_composes_schedules_and_every_subscriber_gets_it_once(
        admin, fake_api, services, clock, residents):
    preview = await compose(admin)
    assert "尚未发送" in preview.text
    assert "当前接收人数：<b>2</b>" in preview.text
    assert "Heavy rain test" in preview.text  # exactly what English readers will get
    alert_id = await confirm(admin, preview)
    assert "已定于" in fake_api.texts(ADMIN_ID)[-1]
    assert await services.conversations.get(ADMIN_ID, ADMIN_ID) is None

    # Not yet: nothing goes out before its time.
    await services.alerts.run_due()
    assert all(not alert_messages(fake_api, r) for r in RESIDENTS)

    clock.advance(minutes=10)
    await services.alerts.run_due()
    zh = alert_messages(fake_api, ZH_RESIDENT)
    en = alert_messages(fake_api, EN_RESIDENT)
    assert len(zh) == 1 and len(en) == 1
    assert "暴雨" in zh[0].text and "东城区" in zh[0].text
    assert "Heavy rain test" in en[0].text and "Dongcheng" in en[0].text
    assert not alert_messages(fake_api, HAIDIAN_RESIDENT)
    assert not alert_messages(fake_api, STRANGER)

    # Running the job again (a second process, a late duplicate) sends nothing more.
    await services.alerts.run_due()
    assert len(alert_messages(fake_api, ZH_RESIDENT)) == 1
    assert len(alert_messages(fake_api, EN_RESIDENT)) == 1
    assert (await services.alerts.get(alert_id)).state == AlertState.SENT

    # The admin saw the progress message and the final report.
    progress = [c for c in fake_api.calls if c.chat_id == ADMIN_ID and "#" in c.text
                and "100%" in c.text]
    assert progress, "no progress message reached the admin"
    report = fake_api.texts(ADMIN_ID)[-1]
    assert "发送报告" in report and "已送达 2/2" in report
    assert_buttons_fit(fake_api)


async def test_typed_times_and_bad_input_keep_the_wizard_where_it_was(
        admin, fake_api, services, clock, residents):
    step = with_buttons(await admin.send("/alert"))
    step = with_buttons(await admin.press(step.button("暴雨"), step))
    step = with_buttons(await admin.press(step.button("黄色"), step))
    step = with_buttons(await admin.press(step.button("下一步"), step))  # whole city
    calls = await admin.press(step.button("修改中文"), step)
    calls = await admin.send("长" * 2001)
    assert "2000" in texts(calls)
    assert (await services.conversations.get(ADMIN_ID, ADMIN_ID)).step == "edit_zh"
    step = with_buttons(await admin.send("<b>注意</b> 暴雨 & 积水"))
    assert "&lt;b&gt;注意&lt;/b&gt; 暴雨 &amp; 积水" in step.text  # shown escaped
    step = with_buttons(await admin.press(step.button("使用此内容"), step))

    calls = await admin.send("soon-ish")
    assert "无法识别" in texts(calls)
    calls = await admin.send("2020-01-01 08:00")
    assert "不可用" in texts(calls)
    # The fake clock is 10:00 in Beijing: 10:30 is half an hour away.
    step = with_buttons(await admin.send("10:30"))
    assert "7月20日 10:30" in step.text
    preview = with_buttons(await admin.send("+8h"))
    assert "有效至：7月20日 18:30" in preview.text
    assert "当前接收人数：<b>3</b>" in preview.text
    alert_id = await confirm(admin, preview)
    alert = await services.alerts.get(alert_id)
    assert alert.all_districts and alert.texts.zh == "<b>注意</b> 暴雨 & 积水"
    assert alert.send_at == clock.now() + timedelta(minutes=30)
    assert alert.expires_at == alert.send_at + timedelta(hours=8)


async def test_typed_times_are_read_in_beijing_time(services):
    now = services.clock.now()  # 02:00 UTC = 10:00 Asia/Shanghai
    tz = services.settings.tz
    kwargs = {"now": now, "after": now, "tz": tz}
    assert parse_time("现在", bare_unit="minutes", **kwargs) == now
    assert parse_time("+45", bare_unit="minutes", **kwargs) == now + timedelta(minutes=45)
    assert parse_time("+6", bare_unit="hours", **kwargs) == now + timedelta(hours=6)
    assert parse_time("2h", bare_unit="minutes", **kwargs) == now + timedelta(hours=2)
    assert parse_time("１８：３０", bare_unit="minutes", **kwargs) == (
        now + timedelta(hours=8, minutes=30))
    # 09:00 has passed today in Beijing, so it means tomorrow morning.
    assert parse_time("09:00", bare_unit="minutes", **kwargs) == now + timedelta(hours=23)
    assert parse_time("2026-07-21 06:00", bare_unit="minutes", **kwargs) == (
        now + timedelta(hours=20))
    for bad in ("25:00", "2026-02-30 08:00", "tomorrow", ""):
        with pytest.raises(InvalidInput):
            parse_time(bad, bare_unit="minutes", **kwargs)


async def test_cancel_before_its_time_and_nobody_gets_it(
        admin, fake_api, services, clock, residents):
    alert_id = await confirm(admin, await compose(admin))
    listing = with_buttons(await admin.send("/alerts"))
    assert f"#{alert_id}" in listing.text and "已计划" in listing.text
    ask = with_buttons(await admin.press(alerts_ui.CANCEL_ALERT.pack(alert_id), listing))
    assert "确定取消" in ask.buttons[0][0]
    calls = await admin.press(ask.button("确定取消"), ask)
    assert f"#{alert_id}" in answer(calls).params["text"]
    assert (await services.alerts.get(alert_id)).state == AlertState.CANCELLED

    clock.advance(minutes=30)
    await services.alerts.run_due()
    assert all(not alert_messages(fake_api, r) for r in RESIDENTS)


async def test_update_and_all_clear_reach_the_original_recipients(
        admin, fake_api, services, clock, residents):
    original = await confirm(admin, await compose(admin, when="立即"))
    await services.alerts.run_due()
    assert len(alert_messages(fake_api, ZH_RESIDENT)) == 1
    # A recipient of the original who has since unsubscribed still hears how it ends.
    await services.alerts.subscriptions.unsubscribe(ZH_RESIDENT)

    listing = with_buttons(await admin.send("/alerts"))
    step = with_buttons(await admin.press(alerts_ui.UPDATE_ALERT.pack(original), listing))
    assert f"更新预警 #{original}" in step.text and "第 2/6 步" in step.text
    step = with_buttons(await admin.press(step.button("红色"), step))
    assert "<b>东城区</b>" in step.text  # the original's districts, kept
    step = with_buttons(await admin.press(step.button("下一步"), step))
    step = with_buttons(await admin.press(step.button("使用此内容"), step))
    step = with_buttons(await admin.press(step.button("立即"), step))
    preview = with_buttons(await admin.press(step.button("+3 小时"), step))
    assert "当前接收人数：<b>2</b>" in preview.text
    # A last correction from the preview goes straight back to the preview.
    await admin.press(preview.button("修改中文"), preview)
    preview = with_buttons(await admin.send("雨势增强，东城区全部下穿通道封闭，请勿外出。"))
    assert "雨势增强" in preview.text and "尚未发送" in preview.text
    update_id = await confirm(admin, preview)
    await services.alerts.run_due()
    zh = alert_messages(fake_api, ZH_RESIDENT)
    en = alert_messages(fake_api, EN_RESIDENT)
    assert len(zh) == 2 and "红色" in zh[-1].text and "雨势增强" in zh[-1].text
    assert len(en) == 2 and "UPDATE" in en[-1].text
    assert not alert_messages(fake_api, HAIDIAN_RESIDENT)
    assert (await services.alerts.get(update_id)).references_id == original

    listing = with_buttons(await admin.send("/alerts"))
    preview = with_buttons(await admin.press(alerts_ui.ALL_CLEAR.pack(update_id), listing))
    assert "LIFTED" in preview.text and "尚未发送" in preview.text
    clear_id = await confirm(admin, preview)
    await services.alerts.run_due()
    zh = alert_messages(fake_api, ZH_RESIDENT)
    en = alert_messages(fake_api, EN_RESIDENT)
    assert len(zh) == 3 and len(en) == 3
    assert "LIFTED" in en[-1].text
    assert not alert_messages(fake_api, HAIDIAN_RESIDENT)
    assert not alert_messages(fake_api, STRANGER)
    clear = await services.alerts.get(clear_id)
    assert clear.msg_type == "Cancel" and clear.references_id == update_id


# -- who may do what -----------------------------------------------------------------------------

async def test_a_resident_cannot_compose_or_press_admin_buttons(
        app, admin, fake_api, services, residents):
    resident = Person(app, fake_api, user_id=ZH_RESIDENT)
    calls = await resident.send("/alert")
    assert "只有管理员" in texts(calls)
    assert await services.conversations.get(ZH_RESIDENT, ZH_RESIDENT) is None
    calls = await resident.send("/alerts")
    assert "只有管理员" in texts(calls)
    alert_id = await confirm(admin, await compose(admin))
    for data in (alerts_ui.PICK_HAZARD.pack("flood"), alerts_ui.CANCEL_SURE.pack(alert_id),
                 alerts_ui.SEND_CAP.pack(alert_id)):
        calls = await resident.press(data)
        assert answer(calls).params.get("show_alert") is True
        assert not [c for c in calls if c.method in ("sendMessage", "sendDocument")]
    assert (await services.alerts.get(alert_id)).state == AlertState.SCHEDULED


async def test_stale_and_forged_wizard_buttons_are_refused(admin, fake_api, services):
    # A level button with no wizard at the level step.
    calls = await admin.press(alerts_ui.PICK_LEVEL.pack("red"))
    assert answer(calls).params.get("show_alert") is True
    step = with_buttons(await admin.send("/alert"))
    for data in ("al_hz:volcano", "al_hz:rainstorm:x", "al_cxly:99999999",
                 alerts_ui.CONFIRM.pack()):
        calls = await admin.press(data, step)
        assert answer(calls).params.get("show_alert") is True
    assert (await services.conversations.get(ADMIN_ID, ADMIN_ID)).step == "hazard"


async def test_cancel_command_leaves_the_wizard_and_drops_its_draft(
        admin, fake_api, services, residents):
    preview = await compose(admin)
    assert "预览" in preview.text
    calls = await admin.send("/cancel")
    assert "未发送" in texts(calls)
    assert await services.conversations.get(ADMIN_ID, ADMIN_ID) is None
    assert not await services.alerts.list_alerts(
        states=[AlertState.DRAFT, AlertState.SCHEDULED])


async def test_a_second_admin_must_approve_when_required(
        app, admin, fake_api, services, clock, residents):
    services.settings.alert_require_approval = True
    preview = await compose(admin, when="立即")
    assert "另一位管理员批准" in preview.text
    alert_id = await confirm(admin, preview)
    assert (await services.alerts.get(alert_id)).state == AlertState.PENDING_APPROVAL
    # The second admin is asked, with an approve button.
    ask = [c for c in fake_api.sent("sendMessage", SECOND_ADMIN) if c.buttons][-1]
    assert ask.button("批准")

    # The author cannot approve their own warning.
    calls = await admin.press(alerts_ui.APPROVE_ALERT.pack(alert_id))
    assert "另一位管理员" in answer(calls).params["text"]
    await services.alerts.run_due()
    assert all(not alert_messages(fake_api, r) for r in RESIDENTS)

    second = Person(app, fake_api, user_id=SECOND_ADMIN)
    await second.press(ask.button("批准"), ask)
    await services.alerts.run_due()
    assert len(alert_messages(fake_api, ZH_RESIDENT)) == 1
    assert len(alert_messages(fake_api, EN_RESIDENT)) == 1


async def test_missed_alert_is_reported_to_the_admins(admin, fake_api, services, clock,
                                                      residents):
    alert_id = await confirm(admin, await compose(admin))
    # The bot is down far past the send time and the grace period.
    clock.advance(hours=2)
    await services.alerts.run_due()
    assert (await services.alerts.get(alert_id)).state == AlertState.MISSED
    assert all(not alert_messages(fake_api, r) for r in RESIDENTS)
    for admin_id in (ADMIN_ID, SECOND_ADMIN):
        assert any("未发出" in text for text in fake_api.texts(admin_id)), admin_id


# -- /alerts, CAP, progress ---------------------------------------------------------------------

async def test_alerts_lists_delivery_figures_and_sends_cap(
        admin, fake_api, services, clock, residents):
    fake_api.failures.append(lambda call: forbidden() if call.chat_id == EN_RESIDENT
                             and call.method == "sendMessage" else None)
    alert_id = await confirm(admin, await compose(admin, when="立即"))
    await services.alerts.run_due()
    report = fake_api.texts(ADMIN_ID)[-1]
    assert "已送达 1/2" in report and "已屏蔽机器人 1" in report

    listing = with_buttons(await admin.send("/alerts"))
    assert "已送达 1 · 失败 0 · 已屏蔽 1 · 待发 0 · 共 2" in listing.text
    labels = [label for label, _data in listing.buttons]
    assert f"🔁 更新 #{alert_id}" in labels and f"🟢 解除 #{alert_id}" in labels
    assert f"✖ 取消 #{alert_id}" not in labels  # a sent warning cannot be unsent

    calls = await admin.press(alerts_ui.SEND_CAP.pack(alert_id), listing)
    document = next(c for c in calls if c.method == "sendDocument")
    filename, content = document.files["document"]
    assert filename.endswith(".xml")
    cap = etree.fromstring(content)
    alert = await services.alerts.get(alert_id)
    assert cap.findtext("cap:identifier", namespaces=CAP_NS) == alert.identifier
    assert cap.findtext("cap:msgType", namespaces=CAP_NS) == "Alert"
    assert len(cap.findall("cap:info", namespaces=CAP_NS)) == 2

    # Expired: the listing says so and offers no update or all-clear any more.
    clock.advance(hours=7)
    await services.alerts.run_due()
    listing = with_buttons(await admin.send("/alerts"))
    assert "已过期" in listing.text
    assert not [d for _l, d in listing.buttons if d.startswith(("al_upd", "al_clr"))]


async def test_progress_is_one_message_edited_sparingly_then_final(app, admin, fake_api,
                                                                   services, residents):
    alert_id = await confirm(admin, await compose(admin))
    fake_api.clear()
    progress = BroadcastProgress(app)
    total = 200
    for sent in range(0, total, 2):  # a call per 2 recipients; the clock does not move
        await progress(alert_id, DeliveryStats(total=total, sent=sent, pending=total - sent),
                       final=False)
    await progress(alert_id, DeliveryStats(total=total, sent=197, failed=1, blocked=2),
                   final=True)
    sends = fake_api.sent("sendMessage", ADMIN_ID)
    edits = fake_api.sent("editMessageText", ADMIN_ID)
    assert len(sends) == 1, "progress must be one message"
    # Every 5% (10 of 200) at most: about 20 edits for 100 calls, and the final one.
    assert 15 <= len(edits) <= 21
    assert len({e.params["message_id"] for e in edits}) == 1
    final = edits[-1].text
    assert "100%" in final and "已送达 197" in final and "失败 1" in final and "已屏蔽 2" in final


# -- residents see the warning on related answers -------------------------------------------------

async def test_warning_banner_on_related_answers_while_in_force_only(
        app, admin, fake_api, services, clock, residents):
    await confirm(admin, await compose(admin, when="立即", until="+3 小时"))
    await services.alerts.run_due()
    resident = Person(app, fake_api, user_id=ZH_RESIDENT)
    calls = await resident.send("暴雨天在家里应该怎么办")
    first_line = first_line_of_answer(calls)
    assert "暴雨" in first_line and "橙色" in first_line and "东城区" in first_line
    assert "7月20日 13:00" in first_line

    # A resident of another district gets no banner.
    other = Person(app, fake_api, user_id=HAIDIAN_RESIDENT)
    calls = await other.send("暴雨天在家里应该怎么办")
    assert "⚠️" not in first_line_of_answer(calls)

    clock.advance(hours=3, minutes=1)
    await services.alerts.run_due()
    calls = await resident.send("暴雨天在家里应该怎么办")
    assert "橙色" not in first_line_of_answer(calls)


def first_line_of_answer(calls: list[Call]) -> str:
    return next(c for c in calls if c.method == "sendMessage").text.split("\n", 1)[0]


def assert_buttons_fit(api: FakeBotAPI) -> None:
    for call in api.calls:
        for _label, data in call.buttons:
            assert len(data.encode()) <= MAX_BYTES
        if call.method in ("sendMessage", "editMessageText"):
            assert call.params.get("parse_mode") == "HTML"
