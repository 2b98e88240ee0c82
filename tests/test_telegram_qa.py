"""The resident Q&A through the real Application and the fake Bot API, on both databases."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from quickresponse.models import QuestionLog
from quickresponse.qa import ActiveWarning
from quickresponse.services import build_matcher
from quickresponse.settings import DEFAULT_KB_DIR
from quickresponse.telegram import keyboards
from quickresponse.telegram.app import register_commands
from quickresponse.telegram.codec import MAX_BYTES
from tests.conftest import FIXTURES
from tests.fakebot import Call, FakeBotAPI, callback_update, message_update

RESIDENT = 1001
NEIGHBOUR = 1002
SENDING = ("sendMessage", "editMessageText")


@pytest.fixture
def kb_dir() -> Path:
    return FIXTURES / "kb_small"


@dataclass
class Resident:
    """A resident in a private chat: sends text, presses buttons, counts the presses."""

    app: Any
    api: FakeBotAPI
    user_id: int = RESIDENT
    language_code: str | None = "zh-hans"
    presses: int = field(default=0)

    async def send(self, text: str) -> Call:
        before = len(self.api.calls)
        await self.app.process_update(message_update(
            self.app.bot, text, user_id=self.user_id, language_code=self.language_code))
        sent = [c for c in self.api.calls[before:] if c.method == "sendMessage"]
        assert sent, f"the bot did not answer {text!r}"
        # The answer itself; other features may follow it with offers of their own.
        return sent[0]

    async def press_data(self, data: str, on: Call | None = None) -> list[Call]:
        """Press a button carrying ``data`` on message ``on``; return the calls it caused."""
        before = len(self.api.calls)
        self.presses += 1
        markup = on.params.get("reply_markup") if on is not None else None
        await self.app.process_update(callback_update(
            self.app.bot, data, user_id=self.user_id, language_code=self.language_code,
            message_text=on.text if on is not None else "…",
            reply_markup=markup if isinstance(markup, dict) else None))
        return self.api.calls[before:]

    async def press(self, on: Call, label: str) -> list[Call]:
        return await self.press_data(on.button(label), on)


def answer_of(calls: list[Call]) -> Call:
    answers = [c for c in calls if c.method == "answerCallbackQuery"]
    assert len(answers) == 1, f"expected one callback answer, got {calls}"
    return answers[0]


def shown(calls: list[Call]) -> Call:
    """The message a press sent or edited."""
    found = [c for c in calls if c.method in SENDING]
    assert found, f"nothing was shown: {[c.method for c in calls]}"
    return found[-1]


def assert_within_telegram_limits(api: FakeBotAPI, presses: int) -> None:
    answered = len(api.sent("answerCallbackQuery"))
    assert answered == presses, f"{presses} button presses but {answered} callback answers"
    for call in api.calls:
        if call.method in SENDING:
            assert call.params.get("parse_mode") == "HTML", call
            assert 0 < len(call.text) <= 4096
        for _label, data in call.buttons:
            assert len(data.encode()) <= MAX_BYTES, data


@pytest.fixture
def resident(app, fake_api) -> Resident:
    return Resident(app, fake_api)


async def questions(services) -> list[QuestionLog]:
    async with services.db.session() as session:
        return list((await session.exec(select(QuestionLog).order_by(QuestionLog.id))).all())


# -- commands -------------------------------------------------------------------------------------

async def test_commands_are_registered_in_chinese_and_english(app, fake_api):
    await register_commands(app)
    lists = {c.params.get("language_code"): c.params["commands"]
             for c in fake_api.sent("setMyCommands")}
    assert {"zh", "en"} <= set(lists)
    for lang in ("zh", "en"):
        names = [c["command"] for c in lists[lang]]
        assert {"start", "help", "topics", "lang"} <= set(names)
    zh = {c["command"]: c["description"] for c in lists["zh"]}
    en = {c["command"]: c["description"] for c in lists["en"]}
    assert "浏览" in zh["topics"] and "Browse" in en["topics"]
    assert zh["lang"] != en["lang"]


async def test_start_greets_says_what_the_bot_does_and_offers_languages(resident, fake_api,
                                                                        services):
    message = await resident.send("/start")
    assert "QuickResponse" in message.text
    for what in ("/topics", "/report", "/subscribe", "110", "119", "120"):
        assert what in message.text
    labels = [label for label, _ in message.buttons]
    assert labels == ["中文", "English"]
    # /start records the resident.
    assert await services.users.language(RESIDENT) is None
    assert_within_telegram_limits(fake_api, resident.presses)


async def test_whole_resident_flow(resident, fake_api, services):
    start = await resident.send("/start")
    calls = await resident.press(start, "English")
    assert "English" in answer_of(calls).params["text"]
    assert "reply in English" in shown(calls).text
    assert await services.users.language(RESIDENT) == "en"

    # A question in Chinese is answered in the chosen language, with sources and review date.
    answer = await resident.send("车在水里熄火了怎么办")
    assert answer.text.startswith("<b>Driving in flood water</b>")
    assert "<b>Sources:</b> Fixture traffic guide" in answer.text
    assert "Reviewed 2026-11-21" in answer.text
    labels = [label for label, _ in answer.buttons]
    assert labels[:2] == ["👍 Helpful", "👎 Not helpful"]
    assert any("At home in a rainstorm" in label for label in labels)
    assert labels[-1] == "🙋 Talk to staff"

    # 👍 is stored and the buttons say thanks; the other buttons stay.
    calls = await resident.press(answer, "Helpful")
    assert "Thank you" in answer_of(calls).params["text"]
    edited = next(c for c in calls if c.method == "editMessageReplyMarkup")
    edited_labels = [label for label, _ in edited.buttons]
    assert "🙏 Thanks for your feedback" in edited_labels
    assert not any("Helpful" in label for label in edited_labels)
    assert any("At home in a rainstorm" in label for label in edited_labels)
    (logged,) = await questions(services)
    assert (logged.entry_id, logged.outcome, logged.feedback) == (
        "flood-driving", "answered", "helpful")
    thanks = Call("editMessageReplyMarkup", edited.params, "")
    calls = await resident.press(thanks, "Thanks")
    assert "Thank you" in answer_of(calls).params["text"]

    # A related topic opens as a new answer; curated text is escaped.
    calls = await resident.press(answer, "At home in a rainstorm")
    related = shown(calls)
    assert related.method == "sendMessage"
    assert "If water is &gt; 30 cm &amp; rising, do &lt;b&gt;not&lt;/b&gt;" in related.text
    assert '<a href="https://example.org/rain">Fixture rain guide</a>' in related.text
    assert any("Driving in flood water" in label for label, _ in related.buttons)
    # Its 👎 applies to the resident's question.
    calls = await resident.press(related, "Not helpful")
    assert "improve" in answer_of(calls).params["text"]
    (logged,) = await questions(services)
    assert logged.feedback == "not_helpful"

    # /topics: categories -> a category -> an entry -> back, editing one message.
    menu = await resident.send("/topics")
    assert "Safety topics" in menu.text
    assert [label for label, _ in menu.buttons] == [
        "🧰 Be prepared (1)", "🌧 Rain and floods (2)", "🔥 Fire and gas (2)"]
    category = shown(await resident.press(menu, "Rain and floods"))
    assert category.method == "editMessageText" and "Rain and floods" in category.text
    assert [label for label, _ in category.buttons] == [
        "Driving in flood water", "At home in a rainstorm", "📚 All categories"]
    entry = shown(await resident.press(category, "At home in a rainstorm"))
    assert entry.method == "editMessageText"
    assert entry.text.startswith("<b>At home in a rainstorm</b>")
    back = shown(await resident.press(entry, "Back"))
    assert "Rain and floods" in back.text and back.method == "editMessageText"
    again = shown(await resident.press(back, "All categories"))
    assert "Safety topics" in again.text

    assert_within_telegram_limits(fake_api, resident.presses)


async def test_help_and_language_buttons(resident, fake_api, services):
    message = await resident.send("/lang")
    calls = await resident.press(message, "中文")
    assert "中文回复" in shown(calls).text
    assert await services.users.language(RESIDENT) == "zh"
    help_text = (await resident.send("/help")).text
    assert "紧急情况请先打电话" in help_text and "/topics" in help_text
    assert_within_telegram_limits(fake_api, resident.presses)


# -- answers ---------------------------------------------------------------------------------------

async def test_urgent_message_gets_emergency_numbers_first(resident, fake_api):
    answer = await resident.send("救命！家里着火了怎么逃生")
    text = answer.text
    assert text.startswith("🚨")
    # The entry's own number (119 for a home fire) comes first, then the standard ones.
    positions = [text.index(f"<b>{n}</b>") for n in ("119", "110", "120", "122")]
    assert positions == sorted(positions)
    assert text.index("<b>119</b>") < text.index("打完电话") < text.index("<b>家庭火灾</b>")
    assert_within_telegram_limits(fake_api, resident.presses)


async def test_reply_language_follows_the_message_unless_chosen(resident, services):
    english = await resident.send("what to do about a gas leak")
    assert "<b>Gas leak</b>" in english.text
    chinese = await resident.send("燃气泄漏怎么处理")
    assert "<b>燃气泄漏</b>" in chinese.text
    await services.users.set_language(RESIDENT, "zh")
    chosen = await resident.send("what to do about a gas leak")
    assert "<b>燃气泄漏</b>" in chosen.text


async def test_related_topic_buttons_follow_the_language_of_the_answer(resident, services):
    # No language chosen and a Chinese phone: an English question's buttons stay in English.
    answer = await resident.send("what to do about a gas leak")
    calls = await resident.press(answer, "Fire at home")
    assert shown(calls).text.startswith("<b>Fire at home</b>")


def set_thresholds(services, answer: float, suggest: float) -> None:
    """Force the matcher's decision so these tests do not depend on its tuning."""
    tuned = services.settings.model_copy(
        update={"answer_threshold": answer, "suggest_threshold": suggest})
    services.qa.matcher = build_matcher(services.kb, tuned)


