"""The synthetic participants of the media benchmarks (``media.py``, ``recording.py``), the
JSON-lines link that drives a server child process, and the process plumbing.

Publishers send pre-encoded media: a clip encoded once at start-up with PyAV (libvpx VP8
640x360 at 15 fps, about 400 kbit/s CBR, a keyframe every 2 s; libopus mono, 20 ms frames of a
tone). A publisher's tracks hand aiortc ``av.Packet``s of the clip, looped with growing
timestamps and paced in real time; aiortc packetizes a packet without encoding it, so a
publisher costs its client RTP and SRTP only. A ``Gate`` holds one scenario's publishers while
another is measured; they resume on a keyframe. Subscribers take complete, still encoded frames
from their receivers and count them: no client decodes anything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import ctypes
import importlib
import io
import json
import math
import os
import pstats
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, Protocol, cast
from uuid import UUID

import av
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from yunting.media import hooks
from yunting.media.vp8 import is_keyframe
from yunting.signaling.messages import SdpOffer

Kind = Literal["audio", "video"]
KINDS: tuple[Kind, ...] = ("audio", "video")
VIDEO_SIZE = (640, 360)
FPS = 15
GOP = 2 * FPS  # a keyframe every 2 s
VIDEO_BPS = 400_000
AUDIO_BPS = 32_000
AUDIO_RATE = 48_000
AUDIO_FRAME = 960  # 20 ms
CLIP_S = 4  # a whole number of GOPs: the loop starts on a keyframe
VIDEO_CLOCK = 90_000
LATE_S = 0.05  # a frame sent later than this after its time counts as late
WAIT_S = 40.0
LINE_LIMIT = 1 << 22  # offers with many m-lines are long JSON lines
LOCALHOST = ["127.0.0.1"]


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed: ``yunting serve`` (uvicorn, loop "auto") runs on it too."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    return cast(Callable[[], asyncio.AbstractEventLoop], uvloop.new_event_loop)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (``/proc/<pid>/stat`` 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all processes used on all cores (``/proc/stat``: everything but idle, iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child before exec: if the bench is killed outright, its servers go too.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def prefer_codecs(transceiver: RTCRtpTransceiver) -> None:
    # One codec per kind on both sides, as the media node negotiates (VP8 + RTX, Opus), so the
    # two servers carry the same media.
    wanted = {"audio": ("audio/opus",), "video": ("video/VP8", "video/rtx")}[transceiver.kind]
    codecs = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType in wanted])


def new_pc() -> RTCPeerConnection:
    # max-bundle, as browsers answer the media node: one transport for every m-line.
    return RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


# The clip ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    video: list[bytes]  # one VP8 frame each, FPS a second
    audio: list[bytes]  # one Opus frame each, 20 ms
    keyframes: list[int]  # indexes into ``video``

    def kbps(self, kind: Kind) -> float:
        frames = self.video if kind == "video" else self.audio
        seconds = len(frames) / FPS if kind == "video" else len(frames) * AUDIO_FRAME / AUDIO_RATE
        return sum(map(len, frames)) * 8 / seconds / 1000


def encode_video(seconds: int) -> list[bytes]:
    width, height = VIDEO_SIZE
    codec = cast(Any, av.CodecContext.create("libvpx", "w"))
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = Fraction(1, FPS)
    codec.framerate = Fraction(FPS)
    codec.bit_rate = VIDEO_BPS
    codec.gop_size = GOP
    # aiortc's real-time CBR settings (aiortc/codecs/vpx.py), fastest preset: this runs once.
    rate = str(VIDEO_BPS)
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "bufsize": rate,
        "minrate": rate,
        "maxrate": rate,
        "undershoot-pct": "100",
        "overshoot-pct": "15",
    }
    rnd = random.Random(5)
    gradient = bytes(x * 200 // width for x in range(width))
    # Noise of 0..23 on a 0..199 gradient: the byte-wise sum of two big integers never carries,
    # so a frame is built with two int conversions and no per-pixel Python. Without the noise
    # the picture compresses to almost nothing and the encoder undershoots the bitrate.
    noise = bytes(v % 24 for v in range(256))
    grey = bytes([128]) * (width * height // 4)
    warmup = GOP  # rate control settles over the first GOP; the clip starts after it
    out: list[bytes] = []
    for n in range(warmup + seconds * FPS):
        shift = (n * 8) % width  # the gradient moves 120 pixels a second
        row = gradient[shift:] + gradient[:shift]
        luma = int.from_bytes(row * height, "big") + int.from_bytes(
            rnd.randbytes(width * height).translate(noise), "big"
        )
        frame = av.VideoFrame(width, height, "yuv420p")
        frame.planes[0].update(luma.to_bytes(width * height, "big"))
        frame.planes[1].update(grey)
        frame.planes[2].update(grey)
        frame.pts = n
        frame.time_base = Fraction(1, FPS)
        if n % GOP == 0:
            frame.pict_type = av.video.frame.PictureType.I
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    return out[warmup : warmup + seconds * FPS]


def encode_audio(seconds: int) -> list[bytes]:
    codec = cast(Any, av.CodecContext.create("libopus", "w"))
    codec.sample_rate = AUDIO_RATE
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = AUDIO_BPS
    codec.time_base = Fraction(1, AUDIO_RATE)
    codec.options = {"application": "voip"}
    frames = seconds * AUDIO_RATE // AUDIO_FRAME
    out: list[bytes] = []
    for n in range(frames):
        start = n * AUDIO_FRAME
        tone = (
            int(8000 * math.sin(2 * math.pi * 440 * (start + i) / AUDIO_RATE))
            for i in range(AUDIO_FRAME)
        )
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_FRAME)
        frame.planes[0].update(struct.pack(f"<{AUDIO_FRAME}h", *tone))
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    return out[:frames]


def encode_clip() -> Clip:
    video = encode_video(CLIP_S)
    keyframes = [i for i, frame in enumerate(video) if is_keyframe(frame)]
    if not keyframes or keyframes[0] != 0:
        raise RuntimeError(f"the VP8 clip must start on a keyframe; keyframes at {keyframes}")
    return Clip(video=video, audio=encode_audio(CLIP_S), keyframes=keyframes)


# Publishers --------------------------------------------------------------------------------------


class Gate:
    """Lets one scenario's publishers send, or holds them while the other one is measured."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.clear()

    async def wait(self) -> None:
        await self._open.wait()


