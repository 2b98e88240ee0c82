"""An urgent message gets the numbers first and then the steps of its most likely topic, even
when the matcher is not sure enough of that topic to answer a calm question with it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from quickresponse.clock import FakeClock
from quickresponse.knowledge import Entry, KnowledgeBase
from quickresponse.matcher import Matcher
from quickresponse.presenter import render_reply
from quickresponse.qa import URGENT_NUMBERS, QAService


def _entry(entry_id: str, zh: str, en: str, steps: str, call: tuple[str, ...] = ()) -> Entry:
    return Entry(
        id=entry_id, category="fire", title={"zh": zh, "en": en},
        answer={"zh": steps, "en": steps},
        examples={"zh": (f"{zh}了怎么办", f"{zh}怎么逃生"), "en": (f"what to do in a {en}",)},
        keywords={"zh": (zh,), "en": (en,)}, related=(), sources=(),
        reviewed=dt.date(2026, 1, 1), call=call)


def _service(*entries: Entry) -> QAService:
    kb = KnowledgeBase({e.id: e for e in entries}, {}, Path("."))
    return QAService(kb, Matcher(kb), None, FakeClock())


# Two entries a burning-home message cannot tell apart, and the catch-all numbers entry.
_TWINS = (
    _entry("fire-a", "家里着火", "house fire", "Crawl low under the smoke.", ("119",)),
    _entry("fire-b", "家里着火", "house fire", "Close the door behind you.", ("119",)),
    _entry("emergency-numbers", "紧急电话", "emergency numbers", "Call 110, 119 or 120."),
)


def test_an_urgent_near_miss_gets_the_likely_topic_after_the_numbers() -> None:
    qa = _service(*_TWINS)
    reply = qa.reply_for("救命 家里着火了 我们出不去")
    assert reply.urgent
    assert reply.match.decision == "suggest"  # not sure enough for a calm question
    assert reply.kind == "answer"
    assert reply.entry is not None and reply.entry.id == reply.match.candidates[0].entry_id
    assert reply.call_first[0] == "119" and set(URGENT_NUMBERS) <= set(reply.call_first)
    # The other candidate stays one tap away.
    assert [e.id for e in reply.related] == [c.entry_id for c in reply.match.candidates[1:]]
    text = render_reply(reply)
    assert text.index("<b>119</b>") < text.index(reply.entry.answer["zh"])


def test_the_same_near_miss_without_urgency_stays_a_question() -> None:
    reply = _service(*_TWINS).reply_for("家里着火了怎么办")
    assert not reply.urgent
    assert reply.kind == "suggest" and reply.entry is None
    assert {e.id for e in reply.suggestions} == {"fire-a", "fire-b"}


def test_an_urgent_message_with_no_likely_topic_gets_the_emergency_numbers_entry() -> None:
    qa = _service(*_TWINS)
    reply = qa.reply_for("救命 我的猫卡在树上下不来了")
    assert reply.urgent
    assert not reply.match.candidates or (
        reply.match.candidates[0].score < qa.matcher.suggest_threshold)
    assert reply.entry is not None and reply.entry.id == "emergency-numbers"