async def test_no_answer_is_honest_and_offers_topics_and_staff(resident, fake_api, services):
    set_thresholds(services, answer=100.6, suggest=100.5)
    answer = await resident.send("how do I renew my passport")
    assert "don't have an answer" in answer.text
    assert "110" in answer.text  # the emergency numbers are never left out
    labels = [label for label, _ in answer.buttons]
    assert labels == ["📚 Browse topics", "🙋 Talk to staff"]
    (logged,) = await questions(services)
    assert logged.outcome == "no_answer" and logged.entry_id is None

    menu = shown(await resident.press(answer, "Browse topics"))
    assert "Safety topics" in menu.text
    assert_within_telegram_limits(fake_api, resident.presses)


@pytest.fixture
async def qa_only_app(services, fake_api, monkeypatch):
    """The application with only the Q&A module, as before the tickets feature is installed."""
    from quickresponse.telegram import app as factory

    monkeypatch.setattr(factory, "HANDLER_MODULES", ("quickresponse.telegram.qa",))
    application = factory.build_application(services, request=fake_api, rate_limit=False)
    async with application:
        yield application


async def test_talk_to_staff_without_the_tickets_feature_points_to_12345(
        qa_only_app, fake_api, services):
    resident = Resident(qa_only_app, fake_api)
    await services.users.set_language(RESIDENT, "en")
    answer = await resident.send("what to do about a gas leak")
    calls = await resident.press(answer, "Talk to staff")
    staff = shown(calls)
    assert "12345" in staff.text and "110" in staff.text and "120" in staff.text
    forged = await resident.press_data("staff:abc")
    assert answer_of(forged).params.get("show_alert") is True
    assert_within_telegram_limits(fake_api, resident.presses)