class ClipTrack(MediaStreamTrack):
    """A publisher's microphone or camera: the clip's encoded frames, looped, in real time."""

    def __init__(self, kind: Kind, clip: Clip, gate: Gate) -> None:
        super().__init__()
        self.kind = kind
        video = kind == "video"
        self._frames = clip.video if video else clip.audio
        # Where sending may resume after a pause: the server that decodes (the baseline) needs
        # a keyframe after frames it never got; audio frames stand alone.
        self._starts = clip.keyframes if video else list(range(len(self._frames)))
        self._interval = 1 / FPS if video else AUDIO_FRAME / AUDIO_RATE
        self._step = VIDEO_CLOCK // FPS if video else AUDIO_FRAME
        self._time_base = Fraction(1, VIDEO_CLOCK if video else AUDIO_RATE)
        self._gate = gate
        self._index = 0
        self._pts = random.getrandbits(24)
        self._due: float | None = None
        self.sent = 0
        self.late = 0

    def _resume(self, paused_s: float) -> None:
        self._index = next((i for i in self._starts if i >= self._index), 0)
        # Timestamps keep following the wall clock across the pause, as a camera's do.
        self._pts += self._step * max(1, round(paused_s / self._interval))
        self._due = None

    async def recv(self) -> av.Packet[Any]:
        loop = asyncio.get_running_loop()
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if not self._gate.is_open:
                paused_at = loop.time()
                await self._gate.wait()
                self._resume(loop.time() - paused_at)
                continue
            now = loop.time()
            if self._due is None:
                self._due = now
            if self._due > now:
                await asyncio.sleep(self._due - now)
                continue  # the gate may have closed meanwhile
            if now - self._due > LATE_S:
                self.late += 1
            packet = av.Packet(self._frames[self._index])
            packet.pts = self._pts
            packet.time_base = self._time_base
            self._index = (self._index + 1) % len(self._frames)
            self._pts += self._step
            self._due += self._interval
            self.sent += 1
            return packet


