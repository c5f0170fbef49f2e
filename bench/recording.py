"""Recording benchmark: server CPU per recorded stream, our recorder against aiortc's
``MediaRecorder``, and whether what we write is exactly what we received.

Prints one JSON line. Never asserts times.

    python bench/recording.py [--quick] [--hearings R] [--publishers K]
                              [--baseline-publishers J] [--segment-seconds S] [--profile]

Everything runs on loopback, with the publishers of ``bench/media.py`` (``_publishers.py``:
a VP8 640x360 15 fps clip at about 400 kbit/s with a keyframe every 2 s and Opus in 20 ms
frames, encoded once at start-up and sent as ``av.Packet``s, so a publisher costs its client
RTP and SRTP only). Each server is a child process of its own (this file with ``--serve``, on
uvloop when installed); the bench process is every client. A stream is one recorded track:
every publisher sends audio and video, two streams. Nobody subscribes: this is recording only.

- Ours: ``MediaNode`` driven the way signaling drives it (``grant`` with publishing allowed
  and no subscriptions, then ``media_start``; its offers answered as the browser answers them)
  over a JSON-lines link, and one ``HearingRecorder`` per hearing on the node's tap, as the
  app runs it: a migrated SQLite database in the bench's temporary directory, holding a real
  court, case, hearing and participant rows (the recording tables refer to them), a
  ``LocalBlobStore`` and a spool directory on the same file system, the system clock. Every
  segment is written and fsynced, hashed, moved into the store and committed with its ledger
  entry, as in production. ``R`` hearings of ``K`` publishers: ``R*K*2`` streams.
- Baseline: a plain aiortc ``RTCPeerConnection`` per publisher (aiortc decodes what arrives,
  on its decoder thread) and an ``aiortc.contrib.media.MediaRecorder`` per track, writing
  WebM: it re-encodes with libvpx and libopus at PyAV's and aiortc's defaults, on the event
  loop. ``MediaRecorder`` is used as shipped: nothing needed patching. It only gets a
  counting wrapper around the track it reads, to count the frames it took. ``J`` publishers:
  ``J*2`` streams, fewer than ours because it costs far more per stream; the comparison is per
  stream.

The measured blocks alternate between the two (the order reversed every round); during one's
block the other's publishers are paused (they resume on a keyframe, their timestamps following
the wall clock: our recorder keeps a short pause in the segment as a gap and starts a new
segment after one longer than its 5 s jump limit), and each block starts after a settle time.
Server CPU is ``/proc/<pid>/stat`` utime + stime, all threads (our writer threads, aiortc's
decoders, SQLite's connection threads), over the blocks. ``cpu_per_stream`` = server CPU
seconds / (block seconds * streams), in cores per stream (``cpu_ms_per_s_per_stream``: the
same in CPU milliseconds per second). It covers everything the server does for a stream:
receiving it (SRTP, RTCP, jitter buffer), recording it, and the bench's counting wrapper (a
few counter updates per frame). ``ratio`` = baseline / ours (target >= 10).
``streams_per_core`` = 1 / ``cpu_per_stream``: how many streams one core records at this
load, ignoring everything else a node does; ``hearings_per_core`` is that for hearings of 5
publishers (10 streams).

Segments are ``--segment-seconds`` long (2 s; the app's default is 10 s) so that every block
rotates, closes and commits segments of every stream: their fixed costs (open, trailer, fsyncs
of the file and two directories, SHA-256, a transaction with its ledger entry) weigh five
times what they do in production, so our figure is pessimistic (``--segment-seconds 10`` to
see the difference).

Falling behind. Ours: a server-side sampler reads each recorder's writer queue (``_work``,
jobs waiting for its writer thread) every 50 ms; ``backlog_s_max`` is the longest in the
blocks, in seconds of that hearing's media. Baseline: the same sampler reads how many frames
wait for each ``MediaRecorder`` (encoded ones in aiortc's decoder queue, decoded ones in its
track queue), in seconds of that track's media, and ``frames_recorded_ratio`` is frames the
recorders took / frames the publishers sent in the blocks. Either falls behind when its
backlog exceeds 1 s (or, for the baseline, when it took under 90 % of the frames); the JSON
says which (``fell_behind``), and a baseline that fell behind had its CPU per stream
underestimated (the ratio is then conservative). ``loop_lag_ms_max`` is the sampler's worst
oversleep: how late the event loop ran.

What was written. The node's tap is wrapped (a ``MediaTap`` in front of ``MediaNode``) to
count every frame and payload byte handed to our recorders, the whole recording long. After
the run the recorders are closed (``HearingRecorder.close``: every open segment closed and
committed); then every committed segment, listed from the recording tables, is demuxed with
PyAV. ``bytes_written_vs_received`` = payload bytes of the demuxed packets / payload bytes
handed to the recorders (target: within 1 % of 1; frames are muxed as they came, so it is 1
unless one was lost); ``file_bytes_vs_received`` is the same with whole files (WebM overhead
included). Video frames that arrive before a track's first keyframe cannot start a segment
and are dropped (``dropped_before_keyframe``, normally 0 here: publishers start and resume on
a keyframe). The recorder asks for a keyframe at once when it drops one, and before every
rotation (``keyframe_requests``: about one per video segment); the pre-encoded clip cannot
answer, its keyframes come every 2 s regardless.

The run is valid only if every stream was recorded, no recorder failed, every segment starts
on a keyframe and its first frame decodes (at the size its row says), its row's frame count
and size match the file, demuxed packets + dropped frames = frames received exactly, the byte
ratio is within 1 % and no MediaRecorder task died; otherwise the JSON carries an ``error``
and the exit status is 1.

``--profile`` runs our server under cProfile during its blocks (event loop thread only; the CPU
figures are then inflated) and prints its top functions to stderr. Every process and file the
bench made is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import av
from _publishers import (
    AUDIO_FRAME,
    AUDIO_RATE,
    FPS,
    KINDS,
    LOCALHOST,
    WAIT_S,
    BaselineParticipant,
    Clip,
    CpuReading,
    CpuTotals,
    Gate,
    Kind,
    NodeLink,
    NodeParticipant,
    Participant,
    Phases,
    Profiling,
    ServerProcess,
    Wire,
    add_run_arguments,
    block_plan,
    clip_bitrates,
    close_all,
    connect,
    cpu_comparison,
    encode_clip,
    late_pct,
    late_warning,
    measure,
    new_parser,
    new_pc,
    remove_workdir,
    run_bench,
    run_settings,
    send_line,
    serve_until_sigterm,
    spawn,
)
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamTrack
from argon2 import PasswordHasher

from yunting.hearing.model import Role, StaffRole
from yunting.hearing.service import HearingService
from yunting.infra.clock import SystemClock
from yunting.infra.db import Database
from yunting.infra.migrate import upgrade_async
from yunting.infra.storage import LocalBlobStore
from yunting.media import hooks
from yunting.media.forwarding import EncodedFrame
from yunting.media.node import MediaNode, Tap, TrackInfo
from yunting.recording import repository as repo
from yunting.recording.recorder import HearingRecorder, RecordedSegment, RecordingState, Who
from yunting.signaling.messages import MediaStart, SdpAnswer
from yunting.signaling.outputs import MediaGrant
from yunting.staff.service import StaffService

TARGET_RATIO = 10.0
BYTES_TOLERANCE = 0.01  # |1 - bytes written / bytes received|
TYPICAL_HEARING_STREAMS = 5 * 2  # 5 publishers, audio + video each
SERVER = "server"  # the link's address of the server itself (participants use their ids)
SAMPLE_S = 0.05
MAX_BACKLOG_S = 1.0  # a recorder with more than this much media waiting has fallen behind
FRAMES_PER_S = {"audio": AUDIO_RATE / AUDIO_FRAME, "video": float(FPS)}
ROLES = (Role.PLAINTIFF, Role.DEFENDANT, Role.COUNSEL, Role.WITNESS, Role.THIRD_PARTY)


class Sampler:
    """Every ``SAMPLE_S``: how late the event loop woke up, and ``probe()`` (a backlog in
    seconds of media). ``take()`` returns the worst of both since the last call."""

    def __init__(self, probe: Callable[[], float]) -> None:
        self._probe = probe
        self.lag_s = 0.0
        self.backlog_s = 0.0
        self.backlog_s_ever = 0.0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(SAMPLE_S)
            self.lag_s = max(self.lag_s, loop.time() - before - SAMPLE_S)
            backlog = self._probe()
            self.backlog_s = max(self.backlog_s, backlog)
            self.backlog_s_ever = max(self.backlog_s_ever, backlog)

    def take(self) -> dict[str, float]:
        taken = {"lag_ms": round(1000 * self.lag_s, 1), "backlog_s": round(self.backlog_s, 3)}
        self.lag_s = self.backlog_s = 0.0
        return taken

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


# Ours (a child process: this file with --serve node) --------------------------------------------


class CountingMedia:
    """The recorders' ``MediaTap``: the media node, with every frame it hands a recorder
    counted on the way (frames and payload bytes per kind) and the keyframe requests too."""

    def __init__(self, node: MediaNode) -> None:
        self.node = node
        self.frames: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.tracks: Counter[tuple[UUID, str]] = Counter()  # frames per (participant, kind)
        self.keyframe_requests = 0

    def add_tap(self, hearing_id: UUID, tap: Tap) -> Callable[[], None]:
        def counted(info: TrackInfo, frame: EncodedFrame) -> None:
            self.frames[info.kind] += 1
            self.bytes[info.kind] += len(frame.data)
            self.tracks[(info.participant_id, info.kind)] += 1
            tap(info, frame)

        return self.node.add_tap(hearing_id, counted)

    def request_keyframe(self, hearing_id: UUID, participant_id: UUID) -> None:
        self.keyframe_requests += 1
        self.node.request_keyframe(hearing_id, participant_id)


@dataclass(frozen=True)
class SegmentCheck:
    kind: str
    packets: int
    packet_bytes: int
    file_bytes: int
    problem: str | None


def check_segment(path: Path, row: repo.SegmentRow, kind: str) -> SegmentCheck:
    """Demux one committed segment: its packets and their payload bytes, and whether it
    starts on a keyframe that decodes on its own (at the size its row says)."""
    packets = packet_bytes = 0
    problem: str | None = None
    try:
        with av.open(str(path)) as container:
            stream = container.streams[0]
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream marker
                if packets == 0:
                    problem = first_frame_problem(stream, packet, row, kind)
                packets += 1
                packet_bytes += packet.size
    except av.FFmpegError as e:
        problem = f"cannot read it: {e}"
    file_bytes = path.stat().st_size
    if problem is None and packets != row.frames:
        problem = f"its row says {row.frames} frames, the file has {packets}"
    if problem is None and file_bytes != row.size:
        problem = f"its row says {row.size} bytes, the file has {file_bytes}"
    if problem is not None:
        problem = f"segment {row.storage_key}: {problem}"
    return SegmentCheck(kind, packets, packet_bytes, file_bytes, problem)


def first_frame_problem(stream: Any, packet: Any, row: repo.SegmentRow, kind: str) -> str | None:
    if kind == "video" and not packet.is_keyframe:
        return "does not start on a keyframe"
    try:
        frames = stream.codec_context.decode(packet)
    except av.FFmpegError as e:
        return f"its first frame does not decode: {e}"
    if not frames:
        return "its first frame decodes to nothing"
    if kind == "video" and (frames[0].width, frames[0].height) != (row.width, row.height):
        return f"{frames[0].width}x{frames[0].height}, its row says {row.width}x{row.height}"
    return None


class NodeServer:
    """Our media node and one recorder per hearing, set up as the app would, on request."""

    def __init__(self, workdir: Path, profile: Path | None) -> None:
        self.node = MediaNode(ice_servers=[], host_addresses=LOCALHOST)
        self.media = CountingMedia(self.node)
        self.data = workdir / "node-data"
        self.store = LocalBlobStore(self.data / "blobs")
        self.db: Database | None = None
        self.recorders: list[HearingRecorder] = []
        self.members: dict[UUID, int] = {}  # publishers per hearing
        self.who: dict[UUID, Who] = {}
        self.segments = 0
        self.failures: list[str] = []
        self.sampler: Sampler | None = None
        self.profiling = Profiling(profile)
        self.closed = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.node.bind(NodeLink(writer))
        while line := await reader.readline():
            m = json.loads(line)
            op = m["op"]
            if m["p"] == SERVER:
                try:
                    reply = await self._control(m)
                except Exception as e:
                    traceback.print_exc()
                    reply = {"op": "error", "detail": repr(e)}
                if reply is not None:
                    send_line(writer, {**reply, "p": SERVER})
                continue
            hearing_id, participant_id = UUID(m["h"]), UUID(m["p"])
            if op == "grant":
                grant = MediaGrant(
                    participant_id=participant_id,
                    publish_audio=True,
                    publish_video=True,
                    subscribe_to=frozenset(),
                    may_publish=True,
                )
                await self.node.grant(hearing_id=hearing_id, grant=grant)
            elif op == "start":
                await self.node.signal(
                    hearing_id=hearing_id,
                    participant_id=participant_id,
                    message=MediaStart(type="media_start"),
                )
            elif op == "answer":
                await self.node.signal(
                    hearing_id=hearing_id,
                    participant_id=participant_id,
                    message=SdpAnswer(type="sdp_answer", sdp=m["sdp"]),
                )

    async def _control(self, m: dict[str, Any]) -> dict[str, Any] | None:
        op = m["op"]
        if op == "setup":
            return await self.setup(m["hearings"], m["publishers"], m["segment_s"])
        if op == "stats":
            return self.stats()
        if op == "profile":
            self.profiling.set(m["on"])
            return None
        if op == "finish":
            return await self.finish()
        raise ValueError(f"expected setup, stats, profile or finish, got {op!r}")

    async def setup(self, hearings: int, publishers: int, segment_s: float) -> dict[str, Any]:
        """A migrated database with a court, a clerk, and per hearing a case, the hearing and
        its publishers as participants; a recorder per hearing, started."""
        self.data.mkdir(parents=True)
        url = f"sqlite+aiosqlite:///{self.data / 'yunting.sqlite3'}"
        await upgrade_async(url)
        db = self.db = Database(url)
        await db.start()
        clock = SystemClock()
        service = HearingService(
            db=db,
            clock=clock,
            secret_key=secrets.token_hex(32),
            public_base_url="http://bench.invalid",
            join_token_ttl=timedelta(days=1),
            court_timezone=ZoneInfo("Asia/Shanghai"),
        )
        staff = StaffService(
            db=db,
            clock=clock,
            session_ttl=timedelta(hours=1),
            hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
        )
        court = await service.ensure_court(name="基准测试法院", code="BENCH01")
        clerk = await staff.create_user(
            court_id=court.id,
            username="bench-clerk",
            display_name="书记员",
            role=StaffRole.CLERK,
            password=secrets.token_hex(16),
        )
        actor = clerk.actor()
        made: list[list[str]] = []
        for n in range(hearings):
            case = await service.create_case(
                actor=actor, number=f"(2026)浙0192民初{9000 + n}号", title="基准", cause="基准"
            )
            hearing = await service.schedule_hearing(
                actor=actor,
                case_id=case.id,
                scheduled_start=clock.now() + timedelta(minutes=5),
                expected_minutes=60,
                is_public=False,
            )
            ids = [str(hearing.id)]
            for k in range(publishers):
                role = ROLES[k % len(ROLES)]
                person = await service.create_person(
                    actor=actor, name=f"参与人{k + 1}", phone=None, email=None, id_number_last4=None
                )
                participant = await service.add_participant(
                    actor=actor, hearing_id=hearing.id, person_id=person.id, role=role
                )
                self.who[participant.id] = Who(participant.display_name, role.value)
                ids.append(str(participant.id))
            self.members[hearing.id] = publishers
            recorder = HearingRecorder(
                hearing_id=hearing.id,
                case_id=case.id,
                media=self.media,
                db=db,
                store=self.store,
                spool=self.data / "spool",
                clock=clock,
                describe=self.describe,
                on_segment=self.on_segment,
                on_failure=self.on_failure,
                segment_s=segment_s,
            )
            await recorder.start(actor_id=clerk.id, reason="the hearing started")
            self.recorders.append(recorder)
            made.append(ids)
        self.sampler = Sampler(self.backlog_s)
        return {"op": "ready", "hearings": made}

    async def describe(self, participant_id: UUID) -> Who:
        return self.who[participant_id]

    async def on_segment(self, segment: RecordedSegment) -> None:
        self.segments += 1

    async def on_failure(self, detail: str) -> None:
        self.failures.append(detail)

    def backlog_s(self) -> float:
        """The longest writer queue, in seconds of its hearing's media. (``_work`` is private:
        the recorder has no public gauge of its backlog.)"""
        per_publisher = sum(FRAMES_PER_S.values())
        return max(
            (
                r._work.qsize() / (self.members[r.hearing_id] * per_publisher)
                for r in self.recorders
            ),
            default=0.0,
        )

    def stats(self) -> dict[str, Any]:
        silent = [
            f"{pid}/{kind}"
            for pid in self.who
            for kind in KINDS
            if self.media.tracks[(pid, kind)] == 0
        ]
        sampled = self.sampler.take() if self.sampler is not None else {}
        return {
            "op": "stats",
            "frames": dict(self.media.frames),
            "bytes": dict(self.media.bytes),
            "segments": self.segments,
            "silent": silent,
            "failures": self.failures,
            **sampled,
        }

    async def finish(self) -> dict[str, Any]:
        """Close every recorder (open segments closed and committed), then demux every
        committed segment and count what was written."""
        db = self.db
        if db is None:
            raise RuntimeError("finish before setup")
        started = time.monotonic()
        for recorder in self.recorders:
            await recorder.close()
        close_s = time.monotonic() - started
        self.closed = True
        states = [r.state for r in self.recorders]
        # Frames the segmenters dropped, waiting for a keyframe (private: no public counter).
        dropped = Counter(
            {
                kind: sum(
                    t.segmenter.dropped
                    for r in self.recorders
                    for (_, k), t in r._tracks.items()
                    if k == kind
                )
                for kind in KINDS
            }
        )
        rows: list[tuple[Path, repo.SegmentRow, str]] = []
        async with db.read() as conn:
            for recorder in self.recorders:
                kinds = {t.id: t.kind for t in await repo.list_tracks(conn, recorder.hearing_id)}
                for segment in await repo.list_segments(conn, recorder.hearing_id):
                    path = await self.store.local_path(segment.storage_key)
                    rows.append((path, segment, kinds[segment.track_id]))
        checks = await asyncio.to_thread(lambda: [check_segment(*row) for row in rows])
        problems = [c.problem for c in checks if c.problem is not None]
        leftovers = [p.name for p in (self.data / "spool").rglob("*") if p.is_file()]
        return {
            "op": "finished",
            "received_frames": dict(self.media.frames),
            "received_bytes": dict(self.media.bytes),
            "written_frames": {k: sum(c.packets for c in checks if c.kind == k) for k in KINDS},
            "written_bytes": {k: sum(c.packet_bytes for c in checks if c.kind == k) for k in KINDS},
            "file_bytes": {k: sum(c.file_bytes for c in checks if c.kind == k) for k in KINDS},
            "segments": {k: sum(1 for c in checks if c.kind == k) for k in KINDS},
            "dropped_before_keyframe": dict(dropped),
            "keyframe_requests": self.media.keyframe_requests,
            "close_s": round(close_s, 2),
            "backlog_s_ever": round(self.sampler.backlog_s_ever, 3) if self.sampler else None,
            "failed_recorders": sum(1 for s in states if s is RecordingState.FAILED),
            "failures": self.failures,
            "problems": problems[:5],
            "problem_count": len(problems),
            "spool_leftovers": leftovers[:5],
        }

    async def stop(self) -> None:
        self.profiling.dump()
        if self.sampler is not None:
            await self.sampler.stop()
        if not self.closed:
            for recorder in self.recorders:
                with contextlib.suppress(Exception):
                    await recorder.close()
        await self.node.stop()
        if self.db is not None:
            await self.db.stop()


# The baseline (a child process: this file with --serve baseline) -------------------------------


class CountedTrack(MediaStreamTrack):
    """What a ``MediaRecorder`` reads: the received track's decoded frames, counted."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        super().__init__()
        self.source = receiver.track
        self.kind = self.source.kind
        # Frames on their way to the recorder, in aiortc's private queues: encoded ones waiting
        # for the receiver's decoder thread, decoded ones waiting for the recorder.
        self._queues: list[Any] = [
            getattr(receiver, "_RTCRtpReceiver__decoder_queue", None),
            getattr(self.source, "_queue", None),
        ]
        self.frames = 0

    async def recv(self) -> Any:
        frame = await self.source.recv()
        self.frames += 1
        return frame

    def backlog_s(self) -> float:
        """Frames received and not yet taken by the recorder, in seconds of media."""
        waiting: int = sum(q.qsize() for q in self._queues if q is not None)
        return waiting / FRAMES_PER_S[self.kind]


