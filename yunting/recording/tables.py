"""Table declarations of the recording area (SQLAlchemy Core). SQL itself lives in ``repository``.

The manifest of a hearing's record is these rows: its tracks (whose, which kind and codec),
their segments (wall-clock start and end, duration, size, SHA-256, the ledger entry), and the
recording's own events (started, stopped with who and why, failures, gaps after a crash).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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
)

from yunting.infra.db import UtcDateTime, metadata

recording_tracks = Table(
    "recording_tracks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("hearing_id", Uuid, ForeignKey("hearings.id"), nullable=False),
    Column("participant_id", Uuid, ForeignKey("participants.id"), nullable=False),
    # Who it was at the time (the manifest must not change if the participant is renamed).
    Column("display_name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("kind", String(8), nullable=False),  # audio | video
    Column("codec", String(16), nullable=False),  # VP8 | opus
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("hearing_id", "participant_id", "kind", name="uq_recording_tracks_source"),
)

recording_segments = Table(
    "recording_segments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("track_id", Uuid, ForeignKey("recording_tracks.id"), nullable=False),
    Column("hearing_id", Uuid, ForeignKey("hearings.id"), nullable=False),
    Column("seq", Integer, nullable=False),  # per track, from 0, across interruptions
    Column("storage_key", String(500), nullable=False, unique=True),
    Column("started_at", UtcDateTime, nullable=False),  # wall clock (sender report)
    Column("ended_at", UtcDateTime, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("frames", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("close_reason", String(16), nullable=False),
    Column("clock_synced", Boolean, nullable=False),  # times from RTCP SRs, else arrival
    Column("ledger_index", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("track_id", "seq", name="uq_recording_segments_seq"),
    Index("ix_recording_segments_hearing", "hearing_id", "started_at"),
)

recording_events = Table(
    "recording_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hearing_id", Uuid, ForeignKey("hearings.id"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("event", String(32), nullable=False),
    Column("actor_id", Uuid, nullable=True),  # who caused it (None: the system)
    Column("reason", Text, nullable=False, default=""),
    # A gap's end (the event's ``at`` is its start), e.g. after a crash of the recorder.
    Column("until", UtcDateTime, nullable=True),
    Index("ix_recording_events_hearing", "hearing_id", "at"),
)

recording_manifests = Table(
    "recording_manifests",
    metadata,
    Column("hearing_id", Uuid, ForeignKey("hearings.id"), primary_key=True),
    Column("sealed_at", UtcDateTime, nullable=False),
    Column("storage_key", String(500), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
)

# The composite for playback (grid video, mixed audio), rendered after close by a background
# job. Not part of the record: the segments are. The row is the job's state, so a job that a
# crash interrupted is found and run again.
recording_composites = Table(
    "recording_composites",
    metadata,
    Column("hearing_id", Uuid, ForeignKey("hearings.id"), primary_key=True),
    Column("status", String(16), nullable=False),  # queued | rendering | done | failed
    Column("progress", Integer, nullable=False, default=0),  # per mille
    Column("storage_key", String(500), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("duration_ms", Integer, nullable=True),
    Column("error", Text, nullable=False, default=""),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