class Receiving:
    """What one subscriber's peer connection receives: complete encoded frames, counted per
    (publisher, kind) from the offer's track list. Nothing is decoded."""

    def __init__(self) -> None:
        self.mapping: dict[str, tuple[str, Kind]] = {}  # mid -> (publisher, kind)
        self.frames: Counter[tuple[str, Kind]] = Counter()
        self.bytes = 0
        self._tapped: set[int] = set()

    def tap(self, transceiver: RTCRtpTransceiver) -> None:
        """Count what ``transceiver`` receives; call after setRemoteDescription(offer) and
        before the answer (the receiver must not have started)."""
        if id(transceiver) in self._tapped or transceiver.mid is None:
            return
        self._tapped.add(id(transceiver))
        mid = transceiver.mid

        def on_frame(data: bytes, rtp_timestamp: int, ssrc: int) -> None:
            source = self.mapping.get(mid)
            if source is not None:
                self.frames[source] += 1
                self.bytes += len(data)

        hooks.tap_receiver(
            transceiver.receiver,
            video=transceiver.kind == "video",
            on_frame=on_frame,
            on_sender_report=lambda ssrc, ntp, rtp: None,
        )


# The JSON-lines link between the bench and a server ---------------------------------------------


def send_line(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message).encode() + b"\n")


class Wire:
    """The bench's end of one server's link. Every message from the server names a
    participant (``p``) and goes to that participant's inbox."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.inboxes: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.closed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, port: int) -> Wire:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=LINE_LIMIT)
        return cls(reader, writer)

    def inbox(self, participant: str) -> asyncio.Queue[dict[str, Any]]:
        return self.inboxes.setdefault(participant, asyncio.Queue())

    def send(self, message: dict[str, Any]) -> None:
        send_line(self._writer, message)

    async def request(self, participant: str, message: dict[str, Any]) -> dict[str, Any]:
        self.send(message)
        reply = await asyncio.wait_for(self.inbox(participant).get(), WAIT_S)
        if reply["op"] == "error":
            raise RuntimeError(f"server refused {message['op']}: {reply['detail']}")
        return reply

    async def _read(self) -> None:
        try:
            while line := await self._reader.readline():
                message = json.loads(line)
                self.inbox(message["p"]).put_nowait(message)
        finally:
            self.closed.set()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


# Clients -----------------------------------------------------------------------------------------


class Participant:
    """One synthetic participant: a publisher of the clip and a subscriber to its hearing."""

    def __init__(
        self, *, hearing: str, clip: Clip, gate: Gate, wire: Wire, participant_id: str | None = None
    ) -> None:
        self.hearing = hearing
        # The server's id when it has one (a participant row of its database).
        self.id = participant_id or str(uuid.uuid4())
        self.wire = wire
        self.tracks = {kind: ClipTrack(kind, clip, gate) for kind in KINDS}
        self.receiving = Receiving()
        self.pcs: list[RTCPeerConnection] = []
        self.failures: list[str] = []

    def new_pc(self) -> RTCPeerConnection:
        pc = new_pc()
        self.pcs.append(pc)
        return pc

    async def close(self) -> None:
        for track in self.tracks.values():
            track.stop()
        for pc in self.pcs:
            with contextlib.suppress(Exception):
                await pc.close()


class NodeParticipant(Participant):
    """A browser as the media node sees it: one peer connection; the node makes every offer
    and this answers it as room.js does (own tracks on the ``publish`` mids)."""

    def __init__(
        self, *, hearing: str, clip: Clip, gate: Gate, wire: Wire, participant_id: str | None = None
    ) -> None:
        super().__init__(
            hearing=hearing, clip=clip, gate=gate, wire=wire, participant_id=participant_id
        )
        self.pc = self.new_pc()
        self.offers = 0
        self._attached: set[Kind] = set()
        self._worker = asyncio.create_task(self._work())

    async def _work(self) -> None:
        inbox = self.wire.inbox(self.id)
        while True:
            message = await inbox.get()
            if message["op"] == "failed":
                self.failures.append(message["detail"])
                continue
            try:
                await self._answer(message)
            except Exception as e:
                self.failures.append(f"answering the offer: {e!r}")

    async def _answer(self, offer: dict[str, Any]) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        publish: dict[str, str | None] = offer["publish"]
        for transceiver in self.pc.getTransceivers():
            kind = next((k for k in KINDS if publish[k] == transceiver.mid), None)
            if kind is None:
                self.receiving.tap(transceiver)
            elif kind not in self._attached:
                transceiver.sender.replaceTrack(self.tracks[kind])
                transceiver.direction = "sendonly"
                self._attached.add(kind)
        self.receiving.mapping = {mid: (pid, kind) for mid, pid, kind in offer["tracks"]}
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.offers += 1
        self.wire.send(
            {"op": "answer", "h": self.hearing, "p": self.id, "sdp": self.pc.localDescription.sdp}
        )

    async def close(self) -> None:
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        await super().close()


class BaselineParticipant(Participant):
    """A participant of the aiortc relay: a publishing and a subscribing peer connection."""

    async def publish(self) -> None:
        pc = self.new_pc()
        for kind in KINDS:
            prefer_codecs(pc.addTransceiver(self.tracks[kind], direction="sendonly"))
        await pc.setLocalDescription(await pc.createOffer())
        reply = await self.wire.request(
            self.id, {"op": "publish", "p": self.id, "sdp": pc.localDescription.sdp}
        )
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))

    async def subscribe(self, publishers: Sequence[str]) -> None:
        offer = await self.wire.request(
            self.id, {"op": "subscribe", "p": self.id, "to": list(publishers)}
        )
        pc = self.new_pc()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        for transceiver in pc.getTransceivers():
            self.receiving.tap(transceiver)
        self.receiving.mapping = {mid: (pid, kind) for mid, pid, kind in offer["tracks"]}
        answer = await pc.createAnswer()
        # Without abs-send-time this receiver sends no REMB, so the relay's encoders stay at
        # aiortc's default 500 kbit/s instead of climbing to 1.5 Mbit/s on loopback (or
        # dropping when the estimate sees its own delays): about the bitrate we forward.
        sdp = "".join(
            line for line in answer.sdp.splitlines(keepends=True) if "abs-send-time" not in line
        )
        await pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        await self.wire.request(
            self.id, {"op": "answer", "p": self.id, "sdp": pc.localDescription.sdp}
        )


# The media node's link (in a server child process) ---------------------------------------------


class NodeLink:
    """``ParticipantLink`` for the node: offers and failures go to the bench over the link."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def media_to_participant(
        self, *, hearing_id: UUID, participant_id: UUID, message: SdpOffer
    ) -> None:
        send_line(
            self._writer,
            {
                "op": "offer",
                "p": str(participant_id),
                "sdp": message.sdp,
                "tracks": [[t.mid, str(t.participant_id), t.kind] for t in message.tracks],
                "publish": {"audio": message.publish.audio, "video": message.publish.video},
            },
        )

    async def media_failed(self, *, hearing_id: UUID, participant_id: UUID, detail: str) -> None:
        send_line(self._writer, {"op": "failed", "p": str(participant_id), "detail": detail})


