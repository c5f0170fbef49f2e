"""evidence ledger: entries (leaves + subtree hashes), head row, signed tree heads

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("leaf_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("subtree_hashes", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "leaf_index >= 0", name=op.f("ck_ledger_entries_leaf_index_non_negative")
        ),
        sa.PrimaryKeyConstraint("leaf_index", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entries_case_id", ["case_id"], unique=False)
        batch_op.create_index("ix_ledger_entries_content_sha256", ["content_sha256"], unique=False)
        batch_op.create_index("ix_ledger_entries_subject", ["kind", "subject_id"], unique=False)

    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("compact_range", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_ledger_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_head")),
    )

    op.create_table(
        "ledger_tree_heads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_tree_heads")),
    )
    with op.batch_alter_table("ledger_tree_heads", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_tree_heads_tree_size", ["tree_size"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ledger_tree_heads", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_tree_heads_tree_size")
    op.drop_table("ledger_tree_heads")
    op.drop_table("ledger_head")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_subject")
        batch_op.drop_index("ix_ledger_entries_content_sha256")
        batch_op.drop_index("ix_ledger_entries_case_id")
    op.drop_table("ledger_entries")