@dataclass
class Recorded:
    path: Path
    track: CountedTrack
    recorder: MediaRecorder

    def crash(self) -> str | None:
        """Why its recording task ended, if it raised (``MediaRecorder`` keeps its tasks
        private and nobody awaits them: a failure would otherwise pass silently)."""
        contexts: dict[Any, Any] = getattr(self.recorder, "_MediaRecorder__tracks", {})
        for context in contexts.values():
            task = context.task
            if task is not None and task.done() and not task.cancelled():
                error = task.exception()
                if error is not None:
                    return repr(error)
        return None


class BaselineServer:
    """A peer connection per publisher, a ``MediaRecorder`` (WebM) per received track."""

    def __init__(self, workdir: Path) -> None:
        hooks.use_host_addresses(LOCALHOST)
        self.dir = workdir / "baseline-data"
        self.dir.mkdir(parents=True)
        self.pcs: list[RTCPeerConnection] = []
        self.recorded: list[Recorded] = []
        self.sampler = Sampler(self.backlog_s)
        self.stopped = False

    def backlog_s(self) -> float:
        return max((r.track.backlog_s() for r in self.recorded), default=0.0)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            m = json.loads(line)
            try:
                reply = await self._on(m)
            except Exception as e:
                traceback.print_exc()
                reply = {"op": "error", "detail": repr(e)}
            send_line(writer, {**reply, "p": m["p"]})

    async def _on(self, m: dict[str, Any]) -> dict[str, Any]:
        op, participant = m["op"], m["p"]
        if op == "publish":
            pc = new_pc()
            self.pcs.append(pc)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"], type="offer"))
            started: list[Recorded] = []
            for transceiver in pc.getTransceivers():
                counted = CountedTrack(transceiver.receiver)
                path = self.dir / f"{participant}-{counted.kind}.webm"
                recorder = MediaRecorder(str(path), format="webm")
                recorder.addTrack(counted)
                started.append(Recorded(path, counted, recorder))
            await pc.setLocalDescription(await pc.createAnswer())
            for recorded in started:
                await recorded.recorder.start()
            self.recorded += started
            return {"op": "answer", "sdp": pc.localDescription.sdp}
        if op == "stats":
            frames: Counter[str] = Counter()
            for r in self.recorded:
                frames[r.track.kind] += r.track.frames
            crashes = [c for r in self.recorded if (c := r.crash()) is not None]
            silent = [r.path.name for r in self.recorded if r.track.frames == 0]
            return {
                "op": "stats",
                "frames": dict(frames),
                "silent": silent,
                "failures": crashes,
                **self.sampler.take(),
            }
        if op == "finish":
            return await self.finish()
        raise ValueError(f"expected publish, stats or finish, got {op!r}")

    async def finish(self) -> dict[str, Any]:
        crashes = [c for r in self.recorded if (c := r.crash()) is not None]
        await self.stop()
        written: Counter[str] = Counter()
        file_bytes: Counter[str] = Counter()
        taken: Counter[str] = Counter()
        for r in self.recorded:
            kind = r.track.kind
            taken[kind] += r.track.frames
            file_bytes[kind] += r.path.stat().st_size
            with av.open(str(r.path)) as container:
                written[kind] += sum(1 for p in container.demux() if p.size)
        return {
            "op": "finished",
            "taken_frames": dict(taken),
            "written_frames": dict(written),
            "file_bytes": dict(file_bytes),
            "backlog_s_ever": round(self.sampler.backlog_s_ever, 3),
            "failures": crashes,
        }

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.sampler.stop()
        for r in self.recorded:
            try:
                await r.recorder.stop()
            except Exception:
                traceback.print_exc()
        await asyncio.gather(*(pc.close() for pc in self.pcs), return_exceptions=True)


