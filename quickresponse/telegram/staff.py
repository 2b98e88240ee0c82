"""District staff and admins on Telegram: working tickets from the district group (claim, note,
resolve, transfer, reject, duplicate), /queue, /ticket N, /stats, /staff and /linkgroup.

Who may do what is decided by the ticket service (staff of the ticket's district or an admin);
these handlers read the update, call it and render the result. A step that needs typed text (a
note, a reason, the original ticket's number) is a database-backed flow keyed by the group chat
and the staff member, so the next message of that person in that chat completes it, whichever
process receives it. The prompt is a selective ForceReply: Telegram delivers the reply to the bot
even when the group's privacy mode hides other messages.
"""

from __future__ import annotations

import io

from telegram import (
    ForceReply,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler

from quickresponse.conversations import Conversation
from quickresponse.errors import InvalidInput, QuickResponseError, StaleAction
from quickresponse.i18n import Html, Lang, escape, normalise_lang, t
from quickresponse.telegram import ticket_keyboards as kb
from quickresponse.telegram.codec import decode
from quickresponse.telegram.commands import publish_group, refresh_member
from quickresponse.telegram.common import (
    Flow,
    QRApplication,
    QRContext,
    register_flow,
    user_lang,
)
from quickresponse.telegram.render import MAX_MESSAGE, split_html
from quickresponse.ticket_presenter import (
    district_label,
    render_card,
    render_history,
    render_list,
    render_staff_list,
)
from quickresponse.tickets.errors import (
    InvalidDuplicateTarget,
    NotAdmin,
    NotDistrictStaff,
    UnknownDistrict,
)
from quickresponse.tickets.service import TicketView, parse_ticket_number
from quickresponse.tickets.stats import parse_period

# In the menus of staff and admins only (see telegram/commands.py); each command checks the role.
COMMANDS: list[tuple[str, str]] = []
STAFF_COMMANDS: list[tuple[str, str]] = [
    ("queue", "tickets.cmd.queue"),
    ("ticket", "tickets.cmd.ticket"),
]
ADMIN_COMMANDS: list[tuple[str, str]] = [
    ("stats", "tickets.cmd.stats"),
    ("staff", "tickets.cmd.staff"),
    ("linkgroup", "tickets.cmd.linkgroup"),
]

STAFF_FLOW = "staff_input"
# The actions that need typed text after the button: what the text is for.
_TEXT_ACTIONS = ("note", "resolve", "reject", "transfer", "duplicate")


# -- plumbing -----------------------------------------------------------------------------------

def _args(update: Update) -> tuple[int | str, ...]:
    assert update.callback_query is not None
    _action, args = decode(update.callback_query.data)
    return args


def _ids(update: Update) -> tuple[int, int]:
    chat, user = update.effective_chat, update.effective_user
    assert chat is not None and user is not None
    return chat.id, user.id


async def _lang(update: Update, context: QRContext) -> Lang:
    """Staff read the bot in their chosen language, else the deployment's default."""
    user = update.effective_user
    if user is not None:
        chosen = await context.services.users.language(user.id)
        if chosen:
            return chosen
    if update.effective_chat is not None and update.effective_chat.type == "private":
        return await user_lang(update, context)
    return context.services.settings.default_language


async def _send(update: Update, text: str, markup: InlineKeyboardMarkup | ForceReply | None = None,
                reply_to: int | None = None) -> Message | None:
    chat = update.effective_chat
    if chat is None:
        return None
    parts = split_html(text)
    sent = None
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        sent = await chat.send_message(
            part, parse_mode="HTML", disable_web_page_preview=True,
            reply_markup=markup if last else None,
            reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True)
            if reply_to and i == 0 else None)
    return sent


def _mention(update: Update) -> Html:
    user = update.effective_user
    assert user is not None
    return Html(f'<a href="tg://user?id={user.id}">{escape(user.full_name)}</a>')


async def _edit_card(update: Update, context: QRContext, ticket: TicketView, head: str,
                     lang: Lang) -> None:
    """Show the ticket's new state on the message the button was pressed on."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    text = head + "\n\n" + render_card(ticket, context.services.city, lang)
    if len(text) > MAX_MESSAGE:
        # Too long to edit into one message (a long description and resolution): post anew.
        await _send(update, text, kb.staff_keyboard(ticket, lang))
        return
    try:
        await query.edit_message_text(text, parse_mode="HTML", disable_web_page_preview=True,
                                      reply_markup=kb.staff_keyboard(ticket, lang))
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            await _send(update, text, kb.staff_keyboard(ticket, lang))


async def _refresh_group_post(context: QRContext, ticket: TicketView, head: str) -> None:
    """Update the ticket's card in its district group after a change made by typed text."""
    post = await context.services.tickets.group_post(ticket.id)
    if post is None:
        return
    chat_id, message_id = post
    lang = context.services.settings.default_language
    text = head + "\n\n" + render_card(ticket, context.services.city, lang)
    if len(text) > MAX_MESSAGE:
        return
    try:
        await context.bot.edit_message_text(
            text, chat_id=chat_id, message_id=message_id, parse_mode="HTML",
            disable_web_page_preview=True, reply_markup=kb.staff_keyboard(ticket, lang))
    except BadRequest:
        pass  # deleted, too old or unchanged: the group still has the confirmation message


async def _require_staff(context: QRContext, user_id: int, ticket: TicketView) -> None:
    """Refuse at the button, before asking for text, someone who may not act on the ticket."""
    if not await context.services.tickets.can_act(user_id, ticket.district_id):
        raise NotDistrictStaff(user_id, ticket.district_id,
                               context.services.city.district(ticket.district_id).name_en)


# -- buttons on a ticket ------------------------------------------------------------------------

async def claim_ticket(update: Update, context: QRContext) -> None:
    """Take the ticket for the staff member who pressed Claim."""
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    (ticket_id,) = _args(update)
    lang = await _lang(update, context)
    outcome = await context.services.tickets.claim(kb.ticket_id(ticket_id), user.id,
                                                   actor_name=user.full_name)
    await query.answer(t("tickets.staff.claimed_alert", lang, number=outcome.ticket.number))
    await _edit_card(update, context, outcome.ticket, t(
        "tickets.staff.claimed_head", lang, number=outcome.ticket.number,
        name=outcome.ticket.claimed_by_name or user.full_name), lang)


async def ask_for_text(update: Update, context: QRContext) -> None:
    """Ask the staff member for the note, resolution, reason or original ticket number."""
    query = update.callback_query
    assert query is not None
    act, args = decode(query.data)
    action = {kb.NOTE.name: "note", kb.RESOLVE.name: "resolve", kb.REJECT.name: "reject",
              kb.DUPLICATE.name: "duplicate"}[act.name]
    await _start_text_step(update, context, kb.ticket_id(args[0]), action)


async def choose_transfer_district(update: Update, context: QRContext) -> None:
    """Show the districts the ticket can be transferred to."""
    query = update.callback_query
    assert query is not None
    (ticket_id,) = _args(update)
    _chat_id, user_id = _ids(update)
    lang = await _lang(update, context)
    ticket = await context.services.tickets.view(kb.ticket_id(ticket_id))
    await _require_staff(context, user_id, ticket)
    await query.answer()
    try:
        await query.edit_message_reply_markup(
            kb.transfer_keyboard(ticket, context.services.city, lang))
    except BadRequest:
        await _send(update, t("tickets.staff.pick_district", lang, number=ticket.number),
                    kb.transfer_keyboard(ticket, context.services.city, lang))


async def ask_transfer_reason(update: Update, context: QRContext) -> None:
    """Ask why the ticket goes to the chosen district."""
    (ticket_id, district_id) = _args(update)
    if not context.services.city.has_district(str(district_id)):
        raise UnknownDistrict(str(district_id))
    await _start_text_step(update, context, kb.ticket_id(ticket_id), "transfer",
                           district_id=str(district_id))


async def show_ticket_buttons(update: Update, context: QRContext) -> None:
    """Go back from the district list to the ticket's own buttons."""
    query = update.callback_query
    assert query is not None
    (ticket_id,) = _args(update)
    lang = await _lang(update, context)
    ticket = await context.services.tickets.view(kb.ticket_id(ticket_id))
    await query.answer()
    try:
        await query.edit_message_reply_markup(kb.staff_keyboard(ticket, lang))
    except BadRequest:
        pass


async def _start_text_step(update: Update, context: QRContext, ticket_id: int, action: str,
                           *, district_id: str | None = None) -> None:
    query = update.callback_query
    assert query is not None
    chat_id, user_id = _ids(update)
    lang = await _lang(update, context)
    ticket = await context.services.tickets.view(ticket_id)
    await _require_staff(context, user_id, ticket)
    data: dict[str, object] = {"ticket_id": ticket.id, "action": action, "lang": lang}
    if district_id:
        data["district_id"] = district_id
    await context.services.conversations.set(chat_id, user_id,
                                             Conversation(STAFF_FLOW, action, data))
    await query.answer()
    target = district_label(context.services.city, district_id, lang) if district_id else ""
    prompt = t(f"tickets.staff.prompt_{action}", lang, mention=_mention(update),
               number=ticket.number, district=target)
    await _send(update, prompt,
                ForceReply(selective=True,
                           input_field_placeholder=t("tickets.staff.placeholder", lang)[:64]),
                reply_to=query.message.message_id if query.message else None)


