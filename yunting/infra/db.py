"""Database engine lifecycle and the shared table metadata.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) when configured. SQL lives only in
the areas' ``repository`` modules; this module owns connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, MetaData, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

logger = logging.getLogger(__name__)

# Deterministic constraint names so Alembic migrations are stable on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# How long a SQLite writer waits for its turn before giving up (busy_timeout, and the turn
# this process's writers take in ``Database.transaction``), by default.
SQLITE_BUSY_TIMEOUT_S = 10

# Table declarations register here (a declaration, not a resource: no connection is made).
metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every database.

    SQLite keeps datetimes as text without an offset and compares them as text, so a bound value
    in +08:00 would silently compare wrong against stored UTC. Every value is converted to UTC
    on the way in (naive values are refused: deadlines have legal weight) and marked UTC on the
    way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, busy_timeout_s: float) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets readers proceed during a write;
    # busy_timeout makes concurrent writers wait instead of failing at once.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """Owns the async engine. Built in the app lifespan or a CLI command, closed by ``stop()``."""

    def __init__(
        self, url: str, *, echo: bool = False, busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S
    ) -> None:
        self.url = url
        self._echo = echo
        self._busy_timeout_s = busy_timeout_s
        self._engine: AsyncEngine | None = None
        self._writer: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("Database.start() has not been called")
        return self._engine

    async def start(self) -> None:
        if self._engine is not None:
            return
        kwargs: dict[str, Any] = {"echo": self._echo}
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        engine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(
                engine.sync_engine,
                "connect",
                lambda dbapi_connection, _record: _sqlite_pragmas(
                    dbapi_connection, self._busy_timeout_s
                ),
            )
        self._engine = engine

    async def stop(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One unit of work: commits on success, rolls back on any exception."""
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                yield conn
            return
        # SQLite has one writer at a time. This process's writers queue here, each woken the
        # moment the one before it commits; in SQLite's busy handler they would poll with
        # sleeps of up to 100 ms, idling the pipeline under load (writers of another process
        # still wait there).
        async with self._write_turn(), self.engine.begin() as conn:
            # Take the write lock up front so read-then-write units of work cannot
            # interleave (the PostgreSQL path uses SELECT ... FOR UPDATE instead).
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer[0] is not loop:
            self._writer = (loop, asyncio.Lock())  # a lock serves the loop it was made on
        lock = self._writer[1]
        try:
            async with asyncio.timeout(self._busy_timeout_s):
                await lock.acquire()
        except TimeoutError:
            raise TimeoutError(
                f"SQLite: no write turn within {self._busy_timeout_s} s (a transaction opened "
                "inside another one?)"
            ) from None
        try:
            yield
        finally:
            lock.release()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
