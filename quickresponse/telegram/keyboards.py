"""Inline keyboards of the resident Q&A, and the button actions they carry.

Every button's data goes through the one codec (``codec.action``); the handlers in ``qa.py``
decode it again. Entry and category ids travel as text arguments; they are at most 40
characters (the codec's limit), which keeps every button within Telegram's 64 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from quickresponse.i18n import LANGS, html_to_text, t
from quickresponse.knowledge import Entry, KnowledgeBase
from quickresponse.presenter import (
    TopicPage,
    categories_with_entries,
    category_title,
    entry_title,
    next_topics,
    page_of_entry,
)
from quickresponse.qa import Reply
from quickresponse.telegram.codec import InvalidCallback, decode
from quickresponse.telegram.codec import action as _action
from quickresponse.telegram.render import button_text

# Talk to staff about a question (its id, 0 when there is none). The tickets feature handles it
# in a module registered before qa.py; qa.py's handler is the fallback that points to 12345.
TALK_TO_STAFF = _action("staff", int)
# Under an urgent answer: log the emergency asked about (question id) as an urgent ticket at once.
URGENT_CALL = _action("sos", int)
SET_LANGUAGE = _action("lang", str)
# 👍 / 👎 on the answer to a question: question id, 1 helpful / 0 not helpful.
FEEDBACK = _action("fb", int, int)
FEEDBACK_GIVEN = _action("fbdone")
# Open an entry as a new answer: entry id, the question it follows up (0 when none).
OPEN_ENTRY = _action("e", str, int)
# Browsing with /topics edits one message: categories -> a category's page -> an entry.
BROWSE_CATEGORIES = _action("cats")
BROWSE_CATEGORY = _action("cat", str, int)
BROWSE_ENTRY = _action("t", str)


def _button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(button_text(html_to_text(label)), callback_data=data)


def language_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        _button(t(f"qa.lang.button_{lang}", lang), SET_LANGUAGE.pack(lang)) for lang in LANGS
    ]])


def _feedback_row(question_id: int, lang: str) -> list[InlineKeyboardButton]:
    return [
        _button(t("qa.button.helpful", lang), FEEDBACK.pack(question_id, 1)),
        _button(t("qa.button.not_helpful", lang), FEEDBACK.pack(question_id, 0)),
    ]


def _entry_rows(entries: Iterable[Entry], question_id: int, lang: str
                ) -> list[list[InlineKeyboardButton]]:
    return [[_button("🔹 " + entry_title(e, lang), OPEN_ENTRY.pack(e.id, question_id))]
            for e in entries]


def _staff_row(question_id: int, lang: str) -> list[InlineKeyboardButton]:
    return [_button(t("qa.button.staff", lang), TALK_TO_STAFF.pack(question_id))]


def answer_keyboard(reply: Reply) -> InlineKeyboardMarkup:
    """Buttons under an answer: feedback, the topics to open next, browse, talk to staff."""
    lang = reply.lang
    question_id = reply.question_id or 0
    rows: list[list[InlineKeyboardButton]] = []
    if reply.urgent and question_id:
        # After "call 110/119/120 now": one tap also tells staff (it does not replace the call).
        rows.append([_button(t("qa.button.urgent_call", lang), URGENT_CALL.pack(question_id))])
    if reply.entry is not None and question_id:
        rows.append(_feedback_row(question_id, lang))
    rows += _entry_rows(next_topics(reply), question_id, lang)
    if reply.entry is None:
        rows.append([_button(t("qa.button.topics", lang), BROWSE_CATEGORIES.pack())])
    rows.append(_staff_row(question_id, lang))
    return InlineKeyboardMarkup(rows)


def entry_keyboard(kb: KnowledgeBase, entry: Entry, question_id: int, lang: str
                   ) -> InlineKeyboardMarkup:
    """Buttons under an entry opened from an answer's buttons."""
    rows: list[list[InlineKeyboardButton]] = []
    if question_id:
        rows.append(_feedback_row(question_id, lang))
    related = [kb.entries[r] for r in entry.related if r in kb]
    rows += _entry_rows(related, question_id, lang)
    rows.append(_staff_row(question_id, lang))
    return InlineKeyboardMarkup(rows)


def thanked(markup: InlineKeyboardMarkup | None, lang: str) -> InlineKeyboardMarkup:
    """The same keyboard with its 👍 / 👎 row replaced by a thank-you."""
    thanks = [_button(t("qa.button.thanks", lang), FEEDBACK_GIVEN.pack())]
    rows: list[list[InlineKeyboardButton]] = []
    replaced = False
    for row in markup.inline_keyboard if markup else ():
        if any(_is_action(b, FEEDBACK.name) for b in row):
            if not replaced:
                rows.append(thanks)
                replaced = True
            continue
        rows.append(list(row))
    if not replaced:
        rows.insert(0, thanks)
    return InlineKeyboardMarkup(rows)


def _is_action(button: InlineKeyboardButton, name: str) -> bool:
    data = button.callback_data
    if not isinstance(data, str):
        return False
    try:
        act, _ = decode(data)
    except InvalidCallback:
        return False
    return act.name == name


# -- /topics ------------------------------------------------------------------------------------

def categories_keyboard(kb: KnowledgeBase, lang: str) -> InlineKeyboardMarkup:
    """One button per category that has entries, two to a row."""
    buttons = [
        _button(t("qa.button.category", lang, icon=category.icon,
                  title=category_title(category, lang), count=count).strip(),
                BROWSE_CATEGORY.pack(category.id, 0))
        for category, count in categories_with_entries(kb)
    ]
    return InlineKeyboardMarkup(_rows(buttons, 2))


def topic_page_keyboard(page: TopicPage, lang: str) -> InlineKeyboardMarkup:
    """A category's entries on this page, paging buttons, and the way back to all categories."""
    rows = [[_button(entry_title(e, lang), BROWSE_ENTRY.pack(e.id))] for e in page.entries]
    paging = []
    if page.page > 0:
        paging.append(_button(t("qa.button.previous", lang),
                              BROWSE_CATEGORY.pack(page.category.id, page.page - 1)))
    if page.page < page.pages - 1:
        paging.append(_button(t("qa.button.next", lang),
                              BROWSE_CATEGORY.pack(page.category.id, page.page + 1)))
    if paging:
        rows.append(paging)
    rows.append([_button(t("qa.button.all_categories", lang), BROWSE_CATEGORIES.pack())])
    return InlineKeyboardMarkup(rows)


def browse_entry_keyboard(kb: KnowledgeBase, entry: Entry, lang: str) -> InlineKeyboardMarkup:
    """Under an entry opened from /topics: related entries, back to its category, staff."""
    rows = [[_button("🔹 " + entry_title(kb.entries[r], lang), BROWSE_ENTRY.pack(r))]
            for r in entry.related if r in kb]
    rows.append([_button(t("qa.button.back", lang),
                         BROWSE_CATEGORY.pack(entry.category, page_of_entry(kb, entry)))])
    rows.append(_staff_row(0, lang))
    return InlineKeyboardMarkup(rows)


def _rows(buttons: Sequence[InlineKeyboardButton], width: int
          ) -> list[list[InlineKeyboardButton]]:
    return [list(buttons[i:i + width]) for i in range(0, len(buttons), width)]
