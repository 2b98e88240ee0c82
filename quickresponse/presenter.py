"""How residents read answers: a :class:`~quickresponse.qa.Reply` or a knowledge-base entry as
Telegram HTML.

Telegram, the console chat and the CLI all render through this module (the console and the CLI
pass the result through :func:`~quickresponse.i18n.html_to_text`), so a resident reads the same
words whichever way they ask. Everything curated or typed by a user is escaped here; only the
catalogue strings carry markup.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from quickresponse.clock import as_utc
from quickresponse.districts import City
from quickresponse.i18n import Html, escape, t
from quickresponse.knowledge import Category, Entry, KnowledgeBase, Source
from quickresponse.qa import MAX_QUESTION_CHARS, ActiveWarning, Reply

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
# Entries per page when browsing a category: a phone shows about this many buttons without
# scrolling, and the keyboard stays far below Telegram's limit on buttons per message.
TOPICS_PAGE_SIZE = 8
# (district id, language) -> the district's name; warnings carry district ids.
PlaceName = Callable[[str, str], str]
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def entry_title(entry: Entry, lang: str) -> str:
    """The entry's title in ``lang`` (plain text, for buttons and lists)."""
    return entry.title.get(lang) or entry.title["zh"]


def category_title(category: Category, lang: str) -> str:
    return category.title.get(lang) or category.title.get("zh") or category.id


def format_local_time(when: datetime, lang: str, tz: tzinfo = DEFAULT_TZ) -> str:
    """``7月20日 18:00`` / ``20 Jul 18:00`` in the city's time zone."""
    local = as_utc(when).astimezone(tz)
    clock = local.strftime("%H:%M")
    if lang == "zh":
        return f"{local.month}月{local.day}日 {clock}"
    return f"{local.day} {_MONTHS[local.month - 1]} {clock}"


def district_names(city: City) -> PlaceName:
    """Name districts as the city configuration does; an unknown id is shown as it is."""
    def name(district_id: str, lang: str) -> str:
        if city.has_district(district_id):
            return city.district(district_id).name(lang)
        return district_id

    return name


def _label(key: str, fallback: str, lang: str) -> str:
    """A catalogue label, or ``fallback`` when the catalogue has no such key."""
    text = t(key, lang)
    return fallback if text == key else html.unescape(text)


def render_warning(warning: ActiveWarning, lang: str, tz: tzinfo = DEFAULT_TZ,
                   place_name: PlaceName | None = None) -> str:
    """One line: hazard, level, districts and until when (the alerts feature names hazards)."""
    hazard = _label(f"alerts.hazard.{warning.hazard}", str(warning.hazard), lang)
    level = _label(f"alerts.level.{warning.level}", str(warning.level), lang)
    separator = "、" if lang == "zh" else ", "
    names = [place_name(d, lang) if place_name else d for d in warning.districts]
    districts = separator.join(names) or t("qa.warning.all_districts", lang)
    if warning.until is None:
        return t("qa.warning.banner_open", lang, hazard=hazard, level=level, districts=districts)
    return t("qa.warning.banner", lang, hazard=hazard, level=level, districts=districts,
             until=format_local_time(warning.until, lang, tz))


def render_call_first(numbers: Sequence[str], lang: str) -> str:
    """The emergency header: which numbers to call now, most relevant first."""
    lines = [t("qa.urgent.header", lang)]
    lines += [
        t("qa.urgent.number", lang, number=number, label=_label(f"qa.number.{number}", "", lang))
        .rstrip()
        for number in numbers
    ]
    lines.append(t("qa.urgent.then", lang))
    return "\n".join(lines)


def _source(source: Source) -> str:
    if source.url:
        return f'<a href="{html.escape(source.url, quote=True)}">{escape(source.title)}</a>'
    return escape(source.title)


