"""The playback composite of a closed hearing: one WebM with a grid of every participant's
video and the mix of every audio track, on the wall clock of the manifest.

The per-track segments stay the record; this file is only a convenience for watching the
hearing back, so here (unlike in the recorder) frames are decoded and encoded again.

The render streams along the timeline, one output video frame (and its slice of audio) at a
time. Each track keeps one open segment and one decoded frame; a track's next segment is only
opened when the timeline reaches it. Memory therefore grows with the number of tracks, never
with the length of the hearing.

Blocking (decoding, encoding, fsync): the job runs ``render_composite`` in a thread.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any
from uuid import UUID

import av
import numpy as np
import numpy.typing as npt

from yunting.infra.storage import fsync_dir, sha256_of_file

logger = logging.getLogger(__name__)

PART_SUFFIX = ".part"
SAMPLE_RATE = 48_000

# yuv420p black in limited ("TV") range, which is what VP8 from browsers and libvpx use.
_BLACK_Y, _BLACK_C = 16, 128
# A decoded frame whose time is within this of an output frame's time counts as due: float
# sums of segment offsets and pts must not push a frame one output frame late.
_EPSILON_S = 1e-6
# Consecutive Opus frames are laid end to end. Only a jump larger than this (a lost 20 ms
# packet, kept as a hole by the segment writer) moves the track's audio to the frame's pts.
# Smaller disagreements would only click: the first frame of a segment comes out 312 samples
# short (the OpusHead pre-skip) yet the next one's pts is a whole 960 on.
_AUDIO_JUMP = SAMPLE_RATE // 100
_AUDIO_BIT_RATE = 64_000

_Plane = npt.NDArray[np.uint8]
_Samples = npt.NDArray[np.float32]


class CompositeError(Exception):
    """The composite could not be rendered: a segment is missing or does not decode, the
    manifest is inconsistent, or the output could not be written. No output is left behind."""


@dataclass(frozen=True, slots=True)
class SegmentSource:
    path: Path
    started_at: datetime  # wall clock (UTC) of the segment's first frame
    ended_at: datetime


@dataclass(frozen=True, slots=True)
class TrackSource:
    participant_id: UUID
    label: str  # e.g. "张法官 · judge"; not drawn (there is no font renderer here)
    kind: str  # "audio" | "video"
    segments: tuple[SegmentSource, ...]


@dataclass(frozen=True, slots=True)
class CompositeResult:
    path: Path
    size: int
    sha256: str
    duration_s: float
    video_frames: int
    audio_samples: int


@dataclass(frozen=True, slots=True)
class Rect:
    x: int
    y: int
    width: int
    height: int


def _even(value: float) -> int:
    """Round down to an even integer: yuv420p chroma covers 2x2 pixels, so a cell that starts
    or ends on an odd pixel would bleed half a chroma sample into its neighbour."""
    whole = math.floor(value)
    return whole - whole % 2


def grid_layout(count: int, width: int, height: int) -> list[Rect]:
    """One 16:9 cell per participant, in order, in a near-square grid filling ``width`` x
    ``height``: 1 is the whole picture, 2 side by side, 3-4 in 2x2, 5-6 in 3x2, 7-9 in 3x3...
    Cells are letterboxed in their share of the picture and an incomplete last row is centred.
    All coordinates and sizes are even."""
    if count < 0:
        raise ValueError(f"expected a count >= 0, got {count}")
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise ValueError(f"expected an even width and height >= 2, got {width}x{height}")
    if count == 0:
        return []
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    share_w, share_h = width / cols, height / rows
    cell_w = _even(min(share_w, share_h * 16 / 9))
    cell_h = _even(min(share_h, cell_w * 9 / 16))
    if cell_w < 2 or cell_h < 2:
        raise ValueError(f"{count} cells do not fit in {width}x{height}")
    rects = []
    for index in range(count):
        row, col = divmod(index, cols)
        in_row = min(cols, count - row * cols)
        left = (width - in_row * share_w) / 2  # centres a short last row
        rects.append(
            Rect(
                x=_even(left + col * share_w + (share_w - cell_w) / 2),
                y=_even(row * share_h + (share_h - cell_h) / 2),
                width=cell_w,
                height=cell_h,
            )
        )
    return rects


def fit_rect(width: int, height: int, cell: Rect) -> Rect:
    """Where a ``width`` x ``height`` picture goes in ``cell``: as large as fits with its
    aspect ratio kept, centred (pillarbox or letterbox), even coordinates and size."""
    scale = min(cell.width / width, cell.height / height)
    w = max(2, min(cell.width, _even(width * scale + 1)))  # +1: round to the nearest even
    h = max(2, min(cell.height, _even(height * scale + 1)))
    return Rect(
        x=cell.x + _even((cell.width - w) / 2),
        y=cell.y + _even((cell.height - h) / 2),
        width=w,
        height=h,
    )


def _planes(frame: av.VideoFrame) -> list[_Plane]:
    """Writable views of a yuv420p frame's planes, without the line padding."""
    return [
        np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)[
            : plane.height, : plane.width
        ]
        for plane in frame.planes
    ]


