"""Outgoing messages kept by the local outbox channel (the embedded default)."""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table, Text, Uuid

from yunting.infra.db import UtcDateTime, metadata

outbox_messages = Table(
    "outbox_messages",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("channel", String(8), nullable=False),  # sms | email
    Column("recipient", String(320), nullable=False),
    Column("subject", String(300), nullable=False, default=""),
    Column("body", Text, nullable=False),
    Column("purpose", String(32), nullable=False),  # hearing_notice | otp | ...
    Column("reference", String(64), nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_outbox_messages_created", "created_at"),
)
