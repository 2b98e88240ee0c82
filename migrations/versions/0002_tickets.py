"""Tickets: tickets, photos, events, followers, outbox, escalations, staff, district groups.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _ticket_fk() -> sa.Column:
    return sa.Column("ticket_id", sa.Integer(),
                     sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("lang", sa.String(length=2), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("district_id", sa.String(length=12), nullable=False),
        sa.Column("routing_method", sa.String(length=20), nullable=False),
        sa.Column("routing_confidence", sa.Float(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("contact_consent", sa.Boolean(), nullable=False),
        sa.Column("contact_name", sa.String(length=64), nullable=True),
        sa.Column("contact_phone", sa.String(length=32), nullable=True),
        sa.Column("claimed_by", sa.BigInteger(), nullable=True),
        sa.Column("claimed_by_name", sa.String(length=64), nullable=True),
        _utc("claimed_at", nullable=True),
        _utc("responded_at", nullable=True),
        _utc("resolved_at", nullable=True),
        _utc("closed_at", nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("duplicate_of", sa.Integer(),
                  sa.ForeignKey("tickets.id", ondelete="SET NULL"), nullable=True),
        sa.Column("solved", sa.Boolean(), nullable=True),
        sa.Column("satisfaction", sa.String(length=16), nullable=True),
        _utc("rated_at", nullable=True),
        _utc("created_at"),
        _utc("updated_at"),
        sa.Column("cycle", sa.Integer(), nullable=False),
        _utc("cycle_started_at"),
        _utc("claim_due"),
        _utc("resolve_due"),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("group_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("group_message_id", sa.BigInteger(), nullable=True),
        sa.Column("client_ref", sa.String(length=64), nullable=True),
        sa.UniqueConstraint("client_ref", name="uq_tickets_client_ref"),
    )
    op.create_index("ix_tickets_district_state", "tickets", ["district_id", "state"])
    op.create_index("ix_tickets_state_claim_due", "tickets", ["state", "claim_due"])
    op.create_index("ix_tickets_resident", "tickets", ["resident_id"])
    op.create_index("ix_tickets_created_at", "tickets", ["created_at"])

    op.create_table(
        "ticket_photos",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ticket_fk(),
        sa.Column("file_id", sa.String(length=256), nullable=False),
        sa.Column("added_by", sa.BigInteger(), nullable=False),
        _utc("created_at"),
    )
    op.create_index("ix_ticket_photos_ticket", "ticket_photos", ["ticket_id"])

    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ticket_fk(),
        _utc("at"),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("district_id", sa.String(length=12), nullable=True),
    )
    op.create_index("ix_ticket_events_ticket", "ticket_events", ["ticket_id", "id"])

    op.create_table(
        "ticket_followers",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ticket_fk(),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("lang", sa.String(length=2), nullable=False),
        _utc("created_at"),
        sa.UniqueConstraint("ticket_id", "user_id", name="uq_ticket_followers_ticket_user"),
    )
    op.create_index("ix_ticket_followers_user", "ticket_followers", ["user_id"])

    op.create_table(
        "ticket_notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ticket_fk(),
        sa.Column("recipient_id", sa.BigInteger(), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("lang", sa.String(length=2), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _utc("created_at"),
        _utc("lease_until", nullable=True),
        _utc("sent_at", nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
    )
    op.create_index("ix_ticket_notifications_status", "ticket_notifications", ["status", "id"])

    op.create_table(
        "ticket_escalations",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ticket_fk(),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        _utc("fired_at"),
        sa.UniqueConstraint("ticket_id", "cycle", "step", name="uq_ticket_escalations_step"),
    )

    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("district_id", sa.String(length=12), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=True),
        sa.Column("added_by", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        _utc("created_at"),
        _utc("updated_at"),
        sa.UniqueConstraint("user_id", "district_id", name="uq_staff_user_district"),
    )
    op.create_index("ix_staff_district", "staff", ["district_id"])

    op.create_table(
        "district_chats",
        sa.Column("district_id", sa.String(length=12), primary_key=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("linked_by", sa.BigInteger(), nullable=True),
        _utc("linked_at"),
    )


def downgrade() -> None:
    op.drop_table("district_chats")
    op.drop_index("ix_staff_district", table_name="staff")
    op.drop_table("staff")
    op.drop_table("ticket_escalations")
    op.drop_index("ix_ticket_notifications_status", table_name="ticket_notifications")
    op.drop_table("ticket_notifications")
    op.drop_index("ix_ticket_followers_user", table_name="ticket_followers")
    op.drop_table("ticket_followers")
    op.drop_index("ix_ticket_events_ticket", table_name="ticket_events")
    op.drop_table("ticket_events")
    op.drop_index("ix_ticket_photos_ticket", table_name="ticket_photos")
    op.drop_table("ticket_photos")
    for name in ("ix_tickets_created_at", "ix_tickets_resident", "ix_tickets_state_claim_due",
                 "ix_tickets_district_state"):
        op.drop_index(name, table_name="tickets")
    op.drop_table("tickets")
