"""Tables of the warnings feature: subscriptions, alerts, their districts, deliveries, notices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from quickresponse.models import utc_column


class AlertSubscription(SQLModel, table=True):
    """One chat subscribed to one district (adcode)."""

    __tablename__ = "alert_subscriptions"
    __table_args__ = (
        UniqueConstraint("chat_id", "district_id", name="uq_alert_subscriptions_chat_district"),
        Index("ix_alert_subscriptions_district", "district_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    district_id: str = Field(max_length=12)
    created_at: datetime = utc_column()


class AlertPreference(SQLModel, table=True):
    """A chat's minimum level; absent means every level."""

    __tablename__ = "alert_preferences"

    chat_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    min_level_rank: int = 1
    updated_at: datetime = utc_column()


class AlertHazardFilter(SQLModel, table=True):
    """A hazard a chat wants; a chat with no rows here wants every hazard."""

    __tablename__ = "alert_hazard_filters"

    chat_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hazard: str = Field(sa_column=Column(String(24), primary_key=True))


class Alert(SQLModel, table=True):
    """One CAP message: an alert, or an update / all-clear referring to an earlier one."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_state_send_at", "state", "send_at"),
        Index("ix_alerts_references_id", "references_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    identifier: str = Field(sa_column=Column(String(80), nullable=False, unique=True))
    msg_type: str = Field(max_length=8)  # Alert | Update | Cancel
    references_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("alerts.id"), nullable=True))
    # Set on the original when an update or all-clear of it starts going out.
    superseded_by: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("alerts.id"), nullable=True))
    hazard: str = Field(max_length=24)
    level: str = Field(max_length=8)
    all_districts: bool = False
    text_zh: str = Field(sa_column=Column(Text, nullable=False))
    text_en: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(max_length=20)
    created_by: int = Field(sa_column=Column(BigInteger, nullable=False))
    approved_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    cancelled_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = utc_column()
    send_at: datetime = utc_column()
    expires_at: datetime = utc_column()
    started_at: datetime | None = utc_column(nullable=True)
    finished_at: datetime | None = utc_column(nullable=True)
    late: bool = False


class AlertDistrict(SQLModel, table=True):
    """A district an alert targets (every district when the alert is for the whole city)."""

    __tablename__ = "alert_districts"

    alert_id: int = Field(
        sa_column=Column(Integer, ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True))
    district_id: str = Field(sa_column=Column(String(12), primary_key=True))


class AlertDelivery(SQLModel, table=True):
    """One recipient of one alert: the exactly-once ledger of a broadcast."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "chat_id", name="uq_alert_deliveries_alert_chat"),
        Index("ix_alert_deliveries_alert_state", "alert_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(sa_column=Column(
        Integer, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False))
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    lang: str = Field(max_length=2)
    # pending | sending | sent | failed | blocked | cancelled
    state: str = Field(max_length=12)
    # How many times the row was claimed for sending (a crash-looping row gives up).
    attempts: int = 0
    lease_until: datetime | None = utc_column(nullable=True)
    sent_at: datetime | None = utc_column(nullable=True)
    error: str | None = Field(default=None, max_length=200)


class AlertNotice(SQLModel, table=True):
    """Something the admins must be told; an outbox so that a restart does not lose it."""

    __tablename__ = "alert_notices"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)
    alert_id: int = Field(sa_column=Column(
        Integer, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False))
    admin_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = utc_column()
    delivered_at: datetime | None = utc_column(nullable=True, index=True)