@dataclass(frozen=True, slots=True)
class _Span:
    """A segment on the timeline: seconds from the composite's start."""

    path: Path
    start: float
    end: float


def _video_frames(
    spans: Sequence[_Span],
) -> Generator[tuple[float, int, av.VideoFrame], None, None]:
    """(timeline seconds, span index, frame) of every frame, segment after segment; a segment
    is opened only when the previous one is used up."""
    for index, span in enumerate(spans):
        try:
            with av.open(str(span.path)) as container:
                if not container.streams.video:
                    raise CompositeError(f"segment {span.path} has no video stream")
                stream = container.streams.video[0]
                for frame in container.decode(stream):
                    yield span.start + (frame.time or 0.0), index, frame
        except (OSError, av.FFmpegError, ValueError) as e:
            raise CompositeError(f"cannot decode video segment {span.path}: {e}") from e


class _VideoCell:
    """One participant's cell: which picture it shows at a time on the timeline."""

    def __init__(self, spans: Sequence[_Span], cell: Rect) -> None:
        self.cell = cell
        self._spans = spans
        self._frames = _video_frames(spans)
        self._pending: tuple[float, int, av.VideoFrame] | None = None
        self._current: tuple[int, av.VideoFrame] | None = None
        self._scaled: tuple[Rect, list[_Plane]] | None = None

    def picture_at(self, t: float) -> tuple[Rect, list[_Plane]] | None:
        """The latest frame due by ``t``, scaled into the cell, or None (black) when ``t``
        is outside the segment that frame belongs to."""
        while True:
            if self._pending is None:
                self._pending = next(self._frames, None)
                if self._pending is None:
                    break
            at, index, frame = self._pending
            if at > t + _EPSILON_S:
                break
            self._current, self._pending, self._scaled = (index, frame), None, None
        if self._current is None:
            return None
        index, frame = self._current
        span = self._spans[index]
        if not span.start - _EPSILON_S <= t < span.end - _EPSILON_S:
            return None
        if self._scaled is None:
            # Only frames that are shown get scaled: a 30 fps camera in a 15 fps composite
            # costs half its scaling, a frame held for seconds costs one.
            place = fit_rect(frame.width, frame.height, self.cell)
            if (frame.width, frame.height, frame.format.name) != (
                place.width,
                place.height,
                "yuv420p",
            ):
                frame = frame.reformat(width=place.width, height=place.height, format="yuv420p")
            self._scaled = (place, _planes(frame))
        return self._scaled

    def close(self) -> None:
        self._frames.close()  # closes an open segment now, not when collected


def _mono(frame: av.AudioFrame) -> _Samples:
    planes = np.asarray(frame.to_ndarray(), dtype=np.float32)  # fltp: no copy
    mono: _Samples = planes[0] if len(planes) == 1 else planes.mean(axis=0, dtype=np.float32)
    return mono


def _audio_chunks(spans: Sequence[_Span]) -> Generator[tuple[int, _Samples], None, None]:
    """(timeline sample, mono float samples at 48 kHz) of a track, segment after segment."""
    for span in spans:
        try:
            with av.open(str(span.path)) as container:
                if not container.streams.audio:
                    raise CompositeError(f"segment {span.path} has no audio stream")
                stream = container.streams.audio[0]
                # Channels are kept and averaged below: libswresample's stereo downmix adds
                # them at -3 dB each, which makes the (usual) mono-in-stereo voice 3 dB louder.
                resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)
                origin = round(span.start * SAMPLE_RATE)
                position: int | None = None
                for frame in container.decode(stream):
                    if frame.time is not None:
                        expected = origin + round(frame.time * SAMPLE_RATE)
                        if position is None or abs(expected - position) > _AUDIO_JUMP:
                            position = expected
                    elif position is None:
                        position = origin
                    for out in resampler.resample(frame):
                        samples = _mono(out)
                        yield position, samples
                        position += len(samples)
                if position is None:
                    continue  # no frame at all
                for out in resampler.resample(None):
                    samples = _mono(out)
                    yield position, samples
                    position += len(samples)
        except (OSError, av.FFmpegError, ValueError) as e:
            raise CompositeError(f"cannot decode audio segment {span.path}: {e}") from e


