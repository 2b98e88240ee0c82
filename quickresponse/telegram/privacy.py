"""Data protection on Telegram: /forgetme deletes the resident's personal data after a confirm."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler

from quickresponse.errors import NotPermitted, StaleAction
from quickresponse.i18n import html_to_text, t
from quickresponse.privacy import ForgetReport
from quickresponse.telegram.codec import action, decode
from quickresponse.telegram.common import QRApplication, QRContext, edit_or_reply, reply, user_lang
from quickresponse.telegram.render import MAX_MESSAGE, button_text
from quickresponse.telegram.ticket_keyboards import staff_keyboard
from quickresponse.ticket_presenter import render_card

log = logging.getLogger(__name__)

COMMANDS: list[tuple[str, str]] = [("forgetme", "privacy.cmd.forgetme")]

# The user the question was put to (only they may answer it) and 1 = delete, 0 = keep.
FORGET = action("forgetme", int, int)


def forget_keyboard(user_id: int, lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(button_text(html_to_text(t("privacy.forget.button_confirm", lang))),
                             callback_data=FORGET.pack(user_id, 1)),
        InlineKeyboardButton(button_text(html_to_text(t("privacy.forget.button_cancel", lang))),
                             callback_data=FORGET.pack(user_id, 0)),
    ]])


def render_forgotten(report: ForgetReport, lang: str) -> str:
    if not report.anything:
        return t("privacy.forget.nothing", lang)
    parts = [t("privacy.forget.done", lang)]
    if report.tickets_anonymised:
        parts.append(t("privacy.forget.tickets_kept", lang, count=report.tickets_anonymised))
    if report.subscriptions:
        parts.append(t("privacy.forget.unsubscribed", lang))
    return "\n\n".join(parts)


async def offer_to_forget(update: Update, context: QRContext) -> None:
    """Explain what /forgetme deletes and what stays, and ask to confirm."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None:
        return
    lang = await user_lang(update, context)
    if chat.type != chat.PRIVATE:
        await reply(update, t("privacy.forget.private_only", lang))
        return
    await reply(update, t("privacy.forget.explain", lang), forget_keyboard(user.id, lang))


async def forget_me(update: Update, context: QRContext) -> None:
    """Delete the resident's personal data, or leave it, as they chose."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    _action, (asked, choice) = decode(query.data)
    if asked != user.id:
        raise NotPermitted("someone else's /forgetme button")
    if choice not in (0, 1):
        raise StaleAction("forgetme choice is 0 or 1")
    # Read before forgetting: the chosen language is part of what goes.
    lang = await user_lang(update, context)
    if choice == 0:
        await query.answer()
        await edit_or_reply(update, t("privacy.forget.cancelled", lang))
        return
    report = await context.services.privacy.forget(user.id)
    await query.answer()
    await edit_or_reply(update, render_forgotten(report, lang))
    for ticket_id in report.ticket_ids:
        await _anonymise_group_post(context, ticket_id)


async def _anonymise_group_post(context: QRContext, ticket_id: int) -> None:
    """Show the anonymised ticket on its card in the district group (the name, phone and words
    the card showed go with it); photos and locations posted beside it cannot be recalled."""
    services = context.services
    post = await services.tickets.group_post(ticket_id)
    if post is None:
        return
    lang = services.settings.default_language
    view = await services.tickets.view(ticket_id)
    text = t("privacy.card_head", lang) + "\n\n" + render_card(view, services.city, lang)
    if len(text) > MAX_MESSAGE:
        return
    try:
        await context.bot.edit_message_text(
            text, chat_id=post[0], message_id=post[1], parse_mode="HTML",
            disable_web_page_preview=True, reply_markup=staff_keyboard(view, lang))
    except BadRequest as exc:  # deleted, too old: nothing more to do
        log.info("could not anonymise the group card of ticket %s: %s", ticket_id, exc)


def register(app: QRApplication) -> None:
    app.add_handler(CommandHandler("forgetme", offer_to_forget))
    app.add_handler(CallbackQueryHandler(forget_me, pattern=FORGET.pattern))
