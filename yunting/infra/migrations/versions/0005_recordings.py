"""recordings: tracks, segments, events and sealed manifests

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recording_tracks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hearing_id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("codec", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hearing_id"], ["hearings.id"], name=op.f("fk_recording_tracks_hearing_id_hearings")
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_recording_tracks_participant_id_participants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_tracks")),
        sa.UniqueConstraint(
            "hearing_id", "participant_id", "kind", name="uq_recording_tracks_source"
        ),
    )
    op.create_table(
        "recording_segments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("hearing_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=500), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("close_reason", sa.String(length=16), nullable=False),
        sa.Column("clock_synced", sa.Boolean(), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hearing_id"], ["hearings.id"], name=op.f("fk_recording_segments_hearing_id_hearings")
        ),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["recording_tracks.id"],
            name=op.f("fk_recording_segments_track_id_recording_tracks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_segments")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_recording_segments_storage_key")),
        sa.UniqueConstraint("track_id", "seq", name="uq_recording_segments_seq"),
    )
    op.create_index(
        "ix_recording_segments_hearing", "recording_segments", ["hearing_id", "started_at"]
    )
    op.create_table(
        "recording_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hearing_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["hearing_id"], ["hearings.id"], name=op.f("fk_recording_events_hearing_id_hearings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_events")),
    )
    op.create_index("ix_recording_events_hearing", "recording_events", ["hearing_id", "at"])
    op.create_table(
        "recording_manifests",
        sa.Column("hearing_id", sa.Uuid(), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("storage_key", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hearing_id"],
            ["hearings.id"],
            name=op.f("fk_recording_manifests_hearing_id_hearings"),
        ),
        sa.PrimaryKeyConstraint("hearing_id", name=op.f("pk_recording_manifests")),
    )


def downgrade() -> None:
    op.drop_table("recording_manifests")
    op.drop_index("ix_recording_events_hearing", table_name="recording_events")
    op.drop_table("recording_events")
    op.drop_index("ix_recording_segments_hearing", table_name="recording_segments")
    op.drop_table("recording_segments")
    op.drop_table("recording_tracks")
