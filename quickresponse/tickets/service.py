"""Residents' calls as tickets: filing, routing result, staff work, resident feedback.

Modelled on Beijing's 12345 hotline (接诉即办): every call goes to the responsible district, is
claimed and resolved within time limits, and the resident says whether it was solved.

How the front ends use it
-------------------------
* Every method takes plain values and returns plain values (:class:`TicketView`,
  :class:`TicketSummary`, :class:`Outcome` ...). Nothing here knows about Telegram.
* ``actor_id`` is the Telegram user id of whoever acts. Admins are ``settings.admin_ids``; district
  staff are rows of the ``staff`` table (:meth:`TicketService.add_staff`). Only staff of the
  ticket's district or an admin may act on it, else :class:`NotDistrictStaff`.
* States: ``new`` -> ``claimed`` -> ``resolved`` -> ``closed`` (resident rated it solved, or nobody
  rated it within ``city.auto_close_after``) / ``reopened`` (resident said not solved; staff resolve
  it again). ``new``/``claimed``/``reopened`` may also end as ``rejected`` (outside the remit),
  ``duplicate`` (of another ticket) or ``withdrawn`` (by the resident); a transfer sends the ticket
  to another district as ``new`` again. Wrong-state actions raise :class:`InvalidTransition`, and
  actions on a finished ticket raise :class:`TicketClosed`.
* Every change appends a ``ticket_events`` row (:class:`EventView`).

Notifications: a durable outbox
-------------------------------
Each change writes the messages it causes into the ``notifications`` table in the SAME
transaction as the change, so a crash can never lose a status message. :class:`Outcome` returns
them too (for logging and tests), but the adapter must deliver through the outbox only:

    for note in await tickets.take_notifications():   # leases each row for a while
        ... render ``note.kind`` in ``note.lang`` (catalogue keys ``tickets.notify.<kind>``
            are the adapter's), send to ``note.recipient_id`` ...
        await tickets.mark_sent(note.id)                 # or mark_failed(note.id, permanent=...)

:meth:`TicketService.add_outbox_listener` registers an async callback run after each commit that
wrote notifications (also from SLA escalation), so the adapter can drain at once; a periodic drain
catches the rest (rows whose lease expired, e.g. the process died while sending). Delivery is
therefore at-least-once. Recipients and audiences:

* ``resident`` / ``follower``: a user id, ``lang`` = that person's language. Kinds: ``claimed``,
  ``note``, ``resolved`` (ask for the verdict: solved? satisfaction), ``transferred``,
  ``rejected``, ``duplicate``, ``reopened``, ``closed``, ``withdrawn`` (followers only).
* ``district``: the district's staff group (linked with :meth:`link_group`, else ``group_chat_id``
  from city.yaml; with no group the admins get it instead, ``audience="admins"``).
  ``lang`` = ``settings.default_language``. Kinds: ``new`` (post the ticket with a Claim button;
  ``params["transferred_from"]`` set after a transfer), ``info_added``, ``withdrawn``, ``reopened``,
  ``rated``, ``escalated`` (``params["step"] == 1``, ``params["stage"]`` is ``claim`` or
  ``resolve``).
* ``admins``: ``settings.admin_chat_id`` or else each admin's user id. Kind ``escalated`` (step 2)
  and anything meant for a district without a group.

``params`` always holds plain JSON values; fetch the ticket itself with :meth:`TicketService.view`.
"""

from __future__ import annotations

import enum
import logging
import math
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from quickresponse.clock import Clock, as_utc
from quickresponse.db import Database
from quickresponse.districts import City
from quickresponse.errors import InvalidInput, QuickResponseError
from quickresponse.i18n import normalise_lang
from quickresponse.models import is_forgotten
from quickresponse.routing import check_coordinates, haversine_m
from quickresponse.textnorm import clean_user_text
from quickresponse.tickets.errors import (
    AlreadyRated,
    InvalidDuplicateTarget,
    InvalidLocation,
    InvalidTransition,
    NotAdmin,
    NotDistrictStaff,
    NotGroupChat,
    NotTicketOwner,
    StaffNotFound,
    TextRequired,
    TextTooLong,
    TicketAlreadyClaimed,
    TicketClosed,
    TicketNotFound,
    TooManyPhotos,
)
from quickresponse.tickets.models import (
    DistrictChat,
    Staff,
    Ticket,
    TicketEscalation,
    TicketEvent,
    TicketFollower,
    TicketNotification,
    TicketPhoto,
)

log = logging.getLogger(__name__)

# Limits on what residents and staff type; longer text raises TextTooLong (nothing is cut
# silently: the resident is told and can shorten it).
MAX_DESCRIPTION = 1000
MAX_NOTE = 1000
MAX_ADDRESS = 200
MAX_NAME = 64
MAX_PHONE = 32
MAX_PHOTOS = 10
NEARBY_RADIUS_M = 50.0


class State(enum.StrEnum):
    NEW = "new"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CLOSED = "closed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    WITHDRAWN = "withdrawn"


OPEN_STATES = frozenset({State.NEW, State.CLAIMED, State.REOPENED})
FINISHED_STATES = frozenset({State.CLOSED, State.REJECTED, State.DUPLICATE, State.WITHDRAWN})


def sla_stage(state: str) -> str | None:
    """Which deadline a ticket in ``state`` runs against: ``claim``, ``resolve`` or none."""
    if state == State.NEW:
        return "claim"
    if state in (State.CLAIMED, State.REOPENED):
        return "resolve"
    return None


class Satisfaction(enum.StrEnum):
    SATISFIED = "satisfied"
    BASIC = "basic"  # 基本满意
    NOT_SATISFIED = "not_satisfied"


class Role(enum.StrEnum):
    RESIDENT = "resident"
    STAFF = "staff"
    ADMIN = "admin"
    SYSTEM = "system"


@dataclass(frozen=True)
class NewTicket:
    """What a resident's report flow collected; routing is already decided."""

    resident_id: int
    lang: str
    category: str
    description: str
    district_id: str
    # "location" | "location_nearest" | "address" | "chosen" | "subscription" (the district the
    # resident gets warnings for) | "dispatch" (not known yet: the city's dispatch desk)
    routing_method: str
    routing_confidence: float = 1.0
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    photos: Sequence[str] = ()  # Telegram file ids
    urgent: bool = False
    contact_consent: bool = False
    contact_name: str | None = None  # kept only with consent
    contact_phone: str | None = None  # kept only with consent
    chat_id: int | None = None  # where the resident talks to the bot; defaults to resident_id
    # The front end's id for this submission: filing twice with the same ref files one ticket.
    client_ref: str | None = None


@dataclass(frozen=True)
class EventView:
    at: datetime
    actor_id: int | None  # None for the system (escalation, auto-close)
    actor_role: str  # Role
    action: str  # filed, claimed, note, info_added, photo_added, resolved, transferred, ...
    from_state: str | None
    to_state: str
    note: str | None = None
    district_id: str | None = None  # for transfers: the district it went to


@dataclass(frozen=True)
class TicketView:
    """One ticket as staff, the resident and admins see it (contact only with consent)."""

    id: int
    number: str  # "#123", what people type and read
    state: str  # State
    resident_id: int
    chat_id: int
    lang: str
    category: str
    description: str
    district_id: str
    routing_method: str
    routing_confidence: float
    urgent: bool
    latitude: float | None
    longitude: float | None
    address: str | None
    photos: tuple[str, ...]
    contact_consent: bool
    contact_name: str | None
    contact_phone: str | None
    claimed_by: int | None
    claimed_by_name: str | None
    created_at: datetime
    updated_at: datetime
    claim_due: datetime
    resolve_due: datetime
    claimed_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    resolution_note: str | None
    reason: str | None  # why it was rejected / transferred last
    duplicate_of: int | None
    solved: bool | None
    satisfaction: str | None  # Satisfaction
    escalation_level: int  # 0 none, 1 district group reminded, 2 admins told
    followers: int
    events: tuple[EventView, ...] = ()  # filled by view()/show(), empty in lists
    cycle: int = 0  # grows with each transfer or reopening (fresh deadlines)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass(frozen=True)
