"""Cutting one published track into segments: sans-I/O, frames in, decisions out.

The recorder feeds every encoded frame of a track (``EncodedFrame`` from the media node's tap)
and carries out what comes back: open a segment file, write a frame at a timestamp, close the
file, ask the publisher for a keyframe. No file, clock or socket here; the tests drive it frame
by frame.

Rules, because each segment must be playable on its own:
- A video segment starts on a keyframe. Frames before the first keyframe are dropped (counted)
  and a keyframe is asked for; the publisher's answer opens the segment.
- A segment rotates at the first keyframe after ``segment_s``. A keyframe is asked for
  ``keyframe_lead_s`` before that, so that one arrives near the boundary instead of whenever
  the browser sends its next one (Chromium: minutes apart). If none comes, the segment grows
  and the request is repeated every ``keyframe_retry_s``; it is never cut without one.
- Audio (every Opus frame decodes on its own) rotates at the first frame after ``segment_s``.
- A keyframe with another resolution closes the segment and opens a new one with the new size
  (a WebM track's size is fixed; the manifest lists the change).
- Timestamps are the publisher's RTP timestamps, unwrapped past 2**32, relative to the
  segment's first frame, so lost frames leave a gap of the right length instead of shifting
  what follows. A publisher that restarts its stream (new SSRC) or whose timestamps jump by
  more than ``max_jump_s`` (or back) gets a new segment: the old timeline cannot hold it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from yunting.media.forwarding import EncodedFrame

_WRAP = 1 << 32
_HALF = 1 << 31


class CloseReason(StrEnum):
    ROTATE = "rotate"  # the segment reached its length
    RESOLUTION = "resolution"  # a keyframe of another size
    DISCONTINUITY = "discontinuity"  # new SSRC or a timestamp jump
    STOPPED = "stopped"  # the recording stopped (pause, suspend, close, the publisher left)


@dataclass(frozen=True, slots=True)
class OpenSegment:
    index: int  # 0, 1, ... per track
    width: int | None  # video only
    height: int | None
    # The first frame's capture time on the wall clock (RTCP sender report), if known, and the
    # media node's monotonic time when it arrived (the recorder maps it when the first is None).
    captured_at: float | None
    received_at: float


@dataclass(frozen=True, slots=True)
class WriteFrame:
    index: int
    pts: int  # clock-rate units since the segment's first frame
    data: bytes
    keyframe: bool


@dataclass(frozen=True, slots=True)
class CloseSegment:
    index: int
    reason: CloseReason
    duration: int  # clock-rate units: last frame's pts + its duration
    frames: int
    # The end on the wall clock through the sender report (None if never synced), and arrival.
    captured_end: float | None
    received_end: float
    # The first frame's capture time through the mapping known at the last frame: a publisher's
    # first sender report often comes after its first segment opened (Chromium sends one every
    # second or more), and arrival time is late by the network and the host's load.
    captured_start: float | None


@dataclass(frozen=True, slots=True)
class RequestKeyframe:
    pass


Decision = OpenSegment | WriteFrame | CloseSegment | RequestKeyframe


class _Unwrapper:
    """32-bit RTP timestamps as a growing integer (they wrap every 13 h of video at 90 kHz,
    every 24.8 h of audio, and start anywhere)."""

    __slots__ = ("_last", "_value")

    def __init__(self) -> None:
        self._last: int | None = None
        self._value = 0

    def reset(self) -> None:
        self._last = None

    def unwrap(self, timestamp: int) -> int:
        if self._last is None:
            self._value = timestamp
        else:
            delta = (timestamp - self._last) % _WRAP
            if delta >= _HALF:  # backwards
                delta -= _WRAP
            self._value += delta
        self._last = timestamp
        return self._value


@dataclass(slots=True)
class _Open:
    index: int
    size: tuple[int, int] | None
    first_ts: int
    last_ts: int
    last_delta: int
    frames: int
    last_captured: float | None
    last_received: float


class TrackSegmenter:
    """Segments of one track. ``feed`` each frame with the recorder's monotonic ``now``;
    ``stop`` when the recording stops."""

    def __init__(
        self,
        *,
        kind: str,
        clock_rate: int,
        segment_s: float = 10.0,
        keyframe_lead_s: float = 1.0,
        keyframe_retry_s: float = 1.0,
        max_jump_s: float = 5.0,
    ) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"unknown track kind {kind!r}")
        if segment_s <= 0 or keyframe_lead_s < 0 or keyframe_retry_s <= 0:
            raise ValueError("segment_s and keyframe_retry_s must be > 0, keyframe_lead_s >= 0")
        self.kind = kind
        self.clock_rate = clock_rate
        self._segment = round(segment_s * clock_rate)
        self._lead = round(keyframe_lead_s * clock_rate)
        self._retry_s = keyframe_retry_s
        self._max_jump = round(max_jump_s * clock_rate)
        self._unwrap = _Unwrapper()
        self._ssrc: int | None = None
        self._open: _Open | None = None
        self._next_index = 0
        self._asked_at: float | None = None
        self.dropped = 0  # frames before a keyframe: not in any segment

    @property
    def recording(self) -> bool:
        return self._open is not None

    def feed(self, frame: EncodedFrame, now: float) -> list[Decision]:
        out: list[Decision] = []
        if frame.ssrc != self._ssrc:
            if self._open is not None:
                out.append(self._close(CloseReason.DISCONTINUITY))
            self._ssrc = frame.ssrc
            self._unwrap.reset()
        ts = self._unwrap.unwrap(frame.rtp_timestamp)
        current = self._open
        if current is not None:
            step = ts - current.last_ts
            if step < 0 or step > self._max_jump:
                out.append(self._close(CloseReason.DISCONTINUITY))
                self._unwrap.reset()
                ts = self._unwrap.unwrap(frame.rtp_timestamp)
                current = None
            elif step == 0 and self.kind == "audio":
                return out  # a duplicate: nothing new to record
        video = self.kind == "video"
        if current is not None:
            length = ts - current.first_ts
            if video and frame.keyframe and frame.size is not None and frame.size != current.size:
                out.append(self._close(CloseReason.RESOLUTION))
                current = None
            elif length >= self._segment and (frame.keyframe or not video):
                out.append(self._close(CloseReason.ROTATE))
                current = None
            elif video and length >= self._segment - self._lead:
                out += self._ask(now)
        if current is None:
            if video and not frame.keyframe:
                self.dropped += 1
                return out + self._ask(now)
            current = self._start(frame, ts)
            out.append(
                OpenSegment(
                    index=current.index,
                    width=current.size[0] if current.size else None,
                    height=current.size[1] if current.size else None,
                    captured_at=frame.captured_at,
                    received_at=frame.received_at,
                )
            )
        else:
            step = ts - current.last_ts
            if step > 0:
                current.last_delta = step
            current.last_ts = ts
            current.frames += 1
        current.last_captured = frame.captured_at
        current.last_received = frame.received_at
        out.append(
            WriteFrame(
                index=current.index,
                pts=ts - current.first_ts,
                data=frame.data,
                keyframe=frame.keyframe,
            )
        )
        return out

    def stop(self) -> list[Decision]:
        """Close the open segment, if any; the next frame fed starts a new one (on a keyframe)."""
        self._asked_at = None
        if self._open is None:
            return []
        return [self._close(CloseReason.STOPPED)]

    # Internals ---------------------------------------------------------------------------------

    def _start(self, frame: EncodedFrame, ts: int) -> _Open:
        self._asked_at = None
        size = frame.size if self.kind == "video" else None
        current = _Open(
            index=self._next_index,
            size=size,
            first_ts=ts,
            last_ts=ts,
            # Until a second frame shows the real spacing: 20 ms audio, 1/30 s video.
            last_delta=self.clock_rate // (50 if self.kind == "audio" else 30),
            frames=1,
            last_captured=frame.captured_at,
            last_received=frame.received_at,
        )
        self._next_index += 1
        self._open = current
        return current

    def _close(self, reason: CloseReason) -> CloseSegment:
        current = self._open
        if current is None:
            raise RuntimeError("no open segment to close")
        self._open = None
        duration = current.last_ts - current.first_ts + current.last_delta
        captured_end = (
            current.last_captured + current.last_delta / self.clock_rate
            if current.last_captured is not None
            else None
        )
        return CloseSegment(
            index=current.index,
            reason=reason,
            duration=duration,
            frames=current.frames,
            captured_end=captured_end,
            received_end=current.last_received + current.last_delta / self.clock_rate,
            captured_start=(
                current.last_captured - (current.last_ts - current.first_ts) / self.clock_rate
                if current.last_captured is not None
                else None
            ),
        )

    def _ask(self, now: float) -> list[Decision]:
        if self._asked_at is not None and now - self._asked_at < self._retry_s:
            return []
        self._asked_at = now
        return [RequestKeyframe()]
