"""SQL of the recording area. Functions take a connection; the caller owns the transaction, so
a segment row and its ledger entry are committed together or not at all."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from yunting.recording.tables import (
    recording_composites,
    recording_events,
    recording_manifests,
    recording_segments,
    recording_tracks,
)


@dataclass(frozen=True, slots=True)
class TrackRow:
    id: UUID
    hearing_id: UUID
    participant_id: UUID
    display_name: str
    role: str
    kind: str
    codec: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SegmentRow:
    id: UUID
    track_id: UUID
    hearing_id: UUID
    seq: int
    storage_key: str
    started_at: datetime
    ended_at: datetime
    duration_ms: int
    frames: int
    size: int
    sha256: str
    width: int | None
    height: int | None
    close_reason: str
    clock_synced: bool
    ledger_index: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    hearing_id: UUID
    at: datetime
    event: str
    actor_id: UUID | None
    reason: str
    until: datetime | None


@dataclass(frozen=True, slots=True)
class ManifestRow:
    hearing_id: UUID
    sealed_at: datetime
    storage_key: str
    sha256: str
    ledger_index: int


async def get_track(
    conn: AsyncConnection, *, hearing_id: UUID, participant_id: UUID, kind: str
) -> TrackRow | None:
    row = (
        await conn.execute(
            select(recording_tracks).where(
                recording_tracks.c.hearing_id == hearing_id,
                recording_tracks.c.participant_id == participant_id,
                recording_tracks.c.kind == kind,
            )
        )
    ).first()
    return TrackRow(**row._mapping) if row is not None else None


async def insert_track(conn: AsyncConnection, track: TrackRow) -> None:
    await conn.execute(insert(recording_tracks).values(**_values(track)))


async def list_tracks(conn: AsyncConnection, hearing_id: UUID) -> list[TrackRow]:
    rows = await conn.execute(
        select(recording_tracks)
        .where(recording_tracks.c.hearing_id == hearing_id)
        .order_by(recording_tracks.c.created_at, recording_tracks.c.kind)
    )
    return [TrackRow(**r._mapping) for r in rows]


async def next_seq(conn: AsyncConnection, track_id: UUID) -> int:
    """The sequence number of the track's next segment (continues across restarts)."""
    rows = await conn.execute(
        select(recording_segments.c.seq)
        .where(recording_segments.c.track_id == track_id)
        .order_by(recording_segments.c.seq.desc())
        .limit(1)
    )
    last = rows.scalar_one_or_none()
    return 0 if last is None else int(last) + 1


async def insert_segment(conn: AsyncConnection, segment: SegmentRow) -> None:
    await conn.execute(insert(recording_segments).values(**_values(segment)))


async def list_segments(conn: AsyncConnection, hearing_id: UUID) -> list[SegmentRow]:
    rows = await conn.execute(
        select(recording_segments)
        .where(recording_segments.c.hearing_id == hearing_id)
        .order_by(recording_segments.c.started_at, recording_segments.c.seq)
    )
    return [SegmentRow(**r._mapping) for r in rows]


async def insert_event(
    conn: AsyncConnection,
    *,
    hearing_id: UUID,
    at: datetime,
    event: str,
    actor_id: UUID | None,
    reason: str,
    until: datetime | None = None,
) -> None:
    await conn.execute(
        insert(recording_events).values(
            hearing_id=hearing_id,
            at=at,
            event=event,
            actor_id=actor_id,
            reason=reason,
            until=until,
        )
    )


async def list_events(conn: AsyncConnection, hearing_id: UUID) -> list[EventRow]:
    rows = await conn.execute(
        select(recording_events)
        .where(recording_events.c.hearing_id == hearing_id)
        .order_by(recording_events.c.at, recording_events.c.id)
    )
    return [EventRow(**r._mapping) for r in rows]


async def insert_manifest(conn: AsyncConnection, manifest: ManifestRow) -> None:
    await conn.execute(insert(recording_manifests).values(**_values(manifest)))


async def get_manifest(conn: AsyncConnection, hearing_id: UUID) -> ManifestRow | None:
    row = (
        await conn.execute(
            select(recording_manifests).where(recording_manifests.c.hearing_id == hearing_id)
        )
    ).first()
    return ManifestRow(**row._mapping) if row is not None else None


async def count_segments(conn: AsyncConnection, hearing_id: UUID) -> tuple[int, datetime | None]:
    """How many segments the hearing's record has, and the end of the newest."""
    row = (
        await conn.execute(
            select(func.count(), func.max(recording_segments.c.ended_at)).where(
                recording_segments.c.hearing_id == hearing_id
            )
        )
    ).one()
    # max() keeps the column's type (UtcDateTime): aware UTC on every database.
    return int(row[0]), row[1]


@dataclass(frozen=True, slots=True)
class CompositeRow:
    hearing_id: UUID
    status: str
    progress: int  # per mille
    storage_key: str | None
    size: int | None
    sha256: str | None
    duration_ms: int | None
    error: str
    attempts: int
    created_at: datetime
    updated_at: datetime


async def get_composite(conn: AsyncConnection, hearing_id: UUID) -> CompositeRow | None:
    row = (
        await conn.execute(
            select(recording_composites).where(recording_composites.c.hearing_id == hearing_id)
        )
    ).first()
    return CompositeRow(**row._mapping) if row is not None else None


async def insert_composite(conn: AsyncConnection, composite: CompositeRow) -> None:
    await conn.execute(insert(recording_composites).values(**_values(composite)))


async def update_composite(conn: AsyncConnection, hearing_id: UUID, **values: Any) -> None:
    await conn.execute(
        update(recording_composites)
        .where(recording_composites.c.hearing_id == hearing_id)
        .values(**values)
    )


async def unfinished_composites(conn: AsyncConnection) -> list[UUID]:
    """Jobs queued or interrupted mid-render (a crash): to run again."""
    rows = await conn.execute(
        select(recording_composites.c.hearing_id)
        .where(recording_composites.c.status.in_(("queued", "rendering")))
        .order_by(recording_composites.c.created_at)
    )
    return [r[0] for r in rows]


def _values(row: Any) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}
