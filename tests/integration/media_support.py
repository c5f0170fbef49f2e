"""An aiortc client for the media node, speaking the browser's side of docs/signaling.md.

It answers the media node's offers exactly as room.js does (tracks attached to the ``publish``
mids, one offer at a time), and counts what it decodes per sender, from the offer's ``tracks``.
Decoding happens here, in the client: what arrives is proven by PyAV turning it into frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import (
    AudioStreamTrack,
    MediaStreamError,
    MediaStreamTrack,
    VideoStreamTrack,
)

from tests.integration.signaling_support import (
    WAIT_S,
    Court,
    Frame,
    Peer,
    room_pass,
    seed_court,
    serve_app,
    states,
)
from yunting.infra.db import Database
from yunting.infra.settings import Settings
from yunting.media.node import MediaNode
from yunting.web.app import create_app
from yunting.web.resources import AppResources

VIDEO_SIZE = (320, 240)


class TestPattern(VideoStreamTrack):
    """A small moving picture at 15 fps: cheap for the client to encode on a 2-core box."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    async def recv(self) -> av.VideoFrame:  # type: ignore[override]
        pts, _ = await self.next_timestamp()
        await asyncio.sleep(1 / 15 - 1 / 30)  # next_timestamp paces 30 fps; halve it
        width, height = VIDEO_SIZE
        frame = av.VideoFrame(width, height, "yuv420p")
        bar = (self.n * 4) % width
        row = bytes(255 if bar <= x < bar + 8 else 16 for x in range(width))
        self.n += 1
        for plane, fill in zip(frame.planes, (None, 128, 128), strict=True):
            if fill is None:
                plane.update(
                    row * height
                    if plane.line_size == width
                    else b"".join(row + bytes(plane.line_size - width) for _ in range(height))
                )
            else:
                plane.update(bytes([fill]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class MediaClient:
    """One participant's browser-side peer connection."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.pc: RTCPeerConnection | None = None
        self.offers: list[Frame] = []
        self.mapping: dict[str, tuple[str, str]] = {}  # mid -> (participant_id, kind)
        self.decoded: Counter[tuple[str, str]] = Counter()
        self.sizes: dict[str, tuple[int, int]] = {}
        self.first_frame_at: dict[tuple[str, str], float] = {}
        self.errors: list[Frame] = []
        self._queue: asyncio.Queue[Frame] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.publishing: list[MediaStreamTrack] = []
        peer.listeners.append(self._listen)
        self._tasks.append(asyncio.create_task(self._work()))

    def _listen(self, frame: Frame) -> None:
        if frame["type"] == "sdp_offer":
            self._queue.put_nowait(frame)
        elif frame["type"] == "error" and frame["code"].startswith("media"):
            self.errors.append(frame)

    async def start(self) -> None:
        await self.close_pc()
        # As browsers do with a BUNDLE offer: one transport (aiortc's default would give each
        # kind its own, and a video m-line added later would never be read).
        self.pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.pc.on("track", self._on_track)
        await self.peer.send({"type": "media_start"})

    async def _work(self) -> None:
        while True:
            offer = await self._queue.get()
            pc = self.pc
            if pc is None:
                continue
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
            publish = offer["publish"]
            for transceiver in pc.getTransceivers():
                kind = next((k for k in ("audio", "video") if publish[k] == transceiver.mid), None)
                if kind is not None and transceiver.sender.track is None:
                    track: MediaStreamTrack = (
                        TestPattern() if kind == "video" else AudioStreamTrack()
                    )
                    self.publishing.append(track)
                    transceiver.sender.replaceTrack(track)
                    transceiver.direction = "sendonly"
            self.mapping = {t["mid"]: (t["participant_id"], t["kind"]) for t in offer["tracks"]}
            self.offers.append(offer)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
            await self.peer.send({"type": "sdp_answer", "sdp": pc.localDescription.sdp})

    def _on_track(self, track: MediaStreamTrack) -> None:
        pc = self.pc
        assert pc is not None
        mid = next(t.mid for t in pc.getTransceivers() if t.receiver.track is track)
        self._tasks.append(asyncio.create_task(self._consume(track, mid or "")))

    async def _consume(self, track: MediaStreamTrack, mid: str) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                source = self.mapping.get(mid)
                if source is None:
                    continue
                self.decoded[source] += 1
                self.first_frame_at.setdefault(source, time.monotonic())
                if isinstance(frame, av.VideoFrame):
                    self.sizes[source[0]] = (frame.width, frame.height)

    def count(self, participant_id: Any, kind: str) -> int:
        return self.decoded[(str(participant_id), kind)]

    async def grows(
        self, participant_id: Any, kind: str, by: int = 5, within: float = WAIT_S
    ) -> bool:
        start = self.count(participant_id, kind)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.count(participant_id, kind) >= start + by:
                return True
            await asyncio.sleep(0.05)
        return False

    async def close_pc(self) -> None:
        if self.pc is not None:
            await self.pc.close()
            self.pc = None

    async def close(self) -> None:
        await self.close_pc()
        for task in self._tasks:
            task.cancel()


# A real server with the media node, and a court to hold hearings in ---------------------------

SECRET = "media-test-secret-0123456789abcdef-0123456789"
PASSWORD = "staff-password"


@dataclass
class Node:
    resources: AppResources
    ws: str
    court: Court
    http: httpx.AsyncClient

    @property
    def media(self) -> MediaNode:
        media = self.resources.media
        assert isinstance(media, MediaNode)
        return media

    async def enter(self, name: str, token: str | None = None) -> tuple[Peer, MediaClient]:
        if token is None:
            token = (await room_pass(self.http, "", self.court.hearing_id, name, PASSWORD))["token"]
        peer = await Peer.connect(self.ws, self.court.hearing_id, name)
        await peer.hello(token)
        return peer, MediaClient(peer)

    async def admit(self, judge: Peer, name: str) -> None:
        pid = str(self.court.ids[name])  # welcomed in the lobby already
        await judge.send({"type": "admit", "participant_id": pid})
        await judge.roster_where(lambda r: states(r).get(pid) == "in_hearing")


@contextlib.asynccontextmanager
async def media_node(database: Database, data_dir: Path, **settings: Any) -> AsyncIterator[Node]:
    """``yunting``'s app with the media node on loopback under real uvicorn, and a court."""
    app = create_app(
        Settings(
            database_url=database.url,
            data_dir=data_dir,
            secret_key=SECRET,  # type: ignore[arg-type]
            argon2_time_cost=1,
            argon2_memory_kib=1024,
            media_host_addresses=["127.0.0.1"],
            **settings,
        )
    )
    async with serve_app(app) as port:
        resources: AppResources = app.state.resources
        court = await seed_court(
            resources.hearings, resources.staff, now=resources.clock.now(), password=PASSWORD
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield Node(resources, f"ws://127.0.0.1:{port}", court, http)