# Server child processes -------------------------------------------------------------------------


@dataclass
class ServerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def spawn(script: str, role: str, workdir: Path, extra: Sequence[str] = ()) -> ServerProcess:
    """``script --serve role --port P [extra]``, its output to ``workdir/role.log``."""
    port = free_port()
    args = [sys.executable, script, "--serve", role, "--port", str(port), *extra]
    log = workdir / f"{role}.log"
    # A file, not a pipe: a pipe nobody reads would block the server once full.
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # called from the main thread, which outlives them
        )
    return ServerProcess(role, proc, port, log)


async def connect(server: ServerProcess) -> Wire:
    deadline = time.monotonic() + WAIT_S
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"the {server.name} server exited early:\n{server.log_tail()}")
        try:
            return await Wire.connect(server.port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the {server.name} server did not listen in {WAIT_S}s:\n{server.log_tail()}"
                ) from None
            await asyncio.sleep(0.05)


async def stop(server: ServerProcess) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        for _ in range(300):
            if server.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            server.proc.kill()
    server.proc.wait()


async def serve_until_sigterm(impl: Any, port: int) -> None:
    """Serve ``impl.handle`` on ``port`` until SIGTERM, then ``impl.stop()``."""
    loop = asyncio.get_running_loop()
    stopping: asyncio.Future[None] = loop.create_future()

    def on_sigterm() -> None:
        if not stopping.done():
            stopping.set_result(None)

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    server = await asyncio.start_server(impl.handle, "127.0.0.1", port, limit=LINE_LIMIT)
    try:
        await stopping
    finally:
        server.close()
        await impl.stop()