async def test_near_miss_offers_did_you_mean_buttons(resident, fake_api, services):
    set_thresholds(services, answer=100.6, suggest=1)
    answer = await resident.send("gas leak in the kitchen, what now")
    assert "Did you mean" in answer.text
    assert "1. Gas leak" in answer.text
    topic_buttons = [(label, data) for label, data in answer.buttons if label.startswith("🔹")]
    assert topic_buttons and topic_buttons[0][0] == "🔹 Gas leak"
    assert not any("Helpful" in label for label, _ in answer.buttons)
    opened = shown(await resident.press(answer, "Gas leak"))
    assert opened.text.startswith("<b>Gas leak</b>")
    # The answer picked from the suggestions can be rated, for the resident's question.
    calls = await resident.press(opened, "Helpful")
    assert "Thank you" in answer_of(calls).params["text"]
    (logged,) = await questions(services)
    assert logged.outcome == "suggested" and logged.feedback == "helpful"
    # The resident's choice among the suggestions is kept: the first one opened.
    assert logged.chosen_entry_id == "gas-leak"
    other = [label for label, _ in topic_buttons if label != "🔹 Gas leak"]
    if other:
        await resident.press(answer, other[0][2:])
        assert (await questions(services))[0].chosen_entry_id == "gas-leak"
    # Someone else pressing the buttons of this answer (forged) records nothing.
    assert not await services.qa.record_choice(RESIDENT + 1, logged.id, "home-fire")
    assert not await services.qa.record_choice(RESIDENT, logged.id, "no-such-entry")
    assert_within_telegram_limits(fake_api, resident.presses)


