"""The recording following a real hearing: real server (uvicorn), real websockets, aiortc
publishers through the media node. Start records, pause stops, resume records again, close
seals the manifest into the ledger; a failing recorder and a publisher whose media stops both
alert the judge and pause the hearing."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import av
import pytest

from tests.integration.media_support import Node, media_node
from tests.integration.signaling_support import Frame, Peer
from yunting.hearing import repository as hearing_repo
from yunting.infra.db import Database
from yunting.infra.ledger import repository as ledger_repo
from yunting.infra.ledger.model import parse_time
from yunting.infra.storage import LocalBlobStore, StorageError, StoredBlob
from yunting.recording import repository as repo
from yunting.recording.service import LEDGER_KIND_MANIFEST

pytestmark = pytest.mark.usefixtures("database")


@pytest.fixture
async def node(database: Database, tmp_path: Path) -> AsyncIterator[Node]:
    async with media_node(
        database, tmp_path, recording_segment_s=1.0, recording_stall_s=3.0
    ) as served:
        yield served


async def until(check: Callable[[], Any], within: float = 15.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within}s")


def recording_frames(peer: Peer) -> list[Frame]:
    return [f for f in peer.frames if f["type"] == "recording"]


async def act(judge: Peer, action: str, reason: str = "") -> Frame:
    await judge.send({"type": "hearing_action", "action": action, "reason": reason})
    return await judge.next("hearing_state", where=lambda f: f["action"] == action)


async def segments_of(node: Node) -> list[repo.SegmentRow]:
    async with node.resources.db.read() as conn:
        return await repo.list_segments(conn, node.court.hearing_id)


async def hearing_with_media(node: Node) -> tuple[Peer, Peer, list[Any]]:
    judge, judge_media = await node.enter("judge")
    plaintiff, plaintiff_media = await node.enter("plaintiff", node.court.tokens["plaintiff"])
    await node.admit(judge, "plaintiff")
    for client in (judge_media, plaintiff_media):
        await client.start()
    assert await judge_media.grows(node.court.ids["plaintiff"], "video")
    return judge, plaintiff, [judge_media, plaintiff_media]


async def test_the_recording_follows_the_hearing_and_is_sealed_at_close(node: Node) -> None:
    judge, plaintiff, clients = await hearing_with_media(node)
    # Before the start nothing is recorded; the judge sees "idle", the party nothing at all.
    assert [f["state"] for f in recording_frames(judge)] == ["idle"]
    assert recording_frames(plaintiff) == []
    assert await segments_of(node) == []

    await act(judge, "start")
    await until(lambda: any(f["state"] == "recording" for f in recording_frames(judge)))
    await until(lambda: recording_frames(judge)[-1]["segments"] >= 8)

    await act(judge, "pause", "recess")
    await until(lambda: recording_frames(judge)[-1]["state"] == "idle")
    count_at_pause = len(await segments_of(node))
    await asyncio.sleep(2.5)
    assert len(await segments_of(node)) == count_at_pause  # nothing while paused
    await act(judge, "resume")
    await until(lambda: recording_frames(judge)[-1]["state"] == "recording")
    await until(lambda: recording_frames(judge)[-1]["segments"] >= count_at_pause + 8)
    await act(judge, "close", "adjourned")
    assert recording_frames(plaintiff) == []

    db = node.resources.db

    async def manifest() -> repo.ManifestRow | None:
        async with db.read() as conn:
            return await repo.get_manifest(conn, node.court.hearing_id)

    sealed: repo.ManifestRow | None = None
    for _ in range(200):
        if (sealed := await manifest()) is not None:
            break
        await asyncio.sleep(0.05)
    assert sealed is not None
    segments = await segments_of(node)
    async with db.read() as conn:
        events = await repo.list_events(conn, node.court.hearing_id)
        entry = await ledger_repo.get_entry(conn, sealed.ledger_index)
    assert [e.event for e in events] == ["started", "stopped", "started", "stopped"]
    assert events[1].reason == "pause: recess"
    assert events[1].actor_id == UUID(judge.frames[0]["participant_id"])
    assert events[3].reason == "close: adjourned"
    # Nothing recorded between the pause and the resume. Segment times are capture times (the
    # publishers' sender reports): the first frame after the resume was captured a little
    # before it reached the recorder, hence the allowance.
    latency = timedelta(milliseconds=500)
    paused_at, resumed_at = events[1].at, events[2].at
    for segment in segments:
        assert not (paused_at + latency < segment.started_at < resumed_at - latency), segment
        assert not (segment.started_at < paused_at < resumed_at < segment.ended_at), segment

    # The manifest: stored, hashed into the ledger, listing every segment.
    assert entry is not None
    assert entry.kind == LEDGER_KIND_MANIFEST
    store = node.resources.store
    path = await store.local_path(sealed.storage_key)
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == sealed.sha256 == entry.content_sha256
    document = json.loads(data)
    listed = {s["storage_key"] for t in document["tracks"] for s in t["segments"]}
    assert listed == {s.storage_key for s in segments}
    assert document["segment_count"] == len(segments)
    (pause,) = document["interruptions"]
    assert (pause["kind"], pause["reason"]) == ("stopped", "pause: recess")
    assert parse_time(pause["start"]) == events[1].at
    assert parse_time(pause["end"]) == events[2].at
    # Every segment decodes on its own.
    for segment in segments:
        with av.open(str(await store.local_path(segment.storage_key))) as container:
            assert sum(1 for _ in container.decode(container.streams[0])) > 0
    for client in clients:
        await client.close()


class FillingDisk(LocalBlobStore):
    """A blob store whose disk fills up and is later freed: while ``full``, ``put_file`` fails
    as the local store does when the file system has no space left (filling the machine's real
    disk is not something a test may do)."""

    full = False

    async def put_file(self, key: str, source: Path, *, sha256: str | None = None) -> StoredBlob:
        if self.full:
            raise StorageError(f"cannot store {key}: {OSError(errno.ENOSPC, 'No space left')}")
        return await super().put_file(key, source, sha256=sha256)


async def test_a_failed_recorder_alerts_the_judge_and_pauses_until_resumed(node: Node) -> None:
    judge, plaintiff, clients = await hearing_with_media(node)
    recording = node.resources.recording
    assert recording is not None
    disk = FillingDisk(node.resources.settings.data_dir / "blobs")
    disk.full = True
    recording.store = disk
    await act(judge, "start")
    error = await judge.next("error", where=lambda f: f["code"] == "recording_failed", within=15)
    assert "No space left" in error["message"]
    paused = await judge.next("hearing_state", where=lambda f: f["state"] == "paused")
    assert (paused["reason"], paused["by"]) == ("recording_failed", None)
    assert (await plaintiff.next("hearing_state", where=lambda f: f["state"] == "paused"))[
        "reason"
    ] == "recording_failed"
    assert recording_frames(judge)[-1]["state"] == "failed"
    assert not any(
        f["type"] == "error" and f["code"] == "recording_failed" for f in plaintiff.frames
    )
    async with node.resources.db.read() as conn:
        events = await repo.list_events(conn, node.court.hearing_id)
        hearing_events = await _hearing_events(node, conn)
    assert [e.event for e in events] == ["started", "failed"]
    assert "No space left" in events[1].reason
    assert ("hearing.pause", "system", "recording_failed") in hearing_events
    assert await segments_of(node) == []  # nothing half-kept

    # The disk is fixed; the judge resumes and the recording starts again.
    disk.full = False
    await act(judge, "resume", "disk replaced")
    await until(lambda: recording_frames(judge)[-1]["state"] == "recording")
    await until(lambda: recording_frames(judge)[-1]["segments"] >= 4)
    for client in clients:
        await client.close()


async def test_a_connected_publisher_whose_media_stops_is_a_recorder_failure(node: Node) -> None:
    judge, _, clients = await hearing_with_media(node)
    await act(judge, "start")
    await until(lambda: recording_frames(judge)[-1]["segments"] >= 4)
    # The plaintiff's camera stops sending while its connection stays up.
    plaintiff_media = clients[1]
    for transceiver in plaintiff_media.pc.getTransceivers():
        if transceiver.sender.track is not None and transceiver.sender.track.kind == "video":
            transceiver.sender.replaceTrack(None)
    error = await judge.next("error", where=lambda f: f["code"] == "recording_failed", within=15)
    assert "no video from plaintiff" in error["message"]
    assert "connection is up" in error["message"]
    paused = await judge.next("hearing_state", where=lambda f: f["state"] == "paused")
    assert paused["reason"] == "recording_failed"
    for client in clients:
        await client.close()


async def _hearing_events(node: Node, conn: Any) -> list[tuple[str, str, str]]:
    rows = await hearing_repo.list_audit_events(conn, node.court.hearing_id)
    return [(r.action, r.actor_kind, r.reason) for r in rows]