class TicketSummary:
    """A line in ``/mytickets``, ``/queue`` or ``tickets list``."""

    id: int
    number: str
    state: str
    category: str
    district_id: str
    urgent: bool
    created_at: datetime
    claim_due: datetime
    resolve_due: datetime
    claimed_by: int | None
    description: str  # cut to 80 characters for a list line
    overdue: bool


@dataclass(frozen=True)
class NearbyTicket:
    """An open ticket of the same category close to where a new one is being filed."""

    id: int
    number: str
    state: str
    category: str
    distance_m: float
    description: str  # cut to 80 characters
    created_at: datetime


@dataclass(frozen=True)
class StaffView:
    user_id: int
    district_id: str
    display_name: str | None
    added_by: int | None
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class Notification:
    """One message to deliver, stored in the outbox until :meth:`TicketService.mark_sent`."""

    id: int
    ticket_id: int
    recipient_id: int  # a user id or a group chat id
    audience: str  # resident | follower | district | admins
    kind: str
    lang: str
    params: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0


@dataclass(frozen=True)
class Outcome:
    """The ticket after a change, and the notifications the change queued in the outbox."""

    ticket: TicketView
    notifications: tuple[Notification, ...] = ()


OutboxListener = Callable[[], Awaitable[None]]
ChangeListener = Callable[[TicketView], None]

_OPEN = tuple(str(s) for s in OPEN_STATES)
_WORKING = (State.CLAIMED.value, State.REOPENED.value)
# Notification delivery: give up after this many failed attempts, backing off in between.
MAX_SEND_ATTEMPTS = 8
_SUMMARY_CHARS = 80


