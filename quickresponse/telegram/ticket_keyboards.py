"""Buttons of the tickets feature (resident report flow, resident's tickets, staff work) and the
callback actions they carry.

Every button's data goes through the one codec. Ticket ids are numbers, district and category
ids short ASCII text, so every action stays far below Telegram's 64 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from quickresponse.districts import City
from quickresponse.errors import StaleAction
from quickresponse.i18n import html_to_text, t
from quickresponse.reports import EDITABLE, Consent
from quickresponse.telegram.codec import action
from quickresponse.telegram.render import button_text
from quickresponse.tickets.service import (
    NearbyTicket,
    Satisfaction,
    State,
    TicketSummary,
    TicketView,
)

# -- resident: the report flow ------------------------------------------------------------------
REPORT_CATEGORY = action("rcat", str)
REPORT_PHOTOS_DONE = action("rphotos")
REPORT_DISTRICT = action("rdist", str)
REPORT_ALL_DISTRICTS = action("rdists")
REPORT_FOLLOW = action("rfollow", int)
REPORT_FILE_NEW = action("rnew")
REPORT_CONSENT = action("rconsent", str)
REPORT_SUBMIT = action("rsubmit")
REPORT_EDIT = action("redit", str)
REPORT_CANCEL = action("rcancel")

# -- resident: their tickets --------------------------------------------------------------------
TICKET_ADD_INFO = action("tadd", int)
TICKET_WITHDRAW = action("twd", int)
TICKET_WITHDRAW_CONFIRM = action("twdok", int)
# The verdict on a resolution: ticket id, 1 solved / 0 not solved; then the satisfaction.
TICKET_SOLVED = action("tsolved", int, int)
TICKET_SATISFACTION = action("tsat", int, str)

# -- staff --------------------------------------------------------------------------------------
CLAIM = action("sclaim", int)
NOTE = action("snote", int)
RESOLVE = action("sresolve", int)
TRANSFER = action("sxfer", int)
TRANSFER_TO = action("sxferto", int, str)
REJECT = action("sreject", int)
DUPLICATE = action("sdup", int)
# Back from the transfer district list to the ticket's own buttons.
STAFF_BACK = action("sback", int)


# Ticket ids are 32-bit in the database; a forged number beyond that is simply not a ticket.
_MAX_TICKET_ID = 2**31 - 1


def ticket_id(value: object) -> int:
    """A ticket id from button data or typed text; StaleAction if it cannot be one."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= _MAX_TICKET_ID:
        raise StaleAction(f"not a ticket id: {value!r}")
    return value


def _button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(button_text(html_to_text(label)), callback_data=data)


def _rows(buttons: Sequence[InlineKeyboardButton], width: int
          ) -> list[list[InlineKeyboardButton]]:
    return [list(buttons[i:i + width]) for i in range(0, len(buttons), width)]


def cancel_row(lang: str) -> list[InlineKeyboardButton]:
    return [_button(t("tickets.button.cancel", lang), REPORT_CANCEL.pack())]


# -- report flow --------------------------------------------------------------------------------

def category_keyboard(city: City, lang: str) -> InlineKeyboardMarkup:
    rows = [[_button(f"{c.emoji} {c.name(lang)}".strip(), REPORT_CATEGORY.pack(c.id))]
            for c in city.categories]
    rows.append(cancel_row(lang))
    return InlineKeyboardMarkup(rows)


def photos_keyboard(count: int, lang: str) -> InlineKeyboardMarkup:
    key = "tickets.button.photos_done" if count else "tickets.button.photos_skip"
    return InlineKeyboardMarkup([[_button(t(key, lang), REPORT_PHOTOS_DONE.pack())],
                                 cancel_row(lang)])


def location_reply_keyboard(lang: str) -> ReplyKeyboardMarkup:
    """The keyboard that replaces the phone's: one tap shares the location."""
    return ReplyKeyboardMarkup(
        [[KeyboardButton(html_to_text(t("tickets.button.share_location", lang)),
                         request_location=True)]],
        resize_keyboard=True, one_time_keyboard=True,
        input_field_placeholder=button_text(html_to_text(t("tickets.report.address_hint", lang))),
    )


def urgent_follow_up_keyboard(lang: str, *, location: bool = True, phone: bool = True
                              ) -> ReplyKeyboardMarkup:
    """After an urgent call is logged: the buttons that share what staff still need."""
    rows = []
    if location:
        rows.append([KeyboardButton(html_to_text(t("tickets.button.share_location", lang)),
                                    request_location=True)])
    if phone:
        rows.append([KeyboardButton(html_to_text(t("tickets.button.share_phone", lang)),
                                    request_contact=True)])
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=False)


def phone_reply_keyboard(lang: str) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        [[KeyboardButton(html_to_text(t("tickets.button.share_phone", lang)),
                         request_contact=True)],
         [KeyboardButton(html_to_text(t("tickets.button.no_phone", lang)))]],
        resize_keyboard=True, one_time_keyboard=True,
    )


