"""Staff accounts and their sign-in sessions."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, String, Table, Uuid

from yunting.infra.db import UtcDateTime, metadata

staff_users = Table(
    "staff_users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("court_id", Uuid, ForeignKey("courts.id"), nullable=False, index=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("person_id", Uuid, ForeignKey("persons.id"), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# Server-side sessions so a sign-out or a disabled account takes effect at once.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    # SHA-256 of the cookie value: a database leak does not leak usable sessions.
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Uuid, ForeignKey("staff_users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)
