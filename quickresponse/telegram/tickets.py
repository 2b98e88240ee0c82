"""Residents' calls on Telegram: the /report flow, /mytickets, "talk to staff", /cancel, the
verdict on a resolution.

The report flow's state lives in the database (``ConversationStore``, flow ``report``) as a
:class:`~quickresponse.reports.ReportDraft`, so a half-filled report survives a restart and the
next update may be handled by another process. Which step comes next and what input is valid is
decided by :class:`~quickresponse.reports.ReportDesk`; the handlers here only read the update,
call it, and render the result.
"""

from __future__ import annotations

from typing import Any

from telegram import (
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

from quickresponse.conversations import Conversation
from quickresponse.errors import InvalidInput, StaleAction
from quickresponse.i18n import LANGS, Lang, html_to_text, normalise_lang, t
from quickresponse.reports import (
    MAX_REPORT_PHOTOS,
    Located,
    ReportDesk,
    ReportDraft,
    Step,
)
from quickresponse.telegram import keyboards as qa_keyboards
from quickresponse.telegram import ticket_keyboards as kb
from quickresponse.telegram.codec import decode
from quickresponse.telegram.common import (
    Flow,
    QRApplication,
    QRContext,
    register_flow,
    user_lang,
)
from quickresponse.telegram.render import split_html
from quickresponse.telegram.ticket_outbox import install_outbox
from quickresponse.ticket_presenter import (
    district_label,
    photos_progress,
    render_draft,
    render_filed,
    render_list,
    render_nearby,
    render_urgent_logged,
    routing_label,
)
from quickresponse.tickets.errors import NoDispatchDesk
from quickresponse.tickets.service import MAX_DESCRIPTION, OPEN_STATES, NearbyTicket, State

COMMANDS: list[tuple[str, str]] = [
    ("report", "tickets.cmd.report"),
    ("mytickets", "tickets.cmd.mytickets"),
    ("cancel", "tickets.cmd.cancel"),
]

REPORT_FLOW = "report"
ADD_INFO_FLOW = "ticket_info"
# Telegram sends a photo in several sizes, smallest first; staff should see the largest.
_LARGEST = -1


# -- plumbing: what a handler needs from an update, no business rules ---------------------------

def _desk(context: QRContext) -> ReportDesk:
    services = context.services
    return ReportDesk(services.tickets, services.router, services.db)


def _ids(update: Update) -> tuple[int, int]:
    chat, user = update.effective_chat, update.effective_user
    assert chat is not None and user is not None
    return chat.id, user.id


def _args(update: Update) -> tuple[int | str, ...]:
    assert update.callback_query is not None
    _action, args = decode(update.callback_query.data)
    return args


async def _send(update: Update, text: str,
                markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None
                = None) -> Message | None:
    """Send HTML to the update's chat, split to Telegram's limit, markup on the last part."""
    chat = update.effective_chat
    if chat is None:
        return None
    parts = split_html(text)
    sent = None
    for i, part in enumerate(parts):
        sent = await chat.send_message(part, parse_mode="HTML", disable_web_page_preview=True,
                                       reply_markup=markup if i == len(parts) - 1 else None)
    return sent


async def _drop_buttons(update: Update) -> None:
    """Take the keyboard off the message a button was pressed on, so it is not pressed twice."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    try:
        await query.edit_message_reply_markup(None)
    except BadRequest:
        pass  # already without buttons, or too old to edit: nothing to take off


class ReportSession:
    """The report flow of one resident in one chat, loaded from and saved to the database."""

    def __init__(self, update: Update, context: QRContext, draft: ReportDraft, lang: Lang,
                 *, reply_keyboard: bool = False) -> None:
        self.update = update
        self.context = context
        self.draft = draft
        self.lang = lang
        self.desk = _desk(context)
        # A reply keyboard (share location / phone) is showing and must be taken away.
        self.reply_keyboard = reply_keyboard

    @classmethod
    async def load(cls, update: Update, context: QRContext,
                   conversation: Conversation | None = None) -> ReportSession:
        """The resident's report in progress; StaleAction when there is none (old buttons)."""
        if conversation is None:
            conversation = await context.services.conversations.get(*_ids(update))
        if conversation is None or conversation.flow != REPORT_FLOW:
            raise StaleAction("no report in progress")
        data = conversation.data
        lang = normalise_lang(data.get("lang"), context.services.settings.default_language)
        return cls(update, context, ReportDraft.from_dict(data.get("draft") or {}), lang,
                   reply_keyboard=bool(data.get("reply_keyboard")))

    def expect(self, *steps: Step) -> None:
        """A button of an earlier step pressed again: refuse it rather than act twice."""
        if self.draft.next_step() not in steps:
            raise StaleAction(f"button for another step than {self.draft.next_step()}")

    async def save(self) -> None:
        data: dict[str, Any] = {"lang": self.lang, "draft": self.draft.to_dict(),
                                "reply_keyboard": self.reply_keyboard}
        await self.context.services.conversations.set(
            *_ids(self.update), Conversation(REPORT_FLOW, self.draft.next_step().value, data))

    async def say(self, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """Send a message; the first one after a reply keyboard also takes that keyboard away."""
        if self.reply_keyboard and markup is None:
            await _send(self.update, text, ReplyKeyboardRemove())
            self.reply_keyboard = False
            return
        if self.reply_keyboard:
            await _send(self.update, t("tickets.report.noted", self.lang), ReplyKeyboardRemove())
            self.reply_keyboard = False
        await _send(self.update, text, markup)

    async def ask_next(self, intro: str | None = None) -> None:
        """Save the draft and ask for whatever is still missing (``intro`` leads the question)."""
        step, nearby = await self.desk.advance(self.draft)
        await self._ask(step, nearby, intro)
        await self.save()

    async def _ask(self, step: Step, nearby: list[NearbyTicket], intro: str | None) -> None:
        lang, city, draft = self.lang, self.desk.city, self.draft
        if intro and self.reply_keyboard:
            # What we say about the last answer also takes its reply keyboard away.
            await self.say(intro)
            intro = None

        def lead(text: str) -> str:
            return f"{intro}\n\n{text}" if intro else text

        if step is Step.CATEGORY:
            await self.say(lead(t("tickets.report.ask_category", lang)),
                           kb.category_keyboard(city, lang))
        elif step is Step.DESCRIPTION:
            await self.say(lead(t("tickets.report.ask_description", lang, limit=MAX_DESCRIPTION)),
                           InlineKeyboardMarkup([kb.cancel_row(lang)]))
        elif step is Step.PHOTOS:
            await self.say(lead(t("tickets.report.ask_photos", lang, limit=MAX_REPORT_PHOTOS)),
                           kb.photos_keyboard(len(draft.photos), lang))
        elif step is Step.LOCATION:
            # Two messages: a reply keyboard (the location button) and the inline district list
            # cannot share one.
            await _send(self.update, lead(t("tickets.report.ask_location", lang)),
                        kb.location_reply_keyboard(lang))
            self.reply_keyboard = True
            await _send(self.update, t("tickets.report.or_choose_district", lang),
                        kb.district_keyboard(city, lang))
        elif step is Step.DISTRICT:
            await self.say(lead(self._district_question()),
                           kb.district_keyboard(city, lang, draft.candidates,
                                                offer_others=bool(draft.candidates)))
        elif step is Step.NEARBY:
            await self.say(lead(render_nearby(nearby, city, lang)),
                           kb.nearby_keyboard(nearby, lang))
        elif step is Step.CONSENT:
            await self.say(lead(t("tickets.report.ask_consent", lang)), kb.consent_keyboard(lang))
        elif step is Step.PHONE:
            await _send(self.update, lead(t("tickets.report.ask_phone", lang)),
                        kb.phone_reply_keyboard(lang))
            self.reply_keyboard = True
        else:
            await self.say(lead(render_draft(draft, city, lang)), kb.summary_keyboard(lang))

    def _district_question(self) -> str:
        lang, city, draft = self.lang, self.desk.city, self.draft
        if draft.pending_district:
            text = t("tickets.report.confirm_district", lang,
                     district=district_label(city, draft.pending_district, lang))
            if draft.routed_to_nearest:
                text = t("tickets.report.nearest", lang) + "\n" + text
            return text
        if draft.candidates:
            return t("tickets.report.choose_among", lang, matched=draft.address or "")
        return t("tickets.report.choose_district", lang)

    def located(self, result: Located) -> str | None:
        """What to tell the resident about where their report goes."""
        lang, city = self.lang, self.desk.city
        if result.outside_city:
            return t("tickets.report.outside_city", lang, city=city.name(lang))
        if result.unknown:
            return t("tickets.report.address_unknown", lang)
        if not result.accepted:
            return t("tickets.report.location_received", lang)
        district = district_label(city, self.draft.district_id or "", lang)
        text = t("tickets.report.routed", lang, district=district,
                 how=routing_label(self.draft.routing_method, lang))
        if self.draft.routed_to_nearest:
            text = t("tickets.report.nearest", lang) + "\n" + text
        return text


async def _start(update: Update, context: QRContext, draft: ReportDraft, lang: Lang,
                 intro: str) -> None:
    session = ReportSession(update, context, draft, lang)
    await session.ask_next(intro)


def _intro(draft: ReportDraft, lang: str) -> str:
    parts = [t("tickets.report.start", lang)]
    if draft.urgent:
        parts.insert(0, t("tickets.report.start_urgent", lang))
    if draft.prefilled and draft.description:
        parts.append(t("tickets.report.prefilled", lang, text=draft.description))
    return "\n\n".join(parts)


# -- starting a report --------------------------------------------------------------------------

async def start_report(update: Update, context: QRContext) -> None:
    """Start the guided report flow (category first)."""
    chat = update.effective_chat
    lang = await user_lang(update, context)
    if chat is not None and chat.type != chat.PRIVATE:
        await _send(update, t("tickets.report.private_only", lang))
        return
    conversation = await context.services.conversations.get(*_ids(update))
    if conversation is not None and conversation.flow == REPORT_FLOW:
        # A second /report must not throw away a half-filled one; /cancel does that.
        session = await ReportSession.load(update, context, conversation)
        await session.ask_next(t("tickets.report.resumed", session.lang))
        return
    draft = _desk(context).start()
    await _start(update, context, draft, lang, _intro(draft, lang))


async def report_about_question(update: Update, context: QRContext) -> None:
    """Start a report from "talk to staff" under an answer, the question as its description."""
    query = update.callback_query
    assert query is not None
    (question_id,) = _args(update)
    _chat_id, user_id = _ids(update)
    draft, question_lang = await _desk(context).start_from_question(int(question_id), user_id)
    chosen = await context.services.users.language(user_id)
    lang = chosen or normalise_lang(question_lang or None,
                                    await user_lang(update, context))
    await query.answer()
    await _start(update, context, draft, lang, _intro(draft, lang))


async def log_urgent_call(update: Update, context: QRContext) -> None:
    """One tap under an urgent answer: the emergency becomes an urgent ticket at once, then the
    resident is asked where it is (their location moves a ticket whose district was a guess)."""
    query = update.callback_query
    assert query is not None
    (question_id,) = _args(update)
    chat_id, user_id = _ids(update)
    lang = await user_lang(update, context)
    subscription = await context.services.subscriptions.get(chat_id)
    try:
        outcome = await _desk(context).file_urgent_call(
            int(question_id), user_id, chat_id, lang, subscription.district_ids)
    except NoDispatchDesk:
        # Nowhere to send it without asking: the guided report, urgent and pre-filled.
        await report_about_question(update, context)
        return
    ticket = outcome.ticket
    await query.answer(html_to_text(t("tickets.urgent.toast", lang)))
    await _drop_urgent_button(update)
    await context.services.conversations.set(chat_id, user_id, Conversation(
        ADD_INFO_FLOW, "waiting", {"ticket_id": ticket.id, "lang": lang, "urgent": True}))
    text = render_urgent_logged(ticket, context.services.city, lang) + "\n\n" \
        + t("tickets.urgent.where", lang)
    await _send(update, text, kb.urgent_follow_up_keyboard(lang))


async def _drop_urgent_button(update: Update) -> None:
    """Take the urgent-call button off the answer (the rest of its buttons stay)."""
    query = update.callback_query
    message = query.message if query is not None else None
    markup = getattr(message, "reply_markup", None)
    if query is None or markup is None:
        return
    rows = [row for row in markup.inline_keyboard
            if not any(b.callback_data == query.data for b in row)]
    try:
        await query.edit_message_reply_markup(InlineKeyboardMarkup(rows) if rows else None)
    except BadRequest:
        pass  # too old to edit, or already changed: the ticket is filed either way


async def report_with_photo(update: Update, context: QRContext, _conv: Conversation) -> None:
    """Start a report with the photo a resident sent outside any flow."""
    message = update.effective_message
    assert message is not None and message.photo
    lang = await user_lang(update, context, message.caption)
    desk = _desk(context)
    draft = desk.start()
    desk.add_photo(draft, message.photo[_LARGEST].file_id)
    if message.caption:
        try:
            desk.set_description(draft, message.caption)
        except InvalidInput:
            pass  # an unusable caption is simply not the description; the flow asks for one
    await _start(update, context, draft, lang,
                 t("tickets.report.start_from_photo", lang) + "\n\n" + _intro(draft, lang))


async def report_at_location(update: Update, context: QRContext, _conv: Conversation) -> None:
    """Start a report at the location a resident shared outside any flow."""
    message = update.effective_message
    assert message is not None and message.location is not None
    lang = await user_lang(update, context)
    session = ReportSession(update, context, _desk(context).start(), lang)
    result = session.desk.locate(session.draft, message.location.latitude,
                                 message.location.longitude)
    intro = t("tickets.report.start_from_location", lang)
    note = session.located(result)
    await session.ask_next("\n\n".join(p for p in (intro, note, _intro(session.draft, lang)) if p))


# -- the flow: typed text, photos, locations, contacts -----------------------------------------

async def take_report_text(update: Update, context: QRContext, conv: Conversation) -> None:
    """Use typed text for the step the report is at (description, address, phone)."""
    message = update.effective_message
    assert message is not None and message.text is not None
    session = await ReportSession.load(update, context, conv)
    step, lang = session.draft.next_step(), session.lang
    if step is Step.DESCRIPTION:
        session.desk.set_description(session.draft, message.text)
        await session.ask_next()
    elif step in (Step.LOCATION, Step.DISTRICT):
        result = session.desk.locate_address(session.draft, message.text)
        await session.ask_next(session.located(result))
    elif step is Step.PHONE:
        if _is_label(message.text, "tickets.button.no_phone"):
            session.desk.skip_phone(session.draft)
            await session.ask_next()
        else:
            await _send(update, t("tickets.report.phone_button_only", lang),
                        kb.phone_reply_keyboard(lang))
    elif step is Step.CATEGORY and not session.draft.description:
        # Typed before choosing the category: that is the description, kept rather than lost.
        session.desk.set_description(session.draft, message.text)
        await session.ask_next(t("tickets.report.description_kept", lang))
    else:
        # Buttons are waiting; typing does not answer them. Ask again.
        await session.ask_next(t("tickets.report.use_buttons", lang))


async def take_report_photo(update: Update, context: QRContext, conv: Conversation) -> None:
    """Attach a photo to the report (its caption is the description if that is still missing)."""
    message = update.effective_message
    assert message is not None and message.photo
    session = await ReportSession.load(update, context, conv)
    count = session.desk.add_photo(session.draft, message.photo[_LARGEST].file_id)
    step = session.draft.next_step()
    if step is Step.DESCRIPTION and message.caption:
        session.desk.set_description(session.draft, message.caption)
        await session.ask_next(photos_progress(count, session.lang))
    elif step is Step.PHOTOS:
        await session.say(photos_progress(count, session.lang),
                          kb.photos_keyboard(count, session.lang))
        await session.save()
    else:
        await session.ask_next(photos_progress(count, session.lang))


async def take_report_location(update: Update, context: QRContext, conv: Conversation) -> None:
    """Route the report by the location the resident shared."""
    message = update.effective_message
    assert message is not None and message.location is not None
    session = await ReportSession.load(update, context, conv)
    result = session.desk.locate(session.draft, message.location.latitude,
                                 message.location.longitude)
    note = session.located(result)
    if result.outside_city:
        await _send(update, note or "", kb.district_keyboard(session.desk.city, session.lang))
        await session.save()
        return
    await session.ask_next(note)


async def take_contact(update: Update, context: QRContext) -> None:
    """Keep the phone number the resident shared with the contact button, if it is their own."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and message.contact is not None and user is not None
    conversation = await context.services.conversations.get(*_ids(update))
    if conversation is not None and conversation.flow == ADD_INFO_FLOW:
        await _contact_for_ticket(update, context, conversation)
        return
    if conversation is None or conversation.flow != REPORT_FLOW:
        await _send(update, t("tickets.report.contact_unexpected",
                              await user_lang(update, context)), ReplyKeyboardRemove())
        return
    session = await ReportSession.load(update, context, conversation)
    if session.draft.next_step() is not Step.PHONE or message.contact.user_id != user.id:
        # Someone else's card (forwarded or picked from the address book) is not consent.
        await _send(update, t("tickets.report.phone_own_only", session.lang),
                    kb.phone_reply_keyboard(session.lang))
        return
    session.desk.set_phone(session.draft, message.contact.phone_number)
    await session.ask_next(t("tickets.report.phone_received", session.lang))


async def _contact_for_ticket(update: Update, context: QRContext, conv: Conversation) -> None:
    """The resident's own phone number, sent with the button, for their open ticket."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None and message.contact is not None and user is not None
    lang = normalise_lang(conv.data.get("lang"), context.services.settings.default_language)
    if message.contact.user_id != user.id:
        # Someone else's card (forwarded or picked from the address book) is not consent.
        await _send(update, t("tickets.report.phone_own_only", lang),
                    kb.urgent_follow_up_keyboard(lang, location=False))
        return
    name = " ".join(p for p in (message.contact.first_name, message.contact.last_name) if p)
    outcome = await context.services.tickets.share_contact(
        int(conv.data["ticket_id"]), user.id, name or None, message.contact.phone_number)
    ticket = outcome.ticket
    text = t("tickets.mine.phone_added", lang, number=ticket.number,
             district=district_label(context.services.city, ticket.district_id, lang))
    await _urgent_follow_up(update, context, conv, text, phoned=True)


def _is_label(text: str, key: str) -> bool:
    """Whether ``text`` is what a reply-keyboard button of ``key`` sends, in either language."""
    return text.strip() in {html_to_text(t(key, lang)).strip() for lang in LANGS}


# -- the flow: buttons --------------------------------------------------------------------------

async def choose_category(update: Update, context: QRContext) -> None:
    """Take the category the resident picked."""
    (category_id,) = _args(update)
    session = await ReportSession.load(update, context)
    session.expect(Step.CATEGORY)
    session.desk.set_category(session.draft, str(category_id))
    await update.callback_query.answer()  # type: ignore[union-attr]
    await _drop_buttons(update)
    await session.ask_next()


async def finish_photos(update: Update, context: QRContext) -> None:
    """Go on from the photos step (skipped or done)."""
    _args(update)
    session = await ReportSession.load(update, context)
    session.expect(Step.PHOTOS)
    session.desk.finish_photos(session.draft)
    await update.callback_query.answer()  # type: ignore[union-attr]
    await _drop_buttons(update)
    await session.ask_next()


async def choose_district(update: Update, context: QRContext) -> None:
    """Take the district the resident picked or confirmed."""
    (district_id,) = _args(update)
    session = await ReportSession.load(update, context)
    session.expect(Step.LOCATION, Step.DISTRICT)
    session.desk.choose_district(session.draft, str(district_id))
    await update.callback_query.answer()  # type: ignore[union-attr]
    await _drop_buttons(update)
    lang, city = session.lang, session.desk.city
    await session.ask_next(t("tickets.report.routed", lang,
                             district=district_label(city, str(district_id), lang),
                             how=routing_label(session.draft.routing_method, lang)))


async def show_all_districts(update: Update, context: QRContext) -> None:
    """Offer every district instead of the proposed ones."""
    _args(update)
    session = await ReportSession.load(update, context)
    session.expect(Step.DISTRICT)
    session.desk.offer_all_districts(session.draft)
    await update.callback_query.answer()  # type: ignore[union-attr]
    await _drop_buttons(update)
    await session.ask_next()


async def follow_nearby(update: Update, context: QRContext) -> None:
    """Follow the open ticket nearby instead of filing the same problem again."""
    (ticket_id,) = _args(update)
    session = await ReportSession.load(update, context)
    session.expect(Step.NEARBY)
    _chat_id, user_id = _ids(update)
    outcome = await session.desk.follow(kb.ticket_id(ticket_id), user_id, session.lang)
    await context.services.conversations.clear(*_ids(update))
    await update.callback_query.answer()  # type: ignore[union-attr]
    await _drop_buttons(update)
    await session.say(t("tickets.report.following", session.lang, number=outcome.ticket.number))


async def file_new_anyway(update: Update, context: QRContext) -> None:
    """Go on filing: the tickets nearby are about another problem."""
    _args(update)
    session = await ReportSession.load(update, context)
    session.expect(Step.NEARBY)
    session.desk.file_anyway(session.draft)
    await update.callback_query.answer()  # type: ignore[union-attr]
    await _drop_buttons(update)
    await session.ask_next()


async def choose_consent(update: Update, context: QRContext) -> None:
    """Record whether staff may see the resident's name (and phone)."""
    (choice,) = _args(update)
    user = update.effective_user
    assert user is not None
    session = await ReportSession.load(update, context)
    session.expect(Step.CONSENT)
    session.desk.set_consent(session.draft, str(choice), user.full_name)
    await update.callback_query.answer()  # type: ignore[union-attr]
    await _drop_buttons(update)
    await session.ask_next()


async def edit_report(update: Update, context: QRContext) -> None:
    """Reopen one part of the report from the summary."""
    (part,) = _args(update)
    session = await ReportSession.load(update, context)
    session.expect(Step.SUMMARY)
    session.desk.edit(session.draft, str(part))
    await update.callback_query.answer()  # type: ignore[union-attr]
    await _drop_buttons(update)
    await session.ask_next()


async def submit_report(update: Update, context: QRContext) -> None:
    """File the report as a ticket and tell the resident its number and expected times."""
    _args(update)
    session = await ReportSession.load(update, context)
    session.expect(Step.SUMMARY)
    chat_id, user_id = _ids(update)
    outcome = await session.desk.file(session.draft, resident_id=user_id, lang=session.lang,
                                      chat_id=chat_id)
    await context.services.conversations.clear(chat_id, user_id)
    await update.callback_query.answer()  # type: ignore[union-attr]
    await _drop_buttons(update)
    await session.say(render_filed(outcome.ticket, session.desk.city, session.lang))


async def cancel_report(update: Update, context: QRContext) -> None:
    """Leave the report flow from its Cancel button."""
    _args(update)
    await update.callback_query.answer()  # type: ignore[union-attr]
    await _drop_buttons(update)
    await cancel_flow(update, context)


async def cancel_flow(update: Update, context: QRContext) -> None:
    """Leave whatever multi-step flow the user is in."""
    lang = await user_lang(update, context)
    conversation = await context.services.conversations.get(*_ids(update))
    if conversation is not None:
        lang = normalise_lang(conversation.data.get("lang"), lang)
    had_flow = await context.services.conversations.clear(*_ids(update))
    key = "tickets.cancelled" if had_flow else "tickets.nothing_to_cancel"
    chat = update.effective_chat
    # Only a private chat can have our reply keyboard (share location / phone) showing.
    private = chat is not None and chat.type == chat.PRIVATE
    await _send(update, t(key, lang), ReplyKeyboardRemove() if private else None)


# -- the resident's tickets ---------------------------------------------------------------------

async def list_my_tickets(update: Update, context: QRContext) -> None:
    """List the tickets the resident filed or follows, with their state and deadlines."""
    _chat_id, user_id = _ids(update)
    lang = await user_lang(update, context)
    tickets = context.services.tickets
    mine = await tickets.my_tickets(user_id)
    owned = set()
    for summary in mine:
        if summary.state in OPEN_STATES or summary.state == State.RESOLVED:
            view = await tickets.view(summary.id)
            if view.resident_id == user_id:
                owned.add(summary.id)
    text = render_list(t("tickets.mine.title", lang), mine, tickets.city, lang,
                       "tickets.mine.empty")
    await _send(update, text, kb.my_tickets_keyboard(mine, user_id, owned, lang))


async def start_adding_info(update: Update, context: QRContext) -> None:
    """Ask for the text or photo the resident wants to add to their ticket."""
    (ticket_id,) = _args(update)
    lang = await user_lang(update, context)
    ticket = await context.services.tickets.view(kb.ticket_id(ticket_id))
    await context.services.conversations.set(*_ids(update), Conversation(
        ADD_INFO_FLOW, "waiting", {"ticket_id": ticket.id, "lang": lang}))
    await update.callback_query.answer()  # type: ignore[union-attr]
    await _send(update, t("tickets.mine.add_prompt", lang, number=ticket.number))


async def add_info_text(update: Update, context: QRContext, conv: Conversation) -> None:
    """Add the typed text to the resident's ticket."""
    message = update.effective_message
    assert message is not None and message.text is not None
    await _add_info(update, context, conv, text=message.text)


async def add_info_photo(update: Update, context: QRContext, conv: Conversation) -> None:
    """Add the photo (and its caption) to the resident's ticket."""
    message = update.effective_message
    assert message is not None and message.photo
    await _add_info(update, context, conv, text=message.caption or None,
                    photo=message.photo[_LARGEST].file_id)


async def _add_info(update: Update, context: QRContext, conv: Conversation, *,
                    text: str | None, photo: str | None = None) -> None:
    lang = normalise_lang(conv.data.get("lang"), context.services.settings.default_language)
    _chat_id, user_id = _ids(update)
    outcome = await context.services.tickets.add_info(
        int(conv.data["ticket_id"]), user_id, text=text, photo_file_id=photo)
    await context.services.conversations.clear(*_ids(update))
    await _send(update, t("tickets.mine.added", lang, number=outcome.ticket.number))


async def add_info_location(update: Update, context: QRContext, conv: Conversation) -> None:
    """Add the shared location to the resident's ticket; a ticket still waiting for a district
    (an urgent call logged in one tap) goes to the district the point is in."""
    message = update.effective_message
    assert message is not None and message.location is not None
    lang = normalise_lang(conv.data.get("lang"), context.services.settings.default_language)
    _chat_id, user_id = _ids(update)
    ticket_id = int(conv.data["ticket_id"])
    before = (await context.services.tickets.view(ticket_id)).district_id
    outcome = await _desk(context).locate_ticket(
        ticket_id, user_id, message.location.latitude, message.location.longitude)
    ticket = outcome.ticket
    key = "tickets.mine.location_routed" if ticket.district_id != before \
        else "tickets.mine.location_added"
    text = t(key, lang, number=ticket.number,
             district=district_label(context.services.city, ticket.district_id, lang))
    await _urgent_follow_up(update, context, conv, text, located=True)


async def _urgent_follow_up(update: Update, context: QRContext, conv: Conversation, text: str,
                            *, located: bool = False, phoned: bool = False) -> None:
    """After a location or a phone number: an urgent call asks for the other one while it is
    missing; otherwise adding information is over."""
    lang = normalise_lang(conv.data.get("lang"), context.services.settings.default_language)
    located = located or bool(conv.data.get("located"))
    phoned = phoned or bool(conv.data.get("phoned"))
    if conv.data.get("urgent") and not (located and phoned):
        await context.services.conversations.set(*_ids(update), Conversation(
            ADD_INFO_FLOW, "waiting", {**conv.data, "located": located, "phoned": phoned}))
        ask = "tickets.urgent.phone_next" if located else "tickets.urgent.location_next"
        await _send(update, text + "\n\n" + t(ask, lang),
                    kb.urgent_follow_up_keyboard(lang, location=not located, phone=not phoned))
        return
    await context.services.conversations.clear(*_ids(update))
    await _send(update, text, ReplyKeyboardRemove())


async def ask_to_withdraw(update: Update, context: QRContext) -> None:
    """Ask the resident to confirm withdrawing their ticket."""
    (ticket_id,) = _args(update)
    lang = await user_lang(update, context)
    ticket = await context.services.tickets.view(kb.ticket_id(ticket_id))
    await update.callback_query.answer()  # type: ignore[union-attr]
    await _send(update, t("tickets.mine.withdraw_confirm", lang, number=ticket.number),
                kb.withdraw_confirm_keyboard(ticket.id, ticket.number, lang))


async def withdraw_ticket(update: Update, context: QRContext) -> None:
    """Withdraw the resident's ticket."""
    (ticket_id,) = _args(update)
    lang = await user_lang(update, context)
    _chat_id, user_id = _ids(update)
    outcome = await context.services.tickets.withdraw(kb.ticket_id(ticket_id), user_id)
    await update.callback_query.answer()  # type: ignore[union-attr]
    await _drop_buttons(update)
    await _send(update, t("tickets.mine.withdrawn", lang, number=outcome.ticket.number))


async def give_verdict(update: Update, context: QRContext) -> None:
    """Take "solved" (then ask for satisfaction) or "not solved" (reopen) on a resolution."""
    query = update.callback_query
    assert query is not None
    ticket_id, solved = _args(update)
    if solved not in (0, 1):
        raise StaleAction("solved is 0 or 1")
    _chat_id, user_id = _ids(update)
    tickets = context.services.tickets
    ticket = await tickets.view(kb.ticket_id(ticket_id))
    lang = normalise_lang(ticket.lang, await user_lang(update, context))
    if solved:
        # Nothing is stored yet: the verdict is recorded with the satisfaction, in one call.
        await query.answer()
        await _drop_buttons(update)
        await _send(update, t("tickets.verdict.how_satisfied", lang, number=ticket.number),
                    kb.satisfaction_keyboard(ticket.id, lang))
        return
    outcome = await tickets.rate(ticket.id, user_id, solved=False, satisfaction=None)
    await query.answer()
    await _drop_buttons(update)
    await _send(update, t("tickets.verdict.reopened", lang, number=outcome.ticket.number))


async def rate_satisfaction(update: Update, context: QRContext) -> None:
    """Record that the problem is solved and how satisfied the resident is."""
    query = update.callback_query
    assert query is not None
    ticket_id, satisfaction = _args(update)
    _chat_id, user_id = _ids(update)
    outcome = await context.services.tickets.rate(kb.ticket_id(ticket_id), user_id, solved=True,
                                                  satisfaction=str(satisfaction))
    lang = normalise_lang(outcome.ticket.lang, await user_lang(update, context))
    await query.answer()
    await _drop_buttons(update)
    await _send(update, t("tickets.verdict.thanks", lang, number=outcome.ticket.number))


def register(app: QRApplication) -> None:
    app.add_handler(CommandHandler("report", start_report))
    app.add_handler(CommandHandler("mytickets", list_my_tickets))
    app.add_handler(CommandHandler("cancel", cancel_flow))
    app.add_handler(MessageHandler(filters.CONTACT, take_contact))
    for act, callback in (
        (qa_keyboards.TALK_TO_STAFF, report_about_question),
        (qa_keyboards.URGENT_CALL, log_urgent_call),
        (kb.REPORT_CATEGORY, choose_category),
        (kb.REPORT_PHOTOS_DONE, finish_photos),
        (kb.REPORT_DISTRICT, choose_district),
        (kb.REPORT_ALL_DISTRICTS, show_all_districts),
        (kb.REPORT_FOLLOW, follow_nearby),
        (kb.REPORT_FILE_NEW, file_new_anyway),
        (kb.REPORT_CONSENT, choose_consent),
        (kb.REPORT_EDIT, edit_report),
        (kb.REPORT_SUBMIT, submit_report),
        (kb.REPORT_CANCEL, cancel_report),
        (kb.TICKET_ADD_INFO, start_adding_info),
        (kb.TICKET_WITHDRAW, ask_to_withdraw),
        (kb.TICKET_WITHDRAW_CONFIRM, withdraw_ticket),
        (kb.TICKET_SOLVED, give_verdict),
        (kb.TICKET_SATISFACTION, rate_satisfaction),
    ):
        app.add_handler(CallbackQueryHandler(callback, pattern=act.pattern))
    register_flow(Flow(REPORT_FLOW, on_text=take_report_text, on_location=take_report_location,
                       on_photo=take_report_photo))
    register_flow(Flow(ADD_INFO_FLOW, on_text=add_info_text, on_photo=add_info_photo,
                       on_location=add_info_location))
    # Outside any flow, a photo or a location in a private chat starts a report with it.
    register_flow(Flow("default:photo", on_photo=report_with_photo))
    register_flow(Flow("default:location", on_location=report_at_location))
    install_outbox(app)
