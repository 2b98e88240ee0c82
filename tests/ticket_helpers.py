"""People in the tickets tests: a resident in a private chat, staff in their district group.

They talk to the real Application through the fake Bot API and return the calls each update
caused, so that tests assert on what Telegram would show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quickresponse.telegram.codec import MAX_BYTES
from tests.fakebot import Call, FakeBotAPI, callback_update, message_update

RESIDENT = 1001
NEIGHBOUR = 1002
STAFF = 2001
STAFF_2 = 2002
OUTSIDER = 3001
DONGCHENG = "110101"
HAIDIAN = "110108"
CHAOYANG = "110105"
DONGCHENG_GROUP = -100101
HAIDIAN_GROUP = -100108
TIANANMEN = (39.9087, 116.3975)
ZHONGGUANCUN = (39.9834, 116.3160)
SHIJIAZHUANG = (38.0428, 114.5149)  # well inside Hebei
SENDING = ("sendMessage", "editMessageText", "sendPhoto")


@dataclass
class Person:
    """Someone who talks to the bot in one chat (private by default, or a group)."""

    app: Any
    api: FakeBotAPI
    user_id: int = RESIDENT
    chat_id: int | None = None
    language_code: str | None = "zh-hans"
    first_name: str = "Resident"
    presses: int = field(default=0)

    @property
    def chat(self) -> int:
        return self.user_id if self.chat_id is None else self.chat_id

    async def _feed(self, update: Any) -> list[Call]:
        before = len(self.api.calls)
        await self.app.process_update(update)
        return self.api.calls[before:]

    async def send(self, text: str | None = None, **kwargs: Any) -> list[Call]:
        return await self._feed(message_update(
            self.app.bot, text, user_id=self.user_id, chat_id=self.chat_id,
            language_code=self.language_code, first_name=self.first_name, **kwargs))

    async def press_data(self, data: str, on: Call | None = None) -> list[Call]:
        self.presses += 1
        markup = on.params.get("reply_markup") if on is not None else None
        message_id = int(on.params.get("message_id") or 1) if on is not None else 1
        return await self._feed(callback_update(
            self.app.bot, data, user_id=self.user_id, chat_id=self.chat_id,
            language_code=self.language_code, first_name=self.first_name,
            message_text=on.text if on is not None else "…", message_id=message_id,
            reply_markup=markup if isinstance(markup, dict) else None))

    async def press(self, on: Call, label: str) -> list[Call]:
        return await self.press_data(on.button(label), on)


def to(calls: list[Call], chat_id: int, method: str | None = None) -> list[Call]:
    """The calls that sent something to ``chat_id`` (of one method, if given)."""
    return [c for c in calls if c.chat_id == chat_id and c.method != "answerCallbackQuery"
            and (method is None or c.method == method)]


def last_shown(calls: list[Call]) -> Call:
    found = [c for c in calls if c.method in SENDING]
    assert found, f"nothing was shown: {[c.method for c in calls]}"
    return found[-1]


def with_buttons(calls: list[Call]) -> Call:
    """The last message that carries inline buttons."""
    found = [c for c in calls if c.buttons]
    assert found, f"no message with buttons in {[(c.method, c.text[:40]) for c in calls]}"
    return found[-1]


def answer_of(calls: list[Call]) -> Call:
    answers = [c for c in calls if c.method == "answerCallbackQuery"]
    assert len(answers) == 1, f"expected one callback answer, got {[c.method for c in calls]}"
    return answers[0]


def text_of(calls: list[Call]) -> str:
    return "\n".join(c.text for c in calls if c.method in SENDING)


def assert_within_telegram_limits(api: FakeBotAPI, presses: int) -> None:
    """Every press answered, every message HTML within limits, every button within 64 bytes."""
    answered = len(api.sent("answerCallbackQuery"))
    assert answered == presses, f"{presses} button presses but {answered} callback answers"
    for call in api.calls:
        if call.method in ("sendMessage", "editMessageText"):
            assert call.params.get("parse_mode") == "HTML", call
            assert 0 < len(call.text) <= 4096
        if call.method == "sendPhoto" and call.params.get("caption"):
            assert len(call.params["caption"]) <= 1024
        for _label, data in call.buttons:
            assert len(data.encode()) <= MAX_BYTES, data


def transcript(api: FakeBotAPI) -> str:
    """What the bot sent, one block per call, for reading a flow (debugging, reports)."""
    lines = []
    for call in api.calls:
        if call.method in ("getMe", "setMyCommands"):
            continue
        p = call.params
        head = f"[{call.method} -> {call.chat_id}]"
        if call.method == "answerCallbackQuery":
            lines.append(f"{head} {p.get('text', '')!r} alert={p.get('show_alert', False)}")
            continue
        body = call.text or p.get("photo") or (
            f"{p.get('latitude')},{p.get('longitude')}" if "latitude" in p else "")
        lines.append(f"{head} {body}")
        if call.buttons:
            lines.append("    buttons: " + " | ".join(label for label, _ in call.buttons))
        markup = p.get("reply_markup") or {}
        if isinstance(markup, dict) and "keyboard" in markup:
            lines.append("    keyboard: " + " | ".join(b["text"] for row in markup["keyboard"]
                                                       for b in row))
        if isinstance(markup, dict) and markup.get("remove_keyboard"):
            lines.append("    (reply keyboard removed)")
    return "\n".join(lines)
