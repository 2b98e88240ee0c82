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
from quickresponse.tickets.service import NewTicket, TicketView
from tests.conftest import ADMIN_ID
from tests.telegram_html import assert_calls_valid, assert_valid_html, html_problems
from tests.ticket_helpers import (
    DONGCHENG,
    DONGCHENG_GROUP,
    HAIDIAN,
    HAIDIAN_GROUP,
    NEIGHBOUR,
    RESIDENT,
    STAFF,
    TIANANMEN,
    Person,
    text_of,
    to,
    with_buttons,
)

HAIDIAN_STAFF = 2101

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
    assert all(ch in "\n\t" or (ord(ch) >= 0x20 and not 0x7f <= ord(ch) <= 0x9f)
               for ch in cleaned)
    assert not any(ch in cleaned for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2069\u200b")
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


async def count(services, model) -> int:  # type: ignore[no-untyped-def]
    from sqlmodel import func, select

    async def work(session):  # type: ignore[no-untyped-def]
        return int((await session.exec(select(func.count()).select_from(model))).one())

    return await services.db.run(work)


# -- through the real application ------------------------------------------------------------------

GENERIC = ("出了点问题", "something went wrong")


@pytest.fixture
def api(fake_api):  # type: ignore[no-untyped-def]
    """The fake Bot API; when the test ends, everything the bot sent is checked: valid HTML,
    within Telegram's limits, and never the "something went wrong" of an unhandled error."""
    yield fake_api
    assert_calls_valid(fake_api.calls)
    for call in fake_api.calls:
        shown = str(call.params.get("text") or call.params.get("caption") or "")
        assert not any(g in shown for g in GENERIC), f"an unhandled error answered {call}"


@pytest.fixture
async def districts(services):  # type: ignore[no-untyped-def]
    tickets = services.tickets
    await tickets.add_staff(None, STAFF, DONGCHENG, display_name="王芳")
    await tickets.add_staff(None, HAIDIAN_STAFF, HAIDIAN, display_name="赵敏")
    await tickets.link_group(ADMIN_ID, DONGCHENG, DONGCHENG_GROUP)
    await tickets.link_group(ADMIN_ID, HAIDIAN, HAIDIAN_GROUP)


async def test_hostile_questions_get_an_answer_or_a_clear_refusal(app, api, services):
    resident = Person(app, api, language_code="en")
    for text in NASTY:
        calls = await resident.send(text)
        answers = to(calls, RESIDENT, "sendMessage")
        assert answers, f"no answer to {text[:30]!r}"
        if not clean_user_text(text, 10).strip("\n\t "):
            assert "in words" in answers[-1].text
    fire = to(await resident.send("<b>家里着火了</b> *_[救命]"), RESIDENT, "sendMessage")
    assert "119" in fire[0].text and "<b>家里" not in fire[0].text
    stored = await services.qa.gaps(days=1, limit=100)
    for gap in stored:
        gap.text.encode("utf-8")
        assert "\u202e" not in gap.text and "\x00" not in gap.text


async def test_a_report_survives_hostile_text_captions_names_and_coordinates(
        app, api, services, districts):
    name = "<b>Evil</b> & </a> \u202eCo\ud800"
    resident = Person(app, api, first_name=name)
    calls = await resident.send("/report")
    calls = await resident.press(with_buttons(calls), "积水")
    # Too long: refused with the limit, the report stays at this step.
    calls = await resident.send("水" * 1001)
    assert "1000" in text_of(calls)
    calls = await resident.send(NASTY[0] + NASTY[2] + NASTY[4] + NASTY[5])
    assert "照片" in with_buttons(calls).text
    # A photo with a caption full of markup, then one with an empty caption.
    calls = await resident.send(photo_id="photo-1", caption="<i>看</i> & *这里*")
    calls = await resident.send(photo_id="photo-2", caption="")
    calls = await resident.press(with_buttons(calls), "照片已发完")
    assert "问题在哪里" in text_of(calls)
    for point in ((91.0, 116.4), (39.9, 181.0), (math.nan, 116.4), (math.inf, 0.0)):
        calls = await resident.send(location=point)
        assert to(calls, RESIDENT, "sendMessage"), point
        assert await services.conversations.get(RESIDENT, RESIDENT) is not None
    calls = await resident.send(location=TIANANMEN)
    calls = await resident.press(with_buttons(calls), "提供我的姓名")
    summary = with_buttons(calls)
    assert "&lt;b&gt;Evil" in summary.params["text"] or "Evil" in summary.text
    calls = await resident.press(summary, "提交")
    assert "#1" in text_of(to(calls, RESIDENT))
    card = to(calls, DONGCHENG_GROUP, "sendMessage")[0]
    assert "<script>" not in card.params["text"]
    view = await services.tickets.view(1)
    for stored in (view.description, view.contact_name or ""):
        stored.encode("utf-8")
        assert not any(ch in stored for ch in "\u202e\u202c\x00\x1b\ud800")
    assert view.latitude == TIANANMEN[0]


def forged_arguments(types: tuple[type, ...]) -> list[tuple[object, ...]]:
    ints: list[object] = [0, -1, 2**31, 2**62, 1]
    strs: list[object] = ["zz", "x" * 40, HAIDIAN, "..", "-"]
    if not types:
        return [()]
    pools = [ints if kind is int else strs for kind in types]
    return [tuple(pool[i % len(pool)] for pool in pools) for i in range(5)]


async def test_forged_buttons_are_refused_without_acting_or_crashing(app, api, services,
                                                                     districts):
    from quickresponse.alerts.models import Alert
    from quickresponse.telegram.codec import _ACTIONS
    from quickresponse.tickets.models import DistrictChat, Staff

    ticket = (await services.tickets.file(NewTicket(
        resident_id=NEIGHBOUR, lang="zh", category="manhole", description="路口井盖丢了",
        district_id=DONGCHENG, routing_method="location", latitude=TIANANMEN[0],
        longitude=TIANANMEN[1]))).ticket
    people = [
        Person(app, api, user_id=RESIDENT),  # a resident in their private chat
        Person(app, api, user_id=HAIDIAN_STAFF, chat_id=DONGCHENG_GROUP),  # the wrong district
    ]
    forged: list[str] = ["", "x", "nope:1", "forgetme", "fb:1:2:3", "fb:１:1", "e:火:1",
                         "sclaim:" + "9" * 25, "t:" + "a" * 60]
    for name, act in sorted(_ACTIONS.items()):
        forged += [":".join([name, *map(str, args)]) for args in forged_arguments(act.types)]
        forged.append(f"{name}:1:2:3:4")
    forged += [f"{act}:{ticket.id}" for act in ("sclaim", "sresolve", "sreject", "sdup",
                                                 "snote", "sxfer", "twd", "twdok", "tadd")]
    forged += [f"sxferto:{ticket.id}:{HAIDIAN}", f"tsolved:{ticket.id}:1",
               f"tsat:{ticket.id}:satisfied", "al_apr:1", "al_cxly:1"]
    for person in people:
        for data in forged:
            if len(data.encode()) > 64:
                continue  # Telegram itself refuses such buttons
            before = len(api.calls)
            await person.press_data(data)
            answers = [c for c in api.calls[before:] if c.method == "answerCallbackQuery"]
            assert len(answers) == 1, (data, [c.method for c in api.calls[before:]])

    after = await services.tickets.view(ticket.id)
    assert (after.state, after.claimed_by, after.district_id) == ("new", None, DONGCHENG)
    assert await count(services, Alert) == 0
    assert await count(services, Staff) == 2
    assert await count(services, DistrictChat) == 2


async def test_commands_from_people_without_the_role_change_nothing(app, api, services,
                                                                   districts):
    from quickresponse.alerts.models import Alert
    from quickresponse.telegram.app import handler_modules
    from quickresponse.tickets.models import DistrictChat, Staff

    ticket = (await services.tickets.file(NewTicket(
        resident_id=NEIGHBOUR, lang="en", category="manhole", description="manhole open",
        district_id=DONGCHENG, routing_method="location", latitude=TIANANMEN[0],
        longitude=TIANANMEN[1], contact_consent=True, contact_phone="13800138000"))).ticket
    commands = [name for module in handler_modules() for name, _ in module.COMMANDS]
    arguments = ["", " 99999999999999999999", " -1", f" {ticket.id}", " <b>x</b> & *_[",
                 f" add {RESIDENT} {DONGCHENG}", f" {DONGCHENG}", " \u202e\ud800", " #１"]
    people = [Person(app, api, user_id=RESIDENT, language_code="en"),
              Person(app, api, user_id=RESIDENT, chat_id=DONGCHENG_GROUP),
              Person(app, api, user_id=HAIDIAN_STAFF, chat_id=DONGCHENG_GROUP)]
    for person in people:
        for command in commands:
            for argument in arguments:
                calls = await person.send(f"/{command}{argument}")
                if command == "forgetme":
                    continue  # asks first; nothing happens without the confirmation
                assert calls or person.chat_id is not None, f"/{command}{argument}: silence"
                shown = text_of(calls)
                assert "13800138000" not in shown, f"/{command}{argument} showed a phone"
            await person.send("/cancel")
    after = await services.tickets.view(ticket.id)
    assert (after.state, after.claimed_by, after.district_id) == ("new", None, DONGCHENG)
    assert await count(services, Alert) == 0
    assert await count(services, Staff) == 2
    assert await count(services, DistrictChat) == 2


async def test_impossible_coordinates_outside_a_flow_are_refused(app, api, services):
    resident = Person(app, api, language_code="en")
    for point in ((91.0, 116.4), (-90.5, 0.0), (39.9, -181.0), (math.nan, math.nan),
                  (math.inf, 116.4)):
        calls = await resident.send(location=point)
        assert to(calls, RESIDENT, "sendMessage"), point
    from quickresponse.tickets.models import Ticket

    assert await count(services, Ticket) == 0


# -- settings, knowledge-base files, city files ----------------------------------------------------

@pytest.mark.parametrize(("name", "value"), [
    ("QR_QUESTION_RETENTION_DAYS", "0"),
    ("QR_QUESTION_RETENTION_DAYS", "-5"),
    ("QR_PERSONAL_DATA_RETENTION_DAYS", "abc"),
    ("QR_PERSONAL_DATA_RETENTION_DAYS", "99999"),
    ("QR_ADMIN_IDS", "1,<b>2</b>"),
    ("QR_WEBHOOK_SECRET", "short"),
    ("QR_WEBHOOK_SECRET", "has spaces and <tags> " * 2),
    ("QR_WEBHOOK_PORT", "70000"),
    ("QR_BROADCAST_RATE", "nan"),
    ("QR_BROADCAST_RATE", "1e9"),
    ("QR_ANSWER_THRESHOLD", "\u202e50"),
    ("QR_TIMEZONE", "../../etc/passwd"),
    ("QR_CITY", "../../../etc"),
    ("QR_CITY", "x" * 5000),
])
def test_a_bad_setting_is_refused_with_its_name(monkeypatch, name, value):
    from quickresponse.errors import ConfigError
    from quickresponse.settings import load_settings

    monkeypatch.setenv(name, value)
    try:
        settings = load_settings(_env_file=None)
    except ConfigError as exc:
        assert name in exc.detail and "\n" not in exc.detail
        return
    # A setting only checked where it is used must be refused there, just as clearly.
    assert name == "QR_CITY"
    from quickresponse.districts import load_city

    with pytest.raises(ConfigError) as refused:
        load_city(settings.city)
    assert "QR_CITY" in refused.value.detail or "city.yaml" in refused.value.detail


def test_a_city_name_with_a_nul_byte_is_refused_clearly():
    from quickresponse.districts import load_city
    from quickresponse.errors import ConfigError

    with pytest.raises(ConfigError, match="QR_CITY"):
        load_city("bei\x00jing")


ENTRY = """id: {id}
category: basics
title: {{zh: "{title}", en: "{title}"}}
answer:
  zh: "{answer}"
  en: "{answer}"
examples:
  zh: [报警电话是多少, 急救电话是什么, 紧急电话有哪些]
  en: [what is the police number, which number for an ambulance, list of emergency numbers]
keywords: {{zh: [报警电话], en: [emergency number]}}
sources:
  - {{title: "Handbook <b> & </a>", url: "https://example.org/?a=1&b=<2>"}}
reviewed: 2026-11-29
"""


def write_kb(directory, entries: dict[str, str | bytes]):  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    directory.mkdir()
    (directory / "categories.yaml").write_bytes(
        (FIXTURES / "kb_small" / "categories.yaml").read_bytes())
    for name, content in entries.items():
        path = directory / f"{name}.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return directory


def test_broken_knowledge_base_files_are_reported_not_crashed_on(tmp_path):
    from quickresponse.knowledge import check_knowledge_base

    directory = write_kb(tmp_path / "kb", {
        "not-utf8": b"id: not-utf8\ncategory: basics\ntitle: {zh: \xff\xfe, en: x}\n",
        "nul": "id: nul\x00\ncategory: basics\n",
        "empty": "",
        "a-list": "- just\n- a list\n",
        "deep": "id: deep\nanswer: " + "[" * 5000 + "]" * 5000 + "\n",
        "good": ENTRY.format(id="good", title="报警电话", answer="报警 110"),
    })
    _kb, problems = check_knowledge_base(directory)
    named = {problem.path for problem in problems}
    assert {"not-utf8.yaml", "nul.yaml", "empty.yaml", "a-list.yaml", "deep.yaml"} <= named
    assert "good.yaml" not in named


def test_markup_in_knowledge_base_texts_is_shown_as_text(tmp_path):
    from quickresponse.knowledge import check_knowledge_base
    from quickresponse.presenter import render_entry

    directory = write_kb(tmp_path / "kb", {
        "markup": ENTRY.format(id="markup", title="<b>报警 & </a>",
                               answer="拨打 <b>110</b> & 说清 </a> *地址* " + "&" * 2900),
    })
    kb, problems = check_knowledge_base(directory)
    assert problems == []
    entry = kb.get("markup")
    for lang in ("zh", "en"):
        rendered = render_entry(entry, lang)
        assert "&lt;b&gt;110&lt;/b&gt;" in rendered
        for part in split_html(rendered):
            assert_valid_html(part)


def copy_city(tmp_path, edit) -> Path:  # type: ignore[no-untyped-def]
    import shutil

    from quickresponse.districts import city_directory

    target = tmp_path / "city"
    shutil.copytree(city_directory("beijing"), target)
    path = target / "city.yaml"
    path.write_bytes(edit(path.read_bytes()))
    return target


@pytest.mark.parametrize("edit", [
    lambda raw: b"\xff\xfe" + raw,
    lambda raw: raw.replace(b"id: waterlogging", b"id: <b>waterlogging"),
    lambda raw: raw.replace(b"claim: 30m", b"claim: soon"),
    lambda raw: raw.replace(b"boundaries_file:", b"boundaries_file: ../../../etc/passwd #"),
    lambda raw: b"",
    lambda raw: b"- a\n- list\n",
    lambda raw: raw + b"\nsla: [\n",
], ids=["not-utf8", "markup-in-id", "bad-duration", "boundaries-elsewhere", "empty", "list",
        "broken-yaml"])
def test_broken_city_files_are_refused_with_a_clear_error(tmp_path, edit):
    from quickresponse.districts import load_city
    from quickresponse.errors import ConfigError
    from quickresponse.routing import Router

    directory = copy_city(tmp_path, edit)
    with pytest.raises(ConfigError) as refused:
        Router(load_city(str(directory)))
    assert "city" in str(refused.value.detail) or "boundaries" in str(refused.value.detail)


def test_impossible_district_boundaries_are_refused(tmp_path):
    import json

    from quickresponse.districts import load_city
    from quickresponse.errors import ConfigError
    from quickresponse.routing import Router

    directory = copy_city(tmp_path, lambda raw: raw)
    path = directory / "districts.geojson"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["features"][0]["geometry"] = {"type": "Polygon",
                                       "coordinates": [[[0, 91], [1, 91], [1, 92], [0, 91]]]}
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError):
        Router(load_city(str(directory)))


async def test_warning_texts_with_markup_reach_residents_as_text(services):
    from quickresponse.alerts.errors import AlertTextInvalid
    from quickresponse.alerts.hazards import Hazard, Level
    from quickresponse.alerts.service import MAX_TEXT_CHARS, AlertDraft

    def draft(text: str) -> AlertDraft:
        return AlertDraft(hazard=Hazard.RAINSTORM, level=Level.RED, district_ids=None,
                          text_zh=text, text_en=text,
                          expires_at=services.clock.now() + timedelta(hours=3))

    # The most a warning may hold once escaped, to every district: still one message.
    longest = "<b>撤离</b> & </a> *立即* \u202e"
    longest += "&" * ((MAX_TEXT_CHARS - len(escape(longest))) // 5)
    view = await services.alerts.compose(ADMIN_ID, draft(longest))
    for lang in ("zh", "en"):
        html = services.alerts.message_html(view, lang)
        assert "&lt;b&gt;撤离" in html and "\u202e" not in html  # no direction override
        assert_valid_html(html)
    # Longer than that once escaped is refused when composing, not failed for every recipient.
    with pytest.raises(AlertTextInvalid):
        await services.alerts.compose(ADMIN_ID, draft(longest + "&"))
