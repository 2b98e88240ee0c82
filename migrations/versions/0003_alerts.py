"""Warnings: subscriptions, alerts, targeted districts, deliveries, admin notices.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-29
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "alert_subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.String(length=12), nullable=False),
        _utc("created_at"),
        sa.UniqueConstraint("chat_id", "district_id",
                            name="uq_alert_subscriptions_chat_district"),
    )
    op.create_index("ix_alert_subscriptions_district", "alert_subscriptions", ["district_id"])
    op.create_table(
        "alert_preferences",
        sa.Column("chat_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("min_level_rank", sa.Integer(), nullable=False),
        _utc("updated_at"),
    )
    op.create_table(
        "alert_hazard_filters",
        sa.Column("chat_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hazard", sa.String(length=24), primary_key=True),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("identifier", sa.String(length=80), nullable=False, unique=True),
        sa.Column("msg_type", sa.String(length=8), nullable=False),
        sa.Column("references_id", sa.Integer(), sa.ForeignKey("alerts.id"), nullable=True),
        sa.Column("superseded_by", sa.Integer(), sa.ForeignKey("alerts.id"), nullable=True),
        sa.Column("hazard", sa.String(length=24), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("all_districts", sa.Boolean(), nullable=False),
        sa.Column("text_zh", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("approved_by", sa.BigInteger(), nullable=True),
        sa.Column("cancelled_by", sa.BigInteger(), nullable=True),
        _utc("created_at"),
        _utc("send_at"),
        _utc("expires_at"),
        _utc("started_at", nullable=True),
        _utc("finished_at", nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_alerts_state_send_at", "alerts", ["state", "send_at"])
    op.create_index("ix_alerts_references_id", "alerts", ["references_id"])
    op.create_table(
        "alert_districts",
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alerts.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("district_id", sa.String(length=12), primary_key=True),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alerts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("lang", sa.String(length=2), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _utc("lease_until", nullable=True),
        _utc("sent_at", nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.UniqueConstraint("alert_id", "chat_id", name="uq_alert_deliveries_alert_chat"),
    )
    op.create_index("ix_alert_deliveries_alert_state", "alert_deliveries", ["alert_id", "state"])
    op.create_table(
        "alert_notices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alerts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("admin_id", sa.BigInteger(), nullable=True),
        _utc("created_at"),
        _utc("delivered_at", nullable=True),
    )
    op.create_index("ix_alert_notices_delivered_at", "alert_notices", ["delivered_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_notices_delivered_at", table_name="alert_notices")
    op.drop_table("alert_notices")
    op.drop_index("ix_alert_deliveries_alert_state", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_table("alert_districts")
    op.drop_index("ix_alerts_references_id", table_name="alerts")
    op.drop_index("ix_alerts_state_send_at", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("alert_hazard_filters")
    op.drop_table("alert_preferences")
    op.drop_index("ix_alert_subscriptions_district", table_name="alert_subscriptions")
    op.drop_table("alert_subscriptions")
