"""Table declarations of the hearing area (SQLAlchemy Core). SQL itself lives in ``repository``."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)

from yunting.infra.db import UtcDateTime, metadata

courts = Table(
    "courts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("code", String(32), nullable=False, unique=True),
)

persons = Table(
    "persons",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("court_id", Uuid, ForeignKey("courts.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("phone", String(32)),
    Column("email", String(320)),
    Column("id_number_last4", String(4)),
    Column("created_at", UtcDateTime, nullable=False),
)

cases = Table(
    "cases",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("court_id", Uuid, ForeignKey("courts.id"), nullable=False, index=True),
    Column("number", String(100), nullable=False),
    Column("title", String(300), nullable=False),
    Column("cause", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", Uuid, nullable=True),
    UniqueConstraint("court_id", "number", name="uq_cases_court_number"),
)

parties = Table(
    "parties",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("cases.id"), nullable=False, index=True),
    Column("person_id", Uuid, ForeignKey("persons.id"), nullable=False),
    Column("side", String(16), nullable=False),
    Column("counsel_person_id", Uuid, ForeignKey("persons.id"), nullable=True),
)

hearings = Table(
    "hearings",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("cases.id"), nullable=False, index=True),
    Column("court_id", Uuid, ForeignKey("courts.id"), nullable=False),
    Column("title", String(300), nullable=False),
    Column("scheduled_start", UtcDateTime, nullable=False),
    Column("expected_minutes", Integer, nullable=False),
    Column("is_public", Boolean, nullable=False),
    Column("recording_required", Boolean, nullable=False),
    Column("state", String(16), nullable=False),
    Column("locked", Boolean, nullable=False, default=False),
    # The court lets the hearing's parties open its record (changes are in the audit trail).
    Column("recording_shared", Boolean, nullable=False, default=False, server_default=false()),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_hearings_court_start", "court_id", "scheduled_start"),
)

participants = Table(
    "participants",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("hearing_id", Uuid, ForeignKey("hearings.id"), nullable=False, index=True),
    Column("person_id", Uuid, ForeignKey("persons.id"), nullable=False),
    Column("party_id", Uuid, ForeignKey("parties.id"), nullable=True),
    Column("role", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("hearing_id", "person_id", "role", name="uq_participants_hearing_person"),
)

join_tokens = Table(
    "join_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("participant_id", Uuid, ForeignKey("participants.id"), nullable=False, index=True),
    Column("hearing_id", Uuid, ForeignKey("hearings.id"), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("revoked_by", Uuid, nullable=True),
    Column("issued_by", Uuid, nullable=True),
)

# Every state change and every act with legal weight, append-only.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("entity", String(32), nullable=False),
    Column("entity_id", Uuid, nullable=False),
    Column("hearing_id", Uuid, nullable=True, index=True),
    Column("case_id", Uuid, nullable=True, index=True),
    Column("action", String(64), nullable=False),
    Column("from_state", String(32), nullable=True),
    Column("to_state", String(32), nullable=True),
    Column("actor_kind", String(16), nullable=False),  # staff | participant | system
    Column("actor_id", Uuid, nullable=True),
    Column("reason", Text, nullable=False, default=""),
    Index("ix_audit_events_entity", "entity", "entity_id"),
)


# Who tried to join, was admitted, dropped and why: lets a court tell "refused to attend" from
# "network failure". Append-only, written by the signaling room as things happen.
attendance_log = Table(
    "attendance_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("hearing_id", Uuid, ForeignKey("hearings.id"), nullable=False),
    Column("participant_id", Uuid, ForeignKey("participants.id"), nullable=False),
    Column("event", String(32), nullable=False),
    Column("reason", String(32), nullable=False, default=""),
    Index("ix_attendance_log_hearing", "hearing_id", "at"),
)
