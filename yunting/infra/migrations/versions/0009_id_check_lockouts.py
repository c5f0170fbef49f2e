"""service_recipients.id_check_lockouts: lockouts of the recipient page's ID check so far

Each lockout lasts twice the one before and the third closes the check for good
(``service_delivery.id_check``); before, a lockout ran out and the count started over.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_recipients") as batch:
        batch.add_column(
            sa.Column("id_check_lockouts", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("service_recipients") as batch:
        batch.drop_column("id_check_lockouts")
