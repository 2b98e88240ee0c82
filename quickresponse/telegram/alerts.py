"""Admins' warnings on Telegram: the /alert wizard, /alerts and its buttons, broadcast progress.

The wizard is a DB-backed flow (``alert``): every step is stored in ``conversation_state`` so that
an admin can continue after a restart or on another bot process. Buttons of a step are only
accepted while the flow is at that step, so an old or forged button cannot skip one. Nothing is
sent until the admin confirms a preview that shows the exact messages and the number of
recipients; the core then schedules, approves, sends and records each delivery.

:func:`attach_delivery` connects the core's broadcaster to this bot: the Telegram sender, one
progress message per broadcast (edited as it goes) and the admins' notices (approval needed,
sent late, missed, finished).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler, CommandHandler

from quickresponse.alerts.service import (
    MAX_TEXT_CHARS,
    AdminNotice,
    AlertDraft,
    AlertError,
    AlertService,
    AlertState,
    AlertView,
    DeliveryStats,
    Hazard,
    Level,
    Preview,
)
from quickresponse.clock import as_utc
from quickresponse.conversations import Conversation
from quickresponse.errors import InvalidInput, NotPermitted, QuickResponseError, StaleAction
from quickresponse.i18n import Html, Lang, escape, html_to_text, normalise_lang, t
from quickresponse.presenter import format_local_time
from quickresponse.telegram.codec import action as _action
from quickresponse.telegram.codec import decode
from quickresponse.telegram.common import (
    Flow,
    QRApplication,
    QRContext,
    edit_or_reply,
    register_flow,
    reply,
    user_lang,
)
from quickresponse.telegram.render import MAX_MESSAGE, button_text
from quickresponse.textnorm import clean_user_text

log = logging.getLogger(__name__)

# In the admins' menus only (see telegram/commands.py); each command checks the role.
COMMANDS: list[tuple[str, str]] = []
ADMIN_COMMANDS: list[tuple[str, str]] = [
    ("alert", "alertui.cmd.alert"),
    ("alerts", "alertui.cmd.alerts"),
]

FLOW = "alert"
# How many alerts /alerts shows (most recent first): one keyboard row each stays readable.
LIST_LIMIT = 10
# "When" buttons: minutes from now (0 = now). "Until" buttons: hours after sending.
WHEN_MINUTES = (0, 10, 30, 60, 120)
UNTIL_HOURS = (3, 6, 12, 24)
# The progress message is edited at most this often, or when this share more is done.
PROGRESS_EVERY_SECONDS = 2.0
PROGRESS_EVERY_SHARE = 0.05

# Wizard buttons.
PICK_HAZARD = _action("al_hz", str)
PICK_LEVEL = _action("al_lv", str)
TOGGLE_AREA = _action("al_ar", str)
ALL_AREAS = _action("al_all")
AREAS_DONE = _action("al_arok")
USE_TEXTS = _action("al_use")
EDIT_TEXT = _action("al_ed", str)
PICK_WHEN = _action("al_at", int)
PICK_UNTIL = _action("al_till", int)
CONFIRM = _action("al_ok")
ABORT = _action("al_x")
# /alerts buttons: alert id.
CANCEL_ALERT = _action("al_cxl", int)
CANCEL_SURE = _action("al_cxly", int)
UPDATE_ALERT = _action("al_upd", int)
ALL_CLEAR = _action("al_clr", int)
APPROVE_ALERT = _action("al_apr", int)
SEND_CAP = _action("al_cap", int)
REFRESH_LIST = _action("al_list")


# -- helpers: what a handler needs, no business rules -------------------------------------------

def _alerts(context: QRContext) -> AlertService:
    return context.services.alerts


def _tz(context: QRContext) -> ZoneInfo:
    return context.services.settings.tz


def _args(update: Update) -> tuple[int | str, ...]:
    assert update.callback_query is not None
    _act, args = decode(update.callback_query.data)
    return args


def _ids(update: Update) -> tuple[int, int]:
    chat = update.effective_chat
    user = update.effective_user
    assert chat is not None and user is not None
    return chat.id, user.id


def _button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(button_text(html_to_text(label)), callback_data=data)


def _when(value: str | None) -> datetime | None:
    return None if value is None else as_utc(datetime.fromisoformat(value))


def _require_admin(context: QRContext, update: Update) -> int:
    user = update.effective_user
    if user is None or not _alerts(context).is_admin(user.id):
        raise NotPermitted("alerts are for admins")
    return user.id


def error_text(error: QuickResponseError, lang: str) -> str:
    """The error's localised message; its parameters fill the placeholders when it has them."""
    try:
        return t(error.message_key, lang, **error.params)
    except (KeyError, IndexError):
        return t("alertui.error.failed", lang)


def _friendly(
    handler: Callable[[Update, QRContext], Awaitable[None]],
) -> Callable[[Update, QRContext], Awaitable[None]]:
    """Tell the admin what was wrong with their input or choice and keep the wizard where it is.

    Other errors go on to the application's error handler.
    """
    @wraps(handler)
    async def wrapped(update: Update, context: QRContext) -> None:
        try:
            await handler(update, context)
        except (AlertError, InvalidInput) as exc:
            lang = await user_lang(update, context)
            text = error_text(exc, lang)
            if update.callback_query is not None:
                await update.callback_query.answer(html_to_text(text)[:190], show_alert=True)
            else:
                await reply(update, "⚠️ " + text)

    return wrapped