class TicketService:
    """All ticket operations; one instance per process (``services.tickets``)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        city: City,
        *,
        admin_ids: frozenset[int] = frozenset(),
        admin_chat_id: int | None = None,
        default_lang: str = "zh",
    ) -> None:
        self._db = db
        self._clock = clock
        self.city = city
        self.admin_ids = admin_ids
        self.admin_chat_id = admin_chat_id
        self.default_lang = default_lang
        self._listeners: list[OutboxListener] = []
        self._change_listeners: list[ChangeListener] = []

    # -- roles ---------------------------------------------------------------------------------

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admin_ids

    async def staff_districts(self, user_id: int) -> list[str]:
        """The districts ``user_id`` is active staff of (empty for residents)."""
        async def work(session: AsyncSession) -> list[str]:
            rows = await session.exec(select(Staff.district_id).where(
                Staff.user_id == user_id, Staff.active == true()))
            return sorted(rows.all(), key=self._district_order)

        return await self._db.run(work)

    async def can_act(self, user_id: int, district_id: str) -> bool:
        """True for admins and for active staff of ``district_id``."""
        if self.is_admin(user_id):
            return True
        return district_id in await self.staff_districts(user_id)

    async def add_staff(
        self, actor_id: int | None, user_id: int, district_id: str, *,
        display_name: str | None = None,
    ) -> StaffView:
        """Register (or re-activate) ``user_id`` as staff of a district. Admins only (the CLI
        passes ``actor_id=None``). Raises NotAdmin, UnknownDistrict."""
        self._require_admin(actor_id)
        self.city.district(district_id)
        name = _clean(display_name, MAX_NAME, required=False) if display_name else None
        now = self._clock.now()

        async def work(session: AsyncSession) -> StaffView:
            row = (await session.exec(select(Staff).where(
                Staff.user_id == user_id, Staff.district_id == district_id))).first()
            if row is None:
                row = Staff(user_id=user_id, district_id=district_id, created_at=now)
            row.active = True
            row.added_by = actor_id
            row.updated_at = now
            if name:
                row.display_name = name
            session.add(row)
            await session.flush()
            return _staff_view(row)

        view = await self._db.run(work)
        log.info("staff %s added to district %s", user_id, district_id)
        return view

    async def remove_staff(
        self, actor_id: int | None, user_id: int, district_id: str | None = None
    ) -> int:
        """Deactivate ``user_id`` as staff of one district (or all); returns how many. Admins
        only; raises StaffNotFound when there was nothing to remove."""
        self._require_admin(actor_id)
        if district_id is not None:
            self.city.district(district_id)
        now = self._clock.now()

        async def work(session: AsyncSession) -> int:
            stmt = update(Staff).where(Staff.user_id == user_id, Staff.active == true())
            if district_id is not None:
                stmt = stmt.where(Staff.district_id == district_id)
            result = await session.exec(stmt.values(active=False, updated_at=now)
                                        .execution_options(synchronize_session=False))
            return result.rowcount

        removed = await self._db.run(work)
        if not removed:
            raise StaffNotFound(f"user {user_id} is not active staff")
        log.info("staff %s removed from %s district(s)", user_id, removed)
        return removed

    async def list_staff(self, district_id: str | None = None) -> list[StaffView]:
        """Active staff, by district then user id."""
        async def work(session: AsyncSession) -> list[StaffView]:
            stmt = select(Staff).where(Staff.active == true())
            if district_id is not None:
                stmt = stmt.where(Staff.district_id == district_id)
            return [_staff_view(r) for r in (await session.exec(stmt)).all()]

        rows = await self._db.run(work)
        return sorted(rows, key=lambda s: (self._district_order(s.district_id), s.user_id))

    # -- district groups -----------------------------------------------------------------------

    async def link_group(self, actor_id: int, district_id: str, chat_id: int) -> None:
        """Make ``chat_id`` (a group, negative id) the staff group of a district. Admins only.
        A group serves one district: linking it elsewhere moves it."""
        self._require_admin(actor_id)
        self.city.district(district_id)
        if chat_id >= 0:
            raise NotGroupChat(f"chat {chat_id} is not a group")
        now = self._clock.now()

        async def work(session: AsyncSession) -> None:
            await session.exec(delete(DistrictChat).where(
                (DistrictChat.chat_id == chat_id) | (DistrictChat.district_id == district_id)))
            session.add(DistrictChat(
                district_id=district_id, chat_id=chat_id, linked_by=actor_id, linked_at=now))

        await self._db.run(work)
        log.info("district %s linked to group %s", district_id, chat_id)

    async def unlink_group(self, actor_id: int, district_id: str) -> None:
        """Forget the run-time group of a district (city.yaml's, if any, applies again)."""
        self._require_admin(actor_id)
        self.city.district(district_id)

        async def work(session: AsyncSession) -> None:
            await session.exec(delete(DistrictChat).where(DistrictChat.district_id == district_id))

        await self._db.run(work)

    async def district_group(self, district_id: str) -> int | None:
        """The group chat staff of ``district_id`` work in, or None."""
        async def work(session: AsyncSession) -> int | None:
            return await self._group_of(session, district_id)

        return await self._db.run(work)

    async def district_of_group(self, chat_id: int) -> str | None:
        """The district whose staff group is ``chat_id`` (for /queue typed inside a group)."""
        async def work(session: AsyncSession) -> str | None:
            linked = (await session.exec(select(DistrictChat.district_id).where(
                DistrictChat.chat_id == chat_id))).first()
            if linked is not None:
                return linked
            overridden = set((await session.exec(select(DistrictChat.district_id))).all())
            return next((d.id for d in self.city.queues
                         if d.group_chat_id == chat_id and d.id not in overridden), None)

        return await self._db.run(work)

    # -- residents -----------------------------------------------------------------------------

    async def nearby_open(
        self, category: str, latitude: float, longitude: float, *,
        radius_m: float = NEARBY_RADIUS_M,
    ) -> list[NearbyTicket]:
        """Open tickets of ``category`` within ``radius_m`` (haversine), nearest first."""
        self.city.category(category)
        check_coordinates(latitude, longitude)
        # A bounding box narrows the rows in SQL; haversine decides.
        dlat = radius_m / 111_000 * 1.5
        dlon = dlat / max(0.05, math.cos(math.radians(latitude)))

        async def work(session: AsyncSession) -> list[Ticket]:
            return list((await session.exec(select(Ticket).where(
                Ticket.category == category, col(Ticket.state).in_(_OPEN),
                col(Ticket.latitude).between(latitude - dlat, latitude + dlat),
                col(Ticket.longitude).between(longitude - dlon, longitude + dlon),
            ))).all())

        found = []
        for row in await self._db.run(work):
            assert row.id is not None and row.latitude is not None and row.longitude is not None
            distance = haversine_m(latitude, longitude, row.latitude, row.longitude)
            if distance <= radius_m:
                found.append(NearbyTicket(
                    id=row.id, number=ticket_number(row.id), state=row.state,
                    category=row.category, distance_m=round(distance, 1),
                    description=_short(row.description), created_at=as_utc(row.created_at)))
        return sorted(found, key=lambda n: (n.distance_m, n.id))

    async def file(self, new: NewTicket) -> Outcome:
        """Create a ticket in ``new`` state with its deadlines and post it to the district.
        Raises UnknownCategory, UnknownDistrict, TextRequired, TextTooLong, TooManyPhotos,
        InvalidLocation."""
        self.city.category(new.category)
        self.city.district(new.district_id)
        description = _clean(new.description, MAX_DESCRIPTION)
        address = _clean(new.address, MAX_ADDRESS, required=False) if new.address else None
        if (new.latitude is None) != (new.longitude is None):
            raise InvalidLocation("latitude and longitude go together")
        if new.latitude is not None and new.longitude is not None:
            check_coordinates(new.latitude, new.longitude)
        photos = [p.strip() for p in new.photos if p and p.strip()]
        if len(photos) > MAX_PHOTOS:
            raise TooManyPhotos(MAX_PHOTOS)
        if any(len(p) > 256 for p in photos):
            raise InvalidInput("photo file id too long")
        name = phone = None
        if new.contact_consent:
            name = _clean(new.contact_name, MAX_NAME, required=False) if new.contact_name else None
            phone = _clean(new.contact_phone, MAX_PHONE, required=False) if new.contact_phone \
                else None
        if new.routing_method not in ROUTING_METHODS:
            raise InvalidInput(f"unknown routing method {new.routing_method!r}")
        if new.client_ref is not None and not 0 < len(new.client_ref) <= 64:
            raise InvalidInput("client_ref must be 1-64 characters")
        lang = normalise_lang(new.lang, normalise_lang(self.default_lang))
        now = self._clock.now()
        limits = self.city.limits(new.category, urgent=new.urgent)

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]]:
            if new.client_ref is not None:
                existing = (await session.exec(select(Ticket).where(
                    Ticket.client_ref == new.client_ref))).first()
                if existing is not None:
                    return existing, []
            ticket = Ticket(
                resident_id=new.resident_id, chat_id=new.chat_id or new.resident_id, lang=lang,
                category=new.category, description=description, address=address,
                latitude=new.latitude, longitude=new.longitude, district_id=new.district_id,
                routing_method=new.routing_method,
                routing_confidence=max(0.0, min(1.0, float(new.routing_confidence))),
                urgent=new.urgent, state=State.NEW, contact_consent=new.contact_consent,
                contact_name=name, contact_phone=phone, created_at=now, updated_at=now,
                cycle=0, cycle_started_at=now, claim_due=now + limits.claim,
                resolve_due=now + limits.resolve, client_ref=new.client_ref,
            )
            session.add(ticket)
            await session.flush()
            for file_id in photos:
                session.add(TicketPhoto(ticket_id=ticket.id, file_id=file_id,
                                        added_by=new.resident_id, created_at=now))
            self._event(session, ticket, new.resident_id, Role.RESIDENT, "filed", None, now,
                        district_id=new.district_id)
            notes = await self._notify_district(session, ticket, "new", {})
            return ticket, notes

        ticket_id, rows = await self._commit(work)
        log.info("ticket %s filed for district %s", ticket_id, new.district_id)
        return await self._outcome(ticket_id, rows)

    async def follow(self, ticket_id: int, user_id: int, lang: str) -> Outcome:
        """Follow an open ticket instead of filing a duplicate: status updates reach the
        follower too. Following twice is harmless. Raises TicketNotFound, TicketClosed."""
        now = self._clock.now()
        lang = normalise_lang(lang, normalise_lang(self.default_lang))

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]]:
            ticket = await self._load(session, ticket_id)
            if ticket.state in FINISHED_STATES:
                raise TicketClosed(ticket_id, ticket.state)
            if ticket.resident_id != user_id and await self._add_follower(
                    session, ticket_id, user_id, lang, now):
                self._event(session, ticket, user_id, Role.RESIDENT, "followed", ticket.state, now)
            return ticket, []

        await self._commit(work)
        return await self._outcome(ticket_id, [])

    async def my_tickets(self, user_id: int, *, limit: int = 20) -> list[TicketSummary]:
        """Tickets the user filed or follows, newest first."""
        now = self._clock.now()

        async def work(session: AsyncSession) -> list[Ticket]:
            followed = select(TicketFollower.ticket_id).where(TicketFollower.user_id == user_id)
            stmt = select(Ticket).where(
                (Ticket.resident_id == user_id) | col(Ticket.id).in_(followed)
            ).order_by(col(Ticket.id).desc()).limit(limit)
            return list((await session.exec(stmt)).all())

        return [_summary(t, now) for t in await self._db.run(work)]

    async def add_info(
        self, ticket_id: int, user_id: int, *, text: str | None = None,
        photo_file_id: str | None = None,
    ) -> Outcome:
        """The resident adds text and/or a photo to their open ticket; the district is told.
        Raises NotTicketOwner, TicketClosed, InvalidTransition (resolved), TextTooLong,
        TooManyPhotos."""
        info = _clean(text, MAX_NOTE) if text is not None else None
        photo = photo_file_id.strip() if photo_file_id else None
        if info is None and not photo:
            raise TextRequired("nothing to add")
        if photo is not None and len(photo) > 256:
            raise InvalidInput("photo file id too long")
        now = self._clock.now()

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]]:
            ticket = await self._load(session, ticket_id, lock=True)
            self._require_owner(ticket, user_id)
            self._require_state(ticket, _OPEN, "add_info")
            if photo:
                count = (await session.exec(select(func.count()).select_from(TicketPhoto).where(
                    TicketPhoto.ticket_id == ticket_id))).one()
                if count >= MAX_PHOTOS:
                    raise TooManyPhotos(MAX_PHOTOS)
                session.add(TicketPhoto(ticket_id=ticket_id, file_id=photo, added_by=user_id,
                                        created_at=now))
                self._event(session, ticket, user_id, Role.RESIDENT, "photo_added", ticket.state,
                            now)
            if info:
                self._event(session, ticket, user_id, Role.RESIDENT, "info_added", ticket.state,
                            now, note=info)
            self._touch(ticket, now)
            notes = await self._notify_district(
                session, ticket, "info_added", {"text": info, "photo_file_id": photo})
            return ticket, notes

        return await self._change(ticket_id, work)

    async def locate(
        self, ticket_id: int, user_id: int, latitude: float, longitude: float, *,
        district_id: str | None = None, method: str = "location", confidence: float = 1.0,
    ) -> Outcome:
        """The resident says where the problem is on their open ticket; staff get the map pin.

        ``district_id`` is where the point routes to (the caller's router decides). A ticket that
        was routed without a place (to the dispatch desk, or by the resident's subscription) and
        that nobody has claimed yet moves there, keeping its deadlines: the clock of an urgent
        call keeps running. Raises NotTicketOwner, TicketClosed, InvalidLocation."""
        check_coordinates(latitude, longitude)
        if method not in ROUTING_METHODS:
            raise InvalidInput(f"unknown routing method {method!r}")
        now = self._clock.now()

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]]:
            ticket = await self._load(session, ticket_id, lock=True)
            self._require_owner(ticket, user_id)
            self._require_state(ticket, _OPEN, "add_info")
            ticket.latitude, ticket.longitude = latitude, longitude
            self._touch(ticket, now)
            self._event(session, ticket, user_id, Role.RESIDENT, "location_added", ticket.state,
                        now)
            moves = (district_id is not None and district_id != ticket.district_id
                     and self.city.has_district(district_id) and ticket.state == State.NEW
                     and ticket.routing_method in PROVISIONAL_ROUTING)
            if not moves:
                return ticket, await self._notify_district(session, ticket, "location_added", {})
            assert district_id is not None
            from_district = ticket.district_id
            notes = await self._notify_district(session, ticket, "routed_away", {
                "to_district": district_id, "post_chat_id": ticket.group_chat_id,
                "post_message_id": ticket.group_message_id})
            ticket.district_id = district_id
            ticket.routing_method = method
            ticket.routing_confidence = max(0.0, min(1.0, float(confidence)))
            ticket.group_chat_id = ticket.group_message_id = None
            self._event(session, ticket, user_id, Role.RESIDENT, "routed", ticket.state, now,
                        district_id=district_id)
            notes += await self._notify_district(session, ticket, "new",
                                                 {"routed_from": from_district})
            return ticket, notes

        return await self._change(ticket_id, work)

    async def share_contact(self, ticket_id: int, user_id: int, name: str | None, phone: str
                            ) -> Outcome:
        """The resident sends their own name and phone number for their open ticket (sending it
        is the consent); the district's staff get it to call back. Raises NotTicketOwner,
        TicketClosed, TextRequired, TextTooLong."""
        number = _clean(phone, MAX_PHONE)
        who = _clean(name, MAX_NAME, required=False) if name else None
        now = self._clock.now()

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]]:
            ticket = await self._load(session, ticket_id, lock=True)
            self._require_owner(ticket, user_id)
            self._require_state(ticket, _OPEN, "add_info")
            ticket.contact_consent = True
            ticket.contact_name = who or ticket.contact_name
            ticket.contact_phone = number
            self._touch(ticket, now)
            self._event(session, ticket, user_id, Role.RESIDENT, "contact_shared", ticket.state,
                        now)
            return ticket, await self._notify_district(session, ticket, "contact_shared", {})

        return await self._change(ticket_id, work)

    async def withdraw(self, ticket_id: int, user_id: int, reason: str | None = None) -> Outcome:
        """The resident withdraws their open ticket. Raises NotTicketOwner, TicketClosed."""
        why = _clean(reason, MAX_NOTE, required=False) if reason else None
        now = self._clock.now()

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]]:
            ticket = await self._load(session, ticket_id, lock=True)
            self._require_owner(ticket, user_id)
            self._require_state(ticket, _OPEN, "withdraw")
            before = ticket.state
            ticket.state = State.WITHDRAWN
            ticket.closed_at = now
            ticket.reason = why
            self._touch(ticket, now)
            self._event(session, ticket, user_id, Role.RESIDENT, "withdrawn", before, now,
                        note=why)
            notes = await self._notify_district(session, ticket, "withdrawn", {"reason": why})
            notes += await self._notify_people(session, ticket, "withdrawn", {"reason": why},
                                               resident=False)
            return ticket, notes

        return await self._change(ticket_id, work)

    async def rate(
        self, ticket_id: int, user_id: int, *, solved: bool,
        satisfaction: Satisfaction | str | None,
    ) -> Outcome:
        """The resident's verdict on a resolved ticket: solved -> closed, not solved ->
        reopened (the claimer's district works it again). ``satisfaction`` is required when
        solved. Raises NotTicketOwner, InvalidTransition, AlreadyRated."""
        verdict: Satisfaction | None
        try:
            verdict = None if satisfaction is None else Satisfaction(satisfaction)
        except ValueError:
            raise InvalidInput(f"unknown satisfaction {satisfaction!r}") from None
        if solved and verdict is None:
            raise InvalidInput("a solved ticket needs a satisfaction rating")
        now = self._clock.now()

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]]:
            ticket = await self._load(session, ticket_id, lock=True)
            self._require_owner(ticket, user_id)
            if ticket.state != State.RESOLVED:
                if ticket.rated_at is not None and ticket.state in (State.CLOSED, State.REOPENED):
                    raise AlreadyRated(f"ticket #{ticket_id} already rated")
                self._require_state(ticket, (State.RESOLVED.value,), "rate")
            ticket.solved = solved
            ticket.satisfaction = verdict.value if verdict else None
            ticket.rated_at = now
            self._touch(ticket, now)
            note = verdict.value if verdict else None
            if solved:
                ticket.state = State.CLOSED
                ticket.closed_at = now
                self._event(session, ticket, user_id, Role.RESIDENT, "rated", State.RESOLVED, now,
                            note=note)
                params: dict[str, Any] = {"solved": True, "satisfaction": note}
                notes = await self._notify_district(session, ticket, "rated", params)
                notes += await self._notify_people(session, ticket, "closed", params,
                                                   resident=False)
                return ticket, notes
            # Not solved: the same district works it again with a fresh resolution deadline.
            ticket.state = State.REOPENED
            ticket.resolved_at = None
            self._new_cycle(ticket, now, keep_claim=True)
            self._event(session, ticket, user_id, Role.RESIDENT, "reopened", State.RESOLVED, now,
                        note=note)
            params = {"solved": False, "satisfaction": note}
            notes = await self._notify_district(session, ticket, "reopened", params)
            notes += await self._notify_people(session, ticket, "reopened", params,
                                               resident=False)
            return ticket, notes

        return await self._change(ticket_id, work)

    # -- staff ---------------------------------------------------------------------------------

    async def claim(self, ticket_id: int, actor_id: int, *, actor_name: str | None = None
                    ) -> Outcome:
        """Take a new (or reopened) ticket; atomic: of simultaneous claims exactly one wins and
        the others get TicketAlreadyClaimed(claimed_by). Raises NotDistrictStaff."""
        given_name = _clean(actor_name, MAX_NAME, required=False) if actor_name else None
        now = self._clock.now()

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]]:
            ticket = await self._load(session, ticket_id)
            district_id = ticket.district_id
            role = await self._authorise(session, actor_id, district_id)
            before = ticket.state
            if before not in (State.NEW, State.REOPENED):
                raise self._claim_refusal(ticket)
            name = given_name or await self._staff_name(session, actor_id) or str(actor_id)
            # The state check is in the UPDATE itself: of concurrent claims only one matches.
            # A reopened ticket someone already holds counts as taken over, not as a race.
            result = await session.exec(
                update(Ticket)
                .where(col(Ticket.id) == ticket_id, col(Ticket.state) == before,
                       col(Ticket.district_id) == district_id)
                .values(state=State.CLAIMED.value, claimed_by=actor_id, claimed_by_name=name,
                        claimed_at=now, responded_at=func.coalesce(Ticket.responded_at, now),
                        # Claiming a new ticket ends its claim stage; a reopened one stays in
                        # the resolve stage and keeps the escalation steps already taken.
                        escalation_level=0 if before == State.NEW else Ticket.escalation_level,
                        updated_at=now, version=Ticket.version + 1)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                await session.refresh(ticket)
                raise self._claim_refusal(ticket)
            await session.refresh(ticket)
            self._event(session, ticket, actor_id, role, "claimed", before, now, note=name)
            notes = await self._notify_people(session, ticket, "claimed", {"by": name})
            return ticket, notes

        return await self._change(ticket_id, work)

    async def add_note(self, ticket_id: int, actor_id: int, note: str) -> Outcome:
        """A progress note from staff, sent to the resident and followers."""
        text = _clean(note, MAX_NOTE)
        now = self._clock.now()

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]]:
            ticket = await self._load(session, ticket_id, lock=True)
            role = await self._authorise(session, actor_id, ticket.district_id)
            self._require_state(ticket, _WORKING, "note")
            self._touch(ticket, now)
            self._event(session, ticket, actor_id, role, "note", ticket.state, now, note=text)
            notes = await self._notify_people(session, ticket, "note", {"note": text})
            return ticket, notes

        return await self._change(ticket_id, work)

    async def resolve(self, ticket_id: int, actor_id: int, note: str) -> Outcome:
        """Mark a claimed (or reopened) ticket resolved with a note; the resident is asked for
        their verdict."""
        text = _clean(note, MAX_NOTE)
        now = self._clock.now()

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]]:
            ticket = await self._load(session, ticket_id, lock=True)
            role = await self._authorise(session, actor_id, ticket.district_id)
            self._require_state(ticket, _WORKING, "resolve")
            before = ticket.state
            ticket.state = State.RESOLVED
            ticket.resolved_at = now
            ticket.resolution_note = text
            ticket.escalation_level = 0
            self._touch(ticket, now)
            self._event(session, ticket, actor_id, role, "resolved", before, now, note=text)
            notes = await self._notify_people(session, ticket, "resolved", {"note": text})
            return ticket, notes

        return await self._change(ticket_id, work)

    async def transfer(self, ticket_id: int, actor_id: int, to_district: str, reason: str
                       ) -> Outcome:
        """Send the ticket to another district as ``new`` with fresh deadlines."""
        self.city.district(to_district)
        why = _clean(reason, MAX_NOTE)
        now = self._clock.now()

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]]:
            ticket = await self._load(session, ticket_id, lock=True)
            role = await self._authorise(session, actor_id, ticket.district_id)
            self._require_state(ticket, _OPEN, "transfer")
            if to_district == ticket.district_id:
                raise InvalidInput(f"ticket #{ticket_id} is already in district {to_district}")
            before, from_district = ticket.state, ticket.district_id
            ticket.state = State.NEW
            ticket.district_id = to_district
            ticket.reason = why
            ticket.claimed_by = ticket.claimed_by_name = None
            ticket.claimed_at = ticket.responded_at = None
            ticket.group_chat_id = ticket.group_message_id = None
            self._new_cycle(ticket, now, keep_claim=False)
            self._event(session, ticket, actor_id, role, "transferred", before, now, note=why,
                        district_id=to_district)
            params = {"from_district": from_district, "to_district": to_district, "reason": why}
            notes = await self._notify_people(session, ticket, "transferred", params)
            notes += await self._notify_district(
                session, ticket, "new", {"transferred_from": from_district, "reason": why})
            return ticket, notes

        return await self._change(ticket_id, work)

    async def reject(self, ticket_id: int, actor_id: int, reason: str) -> Outcome:
        """Close the ticket as outside the remit, telling the resident why."""
        why = _clean(reason, MAX_NOTE)
        now = self._clock.now()

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]]:
            ticket = await self._load(session, ticket_id, lock=True)
            role = await self._authorise(session, actor_id, ticket.district_id)
            self._require_state(ticket, _OPEN, "reject")
            before = ticket.state
            ticket.state = State.REJECTED
            ticket.reason = why
            ticket.closed_at = now
            ticket.responded_at = ticket.responded_at or now
            self._touch(ticket, now)
            self._event(session, ticket, actor_id, role, "rejected", before, now, note=why)
            notes = await self._notify_people(session, ticket, "rejected", {"reason": why})
            return ticket, notes

        return await self._change(ticket_id, work)

    async def mark_duplicate(self, ticket_id: int, actor_id: int, of_ticket: int) -> Outcome:
        """Close the ticket as a duplicate of ``of_ticket``; its resident and followers start
        following the original. Raises InvalidDuplicateTarget."""
        if of_ticket == ticket_id:
            raise InvalidDuplicateTarget("a ticket cannot duplicate itself")
        now = self._clock.now()

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]]:
            ticket = await self._load(session, ticket_id, lock=True)
            role = await self._authorise(session, actor_id, ticket.district_id)
            self._require_state(ticket, _OPEN, "duplicate")
            original = await session.get(Ticket, of_ticket)
            if original is None or original.state in (State.DUPLICATE, State.WITHDRAWN,
                                                      State.REJECTED):
                raise InvalidDuplicateTarget(f"ticket #{of_ticket} cannot be the original")
            before = ticket.state
            ticket.state = State.DUPLICATE
            ticket.duplicate_of = of_ticket
            ticket.closed_at = now
            ticket.responded_at = ticket.responded_at or now
            self._touch(ticket, now)
            self._event(session, ticket, actor_id, role, "duplicate", before, now,
                        note=ticket_number(of_ticket))
            people = [(ticket.resident_id, ticket.lang)] + [
                (f.user_id, f.lang) for f in await self._followers(session, ticket_id)]
            for user_id, lang in people:
                if user_id != original.resident_id:
                    await self._add_follower(session, of_ticket, user_id, lang, now)
            notes = await self._notify_people(
                session, ticket, "duplicate",
                {"of_ticket": of_ticket, "of_number": ticket_number(of_ticket),
                 "of_state": original.state})
            return ticket, notes

        return await self._change(ticket_id, work)

    async def queue(self, district_id: str, actor_id: int, *, limit: int = 30
                    ) -> list[TicketSummary]:
        """Open tickets of a district, most urgent deadline first. Staff of it or admins."""
        self.city.district(district_id)
        now = self._clock.now()

        async def work(session: AsyncSession) -> list[Ticket]:
            await self._authorise(session, actor_id, district_id)
            return list((await session.exec(select(Ticket).where(
                Ticket.district_id == district_id, col(Ticket.state).in_(_OPEN)))).all())

        rows = [_summary(t, now) for t in await self._db.run(work)]
        rows.sort(key=lambda s: (_next_deadline(s), s.id))
        return rows[:limit]

    # -- reading -------------------------------------------------------------------------------

    async def view(self, ticket_id: int) -> TicketView:
        """The ticket with its history, without a permission check (for rendering
        notifications). Raises TicketNotFound."""
        async def work(session: AsyncSession) -> TicketView:
            ticket = await self._load(session, ticket_id)
            return await self._view(session, ticket, events=True)

        return await self._db.run(work)

    async def show(self, ticket_id: int, viewer_id: int) -> TicketView:
        """The ticket with its history for the resident who filed it, a follower, staff of its
        district or an admin; anyone else gets NotDistrictStaff."""
        async def work(session: AsyncSession) -> TicketView:
            ticket = await self._load(session, ticket_id)
            if viewer_id != ticket.resident_id and not self.is_admin(viewer_id):
                follower = (await session.exec(select(TicketFollower.id).where(
                    TicketFollower.ticket_id == ticket_id,
                    TicketFollower.user_id == viewer_id))).first()
                if follower is None:
                    await self._authorise(session, viewer_id, ticket.district_id)
            view = await self._view(session, ticket, events=True)
            if viewer_id != ticket.resident_id and not await self._is_staff_view(
                    session, viewer_id, ticket.district_id):
                # Followers see the ticket but never the resident's contact details.
                view = replace(view, contact_name=None, contact_phone=None)
            return view

        return await self._db.run(work)

    async def list_tickets(
        self, *, state: str | None = None, district_id: str | None = None,
        since: datetime | None = None, until: datetime | None = None, limit: int | None = None,
    ) -> list[TicketSummary]:
        """Tickets filed in [since, until), newest first (CLI and reports)."""
        now = self._clock.now()

        async def work(session: AsyncSession) -> list[Ticket]:
            stmt = select(Ticket)
            if state is not None:
                stmt = stmt.where(Ticket.state == state)
            if district_id is not None:
                stmt = stmt.where(Ticket.district_id == district_id)
            if since is not None:
                stmt = stmt.where(Ticket.created_at >= since)
            if until is not None:
                stmt = stmt.where(Ticket.created_at < until)
            stmt = stmt.order_by(col(Ticket.id).desc())
            if limit is not None:
                stmt = stmt.limit(limit)
            return list((await session.exec(stmt)).all())

        return [_summary(t, now) for t in await self._db.run(work)]

    async def set_group_post(self, ticket_id: int, chat_id: int, message_id: int) -> None:
        """Remember the group message that shows the ticket (so the adapter can edit it)."""
        async def work(session: AsyncSession) -> None:
            ticket = await self._load(session, ticket_id)
            ticket.group_chat_id = chat_id
            ticket.group_message_id = message_id
            session.add(ticket)

        await self._db.run(work)

    async def group_post(self, ticket_id: int) -> tuple[int, int] | None:
        """(chat id, message id) of the ticket's latest group post, if any."""
        async def work(session: AsyncSession) -> tuple[int, int] | None:
            ticket = await self._load(session, ticket_id)
            if ticket.group_chat_id is None or ticket.group_message_id is None:
                return None
            return ticket.group_chat_id, ticket.group_message_id

        return await self._db.run(work)

    # -- outbox --------------------------------------------------------------------------------

    def add_outbox_listener(self, listener: OutboxListener) -> None:
        """Call ``listener()`` after every commit that queued notifications."""
        self._listeners.append(listener)

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(view)`` after every committed change (the SLA monitor reschedules)."""
        self._change_listeners.append(listener)

    async def take_notifications(self, *, limit: int = 50, lease_seconds: int = 120
                                 ) -> list[Notification]:
        """Pending notifications, oldest first, each leased so that no other drain takes it
        until the lease runs out."""
        now = self._clock.now()
        lease_until = now + timedelta(seconds=lease_seconds)

        async def work(session: AsyncSession) -> list[Notification]:
            due = (col(TicketNotification.lease_until).is_(None)) | (
                col(TicketNotification.lease_until) <= now)
            rows = (await session.exec(
                select(TicketNotification).where(TicketNotification.status == "pending", due)
                .order_by(col(TicketNotification.id)).limit(limit))).all()
            taken = []
            for row in rows:
                # Only one drain wins a row: the lease is taken with the same condition.
                result = await session.exec(
                    update(TicketNotification)
                    .where(col(TicketNotification.id) == row.id,
                           col(TicketNotification.status) == "pending", due)
                    .values(lease_until=lease_until,
                            attempts=TicketNotification.attempts + 1)
                    .execution_options(synchronize_session=False))
                if result.rowcount == 1:
                    await session.refresh(row)
                    taken.append(_notification(row))
            return taken

        return await self._db.run(work)

    async def mark_sent(self, notification_id: int) -> None:
        now = self._clock.now()

        async def work(session: AsyncSession) -> None:
            await session.exec(update(TicketNotification).where(
                col(TicketNotification.id) == notification_id
            ).values(status="sent", sent_at=now, lease_until=None)
                .execution_options(synchronize_session=False))

        await self._db.run(work)

    async def mark_failed(self, notification_id: int, *, permanent: bool,
                          error: str | None = None) -> None:
        """A send failed: permanent (blocked, chat gone) stops it, else it is retried later."""
        now = self._clock.now()

        async def work(session: AsyncSession) -> None:
            row = await session.get(TicketNotification, notification_id)
            if row is None or row.status != "pending":
                return
            row.last_error = (error or "")[:200] or None
            if permanent or row.attempts >= MAX_SEND_ATTEMPTS:
                row.status = "failed"
                row.lease_until = None
            else:
                # 30 s, 1 min, 2 min ... up to an hour between attempts.
                row.lease_until = now + timedelta(seconds=min(3600, 30 * 2 ** (row.attempts - 1)))
            session.add(row)

        await self._db.run(work)

    async def pending_count(self) -> int:
        """Notifications not yet delivered (for health checks and tests)."""
        async def work(session: AsyncSession) -> int:
            return (await session.exec(select(func.count()).select_from(TicketNotification)
                                       .where(TicketNotification.status == "pending"))).one()

        return await self._db.run(work)


    # -- system actions (driven by the SLA monitor) -----------------------------------------------

    async def escalate_step(
        self, ticket_id: int, *, cycle: int, stage: str, level: int, deadline: datetime,
    ) -> Outcome | None:
        """Fire one escalation step: level 1 re-posts the ticket to its district group, level 2
        tells the admins. Each (ticket, cycle, stage, level) fires at most once, even from two
        processes (unique key); returns None when it already fired or no longer applies."""
        now = self._clock.now()
        step = f"{stage}-{level}"

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]] | None:
            ticket = await self._load(session, ticket_id, lock=True)
            if ticket.cycle != cycle or sla_stage(ticket.state) != stage:
                return None
            inserted = await session.exec(insert_ignoring(
                session, TicketEscalation, ["ticket_id", "cycle", "step"],
                ticket_id=ticket_id, cycle=cycle, step=step, fired_at=now))
            if inserted.rowcount != 1:
                return None
            ticket.escalation_level = max(ticket.escalation_level, level)
            self._touch(ticket, now)
            self._event(session, ticket, None, Role.SYSTEM, "escalated", ticket.state, now,
                        note=step)
            params = {"step": level, "stage": stage, "deadline": as_utc(deadline).isoformat(),
                      "overdue_minutes": max(0, int((now - as_utc(deadline)).total_seconds()
                                                    // 60))}
            if level == 1:
                return ticket, await self._notify_district(session, ticket, "escalated", params)
            return ticket, await self._notify_admins(session, ticket, "escalated", params)

        fired = await self._db.run(work)
        if fired is None:
            return None
        _, rows = fired
        notes = [_notification(r) for r in rows]
        log.warning("ticket %s escalated: %s", ticket_id, step)
        if notes:
            await self._wake_outbox()
        return await self._outcome(ticket_id, notes)

    async def close_unrated(self, ticket_id: int) -> Outcome | None:
        """Close a resolved ticket the resident did not rate within ``city.auto_close_after``;
        None when it is not (or no longer) due."""
        now = self._clock.now()

        async def work(session: AsyncSession) -> tuple[Ticket, list[TicketNotification]] | None:
            ticket = await self._load(session, ticket_id, lock=True)
            if ticket.state != State.RESOLVED or ticket.resolved_at is None or (
                    as_utc(ticket.resolved_at) + self.city.auto_close_after > now):
                return None
            ticket.state = State.CLOSED
            ticket.closed_at = now
            self._touch(ticket, now)
            self._event(session, ticket, None, Role.SYSTEM, "auto_closed", State.RESOLVED, now)
            return ticket, await self._notify_people(session, ticket, "closed", {"auto": True})

        done = await self._db.run(work)
        if done is None:
            return None
        notes = [_notification(r) for r in done[1]]
        if notes:
            await self._wake_outbox()
        return await self._outcome(ticket_id, notes)

    # -- internals -----------------------------------------------------------------------------

    async def _commit(
        self, work: Callable[[AsyncSession], Awaitable[tuple[Ticket, list[TicketNotification]]]],
    ) -> tuple[int, list[Notification]]:
        """Run ``work`` in a transaction; return the ticket id and the queued notifications."""
        async def wrapped(session: AsyncSession) -> tuple[int, list[Notification]]:
            ticket, rows = await work(session)
            await session.flush()
            assert ticket.id is not None
            return ticket.id, [_notification(r) for r in rows]

        ticket_id, notes = await self._db.run(wrapped)
        if notes:
            await self._wake_outbox()
        return ticket_id, notes

    async def _change(
        self, ticket_id: int,
        work: Callable[[AsyncSession], Awaitable[tuple[Ticket, list[TicketNotification]]]],
    ) -> Outcome:
        _, notes = await self._commit(work)
        return await self._outcome(ticket_id, notes)

    async def _outcome(self, ticket_id: int, notes: list[Notification]) -> Outcome:
        view = await self.view(ticket_id)
        for listener in self._change_listeners:
            try:
                listener(view)
            except Exception:  # a listener must not undo a committed change
                log.exception("ticket change listener failed for ticket %s", ticket_id)
        return Outcome(view, tuple(notes))

    async def _wake_outbox(self) -> None:
        for listener in self._listeners:
            try:
                await listener()
            except Exception:  # the periodic drain delivers later
                log.exception("outbox listener failed")

    async def _load(self, session: AsyncSession, ticket_id: int, *, lock: bool = False
                    ) -> Ticket:
        # FOR UPDATE serialises changes to one ticket on PostgreSQL; SQLite serialises writers
        # and refuses a write from a stale snapshot, which Database.run retries.
        ticket = await session.get(Ticket, ticket_id, with_for_update=lock or None)
        if ticket is None:
            raise TicketNotFound(ticket_id)
        return ticket

    async def _authorise(self, session: AsyncSession, actor_id: int, district_id: str) -> Role:
        if self.is_admin(actor_id):
            return Role.ADMIN
        row = (await session.exec(select(Staff.id).where(
            Staff.user_id == actor_id, Staff.district_id == district_id,
            Staff.active == true()))).first()
        if row is None:
            raise NotDistrictStaff(actor_id, district_id, self.city.district(district_id).name_en)
        return Role.STAFF

    async def _is_staff_view(self, session: AsyncSession, user_id: int, district_id: str) -> bool:
        try:
            await self._authorise(session, user_id, district_id)
        except NotDistrictStaff:
            return False
        return True

    async def _staff_name(self, session: AsyncSession, user_id: int) -> str | None:
        return (await session.exec(select(Staff.display_name).where(
            Staff.user_id == user_id, col(Staff.display_name).is_not(None)))).first()

    def _require_admin(self, actor_id: int | None) -> None:
        if actor_id is not None and not self.is_admin(actor_id):
            raise NotAdmin(f"user {actor_id} is not an admin")

    @staticmethod
    def _require_owner(ticket: Ticket, user_id: int) -> None:
        if ticket.resident_id != user_id:
            raise NotTicketOwner(f"user {user_id} did not file ticket #{ticket.id}")

    @staticmethod
    def _require_state(ticket: Ticket, allowed: Sequence[str], action: str) -> None:
        assert ticket.id is not None
        if ticket.state in allowed:
            return
        if ticket.state in FINISHED_STATES:
            raise TicketClosed(ticket.id, ticket.state)
        raise InvalidTransition(ticket.id, ticket.state, action)

    @staticmethod
    def _claim_refusal(ticket: Ticket) -> QuickResponseError:
        assert ticket.id is not None
        if ticket.state == State.CLAIMED and ticket.claimed_by is not None:
            return TicketAlreadyClaimed(ticket.id, ticket.claimed_by,
                                        ticket.claimed_by_name or str(ticket.claimed_by))
        if ticket.state in FINISHED_STATES:
            return TicketClosed(ticket.id, ticket.state)
        return InvalidTransition(ticket.id, ticket.state, "claim")

    def _new_cycle(self, ticket: Ticket, now: datetime, *, keep_claim: bool) -> None:
        """Fresh deadlines after a transfer (claim and resolve) or a reopening (resolve)."""
        limits = self.city.limits(ticket.category, urgent=ticket.urgent)
        ticket.cycle += 1
        ticket.cycle_started_at = now
        if not keep_claim:
            ticket.claim_due = now + limits.claim
        ticket.resolve_due = now + limits.resolve
        ticket.escalation_level = 0
        self._touch(ticket, now)

    @staticmethod
    def _touch(ticket: Ticket, now: datetime) -> None:
        ticket.updated_at = now
        ticket.version += 1

    @staticmethod
    def _event(
        session: AsyncSession, ticket: Ticket, actor_id: int | None, role: Role, action: str,
        from_state: str | None, now: datetime, *, note: str | None = None,
        district_id: str | None = None,
    ) -> None:
        session.add(ticket)
        session.add(TicketEvent(
            ticket_id=ticket.id, at=now, actor_id=actor_id, actor_role=role.value,
            action=action, from_state=from_state, to_state=ticket.state, note=note,
            district_id=district_id,
        ))

    async def _followers(self, session: AsyncSession, ticket_id: int) -> list[TicketFollower]:
        return list((await session.exec(select(TicketFollower).where(
            TicketFollower.ticket_id == ticket_id).order_by(col(TicketFollower.id)))).all())

    async def _add_follower(self, session: AsyncSession, ticket_id: int, user_id: int,
                            lang: str, now: datetime) -> bool:
        """Add a follower unless they already follow; True when added."""
        result = await session.exec(insert_ignoring(
            session, TicketFollower, ["ticket_id", "user_id"],
            ticket_id=ticket_id, user_id=user_id, lang=lang, created_at=now))
        return result.rowcount == 1

    async def _group_of(self, session: AsyncSession, district_id: str) -> int | None:
        linked = (await session.exec(select(DistrictChat.chat_id).where(
            DistrictChat.district_id == district_id))).first()
        if linked is not None:
            return linked
        return self.city.district(district_id).group_chat_id

    def admin_recipients(self) -> list[int]:
        """The admins' chat, or each admin when there is none."""
        if self.admin_chat_id is not None:
            return [self.admin_chat_id]
        return sorted(self.admin_ids)

    def _queue(self, session: AsyncSession, ticket: Ticket, recipient: int, audience: str,
               kind: str, lang: str, params: dict[str, Any]) -> TicketNotification:
        row = TicketNotification(
            ticket_id=ticket.id, recipient_id=recipient, audience=audience, kind=kind, lang=lang,
            params={k: v for k, v in params.items() if v is not None},
            status="pending", attempts=0, created_at=self._clock.now(),
        )
        session.add(row)
        return row

    async def _notify_people(self, session: AsyncSession, ticket: Ticket, kind: str,
                             params: dict[str, Any], *, resident: bool = True
                             ) -> list[TicketNotification]:
        """Tell the resident (unless ``resident=False``) and every follower, each in their
        language."""
        rows = []
        # A resident who asked to be forgotten is not written to any more.
        if resident and not is_forgotten(ticket.resident_id):
            rows.append(self._queue(session, ticket, ticket.chat_id, "resident", kind,
                                    ticket.lang, params))
        for follower in await self._followers(session, ticket.id or 0):
            if follower.user_id != ticket.resident_id:
                rows.append(self._queue(session, ticket, follower.user_id, "follower", kind,
                                        follower.lang, params))
        await session.flush()
        return rows

    async def _notify_district(self, session: AsyncSession, ticket: Ticket, kind: str,
                               params: dict[str, Any]) -> list[TicketNotification]:
        """Tell the district's staff group, or the admins when the district has no group."""
        group = await self._group_of(session, ticket.district_id)
        params = {**params, "district_id": ticket.district_id}
        if group is not None:
            rows = [self._queue(session, ticket, group, "district", kind, self.default_lang,
                                params)]
        else:
            rows = [self._queue(session, ticket, chat, "admins", kind, self.default_lang,
                                {**params, "no_group": True})
                    for chat in self.admin_recipients()]
            if not rows:
                log.warning("district %s has no staff group and there are no admins: ticket "
                            "%s reaches nobody", ticket.district_id, ticket.id)
        await session.flush()
        return rows

    async def _notify_admins(self, session: AsyncSession, ticket: Ticket, kind: str,
                             params: dict[str, Any]) -> list[TicketNotification]:
        rows = [self._queue(session, ticket, chat, "admins", kind, self.default_lang,
                            {**params, "district_id": ticket.district_id})
                for chat in self.admin_recipients()]
        await session.flush()
        return rows

    async def _view(self, session: AsyncSession, ticket: Ticket, *, events: bool) -> TicketView:
        assert ticket.id is not None
        photos = (await session.exec(select(TicketPhoto.file_id).where(
            TicketPhoto.ticket_id == ticket.id).order_by(col(TicketPhoto.id)))).all()
        followers = (await session.exec(select(func.count()).select_from(TicketFollower).where(
            TicketFollower.ticket_id == ticket.id))).one()
        history: tuple[EventView, ...] = ()
        if events:
            rows = (await session.exec(select(TicketEvent).where(
                TicketEvent.ticket_id == ticket.id).order_by(col(TicketEvent.id)))).all()
            history = tuple(
                EventView(at=as_utc(e.at), actor_id=e.actor_id, actor_role=e.actor_role,
                          action=e.action, from_state=e.from_state, to_state=e.to_state,
                          note=e.note, district_id=e.district_id)
                for e in rows)
        return TicketView(
            id=ticket.id, number=ticket_number(ticket.id), state=str(ticket.state),
            resident_id=ticket.resident_id, chat_id=ticket.chat_id, lang=ticket.lang,
            category=ticket.category, description=ticket.description,
            district_id=ticket.district_id, routing_method=ticket.routing_method,
            routing_confidence=ticket.routing_confidence, urgent=ticket.urgent,
            latitude=ticket.latitude, longitude=ticket.longitude, address=ticket.address,
            photos=tuple(photos), contact_consent=ticket.contact_consent,
            contact_name=ticket.contact_name if ticket.contact_consent else None,
            contact_phone=ticket.contact_phone if ticket.contact_consent else None,
            claimed_by=ticket.claimed_by, claimed_by_name=ticket.claimed_by_name,
            created_at=as_utc(ticket.created_at), updated_at=as_utc(ticket.updated_at),
            claim_due=as_utc(ticket.claim_due), resolve_due=as_utc(ticket.resolve_due),
            claimed_at=_utc_or_none(ticket.claimed_at),
            resolved_at=_utc_or_none(ticket.resolved_at),
            closed_at=_utc_or_none(ticket.closed_at), resolution_note=ticket.resolution_note,
            reason=ticket.reason, duplicate_of=ticket.duplicate_of, solved=ticket.solved,
            satisfaction=ticket.satisfaction, escalation_level=ticket.escalation_level,
            followers=int(followers), events=history, cycle=ticket.cycle,
        )

    def _district_order(self, district_id: str) -> int:
        ids = [d.id for d in self.city.queues]
        return ids.index(district_id) if district_id in ids else len(ids)


