"""Evidence-ledger use cases: append, sign tree heads, fetch entries and proofs, check the log.

``append`` is the entry point for other areas. It runs *inside the caller's transaction* so a
hearing state change and its ledger entry commit (or roll back) together: the entry row, its
subtree hashes and the new head are written in that one transaction, so a crash mid-append leaves
either all of them or none.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from yunting.infra.clock import Clock
from yunting.infra.db import Database
from yunting.infra.ledger import merkle, repository
from yunting.infra.ledger.bundle import BundleItem, build_bundle
from yunting.infra.ledger.errors import (
    EntryNotFoundError,
    InvalidEntryError,
    InvalidTreeSizeError,
)
from yunting.infra.ledger.keys import load_signing_key
from yunting.infra.ledger.model import (
    ConsistencyProof,
    Entry,
    InclusionProof,
    IssueKind,
    LogIssue,
    LogReport,
    NewEntry,
    SignedTreeHead,
    TreeHead,
    normalize_sha256,
)
from yunting.infra.ledger.signing import TreeHeadSigner, verify_tree_head
from yunting.infra.settings import Settings

logger = logging.getLogger(__name__)

MAX_LOOKUP_RESULTS = 100
VERIFY_PAGE = 2000


@asynccontextmanager
async def _connection(target: AsyncConnection | Database) -> AsyncIterator[AsyncConnection]:
    if isinstance(target, Database):
        async with target.transaction() as conn:
            yield conn
    else:
        yield target


def _entry_row_values(
    index: int, entry: NewEntry, leaf: bytes, leaf_hash: bytes, subtrees: list[bytes]
) -> dict[str, Any]:
    return {
        "leaf_index": index,
        "kind": entry.kind,
        "subject_id": entry.subject_id,
        "case_id": entry.case_id,
        "content_sha256": entry.content_sha256,
        "at": entry.at,
        "leaf": leaf,
        "leaf_hash": leaf_hash,
        "subtree_hashes": b"".join(subtrees),
    }


async def append_many(
    target: AsyncConnection | Database, *, entries: Sequence[NewEntry]
) -> list[int]:
    """Append entries in order under one lock; returns their indices (consecutive).

    Pass an ``AsyncConnection`` to join the caller's transaction (on SQLite it must come from
    ``Database.transaction()``, which holds the write lock), or the ``Database`` to get one.
    This is also the bulk-load path: one head read, one executemany, one head write per call.
    """
    if not entries:
        return []
    async with _connection(target) as conn:
        head = await repository.lock_head(conn)
        tree = head.to_compact_range()
        first = tree.size
        rows = []
        for entry in entries:
            index = tree.size
            leaf = entry.leaf(index)
            leaf_hash = merkle.leaf_hash(leaf)
            completed = tree.append(leaf_hash)
            rows.append(_entry_row_values(index, entry, leaf, leaf_hash, completed))
        await repository.insert_entries(conn, rows)
        await repository.write_head(
            conn,
            repository.HeadRow(
                tree_size=tree.size, root_hash=tree.root(), compact_range=tree.to_bytes()
            ),
        )
    logger.debug("ledger append", extra={"first_index": first, "count": len(entries)})
    return list(range(first, first + len(entries)))


async def append(
    target: AsyncConnection | Database,
    *,
    kind: str,
    subject_id: str | UUID,
    content_sha256: str,
    event: Mapping[str, Any],
    at: datetime,
    case_id: UUID | None = None,
) -> int:
    """Append one evidence entry; returns its index in the log.

    ``content_sha256`` is the hex SHA-256 of the evidence itself (document, recording segment,
    receipt); ``event`` is a small JSON object describing what happened (no floats). Raises
    ``InvalidEntryError`` before touching the database when the input does not fit a leaf.
    """
    entry = NewEntry(
        kind=kind,
        subject_id=str(subject_id),
        content_sha256=content_sha256,
        event=event,
        at=at,
        case_id=case_id,
    )
    (index,) = await append_many(target, entries=[entry])
    return index


class Ledger:
    """The log as a service: built once by ``build_ledger`` and kept on ``app.state.ledger``."""

    def __init__(self, *, db: Database, signer: TreeHeadSigner, clock: Clock) -> None:
        self.db = db
        self.signer = signer
        self.clock = clock

    async def append(
        self,
        *,
        kind: str,
        subject_id: str | UUID,
        content_sha256: str,
        event: Mapping[str, Any],
        at: datetime | None = None,
        case_id: UUID | None = None,
    ) -> int:
        """Append in a transaction of its own (use module-level ``append`` to join one)."""
        return await append(
            self.db,
            kind=kind,
            subject_id=subject_id,
            content_sha256=content_sha256,
            event=event,
            at=self.clock.now() if at is None else at,
            case_id=case_id,
        )

    async def head(self) -> TreeHead:
        """The current (unsigned) tree head."""
        async with self.db.read() as conn:
            row = await repository.read_head(conn)
        return TreeHead(size=row.tree_size, root_hash=row.root_hash)

    async def sign_tree_head(self) -> SignedTreeHead:
        """The signed head of the log as it is now; signs a new one only if the log grew.

        Holds the append lock while signing, so the signed size and root are a real state of
        the log, and stores the result so ``verify`` can hold the log to it later.
        """
        # Most calls find the log unchanged since the last head: answer those from a read,
        # without queueing behind appenders for the lock.
        async with self.db.read() as conn:
            current = self._current(
                await repository.read_head(conn), await repository.latest_tree_head(conn)
            )
        if current is not None:
            return current
        async with self.db.transaction() as conn:
            row = await repository.lock_head(conn)
            latest = await repository.latest_tree_head(conn)
            current = self._current(row, latest)
            if current is not None:
                return current  # another signer got here first
            now_ms = int(self.clock.now().timestamp() * 1000)
            if latest is not None:
                now_ms = max(now_ms, latest.timestamp_ms)  # tree heads never go back in time
            sth = self.signer.sign(
                TreeHead(size=row.tree_size, root_hash=row.root_hash), timestamp_ms=now_ms
            )
            await repository.insert_tree_head(conn, sth, signed_at=self.clock.now())
        logger.info("signed ledger tree head", extra={"tree_size": sth.tree_size})
        return sth

    def _current(
        self, row: repository.HeadRow, latest: SignedTreeHead | None
    ) -> SignedTreeHead | None:
        if (
            latest is not None
            and latest.tree_size == row.tree_size
            and latest.root_hash == row.root_hash
            and latest.key_id == self.signer.key_id
        ):
            return latest
        return None

    async def tree_head(self, *, tree_size: int) -> SignedTreeHead:
        """A tree head this log signed earlier for exactly ``tree_size`` entries."""
        async with self.db.read() as conn:
            sth = await repository.tree_head_for_size(conn, tree_size)
        if sth is None:
            raise InvalidTreeSizeError(f"no signed tree head for size {tree_size}")
        return sth

    async def get_entry(self, *, index: int) -> Entry:
        async with self.db.read() as conn:
            row = await repository.get_entry(conn, index)
        if row is None:
            raise EntryNotFoundError(f"no ledger entry at index {index}")
        return Entry.from_leaf(row.leaf)

    async def find_entries(self, *, content_sha256: str) -> list[Entry]:
        """Entries that name this content hash, oldest first (the same document may be logged
        more than once, e.g. served to several recipients)."""
        wanted = normalize_sha256(content_sha256)
        async with self.db.read() as conn:
            head = await repository.read_head(conn)
            rows = await repository.find_by_content(
                conn, wanted, below=head.tree_size, limit=MAX_LOOKUP_RESULTS
            )
        return [Entry.from_leaf(row.leaf) for row in rows]

    async def inclusion_proof(self, *, index: int, tree_size: int) -> InclusionProof:
        """Audit path for entry ``index`` in the tree of ``tree_size`` (RFC 6962 §2.1.1)."""
        async with self.db.read() as conn:
            head = await repository.read_head(conn)
            _check_size(tree_size, head.tree_size)
            if not 0 <= index < tree_size:
                raise InvalidTreeSizeError(
                    f"expected 0 <= index < tree size, got index {index}, tree size {tree_size}"
                )
            needed = merkle.inclusion_nodes(index, tree_size) | {merkle.Node(0, index)}
            found = await repository.fetch_nodes(conn, needed)
        path = merkle.inclusion_proof(index, tree_size, _lookup(found))
        return InclusionProof(
            index=index,
            tree_size=tree_size,
            leaf_hash=_lookup(found)(merkle.Node(0, index)),
            audit_path=tuple(path),
        )

    async def consistency_proof(self, *, first: int, second: int) -> ConsistencyProof:
        """Proof that the tree of ``second`` extends the tree of ``first`` (RFC 6962 §2.1.2)."""
        if not 0 <= first <= second:
            raise InvalidTreeSizeError(
                f"expected 0 <= first <= second, got first {first}, second {second}"
            )
        async with self.db.read() as conn:
            head = await repository.read_head(conn)
            _check_size(second, head.tree_size)
            found = await repository.fetch_nodes(conn, merkle.consistency_nodes(first, second))
        path = merkle.consistency_proof(first, second, _lookup(found))
        return ConsistencyProof(first=first, second=second, path=tuple(path))

    async def root_at(self, *, tree_size: int) -> bytes:
        """The root hash of the tree of ``tree_size`` (any past size), from O(log n) nodes."""
        async with self.db.read() as conn:
            head = await repository.read_head(conn)
            _check_size(tree_size, head.tree_size)
            if tree_size == 0:
                return merkle.EMPTY_ROOT
            found = await repository.fetch_nodes(conn, merkle.range_nodes(0, tree_size))
        return merkle.root_hash(tree_size, _lookup(found))

    async def export_case(self, *, case_id: UUID, public_key_url: str = "") -> bytes:
        """An evidence bundle (zip) for every entry of a case, proven against a fresh signed
        tree head; see ``bundle`` for the format."""
        sth = await self.sign_tree_head()
        async with self.db.read() as conn:
            rows = await repository.entries_for_case(conn, case_id, below=sth.tree_size)
        items = []
        for row in rows:
            proof = await self.inclusion_proof(index=row.leaf_index, tree_size=sth.tree_size)
            items.append(BundleItem(leaf=row.leaf, proof=proof))
        return build_bundle(
            case_id=case_id,
            created_at=self.clock.now(),
            tree_head=sth,
            public_key_pem=self.signer.public_key_document()["pem"],
            public_key_url=public_key_url,
            items=items,
        )

    async def verify_log(self) -> LogReport:
        """Recompute the whole log from the stored leaves and hold it to every signed head.

        Finds altered, removed and reordered entries (leaf bytes vs leaf hash vs columns, index
        continuity, the index inside each leaf), tampered subtree caches, and any stored tree
        head whose root the entries no longer produce or whose signature does not verify.
        Streams the log in pages; memory stays O(log n).
        """
        issues: list[LogIssue] = []
        tree = merkle.CompactRange()
        async with self.db.read() as conn:
            head = await repository.read_head(conn)
            heads = _TreeHeadStream(conn)
            checked = 0

            async def check_heads() -> None:
                nonlocal checked
                while (sth := await heads.peek()) is not None and sth.tree_size == tree.size:
                    await heads.pop()
                    checked += 1
                    issues.extend(self._check_tree_head(sth, tree.root()))

            await check_heads()
            shifted = False
            after = -1
            while True:
                page = await repository.entries_page(conn, after=after, limit=VERIFY_PAGE)
                if not page:
                    break
                for row in page:
                    if row.leaf_index != after + 1:
                        issues.append(
                            LogIssue(
                                IssueKind.MISSING_ENTRY,
                                f"entries {after + 1}..{row.leaf_index - 1} are missing",
                                index=after + 1,
                            )
                        )
                        # Keep going with the rows that are there: later heads will not match,
                        # and that is reported too. Positions have shifted, so per-row subtree
                        # comparisons would only repeat the news.
                        shifted = True
                    issues.extend(_check_row(row))
                    actual_leaf_hash = merkle.leaf_hash(row.leaf)
                    completed = tree.append(actual_leaf_hash)
                    if not shifted and b"".join(completed) != row.subtree_hashes:
                        issues.append(
                            LogIssue(
                                IssueKind.ALTERED_SUBTREE,
                                "stored subtree hashes differ from the recomputed ones",
                                index=row.leaf_index,
                            )
                        )
                    await check_heads()
                    after = row.leaf_index
            remaining = await heads.rest()
        for sth in remaining:
            issues.append(
                LogIssue(
                    IssueKind.MISSING_ENTRY,
                    f"a tree head was signed for {sth.tree_size} entries but only {tree.size} "
                    "remain",
                    index=tree.size,
                )
            )
        if (head.tree_size, head.root_hash, head.compact_range) != (
            tree.size,
            tree.root(),
            tree.to_bytes(),
        ):
            issues.append(
                LogIssue(
                    IssueKind.HEAD_MISMATCH,
                    f"head row says {head.tree_size} entries with root {head.root_hash.hex()}, "
                    f"the entries give {tree.size} with root {tree.root().hex()}",
                )
            )
        report = LogReport(
            size=tree.size,
            root_hash=tree.root(),
            tree_heads_checked=checked,
            issues=tuple(issues),
        )
        if report.ok:
            logger.info("ledger verified", extra={"tree_size": report.size})
        else:
            logger.error("ledger verification found %d issue(s)", len(issues))
        return report

    def _check_tree_head(self, sth: SignedTreeHead, root: bytes) -> list[LogIssue]:
        issues = []
        if sth.root_hash != root:
            issues.append(
                LogIssue(
                    IssueKind.TREE_HEAD_MISMATCH,
                    f"signed root {sth.root_hash.hex()} for {sth.tree_size} entries, the "
                    f"entries now give {root.hex()}",
                    index=sth.tree_size - 1 if sth.tree_size else None,
                )
            )
        if sth.key_id != self.signer.key_id:
            issues.append(
                LogIssue(
                    IssueKind.UNKNOWN_KEY,
                    f"tree head for {sth.tree_size} entries is signed by key "
                    f"{sth.key_id.hex()}, not this log's {self.signer.key_id.hex()}",
                )
            )
        elif not verify_tree_head(sth, self.signer.public_key):
            issues.append(
                LogIssue(
                    IssueKind.BAD_SIGNATURE,
                    f"signature of the tree head for {sth.tree_size} entries does not verify",
                )
            )
        return issues


class _TreeHeadStream:
    """Stored signed heads in (size, id) order, a page at a time (there may be many)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._page: list[tuple[int, SignedTreeHead]] = []
        self._after: tuple[int, int] = (-1, -1)
        self._done = False

    async def peek(self) -> SignedTreeHead | None:
        if not self._page and not self._done:
            self._page = await repository.tree_heads_page(
                self._conn, after=self._after, limit=VERIFY_PAGE
            )
            self._page.reverse()  # pop() from the end yields the smallest first
            self._done = not self._page
        return self._page[-1][1] if self._page else None

    async def pop(self) -> None:
        row_id, sth = self._page.pop()
        self._after = (sth.tree_size, row_id)

    async def rest(self) -> list[SignedTreeHead]:
        rest = []
        while (sth := await self.peek()) is not None:
            rest.append(sth)
            await self.pop()
        return rest