class OneWarning:
    """A warning source as the alerts feature provides it: district ids, an aware UTC end."""

    async def active_for_user(self, user_id: int):
        return [ActiveWarning(1, "rainstorm", "orange", ("110105", "110108"),
                              datetime(2026, 7, 20, 10, 0, tzinfo=UTC), ("rainstorm-home",))]


async def test_warning_in_force_is_a_banner_on_top(resident, services):
    services.qa.warnings = OneWarning()
    answer = await resident.send("暴雨天在家要注意什么")
    first_line = answer.text.splitlines()[0]
    assert first_line.startswith("⚠️")
    assert "朝阳区、海淀区" in first_line
    assert "7月20日 18:00" in first_line  # 10:00 UTC shown in Beijing time
    assert "<b>暴雨时居家</b>" in answer.text
    english = await resident.send("what to do at home during a rainstorm")
    first_line = english.text.splitlines()[0]
    assert "Chaoyang, Haidian" in first_line and "20 Jul 18:00" in first_line


# -- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["🔥🔥🔥", "？？！！", "\u200b\u0007\u0000", "   "])
async def test_messages_without_words_get_a_clear_message(resident, fake_api, services, text):
    before = len(fake_api.calls)
    await resident.app.process_update(message_update(resident.app.bot, text, user_id=RESIDENT))
    (message,) = [c for c in fake_api.calls[before:] if c.method == "sendMessage"]
    assert "请用文字写下您的问题" in message.text and "119" in message.text
    assert await questions(services) == []


async def test_long_message_is_read_up_to_the_limit_and_says_so(resident, fake_api, services):
    text = "车在水里熄火了怎么办 " + "水" * 1500
    answer = await resident.send(text)
    assert "只读取了前 1000 个字" in answer.text
    (logged,) = await questions(services)
    assert len(logged.text) == 1000
    assert_within_telegram_limits(fake_api, resident.presses)


