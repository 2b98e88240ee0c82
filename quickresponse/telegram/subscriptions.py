"""Residents choose their warnings on Telegram: /subscribe, /unsubscribe, /subscriptions.

A resident picks districts with toggle buttons (each tap is saved at once, so nothing is lost if
they never press "done") or shares a location while the picker is open; the district the point
falls in is subscribed. The picker is a DB-backed flow so that the location or a typed district
name that follows /subscribe reaches it even after a restart or on another bot process.
"""

from __future__ import annotations

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler

from quickresponse.alerts.subscriptions import SubscriptionService, SubscriptionView
from quickresponse.conversations import Conversation
from quickresponse.errors import QuickResponseError
from quickresponse.i18n import Lang, html_to_text, t
from quickresponse.telegram.codec import action as _action
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
from quickresponse.telegram.render import button_text
from quickresponse.textnorm import clean_user_text

COMMANDS: list[tuple[str, str]] = [
    ("subscribe", "subs.cmd.subscribe"),
    ("unsubscribe", "subs.cmd.unsubscribe"),
    ("subscriptions", "subs.cmd.subscriptions"),
]

FLOW = "subscribe"
# Open the district picker (from /start's offer or /subscriptions).
OPEN_PICKER = _action("sub_open")
# Toggle one district in the picker: district id.
TOGGLE_DISTRICT = _action("sub_t", str)
PICKER_DONE = _action("sub_done")
# /unsubscribe: one district, or everything.
DROP_DISTRICT = _action("unsub", str)
DROP_ALL = _action("unsub_all")
OPEN_UNSUBSCRIBE = _action("unsub_open")
# Typed district names longer than this are not names; they are questions.
MAX_NAME_CHARS = 40


# -- helpers: what a handler needs, no business rules -------------------------------------------

def _subscriptions(context: QRContext) -> SubscriptionService:
    return context.services.alerts.subscriptions


def _ids(update: Update) -> tuple[int, int]:
    """(chat id, user id) of the update; subscriptions belong to the chat."""
    chat = update.effective_chat
    user = update.effective_user
    assert chat is not None and user is not None
    return chat.id, user.id


def _args(update: Update) -> tuple[int | str, ...]:
    assert update.callback_query is not None
    _act, args = decode(update.callback_query.data)
    return args


def _button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(button_text(html_to_text(label)), callback_data=data)


def district_names(subs: SubscriptionService, district_ids: tuple[str, ...], lang: str) -> str:
    """The districts' names joined for a sentence (unknown ids are shown as they are)."""
    names = []
    for district_id in district_ids:
        try:
            names.append(subs.district(district_id).name(lang))
        except QuickResponseError:
            names.append(district_id)
    return ("、" if lang == "zh" else ", ").join(names)


def picker_keyboard(
    subs: SubscriptionService, view: SubscriptionView, lang: str
) -> InlineKeyboardMarkup:
    """Every district as a toggle (✅ when subscribed), two a row, then "done"."""
    chosen = set(view.district_ids)
    buttons = [
        _button(t("subs.button.district_on" if d.id in chosen else "subs.button.district_off",
                  lang, name=d.name(lang)), TOGGLE_DISTRICT.pack(d.id))
        for d in subs.districts()
    ]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button(t("subs.button.done", lang), PICKER_DONE.pack())])
    return InlineKeyboardMarkup(rows)


def location_keyboard(lang: str) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        [[KeyboardButton(html_to_text(t("subs.button.share_location", lang)),
                         request_location=True)]],
        resize_keyboard=True, one_time_keyboard=True,
    )


def unsubscribe_keyboard(
    subs: SubscriptionService, view: SubscriptionView, lang: str
) -> InlineKeyboardMarkup:
    rows = [[_button(t("subs.button.drop", lang, name=district_names(subs, (d,), lang)),
                     DROP_DISTRICT.pack(d))] for d in view.district_ids]
    rows.append([_button(t("subs.button.drop_all", lang), DROP_ALL.pack())])
    return InlineKeyboardMarkup(rows)


def render_subscriptions(subs: SubscriptionService, view: SubscriptionView, lang: str) -> str:
    """What the chat receives, in a few lines."""
    if not view.subscribed:
        return t("subs.list.none", lang)
    hazards = (t("subs.list.all_hazards", lang) if not view.hazards
               else ("、" if lang == "zh" else ", ").join(h.label(lang) for h in view.hazards))
    return "\n".join([
        t("subs.list.header", lang),
        t("subs.list.districts", lang, districts=district_names(subs, view.district_ids, lang)),
        t("subs.list.hazards", lang, hazards=hazards),
        t("subs.list.min_level", lang, level=view.min_level.label(lang)),
        "",
        t("subs.list.footer", lang),
    ])


def subscribe_offer_keyboard(lang: str) -> InlineKeyboardMarkup:
    """One button that opens the district picker (for /start's offer)."""
    return InlineKeyboardMarkup([[_button(t("subs.button.offer", lang), OPEN_PICKER.pack())]])