async def take_staff_text(update: Update, context: QRContext, conv: Conversation) -> None:
    """Apply the staff member's typed note, resolution, reason or ticket number."""
    message = update.effective_message
    assert message is not None and message.text is not None
    chat_id, user_id = _ids(update)
    data = conv.data
    lang = normalise_lang(data.get("lang"), context.services.settings.default_language)
    ticket_id = int(data["ticket_id"])
    action = str(data.get("action"))
    tickets = context.services.tickets
    text = message.text
    try:
        if action == "note":
            outcome = await tickets.add_note(ticket_id, user_id, text)
        elif action == "resolve":
            outcome = await tickets.resolve(ticket_id, user_id, text)
        elif action == "reject":
            outcome = await tickets.reject(ticket_id, user_id, text)
        elif action == "transfer":
            outcome = await tickets.transfer(ticket_id, user_id, str(data["district_id"]), text)
        elif action == "duplicate":
            outcome = await tickets.mark_duplicate(ticket_id, user_id, _original(text))
        else:
            raise InvalidInput(f"unknown staff action {action!r}")
    except InvalidInput:
        raise  # the person can fix the text and send it again: the step stays open
    except QuickResponseError:
        await context.services.conversations.clear(chat_id, user_id)
        raise
    await context.services.conversations.clear(chat_id, user_id)
    ticket = outcome.ticket
    done = t(f"tickets.staff.done_{action}", lang, number=ticket.number,
             district=district_label(context.services.city, ticket.district_id, lang),
             original=f"#{ticket.duplicate_of}" if ticket.duplicate_of else "")
    await _send(update, done, reply_to=message.message_id)
    if action != "transfer":
        # A transferred ticket was posted afresh to its new district; the old card just says so.
        await _refresh_group_post(context, ticket, done)


def _original(text: str) -> int:
    """The original ticket's number as staff typed it (``#12`` or ``12``)."""
    try:
        return kb.ticket_id(parse_ticket_number(text))
    except (InvalidInput, StaleAction):
        raise InvalidDuplicateTarget(f"not a ticket number: {text[:20]!r}") from None


# -- commands -----------------------------------------------------------------------------------

async def show_queue(update: Update, context: QRContext) -> None:
    """List the open tickets of the district(s) this person works for, by deadline."""
    chat_id, user_id = _ids(update)
    lang = await _lang(update, context)
    tickets, city = context.services.tickets, context.services.city
    argument = " ".join(context.args or []).strip()
    if argument:
        districts = [city.find_district(argument).id]
    elif (group_district := await tickets.district_of_group(chat_id)) is not None:
        districts = [group_district]
    elif tickets.is_admin(user_id):
        districts = [d.id for d in city.queues]  # the dispatch desk's calls first
    else:
        districts = await tickets.staff_districts(user_id)
        if not districts:
            await _send(update, t("tickets.queue.not_staff", lang))
            return
    blocks = []
    for district_id in districts:
        queue = await tickets.queue(district_id, user_id)
        if not queue and len(districts) > 1:
            continue  # an admin's overview lists only the districts with open tickets
        title = t("tickets.queue.title", lang, district=district_label(city, district_id, lang),
                  count=len(queue))
        blocks.append(render_list(title, queue, city, lang, "tickets.queue.empty"))
    text = "\n\n".join(blocks) if blocks else t("tickets.queue.all_empty", lang)
    await _send(update, text)


async def show_ticket(update: Update, context: QRContext) -> None:
    """Show one ticket with its history (for its resident, followers, its staff, admins)."""
    _chat_id, user_id = _ids(update)
    lang = await _lang(update, context)
    if not context.args:
        await _send(update, t("tickets.ticket.usage", lang))
        return
    ticket_id = kb.ticket_id(parse_ticket_number(context.args[0]))
    tickets = context.services.tickets
    ticket = await tickets.show(ticket_id, user_id)
    is_staff = await tickets.can_act(user_id, ticket.district_id)
    text = render_history(ticket, context.services.city, lang,
                          for_staff=is_staff or ticket.resident_id == user_id)
    await _send(update, text, kb.staff_keyboard(ticket, lang) if is_staff else None)


