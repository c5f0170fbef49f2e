"""Imports every area's table declarations so ``metadata`` is complete (for Alembic and tests)."""

from __future__ import annotations

from sqlalchemy import MetaData

from yunting.infra.db import metadata


def load_all_tables() -> MetaData:
    # Imported for their side effect of registering tables on ``metadata``.
    import yunting.hearing.tables
    import yunting.identity.tables
    import yunting.infra.ledger.tables
    import yunting.recording.tables
    import yunting.service_delivery.tables
    import yunting.staff.tables  # noqa: F401

    return metadata
