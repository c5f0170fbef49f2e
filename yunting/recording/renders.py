"""The background job that renders a closed hearing's composite for playback.

The database is the job's truth: ``enqueue`` writes a ``queued`` row before the job is run, the
worker marks it ``rendering`` (with an attempt count) and ``done`` or ``failed``, and progress
is written as it goes (at most once a second) so the playback page can show it. On start, rows
left ``queued`` or ``rendering`` by a crash are run again. One render at a time: it is heavy
(decode every video track, encode the grid) and the media node shares the machine.

The composite is not the record; the segments are. A failed render leaves the record as it was
and says why on the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from pathlib import Path
from uuid import UUID

from yunting.infra.clock import Clock
from yunting.infra.db import Database
from yunting.infra.storage import BlobStore, StorageError
from yunting.recording import repository as repo
from yunting.recording.composite import (
    CompositeError,
    SegmentSource,
    TrackSource,
    render_composite,
)

logger = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0
MAX_ATTEMPTS = 3  # a render that crashed the process this often is not tried again


class CompositeStatus:
    QUEUED = "queued"
    RENDERING = "rendering"
    DONE = "done"
    FAILED = "failed"


class CompositeRenderer:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        store: BlobStore,
        spool: Path,
        width: int = 1280,
        height: int = 720,
        fps: int = 15,
    ) -> None:
        self.db = db
        self.clock = clock
        self.store = store
        self.spool = spool
        self.width = width
        self.height = height
        self.fps = fps
        self._queue: asyncio.Queue[UUID | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._stopping = threading.Event()

    async def start(self) -> None:
        async with self.db.read() as conn:
            unfinished = await repo.unfinished_composites(conn)
        for hearing_id in unfinished:
            self._queue.put_nowait(hearing_id)
        self._worker = asyncio.create_task(self._work(), name="composite-renderer")

    async def stop(self) -> None:
        self._stopping.set()  # a render in progress stops at its next progress report
        if self._worker is not None:
            self._queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def enqueue(self, hearing_id: UUID) -> None:
        """Ask for the hearing's composite (once: a done or queued job is not repeated)."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            existing = await repo.get_composite(conn, hearing_id)
            if existing is not None:
                return
            await repo.insert_composite(
                conn,
                repo.CompositeRow(
                    hearing_id=hearing_id,
                    status=CompositeStatus.QUEUED,
                    progress=0,
                    storage_key=None,
                    size=None,
                    sha256=None,
                    duration_ms=None,
                    error="",
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                ),
            )
        self._queue.put_nowait(hearing_id)

    # The worker ---------------------------------------------------------------------------------

    async def _work(self) -> None:
        while (hearing_id := await self._queue.get()) is not None:
            try:
                await self._render(hearing_id)
            except Exception:
                logger.exception("composite job failed", extra={"hearing_id": str(hearing_id)})

    async def _render(self, hearing_id: UUID) -> None:
        async with self.db.transaction() as conn:
            job = await repo.get_composite(conn, hearing_id)
            if job is None or job.status in (CompositeStatus.DONE, CompositeStatus.FAILED):
                return
            if job.attempts >= MAX_ATTEMPTS:
                await repo.update_composite(
                    conn,
                    hearing_id,
                    status=CompositeStatus.FAILED,
                    error=f"stopped after {job.attempts} interrupted attempts",
                    updated_at=self.clock.now(),
                )
                return
            await repo.update_composite(
                conn,
                hearing_id,
                status=CompositeStatus.RENDERING,
                progress=0,
                attempts=job.attempts + 1,
                updated_at=self.clock.now(),
            )
            tracks = await repo.list_tracks(conn, hearing_id)
            segments = await repo.list_segments(conn, hearing_id)
        if not segments:
            await self._finish(hearing_id, error="nothing was recorded")
            return
        sources: list[TrackSource] = []
        # The playback page lists tracks in this order too: the grid's cells follow it.
        for track in sorted(tracks, key=lambda t: (t.created_at, t.display_name, t.kind)):
            mine = sorted((s for s in segments if s.track_id == track.id), key=lambda s: s.seq)
            if not mine:
                continue
            parts = []
            for segment in mine:
                try:
                    path = await self.store.local_path(segment.storage_key)
                except StorageError as e:
                    await self._finish(hearing_id, error=f"segment {segment.storage_key}: {e}")
                    return
                parts.append(SegmentSource(path, segment.started_at, segment.ended_at))
            sources.append(
                TrackSource(
                    participant_id=track.participant_id,
                    label=f"{track.display_name} · {track.role}",
                    kind=track.kind,
                    segments=tuple(parts),
                )
            )
        started_at = min(s.started_at for s in segments)
        ended_at = max(s.ended_at for s in segments)
        output = self.spool / f"composite-{hearing_id}-{uuid.uuid4()}.webm"
        progress = _Progress(self._stopping)
        reporter = asyncio.create_task(self._report(hearing_id, progress))
        try:
            result = await asyncio.to_thread(
                render_composite,
                tracks=sources,
                output=output,
                started_at=started_at,
                ended_at=ended_at,
                width=self.width,
                height=self.height,
                fps=self.fps,
                progress=progress,
            )
        except _StoppingError:
            # The server is stopping: the row stays "rendering" and the next start runs it.
            logger.info("composite render interrupted", extra={"hearing_id": str(hearing_id)})
            return
        except CompositeError as e:
            await self._finish(hearing_id, error=str(e))
            return
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        key = f"recordings/{hearing_id}/composite-{uuid.uuid4()}.webm"
        try:
            blob = await self.store.put_file(key, result.path, sha256=result.sha256)
        except StorageError as e:
            await self._finish(hearing_id, error=f"cannot keep the composite: {e}")
            return
        async with self.db.transaction() as conn:
            await repo.update_composite(
                conn,
                hearing_id,
                status=CompositeStatus.DONE,
                progress=1000,
                storage_key=key,
                size=blob.size,
                sha256=blob.sha256,
                duration_ms=round(result.duration_s * 1000),
                error="",
                updated_at=self.clock.now(),
            )
        logger.info(
            "composite rendered: %.1f s, %d bytes",
            result.duration_s,
            blob.size,
            extra={"hearing_id": str(hearing_id)},
        )

    async def _finish(self, hearing_id: UUID, *, error: str) -> None:
        logger.warning("composite not rendered: %s", error, extra={"hearing_id": str(hearing_id)})
        async with self.db.transaction() as conn:
            await repo.update_composite(
                conn,
                hearing_id,
                status=CompositeStatus.FAILED,
                error=error[:2000],
                updated_at=self.clock.now(),
            )

    async def _report(self, hearing_id: UUID, progress: _Progress) -> None:
        written = -1
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            permille = min(999, int(progress.fraction * 1000))
            if permille != written:
                async with self.db.transaction() as conn:
                    await repo.update_composite(
                        conn, hearing_id, progress=permille, updated_at=self.clock.now()
                    )
                written = permille


class _StoppingError(Exception):
    pass


class _Progress:
    """Called by the render thread; read by the reporter on the loop (a float is atomic)."""

    def __init__(self, stopping: threading.Event) -> None:
        self.fraction = 0.0
        self._stopping = stopping

    def __call__(self, fraction: float) -> None:
        if self._stopping.is_set():
            raise _StoppingError
        self.fraction = fraction
