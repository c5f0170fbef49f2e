"""The recorder of one hearing: taps the media node, cuts every published track into WebM
segments, and enters each closed segment into the database and the evidence ledger.

Threads and order: the tap runs on the event loop and only feeds the sans-I/O segmenters
(cheap) and queues file work. One writer thread per hearing does all muxing, fsyncs and
hashing, so a slow disk never stalls the media node. Closed segments come back to the loop and
are committed one at a time, in order: the file moved into the blob store, then the segment row
and its ledger entry in one transaction. Only after that does anyone hear of the segment
(``on_segment``): the record is on disk and in the ledger before it is shown as recorded.

A crash loses at most the open segments (``.part`` files in the spool, removed on the next
start); the next ``start`` records the gap between the last committed segment and now.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from uuid import UUID

from yunting.infra.clock import Clock
from yunting.infra.db import Database
from yunting.infra.ledger import service as ledger
from yunting.infra.storage import BlobStore, StorageError
from yunting.media.forwarding import EncodedFrame
from yunting.media.node import TrackInfo
from yunting.recording import repository as repo
from yunting.recording.segmenter import (
    CloseSegment,
    Decision,
    OpenSegment,
    RequestKeyframe,
    TrackSegmenter,
    WriteFrame,
)
from yunting.recording.webm import SegmentFile, SegmentWriteError, WebmSegmentWriter

logger = logging.getLogger(__name__)

LEDGER_KIND_SEGMENT = "recording.segment"


class RecordingEvent(StrEnum):
    STARTED = "started"
    STOPPED = "stopped"  # paused, suspended, closed: reason says which and who
    FAILED = "failed"  # the recorder could not go on; reason is what went wrong
    GAP = "gap"  # nothing recorded from ``at`` to ``until`` (the recorder was down)


class RecordingState(StrEnum):
    IDLE = "idle"
    RECORDING = "recording"
    FAILED = "failed"


class MediaTap(Protocol):
    """What the recorder needs of the media node."""

    def add_tap(
        self, hearing_id: UUID, tap: Callable[[TrackInfo, EncodedFrame], None]
    ) -> Callable[[], None]: ...

    def request_keyframe(self, hearing_id: UUID, participant_id: UUID) -> None: ...


@dataclass(frozen=True, slots=True)
class Who:
    display_name: str
    role: str


@dataclass(frozen=True, slots=True)
class RecordedSegment:
    """A committed segment: on disk, in the database and in the ledger."""

    row: repo.SegmentRow
    participant_id: UUID
    kind: str


@dataclass(slots=True)
class _Track:
    info: TrackInfo
    segmenter: TrackSegmenter
    track_id: UUID | None = None
    # Per open segment index: (storage key, start on the wall clock, synced, size).
    open: dict[int, tuple[str, datetime, bool, tuple[int, int] | None]] = field(
        default_factory=dict
    )


@dataclass(frozen=True, slots=True)
class _Flush:
    done: asyncio.Event


@dataclass(frozen=True, slots=True)
class _Failure:
    detail: str


@dataclass(frozen=True, slots=True)
class _Closed:
    track: _Track
    close: CloseSegment
    key: str
    started_at: datetime
    synced: bool
    size: tuple[int, int] | None
    file: SegmentFile | None
    error: str | None


class HearingRecorder:
    def __init__(
        self,
        *,
        hearing_id: UUID,
        case_id: UUID | None,
        media: MediaTap,
        db: Database,
        store: BlobStore,
        spool: Path,
        clock: Clock,
        describe: Callable[[UUID], Awaitable[Who]],
        on_segment: Callable[[RecordedSegment], Awaitable[None]] | None = None,
        on_failure: Callable[[str], Awaitable[None]] | None = None,
        segment_s: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hearing_id = hearing_id
        self.case_id = case_id
        self.media = media
        self.db = db
        self.store = store
        self.spool = spool / str(hearing_id)
        self.clock = clock
        self.describe = describe
        self.on_segment = on_segment
        self.on_failure = on_failure
        self.segment_s = segment_s
        self.monotonic = monotonic
        self.state = RecordingState.IDLE
        self._tracks: dict[tuple[UUID, str], _Track] = {}
        self._remove_tap: Callable[[], None] | None = None
        self._work: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._writers: dict[str, WebmSegmentWriter] = {}  # by storage key; writer thread only
        self._commits: asyncio.Queue[_Closed | _Flush | _Failure | None] = asyncio.Queue()
        self._committer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_mono = 0.0
        self._last_frame: dict[tuple[UUID, str], float] = {}  # monotonic, per track
        # The watchdog's probe through the writer thread: when it was queued, until it is run.
        self._probe_sent: float | None = None

    # Control ------------------------------------------------------------------------------------

    async def start(self, *, actor_id: UUID | None, reason: str) -> None:
        if self.state is RecordingState.RECORDING:
            return
        self._loop = asyncio.get_running_loop()
        await self._record_gap_after_crash()
        await asyncio.to_thread(self._clean_spool)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._writer_loop, name=f"recorder-{self.hearing_id}", daemon=True
            )
            self._thread.start()
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_loop())
        await self._event(RecordingEvent.STARTED, actor_id, reason)
        self.state = RecordingState.RECORDING
        self._started_mono = self.monotonic()
        self._probe_sent = None
        self._remove_tap = self.media.add_tap(self.hearing_id, self._on_frame)
        logger.info("recording started", extra={"hearing_id": str(self.hearing_id)})

    async def stop(self, *, actor_id: UUID | None, reason: str) -> None:
        """Stop tapping, close and commit every open segment, then log who stopped it."""
        if self.state is not RecordingState.RECORDING:
            return
        self._untap()
        for track in self._tracks.values():
            self._carry_out(track, track.segmenter.stop())
        await self._drain()
        if self.state is RecordingState.RECORDING:
            self.state = RecordingState.IDLE
            await self._event(RecordingEvent.STOPPED, actor_id, reason)
        logger.info("recording stopped", extra={"hearing_id": str(self.hearing_id)})

    async def close(self) -> None:
        """Stop (as the system) and end the writer thread and committer."""
        await self.stop(actor_id=None, reason="shutdown")
        if self._thread is not None:
            self._work.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._committer is not None:
            await self._commits.put(None)
            await self._committer
            self._committer = None

    async def check(self, live: Mapping[tuple[UUID, str], float], *, stall_s: float) -> None:
        """The watchdog: ``live`` are the tracks whose media should be arriving (publisher
        connected, track forwarded; monotonic time since when). One that has sent nothing for
        ``stall_s`` means the record is silently missing a participant: that is a failure."""
        if self.state is not RecordingState.RECORDING:
            return
        now = self.monotonic()
        # A disk that stalls (or writes slower than media arrives) leaves frames queued in
        # memory with nothing on disk: a probe queued behind them tells how far behind it is.
        if self._probe_sent is not None and now - self._probe_sent >= stall_s:
            await self._fail(
                f"writing the recording is {int(now - self._probe_sent)} s behind: the disk "
                "is stalled or too slow"
            )
            return
        if self._probe_sent is None:
            sent = self._probe_sent = now
            self._work.put(functools.partial(self._probe_back, sent))
        for key, since in live.items():
            heard = max(since, self._started_mono, self._last_frame.get(key, since))
            if now - heard < stall_s:
                continue
            participant_id, kind = key
            who = await self.describe(participant_id)
            await self._fail(
                f"no {kind} from {who.display_name} ({who.role}) for {int(now - heard)} s "
                "although the connection is up"
            )
            return

    # The tap (event loop) -----------------------------------------------------------------------

    def _on_frame(self, info: TrackInfo, frame: EncodedFrame) -> None:
        if self.state is not RecordingState.RECORDING:
            return
        key = (info.participant_id, info.kind)
        self._last_frame[key] = self.monotonic()
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track(
                info=info,
                segmenter=TrackSegmenter(
                    kind=info.kind, clock_rate=frame.clock_rate, segment_s=self.segment_s
                ),
            )
        self._carry_out(track, track.segmenter.feed(frame, self.monotonic()))

    def _carry_out(self, track: _Track, decisions: list[Decision]) -> None:
        for decision in decisions:
            if isinstance(decision, WriteFrame):
                key = track.open[decision.index][0]
                self._work.put(functools.partial(self._write, key, decision))
            elif isinstance(decision, OpenSegment):
                self._open(track, decision)
            elif isinstance(decision, CloseSegment):
                self._close(track, decision)
            elif isinstance(decision, RequestKeyframe):
                self.media.request_keyframe(self.hearing_id, track.info.participant_id)

    def _wall(self, captured_at: float | None, received_at: float) -> tuple[datetime, bool]:
        """A frame's time on the wall clock: the sender report's mapping when there is one
        (tracks of one publisher then line up), else its arrival, mapped from our monotonic
        clock."""
        if captured_at is not None:
            return datetime.fromtimestamp(captured_at, UTC), True
        return self.clock.now() - timedelta(seconds=self.monotonic() - received_at), False

    def _open(self, track: _Track, decision: OpenSegment) -> None:
        info = track.info
        key = f"recordings/{self.hearing_id}/{info.participant_id}-{info.kind}/{uuid.uuid4()}.webm"
        started_at, synced = self._wall(decision.captured_at, decision.received_at)
        size = (
            (decision.width, decision.height)
            if decision.width is not None and decision.height is not None
            else None
        )
        track.open[decision.index] = (key, started_at, synced, size)
        path = self.spool / key.replace("/", "_")
        kind, rate = info.kind, track.segmenter.clock_rate

        def open_writer() -> None:
            try:
                self._writers[key] = WebmSegmentWriter(
                    path,
                    kind=kind,
                    clock_rate=rate,
                    width=size[0] if size else 0,
                    height=size[1] if size else 0,
                )
            except SegmentWriteError as e:
                self._post_failure(str(e))

        self._work.put(open_writer)

    def _close(self, track: _Track, decision: CloseSegment) -> None:
        key, started_at, synced, size = track.open.pop(decision.index)

        def close_writer() -> None:
            writer = self._writers.pop(key, None)
            file: SegmentFile | None = None
            error: str | None = None
            if writer is None:
                error = "the segment was never opened"
            else:
                try:
                    file = writer.close()
                except SegmentWriteError as e:
                    error = str(e)
            closed = _Closed(track, decision, key, started_at, synced, size, file, error)
            self._post(closed)

        self._work.put(close_writer)

    # The writer thread --------------------------------------------------------------------------

    def _probe_back(self, sent: float) -> None:
        self._running_loop().call_soon_threadsafe(self._probe_answered, sent)

    def _probe_answered(self, sent: float) -> None:
        if self._probe_sent == sent:
            self._probe_sent = None

    def _write(self, key: str, frame: WriteFrame) -> None:
        writer = self._writers.get(key)
        if writer is not None:  # else its start failed, and that failure was reported
            writer.write(pts=frame.pts, data=frame.data, keyframe=frame.keyframe)

    def _writer_loop(self) -> None:
        while (job := self._work.get()) is not None:
            try:
                job()
            except SegmentWriteError as e:
                self._post_failure(str(e))
            except Exception as e:  # a bug must not kill the thread silently
                logger.exception("recorder writer failed")
                self._post_failure(f"recorder error: {e}")
        self._abort_writers()

    def _abort_writers(self) -> None:
        for writer in self._writers.values():
            writer.abort()
        self._writers.clear()

    def _post(self, item: _Closed | _Flush) -> None:
        self._running_loop().call_soon_threadsafe(self._commits.put_nowait, item)

    def _post_failure(self, detail: str) -> None:
        # Through the commit queue, so a failure is handled after the segments before it.
        self._running_loop().call_soon_threadsafe(self._commits.put_nowait, _Failure(detail))

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the recorder was never started")
        return self._loop

    # Committing (event loop, one at a time) -----------------------------------------------------

    async def _drain(self) -> None:
        """Wait until every job queued so far is written and committed."""
        flush = _Flush(asyncio.Event())
        self._work.put(functools.partial(self._post, flush))
        await flush.done.wait()

    async def _commit_loop(self) -> None:
        while (item := await self._commits.get()) is not None:
            if isinstance(item, _Flush):
                item.done.set()
            elif isinstance(item, _Failure):
                await self._fail(item.detail)
            else:
                try:
                    await self._commit(item)
                except (StorageError, OSError) as e:
                    await self._fail(f"cannot keep segment {item.key}: {e}")
                except Exception as e:
                    logger.exception("recording commit failed")
                    await self._fail(f"cannot record segment {item.key}: {e}")

    async def _commit(self, closed: _Closed) -> None:
        if closed.error is not None or closed.file is None:
            await self._fail(closed.error or "segment lost")
            return
        track = closed.track
        info = track.info
        blob = await self.store.put_file(closed.key, closed.file.path, sha256=closed.file.sha256)
        close = closed.close
        duration = timedelta(seconds=close.duration / track.segmenter.clock_rate)
        duration_ms = round(duration.total_seconds() * 1000)
        started_at, synced = closed.started_at, closed.synced
        if not synced and close.captured_start is not None:
            # Opened before the publisher's first sender report, closed after it: placed by
            # the mapping, like the segments after it, not by when its first frame arrived.
            started_at, synced = datetime.fromtimestamp(close.captured_start, UTC), True
        if close.captured_end is not None and synced:
            ended_at = datetime.fromtimestamp(close.captured_end, UTC)
        else:
            ended_at = started_at + duration
        if track.track_id is None:
            track.track_id = await self._track_id(info)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            seq = await repo.next_seq(conn, track.track_id)
            segment_id = uuid.uuid4()
            event = {
                "hearing_id": str(self.hearing_id),
                "participant_id": str(info.participant_id),
                "kind": info.kind,
                "codec": info.codec,
                "seq": seq,
                "storage_key": closed.key,
                "started_at": started_at.isoformat(),
                "ended_at": ended_at.isoformat(),
                "duration_ms": duration_ms,
                "frames": close.frames,
                "size": blob.size,
            }
            index = await ledger.append(
                conn,
                kind=LEDGER_KIND_SEGMENT,
                subject_id=segment_id,
                content_sha256=blob.sha256,
                event=event,
                at=now,
                case_id=self.case_id,
            )
            row = repo.SegmentRow(
                id=segment_id,
                track_id=track.track_id,
                hearing_id=self.hearing_id,
                seq=seq,
                storage_key=closed.key,
                started_at=started_at,
                ended_at=ended_at,
                duration_ms=duration_ms,
                frames=close.frames,
                size=blob.size,
                sha256=blob.sha256,
                width=closed.size[0] if closed.size else None,
                height=closed.size[1] if closed.size else None,
                close_reason=close.reason.value,
                clock_synced=synced,
                ledger_index=index,
                created_at=now,
            )
            await repo.insert_segment(conn, row)
        if self.on_segment is not None:
            await self.on_segment(RecordedSegment(row, info.participant_id, info.kind))

    async def _track_id(self, info: TrackInfo) -> UUID:
        """The track's row, made on its first segment. Who the participant is comes first,
        outside the transaction: ``describe`` reads the database too, and on SQLite a second
        connection inside our write transaction would wait for it forever."""
        async with self.db.read() as conn:
            existing = await repo.get_track(
                conn, hearing_id=self.hearing_id, participant_id=info.participant_id, kind=info.kind
            )
        if existing is not None:
            return existing.id
        who = await self.describe(info.participant_id)
        row = repo.TrackRow(
            id=uuid.uuid4(),
            hearing_id=self.hearing_id,
            participant_id=info.participant_id,
            display_name=who.display_name,
            role=who.role,
            kind=info.kind,
            codec=info.codec,
            created_at=self.clock.now(),
        )
        async with self.db.transaction() as conn:
            await repo.insert_track(conn, row)
        return row.id

    async def _fail(self, detail: str) -> None:
        if self.state is RecordingState.FAILED:
            return
        logger.error("recording failed: %s", detail, extra={"hearing_id": str(self.hearing_id)})
        self.state = RecordingState.FAILED
        self._untap()
        for track in self._tracks.values():
            track.segmenter.stop()
            track.open.clear()
        # Open segments are not evidence: their files go (the writer thread owns them).
        self._work.put(self._abort_writers)
        await self._event(RecordingEvent.FAILED, None, detail[:500])
        if self.on_failure is not None:
            await self.on_failure(detail)

    # Helpers ------------------------------------------------------------------------------------

    def _untap(self) -> None:
        if self._remove_tap is not None:
            self._remove_tap()
            self._remove_tap = None

    async def _event(self, event: RecordingEvent, actor_id: UUID | None, reason: str) -> None:
        async with self.db.transaction() as conn:
            await repo.insert_event(
                conn,
                hearing_id=self.hearing_id,
                at=self.clock.now(),
                event=event.value,
                actor_id=actor_id,
                reason=reason,
            )

    async def _record_gap_after_crash(self) -> None:
        """If the last recording event is a start with no stop or failure after it, the
        process died while recording: what is missing runs from the last committed segment's
        end (or that start) to now."""
        async with self.db.transaction() as conn:
            events = await repo.list_events(conn, self.hearing_id)
            if not events or events[-1].event != RecordingEvent.STARTED.value:
                return
            segments = await repo.list_segments(conn, self.hearing_id)
            since = max([events[-1].at, *(s.ended_at for s in segments)])
            await repo.insert_event(
                conn,
                hearing_id=self.hearing_id,
                at=since,
                event=RecordingEvent.GAP.value,
                actor_id=None,
                reason="the recorder stopped unexpectedly (process restart)",
                until=self.clock.now(),
            )

    def _clean_spool(self) -> None:
        """Unfinished segments of a previous process: never committed, never evidence."""
        if not self.spool.is_dir():
            return
        for leftover in self.spool.iterdir():
            with contextlib.suppress(OSError):
                leftover.unlink()
