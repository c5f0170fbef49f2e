"""Issued one-time codes (only their HMACs)."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Uuid

from yunting.infra.db import UtcDateTime, metadata

one_time_codes = Table(
    "one_time_codes",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("purpose", String(32), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("channel", String(8), nullable=False),
    # e.g. 138****5678: shown back to the person, never the full address.
    Column("destination_hint", String(64), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("consumed_at", UtcDateTime, nullable=True),
    Index("ix_one_time_codes_subject", "purpose", "subject", "created_at"),
)
