"""What the playback page shows of a hearing's record, and its verification against the ledger.

``record_view`` reads the rows: tracks with their segments, the recording's events and
interruptions, the hearing's own events (start, pauses, who joined and left), the sealed
manifest, and the composite job. ``verify_record`` checks every segment and the manifest:

1. the stored bytes exist and hash to the SHA-256 in the row;
2. the ledger entry at the row's index is this segment's (kind, subject) with that hash;
3. that entry is in the log's current signed tree head (inclusion proof), and the head's
   signature is the log's key.

Each check reads what is stored now (no cached hash), so tampering with a file, a row or the
log after the fact shows up as a failed check on that segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from yunting.infra.db import Database
from yunting.infra.ledger.errors import LedgerError
from yunting.infra.ledger.service import Ledger
from yunting.infra.ledger.signing import verify_tree_head
from yunting.infra.storage import BlobStore, StorageError, sha256_of_blob
from yunting.recording import repository as repo
from yunting.recording.manifest import Interruption, interruptions
from yunting.recording.recorder import LEDGER_KIND_SEGMENT
from yunting.recording.service import LEDGER_KIND_MANIFEST


@dataclass(frozen=True, slots=True)
class TrackView:
    track: repo.TrackRow
    segments: list[repo.SegmentRow]

    @property
    def duration_ms(self) -> int:
        return sum(s.duration_ms for s in self.segments)


@dataclass(frozen=True, slots=True)
class RecordView:
    hearing_id: UUID
    tracks: list[TrackView]
    events: list[repo.EventRow]
    interruptions: list[Interruption]
    manifest: repo.ManifestRow | None
    composite: repo.CompositeRow | None
    started_at: datetime | None
    ended_at: datetime | None

    @property
    def segment_count(self) -> int:
        return sum(len(t.segments) for t in self.tracks)


async def record_view(*, db: Database, hearing_id: UUID) -> RecordView:
    async with db.read() as conn:
        tracks = await repo.list_tracks(conn, hearing_id)
        segments = await repo.list_segments(conn, hearing_id)
        events = await repo.list_events(conn, hearing_id)
        manifest = await repo.get_manifest(conn, hearing_id)
        composite = await repo.get_composite(conn, hearing_id)
    views = [
        TrackView(
            track=t,
            segments=sorted((s for s in segments if s.track_id == t.id), key=lambda s: s.seq),
        )
        for t in sorted(tracks, key=lambda t: (t.created_at, t.display_name, t.kind))
    ]
    return RecordView(
        hearing_id=hearing_id,
        tracks=views,
        events=events,
        interruptions=interruptions(events),
        manifest=manifest,
        composite=composite,
        started_at=min((s.started_at for s in segments), default=None),
        ended_at=max((s.ended_at for s in segments), default=None),
    )


@dataclass(frozen=True, slots=True)
class Check:
    """One item's verification: ``ok`` only if every step passed; ``problem`` says which
    failed first."""

    subject_id: str
    storage_key: str
    ok: bool
    problem: str  # "" | missing | hash_mismatch | not_in_ledger | ledger_mismatch | not_in_tree
    ledger_index: int

    def to_json(self) -> dict[str, Any]:
        return {
            "subject_id": self.subject_id,
            "storage_key": self.storage_key,
            "ok": self.ok,
            "problem": self.problem,
            "ledger_index": self.ledger_index,
        }


@dataclass(frozen=True, slots=True)
class Verification:
    tree_size: int
    tree_head_signed: bool  # the head's signature is the log's key
    segments: list[Check]
    manifest: Check | None

    @property
    def ok(self) -> bool:
        items = [*self.segments, *([self.manifest] if self.manifest else [])]
        return self.tree_head_signed and all(c.ok for c in items)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tree_size": self.tree_size,
            "tree_head_signed": self.tree_head_signed,
            "segments": [c.to_json() for c in self.segments],
            "manifest": self.manifest.to_json() if self.manifest else None,
        }


async def verify_record(
    *, db: Database, store: BlobStore, ledger: Ledger, hearing_id: UUID
) -> Verification:
    async with db.read() as conn:
        segments = await repo.list_segments(conn, hearing_id)
        manifest = await repo.get_manifest(conn, hearing_id)
    sth = await ledger.sign_tree_head()
    signed = verify_tree_head(sth, ledger.signer.public_key)

    async def check(*, kind: str, subject_id: str, key: str, sha256: str, index: int) -> Check:
        def failed(problem: str) -> Check:
            return Check(subject_id, key, False, problem, index)

        try:
            stored = await sha256_of_blob(store, key)
        except StorageError:
            return failed("missing")
        if stored != sha256:
            return failed("hash_mismatch")
        if not 0 <= index < sth.tree_size:
            return failed("not_in_ledger")
        try:
            entry = await ledger.get_entry(index=index)
        except LedgerError:
            return failed("not_in_ledger")
        if (entry.kind, entry.subject_id, entry.content_sha256) != (kind, subject_id, sha256):
            return failed("ledger_mismatch")
        proof = await ledger.inclusion_proof(index=index, tree_size=sth.tree_size)
        if proof.leaf_hash != entry.leaf_hash or not proof.verify(sth.root_hash):
            return failed("not_in_tree")
        return Check(subject_id, key, True, "", index)

    checks = [
        await check(
            kind=LEDGER_KIND_SEGMENT,
            subject_id=str(s.id),
            key=s.storage_key,
            sha256=s.sha256,
            index=s.ledger_index,
        )
        for s in segments
    ]
    sealed = None
    if manifest is not None:
        sealed = await check(
            kind=LEDGER_KIND_MANIFEST,
            subject_id=str(hearing_id),
            key=manifest.storage_key,
            sha256=manifest.sha256,
            index=manifest.ledger_index,
        )
    return Verification(
        tree_size=sth.tree_size, tree_head_signed=signed, segments=checks, manifest=sealed
    )


# The timeline of the playback page ---------------------------------------------------------------

# Attendance events that say who joined or left the hearing (the rest is the lobby's business).
TIMELINE_ATTENDANCE = frozenset(
    {
        "entered_hearing",
        "admitted",
        "called_in",
        "dismissed",
        "disconnected",
        "resumed",
        "rejoined",
        "marked_disconnected",
    }
)


@dataclass(frozen=True, slots=True)
class TimelineItem:
    at: datetime
    offset_s: float  # from the record's start: the composite's time
    percent: float  # position on the timeline bar, 0..100
    source: str  # hearing | attendance | recording
    event: str  # hearing.pause, admitted, stopped, ...
    who: str
    reason: str


def position(start: datetime, end: datetime, at: datetime) -> float:
    """Where ``at`` lies on the record from ``start`` to ``end``, in percent (0..100, clipped:
    events before or after the record sit at its ends)."""
    span = max((end - start).total_seconds(), 1e-6)
    offset = (at - start).total_seconds()
    return round(min(100.0, max(0.0, offset / span * 100)), 3)


def build_timeline(
    *,
    start: datetime,
    end: datetime,
    hearing_events: Sequence[tuple[datetime, str, str, str]],
    attendance: Sequence[tuple[datetime, str, str, str]],
    recording_events: Sequence[repo.EventRow],
) -> list[TimelineItem]:
    """Everything that happened between the record's first and last moment, in order, placed
    on the record's time. ``hearing_events`` and ``attendance`` are (at, event, reason, who)."""

    def item(at: datetime, source: str, event: str, who: str, reason: str) -> TimelineItem:
        offset = (at - start).total_seconds()
        return TimelineItem(at, offset, position(start, end, at), source, event, who, reason)

    items = [
        item(at, "hearing", event, who, reason)
        for at, event, reason, who in hearing_events
        if event.startswith("hearing.")
        and event not in ("hearing.schedule", "hearing.notices_sent")
    ]
    items += [
        item(at, "attendance", event, who, reason)
        for at, event, reason, who in attendance
        if event in TIMELINE_ATTENDANCE
    ]
    items += [item(e.at, "recording", e.event, "", e.reason) for e in recording_events]
    return sorted(items, key=lambda i: i.at)
