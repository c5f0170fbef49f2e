"""The migrations produce exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from yunting.infra.db import Database
from yunting.infra.schema import load_all_tables


async def test_migrations_match_the_declared_tables(database: Database) -> None:
    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, load_all_tables()))

    async with database.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []
