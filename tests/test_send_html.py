"""What a reply puts on the wire: the keyboard exactly as PTB would serialise it."""

from __future__ import annotations

import dataclasses
import json

import pytest
from telegram import CopyTextButton, InlineKeyboardButton, InlineKeyboardMarkup, LoginUrl

from quickresponse.telegram.common import _keyboard_data

KEYBOARDS = [
    InlineKeyboardMarkup([[InlineKeyboardButton("👍", callback_data="fb:1:1"),
                           InlineKeyboardButton("👎", callback_data="fb:1:0")],
                          [InlineKeyboardButton("火灾 <逃生>", callback_data="e:fire:1")]]),
    InlineKeyboardMarkup([[InlineKeyboardButton("map", url="https://example.org/?a=1&b=2")]]),
    InlineKeyboardMarkup([[InlineKeyboardButton("copy", copy_text=CopyTextButton("12345")),
                           InlineKeyboardButton("login", login_url=LoginUrl("https://a.b"))]]),
    InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="a", api_kwargs={"k": 1})]]),
    InlineKeyboardMarkup([]),
]


@pytest.mark.parametrize("keyboard", KEYBOARDS)
def test_keyboard_is_sent_as_ptb_would_send_it(keyboard):
    assert json.dumps(_keyboard_data(keyboard), sort_keys=True) == \
        json.dumps(keyboard.to_dict(), sort_keys=True)


def test_a_real_answer_keyboard_is_sent_as_ptb_would_send_it(services):
    from quickresponse.telegram.keyboards import answer_keyboard

    answer = dataclasses.replace(services.qa.reply_for("家里着火了怎么逃生"), question_id=77)
    keyboard = answer_keyboard(answer)
    assert len([b for row in keyboard.inline_keyboard for b in row]) >= 3
    assert _keyboard_data(keyboard) == keyboard.to_dict()
