"""inbound_replies: what recipients send back (SMS replies), and an index to match them

A mobile-originated SMS is stored verbatim before the SMSC is acknowledged, and matched to the
latest attempt sent to the sender's number (``ix_service_attempts_address``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_replies",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("part", sa.String(16), nullable=False, server_default=""),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempt_id", sa.Uuid(), nullable=True),
        sa.Column("recipient_id", sa.Uuid(), nullable=True),
    )
    op.create_index("ix_inbound_replies_sender", "inbound_replies", ["channel", "sender"])
    op.create_index(
        "ix_service_attempts_address", "service_attempts", ["channel", "address", "sent_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_service_attempts_address", table_name="service_attempts")
    op.drop_index("ix_inbound_replies_sender", table_name="inbound_replies")
    op.drop_table("inbound_replies")
