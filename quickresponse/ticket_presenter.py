"""How tickets read: a report being composed, a filed ticket, lists, history, status messages.

Telegram and the console chat both render through this module (the console passes the result
through :func:`~quickresponse.i18n.html_to_text`). Everything a resident or staff member typed
is escaped by :func:`~quickresponse.i18n.t`; only catalogue strings carry markup. Times are shown
in the city's time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from quickresponse.districts import City
from quickresponse.i18n import Html, t
from quickresponse.presenter import format_local_time
from quickresponse.reports import MAX_REPORT_PHOTOS, Consent, ReportDraft
from quickresponse.tickets.service import (
    EventView,
    NearbyTicket,
    StaffView,
    TicketSummary,
    TicketView,
)

# Event descriptions and notes in the history are cut so that /ticket stays readable.
HISTORY_NOTE_CHARS = 200
HISTORY_EVENTS = 30


def local_time(when: datetime, lang: str, city: City) -> str:
    return format_local_time(when, lang, city.tz)


def category_label(city: City, category_id: str, lang: str) -> str:
    try:
        category = city.category(category_id)
    except Exception:  # noqa: BLE001 - a category removed from the config still shows its id
        return category_id
    return f"{category.emoji} {category.name(lang)}".strip()


def district_label(city: City, district_id: str, lang: str) -> str:
    if not city.knows(district_id):
        return district_id
    return city.district(district_id).name(lang)


def state_label(state: str, lang: str) -> str:
    return t(f"tickets.state.{state}", lang)


def routing_label(method: str | None, lang: str) -> str:
    return t(f"tickets.routing.{method or 'chosen'}", lang)


def _lines(*parts: str | None) -> str:
    return Html("\n".join(p for p in parts if p is not None))


def _location(lang: str, *, address: str | None, latitude: float | None,
              longitude: float | None) -> str:
    parts = []
    if address:
        parts.append(t("tickets.render.address", lang, address=address))
    if latitude is not None and longitude is not None:
        parts.append(t("tickets.render.point", lang, lat=f"{latitude:.5f}",
                       lon=f"{longitude:.5f}"))
    return Html(" · ".join(parts)) if parts else t("tickets.render.no_location", lang)


def _contact(lang: str, *, consent: bool, name: str | None, phone: str | None) -> str:
    if not consent or not (name or phone):
        return t("tickets.render.contact_none", lang)
    if phone:
        return t("tickets.render.contact_name_phone", lang, name=name or "-", phone=phone)
    return t("tickets.render.contact_name", lang, name=name or "-")


def contact_label(ticket: TicketView, lang: str) -> str:
    """The resident's contact as staff may see it (only with consent)."""
    return _contact(lang, consent=ticket.contact_consent, name=ticket.contact_name,
                    phone=ticket.contact_phone)


# -- the report flow ----------------------------------------------------------------------------

def render_draft(draft: ReportDraft, city: City, lang: str) -> str:
    """The summary a resident confirms or edits before filing."""
    district = (t("tickets.render.district_line", lang,
                  district=district_label(city, draft.district_id, lang),
                  how=routing_label(draft.routing_method, lang))
                if draft.district_id else None)
    return _lines(
        t("tickets.report.summary_title", lang),
        t("tickets.render.urgent", lang) if draft.urgent else None,
        t("tickets.render.category_line", lang,
          category=category_label(city, draft.category or "", lang)),
        t("tickets.render.description_line", lang, description=draft.description or ""),
        t("tickets.render.photos_line", lang, count=len(draft.photos)),
        t("tickets.render.location_line", lang, location=_location(
            lang, address=draft.address, latitude=draft.latitude, longitude=draft.longitude)),
        district,
        t("tickets.render.contact_line", lang, contact=_contact(
            lang, consent=draft.consent not in (None, Consent.NONE), name=draft.contact_name,
            phone=draft.contact_phone)),
        "",
        t("tickets.report.summary_question", lang),
    )


def render_nearby(found: Sequence[NearbyTicket], city: City, lang: str) -> str:
    items = [
        t("tickets.report.nearby_item", lang, number=n.number, distance=round(n.distance_m),
          state=state_label(n.state, lang), description=n.description,
          when=local_time(n.created_at, lang, city))
        for n in found[:5]
    ]
    return _lines(t("tickets.report.nearby", lang), *items, "",
                  t("tickets.report.nearby_question", lang))


def render_filed(ticket: TicketView, city: City, lang: str) -> str:
    """What the resident reads once the ticket exists: its number and the expected times."""
    return _lines(
        t("tickets.report.filed", lang, number=ticket.number,
          district=district_label(city, ticket.district_id, lang)),
        t("tickets.report.filed_times", lang,
          claim_due=local_time(ticket.claim_due, lang, city),
          resolve_due=local_time(ticket.resolve_due, lang, city)),
        t("tickets.report.filed_urgent", lang) if ticket.urgent else None,
        t("tickets.report.filed_next", lang),
    )


def render_urgent_logged(ticket: TicketView, city: City, lang: str) -> str:
    """What the resident reads once an urgent call is logged in one tap: where it went, by when
    it is taken up, and that it does not replace 110 / 119 / 120."""
    key = "tickets.urgent.logged_dispatch" if city.is_dispatch(ticket.district_id) \
        else "tickets.urgent.logged"
    return Html("\n\n".join((
        t(key, lang, number=ticket.number, district=district_label(city, ticket.district_id, lang),
          claim_due=local_time(ticket.claim_due, lang, city)),
        t("tickets.urgent.still_call", lang),
    )))


