"""All SQL of the evidence ledger. Functions take the caller's connection (and transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from yunting.infra.clock import as_utc
from yunting.infra.ledger import merkle
from yunting.infra.ledger.model import SignedTreeHead
from yunting.infra.ledger.tables import (
    HEAD_ROW_ID,
    ledger_entries,
    ledger_head,
    ledger_tree_heads,
)

# Rows of any width (SQLAlchemy 2.1 types Row by its column tuple).
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class HeadRow:
    tree_size: int
    root_hash: bytes
    compact_range: bytes

    def to_compact_range(self) -> merkle.CompactRange:
        return merkle.CompactRange.from_bytes(self.tree_size, self.compact_range)


EMPTY_HEAD = HeadRow(tree_size=0, root_hash=merkle.EMPTY_ROOT, compact_range=b"")


def _head_from_row(row: AnyRow | None) -> HeadRow | None:
    if row is None:
        return None
    return HeadRow(
        tree_size=int(row.tree_size),
        root_hash=bytes(row.root_hash),
        compact_range=bytes(row.compact_range),
    )


_HEAD_COLUMNS = (ledger_head.c.tree_size, ledger_head.c.root_hash, ledger_head.c.compact_range)


async def lock_head(conn: AsyncConnection) -> HeadRow:
    """Read the head row, holding the log's append lock until the transaction ends.

    PostgreSQL: ``SELECT ... FOR UPDATE`` on the single head row serializes appenders (a second
    one waits, then reads the committed head). SQLite: the caller's ``Database.transaction()``
    already holds the database write lock (``BEGIN IMMEDIATE``); FOR UPDATE renders as nothing.
    """
    query = select(*_HEAD_COLUMNS).where(ledger_head.c.id == HEAD_ROW_ID).with_for_update()
    head = _head_from_row((await conn.execute(query)).first())
    if head is not None:
        return head
    # First append ever (or the table was emptied): create the row; if another writer raced us
    # to it, ON CONFLICT DO NOTHING makes ours a no-op and we lock theirs.
    values = {
        "id": HEAD_ROW_ID,
        "tree_size": 0,
        "root_hash": merkle.EMPTY_ROOT,
        "compact_range": b"",
    }
    insert: Any
    if conn.dialect.name == "postgresql":
        insert = postgresql.insert(ledger_head).values(values).on_conflict_do_nothing()
    else:
        insert = sqlite.insert(ledger_head).values(values).on_conflict_do_nothing()
    await conn.execute(insert)
    head = _head_from_row((await conn.execute(query)).first())
    if head is None:
        raise RuntimeError("ledger head row vanished inside a transaction")
    return head


async def read_head(conn: AsyncConnection) -> HeadRow:
    query = select(*_HEAD_COLUMNS).where(ledger_head.c.id == HEAD_ROW_ID)
    return _head_from_row((await conn.execute(query)).first()) or EMPTY_HEAD


async def write_head(conn: AsyncConnection, head: HeadRow) -> None:
    await conn.execute(
        update(ledger_head)
        .where(ledger_head.c.id == HEAD_ROW_ID)
        .values(
            tree_size=head.tree_size,
            root_hash=head.root_hash,
            compact_range=head.compact_range,
        )
    )


async def insert_entries(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """One executemany for the whole batch."""
    if rows:
        await conn.execute(ledger_entries.insert(), list(rows))


async def fetch_nodes(
    conn: AsyncConnection, nodes: Iterable[merkle.Node]
) -> dict[merkle.Node, bytes]:
    """Hashes of complete subtrees: leaves from ``leaf_hash``, higher nodes from the row of their
    last leaf (``subtree_hashes``). One query over O(log n) primary keys."""
    wanted = list(nodes)
    if not wanted:
        return {}
    rows_needed = sorted({node.completed_by for node in wanted})
    query = select(
        ledger_entries.c.leaf_index, ledger_entries.c.leaf_hash, ledger_entries.c.subtree_hashes
    ).where(ledger_entries.c.leaf_index.in_(rows_needed))
    by_row = {
        int(row.leaf_index): (bytes(row.leaf_hash), bytes(row.subtree_hashes))
        for row in await conn.execute(query)
    }
    found: dict[merkle.Node, bytes] = {}
    for node in wanted:
        stored = by_row.get(node.completed_by)
        if stored is None:
            continue
        leaf_hash, subtrees = stored
        if node.level == 0:
            found[node] = leaf_hash
        else:
            offset = (node.level - 1) * merkle.HASH_SIZE
            value = subtrees[offset : offset + merkle.HASH_SIZE]
            if len(value) == merkle.HASH_SIZE:
                found[node] = value
    return found


_ENTRY_COLUMNS = (
    ledger_entries.c.leaf_index,
    ledger_entries.c.kind,
    ledger_entries.c.subject_id,
    ledger_entries.c.case_id,
    ledger_entries.c.content_sha256,
    ledger_entries.c.at,
    ledger_entries.c.leaf,
    ledger_entries.c.leaf_hash,
    ledger_entries.c.subtree_hashes,
)


@dataclass(frozen=True, slots=True)
class EntryRow:
    leaf_index: int
    kind: str
    subject_id: str
    case_id: UUID | None
    content_sha256: str
    at: datetime
    leaf: bytes
    leaf_hash: bytes
    subtree_hashes: bytes


def _entry_row(row: AnyRow) -> EntryRow:
    return EntryRow(
        leaf_index=int(row.leaf_index),
        kind=row.kind,
        subject_id=row.subject_id,
        case_id=row.case_id,
        content_sha256=row.content_sha256,
        at=as_utc(row.at),
        leaf=bytes(row.leaf),
        leaf_hash=bytes(row.leaf_hash),
        subtree_hashes=bytes(row.subtree_hashes),
    )


async def get_entry(conn: AsyncConnection, index: int) -> EntryRow | None:
    query = select(*_ENTRY_COLUMNS).where(ledger_entries.c.leaf_index == index)
    row = (await conn.execute(query)).first()
    return None if row is None else _entry_row(row)


async def find_by_content(
    conn: AsyncConnection, content_sha256: str, *, below: int, limit: int
) -> list[EntryRow]:
    query = (
        select(*_ENTRY_COLUMNS)
        .where(
            ledger_entries.c.content_sha256 == content_sha256,
            ledger_entries.c.leaf_index < below,
        )
        .order_by(ledger_entries.c.leaf_index)
        .limit(limit)
    )
    return [_entry_row(row) for row in await conn.execute(query)]


async def entries_for_case(conn: AsyncConnection, case_id: UUID, *, below: int) -> list[EntryRow]:
    query = (
        select(*_ENTRY_COLUMNS)
        .where(ledger_entries.c.case_id == case_id, ledger_entries.c.leaf_index < below)
        .order_by(ledger_entries.c.leaf_index)
    )
    return [_entry_row(row) for row in await conn.execute(query)]


async def entries_page(conn: AsyncConnection, *, after: int, limit: int) -> list[EntryRow]:
    """Entries with index > ``after`` in index order (keyset pagination for full scans)."""
    query = (
        select(*_ENTRY_COLUMNS)
        .where(ledger_entries.c.leaf_index > after)
        .order_by(ledger_entries.c.leaf_index)
        .limit(limit)
    )
    return [_entry_row(row) for row in await conn.execute(query)]


async def count_entries(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(ledger_entries))).scalar_one())


def _tree_head(row: AnyRow) -> SignedTreeHead:
    return SignedTreeHead(
        tree_size=int(row.tree_size),
        root_hash=bytes(row.root_hash),
        timestamp_ms=int(row.timestamp_ms),
        signature=bytes(row.signature),
        key_id=bytes(row.key_id),
    )


_STH_COLUMNS = (
    ledger_tree_heads.c.tree_size,
    ledger_tree_heads.c.root_hash,
    ledger_tree_heads.c.timestamp_ms,
    ledger_tree_heads.c.signature,
    ledger_tree_heads.c.key_id,
)


async def insert_tree_head(
    conn: AsyncConnection, sth: SignedTreeHead, *, signed_at: datetime
) -> None:
    await conn.execute(
        ledger_tree_heads.insert().values(
            tree_size=sth.tree_size,
            root_hash=sth.root_hash,
            timestamp_ms=sth.timestamp_ms,
            key_id=sth.key_id,
            signature=sth.signature,
            signed_at=signed_at,
        )
    )


async def latest_tree_head(conn: AsyncConnection) -> SignedTreeHead | None:
    query = (
        select(*_STH_COLUMNS)
        .order_by(ledger_tree_heads.c.tree_size.desc(), ledger_tree_heads.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).first()
    return None if row is None else _tree_head(row)


async def tree_head_for_size(conn: AsyncConnection, tree_size: int) -> SignedTreeHead | None:
    query = (
        select(*_STH_COLUMNS)
        .where(ledger_tree_heads.c.tree_size == tree_size)
        .order_by(ledger_tree_heads.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).first()
    return None if row is None else _tree_head(row)


async def tree_heads_page(
    conn: AsyncConnection, *, after: tuple[int, int], limit: int
) -> list[tuple[int, SignedTreeHead]]:
    """(row id, head) in (tree_size, id) order, strictly after ``after`` (keyset pagination)."""
    size, row_id = after
    query = (
        select(ledger_tree_heads.c.id, *_STH_COLUMNS)
        .where(
            or_(
                ledger_tree_heads.c.tree_size > size,
                and_(ledger_tree_heads.c.tree_size == size, ledger_tree_heads.c.id > row_id),
            )
        )
        .order_by(ledger_tree_heads.c.tree_size, ledger_tree_heads.c.id)
        .limit(limit)
    )
    return [(int(row.id), _tree_head(row)) for row in await conn.execute(query)]