def render_entry(entry: Entry, lang: str) -> str:
    """An entry as a resident reads it: title, answer, sources and the date it was reviewed."""
    separator = "；" if lang == "zh" else "; "
    sources = Html(separator.join(_source(s) for s in entry.sources))
    parts = [
        f"<b>{escape(entry_title(entry, lang))}</b>",
        "",
        escape(entry.answer.get(lang) or entry.answer["zh"]),
        "",
        t("qa.answer.sources", lang, sources=sources),
        t("qa.answer.reviewed", lang, date=entry.reviewed.isoformat()),
    ]
    return "\n".join(parts)


def render_suggestions(entries: Sequence[Entry], lang: str) -> str:
    lines = [t("qa.suggest.header", lang)]
    lines += [t("qa.suggest.item", lang, number=i, title=entry_title(entry, lang))
              for i, entry in enumerate(entries, 1)]
    lines.append(t("qa.suggest.footer", lang))
    return "\n".join(lines)


def render_reply(reply: Reply, *, tz: tzinfo = DEFAULT_TZ,
                 place_name: PlaceName | None = None) -> str:
    """The whole answer to a question, in the reply's language.

    Order matters for safety: warnings in force, then (when urgent) the numbers to call now,
    then the answer itself, a "did you mean" list, or an honest "I don't know".
    """
    lang = reply.lang
    blocks = [render_warning(w, lang, tz, place_name) for w in reply.warnings]
    if reply.urgent and reply.call_first:
        blocks.append(render_call_first(reply.call_first, lang))
    if reply.entry is not None:
        blocks.append(render_entry(reply.entry, lang))
    elif reply.suggestions:
        blocks.append(render_suggestions(reply.suggestions, lang))
    else:
        blocks.append(t("qa.none.body", lang))
        if not reply.urgent:
            blocks.append(t("qa.none.emergency", lang))
    if reply.truncated:
        blocks.append(t("qa.answer.truncated", lang, limit=MAX_QUESTION_CHARS))
    return "\n\n".join(blocks)


def next_topics(reply: Reply) -> tuple[Entry, ...]:
    """The topics a resident can open next: the suggestions of a near miss, else related ones."""
    return reply.suggestions if reply.entry is None else reply.related


def related_entries(kb: KnowledgeBase, entry: Entry) -> tuple[Entry, ...]:
    return tuple(kb.entries[r] for r in entry.related if r in kb)


# -- browsing by category ---------------------------------------------------------------------

@dataclass(frozen=True)
class TopicPage:
    """One page of a category's entries."""

    category: Category
    entries: tuple[Entry, ...]
    page: int
    pages: int


def categories_with_entries(kb: KnowledgeBase) -> list[tuple[Category, int]]:
    """Categories in the curator's order with how many entries each holds (empty ones left out)."""
    counts = [(category, len(kb.in_category(category.id))) for category in kb.categories.values()]
    return [(category, count) for category, count in counts if count]


def topic_page(kb: KnowledgeBase, category_id: str, page: int) -> TopicPage:
    """Page ``page`` (from 0, clamped to the pages there are) of a category's entries."""
    category = kb.categories[category_id]
    entries = sorted(kb.in_category(category_id), key=lambda e: e.id)
    pages = max(1, -(-len(entries) // TOPICS_PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    start = page * TOPICS_PAGE_SIZE
    return TopicPage(category, tuple(entries[start:start + TOPICS_PAGE_SIZE]), page, pages)


def page_of_entry(kb: KnowledgeBase, entry: Entry) -> int:
    """The page of its category on which ``entry`` is listed."""
    ids = sorted(e.id for e in kb.in_category(entry.category))
    return ids.index(entry.id) // TOPICS_PAGE_SIZE if entry.id in ids else 0


def render_categories(lang: str) -> str:
    return t("qa.topics.header", lang)


def render_topic_page(page: TopicPage, lang: str) -> str:
    text = t("qa.topics.category", lang, icon=page.category.icon,
             title=category_title(page.category, lang))
    if not page.entries:
        return f"{text}\n{t('qa.topics.empty', lang)}"
    if page.pages > 1:
        text += "\n" + t("qa.topics.page", lang, page=page.page + 1, pages=page.pages)
    return text
