"""Delivering the tickets outbox: status messages to residents, posts to district groups,
escalations to the admins.

The ticket service writes every message a change causes into its outbox in the change's own
transaction and calls our listener after the commit; a periodic drain catches whatever the
listener could not send (the process died, Telegram was away). Each notification is leased while
it is sent and marked sent or failed afterwards, so delivery is at-least-once and a message is
never lost silently.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, InputMediaPhoto, Message, ReplyParameters
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from quickresponse.i18n import html_to_text, t
from quickresponse.telegram import ticket_keyboards as kb
from quickresponse.telegram.common import QRApplication
from quickresponse.telegram.render import MAX_CAPTION, MAX_MESSAGE, split_html
from quickresponse.ticket_presenter import (
    category_label,
    contact_label,
    district_label,
    local_time,
    render_card,
)
from quickresponse.tickets.errors import TicketNotFound
from quickresponse.tickets.service import Notification, TicketService, TicketView

log = logging.getLogger(__name__)

DRAIN_JOB_ID = "tickets:outbox:drain"
DRAIN_EVERY_SECONDS = 30.0
# Telegram takes 2-10 photos in one album.
_ALBUM = 10


class TicketOutbox:
    """Sends the outbox of one ticket service through one application's bot."""

    def __init__(self, app: QRApplication) -> None:
        self.app = app
        self._running = False
        self._again = False

    @property
    def tickets(self) -> TicketService:
        return self.app.bot_data.services.tickets

    async def drain(self) -> int:
        """Send everything pending; returns how many were delivered.

        A drain already running in this process picks up the new rows itself, so concurrent
        commits do not start concurrent drains (the lease would keep them apart anyway).
        """
        self._again = True
        if self._running:
            return 0
        self._running = True
        sent = 0
        try:
            while self._again:
                self._again = False
                while batch := await self.tickets.take_notifications():
                    for note in batch:
                        sent += await self._deliver_one(note)
        except Exception:  # the periodic drain retries; a listener must not fail a change
            log.exception("draining the ticket outbox failed")
        finally:
            self._running = False
        return sent

    async def _deliver_one(self, note: Notification) -> int:
        try:
            await deliver(self.app.bot, self.tickets, note)
        except TicketNotFound:
            # The ticket was erased (a resident's /forgetme): there is nothing left to tell.
            await self.tickets.mark_failed(note.id, permanent=True, error="ticket is gone")
            return 0
        except Forbidden as exc:
            # Blocked by the resident, or removed from the group: trying again will not help.
            await self.tickets.mark_failed(note.id, permanent=True, error=str(exc))
            if note.audience in ("resident", "follower"):
                await self.app.bot_data.services.users.mark_inactive(note.recipient_id)
            return 0
        except BadRequest as exc:
            permanent = "chat not found" in str(exc).lower() or "not enough rights" in str(
                exc).lower()
            log.warning("ticket notification %s (%s) refused: %s", note.id, note.kind, exc)
            await self.tickets.mark_failed(note.id, permanent=permanent, error=str(exc))
            return 0
        except (RetryAfter, TelegramError) as exc:
            await self.tickets.mark_failed(note.id, permanent=False, error=str(exc))
            return 0
        except Exception as exc:  # a bug in one message must not hold up the others
            log.exception("ticket notification %s (%s) could not be sent", note.id, note.kind)
            await self.tickets.mark_failed(note.id, permanent=False, error=type(exc).__name__)
            return 0
        await self.tickets.mark_sent(note.id)
        return 1


# One outbox per ticket service: a second application built on the same services (tests, a
# restart inside one process) takes over delivery instead of adding a second listener.
_OUTBOXES: weakref.WeakKeyDictionary[TicketService, TicketOutbox] = weakref.WeakKeyDictionary()


def install_outbox(app: QRApplication) -> TicketOutbox:
    """Deliver the ticket outbox through ``app``: after each change and every half minute."""
    services = app.bot_data.services
    outbox = _OUTBOXES.get(services.tickets)
    if outbox is None:
        outbox = _OUTBOXES[services.tickets] = TicketOutbox(app)
        services.tickets.add_outbox_listener(outbox.drain)
    outbox.app = app
    services.scheduler.every(DRAIN_JOB_ID, DRAIN_EVERY_SECONDS, outbox.drain)
    return outbox


# -- rendering and sending one notification -----------------------------------------------------

async def deliver(bot: Bot, tickets: TicketService, note: Notification) -> None:
    """Render ``note`` in its language and send it; raises the Bot API's error on failure."""
    ticket = await tickets.view(note.ticket_id)
    if note.audience in ("resident", "follower"):
        await _send(bot, note.recipient_id, resident_text(note, ticket, tickets),
                    _resident_keyboard(note, ticket))
        return
    await _deliver_to_staff(bot, tickets, note, ticket)


