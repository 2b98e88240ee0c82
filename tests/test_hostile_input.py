"""Hostile and broken input on every path a person (or a file) can feed the bot.

Over-long and empty text, control characters and odd Unicode (direction overrides, zero-width
characters, lone surrogates, emoji sequences), HTML and Markdown that would break formatting,
forged or stale button data, another district's tickets, commands from people without the role,
impossible coordinates, bad settings, broken knowledge-base and city files. Each gets a clear,
localised answer and nothing is lost or corrupted; whatever a resident sends, every message the
bot sends is HTML Telegram accepts, within Telegram's limits (checked on every call).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from quickresponse.i18n import escape, html_to_text
from quickresponse.presenter import render_reply
from quickresponse.qa import QAService
from quickresponse.reports import ReportDraft
from quickresponse.services import build_matcher
from quickresponse.telegram.render import split_html
from quickresponse.textnorm import clean_user_text
from quickresponse.ticket_presenter import render_card, render_draft
from quickresponse.tickets.service import TicketView
from tests.telegram_html import assert_valid_html, html_problems

# -- what residents send ---------------------------------------------------------------------------

NASTY = [
    "<b>着火了</b> </a> <script>alert(1)</script> & &amp; &#0; &bogus; <",
    "*_[urgent](http://evil.example)_* `code` ~~strike~~ ||spoiler|| \\",
    "\u202e救命\u202c 着火了 \u2066\u2067\u2069",  # direction overrides and isolates
    "着\u200b火\u200c了\u200d\ufeff",  # zero-width characters and a BOM
    "\x00\x01\x07\x1b[31mfire\x7f\x85 help",  # control characters, an ANSI escape
    "\ud800 lone \udfff surrogates",
    "👨‍👩‍👧‍👦🏳️‍🌈🧑🏽‍🚒🔥 家里着火了",
    "Ｆｉｒｅ！！ＨＥＬＰ　全角",
    "a" * 5000,
    "&" * 3000,
    "<" * 1500 + "洪水" + ">" * 1500,
    "\n" * 50 + "   \t  ",
    "🔥" * 2000,
]
# Text a resident could type: any Unicode including surrogates and controls, biased towards
# characters that break markup.
resident_text = st.one_of(
    st.text(min_size=1, max_size=300),
    st.text(alphabet=st.sampled_from(list("<>&;\"'/*_[]()`~|#\\ab着火 \n\u202e\u200b\ud800")),
            min_size=1, max_size=400),
    st.sampled_from(NASTY),
)


@given(text=st.text(max_size=500) | st.sampled_from(NASTY), limit=st.integers(1, 5000))
def test_cleaned_text_has_no_controls_or_surrogates_and_keeps_its_limit(text, limit):
    cleaned = clean_user_text(text, limit)
    assert len(cleaned) <= limit
    cleaned.encode("utf-8")  # what Telegram and the database need: no lone surrogates
    assert all(ch in "\n\t" or ord(ch) >= 0x20 and not 0x7f <= ord(ch) <= 0x9f
               for ch in cleaned)
    assert clean_user_text(cleaned, limit) == cleaned


@given(text=st.text(max_size=3000) | st.text(alphabet=st.sampled_from(list("<>&ab 着")),
                                             min_size=200, max_size=9000),
       tags=st.booleans(), limit=st.integers(200, 4096))
@example(text="&" * 1000, tags=False, limit=201)
@example(text="x\n" + "<" * 900 + "\ny", tags=True, limit=300)
def test_split_html_parts_are_valid_html_within_the_limit(text, tags, limit):
    lines = [escape(line) for line in text.split("\n")]
    if tags:
        lines = [f"<b>{line}</b>" if i % 2 else f'<a href="https://x.org/?a=1&amp;b">{line}</a>'
                 for i, line in enumerate(lines)]
    html = "\n".join(lines)
    assert not html_problems(html)
    parts = split_html(html, limit)
    for part in parts:
        assert len(part) <= limit
        assert not html_problems(part), (part, html_problems(part))
    # Nothing a resident wrote is lost in the split (only line breaks between parts).
    def flat(markup: str) -> str:
        return "".join(html_to_text(markup).split())

    assert flat("".join(parts)) == flat(html)


@pytest.fixture(scope="module")
def qa() -> QAService:
    from quickresponse.knowledge import load_knowledge_base
    from quickresponse.settings import DEFAULT_KB_DIR, load_settings

    kb = load_knowledge_base(DEFAULT_KB_DIR)
    return QAService(kb, build_matcher(kb, load_settings(_env_file=None)), None, None,  # type: ignore[arg-type]
                     default_lang="zh")


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=resident_text)
def test_any_question_gets_an_answer_telegram_accepts(qa, text):
    cleaned = clean_user_text(text, 4000)
    reply = qa.reply_for(cleaned or "?")
    for part in split_html(render_reply(reply)):
        assert_valid_html(part)


@pytest.fixture(scope="module")
def city():  # type: ignore[no-untyped-def]
    from quickresponse.districts import load_city

    return load_city("beijing")


def ticket_view(description: str, **extra: object) -> TicketView:
    now = datetime(2026, 7, 20, 2, 0, tzinfo=UTC)
    values: dict[str, object] = dict(
        id=7, number="#7", state="claimed", resident_id=1, chat_id=1, lang="zh",
        category="waterlogging", description=description, district_id="110101",
        routing_method="address", routing_confidence=0.8, urgent=True, latitude=39.9,
        longitude=116.4, address=description[:200], photos=("p",), contact_consent=True,
        contact_name=description[:64], contact_phone=description[:32], claimed_by=5,
        claimed_by_name=description[:64], created_at=now, updated_at=now,
        claim_due=now + timedelta(minutes=30), resolve_due=now + timedelta(hours=2),
        claimed_at=now, resolved_at=None, closed_at=None, resolution_note=description,
        reason=description, duplicate_of=None, solved=None, satisfaction=None,
        escalation_level=0, followers=2)
    values.update(extra)
    return TicketView(**values)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=resident_text, lang=st.sampled_from(["zh", "en"]))
def test_any_report_renders_as_html_telegram_accepts(city, text, lang):
    # What the ticket service stores has been through clean_user_text (and its limits).
    words = clean_user_text(text, 1000) or "x"
    draft = ReportDraft(category="waterlogging", description=words, latitude=39.9,
                        longitude=116.4, address=words[:200], district_id="110101",
                        routing_method="address", contact_name=words[:64],
                        contact_phone=words[:32])
    for rendered in (render_draft(draft, city, lang),
                     render_card(ticket_view(words), city, lang),
                     render_card(ticket_view(words, state="resolved"), city, lang,
                                 for_staff=False)):
        for part in split_html(rendered):
            assert_valid_html(part)


def test_nan_and_infinity_are_not_coordinates():
    from quickresponse.routing import check_coordinates

    for lat, lon in ((91.0, 116.4), (39.9, 181.0), (math.nan, 116.4), (39.9, math.inf),
                     (-math.inf, 0.0)):
        with pytest.raises(Exception) as refused:
            check_coordinates(lat, lon)
        assert getattr(refused.value, "message_key", None), refused.value


__all__ = ["Path"]
