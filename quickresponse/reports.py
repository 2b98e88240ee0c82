"""A resident's report while it is being composed, before it becomes a ticket.

The Telegram flow and the console chat both walk a resident through the same steps: category,
description, optional photos, location (shared, typed or chosen), a look at open tickets nearby,
contact consent, a summary to confirm or edit. :class:`ReportDraft` holds what was collected so
far as plain values (it is stored as JSON in the conversation state, so a half-filled report
survives a restart); :class:`ReportDesk` applies the resident's input to it with the ticket
service's rules and says which step comes next. Nothing here knows about Telegram.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from quickresponse.db import Database
from quickresponse.errors import InvalidInput, StaleAction
from quickresponse.models import QuestionLog
from quickresponse.routing import Router, Routing
from quickresponse.textnorm import clean_user_text
from quickresponse.tickets.errors import (
    NoDispatchDesk,
    TextRequired,
    TextTooLong,
    TooManyPhotos,
    UnknownDistrict,
)
from quickresponse.tickets.service import (
    MAX_ADDRESS,
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_PHONE,
    NearbyTicket,
    NewTicket,
    Outcome,
    TicketService,
)

# A report holds a few photos; the ticket keeps room for more that the resident adds later.
MAX_REPORT_PHOTOS = 5


class Step(enum.StrEnum):
    CATEGORY = "category"
    DESCRIPTION = "description"
    PHOTOS = "photos"
    LOCATION = "location"
    DISTRICT = "district"  # confirm a proposed district or pick one
    NEARBY = "nearby"  # open tickets of the same kind close by: follow one or file anyway
    CONSENT = "consent"
    PHONE = "phone"
    SUMMARY = "summary"


class Consent(enum.StrEnum):
    NONE = "none"  # staff see neither name nor phone
    NAME = "name"
    PHONE = "phone"  # name and the phone number shared through Telegram's contact button


# The parts of a report the summary's edit buttons can reopen.
EDITABLE = ("category", "description", "photos", "location", "contact")


class NotEditable(InvalidInput):
    """An edit button for a part of the report that does not exist."""


@dataclass
class ReportDraft:
    """Everything a report flow collected so far; JSON-serialisable with :meth:`to_dict`."""

    category: str | None = None
    description: str | None = None
    photos: list[str] = field(default_factory=list)
    photos_done: bool = False
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    district_id: str | None = None
    routing_method: str | None = None
    routing_confidence: float = 1.0
    # Outside the city but close: routed to the nearest district, which staff should know.
    routed_to_nearest: bool = False
    # A routing the resident still has to confirm, or the districts to pick from.
    pending_district: str | None = None
    pending_method: str | None = None
    pending_confidence: float = 0.0
    candidates: list[str] = field(default_factory=list)
    choosing: bool = False
    nearby_checked: bool = False
    consent: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    urgent: bool = False
    question_id: int | None = None
    # The description came from the question the resident asked before tapping "talk to staff".
    prefilled: bool = False
    # Names this submission: filing the same draft twice (a double tap, a redelivered update
    # handled by another process) files one ticket.
    ref: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportDraft:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def has_point(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    def next_step(self) -> Step:
        """The first thing still missing, in the order the resident is asked."""
        if self.category is None:
            return Step.CATEGORY
        if not self.description:
            return Step.DESCRIPTION
        if not self.photos_done:
            return Step.PHOTOS
        if self.district_id is None:
            return Step.DISTRICT if self.choosing else Step.LOCATION
        if self.has_point and not self.nearby_checked:
            return Step.NEARBY
        if self.consent is None:
            return Step.CONSENT
        if self.consent == Consent.PHONE and self.contact_phone is None:
            return Step.PHONE
        return Step.SUMMARY


@dataclass(frozen=True)
class Located:
    """What a location or address did to the draft."""

    routing: Routing
    accepted: bool  # the draft now has its district
    outside_city: bool = False
    unknown: bool = False  # an address with no district or township name in it


class ReportDesk:
    """Applies a resident's input to a draft with the ticket rules; stateless and cheap."""

    def __init__(self, tickets: TicketService, router: Router, db: Database) -> None:
        self.tickets = tickets
        self.router = router
        self.city = tickets.city
        self._db = db

    # -- starting ------------------------------------------------------------------------------

    def start(self, *, description: str | None = None, urgent: bool = False,
              question_id: int | None = None) -> ReportDraft:
        """A new draft; a question the resident asked becomes its description."""
        draft = ReportDraft(urgent=urgent, question_id=question_id)
        if description:
            text = clean_user_text(description, MAX_DESCRIPTION)
            if text:
                draft.description = text
                draft.prefilled = True
        # An urgent call should reach staff fast: photos can still be sent, but are not asked.
        draft.photos_done = urgent
        return draft

    async def start_from_question(self, question_id: int, user_id: int) -> tuple[ReportDraft, str]:
        """A draft for "talk to staff" under an answer: the question is the description, and an
        urgent question makes an urgent report. Returns the draft and the question's language.

        ``question_id`` 0 means "no question" (the button under a browsed topic). Raises
        StaleAction for a question that does not exist or that someone else asked.
        """
        if question_id == 0:
            return self.start(), ""
        # The id comes from button data a client can forge; keep it inside the column's range.
        if not 0 < question_id < 2**31:
            raise StaleAction("impossible question id")

        async def work(session):  # type: ignore[no-untyped-def]
            row = await session.get(QuestionLog, question_id)
            return None if row is None else (row.user_id, row.text, row.urgent, row.lang)

        found = await self._db.run(work)
        if found is None or found[0] != user_id:
            raise StaleAction("talk to staff about an unknown question")
        _owner, text, urgent, lang = found
        return self.start(description=text, urgent=urgent, question_id=question_id), lang

    async def file_urgent_call(self, question_id: int, user_id: int, chat_id: int, lang: str,
                               subscribed: Sequence[str] = ()) -> Outcome:
        """Log the emergency a resident asked about as an urgent ticket at once (one tap).

        Nothing is asked first: the question is the description, the category is the city's
        ``urgent_call_category``, and the district is the best known without asking: a place
        named in the question, else the one district the resident gets warnings for, else the
        city's dispatch desk. A location shared afterwards moves it (``locate_ticket``). Tapping
        twice files one ticket. Raises StaleAction for someone else's or an unknown question,
        NoDispatchDesk when nothing tells the district and the city has no dispatch desk.
        """
        if not 0 < question_id < 2**31:
            raise StaleAction("impossible question id")

        async def work(session):  # type: ignore[no-untyped-def]
            row = await session.get(QuestionLog, question_id)
            return None if row is None else (row.user_id, row.text)

        found = await self._db.run(work)
        if found is None or found[0] != user_id:
            raise StaleAction("urgent call about an unknown question")
        text = clean_user_text(found[1], MAX_DESCRIPTION) or "-"
        district_id, method, confidence = self._urgent_district(text, subscribed)
        return await self.tickets.file(NewTicket(
            resident_id=user_id, lang=lang, category=self.city.urgent_call_category,
            description=text, district_id=district_id, routing_method=method,
            routing_confidence=confidence, urgent=True, chat_id=chat_id,
            client_ref=f"urgent:{question_id}",
        ))

    def _urgent_district(self, text: str, subscribed: Sequence[str]) -> tuple[str, str, float]:
        by_name = self.router.route_address(text)
        if by_name.district_id is not None and not by_name.confirm:
            return by_name.district_id, "address", by_name.confidence
        homes = [d for d in dict.fromkeys(subscribed) if self.city.has_district(d)]
        if len(homes) == 1:
            return homes[0], "subscription", 0.5
        if self.city.dispatch is None:
            raise NoDispatchDesk()
        return self.city.dispatch.id, "dispatch", 0.0

    async def locate_ticket(self, ticket_id: int, user_id: int, latitude: float,
                            longitude: float) -> Outcome:
        """A location the resident shares for their open ticket (routed here, moved by the
        ticket service when the ticket's district was only provisional)."""
        routing = self.router.route_location(latitude, longitude)
        method = "location_nearest" if routing.near_boundary_outside else "location"
        return await self.tickets.locate(
            ticket_id, user_id, latitude, longitude, district_id=routing.district_id,
            method=method, confidence=routing.confidence)

    # -- the steps -----------------------------------------------------------------------------

    def set_category(self, draft: ReportDraft, category_id: str) -> None:
        self.city.category(category_id)  # raises UnknownCategory
        if draft.category != category_id:
            draft.nearby_checked = False
        draft.category = category_id

    def set_description(self, draft: ReportDraft, text: str) -> None:
        """Raises TextRequired or TextTooLong (the resident is told; the draft is unchanged)."""
        draft.description = _clean(text, MAX_DESCRIPTION)
        draft.prefilled = False

    def add_photo(self, draft: ReportDraft, file_id: str) -> int:
        """Attach a photo; returns how many the draft holds. Raises TooManyPhotos."""
        if file_id in draft.photos:
            return len(draft.photos)
        if len(draft.photos) >= MAX_REPORT_PHOTOS:
            raise TooManyPhotos(MAX_REPORT_PHOTOS)
        draft.photos.append(file_id)
        return len(draft.photos)

    def finish_photos(self, draft: ReportDraft) -> None:
        draft.photos_done = True

    def locate(self, draft: ReportDraft, latitude: float, longitude: float) -> Located:
        """Route a shared location. Outside the city the draft keeps no location."""
        routing = self.router.route_location(latitude, longitude)  # raises InvalidLocation
        if routing.outside_city:
            return Located(routing, accepted=False, outside_city=True)
        self._clear_location(draft)
        draft.latitude, draft.longitude = float(latitude), float(longitude)
        return self._apply(draft, routing)

    def locate_address(self, draft: ReportDraft, text: str) -> Located:
        """Route a typed address; the address is kept for staff whatever the routing says."""
        address = _clean(text, MAX_ADDRESS)
        routing = self.router.route_address(address)
        self._clear_location(draft)
        draft.address = address
        if routing.district_id is None and not routing.candidates:
            draft.choosing = True
            return Located(routing, accepted=False, unknown=True)
        return self._apply(draft, routing)

    def choose_district(self, draft: ReportDraft, district_id: str) -> None:
        """The resident picked (or confirmed) a district from the buttons."""
        routing = self.router.chosen(district_id)  # raises UnknownDistrict
        if district_id == draft.pending_district and draft.pending_method:
            # Confirming the proposed district keeps how it was found; the resident vouched.
            draft.routing_method = draft.pending_method
            draft.routing_confidence = 1.0
        else:
            draft.routing_method = routing.method
            draft.routing_confidence = routing.confidence
            draft.routed_to_nearest = False
        draft.district_id = routing.district_id
        draft.pending_district = draft.pending_method = None
        draft.candidates = []
        draft.choosing = False

    def offer_all_districts(self, draft: ReportDraft) -> None:
        """The resident wants a district other than the ones proposed."""
        self._clear_location(draft, keep_point=True)
        draft.choosing = True

    async def nearby(self, draft: ReportDraft) -> list[NearbyTicket]:
        if draft.category is None or not draft.has_point:
            return []
        assert draft.latitude is not None and draft.longitude is not None
        return await self.tickets.nearby_open(draft.category, draft.latitude, draft.longitude)

    async def advance(self, draft: ReportDraft) -> tuple[Step, list[NearbyTicket]]:
        """The next step, with the open tickets nearby when that step is to look at them."""
        step = draft.next_step()
        if step is Step.NEARBY:
            found = await self.nearby(draft)
            if found:
                return step, found
            draft.nearby_checked = True
            step = draft.next_step()
        return step, []

    def file_anyway(self, draft: ReportDraft) -> None:
        """The resident saw the tickets nearby and says theirs is a different problem."""
        draft.nearby_checked = True

    async def follow(self, ticket_id: int, user_id: int, lang: str) -> Outcome:
        """Follow an open ticket nearby instead of filing a duplicate."""
        return await self.tickets.follow(ticket_id, user_id, lang)

    def set_consent(self, draft: ReportDraft, choice: str, name: str | None) -> None:
        """Share nothing, the name, or the name and (next) the phone number."""
        try:
            consent = Consent(choice)
        except ValueError:
            raise InvalidInput(f"unknown consent {choice!r}") from None
        draft.consent = consent.value
        draft.contact_phone = None
        draft.contact_name = None
        if consent is not Consent.NONE:
            draft.contact_name = (clean_user_text(name or "", MAX_NAME) or None)

    def set_phone(self, draft: ReportDraft, phone: str) -> None:
        phone = clean_user_text(phone, MAX_PHONE + 1)
        if not phone or len(phone) > MAX_PHONE:
            raise InvalidInput("unusable phone number")
        draft.contact_phone = phone

    def skip_phone(self, draft: ReportDraft) -> None:
        """The resident chose to share the phone but then went on without it."""
        draft.consent = Consent.NAME.value if draft.contact_name else Consent.NONE.value
        draft.contact_phone = None

    def edit(self, draft: ReportDraft, part: str) -> None:
        """Reopen one part from the summary; the flow asks for it again, then returns."""
        if part not in EDITABLE:
            raise NotEditable(f"cannot edit {part!r}")
        if part == "category":
            draft.category = None
            draft.nearby_checked = False
        elif part == "description":
            draft.description = None
            draft.prefilled = False
        elif part == "photos":
            draft.photos = []
            draft.photos_done = False
        elif part == "location":
            self._clear_location(draft)
        else:
            draft.consent = None
            draft.contact_name = draft.contact_phone = None

    # -- filing --------------------------------------------------------------------------------

    async def file(self, draft: ReportDraft, *, resident_id: int, lang: str,
                   chat_id: int | None = None) -> Outcome:
        """Turn a complete draft into a ticket. Raises InvalidInput if a part is missing."""
        if draft.next_step() is not Step.SUMMARY:
            raise InvalidInput(f"the report is not complete ({draft.next_step()})")
        assert draft.category and draft.description and draft.district_id
        consent = draft.consent != Consent.NONE
        return await self.tickets.file(NewTicket(
            resident_id=resident_id, lang=lang, category=draft.category,
            description=draft.description, district_id=draft.district_id,
            routing_method=draft.routing_method or "chosen",
            routing_confidence=draft.routing_confidence,
            latitude=draft.latitude, longitude=draft.longitude, address=draft.address,
            photos=tuple(draft.photos), urgent=draft.urgent, contact_consent=consent,
            contact_name=draft.contact_name if consent else None,
            contact_phone=draft.contact_phone if consent else None,
            chat_id=chat_id, client_ref=f"report:{draft.ref}",
        ))

    # -- helpers -------------------------------------------------------------------------------

    def _apply(self, draft: ReportDraft, routing: Routing) -> Located:
        if routing.district_id is not None and not routing.confirm:
            draft.district_id = routing.district_id
            draft.routing_method = routing.method
            draft.routing_confidence = routing.confidence
            draft.routed_to_nearest = routing.near_boundary_outside
            return Located(routing, accepted=True)
        draft.pending_district = routing.district_id
        draft.pending_method = routing.method
        draft.pending_confidence = routing.confidence
        draft.routed_to_nearest = routing.near_boundary_outside
        draft.candidates = [d for d in routing.candidates if self.city.has_district(d)]
        draft.choosing = True
        return Located(routing, accepted=False)

    def _clear_location(self, draft: ReportDraft, *, keep_point: bool = False) -> None:
        if not keep_point:
            draft.latitude = draft.longitude = None
            draft.address = None
        draft.district_id = draft.routing_method = None
        draft.routing_confidence = 1.0
        draft.routed_to_nearest = False
        draft.pending_district = draft.pending_method = None
        draft.pending_confidence = 0.0
        draft.candidates = []
        draft.choosing = False
        draft.nearby_checked = False


def _clean(text: str, limit: int) -> str:
    """Free text as stored: control characters removed; raises when empty or over ``limit``."""
    cleaned = clean_user_text(text, len(text))
    if not cleaned:
        raise TextRequired("empty text")
    if len(cleaned) > limit:
        raise TextTooLong(limit, len(cleaned))
    return cleaned


__all__ = [
    "EDITABLE", "MAX_REPORT_PHOTOS", "Consent", "Located", "NotEditable", "ReportDesk",
    "ReportDraft", "Step", "UnknownDistrict",
]