def resident_text(note: Notification, ticket: TicketView, tickets: TicketService) -> str:
    """A status change as the resident (or a follower) reads it, in their language."""
    lang, city, p = note.lang, tickets.city, note.params
    common = {
        "number": ticket.number,
        "category": category_label(city, ticket.category, lang),
        "district": district_label(city, ticket.district_id, lang),
    }
    kind = note.kind
    if kind == "claimed":
        return t("tickets.notify.claimed", lang, **common,
                 resolve_due=local_time(ticket.resolve_due, lang, city))
    if kind == "note":
        return t("tickets.notify.note", lang, **common, note=p.get("note", ""))
    if kind == "resolved":
        key = "tickets.notify.resolved" if note.audience == "resident" \
            else "tickets.notify.resolved_follower"
        return t(key, lang, **common, note=p.get("note", ticket.resolution_note or ""))
    if kind == "transferred":
        return t("tickets.notify.transferred", lang, **common,
                 from_district=district_label(city, str(p.get("from_district", "")), lang),
                 reason=p.get("reason", ""),
                 claim_due=local_time(ticket.claim_due, lang, city),
                 resolve_due=local_time(ticket.resolve_due, lang, city))
    if kind == "rejected":
        return t("tickets.notify.rejected", lang, **common, reason=p.get("reason", ""))
    if kind == "duplicate":
        return t("tickets.notify.duplicate", lang, **common,
                 original=p.get("of_number", ""))
    if kind == "reopened":
        return t("tickets.notify.reopened", lang, **common,
                 resolve_due=local_time(ticket.resolve_due, lang, city))
    if kind == "closed":
        key = "tickets.notify.closed_auto" if p.get("auto") else "tickets.notify.closed"
        return t(key, lang, **common)
    if kind == "withdrawn":
        return t("tickets.notify.withdrawn", lang, **common)
    log.warning("no resident message for notification kind %r", kind)
    return t("tickets.notify.changed", lang, **common,
             state=t(f"tickets.state.{ticket.state}", lang))


def _resident_keyboard(note: Notification, ticket: TicketView) -> InlineKeyboardMarkup | None:
    # Only the resident who filed the ticket gives the verdict on its resolution.
    if note.kind == "resolved" and note.audience == "resident" and ticket.state == "resolved":
        return kb.solved_keyboard(ticket.id, note.lang)
    return None


def staff_text(note: Notification, ticket: TicketView, tickets: TicketService) -> str:
    """The line that says what happened, above the ticket card, for staff and admins."""
    lang, city, p = note.lang, tickets.city, note.params
    number = ticket.number
    kind = note.kind
    if kind == "new":
        if p.get("routed_from"):
            return t("tickets.post.routed_here", lang, number=number,
                     from_district=district_label(city, str(p["routed_from"]), lang))
        if p.get("transferred_from"):
            return t("tickets.post.transferred", lang, number=number,
                     from_district=district_label(city, str(p["transferred_from"]), lang),
                     reason=p.get("reason", ""))
        return t("tickets.post.new", lang, number=number)
    if kind == "info_added":
        return t("tickets.post.info_added", lang, number=number,
                 text=p.get("text") or t("tickets.post.photo_only", lang))
    if kind == "location_added":
        return t("tickets.post.location_added", lang, number=number)
    if kind == "contact_shared":
        return t("tickets.post.contact_shared", lang, number=number,
                 contact=contact_label(ticket, lang))
    if kind == "routed_away":
        return t("tickets.post.routed_away", lang, number=number,
                 district=district_label(city, str(p.get("to_district", "")), lang))
    if kind == "withdrawn":
        return t("tickets.post.withdrawn", lang, number=number)
    if kind == "reopened":
        return t("tickets.post.reopened", lang, number=number,
                 resolve_due=local_time(ticket.resolve_due, lang, city))
    if kind == "rated":
        return t("tickets.post.rated", lang, number=number,
                 satisfaction=t(f"tickets.satisfaction.{p.get('satisfaction', 'satisfied')}",
                                lang))
    if kind == "escalated":
        stage = "claim" if p.get("stage") == "claim" else "resolve"
        level = "admins" if int(p.get("step", 1)) >= 2 else "district"
        return t(f"tickets.post.escalated_{stage}_{level}", lang, number=number,
                 district=district_label(city, ticket.district_id, lang),
                 minutes=int(p.get("overdue_minutes", 0)))
    log.warning("no staff message for notification kind %r", kind)
    return t("tickets.post.changed", lang, number=number,
             state=t(f"tickets.state.{ticket.state}", lang))


