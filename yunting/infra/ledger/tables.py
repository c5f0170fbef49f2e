"""Table declarations of the evidence ledger (SQLAlchemy Core). SQL itself lives in ``repository``.

- ``ledger_entries``: one row per leaf. ``leaf`` holds the exact bytes that were hashed;
  ``subtree_hashes`` the hashes of the complete subtrees this leaf completed (levels 1..k, 32
  bytes each), so node (level, i) is found on row ((i + 1) << level) - 1 and any proof needs
  O(log n) primary-key reads. The other columns are copies of leaf fields, for queries only;
  ``verify`` checks they still agree with the leaf.
- ``ledger_head``: the single row every append locks; tree size, root and the right border
  (compact range) needed to append without reading the tree.
- ``ledger_tree_heads``: every tree head the log signed, so ``verify`` can prove the entries still
  produce the roots we committed to.

No foreign keys to other areas: the ledger must outlive and never depend on mutable rows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Uuid,
)

from yunting.infra.db import metadata

HEAD_ROW_ID = 1

ledger_entries = Table(
    "ledger_entries",
    metadata,
    # The primary key is the uniqueness guarantee: two writers can never both own an index.
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(64), nullable=False),
    Column("subject_id", String(128), nullable=False),
    Column("case_id", Uuid, nullable=True),
    Column("content_sha256", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("leaf", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("subtree_hashes", LargeBinary, nullable=False),
    CheckConstraint("leaf_index >= 0", name="leaf_index_non_negative"),
    Index("ix_ledger_entries_content_sha256", "content_sha256"),
    Index("ix_ledger_entries_case_id", "case_id"),
    Index("ix_ledger_entries_subject", "kind", "subject_id"),
)

ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    # Compact range of [0, tree_size): one 32-byte hash per set bit of tree_size, largest first.
    Column("compact_range", LargeBinary, nullable=False),
    CheckConstraint(f"id = {HEAD_ROW_ID}", name="single_row"),
)

ledger_tree_heads = Table(
    "ledger_tree_heads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("key_id", LargeBinary(32), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False),
    Index("ix_ledger_tree_heads_tree_size", "tree_size"),
)