async def subscription_offer(
    update: Update, context: QRContext, lang: Lang
) -> InlineKeyboardMarkup | None:
    """The "choose districts" button for a private chat that has no warnings yet, else None.

    Shown under the confirmation of the language chosen after /start, so that every new
    resident is offered warnings once, right after the greeting.
    """
    chat = update.effective_chat
    if chat is None or chat.type != chat.PRIVATE:
        return None
    view = await _subscriptions(context).get(chat.id)
    return None if view.subscribed else subscribe_offer_keyboard(lang)


async def _only_in_private(update: Update, lang: Lang) -> bool:
    """Residents subscribe in their private chat with the bot; say so in a group."""
    chat = update.effective_chat
    if chat is not None and chat.type != chat.PRIVATE:
        await reply(update, t("subs.private_only", lang))
        return False
    return True


async def _show_picker(update: Update, context: QRContext, lang: Lang) -> None:
    chat_id, user_id = _ids(update)
    subs = _subscriptions(context)
    view = await subs.get(chat_id)
    await context.services.conversations.set(chat_id, user_id, Conversation(FLOW, "choose"))
    await reply(update, t("subs.picker.text", lang), picker_keyboard(subs, view, lang))
    await reply(update, t("subs.picker.location_hint", lang), location_keyboard(lang))


async def _finish(update: Update, context: QRContext, lang: Lang, lead: str) -> None:
    """End the picker flow and say what the chat now receives (removing the location key)."""
    chat_id, user_id = _ids(update)
    await context.services.conversations.clear(chat_id, user_id)
    subs = _subscriptions(context)
    view = await subs.get(chat_id)
    text = "\n\n".join(p for p in (lead, render_subscriptions(subs, view, lang)) if p)
    await reply(update, text, ReplyKeyboardRemove())  # type: ignore[arg-type]


# -- commands -----------------------------------------------------------------------------------

async def start_subscribing(update: Update, context: QRContext) -> None:
    """Show the district picker and ask for a location as the other way to pick."""
    lang = await user_lang(update, context)
    if await _only_in_private(update, lang):
        await _show_picker(update, context, lang)


async def start_unsubscribing(update: Update, context: QRContext) -> None:
    """Offer one button per subscribed district, and one for everything."""
    lang = await user_lang(update, context)
    if await _only_in_private(update, lang):
        await _show_unsubscribe(update, context, lang)


async def _show_unsubscribe(update: Update, context: QRContext, lang: Lang) -> None:
    chat_id, _user_id = _ids(update)
    subs = _subscriptions(context)
    view = await subs.get(chat_id)
    if not view.subscribed:
        await reply(update, t("subs.list.none", lang))
        return
    await reply(update, t("subs.unsubscribe.text", lang), unsubscribe_keyboard(subs, view, lang))


async def show_subscriptions(update: Update, context: QRContext) -> None:
    """Say which districts, hazards and levels the chat is warned about."""
    lang = await user_lang(update, context)
    if not await _only_in_private(update, lang):
        return
    chat_id, _user_id = _ids(update)
    subs = _subscriptions(context)
    view = await subs.get(chat_id)
    keyboard = subscribe_offer_keyboard(lang) if not view.subscribed else InlineKeyboardMarkup([
        [_button(t("subs.button.change", lang), OPEN_PICKER.pack()),
         _button(t("subs.button.unsubscribe", lang), OPEN_UNSUBSCRIBE.pack())],
    ])
    await reply(update, render_subscriptions(subs, view, lang), keyboard)


# -- buttons ------------------------------------------------------------------------------------

async def open_picker(update: Update, context: QRContext) -> None:
    """Open the district picker from a button."""
    assert update.callback_query is not None
    _args(update)
    lang = await user_lang(update, context)
    await update.callback_query.answer()
    if await _only_in_private(update, lang):
        await _show_picker(update, context, lang)


async def toggle_district(update: Update, context: QRContext) -> None:
    """Subscribe to or drop the tapped district and redraw the picker."""
    query = update.callback_query
    assert query is not None
    (district_id,) = _args(update)
    chat_id, _user_id = _ids(update)
    lang = await user_lang(update, context)
    subs = _subscriptions(context)
    name = subs.district(str(district_id)).name(lang)  # UnknownDistrict for forged ids
    if str(district_id) in (await subs.get(chat_id)).district_ids:
        view = await subs.unsubscribe(chat_id, [str(district_id)])
        note = t("subs.toggle.off", lang, name=name)
    else:
        view = await subs.subscribe(chat_id, [str(district_id)])
        note = t("subs.toggle.on", lang, name=name)
    await query.answer(html_to_text(note))
    try:
        await query.edit_message_reply_markup(picker_keyboard(subs, view, lang))
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise


async def close_picker(update: Update, context: QRContext) -> None:
    """Close the picker and summarise what the resident now receives."""
    query = update.callback_query
    assert query is not None
    _args(update)
    lang = await user_lang(update, context)
    await query.answer()
    try:
        await query.edit_message_reply_markup(None)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise
    await _finish(update, context, lang, t("subs.picker.saved", lang))


async def open_unsubscribe(update: Update, context: QRContext) -> None:
    """Offer the unsubscribe buttons from /subscriptions."""
    assert update.callback_query is not None
    _args(update)
    lang = await user_lang(update, context)
    await update.callback_query.answer()
    await _show_unsubscribe(update, context, lang)


async def drop_district(update: Update, context: QRContext) -> None:
    """Stop warnings for one district and redraw the remaining buttons."""
    query = update.callback_query
    assert query is not None
    (district_id,) = _args(update)
    chat_id, _user_id = _ids(update)
    lang = await user_lang(update, context)
    subs = _subscriptions(context)
    name = subs.district(str(district_id)).name(lang)
    view = await subs.unsubscribe(chat_id, [str(district_id)])
    await query.answer(html_to_text(t("subs.toggle.off", lang, name=name)))
    if view.subscribed:
        await edit_or_reply(update, "\n\n".join([
            t("subs.unsubscribe.text", lang), render_subscriptions(subs, view, lang)]),
            unsubscribe_keyboard(subs, view, lang))
    else:
        await edit_or_reply(update, t("subs.unsubscribe.all_done", lang))


async def drop_all(update: Update, context: QRContext) -> None:
    """Stop every warning for this chat."""
    query = update.callback_query
    assert query is not None
    _args(update)
    chat_id, _user_id = _ids(update)
    lang = await user_lang(update, context)
    await _subscriptions(context).unsubscribe(chat_id, None)
    await query.answer()
    await edit_or_reply(update, t("subs.unsubscribe.all_done", lang))


# -- the picker flow: a location or a typed district name ---------------------------------------

async def subscribe_by_location(update: Update, context: QRContext, _conv: Conversation) -> None:
    """Subscribe to the district the shared location falls in."""
    message = update.effective_message
    assert message is not None and message.location is not None
    lang = await user_lang(update, context)
    chat_id, _user_id = _ids(update)
    subs = _subscriptions(context)
    routing = context.services.router.route_location(
        message.location.latitude, message.location.longitude)
    if routing.district_id is None:
        key = "subs.location.outside" if routing.outside_city else "subs.location.unsure"
        view = await subs.get(chat_id)
        await reply(update, t(key, lang), picker_keyboard(subs, view, lang))
        return
    await subs.subscribe(chat_id, [routing.district_id])
    name = subs.district(routing.district_id).name(lang)
    lead = t("subs.location.found", lang, name=name)
    if routing.confirm or routing.near_boundary_outside:
        others = tuple(c for c in routing.candidates if c != routing.district_id)
        if others:
            lead += "\n" + t("subs.location.near_border", lang,
                             names=district_names(subs, others, lang))
    await _finish(update, context, lang, lead)


async def subscribe_by_name(update: Update, context: QRContext, conv: Conversation) -> None:
    """Subscribe to a district typed by name; anything else is a question for the Q&A."""
    message = update.effective_message
    assert message is not None and message.text is not None
    text = clean_user_text(message.text, MAX_NAME_CHARS * 4)
    lang = await user_lang(update, context)
    chat_id, user_id = _ids(update)
    subs = _subscriptions(context)
    district = None
    if 0 < len(text) <= MAX_NAME_CHARS:
        try:
            district = subs.city.find_district(text)
        except QuickResponseError:
            district = None
    if district is None:
        # Not a district: leave the picker and let the message be answered as a question, so a
        # resident who moved on to asking something is not stuck in the picker.
        await context.services.conversations.clear(chat_id, user_id)
        default = FLOWS.get("default:text")
        if default is not None and default.on_text is not None:
            await default.on_text(update, context, Conversation("", ""))
        return
    await subs.subscribe(chat_id, [district.id])
    await _finish(update, context, lang, t("subs.toggle.on", lang, name=district.name(lang)))


def register(app: QRApplication) -> None:
    app.add_handler(CommandHandler("subscribe", start_subscribing))
    app.add_handler(CommandHandler("unsubscribe", start_unsubscribing))
    app.add_handler(CommandHandler("subscriptions", show_subscriptions))
    for act, callback in (
        (OPEN_PICKER, open_picker),
        (TOGGLE_DISTRICT, toggle_district),
        (PICKER_DONE, close_picker),
        (DROP_DISTRICT, drop_district),
        (DROP_ALL, drop_all),
        (OPEN_UNSUBSCRIBE, open_unsubscribe),
    ):
        app.add_handler(CallbackQueryHandler(callback, pattern=act.pattern))
    register_flow(Flow(FLOW, on_text=subscribe_by_name, on_location=subscribe_by_location))