# The kinds after which the card (with the buttons for the ticket's state) is posted again.
_WITH_CARD = frozenset({"new", "reopened", "escalated"})


async def _deliver_to_staff(bot: Bot, tickets: TicketService, note: Notification,
                            ticket: TicketView) -> None:
    lang, chat_id = note.lang, note.recipient_id
    head = staff_text(note, ticket, tickets)
    if note.params.get("no_group"):
        head = t("tickets.post.no_group", lang, district=district_label(
            tickets.city, ticket.district_id, lang)) + "\n" + head
    if note.kind not in _WITH_CARD:
        photo = note.params.get("photo_file_id")
        if note.kind == "info_added" and photo:
            caption, mode = _caption(head)
            await bot.send_photo(chat_id, photo, caption=caption, parse_mode=mode)
        else:
            await _send(bot, chat_id, head)
        if note.kind == "location_added" and ticket.latitude is not None \
                and ticket.longitude is not None:
            await bot.send_location(chat_id, ticket.latitude, ticket.longitude)
        if note.kind == "routed_away":
            await _take_buttons_off(bot, note.params)
        if note.audience == "district" and not ticket.is_open:
            await _retire_card(bot, tickets, ticket, head, lang)
        return
    card = await _send(bot, chat_id, head + "\n\n" + render_card(ticket, tickets.city, lang),
                       kb.staff_keyboard(ticket, lang))
    if card is None:
        return
    if note.audience == "district":
        await tickets.set_group_post(ticket.id, chat_id, card.message_id)
    if note.kind != "new":
        return  # photos and the map pin were posted with the ticket; the card refers to them
    reply_to = ReplyParameters(card.message_id, allow_sending_without_reply=True)
    await _send_photos(bot, chat_id, ticket.photos, ticket.number, reply_to)
    if ticket.latitude is not None and ticket.longitude is not None:
        await bot.send_location(chat_id, ticket.latitude, ticket.longitude,
                                reply_parameters=reply_to)


async def _take_buttons_off(bot: Bot, params: dict[str, Any]) -> None:
    """The card a ticket had in a group it left: no Claim button there any more."""
    chat_id, message_id = params.get("post_chat_id"), params.get("post_message_id")
    if chat_id is None or message_id is None:
        return
    try:
        await bot.edit_message_reply_markup(int(chat_id), int(message_id), reply_markup=None)
    except BadRequest:
        pass  # deleted or too old: the claim there is refused anyway (not that district's)


async def _retire_card(bot: Bot, tickets: TicketService, ticket: TicketView, head: str,
                       lang: str) -> None:
    """Show a finished ticket's end on its card in the group and take its buttons away."""
    post = await tickets.group_post(ticket.id)
    if post is None:
        return
    text = head + "\n\n" + render_card(ticket, tickets.city, lang)
    if len(text) > MAX_MESSAGE:
        return
    try:
        await bot.edit_message_text(text, chat_id=post[0], message_id=post[1],
                                    parse_mode="HTML", disable_web_page_preview=True,
                                    reply_markup=kb.staff_keyboard(ticket, lang))
    except BadRequest:
        pass  # deleted or too old to edit: the message above says what happened


async def _send_photos(bot: Bot, chat_id: int, photos: Sequence[str], number: str,
                       reply_to: ReplyParameters) -> None:
    if len(photos) == 1:
        await bot.send_photo(chat_id, photos[0], caption=number, reply_parameters=reply_to)
        return
    for start in range(0, len(photos), _ALBUM):
        chunk = photos[start:start + _ALBUM]
        if len(chunk) == 1:
            await bot.send_photo(chat_id, chunk[0], caption=number, reply_parameters=reply_to)
            continue
        media = [InputMediaPhoto(p, caption=number if i == 0 else None)
                 for i, p in enumerate(chunk)]
        await bot.send_media_group(chat_id, media, reply_parameters=reply_to)


def _caption(text: str) -> tuple[str, str | None]:
    """A photo caption within Telegram's limit, and its parse mode."""
    if len(text) <= MAX_CAPTION:
        return text, "HTML"
    # Cutting HTML could split a tag: a caption that long goes as plain text.
    plain = html_to_text(text)
    return plain[: MAX_CAPTION - 1] + "…", None


async def _send(bot: Bot, chat_id: int, text: str,
                markup: InlineKeyboardMarkup | None = None) -> Message | None:
    parts = split_html(text)
    sent = None
    for i, part in enumerate(parts):
        sent = await bot.send_message(chat_id, part, parse_mode="HTML",
                                      disable_web_page_preview=True,
                                      reply_markup=markup if i == len(parts) - 1 else None)
    return sent
