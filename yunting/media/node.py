"""The media node: one aiortc peer connection per participant, encoded frames forwarded as is.

Each participant's browser holds one RTCPeerConnection to us. Its microphone and camera arrive
on two receive-only transceivers (the "publish slots"); every other participant it may see is
sent on send-only transceivers (the "slots") fed by ``ForwardTrack``s. Frames are taken from
the publisher's receiver complete and still encoded (``hooks.TapJitterBuffer``) and handed to
each subscriber's sender as ``av.Packet``s, which aiortc packetizes without encoding. Nothing
is decoded or re-encoded on the way.

The node always makes the offers (docs/signaling.md, "Media negotiation"), one at a time per
peer: a change while an offer is out is folded into the next one. Who may publish and who sees
whom comes from signaling as ``MediaGrant``s; this module only enforces them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any, Protocol
from uuid import UUID

import av
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from yunting.infra.settings import IceServer
from yunting.media import hooks
from yunting.media.forwarding import (
    EncodedFrame,
    Forwarder,
    KeyframeThrottle,
    MediaKind,
    SenderReportClock,
)
from yunting.media.vp8 import is_keyframe, keyframe_size
from yunting.signaling.messages import (
    IceCandidate,
    MediaStart,
    MediaTrack,
    PublishSlots,
    SdpAnswer,
    SdpOffer,
)
from yunting.signaling.outputs import MediaGrant, MediaSignalMessage

logger = logging.getLogger(__name__)

KINDS: tuple[MediaKind, ...] = ("audio", "video")
CLOCK_RATE = {"audio": 48_000, "video": 90_000}
CODEC = {"audio": "opus", "video": "VP8"}
_TIME_BASE = {kind: Fraction(1, rate) for kind, rate in CLOCK_RATE.items()}


class ParticipantLink(Protocol):
    """Where the node's offers and failures go: signaling (``RoomHost``)."""

    async def media_to_participant(
        self, *, hearing_id: UUID, participant_id: UUID, message: SdpOffer
    ) -> None: ...

    async def media_failed(
        self, *, hearing_id: UUID, participant_id: UUID, detail: str
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """Whose track an ``EncodedFrame`` belongs to (what a tap is told with every frame)."""

    hearing_id: UUID
    participant_id: UUID
    kind: MediaKind
    codec: str


Tap = Callable[[TrackInfo, EncodedFrame], None]
SourceKey = tuple[UUID, MediaKind]


def _codec_preferences(transceiver: RTCRtpTransceiver) -> None:
    # Every publisher's codec must be one every subscriber negotiated: forwarding without
    # transcoding works only with one codec per kind (VP8 + its RTX, Opus).
    wanted = {"audio": ("audio/opus",), "video": ("video/VP8", "video/rtx")}[transceiver.kind]
    codecs = [
        c for c in RTCRtpSender.getCapabilities(transceiver.kind).codecs if c.mimeType in wanted
    ]
    transceiver.setCodecPreferences(codecs)


@dataclass(slots=True)
class _Item:
    frame: EncodedFrame
    packet: av.Packet[Any]

    @property
    def keyframe(self) -> bool:
        return self.frame.keyframe


class ForwardTrack(MediaStreamTrack):
    """What one subscriber slot sends: the frames of the publisher it currently points at."""

    def __init__(self, kind: MediaKind, hearing: HearingMedia) -> None:
        super().__init__()
        self.kind = kind
        self._hearing = hearing
        self.source: SourceKey | None = None
        self._frames: Forwarder[_Item] = Forwarder(gated=kind == "video")
        self._ready = asyncio.Event()

    def point_at(self, source: SourceKey | None) -> None:
        if source == self.source:
            return
        self._hearing.unsubscribe(self)
        self.source = source
        self._frames.restart()
        if source is not None:
            self._hearing.subscribe(self)
            self._hearing.request_keyframe(source)

    def deliver(self, item: _Item) -> bool:
        """Queue a frame for this subscriber; True when it needs a keyframe first."""
        need = self._frames.push(item)
        if len(self._frames):
            self._ready.set()
        return need

    def restart(self) -> None:
        self._frames.restart()

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        while True:
            item = self._frames.pop()
            if item is not None:
                return item.packet
            if self._frames.waiting and self.source is not None:
                # The subscriber is connected (aiortc's sender asks for frames only then) and
                # has nothing to show yet: make sure a keyframe is on its way.
                self._hearing.request_keyframe(self.source)
            self._ready.clear()
            await self._ready.wait()
            if self.readyState != "live":
                raise MediaStreamError

    def stop(self) -> None:
        self._hearing.unsubscribe(self)
        super().stop()
        self._ready.set()


class PublishedTrack:
    """One participant's microphone or camera as it arrives, fanned out to subscribers."""

    def __init__(
        self, *, hearing: HearingMedia, participant_id: UUID, kind: MediaKind, peer: Peer
    ) -> None:
        self.hearing = hearing
        self.key: SourceKey = (participant_id, kind)
        self.kind = kind
        self.peer = peer
        self.info = TrackInfo(hearing.hearing_id, participant_id, kind, CODEC[kind])
        self.clock = SenderReportClock(CLOCK_RATE[kind])
        self.throttle = KeyframeThrottle()
        self.ssrc: int | None = None
        self.enabled = False
        self.receiver: RTCRtpReceiver | None = None  # set by the peer with its transceiver
        self.frames_in = 0
        self.frames_forwarded = 0
        self.enabled_since: float | None = None  # monotonic; None while not forwarded

    def on_frame(self, data: bytes, rtp_timestamp: int, ssrc: int) -> None:
        self.ssrc = ssrc
        self.frames_in += 1
        if not self.enabled:
            return  # muted (or not allowed to publish): not forwarded, not recorded
        video = self.kind == "video"
        keyframe = is_keyframe(data) if video else True
        frame = EncodedFrame(
            kind=self.kind,
            codec=CODEC[self.kind],
            ssrc=ssrc,
            rtp_timestamp=rtp_timestamp,
            clock_rate=CLOCK_RATE[self.kind],
            data=data,
            keyframe=keyframe,
            size=keyframe_size(data) if video and keyframe else None,
            received_at=self.hearing.node.monotonic(),
            captured_at=self.clock.to_unix(rtp_timestamp),
        )
        subscribers = self.hearing.subscribers.get(self.key)
        if subscribers:
            # One packet for every subscriber: aiortc's senders only read it.
            packet = av.Packet(data)
            packet.pts = rtp_timestamp
            packet.time_base = _TIME_BASE[self.kind]
            item = _Item(frame, packet)
            need = False
            for track in subscribers:
                need = track.deliver(item) or need
            self.frames_forwarded += 1
            if need:
                self.request_keyframe()
        for tap in tuple(self.hearing.taps):
            try:
                tap(self.info, frame)
            except Exception:
                logger.exception(
                    "a media tap failed", extra={"hearing_id": str(self.info.hearing_id)}
                )

    def on_sender_report(self, ssrc: int, ntp: int, rtp: int) -> None:
        if self.ssrc is None or ssrc == self.ssrc:
            self.clock.update(ntp=ntp, rtp=rtp)

    def set_enabled(self, enabled: bool) -> None:
        if enabled and not self.enabled:
            # Frames after a gap refer to frames nobody got: everyone starts on a keyframe.
            for track in self.hearing.subscribers.get(self.key, ()):
                track.restart()
            self.enabled = True
            self.enabled_since = self.hearing.node.monotonic()
            self.request_keyframe()
        self.enabled = enabled
        if not enabled:
            self.enabled_since = None

    def request_keyframe(self) -> None:
        if self.kind != "video" or self.ssrc is None or self.receiver is None:
            return
        if self.throttle.due(self.hearing.node.monotonic()):
            self.peer.spawn(hooks.request_keyframe(self.receiver, self.ssrc))


class NegotiationState(StrEnum):
    NEW = "new"
    OFFERING = "offering"  # an offer is out; changes wait for its answer
    STABLE = "stable"
    CLOSED = "closed"


_NEGOTIATION_MOVES: dict[NegotiationState, frozenset[NegotiationState]] = {
    NegotiationState.NEW: frozenset({NegotiationState.OFFERING, NegotiationState.CLOSED}),
    NegotiationState.OFFERING: frozenset({NegotiationState.STABLE, NegotiationState.CLOSED}),
    NegotiationState.STABLE: frozenset({NegotiationState.OFFERING, NegotiationState.CLOSED}),
    NegotiationState.CLOSED: frozenset(),
}


@dataclass(slots=True)
class _Slot:
    transceiver: RTCRtpTransceiver
    track: ForwardTrack


@dataclass(slots=True)
class _Published:
    transceiver: RTCRtpTransceiver
    track: PublishedTrack


class Peer:
    """One participant's peer connection and its negotiation, one operation at a time."""

    def __init__(self, *, hearing: HearingMedia, participant_id: UUID, may_publish: bool) -> None:
        self.hearing = hearing
        self.participant_id = participant_id
        self.may_publish = may_publish
        node = hearing.node
        # max-bundle: every m-line on the first one's transport. aiortc's default (balanced)
        # gives each kind its own transport, and a video m-line added by a renegotiation then
        # lands on a transport that the answer bundled away and never starts (measured).
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=node.ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.state = NegotiationState.NEW
        self.dirty = False
        self.publish: dict[MediaKind, _Published] = {}
        self.slots: list[_Slot] = []
        self._candidates: list[IceCandidate] = []
        self._answered = False
        self._offered: tuple[tuple[SourceKey | None, str], ...] | None = None
        self._ops: asyncio.Queue[Callable[[], Awaitable[None]] | None] = asyncio.Queue()
        self._tasks: set[asyncio.Future[None]] = set()
        self._worker = asyncio.create_task(self._work(), name=f"media-peer-{participant_id}")
        # Since when ICE and DTLS are up (the node's monotonic clock), for the recorder's
        # watchdog: a connected publisher whose media stops arriving is a failure.
        self.connected_since: float | None = None
        self.pc.on("connectionstatechange", self._connection_changed)

    def _connection_changed(self) -> None:
        if self.pc.connectionState == "connected":
            if self.connected_since is None:
                self.connected_since = self.hearing.node.monotonic()
        else:
            self.connected_since = None

    # Serial operations -----------------------------------------------------------------------

    def run(self, op: Callable[[], Awaitable[None]]) -> None:
        if self.state is not NegotiationState.CLOSED:
            self._ops.put_nowait(op)

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _work(self) -> None:
        while (op := await self._ops.get()) is not None:
            if self.state is NegotiationState.CLOSED:
                continue
            try:
                await op()
            except Exception as e:
                logger.warning(
                    "media peer failed: %s",
                    e,
                    exc_info=True,
                    extra={"hearing_id": str(self.hearing.hearing_id)},
                )
                await self.hearing.node.fail(self, f"the media connection failed: {e}")

    def _move(self, to: NegotiationState) -> None:
        if to not in _NEGOTIATION_MOVES[self.state]:
            raise RuntimeError(f"negotiation cannot go {self.state} -> {to}")
        self.state = to

    # Set-up and negotiation ------------------------------------------------------------------

    async def start(self) -> None:
        if self.may_publish:
            for kind in KINDS:
                transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                _codec_preferences(transceiver)
                track = PublishedTrack(
                    hearing=self.hearing, participant_id=self.participant_id, kind=kind, peer=self
                )
                track.receiver = transceiver.receiver
                hooks.tap_receiver(
                    transceiver.receiver,
                    video=kind == "video",
                    on_frame=track.on_frame,
                    on_sender_report=track.on_sender_report,
                )
                self.publish[kind] = _Published(transceiver, track)
                self.hearing.publish(track)
        await self.renegotiate()

    async def renegotiate(self) -> None:
        if self.state is NegotiationState.OFFERING:
            self.dirty = True  # folded into the offer after this one is answered
            return
        wanted = self.hearing.sources_for(self.participant_id)
        for used in self.slots:
            if used.track.source not in wanted:
                used.track.point_at(None)
                used.transceiver.direction = "inactive"
        present = {slot.track.source for slot in self.slots}
        for source in wanted:
            if source in present:
                continue
            kind = source[1]
            slot = next(
                (s for s in self.slots if s.track.source is None and s.track.kind == kind), None
            )
            if slot is None:
                track = ForwardTrack(kind, self.hearing)
                transceiver = self.pc.addTransceiver(track, direction="sendonly")
                _codec_preferences(transceiver)
                hooks.on_keyframe_request(transceiver.sender, self._keyframe_asked(track))
                slot = _Slot(transceiver, track)
                self.slots.append(slot)
            slot.transceiver.direction = "sendonly"
            slot.track.point_at(source)
        if self.state is NegotiationState.STABLE and not self._changed():
            return
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        self._move(NegotiationState.OFFERING)
        self._offered = self._shape()
        await self.hearing.node.link.media_to_participant(
            hearing_id=self.hearing.hearing_id,
            participant_id=self.participant_id,
            message=SdpOffer(
                sdp=self.pc.localDescription.sdp,
                tracks=[
                    MediaTrack(
                        mid=s.transceiver.mid or "",
                        participant_id=s.track.source[0],
                        kind=s.track.kind,
                    )
                    for s in self.slots
                    if s.track.source is not None
                ],
                publish=PublishSlots(
                    audio=self.publish["audio"].transceiver.mid
                    if "audio" in self.publish
                    else None,
                    video=self.publish["video"].transceiver.mid
                    if "video" in self.publish
                    else None,
                ),
            ),
        )

    def _shape(self) -> tuple[tuple[SourceKey | None, str], ...]:
        return tuple((s.track.source, s.transceiver.direction) for s in self.slots)

    def _changed(self) -> bool:
        return self._shape() != self._offered

    async def apply_answer(self, answer: SdpAnswer) -> None:
        if self.state is not NegotiationState.OFFERING:
            await self.hearing.node.link.media_failed(
                hearing_id=self.hearing.hearing_id,
                participant_id=self.participant_id,
                detail="no offer is waiting for an answer; ignored",
            )
            return
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        self._move(NegotiationState.STABLE)
        self._answered = True
        candidates, self._candidates = self._candidates, []
        for candidate in candidates:
            await self.add_candidate(candidate)
        if self.dirty:
            self.dirty = False
            await self.renegotiate()

    async def add_candidate(self, message: IceCandidate) -> None:
        if not message.candidate:
            return  # end of candidates: aiortc needs no marker
        if not self._answered:
            self._candidates.append(message)  # before the first answer: keep for later
            return
        text = message.candidate
        candidate = candidate_from_sdp(
            text.split(":", 1)[1] if text.startswith("candidate:") else text
        )
        candidate.sdpMid = message.sdp_mid
        candidate.sdpMLineIndex = message.sdp_mline_index
        await self.pc.addIceCandidate(candidate)

    def _keyframe_asked(self, track: ForwardTrack) -> Callable[[], None]:
        def asked() -> None:
            if track.source is not None:
                track.restart()
                self.hearing.request_keyframe(track.source)

        return asked

    async def close(self) -> None:
        if self.state is NegotiationState.CLOSED:
            return
        self._move(NegotiationState.CLOSED)
        for published in self.publish.values():
            self.hearing.unpublish(published.track)
        for slot in self.slots:
            slot.track.stop()
        self._ops.put_nowait(None)
        with contextlib.suppress(Exception):
            await self.pc.close()
        for task in list(self._tasks):
            task.cancel()
        if self._worker is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker


@dataclass(eq=False)
class HearingMedia:
    """One hearing's peers, published tracks, who receives whom, and the taps (recording)."""

    node: MediaNode
    hearing_id: UUID
    peers: dict[UUID, Peer] = field(default_factory=dict)
    grants: dict[UUID, MediaGrant] = field(default_factory=dict)
    published: dict[SourceKey, PublishedTrack] = field(default_factory=dict)
    subscribers: dict[SourceKey, set[ForwardTrack]] = field(default_factory=dict)
    taps: list[Tap] = field(default_factory=list)

    def sources_for(self, participant_id: UUID) -> list[SourceKey]:
        grant = self.grants.get(participant_id)
        if grant is None:
            return []
        return [(pid, kind) for pid in sorted(grant.subscribe_to) for kind in KINDS]

    def publish(self, track: PublishedTrack) -> None:
        self.published[track.key] = track
        grant = self.grants.get(track.key[0])
        track.set_enabled(grant is not None and self._allowed(grant, track.kind))

    def unpublish(self, track: PublishedTrack) -> None:
        if self.published.get(track.key) is track:
            del self.published[track.key]

    def subscribe(self, track: ForwardTrack) -> None:
        if track.source is not None:
            self.subscribers.setdefault(track.source, set()).add(track)

    def unsubscribe(self, track: ForwardTrack) -> None:
        if track.source is not None:
            tracks = self.subscribers.get(track.source)
            if tracks is not None:
                tracks.discard(track)
                if not tracks:
                    del self.subscribers[track.source]

    def request_keyframe(self, source: SourceKey) -> None:
        published = self.published.get(source)
        if published is not None:
            published.request_keyframe()

    @staticmethod
    def _allowed(grant: MediaGrant, kind: MediaKind) -> bool:
        return grant.may_publish and (
            grant.publish_audio if kind == "audio" else grant.publish_video
        )

    def empty(self) -> bool:
        return not self.peers and not self.grants and not self.taps


class MediaNode:
    """``MediaPort`` for signaling: peers created on ``media_start``, grants enforced, peers
    torn down on release. Calls from signaling return at once (the room's actor awaits them);
    the work happens on each peer's own task."""

    def __init__(
        self,
        *,
        ice_servers: list[IceServer],
        host_addresses: list[str],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        hooks.check_aiortc()
        hooks.use_host_addresses(host_addresses)
        self.ice_servers = [
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
            for s in ice_servers
        ]
        self.monotonic = monotonic
        self.hearings: dict[UUID, HearingMedia] = {}
        self._link: ParticipantLink | None = None

    def bind(self, link: ParticipantLink) -> None:
        self._link = link

    @property
    def link(self) -> ParticipantLink:
        if self._link is None:
            raise RuntimeError("the media node is not bound to signaling")
        return self._link

    def _hearing(self, hearing_id: UUID) -> HearingMedia:
        hearing = self.hearings.get(hearing_id)
        if hearing is None:
            hearing = self.hearings[hearing_id] = HearingMedia(self, hearing_id)
        return hearing

    def _forget_if_empty(self, hearing: HearingMedia) -> None:
        if hearing.empty() and self.hearings.get(hearing.hearing_id) is hearing:
            del self.hearings[hearing.hearing_id]

    # MediaPort ----------------------------------------------------------------------------------

    async def signal(
        self, *, hearing_id: UUID, participant_id: UUID, message: MediaSignalMessage
    ) -> None:
        hearing = self._hearing(hearing_id)
        if isinstance(message, MediaStart):
            old = hearing.peers.pop(participant_id, None)
            if old is not None:
                old.spawn(old.close())
            grant = hearing.grants.get(participant_id)
            peer = Peer(
                hearing=hearing,
                participant_id=participant_id,
                may_publish=grant is not None and grant.may_publish,
            )
            hearing.peers[participant_id] = peer
            peer.run(peer.start)
            return
        current = hearing.peers.get(participant_id)
        if current is None:
            await self.link.media_failed(
                hearing_id=hearing_id,
                participant_id=participant_id,
                detail="no media connection: send media_start first",
            )
            return
        if isinstance(message, SdpAnswer):
            current.run(lambda: current.apply_answer(message))
        else:
            current.run(lambda: current.add_candidate(message))

    async def grant(self, *, hearing_id: UUID, grant: MediaGrant) -> None:
        hearing = self._hearing(hearing_id)
        old = hearing.grants.get(grant.participant_id)
        hearing.grants[grant.participant_id] = grant
        for kind in KINDS:
            published = hearing.published.get((grant.participant_id, kind))
            if published is not None:
                published.set_enabled(hearing._allowed(grant, kind))
        peer = hearing.peers.get(grant.participant_id)
        if peer is not None and (old is None or old.subscribe_to != grant.subscribe_to):
            peer.run(peer.renegotiate)

    async def release(self, *, hearing_id: UUID, participant_id: UUID) -> None:
        hearing = self.hearings.get(hearing_id)
        if hearing is None:
            return
        hearing.grants.pop(participant_id, None)
        peer = hearing.peers.pop(participant_id, None)
        if peer is not None:
            await peer.close()
        self._forget_if_empty(hearing)

    # For the recording and tests ----------------------------------------------------------------

    def add_tap(self, hearing_id: UUID, tap: Tap) -> Callable[[], None]:
        """Call ``tap`` with every frame forwarded in the hearing (muted media is not), on the
        event loop, synchronously: keep it short (queue the work). Returns the remover."""
        hearing = self._hearing(hearing_id)
        hearing.taps.append(tap)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                hearing.taps.remove(tap)
            self._forget_if_empty(hearing)

        return remove

    def live_tracks(self, hearing_id: UUID) -> dict[tuple[UUID, str], float]:
        """Published tracks whose media should be arriving now: the publisher's connection is
        up and the track is forwarded (allowed, not muted), with the monotonic time since when
        both have been true. The recorder's watchdog expects frames from each."""
        hearing = self.hearings.get(hearing_id)
        if hearing is None:
            return {}
        live: dict[tuple[UUID, str], float] = {}
        for (participant_id, kind), track in hearing.published.items():
            connected = track.peer.connected_since
            if connected is None or track.enabled_since is None:
                continue
            if hearing.peers.get(participant_id) is not track.peer:
                continue
            live[(participant_id, kind)] = max(connected, track.enabled_since)
        return live

    def request_keyframe(self, hearing_id: UUID, participant_id: UUID) -> None:
        hearing = self.hearings.get(hearing_id)
        if hearing is not None:
            hearing.request_keyframe((participant_id, "video"))

    async def fail(self, peer: Peer, detail: str) -> None:
        hearing = peer.hearing
        if hearing.peers.get(peer.participant_id) is peer:
            del hearing.peers[peer.participant_id]
        await peer.close()
        with contextlib.suppress(Exception):
            await self.link.media_failed(
                hearing_id=hearing.hearing_id, participant_id=peer.participant_id, detail=detail
            )

    async def stop(self) -> None:
        peers = [p for h in self.hearings.values() for p in h.peers.values()]
        self.hearings.clear()
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)
