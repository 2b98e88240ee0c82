"""Tables of the tickets feature: tickets, their photos, event log, followers, outbox,
escalations, district staff and the district groups linked at run time (migration 0002)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from quickresponse.models import utc_column


def _ticket_fk() -> Any:
    return Field(sa_column=Column(
        Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False))


class Ticket(SQLModel, table=True):
    """One resident's call. ``version`` grows with every change (optimistic concurrency)."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_district_state", "district_id", "state"),
        Index("ix_tickets_state_claim_due", "state", "claim_due"),
        Index("ix_tickets_resident", "resident_id"),
        Index("ix_tickets_created_at", "created_at"),
        UniqueConstraint("client_ref", name="uq_tickets_client_ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    lang: str = Field(max_length=2)
    category: str = Field(max_length=24)
    description: str = Field(sa_column=Column(Text, nullable=False))
    address: str | None = Field(default=None, max_length=200)
    latitude: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    longitude: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    district_id: str = Field(max_length=12)
    routing_method: str = Field(max_length=20)
    routing_confidence: float = 1.0
    urgent: bool = False
    state: str = Field(max_length=16)
    contact_consent: bool = False
    contact_name: str | None = Field(default=None, max_length=64)
    contact_phone: str | None = Field(default=None, max_length=32)
    claimed_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    claimed_by_name: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = utc_column(nullable=True)
    # First staff answer (claim, reject, duplicate) in the current cycle: the response time.
    responded_at: datetime | None = utc_column(nullable=True)
    resolved_at: datetime | None = utc_column(nullable=True)
    closed_at: datetime | None = utc_column(nullable=True)
    resolution_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    duplicate_of: int | None = Field(default=None, sa_column=Column(
        Integer, ForeignKey("tickets.id", ondelete="SET NULL"), nullable=True))
    solved: bool | None = None
    satisfaction: str | None = Field(default=None, max_length=16)
    rated_at: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()
    # A transfer or a reopening starts a new cycle with fresh deadlines and escalation steps.
    cycle: int = 0
    cycle_started_at: datetime = utc_column()
    claim_due: datetime = utc_column()
    resolve_due: datetime = utc_column()
    escalation_level: int = 0
    version: int = 0
    group_chat_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    group_message_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True))
    # The front end's id for one submission, so that a double-tapped "send" files one ticket.
    client_ref: str | None = Field(default=None, max_length=64)


class TicketPhoto(SQLModel, table=True):
    __tablename__ = "ticket_photos"
    __table_args__ = (Index("ix_ticket_photos_ticket", "ticket_id"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = _ticket_fk()
    file_id: str = Field(max_length=256)
    added_by: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = utc_column()


class TicketEvent(SQLModel, table=True):
    """Append-only history: who did what, when, from which state to which."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket", "ticket_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = _ticket_fk()
    at: datetime = utc_column()
    actor_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    actor_role: str = Field(max_length=16)
    action: str = Field(max_length=24)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    district_id: str | None = Field(default=None, max_length=12)


class TicketFollower(SQLModel, table=True):
    """A resident who follows someone else's ticket instead of filing a duplicate."""

    __tablename__ = "ticket_followers"
    __table_args__ = (
        UniqueConstraint("ticket_id", "user_id", name="uq_ticket_followers_ticket_user"),
        Index("ix_ticket_followers_user", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = _ticket_fk()
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    lang: str = Field(max_length=2)
    created_at: datetime = utc_column()


class TicketNotification(SQLModel, table=True):
    """The outbox: a message caused by a ticket change, written in the change's transaction."""

    __tablename__ = "ticket_notifications"
    __table_args__ = (Index("ix_ticket_notifications_status", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = _ticket_fk()
    recipient_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    audience: str = Field(max_length=16)
    kind: str = Field(max_length=24)
    lang: str = Field(max_length=2)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # pending | sent | failed
    status: str = Field(default="pending", max_length=8)
    attempts: int = 0
    created_at: datetime = utc_column()
    lease_until: datetime | None = utc_column(nullable=True)
    sent_at: datetime | None = utc_column(nullable=True)
    last_error: str | None = Field(default=None, max_length=200)


class TicketEscalation(SQLModel, table=True):
    """One escalation step of one ticket cycle; the unique key makes each step fire once."""

    __tablename__ = "ticket_escalations"
    __table_args__ = (
        UniqueConstraint("ticket_id", "cycle", "step", name="uq_ticket_escalations_step"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = _ticket_fk()
    cycle: int
    # claim-1, claim-2, resolve-1, resolve-2: stage and level
    step: str = Field(max_length=16)
    fired_at: datetime = utc_column()


class Staff(SQLModel, table=True):
    """A user who works the tickets of one district (managed by admins)."""

    __tablename__ = "staff"
    __table_args__ = (
        UniqueConstraint("user_id", "district_id", name="uq_staff_user_district"),
        Index("ix_staff_district", "district_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    district_id: str = Field(max_length=12)
    display_name: str | None = Field(default=None, max_length=64)
    added_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    active: bool = True
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


class DistrictChat(SQLModel, table=True):
    """The staff group of a district, linked by an admin at run time (wins over city.yaml)."""

    __tablename__ = "district_chats"

    district_id: str = Field(primary_key=True, max_length=12)
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    linked_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    linked_at: datetime = utc_column()


__all__ = [
    "DistrictChat", "Staff", "Ticket", "TicketEscalation", "TicketEvent", "TicketFollower",
    "TicketNotification", "TicketPhoto",
]