def _check_size(tree_size: int, current: int) -> None:
    if not 0 <= tree_size <= current:
        raise InvalidTreeSizeError(f"expected a tree size between 0 and {current}, got {tree_size}")


def _lookup(found: Mapping[merkle.Node, bytes]) -> merkle.NodeLookup:
    def lookup(node: merkle.Node) -> bytes:
        try:
            return found[node]
        except KeyError:
            # Only possible if rows below the head are missing: the log is damaged.
            raise InvalidTreeSizeError(
                f"ledger is missing the subtree {node}; run `yunting ledger verify`"
            ) from None

    return lookup


def _check_row(row: repository.EntryRow) -> list[LogIssue]:
    issues = []
    if merkle.leaf_hash(row.leaf) != row.leaf_hash:
        issues.append(
            LogIssue(
                IssueKind.ALTERED_ENTRY,
                "the stored leaf hash does not match the stored leaf bytes",
                index=row.leaf_index,
            )
        )
    try:
        entry = Entry.from_leaf(row.leaf)
    except InvalidEntryError as e:
        issues.append(
            LogIssue(IssueKind.ALTERED_ENTRY, f"leaf unreadable: {e}", index=row.leaf_index)
        )
        return issues
    if entry.index != row.leaf_index:
        issues.append(
            LogIssue(
                IssueKind.MISPLACED_ENTRY,
                f"row {row.leaf_index} holds the leaf written for index {entry.index}",
                index=row.leaf_index,
            )
        )
    columns = (row.kind, row.subject_id, row.case_id, row.content_sha256, row.at)
    from_leaf = (entry.kind, entry.subject_id, entry.case_id, entry.content_sha256, entry.at)
    if columns != from_leaf:
        issues.append(
            LogIssue(
                IssueKind.ALTERED_ENTRY,
                "the row's columns no longer match its leaf",
                index=row.leaf_index,
            )
        )
    return issues


def build_ledger(settings: Settings, db: Database, clock: Clock) -> Ledger:
    """Build the ledger service for the app lifespan (``app.state.ledger``) or a CLI command.

    Loads the signing key from settings or ``data_dir/ledger/ed25519.key``, creating the file
    (mode 0600) on first start.
    """
    key = load_signing_key(settings, create=True)
    return Ledger(db=db, signer=TreeHeadSigner(key), clock=clock)


def ensure_signing_key(settings: Settings) -> bytes:
    """Create the signing key if there is none (``yunting migrate``); returns its key id."""
    return TreeHeadSigner(load_signing_key(settings, create=True)).key_id