async def serve(role: str, port: int, workdir: Path, profile: Path | None) -> None:
    impl = NodeServer(workdir, profile) if role == "node" else BaselineServer(workdir)
    await serve_until_sigterm(impl, port)


# The bench --------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    cpu: CpuReading
    sent: Counter[str]  # frames the publishers sent, per kind
    late: int
    recorded: Counter[str]  # frames the server handed its recorders, per kind
    stats: dict[str, Any]


@dataclass
class Scenario:
    """One server and its publishers, with what its measured blocks added up to."""

    name: str
    server: ServerProcess
    wire: Wire
    gate: Gate
    publishers: list[Participant] = field(default_factory=list)
    cpu: CpuTotals = field(default_factory=CpuTotals)
    sent: Counter[str] = field(default_factory=Counter)
    recorded: Counter[str] = field(default_factory=Counter)
    late: int = 0
    backlog_s: float = 0.0
    lag_ms: float = 0.0
    segments: int = 0
    block_ms_per_s_per_stream: list[float] = field(default_factory=list)

    @property
    def streams(self) -> int:
        return len(self.publishers) * len(KINDS)

    async def stats(self) -> dict[str, Any]:
        if self.server.proc.poll() is not None:
            raise RuntimeError(f"the {self.name} server died:\n{self.server.log_tail()}")
        return await self.wire.request(SERVER, {"op": "stats", "p": SERVER})

    async def snapshot(self) -> Snapshot:
        stats = await self.stats()
        return Snapshot(
            cpu=CpuReading.now(self.server.pid),
            sent=Counter(
                {kind: sum(p.tracks[kind].sent for p in self.publishers) for kind in KINDS}
            ),
            late=sum(t.late for p in self.publishers for t in p.tracks.values()),
            recorded=Counter(stats["frames"]),
            stats=stats,
        )

    def add(self, a: Snapshot, b: Snapshot) -> None:
        ms_per_s = self.cpu.add(a.cpu, b.cpu)
        self.sent.update(b.sent - a.sent)
        self.recorded.update(b.recorded - a.recorded)
        self.late += b.late - a.late
        # The maxima the server sampled since ``a`` asked (which reset them): this block's.
        self.backlog_s = max(self.backlog_s, b.stats["backlog_s"])
        self.lag_ms = max(self.lag_ms, b.stats["lag_ms"])
        self.segments += b.stats.get("segments", 0) - a.stats.get("segments", 0)
        self.block_ms_per_s_per_stream.append(round(ms_per_s / self.streams, 2))

    def failures(self) -> list[str]:
        return [f for p in self.publishers for f in p.failures]

    async def until_recording(self) -> None:
        """Until every stream has reached a recorder."""
        deadline = time.monotonic() + WAIT_S
        while True:
            if failures := self.failures():
                raise RuntimeError(f"{self.name}: {failures[0]}")
            stats = await self.stats()
            if stats["failures"]:
                raise RuntimeError(f"{self.name}: {stats['failures'][0]}")
            if not stats["silent"]:
                return
            if time.monotonic() > deadline:
                silent = stats["silent"]
                detail = (
                    f"{self.name}: {len(silent)} of {self.streams} streams had no frames "
                    f"recorded after {WAIT_S}s (e.g. {silent[0]})\n{self.server.log_tail()}"
                )
                raise RuntimeError(detail.rstrip())
            await asyncio.sleep(0.1)

    def recorded_ratio(self, kind: Kind) -> float:
        """Frames the recorders took / frames the publishers sent, in the blocks."""
        return self.recorded[kind] / self.sent[kind] if self.sent[kind] else 0.0

    async def finish(self) -> dict[str, Any]:
        return await self.wire.request(SERVER, {"op": "finish", "p": SERVER})

    async def close(self) -> None:
        for publisher in self.publishers:
            await publisher.close()
        await self.wire.close()