class _AudioTrack:
    def __init__(self, spans: Sequence[_Span]) -> None:
        self._chunks = _audio_chunks(spans)
        self._pending: tuple[int, _Samples] | None = None

    def add_into(self, mix: _Samples, start: int) -> None:
        """Add this track's samples for ``start`` .. ``start + len(mix)`` into ``mix``."""
        end = start + len(mix)
        while True:
            if self._pending is None:
                self._pending = next(self._chunks, None)
                if self._pending is None:
                    return
            at, samples = self._pending
            if at >= end:
                return
            lo, hi = max(at, start), min(at + len(samples), end)
            if hi > lo:
                mix[lo - start : hi - start] += samples[lo - at : hi - at]
            if at + len(samples) > end:
                return  # the rest belongs to the next slice
            self._pending = None

    def close(self) -> None:
        self._chunks.close()


def _check(
    tracks: Sequence[TrackSource],
    started_at: datetime,
    ended_at: datetime,
    width: int,
    height: int,
    fps: int,
) -> None:
    if started_at.tzinfo is None or ended_at.tzinfo is None:
        raise CompositeError("expected timezone-aware started_at and ended_at")
    if ended_at <= started_at:
        raise CompositeError(f"expected ended_at after started_at, got {started_at}..{ended_at}")
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise CompositeError(f"expected an even width and height >= 2, got {width}x{height}")
    if fps < 1:
        raise CompositeError(f"expected fps >= 1, got {fps}")
    for track in tracks:
        if track.kind not in ("audio", "video"):
            raise CompositeError(f"expected track kind audio or video, got {track.kind!r}")
        for segment in track.segments:
            if segment.started_at.tzinfo is None or segment.ended_at.tzinfo is None:
                raise CompositeError(f"segment {segment.path} has timezone-naive times")
            if segment.ended_at < segment.started_at:
                raise CompositeError(
                    f"segment {segment.path} ends before it starts "
                    f"({segment.started_at}..{segment.ended_at})"
                )
            # Fail before hours of rendering, not at the end of them.
            if not segment.path.is_file():
                raise CompositeError(f"segment {segment.path} is missing")


def _spans(segments: Sequence[SegmentSource], started_at: datetime, duration: float) -> list[_Span]:
    spans = [
        _Span(
            path=s.path,
            start=(s.started_at - started_at).total_seconds(),
            end=(s.ended_at - started_at).total_seconds(),
        )
        for s in sorted(segments, key=lambda s: s.started_at)
    ]
    # Segments wholly outside the timeline are never opened.
    return [s for s in spans if s.end > 0 and s.start < duration]


def _video_bit_rate(width: int, height: int, fps: int) -> int:
    # About 0.07 bit per pixel per frame: ~1 Mbit/s at 1280x720, 15 fps, plenty for talking
    # heads; the floor keeps small test renders from turning to mush.
    return max(200_000, round(width * height * fps * 0.07))


