"""Shared fixtures. Database tests run twice: on SQLite and on the real PostgreSQL server.

PostgreSQL: ``YUNTING_TEST_POSTGRES_URL`` (default: the local server's ``postgres`` database) is
only used to create and drop a private database for this run, so the suite never touches
anything it did not create. Redis: ``YUNTING_TEST_REDIS_URL`` with a per-run key prefix.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from yunting.infra.clock import FrozenClock
from yunting.infra.db import Database
from yunting.infra.migrate import upgrade

POSTGRES_ADMIN_URL = os.environ.get(
    "YUNTING_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("YUNTING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _off_loop(fn: Callable[[], None]) -> None:
    """Run ``fn`` (which may call asyncio.run) in a thread: fixtures can be set up inside a loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(fn).result()


def _admin_exec(statement: str) -> None:
    async def run() -> None:
        engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    _off_loop(lambda: asyncio.run(run()))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private, migrated PostgreSQL database for this test run; dropped at the end."""
    name = f"yunting_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _admin_exec(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        _off_loop(lambda: upgrade(url))
        yield url
    finally:
        _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating per test would be slow)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    _off_loop(lambda: upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


async def _truncate_all(db: Database) -> None:
    # The tables the migrations made (a drift between migrations and metadata is caught by
    # tests/integration/test_migrations.py, not here).
    async with db.engine.begin() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        )
        tables = [r[0] for r in rows if r[0] != "alembic_version"]
        await conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[Database]:
    """A started, migrated, empty database: SQLite file or the private PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copy(sqlite_template, path)
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.start()
        try:
            yield db
        finally:
            await db.stop()
    else:
        url = request.getfixturevalue("postgres_url")
        db = Database(url)
        await db.start()
        try:
            await _truncate_all(db)
            yield db
        finally:
            await db.stop()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 24, 1, 30, tzinfo=UTC))