class Profiling:
    """cProfile of a server's event loop thread, on while the bench says so."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._profiler = cProfile.Profile() if path is not None else None

    def set(self, on: bool) -> None:
        if self._profiler is not None:
            if on:
                self._profiler.enable()
            else:
                self._profiler.disable()

    def dump(self) -> None:
        if self._profiler is not None and self._path is not None:
            self._profiler.disable()
            self._profiler.dump_stats(self._path)


def print_profile(path: Path, top: int = 35) -> None:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print(out.getvalue(), file=sys.stderr)


# The bench's measurements -----------------------------------------------------------------------


@dataclass
class CpuReading:
    """CPU used so far by the server, the bench and the whole machine, at ``at``."""

    at: float
    server_cpu: float
    bench_cpu: float
    machine_cpu: float

    @classmethod
    def now(cls, server_pid: int) -> CpuReading:
        return cls(
            at=time.monotonic(),
            server_cpu=cpu_seconds(server_pid),
            bench_cpu=cpu_seconds(os.getpid()),
            machine_cpu=machine_busy_seconds(),
        )


@dataclass
class CpuTotals:
    """What a scenario's measured blocks added up to, in seconds."""

    seconds: float = 0.0
    server_cpu: float = 0.0
    bench_cpu: float = 0.0
    machine_cpu: float = 0.0

    def add(self, a: CpuReading, b: CpuReading) -> float:
        """Add the block from ``a`` to ``b``; its server CPU milliseconds per second."""
        seconds = b.at - a.at
        cpu = b.server_cpu - a.server_cpu
        self.seconds += seconds
        self.server_cpu += cpu
        self.bench_cpu += b.bench_cpu - a.bench_cpu
        self.machine_cpu += b.machine_cpu - a.machine_cpu
        return 1000 * cpu / seconds

    def figures(self) -> dict[str, float]:
        seconds = self.seconds
        return {
            "window_s": round(seconds, 2),
            "server_cpu_pct": round(100 * self.server_cpu / seconds, 1),
            "client_cpu_pct": round(100 * self.bench_cpu / seconds, 1),
            "machine_cpu_pct": round(100 * self.machine_cpu / seconds, 1),
        }


def late_pct(late: int, sent: int) -> float | None:
    return round(100 * late / sent, 2) if sent else None


class Measured(Protocol):
    name: str
    gate: Gate
    wire: Wire

    async def snapshot(self) -> Any: ...

    def add(self, a: Any, b: Any) -> None: ...


async def measure(
    scenarios: Sequence[Measured],
    *,
    rounds: int,
    block_s: float,
    settle_s: float,
    profile: bool,
    profile_message: dict[str, Any],
) -> None:
    """Interleaved blocks: one scenario sends at a time, the order reversed every round.
    With ``profile``, "ours" is sent ``profile_message`` with ``on`` around its blocks."""
    for scenario in scenarios:
        scenario.gate.close()
    for n in range(rounds):
        for scenario in scenarios if n % 2 == 0 else list(reversed(scenarios)):
            scenario.gate.open()
            await asyncio.sleep(settle_s)  # keyframes, new segments and queues after the pause
            profiling = profile and scenario.name == "ours"
            if profiling:
                scenario.wire.send({**profile_message, "on": True})
            start = await scenario.snapshot()
            await asyncio.sleep(block_s)
            end = await scenario.snapshot()
            if profiling:
                scenario.wire.send({**profile_message, "on": False})
            scenario.gate.close()
            scenario.add(start, end)


