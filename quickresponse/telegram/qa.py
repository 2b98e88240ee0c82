"""Residents' questions on Telegram: /start, /help, /lang, /topics, free text and its buttons."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler

from quickresponse.conversations import Conversation
from quickresponse.errors import StaleAction, StorageUnavailable, UnknownEntry
from quickresponse.i18n import Lang, normalise_lang, t
from quickresponse.knowledge import Entry
from quickresponse.presenter import (
    district_names,
    render_categories,
    render_entry,
    render_reply,
    topic_page,
)
from quickresponse.presenter import render_topic_page as render_page
from quickresponse.telegram import keyboards
from quickresponse.telegram.codec import decode
from quickresponse.telegram.common import (
    FLOWS,
    Flow,
    QRApplication,
    QRContext,
    edit_or_reply,
    register_flow,
    reply,
    user_lang,
)
from quickresponse.telegram.subscriptions import subscription_offer

log = logging.getLogger(__name__)

COMMANDS: list[tuple[str, str]] = [
    ("start", "qa.cmd.start"),
    ("help", "qa.cmd.help"),
    ("topics", "qa.cmd.topics"),
    ("lang", "qa.cmd.lang"),
]


# -- helpers: what a handler needs from an update, no business rules ----------------------------

async def _button_lang(update: Update, context: QRContext) -> Lang:
    """The user's chosen language, else the language of the message the button is on."""
    query = update.callback_query
    message = query.message if query is not None else None
    text = getattr(message, "text", None) or None
    return await user_lang(update, context, text)


def _args(update: Update) -> tuple[int | str, ...]:
    assert update.callback_query is not None
    _action, args = decode(update.callback_query.data)
    return args


def _entry(context: QRContext, entry_id: object) -> Entry:
    if not isinstance(entry_id, str) or entry_id not in context.services.kb:
        raise UnknownEntry(str(entry_id))
    return context.services.kb.get(entry_id)


# -- commands -----------------------------------------------------------------------------------

async def start(update: Update, context: QRContext) -> None:
    """Greet the resident, say what the bot does and offer the language choice."""
    user = update.effective_user
    if user is not None:
        await context.services.users.touch(user.id)
    lang = await user_lang(update, context)
    name = user.first_name if user is not None else ""
    text = "\n\n".join([
        t("qa.start.greeting", lang, name=name), t("qa.help.body", lang),
        t("qa.start.choose_lang", lang),
    ])
    await reply(update, text, keyboards.language_keyboard())


async def show_help(update: Update, context: QRContext) -> None:
    """Say what the bot can do and which numbers to call in an emergency."""
    await reply(update, t("qa.help.body", await user_lang(update, context)))


async def choose_language(update: Update, context: QRContext) -> None:
    """Offer the language buttons."""
    await reply(update, t("qa.lang.prompt", await user_lang(update, context)),
                keyboards.language_keyboard())


async def browse_topics(update: Update, context: QRContext) -> None:
    """Show the knowledge base's categories as buttons."""
    lang = await user_lang(update, context)
    await reply(update, render_categories(lang),
                keyboards.categories_keyboard(context.services.kb, lang))


# -- free text ----------------------------------------------------------------------------------

async def answer_question(update: Update, context: QRContext, _conv: Conversation) -> None:
    """Answer a free-text question from the knowledge base."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and message.text is not None
    # Seen: the resident is recorded as here and answered in the language they chose, in the
    # transaction that logs the question (without the database: in the message's language).
    answer = await context.services.qa.ask(user.id if user else None, message.text, seen=True)
    services = context.services
    text = render_reply(answer, tz=services.settings.tz,
                        place_name=district_names(services.city))
    if not answer.saved:
        text += "\n\n" + t("qa.not_saved", answer.lang)
    await reply(update, text, keyboards.answer_keyboard(answer))


async def ask_for_text(update: Update, context: QRContext, _conv: Conversation) -> None:
    """Tell the resident that questions are read as text."""
    await reply(update, t("qa.media.text_only", await user_lang(update, context)))


# -- buttons ------------------------------------------------------------------------------------

async def set_language(update: Update, context: QRContext) -> None:
    """Store the chosen language and confirm it in that language."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    (code,) = _args(update)
    lang = normalise_lang(str(code))
    if lang != code:
        raise StaleAction(f"unknown language {code!r}")
    await context.services.users.set_language(user.id, lang)
    await query.answer(t("qa.lang.set", lang))
    # Right after /start this is where a new resident is offered warnings for their district.
    await edit_or_reply(update, "\n\n".join([t("qa.lang.set", lang), t("qa.help.body", lang)]),
                        await subscription_offer(update, context, lang))


