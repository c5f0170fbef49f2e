"""hearings.recording_shared: the court lets the hearing's parties open its record

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hearings") as batch:
        batch.add_column(
            sa.Column("recording_shared", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("hearings") as batch:
        batch.drop_column("recording_shared")
