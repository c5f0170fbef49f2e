"""Segment files: what is written decodes (PyAV), is durable under its final name only when
complete, and hashes to what is on disk."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import pytest

from tests.unit.recording.encoded import opus_frames, vp8_frames
from yunting.media import vp8
from yunting.media.forwarding import EncodedFrame
from yunting.recording.segmenter import CloseSegment, OpenSegment, TrackSegmenter, WriteFrame
from yunting.recording.webm import SegmentWriteError, WebmSegmentWriter

VIDEO_STEP = 3000  # 30 fps at 90 kHz
AUDIO_STEP = 960  # 20 ms at 48 kHz


def decode(path: Path) -> tuple[str, list[av.VideoFrame | av.AudioFrame], float]:
    """(codec, decoded frames, stream duration in seconds) of the file's only stream."""
    with av.open(str(path)) as container:
        stream = container.streams[0]
        frames = list(container.decode(stream))
        codec = stream.codec_context.name
        last = frames[-1]
        assert last.pts is not None
        assert last.time_base is not None
        end = float(last.pts * last.time_base)
    return codec, frames, end


def test_a_video_segment_decodes_frame_for_frame(tmp_path: Path) -> None:
    frames = vp8_frames(60)
    assert frames[0][1], "the encoder starts on a keyframe"
    writer = WebmSegmentWriter(
        tmp_path / "v.webm", kind="video", clock_rate=90_000, width=160, height=120
    )
    for i, (data, key) in enumerate(frames):
        writer.write(pts=i * VIDEO_STEP, data=data, keyframe=key)
    segment = writer.close()
    assert segment.frames == 60
    assert segment.size == segment.path.stat().st_size > 0
    assert segment.sha256 == hashlib.sha256(segment.path.read_bytes()).hexdigest()
    assert not (tmp_path / "v.webm.part").exists()
    codec, decoded, end = decode(segment.path)
    assert codec == "vp8"
    assert len(decoded) == 60
    assert {(f.width, f.height) for f in decoded} == {(160, 120)}
    assert end == pytest.approx(59 / 30, abs=0.002)


def test_lost_frames_keep_their_place_in_time(tmp_path: Path) -> None:
    # Frames 10-19 never arrived; what follows plays at its own time, not 10 frames early.
    frames = opus_frames(50)
    writer = WebmSegmentWriter(tmp_path / "a.webm", kind="audio", clock_rate=48_000)
    kept = [i for i in range(50) if not 10 <= i < 20]
    for i in kept:
        writer.write(pts=i * AUDIO_STEP, data=frames[i], keyframe=True)
    segment = writer.close()
    with av.open(str(segment.path)) as container:
        packets = [p for p in container.demux() if p.size]
        assert [p.pts * p.time_base for p in packets] == pytest.approx(
            [i * 0.02 for i in kept], abs=0.001
        )


def test_an_audio_segment_carries_an_opus_head_and_decodes(tmp_path: Path) -> None:
    writer = WebmSegmentWriter(tmp_path / "a.webm", kind="audio", clock_rate=48_000)
    for i, data in enumerate(opus_frames(100)):
        writer.write(pts=i * AUDIO_STEP, data=data, keyframe=True)
    segment = writer.close()
    with av.open(str(segment.path)) as container:
        extradata = container.streams.audio[0].codec_context.extradata
    assert extradata is not None
    assert extradata.startswith(b"OpusHead")
    codec, decoded, end = decode(segment.path)
    assert codec == "opus"
    assert sum(f.samples for f in decoded) == pytest.approx(100 * 960, rel=0.01)
    assert end == pytest.approx(99 * 0.02, abs=0.002)


def test_an_unfinished_segment_never_has_its_final_name(tmp_path: Path) -> None:
    # As after a crash: frames written, never closed.
    writer = WebmSegmentWriter(
        tmp_path / "v.webm", kind="video", clock_rate=90_000, width=160, height=120
    )
    for i, (data, key) in enumerate(vp8_frames(10)):
        writer.write(pts=i * VIDEO_STEP, data=data, keyframe=key)
    assert not (tmp_path / "v.webm").exists()
    writer.abort()
    assert list(tmp_path.iterdir()) == []
    writer.abort()  # twice is harmless


def test_write_errors_are_reported_as_such(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    with pytest.raises(SegmentWriteError, match="cannot start segment"):
        WebmSegmentWriter(blocker / "v.webm", kind="video", clock_rate=90_000, width=1, height=1)
    with pytest.raises(ValueError, match="width and height"):
        WebmSegmentWriter(tmp_path / "v.webm", kind="video", clock_rate=90_000)
    writer = WebmSegmentWriter(tmp_path / "a.webm", kind="audio", clock_rate=48_000)
    writer.write(pts=0, data=opus_frames(1)[0], keyframe=True)
    writer.close()
    with pytest.raises(SegmentWriteError, match="already closed"):
        writer.close()


def test_segments_cut_by_the_segmenter_each_play_on_their_own(tmp_path: Path) -> None:
    # Four seconds at 160x120 with a keyframe a second, then one at 320x240: the segmenter
    # cuts at the keyframes, and at the size change; each file decodes from its first frame.
    stream = [(data, key, (160, 120)) for data, key in vp8_frames(120)]
    stream += [(data, key, (320, 240)) for data, key in vp8_frames(30, 320, 240)]
    segmenter = TrackSegmenter(kind="video", clock_rate=90_000, segment_s=1.5)
    writers: dict[int, WebmSegmentWriter] = {}
    files = []
    for i, (data, key, size) in enumerate(stream):
        frame = EncodedFrame(
            kind="video",
            codec="VP8",
            ssrc=5,
            rtp_timestamp=(4_000_000_000 + i * VIDEO_STEP) % (1 << 32),  # wraps on the way
            clock_rate=90_000,
            data=data,
            keyframe=key,
            size=vp8.keyframe_size(data),
            received_at=i / 30,
            captured_at=None,
        )
        assert (frame.size or size) == size
        for decision in segmenter.feed(frame, i / 30):
            if isinstance(decision, OpenSegment):
                writers[decision.index] = WebmSegmentWriter(
                    tmp_path / f"{decision.index}.webm",
                    kind="video",
                    clock_rate=90_000,
                    width=decision.width or 0,
                    height=decision.height or 0,
                )
            elif isinstance(decision, WriteFrame):
                writers[decision.index].write(
                    pts=decision.pts, data=decision.data, keyframe=decision.keyframe
                )
            elif isinstance(decision, CloseSegment):
                files.append((decision, writers.pop(decision.index).close()))
    for decision in segmenter.stop():
        assert isinstance(decision, CloseSegment)
        files.append((decision, writers.pop(decision.index).close()))
    assert [(c.reason.value, c.frames, s.frames) for c, s in files] == [
        ("rotate", 60, 60),
        ("resolution", 60, 60),
        ("stopped", 30, 30),
    ]
    for close, segment in files:
        _, decoded, end = decode(segment.path)
        assert len(decoded) == close.frames
        assert end == pytest.approx((close.frames - 1) / 30, abs=0.002)
    assert {(f.width, f.height) for f in decode(files[2][1].path)[1]} == {(320, 240)}