async def manage_staff(update: Update, context: QRContext) -> None:
    """Add, remove or list district staff (admins): /staff add|remove|list."""
    _chat_id, user_id = _ids(update)
    lang = await _lang(update, context)
    tickets, city = context.services.tickets, context.services.city
    if not tickets.is_admin(user_id):
        raise NotAdmin(f"user {user_id} is not an admin")
    args = list(context.args or [])
    verb = args.pop(0).lower() if args else ""
    if verb == "list":
        district_id = city.find_district(" ".join(args)).id if args else None
        await _send(update, render_staff_list(await tickets.list_staff(district_id), city, lang))
        return
    if verb not in ("add", "remove"):
        await _send(update, t("tickets.staff.usage", lang))
        return
    target_id, display_name, args = _staff_target(update, args)
    if target_id is None:
        await _send(update, t("tickets.staff.usage", lang))
        return
    if verb == "add":
        if not args:
            await _send(update, t("tickets.staff.usage", lang))
            return
        district = city.find_district(" ".join(args))
        await tickets.add_staff(user_id, target_id, district.id, display_name=display_name)
        await _send(update, t("tickets.staff.added", lang, user_id=target_id,
                              district=district.name(lang)))
    else:
        district_id = city.find_district(" ".join(args)).id if args else None
        removed = await tickets.remove_staff(user_id, target_id, district_id)
        await _send(update, t("tickets.staff.removed", lang, user_id=target_id, count=removed))
    await refresh_member(context.bot, context.services, context.bot_data.menus, target_id)


def _staff_target(update: Update, args: list[str]) -> tuple[int | None, str | None, list[str]]:
    """The user an admin means: a numeric id first, else the author of the replied message."""
    if args and args[0].lstrip("-").isdigit() and args[0].isascii():
        value = int(args[0])
        return (value if value > 0 else None), None, args[1:]
    message = update.effective_message
    replied = message.reply_to_message if message is not None else None
    if replied is not None and replied.from_user is not None and not replied.from_user.is_bot:
        return replied.from_user.id, replied.from_user.full_name, args
    return None, None, args


async def show_stats(update: Update, context: QRContext) -> None:
    """Send the response, resolution and satisfaction rates as text and a chart (admins)."""
    _chat_id, user_id = _ids(update)
    lang = await _lang(update, context)
    services = context.services
    if not services.tickets.is_admin(user_id):
        raise NotAdmin(f"user {user_id} is not an admin")
    try:
        since, until = parse_period(" ".join(context.args or []), services.city.tz,
                                    services.clock.now())
    except InvalidInput:
        await _send(update, t("tickets.stats.usage", lang))
        return
    stats = services.ticket_stats
    report = await stats.report(since, until)
    await _send(update, f"<pre>{escape(stats.format_table(report, lang))}</pre>")
    if report.overall.filed == 0:
        return  # nothing to draw
    chart = await stats.chart_png(report, lang)
    chat = update.effective_chat
    assert chat is not None
    await chat.send_photo(InputFile(io.BytesIO(chart), filename="stats.png"),
                          caption=t("tickets.stats.chart_caption", lang), parse_mode="HTML")


async def link_group(update: Update, context: QRContext) -> None:
    """Make this group the staff group of a district (admins, in the group)."""
    chat_id, user_id = _ids(update)
    lang = await _lang(update, context)
    if not context.args:
        await _send(update, t("tickets.linkgroup.usage", lang))
        return
    district = context.services.city.find_district(" ".join(context.args))
    await context.services.tickets.link_group(user_id, district.id, chat_id)
    await _send(update, t("tickets.linkgroup.done", lang, district=district.name(lang)))
    await publish_group(context.bot, context.bot_data.menus, chat_id)


def register(app: QRApplication) -> None:
    app.add_handler(CommandHandler("queue", show_queue))
    app.add_handler(CommandHandler("ticket", show_ticket))
    app.add_handler(CommandHandler("stats", show_stats))
    app.add_handler(CommandHandler("staff", manage_staff))
    app.add_handler(CommandHandler("linkgroup", link_group))
    for act, callback in (
        (kb.CLAIM, claim_ticket),
        (kb.NOTE, ask_for_text),
        (kb.RESOLVE, ask_for_text),
        (kb.REJECT, ask_for_text),
        (kb.DUPLICATE, ask_for_text),
        (kb.TRANSFER, choose_transfer_district),
        (kb.TRANSFER_TO, ask_transfer_reason),
        (kb.STAFF_BACK, show_ticket_buttons),
    ):
        app.add_handler(CallbackQueryHandler(callback, pattern=act.pattern))
    register_flow(Flow(STAFF_FLOW, on_text=take_staff_text))

