"""The recorder on the real media node: aiortc publishers through the real server, segments
written, committed with their ledger entries, and decoded back with PyAV."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import av
import pytest

from tests.integration.media_support import Node, media_node
from yunting.infra.db import Database
from yunting.infra.ledger import repository as ledger_repo
from yunting.infra.storage import LocalBlobStore
from yunting.recording import repository as repo
from yunting.recording.recorder import (
    LEDGER_KIND_SEGMENT,
    HearingRecorder,
    RecordedSegment,
    RecordingState,
    Who,
)

pytestmark = pytest.mark.usefixtures("database")


@pytest.fixture
async def node(database: Database, tmp_path: Path) -> AsyncIterator[Node]:
    async with media_node(database, tmp_path) as served:
        yield served


def recorder_for(
    node: Node, tmp_path: Path, recorded: list[RecordedSegment], **kwargs: object
) -> HearingRecorder:
    async def describe(participant_id: UUID) -> Who:
        names = {pid: name for name, pid in node.court.ids.items()}
        name = names.get(participant_id, "judge")
        return Who(display_name=name, role=name)

    async def on_segment(segment: RecordedSegment) -> None:
        recorded.append(segment)

    return HearingRecorder(
        hearing_id=node.court.hearing_id,
        case_id=None,
        media=node.media,
        db=node.resources.db,
        store=LocalBlobStore(tmp_path / "blobs"),
        spool=tmp_path / "spool",
        clock=node.resources.clock,
        describe=describe,
        on_segment=on_segment,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_every_published_track_is_recorded_in_verified_segments(
    node: Node, tmp_path: Path
) -> None:
    judge, judge_media = await node.enter("judge")
    plaintiff, plaintiff_media = await node.enter("plaintiff", node.court.tokens["plaintiff"])
    await node.admit(judge, "plaintiff")
    recorded: list[RecordedSegment] = []
    recorder = recorder_for(node, tmp_path, recorded, segment_s=1.0)
    await recorder.start(actor_id=None, reason="hearing started")
    for client in (judge_media, plaintiff_media):
        await client.start()
    pid = str(node.court.ids["plaintiff"])
    assert await judge_media.grows(pid, "video")
    await asyncio.sleep(3.0)
    await recorder.stop(actor_id=None, reason="hearing paused")
    assert recorder.state is RecordingState.IDLE
    store = LocalBlobStore(tmp_path / "blobs")

    async with node.resources.db.read() as conn:
        tracks = await repo.list_tracks(conn, node.court.hearing_id)
        segments = await repo.list_segments(conn, node.court.hearing_id)
        events = await repo.list_events(conn, node.court.hearing_id)
        entries = {s.id: await ledger_repo.get_entry(conn, s.ledger_index) for s in segments}
    # Two publishers, audio and video each.
    assert {(t.participant_id, t.kind) for t in tracks} == {
        (node.court.ids["plaintiff"], "audio"),
        (node.court.ids["plaintiff"], "video"),
        (UUID(judge.frames[0]["participant_id"]), "audio"),
        (UUID(judge.frames[0]["participant_id"]), "video"),
    }
    assert [e.event for e in events] == ["started", "stopped"]
    assert events[1].reason == "hearing paused"
    # Rotation at about a second (video: at the keyframe the recorder asked for).
    per_track: dict[UUID, list[repo.SegmentRow]] = {}
    for segment in segments:
        per_track.setdefault(segment.track_id, []).append(segment)
    kinds = {t.id: t.kind for t in tracks}
    for track_id, rows in per_track.items():
        assert [r.seq for r in sorted(rows, key=lambda r: r.seq)] == list(range(len(rows)))
        assert len(rows) >= 2, (kinds[track_id], rows)
    assert len(recorded) == len(segments)

    for segment in segments:
        # The ledger holds the hash of exactly the stored bytes.
        entry = entries[segment.id]
        assert entry is not None
        assert entry.kind == LEDGER_KIND_SEGMENT
        assert entry.subject_id == str(segment.id)
        path = await store.local_path(segment.storage_key)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == segment.sha256
        assert entry.content_sha256 == segment.sha256
        assert segment.size == path.stat().st_size
        assert segment.ended_at > segment.started_at
        # Each segment decodes on its own, from its first frame.
        with av.open(str(path)) as container:
            stream = container.streams[0]
            decoded = list(container.decode(stream))
        kind = kinds[segment.track_id]
        if kind == "video":
            assert len(decoded) == segment.frames
            assert (decoded[0].width, decoded[0].height) == (segment.width, segment.height)
        else:
            assert sum(f.samples for f in decoded) >= segment.frames * 960 * 0.95
    # Nothing half-written is left behind.
    assert not [p for p in (tmp_path / "spool").rglob("*") if p.is_file()]

    await recorder.close()
    for client in (judge_media, plaintiff_media):
        await client.close()
    for peer in (judge, plaintiff):
        await peer.close()


async def test_a_recorder_that_died_leaves_a_gap_in_the_record(node: Node, tmp_path: Path) -> None:
    recorded: list[RecordedSegment] = []
    first = recorder_for(node, tmp_path, recorded)
    await first.start(actor_id=None, reason="hearing started")
    # The process dies here: no stop, an unfinished segment in the spool.
    first._untap()
    spool = tmp_path / "spool" / str(node.court.hearing_id)
    spool.mkdir(parents=True, exist_ok=True)
    (spool / "half.webm.part").write_bytes(b"\x1a\x45\xdf\xa3 partial")
    second = recorder_for(node, tmp_path, recorded)
    await second.start(actor_id=None, reason="hearing resumed after restart")
    await second.close()
    async with node.resources.db.read() as conn:
        events = await repo.list_events(conn, node.court.hearing_id)
    assert [e.event for e in events] == ["started", "gap", "started", "stopped"]
    gap = events[1]
    assert gap.until is not None
    assert gap.until >= gap.at
    assert not spool.exists() or not list(spool.iterdir())


async def test_a_store_that_cannot_keep_segments_fails_the_recording_loudly(
    node: Node, tmp_path: Path
) -> None:
    judge, judge_media = await node.enter("judge")
    failures: list[str] = []

    async def on_failure(detail: str) -> None:
        failures.append(detail)

    recorded: list[RecordedSegment] = []
    recorder = recorder_for(node, tmp_path, recorded, segment_s=0.5, on_failure=on_failure)
    # The store's directory is a file: nothing can be kept (as with a full or broken disk).
    recorder.store = LocalBlobStore(tmp_path / "blocked")
    (tmp_path / "blocked").write_bytes(b"")
    await recorder.start(actor_id=None, reason="hearing started")
    await judge_media.start()
    for _ in range(100):
        if failures:
            break
        await asyncio.sleep(0.1)
    assert recorder.state is RecordingState.FAILED
    assert "cannot" in failures[0]
    async with node.resources.db.read() as conn:
        events = await repo.list_events(conn, node.court.hearing_id)
        segments = await repo.list_segments(conn, node.court.hearing_id)
    assert [e.event for e in events] == ["started", "failed"]
    assert segments == []  # nothing is entered that is not kept
    assert recorded == []
    await recorder.close()
    await judge_media.close()
    await judge.close()


async def test_a_stalled_disk_is_a_failure_before_memory_fills(node: Node, tmp_path: Path) -> None:
    failures: list[str] = []

    async def on_failure(detail: str) -> None:
        failures.append(detail)

    recorder = recorder_for(node, tmp_path, [], on_failure=on_failure)
    await recorder.start(actor_id=None, reason="hearing started")
    # The writer thread is stuck in a write that does not return (a disk that hangs).
    stuck = threading.Event()
    recorder._work.put(stuck.wait)
    await recorder.check({}, stall_s=0.3)  # sends the probe, queued behind the stuck write
    assert recorder.state is RecordingState.RECORDING
    await asyncio.sleep(0.4)
    await recorder.check({}, stall_s=0.3)
    assert recorder.state is RecordingState.FAILED
    assert failures
    assert "behind" in failures[0]
    stuck.set()
    await recorder.close()
    async with node.resources.db.read() as conn:
        events = await repo.list_events(conn, node.court.hearing_id)
    assert [e.event for e in events] == ["started", "failed"]


async def test_a_writer_that_keeps_up_answers_the_probe(node: Node, tmp_path: Path) -> None:
    recorder = recorder_for(node, tmp_path, [])
    await recorder.start(actor_id=None, reason="hearing started")
    for _ in range(5):
        await recorder.check({}, stall_s=0.3)
        await asyncio.sleep(0.1)
    assert recorder.state is RecordingState.RECORDING
    await recorder.close()
