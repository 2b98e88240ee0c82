"""The topic a resident opened from the buttons under an answer (for "did you mean": their
choice); also joins the branches 0002, 0003 and 0004 into one head.

Revision ID: 0005
Revises: 0002, 0003, 0004
Create Date: 2026-11-29
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = ("0002", "0003", "0004")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("question_log") as table:
        table.add_column(sa.Column("chosen_entry_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("question_log") as table:
        table.drop_column("chosen_entry_id")