async def set_up_ours(
    scenario: Scenario, clip: Clip, *, hearings: int, publishers: int, segment_s: float
) -> None:
    ready = await scenario.wire.request(
        SERVER,
        {
            "op": "setup",
            "p": SERVER,
            "hearings": hearings,
            "publishers": publishers,
            "segment_s": segment_s,
        },
    )
    for hearing, *members in ready["hearings"]:
        joined = [
            NodeParticipant(
                hearing=hearing, clip=clip, gate=scenario.gate, wire=scenario.wire, participant_id=p
            )
            for p in members
        ]
        scenario.publishers += joined
        # As signaling does on admission: grants first (publishing, nobody to watch), then each
        # browser's media_start.
        for member in joined:
            scenario.wire.send({"op": "grant", "h": hearing, "p": member.id})
        for member in joined:
            scenario.wire.send({"op": "start", "h": hearing, "p": member.id})
    await scenario.until_recording()


async def set_up_baseline(scenario: Scenario, clip: Clip, *, publishers: int) -> None:
    joined = [
        BaselineParticipant(hearing="baseline", clip=clip, gate=scenario.gate, wire=scenario.wire)
        for _ in range(publishers)
    ]
    scenario.publishers += joined
    await asyncio.gather(*(p.publish() for p in joined))
    await scenario.until_recording()


