"""Admins compose, preview, approve, schedule, cancel, update and lift warnings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from quickresponse.alerts.errors import (
    AlertNotFound,
    AlertStateConflict,
    AlertTextInvalid,
    AlertTimeInvalid,
    ApprovalBySameAdmin,
    LevelNotIssued,
    NoTargetDistricts,
    UnknownDistrict,
)
from quickresponse.alerts.hazards import Hazard, Level
from quickresponse.alerts.service import AlertDraft, AlertState
from quickresponse.errors import NotPermitted
from quickresponse.i18n import html_to_text
from tests.alert_helpers import (
    ADMIN,
    CHAOYANG,
    DONGCHENG,
    HAIDIAN,
    SECOND_ADMIN,
    FakeSender,
    FakeTime,
    add_residents,
    alert_service,
    send_now,
)


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def alerts(services, time):
    service = alert_service(services, time, admin_ids=frozenset({ADMIN, SECOND_ADMIN}))
    service.attach(FakeSender())
    return service


def _draft(clock, **kw):
    base = dict(hazard=Hazard.RAINSTORM, level=Level.ORANGE, district_ids=(CHAOYANG,),
                expires_at=clock.now() + timedelta(hours=6))
    base.update(kw)
    return AlertDraft(**base)


async def test_only_admins_can_compose_submit_approve_or_cancel(alerts, clock):
    with pytest.raises(NotPermitted):
        await alerts.compose(1001, _draft(clock))
    view = await alerts.compose(ADMIN, _draft(clock))
    for action in (alerts.submit, alerts.approve, alerts.cancel):
        with pytest.raises(NotPermitted):
            await action(1001, view.id)
    assert (await alerts.get(view.id)).state == AlertState.DRAFT


async def test_template_prefills_a_correct_bilingual_message(alerts, clock):
    view = await alerts.compose(ADMIN, _draft(clock, level=Level.RED))
    assert view.state == AlertState.DRAFT
    assert "红色" in view.texts.zh and "110" in view.texts.zh and "119" in view.texts.zh
    assert "Red is the highest level" in view.texts.en
    zh = html_to_text(alerts.message_html(view, "zh"))
    assert zh.startswith("🔴 暴雨红色预警")
    assert "范围：朝阳区" in zh and "有效至：7月20日 16:00" in zh  # 08:00 UTC in Beijing
    en = html_to_text(alerts.message_html(view, "en"))
    assert en.startswith("🔴 Rainstorm Red warning") and "Area: Chaoyang" in en


async def test_every_hazard_and_level_has_a_template_with_emergency_numbers(alerts):
    for hazard in Hazard:
        levels = alerts.levels_for(hazard)
        assert levels, hazard
        for level in levels:
            texts = alerts.prefill(hazard, level)
            for text in (texts.zh, texts.en):
                assert any(n in text for n in ("110", "119", "120")), (hazard, level)
                assert 2 <= text.count("•") <= 4, (hazard, level, "2-4 actions")
        lifted = alerts.all_clear_texts(hazard)
        assert all(any(n in text for n in ("110", "119", "120")) for text in
                   (lifted.zh, lifted.en)), hazard
    assert alerts.levels_for(Hazard.HAIL) == (Level.ORANGE, Level.RED)


async def test_a_level_the_hazard_does_not_have_is_refused(alerts, clock):
    with pytest.raises(LevelNotIssued):
        await alerts.compose(ADMIN, _draft(clock, hazard=Hazard.HAIL, level=Level.BLUE))


async def test_bad_input_is_refused_with_a_named_error(alerts, clock):
    with pytest.raises(AlertTextInvalid):
        await alerts.compose(ADMIN, _draft(clock, text_zh="   "))
    with pytest.raises(AlertTextInvalid):
        await alerts.compose(ADMIN, _draft(clock, text_en="x" * 2001))
    with pytest.raises(UnknownDistrict):
        await alerts.compose(ADMIN, _draft(clock, district_ids=("110105", "nowhere")))
    with pytest.raises(NoTargetDistricts):
        await alerts.compose(ADMIN, _draft(clock, district_ids=()))
    with pytest.raises(AlertTimeInvalid):
        await alerts.compose(ADMIN, _draft(clock, expires_at=clock.now() - timedelta(hours=1)))
    with pytest.raises(AlertTimeInvalid):
        await alerts.compose(ADMIN, _draft(clock, send_at=clock.now() - timedelta(hours=1)))
    with pytest.raises(AlertNotFound):
        await alerts.get(424242)
    assert await alerts.list_alerts() == []


async def test_odd_unicode_in_the_text_is_cleaned_not_lost(alerts, clock):
    text = "注意\x00安全\u200b <b>"
    view = await alerts.compose(ADMIN, _draft(clock, text_zh=text, text_en="ok"))
    assert "\x00" not in view.texts.zh
    assert view.texts.zh.replace("\u200b", "") == "注意安全 <b>"  # nothing the admin wrote lost
    assert "&lt;b&gt;" in alerts.message_html(view, "zh")  # admin text is escaped, not markup


async def test_preview_counts_each_recipient_once(services, alerts, clock):
    await add_residents(services, [1, 2], [CHAOYANG, HAIDIAN])
    await add_residents(services, [3], [HAIDIAN])
    await add_residents(services, [4], [DONGCHENG])
    view = await alerts.compose(ADMIN, _draft(clock, district_ids=(CHAOYANG, HAIDIAN)))
    preview = await alerts.preview(view.id)
    assert preview.recipients == 3
    assert set(preview.messages) == {"zh", "en"}
    assert not preview.needs_approval
    everywhere = await alerts.compose(ADMIN, _draft(clock, district_ids=None))
    assert everywhere.all_districts
    assert (await alerts.preview(everywhere.id)).recipients == 4
    assert "北京市" in alerts.message_html(everywhere, "zh")


async def test_submit_schedules_and_cancel_stops_a_scheduled_alert(services, alerts, clock):
    await add_residents(services, [1], [CHAOYANG])
    later = clock.now() + timedelta(hours=2)
    view = await alerts.compose(ADMIN, _draft(clock, send_at=later,
                                              expires_at=later + timedelta(hours=6)))
    scheduled = await alerts.submit(ADMIN, view.id)
    assert scheduled.state == AlertState.SCHEDULED and scheduled.send_at == later
    with pytest.raises(AlertStateConflict):
        await alerts.submit(ADMIN, view.id)
    cancelled = await alerts.cancel(SECOND_ADMIN, view.id)
    assert cancelled.state == AlertState.CANCELLED and cancelled.cancelled_by == SECOND_ADMIN
    clock.advance(hours=3)
    report = await alerts.run_due()
    assert report.started == () and alerts._sender.sent == []


async def test_a_sent_alert_cannot_be_cancelled_only_lifted(services, alerts):
    await add_residents(services, [1], [CHAOYANG])
    view = await send_now(alerts)
    await alerts.run_due()
    with pytest.raises(AlertStateConflict):
        await alerts.cancel(ADMIN, view.id)


async def test_approval_needs_a_second_admin(services, time, clock):
    alerts = alert_service(services, time, admin_ids=frozenset({ADMIN, SECOND_ADMIN}),
                           alert_require_approval=True)
    sender = FakeSender()
    notices = []

    async def notify(notice):
        notices.append((notice.kind, notice.admin_id))

    alerts.attach(sender, notify=notify)
    await add_residents(services, [1], [CHAOYANG])
    view = await alerts.compose(ADMIN, _draft(clock))
    assert (await alerts.preview(view.id)).needs_approval
    pending = await alerts.submit(ADMIN, view.id)
    assert pending.state == AlertState.PENDING_APPROVAL
    assert notices == [("approval_needed", None)]
    await alerts.run_due()
    assert sender.sent == [], "nothing goes out before approval"
    with pytest.raises(ApprovalBySameAdmin):
        await alerts.approve(ADMIN, view.id)
    approved = await alerts.approve(SECOND_ADMIN, view.id)
    assert approved.state == AlertState.SCHEDULED and approved.approved_by == SECOND_ADMIN
    assert ("approved", ADMIN) in notices
    await alerts.run_due()
    assert [chat for chat, _, _ in sender.sent] == [1]
    assert ("finished", ADMIN) in notices


async def test_update_goes_to_the_original_recipients_and_new_subscribers(services, alerts):
    await add_residents(services, [1], [CHAOYANG])
    original = await send_now(alerts, level=Level.YELLOW)
    await alerts.run_due()
    await add_residents(services, [2], [HAIDIAN])
    await services.subscriptions.unsubscribe(1)  # got the original, must hear the update
    draft = AlertDraft(hazard=Hazard.RAINSTORM, level=Level.RED, district_ids=(HAIDIAN,),
                       expires_at=alerts._clock.now() + timedelta(hours=6))
    update = await alerts.compose_update(ADMIN, original.id, draft)
    assert update.msg_type == "Update" and update.references_id == original.id
    assert (await alerts.preview(update.id)).recipients == 2
    await alerts.submit(ADMIN, update.id)
    await alerts.run_due()
    assert alerts._sender.counts() == {1: 2, 2: 1}
    to_first = [html for chat, html, _ in alerts._sender.sent if chat == 1]
    assert "【更新】暴雨红色预警" in to_first[-1]


async def test_all_clear_lifts_the_warning_for_its_recipients(services, alerts):
    await add_residents(services, [1, 2], [CHAOYANG])
    original = await send_now(alerts)
    await alerts.run_due()
    assert [w.alert_id for w in await alerts.active_for_user(1)] == [original.id]
    clear = await alerts.compose_all_clear(ADMIN, original.id)
    assert clear.msg_type == "Cancel" and clear.references_id == original.id
    assert "已解除" in clear.texts.zh and "lifted" in clear.texts.en
    await alerts.submit(ADMIN, clear.id)
    await alerts.run_due()
    lifted = [html for chat, html, _ in alerts._sender.sent if chat == 1][-1]
    assert "【解除】暴雨橙色预警" in lifted
    assert await alerts.active_for_user(1) == []
    with pytest.raises(AlertStateConflict):
        await alerts.compose_all_clear(ADMIN, clear.id)


async def test_active_warnings_feed_the_answers(services, alerts, clock):
    await add_residents(services, [1], [CHAOYANG, HAIDIAN])
    await add_residents(services, [2], [DONGCHENG])
    view = await send_now(alerts, districts=(CHAOYANG, HAIDIAN), hours=3)
    await alerts.run_due()
    [warning] = await alerts.active_for_user(1)
    assert warning.alert_id == view.id and warning.level == "orange"
    assert warning.districts == (CHAOYANG, HAIDIAN)
    assert warning.until == view.expires_at
    assert {"rainstorm-home", "flood-driving", "flood-basement"} <= set(warning.related_topics)
    assert await alerts.active_for_user(2) == []
    reply = await services.qa.ask(1, "下暴雨了怎么办")
    assert [w.alert_id for w in reply.warnings] == [view.id]
    clock.advance(hours=3, minutes=1)
    assert await alerts.active_for_user(1) == []


async def test_list_shows_figures_most_recent_first(services, alerts):
    await add_residents(services, [1, 2], [CHAOYANG])
    first = await send_now(alerts)
    await alerts.run_due()
    second = await alerts.compose(ADMIN, _draft(alerts._clock, level=Level.YELLOW))
    listed = await alerts.list_alerts()
    assert [a.id for a in listed] == [second.id, first.id]
    assert listed[1].stats.sent == 2 and listed[1].state == AlertState.SENT
    sent_only = await alerts.list_alerts(states=[AlertState.SENT])
    assert [a.id for a in sent_only] == [first.id]
