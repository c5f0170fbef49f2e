"""The forwarding policy, sans-I/O: frames in, frames out, and when to ask for a keyframe.

No sockets, no aiortc, no clock of its own (``now`` is passed in), so every rule is unit-tested
frame by frame (tests/unit/media/test_forwarding.py).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

MediaKind = Literal["audio", "video"]

# NTP (RFC 5905) counts from 1900-01-01; Unix time from 1970-01-01.
_NTP_UNIX_OFFSET_S = 2_208_988_800
_HALF = 1 << 31
_WRAP = 1 << 32


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One complete encoded frame of a published track, as its publisher sent it.

    ``rtp_timestamp`` is the publisher's own 32-bit RTP timestamp (it wraps); ``captured_at`` is
    that timestamp on the wall clock (Unix seconds) through the publisher's latest RTCP sender
    report, None until the first report arrives. Audio frames are all "keyframes" (Opus frames
    decode on their own).
    """

    kind: MediaKind
    codec: str  # "VP8" or "opus"
    ssrc: int  # the publisher's media SSRC (never its RTX SSRC)
    rtp_timestamp: int
    clock_rate: int
    data: bytes
    keyframe: bool
    size: tuple[int, int] | None  # (width, height) of a video keyframe
    received_at: float  # the media node's monotonic clock when the frame was complete
    captured_at: float | None


def ntp_to_unix(ntp: int) -> float:
    """A 64-bit NTP timestamp (32.32 fixed point) as Unix seconds."""
    return (ntp >> 32) - _NTP_UNIX_OFFSET_S + (ntp & 0xFFFFFFFF) / _WRAP


def rtp_delta(later: int, earlier: int) -> int:
    """``later - earlier`` for 32-bit RTP timestamps, across a wrap-around (RFC 3550 5.1)."""
    return ((later - earlier + _HALF) % _WRAP) - _HALF


class SenderReportClock:
    """Maps a publisher's RTP timestamps to the wall clock with its latest sender report."""

    __slots__ = ("_ntp_unix", "_rtp", "clock_rate")

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self._ntp_unix: float | None = None
        self._rtp = 0

    def update(self, *, ntp: int, rtp: int) -> None:
        self._ntp_unix = ntp_to_unix(ntp)
        self._rtp = rtp

    @property
    def synced(self) -> bool:
        return self._ntp_unix is not None

    def to_unix(self, rtp: int) -> float | None:
        if self._ntp_unix is None:
            return None
        return self._ntp_unix + rtp_delta(rtp, self._rtp) / self.clock_rate


class KeyframeThrottle:
    """At most one keyframe request per ``interval_s`` to a publisher: a burst of viewers
    joining, or one viewer's decoder complaining every frame, must not flood it (every keyframe
    costs the publisher's whole upstream bitrate for a moment)."""

    __slots__ = ("_last", "interval_s")

    def __init__(self, interval_s: float = 0.3) -> None:
        self.interval_s = interval_s
        self._last: float | None = None

    def due(self, now: float) -> bool:
        if self._last is not None and now - self._last < self.interval_s:
            return False
        self._last = now
        return True


class _Keyed(Protocol):
    @property
    def keyframe(self) -> bool: ...


T = TypeVar("T", bound=_Keyed)


class Forwarder(Generic[T]):
    """One published track's frames on their way to one subscriber.

    Video starts on a keyframe: a decoder fed delta frames without the keyframe they refer to
    shows garbage or nothing, so until a keyframe arrives every frame is dropped and ``push``
    says one is needed. The backlog is bounded: a subscriber whose sender falls behind loses
    its backlog and waits for the next keyframe instead of growing memory.
    """

    __slots__ = ("_backlog", "gated", "max_backlog", "waiting")

    def __init__(self, *, gated: bool, max_backlog: int = 60) -> None:
        self.gated = gated
        self.max_backlog = max_backlog
        self.waiting = gated
        self._backlog: deque[T] = deque()

    def push(self, item: T) -> bool:
        """Queue ``item`` (or drop it); True when a keyframe should be requested."""
        if len(self._backlog) >= self.max_backlog:
            self._backlog.clear()
            self.waiting = self.gated
        if self.waiting:
            if not item.keyframe:
                return True
            self.waiting = False
        self._backlog.append(item)
        return False

    def pop(self) -> T | None:
        return self._backlog.popleft() if self._backlog else None

    def restart(self) -> None:
        """Forget the backlog and start again on a keyframe (new source, or after a gap such
        as a mute: the frames after it refer to frames this subscriber never got)."""
        self._backlog.clear()
        self.waiting = self.gated

    def __len__(self) -> int:
        return len(self._backlog)