def district_keyboard(city: City, lang: str, candidates: Iterable[str] = (),
                      *, offer_others: bool = False) -> InlineKeyboardMarkup:
    """The districts to pick from: ``candidates`` when given (with "another district"), else
    all of them, three to a row."""
    chosen = [city.district(d) for d in candidates if city.has_district(d)]
    districts = chosen or list(city.districts)
    buttons = [_button(d.name(lang), REPORT_DISTRICT.pack(d.id)) for d in districts]
    rows = _rows(buttons, 1 if chosen else 3)
    if chosen and offer_others:
        rows.append([_button(t("tickets.button.other_district", lang),
                             REPORT_ALL_DISTRICTS.pack())])
    rows.append(cancel_row(lang))
    return InlineKeyboardMarkup(rows)


def nearby_keyboard(found: Sequence[NearbyTicket], lang: str) -> InlineKeyboardMarkup:
    rows = [[_button(t("tickets.button.follow", lang, number=n.number), REPORT_FOLLOW.pack(n.id))]
            for n in found[:5]]
    rows.append([_button(t("tickets.button.file_new", lang), REPORT_FILE_NEW.pack())])
    rows.append(cancel_row(lang))
    return InlineKeyboardMarkup(rows)


def consent_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([
        [_button(t("tickets.button.consent_name", lang), REPORT_CONSENT.pack(Consent.NAME))],
        [_button(t("tickets.button.consent_phone", lang), REPORT_CONSENT.pack(Consent.PHONE))],
        [_button(t("tickets.button.consent_none", lang), REPORT_CONSENT.pack(Consent.NONE))],
        cancel_row(lang),
    ])


def summary_keyboard(lang: str) -> InlineKeyboardMarkup:
    edits = [_button(t(f"tickets.button.edit_{part}", lang), REPORT_EDIT.pack(part))
             for part in EDITABLE]
    return InlineKeyboardMarkup([
        [_button(t("tickets.button.submit", lang), REPORT_SUBMIT.pack())],
        *_rows(edits, 2),
        cancel_row(lang),
    ])


# -- the resident's tickets ---------------------------------------------------------------------

def my_tickets_keyboard(tickets: Sequence[TicketSummary], user_id: int, owned: set[int],
                        lang: str) -> InlineKeyboardMarkup | None:
    """Add information or withdraw, for the open tickets the resident filed themselves; the
    verdict for the resolved ones."""
    rows = []
    for ticket in tickets:
        if ticket.id not in owned:
            continue
        if ticket.state == State.RESOLVED:
            # The verdict, again here in case the message that asked for it is lost.
            rows.append([
                _button(t("tickets.button.solved_n", lang, number=ticket.number),
                        TICKET_SOLVED.pack(ticket.id, 1)),
                _button(t("tickets.button.not_solved_n", lang, number=ticket.number),
                        TICKET_SOLVED.pack(ticket.id, 0)),
            ])
            continue
        if ticket.state not in (State.NEW, State.CLAIMED, State.REOPENED):
            continue
        rows.append([
            _button(t("tickets.button.add_info", lang, number=ticket.number),
                    TICKET_ADD_INFO.pack(ticket.id)),
            _button(t("tickets.button.withdraw", lang, number=ticket.number),
                    TICKET_WITHDRAW.pack(ticket.id)),
        ])
    return InlineKeyboardMarkup(rows[:10]) if rows else None


def withdraw_confirm_keyboard(ticket_id: int, number: str, lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        _button(t("tickets.button.withdraw_yes", lang, number=number),
                TICKET_WITHDRAW_CONFIRM.pack(ticket_id)),
    ]])


def solved_keyboard(ticket_id: int, lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        _button(t("tickets.button.solved", lang), TICKET_SOLVED.pack(ticket_id, 1)),
        _button(t("tickets.button.not_solved", lang), TICKET_SOLVED.pack(ticket_id, 0)),
    ]])


def satisfaction_keyboard(ticket_id: int, lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([
        [_button(t(f"tickets.button.satisfaction_{s.value}", lang),
                 TICKET_SATISFACTION.pack(ticket_id, s.value))]
        for s in Satisfaction
    ])


# -- staff --------------------------------------------------------------------------------------

def staff_keyboard(ticket: TicketView, lang: str) -> InlineKeyboardMarkup | None:
    """What staff can do with the ticket in its state: claim it, then work it."""
    tid = ticket.id
    rows: list[list[InlineKeyboardButton]] = []
    if ticket.state in (State.NEW, State.REOPENED):
        rows.append([_button(t("tickets.button.claim", lang), CLAIM.pack(tid))])
    if ticket.state in (State.CLAIMED, State.REOPENED):
        rows.append([_button(t("tickets.button.note", lang), NOTE.pack(tid)),
                     _button(t("tickets.button.resolve", lang), RESOLVE.pack(tid))])
        rows.append([_button(t("tickets.button.transfer", lang), TRANSFER.pack(tid)),
                     _button(t("tickets.button.reject", lang), REJECT.pack(tid)),
                     _button(t("tickets.button.duplicate", lang), DUPLICATE.pack(tid))])
    return InlineKeyboardMarkup(rows) if rows else None


def transfer_keyboard(ticket: TicketView, city: City, lang: str) -> InlineKeyboardMarkup:
    buttons = [_button(d.name(lang), TRANSFER_TO.pack(ticket.id, d.id))
               for d in city.districts if d.id != ticket.district_id]
    rows = _rows(buttons, 3)
    rows.append([_button(t("tickets.button.back", lang), STAFF_BACK.pack(ticket.id))])
    return InlineKeyboardMarkup(rows)
