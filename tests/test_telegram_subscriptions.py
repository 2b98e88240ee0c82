"""Residents choose their warnings through the real Application and the fake Bot API, on both
databases: /subscribe by buttons, by location and by name, /unsubscribe, /subscriptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quickresponse.telegram import subscriptions as subs_ui
from quickresponse.telegram.codec import MAX_BYTES
from tests.fakebot import Call, FakeBotAPI, callback_update, message_update

RESIDENT = 1001
DONGCHENG = "110101"
CHAOYANG = "110105"
HAIDIAN = "110108"
TIANANMEN = (39.9087, 116.3975)
SENDING = ("sendMessage", "editMessageText", "editMessageReplyMarkup")


@dataclass
class Person:
    """Someone talking to the bot in a chat: sends messages and presses buttons."""

    app: Any
    api: FakeBotAPI
    user_id: int = RESIDENT
    chat_id: int | None = None
    language_code: str | None = "zh-hans"

    async def send(self, text: str | None = None, *,
                   location: tuple[float, float] | None = None) -> list[Call]:
        """Send a message; return the Bot API calls it caused."""
        before = len(self.api.calls)
        await self.app.process_update(message_update(
            self.app.bot, text, user_id=self.user_id, chat_id=self.chat_id,
            language_code=self.language_code, location=location))
        return self.api.calls[before:]

    async def press(self, data: str, on: Call | None = None) -> list[Call]:
        """Press a button carrying ``data`` on message ``on``; the press must be answered once."""
        before = len(self.api.calls)
        markup = on.params.get("reply_markup") if on is not None else None
        await self.app.process_update(callback_update(
            self.app.bot, data, user_id=self.user_id, chat_id=self.chat_id,
            language_code=self.language_code,
            message_text=on.text if on is not None and on.text else "…",
            reply_markup=markup if isinstance(markup, dict) else None))
        calls = self.api.calls[before:]
        answers = [c for c in calls if c.method == "answerCallbackQuery"]
        assert len(answers) == 1, f"a press must be answered exactly once: {calls}"
        return calls


def with_buttons(calls: list[Call]) -> Call:
    """The last message sent or edited that carries inline buttons."""
    found = [c for c in calls if c.method in SENDING and c.buttons]
    assert found, f"no inline keyboard in {[c.method for c in calls]}"
    return found[-1]


def texts(calls: list[Call]) -> str:
    return "\n".join(c.text for c in calls if c.method in ("sendMessage", "editMessageText"))


def answer(calls: list[Call]) -> Call:
    return next(c for c in calls if c.method == "answerCallbackQuery")


def assert_well_formed(api: FakeBotAPI) -> None:
    """HTML parse mode on every text, and every button within Telegram's 64 bytes."""
    for call in api.calls:
        if call.method in ("sendMessage", "editMessageText"):
            assert call.params.get("parse_mode") == "HTML", call
            assert 0 < len(call.text) <= 4096
        for _label, data in call.buttons:
            assert len(data.encode()) <= MAX_BYTES, data


# -- by buttons -----------------------------------------------------------------------------------

async def test_resident_subscribes_with_toggle_buttons_and_done(app, fake_api, services):
    resident = Person(app, fake_api)
    calls = await resident.send("/subscribe")
    picker = with_buttons(calls)
    assert "✅" not in "".join(label for label, _ in picker.buttons)
    # The other way to pick: a reply keyboard that asks Telegram for the location.
    location_ask = next(c for c in calls if "keyboard" in (c.params.get("reply_markup") or {}))
    assert location_ask.params["reply_markup"]["keyboard"][0][0]["request_location"] is True

    calls = await resident.press(picker.button("东城区"), picker)
    assert "东城区" in answer(calls).params["text"]
    picker = with_buttons(calls)
    assert ("✅ 东城区", subs_ui.TOGGLE_DISTRICT.pack(DONGCHENG)) in picker.buttons
    calls = await resident.press(picker.button("朝阳区"), picker)
    picker = with_buttons(calls)
    assert (await services.alerts.subscriptions.get(RESIDENT)).district_ids == (
        DONGCHENG, CHAOYANG)

    # Tapping a chosen district again drops it.
    calls = await resident.press(picker.button("✅ 东城区"), picker)
    picker = with_buttons(calls)
    assert ("东城区", subs_ui.TOGGLE_DISTRICT.pack(DONGCHENG)) in picker.buttons
    assert (await services.alerts.subscriptions.get(RESIDENT)).district_ids == (CHAOYANG,)

    calls = await resident.press(picker.button("完成"), picker)
    summary = [c for c in calls if c.method == "sendMessage"][-1]
    assert "朝阳区" in summary.text and "东城区" not in summary.text
    assert summary.params["reply_markup"] == {"remove_keyboard": True}
    assert await services.conversations.get(RESIDENT, RESIDENT) is None
    assert_well_formed(fake_api)


async def test_each_tap_is_saved_even_without_done(app, fake_api, services):
    resident = Person(app, fake_api)
    picker = with_buttons(await resident.send("/subscribe"))
    await resident.press(picker.button("海淀区"), picker)
    # The resident walks away without pressing "done": the choice is kept.
    assert (await services.alerts.subscriptions.get(RESIDENT)).district_ids == (HAIDIAN,)


# -- by location and by name ----------------------------------------------------------------------