def render_composite(
    *,
    tracks: Sequence[TrackSource],
    output: Path,
    started_at: datetime,
    ended_at: datetime,
    width: int = 1280,
    height: int = 720,
    fps: int = 15,
    progress: Callable[[float], None] | None = None,
) -> CompositeResult:
    """Render ``tracks`` from ``started_at`` to ``ended_at`` into ``output`` (WebM, VP8 +
    Opus 48 kHz mono). Times outside every segment of a track are black or silence.

    The file appears under its name only when complete and on disk; on any failure it (and
    its ``.part``) is gone and ``CompositeError`` says why, naming the segment at fault.
    ``progress`` gets fractions of the timeline done, rising, the last one 1.0 once the file
    is in place; whatever it raises (a job cancelling the render) stops it and is re-raised.
    """
    _check(tracks, started_at, ended_at, width, height, fps)
    duration = (ended_at - started_at).total_seconds()
    frame_count = max(1, round(duration * fps))

    # One cell per participant: a participant who republished has their tracks in one cell.
    videos: dict[UUID, list[SegmentSource]] = {}
    for track in tracks:
        if track.kind == "video":
            videos.setdefault(track.participant_id, []).extend(track.segments)
    # Someone with no picture on this timeline gets no cell, rather than a black one.
    pictures = [s for s in (_spans(v, started_at, duration) for v in videos.values()) if s]
    try:
        layout = grid_layout(len(pictures), width, height)
    except ValueError as e:
        raise CompositeError(str(e)) from e
    cells = [_VideoCell(spans, rect) for spans, rect in zip(pictures, layout, strict=True)]
    audios = [
        _AudioTrack(_spans(t.segments, started_at, duration)) for t in tracks if t.kind == "audio"
    ]

    part = output.with_name(output.name + PART_SUFFIX)
    container: Any = None
    renamed = False
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(str(part), "w", format="webm")
        video = container.add_stream(
            "libvpx",
            rate=fps,
            options={
                # Realtime at libvpx's fastest speed: the composite is for watching, not the
                # record. Measured on 2 cores: half the encoding time of cpu-used 8, and no
                # lower PSNR on a synthetic 3-person grid at this bit rate.
                "deadline": "realtime",
                "cpu-used": "16",
                "lag-in-frames": "0",
            },
        )
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.bit_rate = _video_bit_rate(width, height, fps)
        video.codec_context.gop_size = 2 * fps  # a keyframe every 2 s: seeking stays quick
        # One thread: libvpx's VP8 encoder threads spin-wait on each other, and on a busy
        # 2-core host (the live hearings run there too) two threads took 2.4x as long as
        # one.
        video.codec_context.thread_count = 1
        audio = container.add_stream("libopus", rate=SAMPLE_RATE, layout="mono")
        audio.bit_rate = _AUDIO_BIT_RATE
        audio.format = "flt"  # what the mix is: no conversion on the way in

        audio_samples = 0
        for k in range(frame_count):
            t = k / fps
            frame = av.VideoFrame(width, height, "yuv420p")
            y, u, v = _planes(frame)
            y.fill(_BLACK_Y)
            u.fill(_BLACK_C)
            v.fill(_BLACK_C)
            for cell in cells:
                picture = cell.picture_at(t)
                if picture is None:
                    continue
                place, (py, pu, pv) = picture
                y[place.y : place.y + place.height, place.x : place.x + place.width] = py
                cy, cx, ch, cw = place.y // 2, place.x // 2, place.height // 2, place.width // 2
                u[cy : cy + ch, cx : cx + cw] = pu
                v[cy : cy + ch, cx : cx + cw] = pv
            frame.pts = k
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))

            # The audio of this video frame's interval; integer bounds so no sample is lost
            # or doubled when 48 000 / fps is not whole.
            first = k * SAMPLE_RATE // fps
            mix = np.zeros((k + 1) * SAMPLE_RATE // fps - first, np.float32)
            for source in audios:
                source.add_into(mix, first)
            # Clip, never wrap: two loud voices at once saturate instead of turning to noise.
            np.clip(mix, -1.0, 1.0, out=mix)
            sound = av.AudioFrame.from_ndarray(mix.reshape(1, -1), format="flt", layout="mono")
            sound.sample_rate = SAMPLE_RATE
            sound.pts = first
            sound.time_base = Fraction(1, SAMPLE_RATE)
            container.mux(audio.encode(sound))
            audio_samples += len(mix)

            if progress is not None and k % fps == 0:
                progress(k / frame_count)

        container.mux(video.encode(None))
        container.mux(audio.encode(None))
        container.close()
        container = None
        with part.open("rb+") as f:
            os.fsync(f.fileno())
        size = part.stat().st_size
        sha256 = sha256_of_file(part)
        os.replace(part, output)
        renamed = True
        fsync_dir(output.parent)
    except BaseException as e:
        if container is not None:
            with contextlib.suppress(OSError, av.FFmpegError, ValueError):
                container.close()
        with contextlib.suppress(OSError):
            part.unlink(missing_ok=True)
        if renamed:
            with contextlib.suppress(OSError):
                output.unlink(missing_ok=True)
        if isinstance(e, CompositeError) or not isinstance(
            e, (OSError, av.FFmpegError, ValueError)
        ):
            raise
        raise CompositeError(f"cannot render composite {output.name}: {e}") from e
    finally:
        for cell in cells:
            cell.close()
        for source in audios:
            source.close()

    logger.info(
        "composite rendered: %s, %.1f s, %d frames, %d bytes",
        output.name,
        frame_count / fps,
        frame_count,
        size,
    )
    if progress is not None:
        progress(1.0)
    return CompositeResult(
        path=output,
        size=size,
        sha256=sha256,
        duration_s=frame_count / fps,
        video_frames=frame_count,
        audio_samples=audio_samples,
    )
