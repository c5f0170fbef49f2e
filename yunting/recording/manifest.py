"""The manifest of a hearing's record: rows in, one canonical JSON document out.

Sealed at close: the document is stored beside the segments and its SHA-256 entered into the
evidence ledger, so the list of what was recorded (and what was not: pauses, failures, gaps
after a crash) can no more change unnoticed than a segment can. Canonical JSON (RFC 8785, the
ledger's own encoding): the same rows always give the same bytes and the same hash.

Times are UTC ISO-8601 with microseconds; only integers and strings (no floats), so that any
verifier re-encodes the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from yunting.infra.ledger.canonical import canonical_json
from yunting.infra.ledger.model import format_time
from yunting.recording.repository import EventRow, SegmentRow, TrackRow

MANIFEST_FORMAT = "yunting.recording.manifest/1"


@dataclass(frozen=True, slots=True)
class Interruption:
    """A stretch of the hearing's record with nothing in it, and why."""

    start: datetime
    end: datetime | None  # None: not resumed before the seal (the hearing closed)
    kind: str  # stopped | failed | gap
    actor_id: UUID | None
    reason: str


def interruptions(events: Sequence[EventRow]) -> list[Interruption]:
    """From the recording's events: each stop or failure up to the next start, and each gap
    the recorder found after a crash. The final stop at close is not an interruption."""
    out: list[Interruption] = []
    open_: EventRow | None = None
    for event in events:
        if event.event == "gap":
            out.append(Interruption(event.at, event.until, "gap", None, event.reason))
        elif event.event in ("stopped", "failed"):
            if open_ is None or open_.event == "stopped":
                open_ = event
        elif event.event == "started" and open_ is not None:
            out.append(Interruption(open_.at, event.at, open_.event, open_.actor_id, open_.reason))
            open_ = None
    if open_ is not None and open_.event == "failed":
        out.append(Interruption(open_.at, None, "failed", open_.actor_id, open_.reason))
    return sorted(out, key=lambda i: i.start)


def build_manifest(
    *,
    hearing_id: UUID,
    case_id: UUID | None,
    sealed_at: datetime,
    tracks: Sequence[TrackRow],
    segments: Sequence[SegmentRow],
    events: Sequence[EventRow],
) -> dict[str, Any]:
    by_track: dict[UUID, list[SegmentRow]] = {t.id: [] for t in tracks}
    for segment in segments:
        if segment.track_id not in by_track:
            raise ValueError(f"segment {segment.id} belongs to no listed track")
        by_track[segment.track_id].append(segment)
    track_docs = []
    ordered = sorted(tracks, key=lambda t: (t.created_at, str(t.participant_id), t.kind))
    for track in ordered:
        mine = sorted(by_track[track.id], key=lambda s: s.seq)
        resolutions: list[dict[str, Any]] = []
        for segment in mine:
            if segment.width is None or segment.height is None:
                continue
            size = (segment.width, segment.height)
            if not resolutions or (resolutions[-1]["width"], resolutions[-1]["height"]) != size:
                resolutions.append(
                    {
                        "from_seq": segment.seq,
                        "at": format_time(segment.started_at),
                        "width": segment.width,
                        "height": segment.height,
                    }
                )
        track_docs.append(
            {
                "participant_id": str(track.participant_id),
                "display_name": track.display_name,
                "role": track.role,
                "kind": track.kind,
                "codec": track.codec,
                "resolutions": resolutions,
                "duration_ms": sum(s.duration_ms for s in mine),
                "size": sum(s.size for s in mine),
                "segments": [_segment_doc(s) for s in mine],
            }
        )
    starts = [s.started_at for s in segments]
    ends = [s.ended_at for s in segments]
    return {
        "format": MANIFEST_FORMAT,
        "hearing_id": str(hearing_id),
        "case_id": str(case_id) if case_id is not None else None,
        "sealed_at": format_time(sealed_at),
        "started_at": format_time(min(starts)) if starts else None,
        "ended_at": format_time(max(ends)) if ends else None,
        "segment_count": len(segments),
        "size": sum(s.size for s in segments),
        "tracks": track_docs,
        "interruptions": [
            {
                "kind": i.kind,
                "start": format_time(i.start),
                "end": format_time(i.end) if i.end is not None else None,
                "actor_id": str(i.actor_id) if i.actor_id is not None else None,
                "reason": i.reason,
            }
            for i in interruptions(events)
        ],
        "events": [
            {
                "at": format_time(e.at),
                "event": e.event,
                "actor_id": str(e.actor_id) if e.actor_id is not None else None,
                "reason": e.reason,
                "until": format_time(e.until) if e.until is not None else None,
            }
            for e in events
        ],
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The sealed bytes: canonical JSON."""
    return canonical_json(manifest)


def _segment_doc(segment: SegmentRow) -> dict[str, Any]:
    return {
        "seq": segment.seq,
        "storage_key": segment.storage_key,
        "started_at": format_time(segment.started_at),
        "ended_at": format_time(segment.ended_at),
        "duration_ms": segment.duration_ms,
        "frames": segment.frames,
        "size": segment.size,
        "sha256": segment.sha256,
        "width": segment.width,
        "height": segment.height,
        "close_reason": segment.close_reason,
        "clock_synced": segment.clock_synced,
        "ledger_index": segment.ledger_index,
    }