async def test_sharing_a_location_subscribes_to_its_district(app, fake_api, services):
    resident = Person(app, fake_api)
    await resident.send("/subscribe")
    calls = await resident.send(location=TIANANMEN)
    assert "东城区" in texts(calls)
    assert (await services.alerts.subscriptions.get(RESIDENT)).district_ids == (DONGCHENG,)
    # The picker is over and the location key is removed.
    assert await services.conversations.get(RESIDENT, RESIDENT) is None
    assert calls[-1].params["reply_markup"] == {"remove_keyboard": True}


async def test_a_location_outside_the_city_subscribes_nothing_and_offers_the_list(
        app, fake_api, services):
    resident = Person(app, fake_api, language_code="en")
    await resident.send("/subscribe")
    calls = await resident.send(location=(38.0428, 114.5149))  # Shijiazhuang, Hebei
    assert "outside the city" in texts(calls)
    assert with_buttons(calls).button("Dongcheng")
    assert not (await services.alerts.subscriptions.get(RESIDENT)).subscribed


async def test_typing_a_district_name_in_the_picker_subscribes_to_it(app, fake_api, services):
    resident = Person(app, fake_api)
    await resident.send("/subscribe")
    calls = await resident.send("朝阳")
    assert "朝阳区" in texts(calls)
    assert (await services.alerts.subscriptions.get(RESIDENT)).district_ids == (CHAOYANG,)


async def test_a_question_typed_in_the_picker_is_answered_not_lost(app, fake_api, services):
    resident = Person(app, fake_api)
    await resident.send("/subscribe")
    calls = await resident.send("暴雨天在家应该怎么做")
    assert [c for c in calls if c.method == "sendMessage"], "the question got no answer"
    assert await services.conversations.get(RESIDENT, RESIDENT) is None
    assert not (await services.alerts.subscriptions.get(RESIDENT)).subscribed


# -- unsubscribe and the list ---------------------------------------------------------------------

async def test_unsubscribe_one_district_then_everything(app, fake_api, services):
    await services.alerts.subscriptions.subscribe(RESIDENT, [DONGCHENG, HAIDIAN])
    resident = Person(app, fake_api)
    keyboard = with_buttons(await resident.send("/unsubscribe"))
    assert [data for _label, data in keyboard.buttons] == [
        subs_ui.DROP_DISTRICT.pack(DONGCHENG), subs_ui.DROP_DISTRICT.pack(HAIDIAN),
        subs_ui.DROP_ALL.pack()]

    calls = await resident.press(keyboard.button("东城区"), keyboard)
    assert (await services.alerts.subscriptions.get(RESIDENT)).district_ids == (HAIDIAN,)
    keyboard = with_buttons(calls)
    assert "东城区" not in "".join(label for label, _ in keyboard.buttons)

    calls = await resident.press(subs_ui.DROP_ALL.pack(), keyboard)
    assert not (await services.alerts.subscriptions.get(RESIDENT)).subscribed
    assert "/subscribe" in texts(calls)


async def test_subscriptions_lists_what_the_resident_gets_in_their_language(
        app, fake_api, services):
    resident = Person(app, fake_api, language_code="en")
    calls = await resident.send("/subscriptions")
    assert "not subscribed" in texts(calls)

    await services.alerts.subscriptions.subscribe(RESIDENT, [CHAOYANG, HAIDIAN])
    calls = await resident.send("/subscriptions")
    text = texts(calls)
    assert "Chaoyang" in text and "Haidian" in text and "all hazards" in text
    assert "Dongcheng" not in text
    with_buttons(calls).button("Change")


async def test_unsubscribe_with_nothing_to_drop_says_so(app, fake_api):
    calls = await Person(app, fake_api).send("/unsubscribe")
    assert "/subscribe" in texts(calls)


# -- the offer after /start -----------------------------------------------------------------------

async def test_after_start_the_language_choice_offers_warnings_until_subscribed(
        app, fake_api, services):
    resident = Person(app, fake_api)
    greeting = [c for c in await resident.send("/start") if c.method == "sendMessage"][-1]
    calls = await resident.press(greeting.button("中文"), greeting)
    offer = with_buttons(calls)
    assert offer.buttons == [("🔔 接收我所在区的预警", subs_ui.OPEN_PICKER.pack())]
    picker = with_buttons(await resident.press(subs_ui.OPEN_PICKER.pack(), offer))
    await resident.press(picker.button("西城区"), picker)
    assert (await services.alerts.subscriptions.get(RESIDENT)).district_ids == ("110102",)

    # Subscribed: choosing the language again no longer offers it.
    greeting = [c for c in await resident.send("/start") if c.method == "sendMessage"][-1]
    calls = await resident.press(greeting.button("中文"), greeting)
    assert not [c for c in calls if c.buttons]


# -- bad input ------------------------------------------------------------------------------------

async def test_forged_district_button_is_refused_and_changes_nothing(app, fake_api, services):
    resident = Person(app, fake_api)
    calls = await resident.press(subs_ui.TOGGLE_DISTRICT.pack("999999"))
    refusal = answer(calls)
    assert refusal.params.get("show_alert") is True and refusal.params.get("text")
    calls = await resident.press("sub_t:110101:extra")
    assert answer(calls).params.get("show_alert") is True
    assert not (await services.alerts.subscriptions.get(RESIDENT)).subscribed


async def test_in_a_group_the_bot_asks_for_a_private_chat(app, fake_api, services):
    member = Person(app, fake_api, chat_id=-100123)
    calls = await member.send("/subscribe")
    assert "私聊" in texts(calls)
    assert not (await services.alerts.subscriptions.get(-100123)).subscribed
