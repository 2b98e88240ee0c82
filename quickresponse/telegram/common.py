"""What every handler module shares: the typed context, flows, language, errors."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Forbidden
from telegram.ext import Application, ApplicationHandlerStop, CallbackContext, ExtBot

from quickresponse.conversations import Conversation, ReadAhead
from quickresponse.errors import QuickResponseError, StorageUnavailable
from quickresponse.i18n import Lang, html_to_text, normalise_lang, t
from quickresponse.telegram.commands import Menus
from quickresponse.telegram.render import split_html
from quickresponse.textnorm import detect_language

if TYPE_CHECKING:
    from quickresponse.services import Services

log = logging.getLogger(__name__)


@dataclass
class BotData:
    """Application-wide data; ``services`` is set by the application factory."""

    services: Services = field(init=False)
    menus: Menus = field(init=False)  # the command list of each role


class QRContext(CallbackContext[ExtBot, dict, dict, BotData]):
    """The context every handler gets: ``context.services`` is the one way to the core."""

    # A routed message's conversation, read with its update id (app.skip_duplicate_update).
    conversation_ahead: ReadAhead | None = None

    @property
    def services(self) -> Services:
        return self.bot_data.services


# What a message can carry under it: buttons, a reply keyboard, or the removal of one.
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply
QRApplication = Application[ExtBot, QRContext, dict, dict, BotData, object]
Handler = Callable[[Update, QRContext], Awaitable[None]]
FlowHandler = Callable[[Update, QRContext, Conversation], Awaitable[None]]


@dataclass
class Flow:
    """A multi-step conversation whose state lives in the database (see conversations.py)."""

    name: str
    on_text: FlowHandler | None = None
    on_location: FlowHandler | None = None
    on_photo: FlowHandler | None = None


FLOWS: dict[str, Flow] = {}


def register_flow(flow: Flow) -> None:
    FLOWS[flow.name] = flow


async def user_lang(update: Update, context: QRContext, text: str | None = None) -> Lang:
    """The user's chosen language, else the language of ``text``, else their app's, else default."""
    services = context.services
    user = update.effective_user
    if user is not None:
        try:
            chosen = await services.users.language(user.id)
        except StorageUnavailable:
            chosen = None  # the database is away: fall back to what the message tells
        if chosen:
            return chosen
    default = services.settings.default_language
    if text:
        return normalise_lang(detect_language(text, default=default), default)
    if user is not None and user.language_code:
        return normalise_lang(user.language_code, default)
    return default


async def reply(
    update: Update,
    text: str,
    keyboard: Markup | None = None,
) -> None:
    """Send HTML ``text`` to the update's chat, split to Telegram's limit; keyboard on the last."""
    chat = update.effective_chat
    if chat is None:
        return
    parts = split_html(text)
    for i, part in enumerate(parts):
        markup = keyboard if i == len(parts) - 1 else None
        await send_html(update.get_bot(), chat.id, part, markup)


# What ``disable_web_page_preview=True`` becomes in a sendMessage call.
_NO_PREVIEW = {"is_disabled": True}
# Every attribute of a button but its text and callback data.
_OTHER_BUTTON_FIELDS = tuple(
    name for name in InlineKeyboardButton.__slots__ if name not in ("text", "callback_data"))


def _keyboard_data(keyboard: InlineKeyboardMarkup) -> dict[str, object]:
    """The keyboard as the Bot API takes it: what ``to_dict`` gives, built directly for the
    plain text-and-callback buttons nearly every keyboard here is made of (``to_dict`` cost six
    times as much, 0.09 ms for an answer's keyboard); any other button goes through
    ``to_dict``."""
    if not keyboard.inline_keyboard:
        return keyboard.to_dict()  # which leaves an empty list out
    rows = []
    for row in keyboard.inline_keyboard:
        cells: list[object] = []
        for button in row:
            if (type(button.callback_data) is str and not button.api_kwargs
                    and all(getattr(button, name) is None for name in _OTHER_BUTTON_FIELDS)):
                cells.append({"text": button.text, "callback_data": button.callback_data})
            else:
                cells.append(button.to_dict())
        rows.append(cells)
    return {"inline_keyboard": rows}


async def send_html(
    bot: Bot, chat_id: int, text: str, keyboard: Markup | None = None, *, paid: bool = False
) -> None:
    """``sendMessage`` with HTML ``text`` (at most one message's length), without turning
    Telegram's answer into a ``Message``; ``paid``: a paid broadcast (up to 1,000/s).

    Nothing here reads the message Telegram returns, and building a ``Message`` from it, with
    its keyboard, was a seventh of the CPU a resident's question cost (py-spy, ``python -m bench
    bot``). ``Bot._post`` is the path every ``Bot.send_*`` method takes (defaults, the rate
    limiter, errors raised as ``TelegramError``); only the parsing of the answer is left out.
    """
    await bot._post(
        "sendMessage",
        {"chat_id": chat_id, "text": text, "parse_mode": "HTML",
         "reply_markup": (_keyboard_data(keyboard) if isinstance(keyboard, InlineKeyboardMarkup)
                          else keyboard),
         "link_preview_options": _NO_PREVIEW,
         "allow_paid_broadcast": True if paid else None},
    )


async def edit_or_reply(
    update: Update, text: str, keyboard: InlineKeyboardMarkup | None = None
) -> None:
    """Edit the message a button was pressed on; send a new one if it can't be edited."""
    query = update.callback_query
    if query is not None and query.message is not None and len(text) <= 4096:
        try:
            await query.edit_message_text(text, parse_mode="HTML", reply_markup=keyboard,
                                          disable_web_page_preview=True)
            return
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return
    await reply(update, text, keyboard)


async def handle_error(update: object, context: QRContext) -> None:
    """Log the failure and tell the user, in their language, without a traceback."""
    await _report_error(update, context)
    if isinstance(update, Update):
        # One answer per update: later handler groups must not act on (or answer again) an
        # update whose handling failed, e.g. when its duplicate check could not be stored.
        raise ApplicationHandlerStop


async def _report_error(update: object, context: QRContext) -> None:
    error = context.error
    if isinstance(error, Forbidden):
        log.info("user blocked the bot: %s", type(error).__name__)
        return
    if isinstance(error, QuickResponseError):
        log.warning("handled error %s: %s", type(error).__name__, error.detail)
        key, params = error.message_key, error.params
    else:
        log.error("unhandled error while handling an update", exc_info=error)
        key, params = "error.generic", {}
    if not isinstance(update, Update):
        return
    try:
        lang = await user_lang(update, context)
    except Exception:  # noqa: BLE001 - the database may be the reason we are here
        user = update.effective_user
        lang = normalise_lang(user.language_code if user else None,
                              context.services.settings.default_language)
    # Errors carry the values their message shows (a ticket number, a length limit ...).
    message = t(key, lang, **params)
    if update.callback_query is not None:
        try:
            # Callback answers are plain text of at most 200 characters.
            await update.callback_query.answer(html_to_text(message)[:200], show_alert=True)
            return
        except BadRequest:
            pass
    if update.effective_chat is not None:
        try:
            await update.effective_chat.send_message(message, parse_mode="HTML")
        except Exception:  # noqa: BLE001 - nothing more we can do
            log.warning("could not send the error message")
