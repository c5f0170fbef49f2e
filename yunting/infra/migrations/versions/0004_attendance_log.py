"""attendance log of hearing rooms

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attendance_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hearing_id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["hearing_id"], ["hearings.id"], name=op.f("fk_attendance_log_hearing_id_hearings")
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_attendance_log_participant_id_participants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendance_log")),
    )
    op.create_index("ix_attendance_log_hearing", "attendance_log", ["hearing_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_attendance_log_hearing", table_name="attendance_log")
    op.drop_table("attendance_log")