@pytest.mark.parametrize("data", [
    "staff:abc", "zz:1", "x" * 80, "fb:1", "fb:1:7", "fb:99999:1", "fb:99999999999:1",
    "e:no-such-entry:0", "e:../../etc:0", "t:no-such-entry", "cat:nowhere:0", "lang:fr",
    "cats:extra", "fbdone:1",
])
async def test_forged_or_stale_buttons_are_refused_in_the_users_language(
        resident, fake_api, services, data):
    await services.users.set_language(RESIDENT, "en")
    calls = await resident.press_data(data)
    refusal = answer_of(calls)
    assert refusal.params.get("show_alert") is True
    assert refusal.params["text"] in (
        "This button is no longer valid. Please start again.",
        "Sorry, that topic no longer exists. Send /topics to browse.",
    )
    assert not [c for c in calls if c.method in SENDING]
    assert await services.users.language(RESIDENT) == "en"


async def test_rating_someone_elses_question_is_refused(resident, fake_api, services, app):
    answer = await resident.send("what to do about a gas leak")
    neighbour = Resident(app, fake_api, user_id=NEIGHBOUR, language_code="en")
    calls = await neighbour.press_data(answer.button("Helpful"), answer)
    refusal = answer_of(calls)
    assert refusal.params.get("show_alert") is True
    assert "your own questions" in refusal.params["text"]
    (logged,) = await questions(services)
    assert logged.feedback is None


async def test_unexpected_failure_gets_a_short_apology_in_the_users_language(
        resident, fake_api, services):
    await services.users.set_language(RESIDENT, "en")

    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    services.qa.ask = broken  # type: ignore[method-assign]
    message = await resident.send("what to do about a gas leak")
    assert message.text.startswith("Sorry, something went wrong")
    assert "boom" not in message.text and "Traceback" not in message.text


async def test_long_category_is_paged_within_limits(resident, fake_api, monkeypatch):
    monkeypatch.setattr("quickresponse.presenter.TOPICS_PAGE_SIZE", 1)
    menu = await resident.send("/topics")
    first = shown(await resident.press(menu, "暴雨与洪水"))
    assert "第 1/2 页" in first.text
    assert [label for label, _ in first.buttons] == ["积水路段驾车", "下一页 ➡️", "📚 全部类别"]
    second = shown(await resident.press(first, "下一页"))
    assert "第 2/2 页" in second.text
    assert [label for label, _ in second.buttons] == ["暴雨时居家", "⬅️ 上一页", "📚 全部类别"]
    entry = shown(await resident.press(second, "暴雨时居家"))
    back = shown(await resident.press(entry, "返回"))
    assert "第 2/2 页" in back.text
    assert_within_telegram_limits(fake_api, resident.presses)


async def test_answer_keyboards_fit_the_codec_for_every_fixture_entry(services):
    for entry in services.kb:
        for lang in ("zh", "en"):
            markup = keyboards.entry_keyboard(services.kb, entry, 2**31 - 1, lang)
            browse = keyboards.browse_entry_keyboard(services.kb, entry, lang)
            for row in (*markup.inline_keyboard, *browse.inline_keyboard):
                for button in row:
                    assert len(str(button.callback_data).encode()) <= MAX_BYTES


# -- the real knowledge base ---------------------------------------------------------------

real_kb = pytest.mark.skipif(
    not any(p.name != "categories.yaml" for p in DEFAULT_KB_DIR.glob("*.yaml")),
    reason="the real knowledge base has no entries yet")


@real_kb
@pytest.mark.parametrize("kb_dir", [DEFAULT_KB_DIR])
async def test_real_knowledge_base_fire_is_119_first_and_topics_list_every_category(
        resident, fake_api, services, kb_dir):
    answer = await resident.send("家里着火了！")
    text = answer.text
    assert text.startswith("🚨")
    assert text.index("<b>119</b>") < text.index("<b>110</b>")
    assert text.index("<b>119</b>") < text.index("<b>120</b>")
    menu = await resident.send("/topics")
    labels = " ".join(label for label, _ in menu.buttons)
    for category in services.kb.categories.values():
        assert category.title["zh"] in labels
    assert_within_telegram_limits(fake_api, resident.presses)