class Phases:
    """Seconds each phase of a run took, in order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(now - self._mark, 2)
        self._mark = now


class Closable(Protocol):
    name: str

    async def close(self) -> None: ...


async def close_all(
    scenarios: Sequence[Closable], servers: Sequence[ServerProcess], *, log_tails: bool = False
) -> None:
    """Close every scenario and stop every server, whatever fails on the way."""
    for scenario in scenarios:
        try:
            await scenario.close()
        except Exception as e:  # keep cleaning up
            print(f"bench: closing {scenario.name}: {e!r}", file=sys.stderr)
    for server in servers:
        try:
            await stop(server)
        except Exception as e:
            print(f"bench: stopping {server.name}: {e!r}", file=sys.stderr)
        if log_tails and (tail := server.log_tail(20)):  # warnings, tracebacks: to stderr
            print(f"bench: the {server.name} server's log ends:\n{tail}", file=sys.stderr)


def remove_workdir(workdir: Path, profile: Path | None) -> None:
    """Print the profile, if one was taken, and remove everything the bench wrote."""
    if profile is not None and profile.exists():
        print_profile(profile)
    shutil.rmtree(workdir, ignore_errors=True)


# The JSON ---------------------------------------------------------------------------------------


def late_warning(pct: float | None) -> list[str]:
    if not pct:
        return []
    return [
        f"{pct} % of our publishers' frames left over "
        f"{int(LATE_S * 1000)} ms late: the bench process is short of CPU"
    ]


def cpu_comparison(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    return {
        "window_s": ours["window_s"],
        "baseline_window_s": theirs["window_s"],
        "server_cpu_pct": ours["server_cpu_pct"],
        "baseline_cpu_pct": theirs["server_cpu_pct"],
        "client_cpu_pct": ours["client_cpu_pct"],
        "baseline_client_cpu_pct": theirs["client_cpu_pct"],
        # Every process on the machine (200 = both cores busy): well above server + client
        # means something else was running during the blocks.
        "machine_cpu_pct": ours["machine_cpu_pct"],
        "baseline_machine_cpu_pct": theirs["machine_cpu_pct"],
    }


def clip_bitrates(clip: Clip) -> dict[str, float]:
    return {"video": round(clip.kbps("video"), 1), "audio": round(clip.kbps("audio"), 1)}


def run_settings(*, rounds: int, block_s: float, settle_s: float, profiled: bool) -> dict[str, Any]:
    return {
        "rounds": rounds,
        "block_s": block_s,
        "settle_s": settle_s,
        "video": f"VP8 {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]} {FPS} fps, keyframe every {GOP // FPS} s",
        "event_loop": "uvloop" if loop_factory() is not None else "asyncio",
        "cores": os.cpu_count(),
        "profiled": profiled,
    }


# The command line -------------------------------------------------------------------------------


def new_parser(doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller and shorter, under a minute")
    parser.add_argument("--hearings", type=int, default=0, help="our hearings (4; quick 2)")
    return parser


def add_run_arguments(parser: argparse.ArgumentParser, *, profile_help: str) -> None:
    parser.add_argument("--rounds", type=int, default=0, help="interleaved rounds (5; quick 3)")
    parser.add_argument(
        "--block-seconds", type=float, default=0, help="measured seconds per block (6; quick 3)"
    )
    parser.add_argument("--profile", action="store_true", help=profile_help)
    parser.add_argument("--serve", choices=("node", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", type=Path, default=None, help=argparse.SUPPRESS)


def block_plan(args: argparse.Namespace) -> dict[str, Any]:
    """The plan's hearings, rounds, block and settle seconds, quick or not."""
    return {
        "hearings": args.hearings or (2 if args.quick else 4),
        "rounds": args.rounds or (3 if args.quick else 5),
        "block_s": args.block_seconds or (3.0 if args.quick else 6.0),
        "settle_s": 1.0 if args.quick else 1.5,
    }


def run_bench(
    bench: str,
    args: argparse.Namespace,
    serve: Callable[[], Coroutine[Any, Any, None]],
    run: Callable[[], Coroutine[Any, Any, dict[str, Any]]],
) -> int:
    """Serve (``--serve``) or run the bench and print its JSON line; the exit status."""
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            if args.serve:
                runner.run(serve())
                return 0
            result = runner.run(run())
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("bench: interrupted; everything it started was cleaned up", file=sys.stderr)
        return 1
    except Exception as e:  # set-up failed (media never flowed, a server died): say so as JSON
        traceback.print_exc()
        print(json.dumps({"bench": bench, "quick": args.quick, "error": str(e)}), flush=True)
        return 1
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 1 if result["error"] else 0
