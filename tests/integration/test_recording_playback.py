"""After close: the composite job renders (progress in the database, a file that decodes, run
again after a crash), the playback API and files for staff only, and the verification that
catches a file altered or removed after the fact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from tests.integration.media_support import PASSWORD, Node, media_node
from tests.integration.test_recording_service import (
    act,
    hearing_with_media,
    recording_frames,
    until,
)
from yunting.infra.db import Database
from yunting.infra.ledger import build_ledger
from yunting.recording import repository as repo
from yunting.recording.playback import verify_record
from yunting.recording.renders import CompositeRenderer

pytestmark = pytest.mark.usefixtures("database")


@pytest.fixture
async def node(database: Database, tmp_path: Path) -> AsyncIterator[Node]:
    async with media_node(
        database,
        tmp_path,
        recording_segment_s=1.0,
        recording_composite_width=320,
        recording_composite_height=180,
        recording_composite_fps=10,
    ) as served:
        yield served


async def recorded_hearing(node: Node) -> None:
    judge, _, clients = await hearing_with_media(node)
    await act(judge, "start")
    await until(lambda: recording_frames(judge)[-1]["segments"] >= 8)
    await act(judge, "close", "done")
    for client in clients:
        await client.close()


async def composite_of(node: Node, *, status: str, within: float = 60) -> repo.CompositeRow:
    seen: list[int] = []
    for _ in range(int(within / 0.1)):
        async with node.resources.db.read() as conn:
            row = await repo.get_composite(conn, node.court.hearing_id)
        if row is not None:
            seen.append(row.progress)
            if row.status == status:
                return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"no composite {status} within {within}s: {row}, progress {seen}")


async def staff_headers(node: Node) -> dict[str, str]:
    r = await node.http.post("/api/auth/sign-in", json={"username": "clerk", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['session_token']}"}


async def test_the_composite_is_rendered_after_close_and_the_record_verifies(
    node: Node, tmp_path: Path
) -> None:
    await recorded_hearing(node)
    done = await composite_of(node, status="done")
    assert done.progress == 1000
    assert done.attempts == 1
    store = node.resources.store
    assert done.storage_key is not None
    path = await store.local_path(done.storage_key)
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (320, 180)
        frames = sum(1 for _ in container.decode(video))
    assert done.duration_ms is not None
    assert abs(frames - done.duration_ms / 1000 * 10) <= 2

    # The API and the files: staff only; a key the record does not list is not served.
    hid = node.court.hearing_id
    async with httpx.AsyncClient(base_url=node.http.base_url, timeout=10) as anonymous:
        r = await anonymous.get(f"/api/hearings/{hid}/recording")
        assert r.status_code == 401
    headers = await staff_headers(node)
    r = await node.http.get(f"/api/hearings/{hid}/recording", headers=headers)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    assert data["sealed"]
    assert data["composite"]["status"] == "done"
    assert data["live"]["state"] == "idle"
    segment = data["tracks"][0]["segments"][0]
    r = await node.http.get(segment["url"], headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "video/webm"
    assert len(r.content) == segment["size"]
    # Players seek with range requests.
    r = await node.http.get(segment["url"], headers={**headers, "Range": "bytes=0-99"})
    assert r.status_code == 206
    assert len(r.content) == 100
    async with httpx.AsyncClient(base_url=node.http.base_url, timeout=10) as anonymous:
        r = await anonymous.get(segment["url"])
        # A page path: the browser is sent to sign in; nothing of the file is served.
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login")
    for key in ("recordings/../../yunting.sqlite3", f"recordings/{hid}/nope.webm"):
        r = await node.http.get(f"/hearings/{hid}/recording/files/{key}", headers=headers)
        assert r.status_code == 404, key
    r = await node.http.get(f"/api/hearings/{hid}/recording/verification", headers=headers)
    assert r.status_code == 200
    assert r.json()["ok"] is True

    # Tampering after the fact shows up, segment by segment.
    ledger = build_ledger(node.resources.settings, node.resources.db, node.resources.clock)
    verification = await verify_record(
        db=node.resources.db, store=store, ledger=ledger, hearing_id=hid
    )
    assert verification.ok
    async with node.resources.db.read() as conn:
        segments = await repo.list_segments(conn, hid)
    altered, removed = segments[0], segments[1]
    altered_path = await store.local_path(altered.storage_key)
    data_bytes = bytearray(altered_path.read_bytes())
    data_bytes[-1] ^= 0xFF
    altered_path.write_bytes(bytes(data_bytes))
    (await store.local_path(removed.storage_key)).unlink()
    verification = await verify_record(
        db=node.resources.db, store=store, ledger=ledger, hearing_id=hid
    )
    assert not verification.ok
    problems = {c.subject_id: c.problem for c in verification.segments if not c.ok}
    assert problems == {str(altered.id): "hash_mismatch", str(removed.id): "missing"}
    assert verification.manifest is not None
    assert verification.manifest.ok


async def test_a_render_interrupted_by_a_crash_runs_again_and_a_broken_record_fails_clearly(
    node: Node, tmp_path: Path
) -> None:
    await recorded_hearing(node)
    await composite_of(node, status="done")
    hid = node.court.hearing_id
    db = node.resources.db
    # As a crash mid-render leaves it: the row says "rendering".
    async with db.transaction() as conn:
        await repo.update_composite(conn, hid, status="rendering", progress=400, storage_key=None)
    renderer = CompositeRenderer(
        db=db,
        clock=node.resources.clock,
        store=node.resources.store,
        spool=tmp_path / "spool2",
        width=320,
        height=180,
        fps=10,
    )
    await renderer.start()
    try:
        again = await composite_of(node, status="done")
        assert again.attempts == 2
        assert again.storage_key is not None
        # A segment file gone: the job fails and says which, the record itself is untouched.
        async with db.read() as conn:
            segment = (await repo.list_segments(conn, hid))[0]
        (await node.resources.store.local_path(segment.storage_key)).unlink()
        async with db.transaction() as conn:
            await repo.update_composite(conn, hid, status="queued", progress=0)
        await renderer.stop()
        renderer = CompositeRenderer(
            db=db,
            clock=node.resources.clock,
            store=node.resources.store,
            spool=tmp_path / "spool2",
            width=320,
            height=180,
            fps=10,
        )
        await renderer.start()
        failed = await composite_of(node, status="failed")
        assert segment.storage_key in failed.error
    finally:
        await renderer.stop()
