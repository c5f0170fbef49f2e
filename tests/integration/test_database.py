"""``Database.transaction`` on SQLite: this process's writers take turns in the order they
asked, and a transaction opened inside another fails after the busy timeout."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from yunting.infra.db import Database


async def _database(path: Path, **kwargs: float) -> Database:
    db = Database(f"sqlite+aiosqlite:///{path / 'turns.sqlite3'}", **kwargs)
    await db.start()
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE turns (n INTEGER NOT NULL)"))
    return db


async def test_writers_take_turns_in_the_order_they_asked(tmp_path: Path) -> None:
    db = await _database(tmp_path)
    try:

        async def write(n: int) -> None:
            async with db.transaction() as conn:
                # Read, wait, write: a turn another writer slipped into would show in the order
                # (SQLite's own busy handler lets whichever writer polls first in).
                await conn.execute(text("SELECT count(*) FROM turns"))
                await asyncio.sleep(0.005)
                await conn.execute(text("INSERT INTO turns (n) VALUES (:n)"), {"n": n})

        writers = []
        for n in range(12):
            writers.append(asyncio.create_task(write(n)))
            await asyncio.sleep(0)  # each asks for its turn before the next starts
        await asyncio.gather(*writers)
        async with db.read() as conn:
            order = [r[0] for r in await conn.execute(text("SELECT n FROM turns ORDER BY rowid"))]
        assert order == list(range(12))
    finally:
        await db.stop()


async def test_a_writer_that_fails_gives_up_its_turn(tmp_path: Path) -> None:
    db = await _database(tmp_path)
    try:

        async def fail() -> None:
            async with db.transaction() as conn:
                await conn.execute(text("INSERT INTO turns (n) VALUES (1)"))
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            await fail()
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO turns (n) VALUES (2)"))
        async with db.read() as conn:
            assert [r[0] for r in await conn.execute(text("SELECT n FROM turns"))] == [2]
    finally:
        await db.stop()


async def test_a_transaction_inside_another_times_out_with_a_clear_error(tmp_path: Path) -> None:
    db = await _database(tmp_path, busy_timeout_s=0.2)
    try:
        async with db.transaction() as outer:
            await outer.execute(text("INSERT INTO turns (n) VALUES (1)"))
            with pytest.raises(TimeoutError, match=r"no write turn within 0\.2 s"):
                async with db.transaction():
                    pass
        async with db.read() as conn:
            assert [r[0] for r in await conn.execute(text("SELECT n FROM turns"))] == [1]
    finally:
        await db.stop()