def photos_progress(count: int, lang: str) -> str:
    return t("tickets.report.photo_added", lang, count=count, limit=MAX_REPORT_PHOTOS)


# -- tickets ------------------------------------------------------------------------------------

def render_card(ticket: TicketView, city: City, lang: str, *, for_staff: bool = True) -> str:
    """A ticket as its district's staff see it in their group (or a resident with /ticket)."""
    header_key = ("tickets.render.card_title_urgent" if ticket.urgent
                  else "tickets.render.card_title")
    claimed = None
    if ticket.claimed_by is not None and ticket.state != "new":
        claimed = t("tickets.render.claimed_by", lang, name=ticket.claimed_by_name or "-",
                    when=local_time(ticket.claimed_at, lang, city) if ticket.claimed_at else "-")
    return _lines(
        t(header_key, lang, number=ticket.number,
          category=category_label(city, ticket.category, lang)),
        t("tickets.render.state_line", lang, state=state_label(ticket.state, lang)),
        t("tickets.render.district_line", lang,
          district=district_label(city, ticket.district_id, lang),
          how=routing_label(ticket.routing_method, lang)),
        t("tickets.render.location_line", lang, location=_location(
            lang, address=ticket.address, latitude=ticket.latitude, longitude=ticket.longitude)),
        t("tickets.render.description_line", lang, description=ticket.description),
        t("tickets.render.photos_line", lang, count=len(ticket.photos)) if ticket.photos else None,
        t("tickets.render.contact_line", lang, contact=_contact(
            lang, consent=ticket.contact_consent, name=ticket.contact_name,
            phone=ticket.contact_phone)) if for_staff else None,
        t("tickets.render.filed_line", lang, when=local_time(ticket.created_at, lang, city)),
        t("tickets.render.deadlines", lang,
          claim_due=local_time(ticket.claim_due, lang, city),
          resolve_due=local_time(ticket.resolve_due, lang, city))
        if ticket.is_open else None,
        claimed,
        # The last resolution matters while it is judged, and after; not once transferred.
        t("tickets.render.resolution", lang, note=ticket.resolution_note)
        if ticket.resolution_note and ticket.state in ("resolved", "closed", "reopened")
        else None,
        t("tickets.render.reason", lang, reason=ticket.reason) if ticket.reason else None,
        t("tickets.render.followers", lang, count=ticket.followers) if ticket.followers else None,
    )


def render_line(ticket: TicketSummary, city: City, lang: str) -> str:
    """One ticket in a list (/mytickets, /queue)."""
    due = ticket.claim_due if ticket.state in ("new", "reopened") else ticket.resolve_due
    key = "tickets.render.line_overdue" if ticket.overdue else "tickets.render.line"
    return t(key, lang, number=ticket.number, urgent="🚨 " if ticket.urgent else "",
             category=category_label(city, ticket.category, lang),
             state=state_label(ticket.state, lang),
             district=district_label(city, ticket.district_id, lang),
             due=local_time(due, lang, city), description=ticket.description)


def render_list(title: str, tickets: Sequence[TicketSummary], city: City, lang: str,
                empty_key: str) -> str:
    if not tickets:
        return _lines(title, t(empty_key, lang))
    return Html("\n\n".join([title, *(render_line(x, city, lang) for x in tickets)]))


def _event(event: EventView, city: City, lang: str) -> str:
    actor = t(f"tickets.role.{event.actor_role}", lang)
    note = event.note or ""
    if len(note) > HISTORY_NOTE_CHARS:
        note = note[:HISTORY_NOTE_CHARS - 1] + "…"
    target = district_label(city, event.district_id, lang) if event.district_id else ""
    action = t(f"tickets.action.{event.action}", lang) if _known_action(event.action) \
        else event.action
    return t("tickets.render.event", lang, when=local_time(event.at, lang, city), actor=actor,
             action=action, state=state_label(event.to_state, lang),
             extra=(f" → {target}" if target else "") + (f": {note}" if note else ""))


_ACTIONS = frozenset({
    "filed", "claimed", "note", "info_added", "photo_added", "resolved", "transferred",
    "rejected", "duplicate", "withdrawn", "reopened", "closed", "rated", "escalated",
    "followed", "auto_closed",
})


def _known_action(action: str) -> bool:
    return action in _ACTIONS


def render_history(ticket: TicketView, city: City, lang: str, *, for_staff: bool) -> str:
    events = ticket.events[-HISTORY_EVENTS:]
    return _lines(render_card(ticket, city, lang, for_staff=for_staff), "",
                  t("tickets.render.history", lang),
                  *(_event(e, city, lang) for e in events))


def render_staff_list(staff: Sequence[StaffView], city: City, lang: str) -> str:
    if not staff:
        return t("tickets.staff.list_empty", lang)
    lines = [t("tickets.staff.list_title", lang)]
    lines += [t("tickets.staff.list_item", lang, user_id=s.user_id,
                name=s.display_name or "-", district=district_label(city, s.district_id, lang))
              for s in staff]
    return _lines(*lines)