def district_list(service: AlertService, district_ids: tuple[str, ...] | list[str],
                  all_districts: bool, lang: str) -> str:
    if all_districts:
        return t("alertui.all_districts", lang)
    names = []
    for district_id in district_ids:
        try:
            names.append(service.subscriptions.district(district_id).name(lang))
        except QuickResponseError:
            names.append(district_id)
    return ("、" if lang == "zh" else ", ").join(names)


def alert_title(alert: AlertView, lang: str) -> str:
    """``#5 🟠 暴雨橙色预警`` / ``#5 🟠 Orange Rainstorm warning``."""
    return t("alertui.title", lang, emoji=alert.level.emoji, level=alert.level.label(lang),
             hazard=alert.hazard.label(lang), id=alert.id)


# -- typed times --------------------------------------------------------------------------------

_RELATIVE = re.compile(
    r"^\+?\s*(\d{1,5})\s*(m|min|mins|minute|minutes|分|分钟|h|hr|hrs|hour|hours|小时|个小时)?$")
_CLOCK = re.compile(r"^(\d{1,2})[:：](\d{2})$")
_FULL = re.compile(
    r"^(?:(\d{4})[-/.年])?(\d{1,2})[-/.月](\d{1,2})日?\s*[ t]?\s*(\d{1,2})[:：](\d{2})$")
_NOW = {"now", "现在", "立即", "马上", "立刻"}
MAX_AHEAD = timedelta(days=14)


def parse_time(text: str, *, now: datetime, after: datetime, tz: ZoneInfo,
               bare_unit: str) -> datetime:
    """A time an admin typed, as aware UTC.

    ``now`` / 现在; ``+30`` or ``30 min`` / ``2h`` (relative to ``after``; a bare number is in
    ``bare_unit``, "minutes" or "hours"); ``HH:MM`` (the next such local time after ``after``);
    ``[YYYY-]MM-DD HH:MM`` (local). Raises :class:`InvalidInput` for anything else.
    """
    value = unicodedata.normalize("NFKC", text).strip().lower()
    if value in _NOW:
        return now
    if match := _RELATIVE.match(value):
        amount, unit = int(match.group(1)), match.group(2) or bare_unit
        hours = unit.startswith(("h", "小", "个"))
        return after + (timedelta(hours=amount) if hours else timedelta(minutes=amount))
    local_after = after.astimezone(tz)
    if match := _CLOCK.match(value):
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour > 23 or minute > 59:
            raise InvalidInput("no such time of day")
        candidate = local_after.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if candidate <= local_after:
            candidate += timedelta(days=1)
        return as_utc(candidate)
    if match := _FULL.match(value):
        year = int(match.group(1) or local_after.year)
        try:
            local = datetime(year, int(match.group(2)), int(match.group(3)),
                             int(match.group(4)), int(match.group(5)), tzinfo=tz)
        except ValueError:
            raise InvalidInput("no such date") from None
        return as_utc(local)
    raise InvalidInput("not a time")


class TimeNotUnderstood(InvalidInput):
    """A typed send or end time that is not in one of the accepted forms."""

    message_key = "alertui.error.time_format"


class TimeNotPossible(InvalidInput):
    """A send time in the past, or an end before the send time or too far ahead."""

    message_key = "alertui.error.time_range"


# -- the wizard's data --------------------------------------------------------------------------

