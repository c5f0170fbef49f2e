"""The recording beside the room's owner: one ``HearingRecorder`` per hearing that follows the
hearing's state (``RecordingPort`` for signaling), a watchdog, and the seal at close.

- In session: record. Paused, suspended, back to open: stop (who and why are in the events).
  Closed or cancelled: stop, then seal the manifest (stored, hashed into the ledger) and hand the
  hearing to the composite renderer (``on_sealed``).
- Judge and clerk see the status live (``RecordingLink.recording_changed``): state, since when,
  segments committed so far.
- A failure (write error, full disk, a connected publisher whose media stopped arriving for
  ``stall_s``) is reported to the room (``RecordingLink.recording_failed``), which alerts judge
  and clerk and pauses the hearing until the judge resumes; resuming starts a new recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from uuid import UUID

from yunting.hearing.model import FINAL_HEARING_STATES, HearingState
from yunting.hearing.service import HearingService
from yunting.infra.clock import Clock
from yunting.infra.db import Database
from yunting.infra.ledger import service as ledger
from yunting.infra.storage import BlobStore
from yunting.recording import repository as repo
from yunting.recording.manifest import build_manifest, manifest_bytes
from yunting.recording.recorder import (
    HearingRecorder,
    MediaTap,
    RecordedSegment,
    RecordingState,
    Who,
)
from yunting.signaling.messages import RecordingStatus

logger = logging.getLogger(__name__)

LEDGER_KIND_MANIFEST = "recording.manifest"
WATCHDOG_PERIOD_S = 1.0


class LiveMedia(MediaTap, Protocol):
    def live_tracks(self, hearing_id: UUID) -> dict[tuple[UUID, str], float]: ...


class RecordingLink(Protocol):
    """What the recording tells signaling (``RoomHost``)."""

    async def recording_changed(self, *, hearing_id: UUID, status: RecordingStatus) -> None: ...

    async def recording_failed(self, *, hearing_id: UUID, detail: str) -> None: ...


@dataclass(slots=True)
class _Hearing:
    recorder: HearingRecorder
    status: RecordingStatus


class RecordingService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        store: BlobStore,
        spool: Path,
        media: LiveMedia,
        hearings: HearingService,
        segment_s: float = 10.0,
        stall_s: float = 15.0,
        on_sealed: Callable[[UUID], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.store = store
        self.spool = spool
        self.media = media
        self.hearings = hearings
        self.segment_s = segment_s
        self.stall_s = stall_s
        self.on_sealed = on_sealed
        self._link: RecordingLink | None = None
        self._live: dict[UUID, _Hearing] = {}
        self._watchdog: asyncio.Task[None] | None = None

    def bind(self, link: RecordingLink) -> None:
        self._link = link

    async def start(self) -> None:
        self._watchdog = asyncio.create_task(self._watch(), name="recording-watchdog")

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        for hearing_id in list(self._live):
            await self.release(hearing_id=hearing_id, reason="shutdown")

    # RecordingPort ------------------------------------------------------------------------------

    def status(self, hearing_id: UUID) -> RecordingStatus:
        live = self._live.get(hearing_id)
        if live is not None:
            return live.status
        return RecordingStatus(
            state="idle", reason="", since=None, segments=0, last_segment_at=None
        )

    async def follow(
        self,
        *,
        hearing_id: UUID,
        state: HearingState,
        action: str,
        reason: str,
        actor_id: UUID | None,
    ) -> None:
        why = f"{action}: {reason}" if reason else action
        if state is HearingState.IN_SESSION:
            live = await self._hearing(hearing_id)
            await live.recorder.start(actor_id=actor_id, reason=why)
            await self._set(hearing_id, state="recording", reason=action)
            return
        live_or_none = self._live.get(hearing_id)
        if live_or_none is not None:
            await live_or_none.recorder.stop(actor_id=actor_id, reason=why)
            if live_or_none.recorder.state is not RecordingState.FAILED:
                await self._set(hearing_id, state="idle", reason=action)
        if state in FINAL_HEARING_STATES:
            gone = self._live.pop(hearing_id, None)
            if gone is not None:
                await gone.recorder.close()
            await self.seal(hearing_id=hearing_id)

    async def release(self, *, hearing_id: UUID, reason: str) -> None:
        live = self._live.pop(hearing_id, None)
        if live is None:
            return
        await live.recorder.stop(actor_id=None, reason=reason)
        await live.recorder.close()

    # The seal -----------------------------------------------------------------------------------

    async def seal(self, *, hearing_id: UUID) -> repo.ManifestRow:
        """Seal the hearing's record (once; a second call returns the first seal): the manifest
        stored beside the segments and its hash entered into the ledger, in one transaction
        with its row. Then the composite is asked for."""
        async with self.db.read() as conn:
            existing = await repo.get_manifest(conn, hearing_id)
            if existing is not None:
                return existing
            tracks = await repo.list_tracks(conn, hearing_id)
            segments = await repo.list_segments(conn, hearing_id)
            events = await repo.list_events(conn, hearing_id)
        hearing = await self.hearings.room_hearing(hearing_id=hearing_id)
        sealed_at = self.clock.now()
        document = build_manifest(
            hearing_id=hearing_id,
            case_id=hearing.case_id,
            sealed_at=sealed_at,
            tracks=tracks,
            segments=segments,
            events=events,
        )
        data = manifest_bytes(document)
        key = f"recordings/{hearing_id}/manifest-{uuid.uuid4()}.json"
        source = self.spool / f"manifest-{hearing_id}-{uuid.uuid4()}.json"
        await asyncio.to_thread(_write_durably, source, data)
        blob = await self.store.put_file(key, source)
        row = repo.ManifestRow(
            hearing_id=hearing_id,
            sealed_at=sealed_at,
            storage_key=key,
            sha256=blob.sha256,
            ledger_index=-1,
        )
        async with self.db.transaction() as conn:
            index = await ledger.append(
                conn,
                kind=LEDGER_KIND_MANIFEST,
                subject_id=hearing_id,
                content_sha256=blob.sha256,
                event={
                    "hearing_id": str(hearing_id),
                    "storage_key": key,
                    "size": blob.size,
                    "tracks": len(tracks),
                    "segments": len(segments),
                    "started_at": document["started_at"],
                    "ended_at": document["ended_at"],
                },
                at=sealed_at,
                case_id=hearing.case_id,
            )
            row = repo.ManifestRow(
                hearing_id=row.hearing_id,
                sealed_at=row.sealed_at,
                storage_key=row.storage_key,
                sha256=row.sha256,
                ledger_index=index,
            )
            await repo.insert_manifest(conn, row)
        logger.info(
            "record sealed: %d tracks, %d segments",
            len(tracks),
            len(segments),
            extra={"hearing_id": str(hearing_id)},
        )
        if self.on_sealed is not None and segments:  # nothing recorded: nothing to render
            await self.on_sealed(hearing_id)
        return row

    # Internals ----------------------------------------------------------------------------------

    async def _hearing(self, hearing_id: UUID) -> _Hearing:
        live = self._live.get(hearing_id)
        if live is not None:
            return live
        hearing = await self.hearings.room_hearing(hearing_id=hearing_id)
        async with self.db.read() as conn:
            count, latest = await repo.count_segments(conn, hearing_id)

        async def describe(participant_id: UUID) -> Who:
            participant = await self.hearings.room_participant(participant_id=participant_id)
            return Who(display_name=participant.display_name, role=participant.role.value)

        async def on_segment(segment: RecordedSegment) -> None:
            current = self._live.get(hearing_id)
            if current is None:
                return
            status = current.status
            latest = _newest(status.last_segment_at, segment.row.ended_at)
            await self._publish(
                hearing_id,
                status.model_copy(
                    update={"segments": status.segments + 1, "last_segment_at": latest}
                ),
            )

        async def on_failure(detail: str) -> None:
            await self._set(hearing_id, state="failed", reason=detail)
            if self._link is not None:
                await self._link.recording_failed(hearing_id=hearing_id, detail=detail)

        recorder = HearingRecorder(
            hearing_id=hearing_id,
            case_id=hearing.case_id,
            media=self.media,
            db=self.db,
            store=self.store,
            spool=self.spool,
            clock=self.clock,
            describe=describe,
            on_segment=on_segment,
            on_failure=on_failure,
            segment_s=self.segment_s,
        )
        live = _Hearing(
            recorder=recorder,
            status=RecordingStatus(
                state="idle", reason="", since=None, segments=count, last_segment_at=latest
            ),
        )
        self._live[hearing_id] = live
        return live

    async def _set(self, hearing_id: UUID, *, state: str, reason: str) -> None:
        live = self._live.get(hearing_id)
        if live is None:
            return
        await self._publish(
            hearing_id,
            live.status.model_copy(
                update={"state": state, "reason": reason, "since": self.clock.now()}
            ),
        )

    async def _publish(self, hearing_id: UUID, status: RecordingStatus) -> None:
        live = self._live.get(hearing_id)
        if live is None:
            return
        live.status = status
        if self._link is not None:
            await self._link.recording_changed(hearing_id=hearing_id, status=status)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD_S)
            for hearing_id, live in list(self._live.items()):
                try:
                    await live.recorder.check(
                        self.media.live_tracks(hearing_id), stall_s=self.stall_s
                    )
                except Exception:
                    logger.exception("recording watchdog failed")


def _write_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _newest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None else max(a, b)