def figures(scenario: Scenario) -> dict[str, Any]:
    streams = scenario.streams
    return {
        "cpu_per_stream": scenario.cpu.server_cpu / scenario.cpu.seconds / streams,
        "streams": streams,
        **scenario.cpu.figures(),
        "frames_recorded_ratio": round(scenario.recorded_ratio("video"), 4),
        "audio_frames_recorded_ratio": round(scenario.recorded_ratio("audio"), 4),
        "backlog_s_max": scenario.backlog_s,
        "loop_lag_ms_max": scenario.lag_ms,
        "segments_in_blocks": scenario.segments,
        "client_late_frames_pct": late_pct(scenario.late, sum(scenario.sent.values())),
        "blocks": scenario.block_ms_per_s_per_stream,
    }


def written(ours: dict[str, Any]) -> dict[str, Any]:
    """What our recorders wrote against what they were handed, and what is wrong with it."""
    received = sum(ours["received_bytes"].values())
    packet_bytes = sum(ours["written_bytes"].values())
    file_bytes = sum(ours["file_bytes"].values())
    frames_in = sum(ours["received_frames"].values())
    frames_out = sum(ours["written_frames"].values())
    dropped = sum(ours["dropped_before_keyframe"].values())
    ratio = packet_bytes / received if received else 0.0
    errors = []
    if abs(1 - ratio) > BYTES_TOLERANCE:
        errors.append(f"ours: bytes written / received = {ratio:.4f}, not within 1 %")
    if frames_out + dropped != frames_in:
        errors.append(
            f"ours: {frames_in} frames received, {frames_out} written + {dropped} dropped "
            "before a keyframe: frames lost"
        )
    if ours["failed_recorders"] or ours["failures"]:
        errors.append(f"ours: a recorder failed: {(ours['failures'] or ['?'])[0]}")
    if ours["problem_count"]:
        errors.append(f"ours: {ours['problem_count']} bad segments, e.g. {ours['problems'][0]}")
    if ours["spool_leftovers"]:
        errors.append(f"ours: unfinished files left in the spool: {ours['spool_leftovers']}")
    by_kind = {
        kind: round(ours["written_bytes"][kind] / ours["received_bytes"][kind], 6)
        for kind in KINDS
        if ours["received_bytes"].get(kind)
    }
    return {
        "bytes_written_vs_received": round(ratio, 6),
        "file_bytes_vs_received": round(file_bytes / received, 4) if received else None,
        "bytes_written_vs_received_by_kind": by_kind,
        "received_bytes": received,
        "written_bytes": packet_bytes,
        "file_bytes": file_bytes,
        "frames_received": frames_in,
        "frames_written": frames_out,
        "dropped_before_keyframe": ours["dropped_before_keyframe"],
        "keyframe_requests": ours["keyframe_requests"],
        "segments": ours["segments"],
        "recorders_close_s": ours["close_s"],
        # The sampler's longest backlog over the whole run (set-up, settles and blocks).
        "backlog_s_max_whole_run": ours["backlog_s_ever"],
        "errors": errors,
    }


