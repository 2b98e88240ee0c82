"""What Telegram accepts as ``parse_mode=HTML``, checked strictly, for tests.

Telegram supports a handful of tags (b, strong, i, em, u, ins, s, strike, del, span with class
``tg-spoiler``, tg-spoiler, a with href, tg-emoji, code, pre, blockquote), the entities ``&lt;
&gt; &amp; &quot;`` and numeric ones; every other ``<``, ``>`` and ``&`` must be escaped. A message
that breaks these rules is refused with "can't parse entities", i.e. the resident gets nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tests.fakebot import Call

ALLOWED_TAGS = frozenset({
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "tg-emoji", "code", "pre", "blockquote",
})
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_ANSWER = 200
_TOKEN = re.compile(r"<[^<>]*>|&|<|>")
_TAG = re.compile(r'<(/?)([a-z][a-z-]*)((?:\s+[a-z-]+(?:="[^"<>]*")?)*)\s*(/?)>')
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")


def html_problems(text: str) -> list[str]:
    """Why Telegram would refuse ``text`` as HTML (empty when it would not)."""
    problems: list[str] = []
    stack: list[str] = []
    for token in _TOKEN.finditer(text):
        raw, at = token.group(), token.start()
        if raw == "&":
            if not _ENTITY.match(text, at):
                problems.append(f"bare & at {at}: {text[at:at + 12]!r}")
            continue
        if raw in ("<", ">"):
            problems.append(f"unescaped {raw} at {at}: {text[max(0, at - 8):at + 8]!r}")
            continue
        tag = _TAG.fullmatch(raw)
        if tag is None or tag.group(2) not in ALLOWED_TAGS or tag.group(4):
            problems.append(f"tag Telegram does not support at {at}: {raw!r}")
            continue
        closing, name, attrs = tag.group(1), tag.group(2), tag.group(3)
        if closing:
            if not stack or stack[-1] != name:
                problems.append(f"</{name}> at {at} does not close {stack[-1:] or 'anything'}")
            else:
                stack.pop()
            continue
        if name == "a" and "href=" not in attrs:
            problems.append(f"<a> without href at {at}")
        stack.append(name)
    if stack:
        problems.append(f"left open: {stack}")
    return problems


def assert_valid_html(text: str, *, limit: int = MAX_TEXT) -> None:
    problems = html_problems(text)
    assert not problems, f"invalid Telegram HTML {problems} in {text[:300]!r}"
    assert 0 < len(text) <= limit, f"{len(text)} characters (limit {limit})"


def assert_calls_valid(calls: Iterable[Call]) -> None:
    """Every message, edit, caption and callback answer the bot sent is one Telegram takes."""
    for call in calls:
        if "_failed" in call.params:
            continue
        params = call.params
        if call.method in ("sendMessage", "editMessageText"):
            assert params.get("parse_mode") == "HTML", call
            assert_valid_html(str(params["text"]))
        elif call.method in ("sendPhoto", "editMessageCaption") and params.get("caption"):
            if params.get("parse_mode") == "HTML":
                assert_valid_html(str(params["caption"]), limit=MAX_CAPTION)
            else:
                assert len(str(params["caption"])) <= MAX_CAPTION
        elif call.method == "answerCallbackQuery" and params.get("text"):
            assert len(str(params["text"])) <= MAX_CALLBACK_ANSWER, call
        for label, data in call.buttons:
            assert 0 < len(label) <= 64 and len(data.encode()) <= 64, (label, data)