@dataclass
class Wizard:
    """What an admin has chosen so far, as stored in the conversation."""

    mode: str = "alert"  # alert | update | clear
    ref: int | None = None  # the original of an update or all-clear
    hazard: str | None = None
    level: str | None = None
    all_districts: bool = True
    districts: list[str] = field(default_factory=list)
    zh: str | None = None
    en: str | None = None
    send_at: str | None = None  # ISO, UTC; None = now
    expires_at: str | None = None
    draft: int | None = None  # the alert composed for the preview

    @classmethod
    def of(cls, conversation: Conversation) -> Wizard:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in conversation.data.items() if k in known})

    def data(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @property
    def hazard_value(self) -> Hazard:
        assert self.hazard is not None
        return Hazard(self.hazard)

    @property
    def level_value(self) -> Level:
        assert self.level is not None
        return Level(self.level)


async def _load(update: Update, context: QRContext, *steps: str) -> tuple[Conversation, Wizard]:
    """The admin's wizard, which must be at one of ``steps``; otherwise the button is stale."""
    chat_id, user_id = _ids(update)
    _require_admin(context, update)
    conversation = await context.services.conversations.get(chat_id, user_id)
    if conversation is None or conversation.flow != FLOW or conversation.step not in steps:
        raise StaleAction("wizard button out of step")
    return conversation, Wizard.of(conversation)


async def _save(update: Update, context: QRContext, step: str, wizard: Wizard) -> None:
    chat_id, user_id = _ids(update)
    await context.services.conversations.set(
        chat_id, user_id, Conversation(FLOW, step, wizard.data()))


async def _show(update: Update, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
    """Edit the wizard's message after a button, or send a new one after typed input."""
    if update.callback_query is not None:
        await update.callback_query.answer()
    await edit_or_reply(update, text, keyboard)


def _abort_row(lang: str) -> list[InlineKeyboardButton]:
    return [_button(t("alertui.button.abort", lang), ABORT.pack())]


def _header(wizard: Wizard, lang: str) -> str:
    """The choices so far, one line each, above every step's question."""
    lines = [t(f"alertui.wizard.heading_{wizard.mode}", lang, ref=wizard.ref or "")]
    if wizard.hazard:
        lines.append(t("alertui.wizard.hazard", lang, hazard=wizard.hazard_value.label(lang)))
    if wizard.level:
        level = wizard.level_value
        lines.append(t("alertui.wizard.level", lang, emoji=level.emoji, level=level.label(lang)))
    return "\n".join(lines)


# -- steps: each shows its question and buttons -------------------------------------------------

async def _ask_hazard(update: Update, context: QRContext, wizard: Wizard, lang: Lang) -> None:
    await _save(update, context, "hazard", wizard)
    buttons = [_button(h.label(lang), PICK_HAZARD.pack(h.value)) for h in Hazard]
    rows = [buttons[i:i + 3] for i in range(0, len(buttons), 3)]
    rows.append(_abort_row(lang))
    text = "\n\n".join([_header(wizard, lang),
                        t("alertui.wizard.ask_hazard", lang)])
    await _show(update, text, InlineKeyboardMarkup(rows))


async def _ask_level(update: Update, context: QRContext, wizard: Wizard, lang: Lang) -> None:
    await _save(update, context, "level", wizard)
    service = _alerts(context)
    levels = service.levels_for(wizard.hazard_value)
    rows = [[_button(t("alertui.button.level", lang, emoji=lv.emoji, level=lv.label(lang)),
                     PICK_LEVEL.pack(lv.value)) for lv in levels], _abort_row(lang)]
    text = "\n\n".join([_header(wizard, lang), t("alertui.wizard.ask_level", lang)])
    await _show(update, text, InlineKeyboardMarkup(rows))


async def _ask_areas(update: Update, context: QRContext, wizard: Wizard, lang: Lang) -> None:
    await _save(update, context, "areas", wizard)
    service = _alerts(context)
    chosen = set(wizard.districts)
    all_label = "alertui.button.all_on" if wizard.all_districts else "alertui.button.all_off"
    rows = [[_button(t(all_label, lang), ALL_AREAS.pack())]]
    buttons = [
        _button(t("subs.button.district_on" if not wizard.all_districts and d.id in chosen
                  else "subs.button.district_off", lang, name=d.name(lang)),
                TOGGLE_AREA.pack(d.id))
        for d in service.subscriptions.districts()
    ]
    rows += [buttons[i:i + 3] for i in range(0, len(buttons), 3)]
    rows.append([_button(t("alertui.button.next", lang), AREAS_DONE.pack())])
    rows.append(_abort_row(lang))
    area = district_list(service, wizard.districts, wizard.all_districts, lang)
    text = "\n\n".join([_header(wizard, lang),
                        t("alertui.wizard.ask_areas", lang, area=area or "—")])
    await _show(update, text, InlineKeyboardMarkup(rows))


async def _ask_texts(update: Update, context: QRContext, wizard: Wizard, lang: Lang) -> None:
    await _save(update, context, "texts", wizard)
    rows = [
        [_button(t("alertui.button.use_texts", lang), USE_TEXTS.pack())],
        [_button(t("alertui.button.edit_zh", lang), EDIT_TEXT.pack("zh")),
         _button(t("alertui.button.edit_en", lang), EDIT_TEXT.pack("en"))],
        _abort_row(lang),
    ]
    text = "\n\n".join([
        _header(wizard, lang),
        t("alertui.wizard.texts", lang, zh=wizard.zh or "", en=wizard.en or ""),
    ])
    await _show(update, text, InlineKeyboardMarkup(rows))


async def _ask_when(update: Update, context: QRContext, wizard: Wizard, lang: Lang) -> None:
    await _save(update, context, "when", wizard)
    labels = [t("alertui.button.now", lang) if m == 0 else
              t("alertui.button.in_minutes", lang, minutes=m) if m < 60 else
              t("alertui.button.in_hours", lang, hours=m // 60) for m in WHEN_MINUTES]
    buttons = [_button(label, PICK_WHEN.pack(m)) for label, m in zip(labels, WHEN_MINUTES,
                                                                    strict=True)]
    rows = [buttons[:1], buttons[1:], _abort_row(lang)]
    text = "\n\n".join([_header(wizard, lang),
                        t("alertui.wizard.ask_when", lang)])
    await _show(update, text, InlineKeyboardMarkup(rows))


async def _ask_until(update: Update, context: QRContext, wizard: Wizard, lang: Lang) -> None:
    await _save(update, context, "until", wizard)
    send_at = _when(wizard.send_at)
    sending = (t("alertui.now", lang) if send_at is None
               else format_local_time(send_at, lang, _tz(context)))
    rows = [[_button(t("alertui.button.for_hours", lang, hours=h), PICK_UNTIL.pack(h))
             for h in UNTIL_HOURS], _abort_row(lang)]
    text = "\n\n".join([_header(wizard, lang),
                        t("alertui.wizard.ask_until", lang, when=sending)])
    await _show(update, text, InlineKeyboardMarkup(rows))


async def _compose(context: QRContext, admin_id: int, wizard: Wizard) -> AlertView:
    """Save the wizard's choices as a draft alert, then drop the wizard's earlier draft.

    The new draft is made first: when the core refuses it (a time that has passed meanwhile),
    the earlier draft and the wizard's step are left as they were.
    """
    service = _alerts(context)
    if wizard.mode == "clear":
        assert wizard.ref is not None
        view = await service.compose_all_clear(
            admin_id, wizard.ref, text_zh=wizard.zh, text_en=wizard.en)
    else:
        draft = AlertDraft(
            hazard=wizard.hazard_value, level=wizard.level_value,
            district_ids=None if wizard.all_districts else tuple(wizard.districts),
            text_zh=wizard.zh, text_en=wizard.en,
            send_at=_when(wizard.send_at), expires_at=_when(wizard.expires_at),
        )
        if wizard.mode == "update":
            assert wizard.ref is not None
            view = await service.compose_update(admin_id, wizard.ref, draft)
        else:
            view = await service.compose(admin_id, draft)
    if wizard.draft is not None:
        await _drop_draft(context, admin_id, wizard.draft)
    return view


def render_preview(service: AlertService, preview: Preview, lang: str, tz: ZoneInfo) -> str:
    alert = preview.alert
    lines = [
        t("alertui.preview.heading", lang),
        alert_title(alert, lang),
        t("alertui.preview.area", lang, area=district_list(
            service, alert.district_ids, alert.all_districts, lang)),
        t("alertui.preview.send_at", lang, when=format_local_time(alert.send_at, lang, tz)),
    ]
    if alert.msg_type != "Cancel":
        lines.append(t("alertui.preview.until", lang,
                       until=format_local_time(alert.expires_at, lang, tz)))
    lines.append(t("alertui.preview.recipients", lang, count=preview.recipients))
    if preview.needs_approval:
        lines.append(t("alertui.preview.needs_approval", lang))
    for message_lang in ("zh", "en"):
        message = preview.messages.get(message_lang)
        if message:
            lines += ["", t(f"alertui.preview.as_{message_lang}", lang), Html(message)]
    lines += ["", t("alertui.preview.confirm_hint", lang)]
    return "\n".join(lines)


async def _show_preview(update: Update, context: QRContext, wizard: Wizard, lang: Lang,
                        admin_id: int) -> None:
    service = _alerts(context)
    view = await _compose(context, admin_id, wizard)
    wizard.draft = view.id
    await _save(update, context, "preview", wizard)
    preview = await service.preview(view.id)
    rows = [
        [_button(t("alertui.button.confirm", lang), CONFIRM.pack())],
        [_button(t("alertui.button.edit_zh", lang), EDIT_TEXT.pack("zh")),
         _button(t("alertui.button.edit_en", lang), EDIT_TEXT.pack("en"))],
        _abort_row(lang),
    ]
    await _show(update, render_preview(service, preview, lang, _tz(context)),
                InlineKeyboardMarkup(rows))


# -- commands -----------------------------------------------------------------------------------

async def start_alert(update: Update, context: QRContext) -> None:
    """Start composing a warning (admins only)."""
    lang = await user_lang(update, context)
    user = update.effective_user
    if user is None or not _alerts(context).is_admin(user.id):
        await reply(update, t("alertui.not_admin", lang))
        return
    await _discard_draft(update, context)
    await _ask_hazard(update, context, Wizard(), lang)


async def list_alerts(update: Update, context: QRContext) -> None:
    """List recent warnings with their delivery figures and what can be done with each."""
    lang = await user_lang(update, context)
    user = update.effective_user
    if user is None or not _alerts(context).is_admin(user.id):
        await reply(update, t("alertui.not_admin", lang))
        return
    text, keyboard = await _alert_list(context, user.id, lang)
    await reply(update, text, keyboard)


async def cancel_flow(update: Update, context: QRContext) -> None:
    """Leave the warning wizard without sending anything."""
    chat_id, user_id = _ids(update)
    conversation = await context.services.conversations.get(chat_id, user_id)
    if conversation is None or conversation.flow != FLOW:
        return  # another feature's flow (or none): its own /cancel handles it
    await _discard_draft(update, context)
    await context.services.conversations.clear(chat_id, user_id)
    await reply(update, t("alertui.wizard.aborted", await user_lang(update, context)))
    raise ApplicationHandlerStop


async def _discard_draft(update: Update, context: QRContext) -> None:
    """Cancel the draft a wizard in progress had composed, so no orphan draft is left."""
    chat_id, user_id = _ids(update)
    conversation = await context.services.conversations.get(chat_id, user_id)
    if conversation is None or conversation.flow != FLOW:
        return
    wizard = Wizard.of(conversation)
    if wizard.draft is not None:
        await _drop_draft(context, user_id, wizard.draft)


async def _drop_draft(context: QRContext, admin_id: int, alert_id: int) -> None:
    try:
        await _alerts(context).cancel(admin_id, alert_id)
    except AlertError:
        log.info("draft alert %s was already gone", alert_id)


# -- wizard buttons -----------------------------------------------------------------------------

@_friendly
async def choose_hazard(update: Update, context: QRContext) -> None:
    """Take the hazard and ask for the level."""
    _conv, wizard = await _load(update, context, "hazard")
    (value,) = _args(update)
    wizard.hazard = Hazard(str(value)).value if str(value) in set(Hazard) else None
    if wizard.hazard is None:
        raise StaleAction(f"unknown hazard {value!r}")
    await _ask_level(update, context, wizard, await user_lang(update, context))


@_friendly
async def choose_level(update: Update, context: QRContext) -> None:
    """Take the level and ask for the districts (an update keeps the original's)."""
    _conv, wizard = await _load(update, context, "level")
    (value,) = _args(update)
    if str(value) not in {lv.value for lv in _alerts(context).levels_for(wizard.hazard_value)}:
        raise StaleAction(f"level {value!r} not offered")
    wizard.level = str(value)
    await _ask_areas(update, context, wizard, await user_lang(update, context))


@_friendly
async def toggle_area(update: Update, context: QRContext) -> None:
    """Add or remove one target district."""
    _conv, wizard = await _load(update, context, "areas")
    (district_id,) = _args(update)
    _alerts(context).subscriptions.district(str(district_id))  # UnknownDistrict when forged
    chosen = [] if wizard.all_districts else list(wizard.districts)
    if district_id in chosen:
        chosen.remove(str(district_id))
    else:
        chosen.append(str(district_id))
    wizard.districts, wizard.all_districts = chosen, False
    await _ask_areas(update, context, wizard, await user_lang(update, context))


@_friendly
async def choose_all_areas(update: Update, context: QRContext) -> None:
    """Target the whole city."""
    _conv, wizard = await _load(update, context, "areas")
    _args(update)
    wizard.all_districts, wizard.districts = True, []
    await _ask_areas(update, context, wizard, await user_lang(update, context))


@_friendly
async def finish_areas(update: Update, context: QRContext) -> None:
    """Take the districts and show the pre-filled texts."""
    _conv, wizard = await _load(update, context, "areas")
    _args(update)
    lang = await user_lang(update, context)
    if not wizard.all_districts and not wizard.districts:
        assert update.callback_query is not None
        await update.callback_query.answer(
            html_to_text(t("alerts.error.no_districts", lang)), show_alert=True)
        return
    texts = _alerts(context).prefill(wizard.hazard_value, wizard.level_value)
    wizard.zh, wizard.en = texts.zh, texts.en
    await _ask_texts(update, context, wizard, lang)


@_friendly
async def use_texts(update: Update, context: QRContext) -> None:
    """Accept the texts and ask when to send."""
    _conv, wizard = await _load(update, context, "texts", "edit_zh", "edit_en")
    _args(update)
    lang = await user_lang(update, context)
    if wizard.draft is not None:
        # Back from the preview: the times are chosen already.
        await _show_preview(update, context, wizard, lang, _require_admin(context, update))
        return
    await _ask_when(update, context, wizard, lang)


@_friendly
async def edit_text(update: Update, context: QRContext) -> None:
    """Ask for the new text of one language; the admin's next message replaces it."""
    _conv, wizard = await _load(update, context, "texts", "preview", "edit_zh", "edit_en")
    (text_lang,) = _args(update)
    if text_lang not in ("zh", "en"):
        raise StaleAction(f"no language {text_lang!r}")
    lang = await user_lang(update, context)
    await _save(update, context, f"edit_{text_lang}", wizard)
    current = wizard.zh if text_lang == "zh" else wizard.en
    assert update.callback_query is not None
    await update.callback_query.answer()
    await reply(update, t(f"alertui.wizard.ask_text_{text_lang}", lang, limit=MAX_TEXT_CHARS,
                          current=current or ""))


@_friendly
async def choose_when(update: Update, context: QRContext) -> None:
    """Take the send time from a button and ask until when the warning is in force."""
    _conv, wizard = await _load(update, context, "when")
    (minutes,) = _args(update)
    if minutes not in WHEN_MINUTES:
        raise StaleAction(f"no such delay {minutes!r}")
    now = context.services.clock.now()
    wizard.send_at = None if minutes == 0 else (now + timedelta(minutes=int(minutes))).isoformat()
    await _ask_until(update, context, wizard, await user_lang(update, context))


@_friendly
async def choose_until(update: Update, context: QRContext) -> None:
    """Take the end time from a button and show the preview."""
    _conv, wizard = await _load(update, context, "until")
    (hours,) = _args(update)
    if hours not in UNTIL_HOURS:
        raise StaleAction(f"no such validity {hours!r}")
    start = _when(wizard.send_at) or context.services.clock.now()
    wizard.expires_at = (start + timedelta(hours=int(hours))).isoformat()
    await _show_preview(update, context, wizard, await user_lang(update, context),
                        _require_admin(context, update))


@_friendly
async def confirm_alert(update: Update, context: QRContext) -> None:
    """Submit the previewed warning: scheduled, or waiting for a second admin's approval."""
    _conv, wizard = await _load(update, context, "preview")
    _args(update)
    admin_id = _require_admin(context, update)
    lang = await user_lang(update, context)
    assert wizard.draft is not None
    view = await _alerts(context).submit(admin_id, wizard.draft)
    chat_id, user_id = _ids(update)
    await context.services.conversations.clear(chat_id, user_id)
    title = alert_title(view, lang)
    if view.state == AlertState.PENDING_APPROVAL:
        text = t("alertui.confirmed.pending", lang, title=title)
    elif view.send_at <= context.services.clock.now():
        text = t("alertui.confirmed.now", lang, title=title)
    else:
        text = t("alertui.confirmed.scheduled", lang, title=title,
                 when=format_local_time(view.send_at, lang, _tz(context)))
    assert update.callback_query is not None
    await update.callback_query.answer()
    await edit_or_reply(update, text)


@_friendly
async def abort_wizard(update: Update, context: QRContext) -> None:
    """Leave the wizard from its ✖ button."""
    await _load(update, context, "hazard", "level", "areas", "texts", "edit_zh", "edit_en",
                "when", "until", "preview")
    _args(update)
    await _discard_draft(update, context)
    chat_id, user_id = _ids(update)
    await context.services.conversations.clear(chat_id, user_id)
    await _show(update, t("alertui.wizard.aborted", await user_lang(update, context)), None)


# -- wizard text input --------------------------------------------------------------------------

@_friendly
async def _take_text(update: Update, context: QRContext) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    chat_id, user_id = _ids(update)
    conversation = await context.services.conversations.get(chat_id, user_id)
    assert conversation is not None
    admin_id = _require_admin(context, update)
    wizard = Wizard.of(conversation)
    lang = await user_lang(update, context)
    step = conversation.step
    if step in ("edit_zh", "edit_en"):
        text = clean_user_text(message.text, MAX_TEXT_CHARS * 2)
        if not text or len(text) > MAX_TEXT_CHARS:
            await reply(update, "⚠️ " + t("alertui.error.text_length", lang,
                                         limit=MAX_TEXT_CHARS, length=len(message.text)))
            return
        if step == "edit_zh":
            wizard.zh = text
        else:
            wizard.en = text
        if wizard.draft is not None:
            # Edited from the preview: show the preview again with the new text.
            await _show_preview(update, context, wizard, lang, admin_id)
        else:
            await _ask_texts(update, context, wizard, lang)
        return
    now = context.services.clock.now()
    tz = _tz(context)
    if step == "when":
        when = _parse(message.text, now=now, after=now, tz=tz, bare_unit="minutes")
        if when < now - timedelta(minutes=1) or when > now + MAX_AHEAD:
            raise TimeNotPossible("send time out of range")
        wizard.send_at = None if when <= now else when.isoformat()
        await _ask_until(update, context, wizard, lang)
        return
    if step == "until":
        start = _when(wizard.send_at) or now
        until = _parse(message.text, now=now, after=start, tz=tz, bare_unit="hours")
        if until <= start or until > start + MAX_AHEAD:
            raise TimeNotPossible("end time out of range")
        wizard.expires_at = until.isoformat()
        await _show_preview(update, context, wizard, lang, admin_id)
        return
    await reply(update, t("alertui.wizard.use_buttons", lang))


def _parse(text: str, **kwargs: Any) -> datetime:
    try:
        return parse_time(clean_user_text(text, 64), **kwargs)
    except InvalidInput:
        raise TimeNotUnderstood(text[:64]) from None


async def take_wizard_text(update: Update, context: QRContext, _conv: Conversation) -> None:
    """Use a typed text, send time or end time for the step the wizard is at."""
    await _take_text(update, context)


# -- /alerts and its buttons --------------------------------------------------------------------

def _figures(stats: DeliveryStats, lang: str) -> str:
    return t("alertui.list.figures", lang, sent=stats.sent, failed=stats.failed,
             blocked=stats.blocked, pending=stats.remaining, total=stats.total)


def _render_alert(service: AlertService, alert: AlertView, lang: str, tz: ZoneInfo) -> str:
    lines = [
        alert_title(alert, lang)
        + " · " + t(f"alertui.state.{alert.state.value}", lang),
        t("alertui.list.area", lang, area=district_list(
            service, alert.district_ids, alert.all_districts, lang)),
    ]
    if alert.references_id is not None:
        kind = "alertui.list.update_of" if alert.msg_type == "Update" else "alertui.list.clear_of"
        lines.append(t(kind, lang, ref=alert.references_id))
    times = t("alertui.list.times", lang, send_at=format_local_time(alert.send_at, lang, tz),
              until=format_local_time(alert.expires_at, lang, tz))
    if alert.late:
        times += " " + t("alertui.list.late", lang)
    lines.append(times)
    if alert.stats.total or alert.state in (AlertState.SENDING, AlertState.SENT,
                                            AlertState.EXPIRED):
        lines.append(_figures(alert.stats, lang))
    return "\n".join(lines)


def _actions(alert: AlertView, viewer_id: int, now: datetime,
             lang: str) -> list[InlineKeyboardButton]:
    """The buttons that make sense for an alert in its state."""
    buttons = []
    in_force = as_utc(alert.expires_at) > now and alert.msg_type != "Cancel"
    if alert.state in (AlertState.PENDING_APPROVAL, AlertState.SCHEDULED, AlertState.SENDING):
        buttons.append(_button(t("alertui.button.cancel_alert", lang, id=alert.id),
                               CANCEL_ALERT.pack(alert.id)))
    if alert.state == AlertState.PENDING_APPROVAL and alert.created_by != viewer_id:
        buttons.append(_button(t("alertui.button.approve", lang, id=alert.id),
                               APPROVE_ALERT.pack(alert.id)))
    if alert.state in (AlertState.SENT, AlertState.SENDING) and in_force:
        buttons.append(_button(t("alertui.button.update", lang, id=alert.id),
                               UPDATE_ALERT.pack(alert.id)))
        buttons.append(_button(t("alertui.button.all_clear", lang, id=alert.id),
                               ALL_CLEAR.pack(alert.id)))
    if alert.state != AlertState.DRAFT:
        buttons.append(_button(t("alertui.button.cap", lang, id=alert.id),
                               SEND_CAP.pack(alert.id)))
    return buttons


async def _alert_list(context: QRContext, viewer_id: int,
                      lang: str) -> tuple[str, InlineKeyboardMarkup]:
    service = _alerts(context)
    states = [s for s in AlertState if s != AlertState.DRAFT]
    alerts = await service.list_alerts(states=states, limit=LIST_LIMIT)
    now = context.services.clock.now()
    rows = [[_button(t("alertui.button.refresh", lang), REFRESH_LIST.pack())]]
    if not alerts:
        return t("alertui.list.empty", lang), InlineKeyboardMarkup(rows)
    blocks = [t("alertui.list.heading", lang, count=len(alerts))]
    for alert in alerts:
        block = _render_alert(service, alert, lang, _tz(context))
        if sum(len(b) + 2 for b in blocks) + len(block) > MAX_MESSAGE - 200:
            break  # keep the list one message so its buttons stay next to it
        blocks.append(block)
        buttons = _actions(alert, viewer_id, now, lang)
        rows[-1:-1] = [buttons[i:i + 3] for i in range(0, len(buttons), 3)]
    return "\n\n".join(blocks), InlineKeyboardMarkup(rows)


async def _refresh_list(update: Update, context: QRContext, admin_id: int, lang: Lang) -> None:
    text, keyboard = await _alert_list(context, admin_id, lang)
    await edit_or_reply(update, text, keyboard)


@_friendly
async def refresh_list(update: Update, context: QRContext) -> None:
    """Redraw /alerts with current figures."""
    admin_id = _require_admin(context, update)
    _args(update)
    assert update.callback_query is not None
    await update.callback_query.answer()
    await _refresh_list(update, context, admin_id, await user_lang(update, context))


@_friendly
async def ask_cancel(update: Update, context: QRContext) -> None:
    """Ask the admin to confirm cancelling a warning."""
    _require_admin(context, update)
    (alert_id,) = _args(update)
    lang = await user_lang(update, context)
    alert = await _alerts(context).get(int(alert_id))
    assert update.callback_query is not None
    await update.callback_query.answer()
    keyboard = InlineKeyboardMarkup([[
        _button(t("alertui.button.cancel_sure", lang, id=alert.id), CANCEL_SURE.pack(alert.id)),
        _button(t("alertui.button.keep", lang), REFRESH_LIST.pack()),
    ]])
    await edit_or_reply(update, "\n\n".join([
        t("alertui.cancel.ask", lang),
        _render_alert(_alerts(context), alert, lang, _tz(context))]), keyboard)


@_friendly
async def cancel_alert(update: Update, context: QRContext) -> None:
    """Cancel a scheduled or pending warning (or stop one that is sending)."""
    admin_id = _require_admin(context, update)
    (alert_id,) = _args(update)
    lang = await user_lang(update, context)
    view = await _alerts(context).cancel(admin_id, int(alert_id))
    assert update.callback_query is not None
    await update.callback_query.answer(
        html_to_text(t("alertui.cancel.done", lang, id=view.id)), show_alert=True)
    await _refresh_list(update, context, admin_id, lang)


@_friendly
async def approve_alert(update: Update, context: QRContext) -> None:
    """Approve another admin's warning so that it goes out."""
    admin_id = _require_admin(context, update)
    (alert_id,) = _args(update)
    lang = await user_lang(update, context)
    view = await _alerts(context).approve(admin_id, int(alert_id))
    assert update.callback_query is not None
    await update.callback_query.answer(
        html_to_text(t("alertui.approve.done", lang, id=view.id)), show_alert=True)
    await _refresh_list(update, context, admin_id, lang)


@_friendly
async def start_update(update: Update, context: QRContext) -> None:
    """Start the wizard for an update of a sent warning (same hazard; new level and text)."""
    admin_id = _require_admin(context, update)
    (alert_id,) = _args(update)
    original = await _alerts(context).get(int(alert_id))
    await _discard_draft(update, context)
    wizard = Wizard(mode="update", ref=original.id, hazard=original.hazard.value,
                    level=original.level.value, all_districts=original.all_districts,
                    districts=list(original.district_ids))
    del admin_id
    await _ask_level(update, context, wizard, await user_lang(update, context))


@_friendly
async def start_all_clear(update: Update, context: QRContext) -> None:
    """Prepare an all-clear of a sent warning and preview it."""
    admin_id = _require_admin(context, update)
    (alert_id,) = _args(update)
    original = await _alerts(context).get(int(alert_id))
    await _discard_draft(update, context)
    wizard = Wizard(mode="clear", ref=original.id, hazard=original.hazard.value,
                    level=original.level.value, all_districts=original.all_districts,
                    districts=list(original.district_ids))
    view = await _compose(context, admin_id, wizard)
    wizard.draft, wizard.zh, wizard.en = view.id, view.texts.zh, view.texts.en
    lang = await user_lang(update, context)
    await _show_preview(update, context, wizard, lang, admin_id)


@_friendly
async def send_cap(update: Update, context: QRContext) -> None:
    """Send the warning as a CAP 1.2 XML document."""
    _require_admin(context, update)
    (alert_id,) = _args(update)
    service = _alerts(context)
    alert = await service.get(int(alert_id))
    xml = await service.cap_xml(alert.id)
    lang = await user_lang(update, context)
    chat = update.effective_chat
    assert chat is not None and update.callback_query is not None
    await chat.send_document(
        InputFile(xml, filename=f"alert-{alert.id}.cap.xml"),
        caption=t("alertui.cap.caption", lang, id=alert.id, identifier=alert.identifier),
        parse_mode="HTML",
    )
    await update.callback_query.answer()


# -- delivery: the sender, the progress message and the admins' notices -------------------------

@dataclass
class _Progress:
    chat_id: int
    message_id: int | None
    lang: Lang
    last_done: int = 0
    last_edit: datetime | None = None


class BroadcastProgress:
    """Shows each broadcast to its author as one message, edited as it goes.

    Edits are throttled (every ``PROGRESS_EVERY_SECONDS`` or ``PROGRESS_EVERY_SHARE`` more done)
    to stay far below Telegram's edit limits; the last call turns it into the final figures.
    """

    def __init__(self, app: QRApplication) -> None:
        self._app = app
        self._messages: dict[int, _Progress] = {}

    @property
    def _services(self):  # type: ignore[no-untyped-def]
        return self._app.bot_data.services

    async def __call__(self, alert_id: int, stats: DeliveryStats, *, final: bool) -> None:
        try:
            await self._update(alert_id, stats, final=final)
        except (TelegramError, QuickResponseError) as exc:
            # Progress is a courtesy: a failure to show it must never stop the broadcast.
            log.warning("could not show broadcast progress of alert %s: %s", alert_id,
                        type(exc).__name__)

    async def _update(self, alert_id: int, stats: DeliveryStats, *, final: bool) -> None:
        now = self._services.clock.now()
        state = self._messages.get(alert_id)
        if state is None:
            alert = await self._services.alerts.get(alert_id)
            lang = (await self._services.users.language(alert.created_by)
                    or self._services.settings.default_language)
            state = self._messages[alert_id] = _Progress(alert.created_by, None, lang)
        total = max(stats.total, 1)
        due = (
            final or state.message_id is None or state.last_edit is None
            or (now - state.last_edit).total_seconds() >= PROGRESS_EVERY_SECONDS
            or (stats.done - state.last_done) / total >= PROGRESS_EVERY_SHARE
        )
        if not due:
            return
        text = self._render(alert_id, stats, state.lang, final=final)
        bot = self._app.bot
        if state.message_id is None:
            message = await bot.send_message(state.chat_id, text, parse_mode="HTML")
            state.message_id = message.message_id
        else:
            try:
                await bot.edit_message_text(text, chat_id=state.chat_id,
                                            message_id=state.message_id, parse_mode="HTML")
            except BadRequest as exc:
                if "not modified" not in str(exc).lower():
                    raise
        state.last_done, state.last_edit = stats.done, now
        if final:
            del self._messages[alert_id]

    @staticmethod
    def _render(alert_id: int, stats: DeliveryStats, lang: str, *, final: bool) -> str:
        share = 100 if stats.total == 0 else round(100 * stats.done / stats.total)
        bar = "▓" * (share // 10) + "░" * (10 - share // 10)
        key = "alertui.progress.final" if final else "alertui.progress.running"
        return "\n".join([t(key, lang, id=alert_id, bar=bar, percent=share),
                          _figures(stats, lang)])


class AdminNotifier:
    """Tells admins what needs them: approvals, late or missed warnings, final reports."""

    def __init__(self, app: QRApplication) -> None:
        self._app = app

    async def __call__(self, notice: AdminNotice) -> None:
        services = self._app.bot_data.services
        settings = services.settings
        service: AlertService = services.alerts
        alert = await service.get(notice.alert_id)
        if notice.admin_id is not None:
            chats = [notice.admin_id]
        elif settings.admin_chat_id is not None:
            chats = [settings.admin_chat_id]
        else:
            chats = sorted(settings.admin_ids)
        for chat_id in chats:
            lang = (await services.users.language(chat_id) if chat_id > 0 else None) \
                or settings.default_language
            text, keyboard = self._render(service, notice, alert, normalise_lang(lang),
                                          settings.tz)
            if notice.kind == "approval_needed" and chat_id == alert.created_by:
                keyboard = None  # the author cannot approve their own warning
            try:
                await self._app.bot.send_message(chat_id, text, parse_mode="HTML",
                                                 reply_markup=keyboard)
            except Forbidden:
                log.warning("admin chat %s has blocked the bot; notice %s not shown", chat_id,
                            notice.id)

    @staticmethod
    def _render(service: AlertService, notice: AdminNotice, alert: AlertView, lang: Lang,
                tz: ZoneInfo) -> tuple[str, InlineKeyboardMarkup | None]:
        title = alert_title(alert, lang)
        details = _render_alert(service, alert, lang, tz)
        keyboard = None
        if notice.kind == "approval_needed":
            keyboard = InlineKeyboardMarkup([[
                _button(t("alertui.button.approve", lang, id=alert.id),
                        APPROVE_ALERT.pack(alert.id)),
                _button(t("alertui.button.cancel_alert", lang, id=alert.id),
                        CANCEL_ALERT.pack(alert.id)),
            ]])
        text = t(f"alertui.notice.{notice.kind}", lang, title=title, id=alert.id,
                 sent=alert.stats.sent, failed=alert.stats.failed,
                 blocked=alert.stats.blocked, total=alert.stats.total)
        if notice.kind == "finished":
            return text, keyboard  # the figures are the whole story
        return "\n\n".join([text, details]), keyboard


def attach_delivery(app: QRApplication) -> None:
    """Give the core's broadcaster this bot: its sender, progress messages and admin notices."""
    from quickresponse.telegram.sender import TelegramSender

    services = app.bot_data.services
    services.alerts.attach(
        TelegramSender(app.bot), progress=BroadcastProgress(app), notify=AdminNotifier(app))


# -- registration -------------------------------------------------------------------------------

def register(app: QRApplication) -> None:
    # /cancel runs before the other modules' handlers: it ends the warning wizard (and drops its
    # draft) and stops there; in any other flow the generic /cancel of the tickets module runs.
    app.add_handler(CommandHandler("cancel", cancel_flow), group=-1)
    app.add_handler(CommandHandler("alert", start_alert))
    app.add_handler(CommandHandler("alerts", list_alerts))
    for act, callback in (
        (PICK_HAZARD, choose_hazard),
        (PICK_LEVEL, choose_level),
        (TOGGLE_AREA, toggle_area),
        (ALL_AREAS, choose_all_areas),
        (AREAS_DONE, finish_areas),
        (USE_TEXTS, use_texts),
        (EDIT_TEXT, edit_text),
        (PICK_WHEN, choose_when),
        (PICK_UNTIL, choose_until),
        (CONFIRM, confirm_alert),
        (ABORT, abort_wizard),
        (CANCEL_ALERT, ask_cancel),
        (CANCEL_SURE, cancel_alert),
        (UPDATE_ALERT, start_update),
        (ALL_CLEAR, start_all_clear),
        (APPROVE_ALERT, approve_alert),
        (SEND_CAP, send_cap),
        (REFRESH_LIST, refresh_list),
    ):
        app.add_handler(CallbackQueryHandler(callback, pattern=act.pattern))
    register_flow(Flow(FLOW, on_text=take_wizard_text))
    attach_delivery(app)


__all__ = ["attach_delivery", "escape", "parse_time"]
