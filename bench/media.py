"""Media benchmark: server CPU per forwarded track, our media node against an aiortc relay.

Prints one JSON line. Never asserts times.

    python bench/media.py [--quick] [--hearings R] [--participants K]
                          [--baseline-hearings B] [--baseline-participants J] [--profile]

Everything runs on loopback. Each server is a child process of its own (this file with
``--serve``, on uvloop when installed, as ``yunting serve`` runs); the bench process is every
client. The machine has 2 cores, so the clients and the server share them: the bench's own CPU
is reported too, and a busy bench shows up as late frames (``client_late_frames_pct``).

- Publishers send pre-encoded media: a clip encoded once at start-up with PyAV (libvpx VP8
  640x360 at 15 fps, about 400 kbit/s CBR, a keyframe every 2 s; libopus mono, 20 ms frames
  of a tone). A publisher's tracks hand aiortc ``av.Packet``s of the clip, looped with growing
  timestamps and paced in real time; aiortc packetizes a packet without encoding it, so a
  publisher costs its client RTP and SRTP only. Subscribers take complete, still encoded
  frames from their receivers (``yunting.media.hooks.tap_receiver``) and count them: no client
  decodes anything.
- Ours: ``MediaNode`` driven the way signaling drives it (``grant`` for everyone, then
  ``media_start``; its ``SdpOffer``s are answered as the browser answers them, max-bundle)
  over a JSON-lines TCP link. ``R`` hearings of ``K`` participants; each publishes audio and
  video and subscribes to everyone else in its hearing: ``R*K*(K-1)*2`` forwarded tracks.
- Baseline: the conventional aiortc SFU. Each participant has a publishing peer connection
  (aiortc decodes what arrives) and a subscribing one, to which the server adds
  ``MediaRelay().subscribe(track)`` of every other participant's audio and video (aiortc
  re-encodes them per subscriber with its default VP8 and Opus settings; its subscribers
  send no REMB, so VP8 stays at aiortc's starting 500 kbit/s). It costs far more per track, so
  it carries less and the comparison is CPU per forwarded track: by default one hearing of 3
  (12 forwarded tracks). With 4 its server falls behind on this 2-core VM (about 2/3 of the
  video and 1/4 of the audio delivered, frames piling up in ``MediaRelay``'s queues), and even
  with 3 its audio lags a little (each Opus frame waits for a thread-pool round trip behind the
  VP8 encodes); the warnings say so, and lagging understates its cost. Our figure barely
  depends on hearing size from 3 up (3 and 4 measured the same within the noise), so per
  forwarded track compares like with like; with 2, where every publisher has one subscriber
  to share its receiving costs with, both figures rise.

Both servers and their clients exist for the whole run. The measured blocks alternate between
them (the order reversed every round); during one scenario's block the other's publishers are
paused (they resume on a keyframe), so a change in what the host gives this VM hits both
alike. A block starts after a settle time. Server CPU is ``/proc/<pid>/stat`` utime + stime
(all threads: aiortc decodes and encodes off the event loop) over the blocks.
``cpu_per_track`` = server CPU seconds / (block seconds * forwarded tracks), in cores per
forwarded track (``cpu_ms_per_s_per_track``: the same in CPU milliseconds per second). It
covers everything the server does for the track: its share of receiving the publisher, RTCP,
ICE consent. ``ratio`` = baseline / ours (target >= 10). ``hearings_per_core`` = 1 /
(``cpu_per_track`` * 40): hearings of 5 participants (5*4*2 forwarded tracks) one core could
forward, ignoring everything else a node does.

The run is valid only if every subscriber received audio and video from every publisher of its
hearing in the blocks, and our ``frames_received_ratio`` (video frames received / (frames sent
* (K-1))) is within 10 % of 1; otherwise the JSON carries an ``error`` and the exit status is
1. The baseline's ratios are reported, with a warning under 0.9: its server fell behind, so
its CPU per track is an underestimate and the ratio conservative. ``machine_cpu_pct`` is every
process's CPU in the blocks (200 = both cores): far above server + client, something else ran.

``--profile`` runs our node under cProfile during its blocks (the CPU figures are then
inflated) and prints its top functions to stderr. Every process and file the bench made is
removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from _publishers import (
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
    prefer_codecs,
    remove_workdir,
    run_bench,
    run_settings,
    send_line,
    serve_until_sigterm,
    spawn,
)
from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from yunting.media import hooks
from yunting.media.node import MediaNode
from yunting.signaling.messages import MediaStart, SdpAnswer
from yunting.signaling.outputs import MediaGrant

TARGET_RATIO = 10.0
TYPICAL_HEARING_TRACKS = 5 * 4 * 2  # 5 participants, each receiving 4 others' audio + video


# Servers (child processes: this file with --serve) ----------------------------------------------


class NodeServer:
    """Our media node, driven over the link as signaling drives it."""

    def __init__(self, profile: Path | None) -> None:
        self.node = MediaNode(ice_servers=[], host_addresses=LOCALHOST)
        self.profiling = Profiling(profile)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.node.bind(NodeLink(writer))
        while line := await reader.readline():
            m = json.loads(line)
            op = m["op"]
            if op == "profile":
                self.profiling.set(m["on"])
                continue
            hearing_id, participant_id = UUID(m["h"]), UUID(m["p"])
            if op == "grant":
                grant = MediaGrant(
                    participant_id=participant_id,
                    publish_audio=True,
                    publish_video=True,
                    subscribe_to=frozenset(UUID(p) for p in m["subscribe_to"]),
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

    async def stop(self) -> None:
        self.profiling.dump()
        await self.node.stop()


class BaselineServer:
    """The conventional aiortc SFU: decode every publisher once, re-encode per subscriber."""

    def __init__(self) -> None:
        hooks.use_host_addresses(LOCALHOST)
        self.relay = MediaRelay()
        self.published: dict[str, dict[str, MediaStreamTrack]] = {}
        self.subscribing: dict[str, RTCPeerConnection] = {}
        self.pcs: list[RTCPeerConnection] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            m = json.loads(line)
            try:
                reply = await self._on(m)
            except Exception as e:
                reply = {"op": "error", "p": m["p"], "detail": repr(e)}
            send_line(writer, reply)

    def _pc(self) -> RTCPeerConnection:
        pc = new_pc()
        self.pcs.append(pc)
        return pc

    async def _on(self, m: dict[str, Any]) -> dict[str, Any]:
        op, participant = m["op"], m["p"]
        if op == "publish":
            pc = self._pc()
            tracks: dict[str, MediaStreamTrack] = {}

            def on_track(track: MediaStreamTrack) -> None:
                tracks[track.kind] = track

            pc.on("track", on_track)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            self.published[participant] = tracks
            return {"op": "answer", "p": participant, "sdp": pc.localDescription.sdp}
        if op == "subscribe":
            pc = self._pc()
            sent: list[tuple[RTCRtpTransceiver, str, str]] = []
            for publisher in m["to"]:
                for kind in KINDS:
                    source = self.published[publisher][kind]
                    transceiver = pc.addTransceiver(
                        self.relay.subscribe(source), direction="sendonly"
                    )
                    prefer_codecs(transceiver)
                    sent.append((transceiver, publisher, kind))
            await pc.setLocalDescription(await pc.createOffer())
            self.subscribing[participant] = pc
            return {
                "op": "offer",
                "p": participant,
                "sdp": pc.localDescription.sdp,
                "tracks": [[t.mid, publisher, kind] for t, publisher, kind in sent],
            }
        if op == "answer":
            pc = self.subscribing[participant]
            await pc.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"], type="answer"))
            return {"op": "ok", "p": participant}
        raise ValueError(f"expected publish, subscribe or answer, got {op!r}")

    async def stop(self) -> None:
        await asyncio.gather(*(pc.close() for pc in self.pcs), return_exceptions=True)


async def serve(role: str, port: int, profile: Path | None) -> None:
    impl = NodeServer(profile) if role == "node" else BaselineServer()
    await serve_until_sigterm(impl, port)


# The bench --------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    cpu: CpuReading
    sent: Counter[tuple[str, Kind]]  # (publisher, kind) -> frames
    received: Counter[tuple[str, str, Kind]]  # (subscriber, publisher, kind) -> frames
    received_bytes: int
    late: int


@dataclass
class Scenario:
    """One server and its clients, with what its measured blocks added up to."""

    name: str
    server: ServerProcess
    wire: Wire
    gate: Gate
    hearings: list[list[Participant]] = field(default_factory=list)
    cpu: CpuTotals = field(default_factory=CpuTotals)
    sent: Counter[tuple[str, Kind]] = field(default_factory=Counter)
    received: Counter[tuple[str, str, Kind]] = field(default_factory=Counter)
    received_bytes: int = 0
    late: int = 0
    block_ms_per_s_per_track: list[float] = field(default_factory=list)

    @property
    def participants(self) -> list[Participant]:
        return [p for hearing in self.hearings for p in hearing]

    @property
    def forwarded_tracks(self) -> int:
        return sum(len(h) * (len(h) - 1) * len(KINDS) for h in self.hearings)

    def pairs(self) -> Iterator[tuple[Participant, Participant, Kind]]:
        """(subscriber, publisher, kind) for every forwarded track."""
        for hearing in self.hearings:
            for subscriber in hearing:
                for publisher in hearing:
                    if publisher is not subscriber:
                        for kind in KINDS:
                            yield subscriber, publisher, kind

    async def snapshot(self) -> Snapshot:
        return self.take()

    def take(self) -> Snapshot:
        return Snapshot(
            cpu=CpuReading.now(self.server.pid),
            sent=Counter(
                {(p.id, kind): t.sent for p in self.participants for kind, t in p.tracks.items()}
            ),
            received=Counter(
                {
                    (s.id, p.id, kind): s.receiving.frames[(p.id, kind)]
                    for s, p, kind in self.pairs()
                }
            ),
            received_bytes=sum(p.receiving.bytes for p in self.participants),
            late=sum(t.late for p in self.participants for t in p.tracks.values()),
        )

    def add(self, a: Snapshot, b: Snapshot) -> None:
        ms_per_s = self.cpu.add(a.cpu, b.cpu)
        self.sent.update(b.sent - a.sent)
        self.received.update(b.received - a.received)
        self.received_bytes += b.received_bytes - a.received_bytes
        self.late += b.late - a.late
        self.block_ms_per_s_per_track.append(round(ms_per_s / self.forwarded_tracks, 2))

    def silent(self, received: Counter[tuple[str, str, Kind]]) -> list[tuple[str, str, Kind]]:
        """The forwarded tracks of which nothing arrived."""
        return [(s.id, p.id, k) for s, p, k in self.pairs() if received[(s.id, p.id, k)] == 0]

    def failures(self) -> list[str]:
        return [f for p in self.participants for f in p.failures]

    async def until_flowing(self) -> None:
        """Until every subscriber has frames of both kinds from every publisher."""
        deadline = time.monotonic() + WAIT_S
        while True:
            if self.server.proc.poll() is not None:
                raise RuntimeError(f"the {self.name} server died:\n{self.server.log_tail()}")
            if failures := self.failures():
                raise RuntimeError(f"{self.name}: {failures[0]}")
            silent = self.silent(self.take().received)
            if not silent:
                return
            if time.monotonic() > deadline:
                detail = (
                    f"{self.name}: {len(silent)} of {self.forwarded_tracks} forwarded tracks "
                    f"had no frames after {WAIT_S}s (e.g. {silent[0]})\n{self.server.log_tail()}"
                )
                raise RuntimeError(detail.rstrip())
            await asyncio.sleep(0.1)

    def received_ratio(self, kind: Kind) -> float:
        """Frames subscribers got / frames they should have got, in the blocks."""
        got = sum(n for (_, _, k), n in self.received.items() if k == kind)
        expected = sum(
            self.sent[(p.id, kind)] * (len(hearing) - 1)
            for hearing in self.hearings
            for p in hearing
        )
        return got / expected if expected else 0.0

    async def close(self) -> None:
        for participant in self.participants:
            await participant.close()
        await self.wire.close()


async def set_up_node(scenario: Scenario, clip: Clip, hearings: int, size: int) -> None:
    for _ in range(hearings):
        hearing = str(uuid.uuid4())
        members = [
            NodeParticipant(hearing=hearing, clip=clip, gate=scenario.gate, wire=scenario.wire)
            for _ in range(size)
        ]
        scenario.hearings.append(list(members))
        # As signaling does on admission: grants first, then each browser's media_start.
        for member in members:
            others = [o.id for o in members if o is not member]
            scenario.wire.send(
                {"op": "grant", "h": hearing, "p": member.id, "subscribe_to": others}
            )
        for member in members:
            scenario.wire.send({"op": "start", "h": hearing, "p": member.id})
    await scenario.until_flowing()


async def set_up_baseline(scenario: Scenario, clip: Clip, hearings: int, size: int) -> None:
    groups: list[list[BaselineParticipant]] = []
    for _ in range(hearings):
        hearing = str(uuid.uuid4())
        members = [
            BaselineParticipant(hearing=hearing, clip=clip, gate=scenario.gate, wire=scenario.wire)
            for _ in range(size)
        ]
        groups.append(members)
        scenario.hearings.append(list(members))
    # Publishers first: a subscription needs the publisher's tracks on the server.
    await asyncio.gather(*(m.publish() for members in groups for m in members))
    await asyncio.gather(
        *(m.subscribe([o.id for o in members if o is not m]) for members in groups for m in members)
    )
    await scenario.until_flowing()


def figures(scenario: Scenario) -> dict[str, Any]:
    seconds = scenario.cpu.seconds
    tracks = scenario.forwarded_tracks
    return {
        "cpu_per_track": scenario.cpu.server_cpu / seconds / tracks,
        "forwarded_tracks": tracks,
        **scenario.cpu.figures(),
        "frames_received_ratio": round(scenario.received_ratio("video"), 4),
        "audio_frames_received_ratio": round(scenario.received_ratio("audio"), 4),
        "delivered_kbps_per_track": round(scenario.received_bytes * 8 / seconds / tracks / 1000, 1),
        "client_late_frames_pct": late_pct(scenario.late, sum(scenario.sent.values())),
        "silent_tracks": len(scenario.silent(scenario.received)),
        "blocks": scenario.block_ms_per_s_per_track,
    }


@dataclass(frozen=True)
class Plan:
    hearings: int
    participants: int
    baseline_hearings: int
    baseline_participants: int
    rounds: int
    block_s: float
    settle_s: float


def plan_from(args: argparse.Namespace) -> Plan:
    return Plan(
        **block_plan(args),
        participants=args.participants,
        baseline_hearings=args.baseline_hearings,
        baseline_participants=args.baseline_participants,
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = plan_from(args)
    hooks.check_aiortc()
    hooks.use_host_addresses(LOCALHOST)  # the clients' candidates: loopback only
    phase = Phases()
    workdir = Path(tempfile.mkdtemp(prefix="yunting-bench-media-"))
    profile = workdir / "node.prof" if args.profile else None
    servers: list[ServerProcess] = []
    scenarios: list[Scenario] = []
    try:
        profile_to = ["--profile-to", str(profile)] if profile is not None else []
        servers.append(spawn(__file__, "node", workdir, profile_to))
        servers.append(spawn(__file__, "baseline", workdir))
        clip = encode_clip()  # while the servers start
        node, baseline = servers
        ours = Scenario("ours", node, await connect(node), Gate())
        scenarios.append(ours)
        theirs = Scenario("baseline", baseline, await connect(baseline), Gate())
        scenarios.append(theirs)
        phase("start")
        theirs.gate.close()
        await set_up_node(ours, clip, plan.hearings, plan.participants)
        ours.gate.close()
        theirs.gate.open()
        await set_up_baseline(theirs, clip, plan.baseline_hearings, plan.baseline_participants)
        phase("connect")
        await measure(
            scenarios,
            rounds=plan.rounds,
            block_s=plan.block_s,
            settle_s=plan.settle_s,
            profile=args.profile,
            profile_message={"op": "profile"},
        )
        phase("measure")
        result = report(args, plan, clip, figures(ours), figures(theirs))
    finally:
        await close_all(scenarios, servers)
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
) -> dict[str, Any]:
    per_track, baseline_per_track = ours["cpu_per_track"], theirs["cpu_per_track"]
    ratio = baseline_per_track / per_track
    errors = []
    for name, f in (("ours", ours), ("baseline", theirs)):
        if f["silent_tracks"]:
            errors.append(f"{name}: {f['silent_tracks']} forwarded tracks got no frames")
    if not 0.9 <= ours["frames_received_ratio"] <= 1.1:
        errors.append(f"ours: video frames received ratio {ours['frames_received_ratio']}")
    warnings = [
        f"the baseline delivered {theirs[key]} of its {kind} frames: its server fell behind, "
        "so its CPU per track is an underestimate (the ratio is conservative)"
        for key, kind in (
            ("frames_received_ratio", "video"),
            ("audio_frames_received_ratio", "audio"),
        )
        if theirs[key] < 0.9
    ]
    warnings += late_warning(ours["client_late_frames_pct"])
    return {
        "bench": "media",
        "quick": args.quick,
        "cpu_per_track": round(per_track, 6),
        "cpu_per_track_baseline": round(baseline_per_track, 6),
        "ratio": round(ratio, 2),
        "hearings_per_core": round(1 / (per_track * TYPICAL_HEARING_TRACKS), 2),
        "baseline_hearings_per_core": round(1 / (baseline_per_track * TYPICAL_HEARING_TRACKS), 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "cpu_ms_per_s_per_track": round(1000 * per_track, 3),
        "baseline_cpu_ms_per_s_per_track": round(1000 * baseline_per_track, 3),
        "forwarded_tracks": ours["forwarded_tracks"],
        "baseline_forwarded_tracks": theirs["forwarded_tracks"],
        **cpu_comparison(ours, theirs),
        "frames_received_ratio": ours["frames_received_ratio"],
        "audio_frames_received_ratio": ours["audio_frames_received_ratio"],
        "baseline_frames_received_ratio": theirs["frames_received_ratio"],
        "baseline_audio_frames_received_ratio": theirs["audio_frames_received_ratio"],
        "client_late_frames_pct": ours["client_late_frames_pct"],
        "baseline_client_late_frames_pct": theirs["client_late_frames_pct"],
        "bitrate_kbps": clip_bitrates(clip),
        "delivered_kbps_per_track": ours["delivered_kbps_per_track"],
        "baseline_delivered_kbps_per_track": theirs["delivered_kbps_per_track"],
        # CPU ms per second per track in each block, in the order measured: the spread shows
        # how steady the host was.
        "blocks_ms_per_s_per_track": {"ours": ours["blocks"], "baseline": theirs["blocks"]},
        "hearings": plan.hearings,
        "participants": plan.participants,
        "baseline_hearings": plan.baseline_hearings,
        "baseline_participants": plan.baseline_participants,
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
    parser.add_argument("--participants", type=int, default=4, help="members per hearing")
    parser.add_argument(
        "--baseline-hearings", type=int, default=1, help="hearings of the aiortc relay"
    )
    parser.add_argument(
        "--baseline-participants", type=int, default=3, help="members of the relay's hearings"
    )
    add_run_arguments(parser, profile_help="cProfile our node in its blocks (to stderr)")
    args = parser.parse_args(argv)
    if min(args.participants, args.baseline_participants) < 2 or args.baseline_hearings < 1:
        parser.error("hearings need at least 2 participants, and the baseline one hearing")
    return run_bench(
        "media",
        args,
        serve=lambda: serve(args.serve, args.port, args.profile_to),
        run=lambda: run(args),
    )


if __name__ == "__main__":
    sys.exit(main())