@dataclass(frozen=True)
class Plan:
    hearings: int
    publishers: int
    baseline_publishers: int
    segment_s: float
    rounds: int
    block_s: float
    settle_s: float


def plan_from(args: argparse.Namespace) -> Plan:
    return Plan(
        **block_plan(args),
        publishers=args.publishers,
        baseline_publishers=args.baseline_publishers,
        segment_s=args.segment_seconds,
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = plan_from(args)
    hooks.check_aiortc()
    hooks.use_host_addresses(LOCALHOST)  # the clients' candidates: loopback only
    phase = Phases()
    workdir = Path(tempfile.mkdtemp(prefix="yunting-bench-recording-"))
    profile = workdir / "node.prof" if args.profile else None
    servers: list[ServerProcess] = []
    scenarios: list[Scenario] = []
    try:
        common = ["--workdir", str(workdir)]
        profile_to = ["--profile-to", str(profile)] if profile is not None else []
        servers.append(spawn(__file__, "node", workdir, common + profile_to))
        servers.append(spawn(__file__, "baseline", workdir, common))
        clip = encode_clip()  # while the servers start
        node, baseline = servers
        ours = Scenario("ours", node, await connect(node), Gate())
        scenarios.append(ours)
        theirs = Scenario("baseline", baseline, await connect(baseline), Gate())
        scenarios.append(theirs)
        phase("start")
        theirs.gate.close()
        await set_up_ours(
            ours,
            clip,
            hearings=plan.hearings,
            publishers=plan.publishers,
            segment_s=plan.segment_s,
        )
        ours.gate.close()
        theirs.gate.open()
        await set_up_baseline(theirs, clip, publishers=plan.baseline_publishers)
        phase("connect")
        await measure(
            scenarios,
            rounds=plan.rounds,
            block_s=plan.block_s,
            settle_s=plan.settle_s,
            profile=args.profile,
            profile_message={"op": "profile", "p": SERVER},
        )
        phase("measure")
        # Nothing arrives any more (both gates are closed): stop, then read what was written.
        ours_written = written(await ours.finish())
        baseline_written = await theirs.finish()
        phase("verify")
        result = report(
            args, plan, clip, figures(ours), figures(theirs), ours_written, baseline_written
        )
    finally:
        await close_all(scenarios, servers, log_tails=True)
        remove_workdir(workdir, profile)
        phase("cleanup")
    result["phases_s"] = phase.seconds
    return result


def report(
    args: argparse.Namespace,
    plan: Plan,
    clip: Clip,
    ours: dict[str, Any],
    theirs: dict[str, Any],
    ours_written: dict[str, Any],
    baseline_written: dict[str, Any],
) -> dict[str, Any]:
    per_stream, baseline_per_stream = ours["cpu_per_stream"], theirs["cpu_per_stream"]
    ratio = baseline_per_stream / per_stream
    errors = list(ours_written.pop("errors"))
    if baseline_written["failures"]:
        errors.append(f"baseline: a MediaRecorder crashed: {baseline_written['failures'][0]}")
    fell_behind = ours["backlog_s_max"] > MAX_BACKLOG_S
    baseline_fell_behind = (
        theirs["backlog_s_max"] > MAX_BACKLOG_S
        or min(theirs["frames_recorded_ratio"], theirs["audio_frames_recorded_ratio"]) < 0.9
    )
    warnings = []
    if fell_behind:
        warnings.append(
            f"our recorders' writer queue held up to {ours['backlog_s_max']} s of media: "
            "they fell behind"
        )
    if baseline_fell_behind:
        warnings.append(
            "the baseline fell behind (frames recorded: video "
            f"{theirs['frames_recorded_ratio']}, audio {theirs['audio_frames_recorded_ratio']}; "
            f"up to {theirs['backlog_s_max']} s of decoded media waiting), so its CPU per "
            "stream is an underestimate (the ratio is conservative)"
        )
    warnings += late_warning(ours["client_late_frames_pct"])
    taken = sum(baseline_written["taken_frames"].values())
    return {
        "bench": "recording",
        "quick": args.quick,
        "cpu_per_stream": round(per_stream, 6),
        "cpu_per_stream_baseline": round(baseline_per_stream, 6),
        "ratio": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "bytes_written_vs_received": ours_written.pop("bytes_written_vs_received"),
        "bytes_target": f"within {BYTES_TOLERANCE:.0%} of 1",
        "streams_per_core": round(1 / per_stream, 1),
        "baseline_streams_per_core": round(1 / baseline_per_stream, 2),
        "hearings_per_core": round(1 / (per_stream * TYPICAL_HEARING_STREAMS), 2),
        "fell_behind": fell_behind,
        "baseline_fell_behind": baseline_fell_behind,
        "cpu_ms_per_s_per_stream": round(1000 * per_stream, 3),
        "baseline_cpu_ms_per_s_per_stream": round(1000 * baseline_per_stream, 3),
        "streams": ours["streams"],
        "baseline_streams": theirs["streams"],
        **cpu_comparison(ours, theirs),
        "backlog_s_max": ours["backlog_s_max"],
        "baseline_backlog_s_max": theirs["backlog_s_max"],
        "loop_lag_ms_max": ours["loop_lag_ms_max"],
        "baseline_loop_lag_ms_max": theirs["loop_lag_ms_max"],
        "frames_recorded_ratio": ours["frames_recorded_ratio"],
        "audio_frames_recorded_ratio": ours["audio_frames_recorded_ratio"],
        "baseline_frames_recorded_ratio": theirs["frames_recorded_ratio"],
        "baseline_audio_frames_recorded_ratio": theirs["audio_frames_recorded_ratio"],
        "segments_committed_in_blocks": ours["segments_in_blocks"],
        **ours_written,
        "baseline_frames_written_vs_taken": (
            round(sum(baseline_written["written_frames"].values()) / taken, 4) if taken else None
        ),
        "baseline_file_bytes": sum(baseline_written["file_bytes"].values()),
        "baseline_backlog_s_max_whole_run": baseline_written["backlog_s_ever"],
        "client_late_frames_pct": ours["client_late_frames_pct"],
        "baseline_client_late_frames_pct": theirs["client_late_frames_pct"],
        "bitrate_kbps": clip_bitrates(clip),
        # CPU ms per second per stream in each block, in the order measured: the spread shows
        # how steady the host was.
        "blocks_ms_per_s_per_stream": {"ours": ours["blocks"], "baseline": theirs["blocks"]},
        "hearings": plan.hearings,
        "publishers": plan.publishers,
        "baseline_publishers": plan.baseline_publishers,
        "segment_s": plan.segment_s,
        **run_settings(
            rounds=plan.rounds,
            block_s=plan.block_s,
            settle_s=plan.settle_s,
            profiled=args.profile,
        ),
        "warnings": warnings,
        "error": "; ".join(errors) or None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = new_parser(__doc__)
    parser.add_argument("--publishers", type=int, default=4, help="publishers per hearing")
    parser.add_argument(
        "--baseline-publishers", type=int, default=1, help="publishers to MediaRecorder"
    )
    parser.add_argument(
        "--segment-seconds", type=float, default=2.0, help="our segment length (2; the app: 10)"
    )
    add_run_arguments(parser, profile_help="cProfile our server in its blocks (to stderr)")
    parser.add_argument("--workdir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.publishers, args.baseline_publishers) < 1 or args.hearings < 0:
        parser.error("hearings and the baseline need at least one publisher each")
    if args.segment_seconds <= 0:
        parser.error("--segment-seconds must be > 0")
    return run_bench(
        "recording",
        args,
        serve=lambda: serve(args.serve, args.port, args.workdir, args.profile_to),
        run=lambda: run(args),
    )


if __name__ == "__main__":
    sys.exit(main())
