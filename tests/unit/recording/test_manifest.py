"""The manifest from rows: canonical bytes, tracks in order with their segments and resolution
changes, and the interruptions (pauses, failures, crash gaps) read from the events."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from yunting.infra.ledger.canonical import parse_canonical
from yunting.recording.manifest import (
    MANIFEST_FORMAT,
    build_manifest,
    interruptions,
    manifest_bytes,
)
from yunting.recording.repository import EventRow, SegmentRow, TrackRow

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
HEARING = uuid.UUID("00000000-0000-4000-8000-000000000001")
JUDGE = uuid.UUID("00000000-0000-4000-8000-0000000000aa")


def track(kind: str, name: str = "审判员 王芳", at: datetime = T0) -> TrackRow:
    return TrackRow(uuid.uuid4(), HEARING, uuid.uuid4(), name, "judge", kind, "VP8", at)


def segment(
    owner: TrackRow, seq: int, start_s: float, length_s: float, size: tuple[int, int] | None
) -> SegmentRow:
    return SegmentRow(
        id=uuid.uuid4(),
        track_id=owner.id,
        hearing_id=HEARING,
        seq=seq,
        storage_key=f"recordings/{HEARING}/{owner.id}/{seq}.webm",
        started_at=T0 + timedelta(seconds=start_s),
        ended_at=T0 + timedelta(seconds=start_s + length_s),
        duration_ms=round(length_s * 1000),
        frames=round(length_s * 15),
        size=1000 + seq,
        sha256=f"{seq:064x}",
        width=size[0] if size else None,
        height=size[1] if size else None,
        close_reason="rotate",
        clock_synced=True,
        ledger_index=seq,
        created_at=T0,
    )


def event(
    n: int, at_s: float, name: str, reason: str = "", until_s: float | None = None
) -> EventRow:
    return EventRow(
        id=n,
        hearing_id=HEARING,
        at=T0 + timedelta(seconds=at_s),
        event=name,
        actor_id=JUDGE if name in ("started", "stopped") else None,
        reason=reason,
        until=T0 + timedelta(seconds=until_s) if until_s is not None else None,
    )


def test_a_manifest_lists_tracks_segments_resolution_changes_and_interruptions() -> None:
    video = track("video")
    audio = track("audio", at=T0 + timedelta(seconds=1))
    segments = [
        segment(video, 1, 10, 10, (1280, 720)),
        segment(video, 0, 0, 10, (640, 360)),
        segment(video, 2, 40, 5, (1280, 720)),
        segment(audio, 0, 0, 10, None),
    ]
    events = [
        event(1, 0, "started", "start"),
        event(2, 20, "stopped", "pause: recess"),
        event(3, 40, "started", "resume"),
        event(4, 45, "stopped", "close: adjourned"),
    ]
    doc = build_manifest(
        hearing_id=HEARING,
        case_id=None,
        sealed_at=T0 + timedelta(seconds=50),
        tracks=[audio, video],
        segments=segments,
        events=events,
    )
    assert doc["format"] == MANIFEST_FORMAT
    assert (doc["started_at"], doc["ended_at"]) == (
        "2026-11-24T09:30:00.000000Z",
        "2026-11-24T09:30:45.000000Z",
    )
    assert doc["segment_count"] == 4
    assert doc["size"] == 1000 + 1001 + 1002 + 1000
    # Tracks in the order they were first recorded; segments in sequence.
    assert [t["kind"] for t in doc["tracks"]] == ["video", "audio"]
    first = doc["tracks"][0]
    assert [s["seq"] for s in first["segments"]] == [0, 1, 2]
    assert first["duration_ms"] == 25_000
    assert first["resolutions"] == [
        {"from_seq": 0, "at": "2026-11-24T09:30:00.000000Z", "width": 640, "height": 360},
        {"from_seq": 1, "at": "2026-11-24T09:30:10.000000Z", "width": 1280, "height": 720},
    ]
    assert doc["tracks"][1]["resolutions"] == []
    # The pause is an interruption (with who and why); the final stop at close is not.
    assert doc["interruptions"] == [
        {
            "kind": "stopped",
            "start": "2026-11-24T09:30:20.000000Z",
            "end": "2026-11-24T09:30:40.000000Z",
            "actor_id": str(JUDGE),
            "reason": "pause: recess",
        }
    ]
    assert len(doc["events"]) == 4


def test_the_sealed_bytes_are_canonical_and_stable() -> None:
    video = track("video")
    rows = [segment(video, 0, 0, 10, (640, 360))]
    args = {
        "hearing_id": HEARING,
        "case_id": uuid.uuid4(),
        "sealed_at": T0,
        "tracks": [video],
        "segments": rows,
        "events": [event(1, 0, "started")],
    }
    data = manifest_bytes(build_manifest(**args))  # type: ignore[arg-type]
    assert data == manifest_bytes(build_manifest(**args))  # type: ignore[arg-type]
    assert parse_canonical(data) == json.loads(data)
    assert "审判员 王芳".encode() in data  # UTF-8, not escaped


def test_a_segment_of_an_unlisted_track_is_refused() -> None:
    stray = segment(track("video"), 0, 0, 1, (2, 2))
    with pytest.raises(ValueError, match="no listed track"):
        build_manifest(
            hearing_id=HEARING, case_id=None, sealed_at=T0, tracks=[], segments=[stray], events=[]
        )


def test_interruptions_from_failures_and_crash_gaps() -> None:
    events = [
        event(1, 0, "started"),
        event(2, 5, "failed", "disk full"),
        event(3, 6, "stopped", "pause: recording_failed"),  # the pause that followed
        event(4, 30, "started", "resume"),
        event(5, 40, "gap", "process restart", until_s=55),
        event(6, 55, "started", "restore"),
        event(7, 60, "failed", "no video from 张伟"),
    ]
    found = [(i.kind, i.start, i.end, i.reason) for i in interruptions(events)]
    assert found == [
        ("failed", T0 + timedelta(seconds=5), T0 + timedelta(seconds=30), "disk full"),
        ("gap", T0 + timedelta(seconds=40), T0 + timedelta(seconds=55), "process restart"),
        ("failed", T0 + timedelta(seconds=60), None, "no video from 张伟"),
    ]