async def rate_answer(update: Update, context: QRContext) -> None:
    """Record 👍 / 👎 for the user's question and thank them on the buttons."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    question_id, helpful = _args(update)
    if helpful not in (0, 1):
        raise StaleAction("feedback is 0 or 1")
    await context.services.qa.record_feedback(user.id, int(question_id), helpful == 1)
    lang = await _button_lang(update, context)
    await query.answer(t("qa.feedback.thanks" if helpful else "qa.feedback.sorry", lang))
    # An old message may come back as InaccessibleMessage, which has no keyboard.
    markup = getattr(query.message, "reply_markup", None)
    try:
        await query.edit_message_reply_markup(keyboards.thanked(markup, lang))
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise


async def acknowledge_feedback(update: Update, context: QRContext) -> None:
    """Thank again when the thank-you button is pressed."""
    assert update.callback_query is not None
    _args(update)
    await update.callback_query.answer(
        t("qa.feedback.thanks", await _button_lang(update, context)))


async def open_entry(update: Update, context: QRContext) -> None:
    """Send the answer of a topic picked from an answer's buttons."""
    query = update.callback_query
    assert query is not None
    entry_id, question_id = _args(update)
    entry = _entry(context, entry_id)
    lang = await _button_lang(update, context)
    await query.answer()
    if int(question_id):
        user = update.effective_user
        try:
            await context.services.qa.record_choice(user.id if user else None,
                                                    int(question_id), entry.id)
        except StorageUnavailable:
            log.warning("the resident's choice of topic was not recorded (database away)")
    await reply(update, render_entry(entry, lang),
                keyboards.entry_keyboard(context.services.kb, entry, int(question_id), lang))


async def show_categories(update: Update, context: QRContext) -> None:
    """Show the categories in place of the current browsing message."""
    assert update.callback_query is not None
    _args(update)
    lang = await _button_lang(update, context)
    await update.callback_query.answer()
    await edit_or_reply(update, render_categories(lang),
                        keyboards.categories_keyboard(context.services.kb, lang))


async def show_category(update: Update, context: QRContext) -> None:
    """Show one page of a category's topics."""
    assert update.callback_query is not None
    category_id, page_number = _args(update)
    kb = context.services.kb
    if category_id not in kb.categories:
        raise UnknownEntry(str(category_id))
    lang = await _button_lang(update, context)
    page = topic_page(kb, str(category_id), int(page_number))
    await update.callback_query.answer()
    await edit_or_reply(update, render_page(page, lang), keyboards.topic_page_keyboard(page, lang))


async def show_topic(update: Update, context: QRContext) -> None:
    """Show a topic's answer while browsing, with a way back to its category."""
    assert update.callback_query is not None
    (entry_id,) = _args(update)
    entry = _entry(context, entry_id)
    lang = await _button_lang(update, context)
    await update.callback_query.answer()
    await edit_or_reply(update, render_entry(entry, lang),
                        keyboards.browse_entry_keyboard(context.services.kb, entry, lang))


async def explain_how_to_reach_staff(update: Update, context: QRContext) -> None:
    """Say how to reach the 12345 hotline and the emergency numbers."""
    assert update.callback_query is not None
    _args(update)
    lang = await _button_lang(update, context)
    await update.callback_query.answer()
    await reply(update, t("qa.staff.fallback", lang))


def register(app: QRApplication) -> None:
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("help", show_help))
    app.add_handler(CommandHandler("lang", choose_language))
    app.add_handler(CommandHandler("topics", browse_topics))
    for act, callback in (
        (keyboards.SET_LANGUAGE, set_language),
        (keyboards.FEEDBACK, rate_answer),
        (keyboards.FEEDBACK_GIVEN, acknowledge_feedback),
        (keyboards.OPEN_ENTRY, open_entry),
        (keyboards.BROWSE_CATEGORIES, show_categories),
        (keyboards.BROWSE_CATEGORY, show_category),
        (keyboards.BROWSE_ENTRY, show_topic),
        (keyboards.TALK_TO_STAFF, explain_how_to_reach_staff),
    ):
        app.add_handler(CallbackQueryHandler(callback, pattern=act.pattern))
    register_flow(Flow("default:text", on_text=answer_question))
    # Photos and locations outside a flow belong to the tickets feature when it is installed
    # (its module registers first); otherwise say that questions are read as text.
    for kind in ("photo", "location"):
        if f"default:{kind}" not in FLOWS:
            register_flow(Flow(f"default:{kind}", **{f"on_{kind}": ask_for_text}))
