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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from quickresponse.clock import Clock
from quickresponse.db import Database
from quickresponse.districts import City

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
    routing_method: str  # "location" | "location_nearest" | "address" | "chosen"
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

    # -- roles ---------------------------------------------------------------------------------

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admin_ids

    async def staff_districts(self, user_id: int) -> list[str]:
        """The districts ``user_id`` is active staff of (empty for residents)."""
        raise NotImplementedError

    async def can_act(self, user_id: int, district_id: str) -> bool:
        """True for admins and for active staff of ``district_id``."""
        raise NotImplementedError

    async def add_staff(
        self, actor_id: int | None, user_id: int, district_id: str, *,
        display_name: str | None = None,
    ) -> StaffView:
        """Register (or re-activate) ``user_id`` as staff of a district. Admins only (the CLI
        passes ``actor_id=None``). Raises NotAdmin, UnknownDistrict."""
        raise NotImplementedError

    async def remove_staff(
        self, actor_id: int | None, user_id: int, district_id: str | None = None
    ) -> int:
        """Deactivate ``user_id`` as staff of one district (or all); returns how many. Admins
        only; raises StaffNotFound when there was nothing to remove."""
        raise NotImplementedError

    async def list_staff(self, district_id: str | None = None) -> list[StaffView]:
        """Active staff, by district then user id."""
        raise NotImplementedError

    # -- district groups -----------------------------------------------------------------------

    async def link_group(self, actor_id: int, district_id: str, chat_id: int) -> None:
        """Make ``chat_id`` (a group, negative id) the staff group of a district. Admins only.
        A group serves one district: linking it elsewhere moves it."""
        raise NotImplementedError

    async def unlink_group(self, actor_id: int, district_id: str) -> None:
        """Forget the run-time group of a district (city.yaml's, if any, applies again)."""
        raise NotImplementedError

    async def district_group(self, district_id: str) -> int | None:
        """The group chat staff of ``district_id`` work in, or None."""
        raise NotImplementedError

    async def district_of_group(self, chat_id: int) -> str | None:
        """The district whose staff group is ``chat_id`` (for /queue typed inside a group)."""
        raise NotImplementedError

    # -- residents -----------------------------------------------------------------------------

    async def nearby_open(
        self, category: str, latitude: float, longitude: float, *,
        radius_m: float = NEARBY_RADIUS_M,
    ) -> list[NearbyTicket]:
        """Open tickets of ``category`` within ``radius_m`` (haversine), nearest first."""
        raise NotImplementedError

    async def file(self, new: NewTicket) -> Outcome:
        """Create a ticket in ``new`` state with its deadlines and post it to the district.
        Raises UnknownCategory, UnknownDistrict, TextRequired, TextTooLong, TooManyPhotos,
        InvalidLocation."""
        raise NotImplementedError

    async def follow(self, ticket_id: int, user_id: int, lang: str) -> Outcome:
        """Follow an open ticket instead of filing a duplicate: status updates reach the
        follower too. Following twice is harmless. Raises TicketNotFound, TicketClosed."""
        raise NotImplementedError

    async def my_tickets(self, user_id: int, *, limit: int = 20) -> list[TicketSummary]:
        """Tickets the user filed or follows, newest first."""
        raise NotImplementedError

    async def add_info(
        self, ticket_id: int, user_id: int, *, text: str | None = None,
        photo_file_id: str | None = None,
    ) -> Outcome:
        """The resident adds text and/or a photo to their open ticket; the district is told.
        Raises NotTicketOwner, TicketClosed, InvalidTransition (resolved), TextTooLong,
        TooManyPhotos."""
        raise NotImplementedError

    async def withdraw(self, ticket_id: int, user_id: int, reason: str | None = None) -> Outcome:
        """The resident withdraws their open ticket. Raises NotTicketOwner, TicketClosed."""
        raise NotImplementedError

    async def rate(
        self, ticket_id: int, user_id: int, *, solved: bool,
        satisfaction: Satisfaction | str | None,
    ) -> Outcome:
        """The resident's verdict on a resolved ticket: solved -> closed, not solved ->
        reopened (the claimer's district works it again). ``satisfaction`` is required when
        solved. Raises NotTicketOwner, InvalidTransition, AlreadyRated."""
        raise NotImplementedError

    # -- staff ---------------------------------------------------------------------------------

    async def claim(self, ticket_id: int, actor_id: int, *, actor_name: str | None = None
                    ) -> Outcome:
        """Take a new (or reopened) ticket; atomic: of simultaneous claims exactly one wins and
        the others get TicketAlreadyClaimed(claimed_by). Raises NotDistrictStaff."""
        raise NotImplementedError

    async def add_note(self, ticket_id: int, actor_id: int, note: str) -> Outcome:
        """A progress note from staff, sent to the resident and followers."""
        raise NotImplementedError

    async def resolve(self, ticket_id: int, actor_id: int, note: str) -> Outcome:
        """Mark a claimed (or reopened) ticket resolved with a note; the resident is asked for
        their verdict."""
        raise NotImplementedError

    async def transfer(self, ticket_id: int, actor_id: int, to_district: str, reason: str
                       ) -> Outcome:
        """Send the ticket to another district as ``new`` with fresh deadlines."""
        raise NotImplementedError

    async def reject(self, ticket_id: int, actor_id: int, reason: str) -> Outcome:
        """Close the ticket as outside the remit, telling the resident why."""
        raise NotImplementedError

    async def mark_duplicate(self, ticket_id: int, actor_id: int, of_ticket: int) -> Outcome:
        """Close the ticket as a duplicate of ``of_ticket``; its resident and followers start
        following the original. Raises InvalidDuplicateTarget."""
        raise NotImplementedError

    async def queue(self, district_id: str, actor_id: int, *, limit: int = 30
                    ) -> list[TicketSummary]:
        """Open tickets of a district, most urgent deadline first. Staff of it or admins."""
        raise NotImplementedError

    # -- reading -------------------------------------------------------------------------------

    async def view(self, ticket_id: int) -> TicketView:
        """The ticket with its history, without a permission check (for rendering
        notifications). Raises TicketNotFound."""
        raise NotImplementedError

    async def show(self, ticket_id: int, viewer_id: int) -> TicketView:
        """The ticket with its history for the resident who filed it, a follower, staff of its
        district or an admin; anyone else gets NotDistrictStaff."""
        raise NotImplementedError

    async def list_tickets(
        self, *, state: str | None = None, district_id: str | None = None,
        since: datetime | None = None, until: datetime | None = None, limit: int | None = None,
    ) -> list[TicketSummary]:
        """Tickets filed in [since, until), newest first (CLI and reports)."""
        raise NotImplementedError

    async def set_group_post(self, ticket_id: int, chat_id: int, message_id: int) -> None:
        """Remember the group message that shows the ticket (so the adapter can edit it)."""
        raise NotImplementedError

    async def group_post(self, ticket_id: int) -> tuple[int, int] | None:
        """(chat id, message id) of the ticket's latest group post, if any."""
        raise NotImplementedError

    # -- outbox --------------------------------------------------------------------------------

    def add_outbox_listener(self, listener: OutboxListener) -> None:
        """Call ``listener()`` after every commit that queued notifications."""
        self._listeners.append(listener)

    async def take_notifications(self, *, limit: int = 50, lease_seconds: int = 120
                                 ) -> list[Notification]:
        """Pending notifications, oldest first, each leased so that no other drain takes it
        until the lease runs out."""
        raise NotImplementedError

    async def mark_sent(self, notification_id: int) -> None:
        raise NotImplementedError

    async def mark_failed(self, notification_id: int, *, permanent: bool) -> None:
        """A send failed: permanent (blocked, chat gone) stops it, else it is retried later."""
        raise NotImplementedError
