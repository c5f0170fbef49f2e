"""Evidence-ledger benchmark: append throughput vs a plain INSERT, and proof cost vs log size.

Prints one JSON line. Never asserts times.

    python bench/ledger.py [--quick] [--database-url URL]

- ``append_per_s``: single appends, each in its own transaction (how a hearing transition
  appends), vs ``insert_per_s``: a plain INSERT of the same row (kind, subject, case, content
  hash, time, event JSON) into an ordinary table with the same lookup indexes, each in its own
  transaction, same database, same run, interleaved in blocks.
  ``append_ratio_vs_insert`` = append / insert.
- ``append_batched_per_s`` vs ``insert_batched_per_s``: ``append_many`` vs one executemany,
  ``--batch`` rows per transaction.
- Proof cost: the log is grown to each size with the bulk-load path (``append_many`` in large
  batches: one head read, one executemany, one head write per batch; the same code as a normal
  append, just more rows per lock) and, at each size, random inclusion and consistency proofs
  are generated through the service (database reads included) and checked against the root.
  ``proof_growth_1m_vs_10k`` = inclusion-proof time at 1M entries / at 10k (``null`` with
  ``--quick``, which stops at 100k; ``proof_growth_largest_vs_smallest`` is always given).
  For comparison ``log_ratio`` = log2(largest) / log2(smallest) is what O(log n) predicts.

Default database: a fresh SQLite file in a temporary directory. ``--database-url`` must name an
empty, dedicated database (the bench migrates it and refuses a non-empty ledger).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    func,
    select,
)

from yunting.infra.clock import SystemClock
from yunting.infra.db import Database
from yunting.infra.ledger import Ledger, NewEntry, append, append_many, merkle
from yunting.infra.ledger.signing import TreeHeadSigner
from yunting.infra.ledger.tables import ledger_entries, ledger_head, ledger_tree_heads
from yunting.infra.migrate import upgrade

AT = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)

plain_metadata = MetaData()
plain_entries = Table(
    "bench_plain_entries",
    plain_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("subject_id", String(128), nullable=False),
    Column("case_id", Uuid, nullable=True),
    Column("content_sha256", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("event", Text, nullable=False),
    # The lookups the ledger table serves, so both sides pay for the same indexes.
    Index("ix_bench_plain_content", "content_sha256"),
    Index("ix_bench_plain_case", "case_id"),
    Index("ix_bench_plain_subject", "kind", "subject_id"),
)


def make_entry(n: int) -> NewEntry:
    return NewEntry(
        kind="hearing.state_changed",
        subject_id=f"hearing-{n % 997}",
        content_sha256=hashlib.sha256(n.to_bytes(8, "big")).hexdigest(),
        event={"n": n, "from": "open", "to": "in_session", "actor": "judge"},
        at=AT,
    )


def plain_row(entry: NewEntry) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "subject_id": entry.subject_id,
        "case_id": entry.case_id,
        "content_sha256": entry.content_sha256,
        "at": entry.at,
        "event": entry.event_json.decode("utf-8"),
    }


async def fresh_database(url: str | None, workdir: Path) -> Database:
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    url = url or f"sqlite+aiosqlite:///{workdir / 'bench.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    await db.start()
    async with db.transaction() as conn:
        await conn.run_sync(plain_metadata.create_all)
        await conn.execute(plain_entries.delete())
        count = (await conn.execute(select(func.count()).select_from(ledger_entries))).scalar_one()
    if count:
        await db.stop()
        raise SystemExit(f"{url}: ledger_entries is not empty; use a dedicated database")
    return db


async def bench_single(db: Database, n: int, block: int = 100) -> tuple[float, float]:
    entries = [make_entry(i) for i in range(n)]
    rows = [plain_row(e) for e in entries]
    append_time = insert_time = 0.0
    # Interleave blocks so both see the same machine load and database growth.
    for start in range(0, n, block):
        t0 = time.perf_counter()
        for row in rows[start : start + block]:
            async with db.transaction() as conn:
                await conn.execute(plain_entries.insert(), row)
        t1 = time.perf_counter()
        for entry in entries[start : start + block]:
            await append(
                db,
                kind=entry.kind,
                subject_id=entry.subject_id,
                content_sha256=entry.content_sha256,
                event=entry.event,
                at=entry.at,
            )
        t2 = time.perf_counter()
        insert_time += t1 - t0
        append_time += t2 - t1
    return n / append_time, n / insert_time


async def bench_batched(db: Database, n: int, batch: int, offset: int) -> tuple[float, float]:
    append_time = insert_time = 0.0
    for start in range(offset, offset + n, batch):
        entries = [make_entry(i) for i in range(start, start + batch)]
        rows = [plain_row(e) for e in entries]
        t0 = time.perf_counter()
        async with db.transaction() as conn:
            await conn.execute(plain_entries.insert(), rows)
        t1 = time.perf_counter()
        await append_many(db, entries=entries)
        t2 = time.perf_counter()
        insert_time += t1 - t0
        append_time += t2 - t1
    return n / append_time, n / insert_time


async def bulk_load(db: Database, upto: int, current: int, batch: int = 10_000) -> float:
    """Grow the log to ``upto`` entries; returns the seconds taken (entry building included)."""
    t0 = time.perf_counter()
    while current < upto:
        count = min(batch, upto - current)
        await append_many(db, entries=[make_entry(i) for i in range(current, current + count)])
        current += count
    return time.perf_counter() - t0


async def empty_ledger(db: Database) -> None:
    """Only for the database the bench checked was empty when it started."""
    async with db.transaction() as conn:
        for table in (ledger_entries, ledger_head, ledger_tree_heads, plain_entries):
            await conn.execute(table.delete())


async def measure_proofs(
    ledger: Ledger, size: int, samples: int, rng: random.Random
) -> dict[str, Any]:
    root = await ledger.root_at(tree_size=size)
    for _ in range(20):  # warm the connection pool and page cache before timing
        await ledger.inclusion_proof(index=rng.randrange(size), tree_size=size)
    inclusion: list[float] = []
    for _ in range(samples):
        index = rng.randrange(size)
        t0 = time.perf_counter()
        proof = await ledger.inclusion_proof(index=index, tree_size=size)
        inclusion.append(time.perf_counter() - t0)
        if not proof.verify(root):
            raise RuntimeError(f"inclusion proof for {index} in {size} does not verify")
    consistency: list[float] = []
    for _ in range(samples // 2):
        first = rng.randrange(1, size)
        t0 = time.perf_counter()
        proof = await ledger.consistency_proof(first=first, second=size)
        consistency.append(time.perf_counter() - t0)
        if not proof.verify(await ledger.root_at(tree_size=first), root):
            raise RuntimeError(f"consistency proof {first}->{size} does not verify")
    nodes = statistics.mean(
        len(merkle.inclusion_nodes(rng.randrange(size), size)) for _ in range(samples)
    )
    return {
        "size": size,
        "inclusion_us": round(statistics.median(inclusion) * 1e6, 1),
        "consistency_us": round(statistics.median(consistency) * 1e6, 1),
        "nodes_read": round(nodes, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(6962)
    sizes = [1_000, 10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    single_n = 300 if args.quick else 2_000
    batched_n = 20_000 if args.quick else 100_000
    samples = 100 if args.quick else 300
    signer = TreeHeadSigner(Ed25519PrivateKey.generate())

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # Throughput on its own fresh database, so both tables start equal.
        db = await fresh_database(args.database_url, workdir / "a")
        try:
            append_per_s, insert_per_s = await bench_single(db, single_n)
            batched_per_s, insert_batched_per_s = await bench_batched(
                db, batched_n, args.batch, offset=single_n
            )
        finally:
            await db.stop()

        if args.database_url:
            db = Database(args.database_url)
            await db.start()
            await empty_ledger(db)
        else:
            db = await fresh_database(None, workdir / "b")
        ledger = Ledger(db=db, signer=signer, clock=SystemClock())
        try:
            proofs = []
            loaded = 0
            load_seconds = 0.0
            for size in sizes:
                load_seconds += await bulk_load(db, size, loaded)
                loaded = size
                proofs.append(await measure_proofs(ledger, size, samples, rng))
        finally:
            await db.stop()

    growth = proofs[-1]["inclusion_us"] / proofs[0]["inclusion_us"]
    return {
        "bench": "ledger",
        "quick": args.quick,
        "database": "sqlite" if not args.database_url else args.database_url.split(":")[0],
        "append_per_s": round(append_per_s, 1),
        "insert_per_s": round(insert_per_s, 1),
        "append_ratio_vs_insert": round(append_per_s / insert_per_s, 3),
        "append_batched_per_s": round(batched_per_s, 1),
        "insert_batched_per_s": round(insert_batched_per_s, 1),
        "append_batched_ratio_vs_insert": round(batched_per_s / insert_batched_per_s, 3),
        "batch": args.batch,
        "bulk_load_per_s": round(sizes[-1] / load_seconds, 1),
        "proofs": proofs,
        "proof_growth_1m_vs_10k": None if args.quick else round(growth, 3),
        "proof_growth_largest_vs_smallest": round(growth, 3),
        "log_ratio": round(math.log2(sizes[-1]) / math.log2(sizes[0]), 3),
        "consistency_growth_largest_vs_smallest": round(
            proofs[-1]["consistency_us"] / proofs[0]["consistency_us"], 3
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under a minute")
    parser.add_argument("--database-url", default="", help="an empty, dedicated database")
    parser.add_argument("--batch", type=int, default=1_000, help="rows per batched transaction")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