# Direction overrides and zero-width characters can make a description read differently in the
# staff group than it was typed (or hide text); zero-width joiners stay, emoji need them.
_INVISIBLE = re.compile("[\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
ROUTING_METHODS = frozenset({"location", "location_nearest", "address", "chosen", "subscription",
                             "dispatch"})
# Routed without knowing where the problem is: a location the resident shares later moves the
# ticket while nobody has claimed it yet.
PROVISIONAL_ROUTING = frozenset({"subscription", "dispatch"})


def ticket_number(ticket_id: int) -> str:
    """What people read and type: ``#123``."""
    return f"#{ticket_id}"


def parse_ticket_number(text: str) -> int:
    """``#123``, ``123``, ``＃１２３`` -> 123; raises InvalidInput otherwise."""
    value = unicodedata.normalize("NFKC", text).strip().lstrip("#").strip()
    if not value.isascii() or not value.isdigit() or not 0 < len(value) <= 12:
        raise InvalidInput(f"not a ticket number: {text[:20]!r}")
    return int(value)


def insert_ignoring(session: AsyncSession, model: type[SQLModel], conflict: list[str],
                    **values: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for SQLite and PostgreSQL (rowcount 0 = existed)."""
    dialect = session.get_bind().dialect.name
    table = model.__table__  # type: ignore[attr-defined]
    if dialect == "postgresql":
        return pg_insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    return sqlite_insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict)


def _clean(text: str | None, limit: int, *, required: bool = True) -> str:
    """Free text from a person: control characters removed, trimmed; too long is refused (not
    cut), empty is refused when required."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InvalidInput("text expected")
    cleaned = clean_user_text(_INVISIBLE.sub("", text), len(text) + 1)
    if len(cleaned) > limit:
        raise TextTooLong(limit, len(cleaned))
    if required and not cleaned:
        raise TextRequired("empty text")
    return cleaned


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _SUMMARY_CHARS else line[: _SUMMARY_CHARS - 1] + "…"


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _next_deadline(summary: TicketSummary) -> datetime:
    return summary.claim_due if summary.state == State.NEW else summary.resolve_due


def _summary(ticket: Ticket, now: datetime) -> TicketSummary:
    assert ticket.id is not None
    claim_due, resolve_due = as_utc(ticket.claim_due), as_utc(ticket.resolve_due)
    due = claim_due if ticket.state == State.NEW else resolve_due
    return TicketSummary(
        id=ticket.id, number=ticket_number(ticket.id), state=str(ticket.state),
        category=ticket.category, district_id=ticket.district_id, urgent=ticket.urgent,
        created_at=as_utc(ticket.created_at), claim_due=claim_due, resolve_due=resolve_due,
        claimed_by=ticket.claimed_by, description=_short(ticket.description),
        overdue=ticket.state in OPEN_STATES and due <= now,
    )


def _staff_view(row: Staff) -> StaffView:
    return StaffView(user_id=row.user_id, district_id=row.district_id,
                     display_name=row.display_name, added_by=row.added_by, active=row.active,
                     created_at=as_utc(row.created_at))


def _notification(row: TicketNotification) -> Notification:
    assert row.id is not None
    return Notification(id=row.id, ticket_id=row.ticket_id, recipient_id=row.recipient_id,
                        audience=row.audience, kind=row.kind, lang=row.lang,
                        params=dict(row.params or {}), attempts=row.attempts)
