"""The segmenter frame by frame: keyframe gating, rotation, resolution changes, wrap-around,
lost frames, restarts, and keyframe requests."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from yunting.media.forwarding import EncodedFrame
from yunting.recording.segmenter import (
    CloseReason,
    CloseSegment,
    Decision,
    OpenSegment,
    RequestKeyframe,
    TrackSegmenter,
    WriteFrame,
)

VIDEO_STEP = 3000  # 30 fps at 90 kHz
AUDIO_STEP = 960  # 20 ms at 48 kHz


def video(
    ts: int,
    *,
    key: bool = False,
    size: tuple[int, int] = (640, 480),
    ssrc: int = 1,
    at: float = 0.0,
) -> EncodedFrame:
    return EncodedFrame(
        kind="video",
        codec="VP8",
        ssrc=ssrc,
        rtp_timestamp=ts % (1 << 32),
        clock_rate=90_000,
        data=b"K" if key else b"d",
        keyframe=key,
        size=size if key else None,
        received_at=at,
        captured_at=1_700_000_000.0 + at,
    )


def audio(ts: int, *, at: float = 0.0, ssrc: int = 7) -> EncodedFrame:
    return EncodedFrame(
        kind="audio",
        codec="opus",
        ssrc=ssrc,
        rtp_timestamp=ts % (1 << 32),
        clock_rate=48_000,
        data=b"a",
        keyframe=True,
        size=None,
        received_at=at,
        captured_at=None,
    )


def kinds(decisions: list[Decision]) -> list[str]:
    return [type(d).__name__ for d in decisions]


def feed_video(
    seg: TrackSegmenter,
    start: int,
    count: int,
    *,
    keys: frozenset[int] = frozenset(),
    t0: float = 0.0,
) -> list[Decision]:
    out: list[Decision] = []
    for i in range(count):
        ts = start + i * VIDEO_STEP
        out += seg.feed(video(ts, key=i in keys, at=t0 + i / 30), t0 + i / 30)
    return out


def test_video_waits_for_a_keyframe_and_asks_for_one_once_a_second() -> None:
    seg = TrackSegmenter(kind="video", clock_rate=90_000, segment_s=10)
    out = feed_video(seg, 1000, 45)  # 1.5 s of delta frames
    assert [d for d in out if not isinstance(d, RequestKeyframe)] == []
    assert len([d for d in out if isinstance(d, RequestKeyframe)]) == 2  # at 0 s and 1 s
    assert seg.dropped == 45
    out = seg.feed(video(1000 + 45 * VIDEO_STEP, key=True, at=1.5), 1.5)
    assert out[0] == OpenSegment(
        index=0, width=640, height=480, captured_at=1_700_000_001.5, received_at=1.5
    )
    assert out[1] == WriteFrame(index=0, pts=0, data=b"K", keyframe=True)


def test_segments_rotate_on_the_first_keyframe_after_their_length() -> None:
    seg = TrackSegmenter(kind="video", clock_rate=90_000, segment_s=2, keyframe_lead_s=0.5)
    # 3 s at 30 fps, keyframes at 0 and at 2.5 s (frame 75).
    out = feed_video(seg, 0, 90, keys=frozenset({0, 75}))
    requests = [i for i, d in enumerate(out) if isinstance(d, RequestKeyframe)]
    assert requests, "a keyframe is asked for before the boundary"
    closes = [d for d in out if isinstance(d, CloseSegment)]
    assert closes == [
        CloseSegment(
            index=0,
            reason=CloseReason.ROTATE,
            duration=75 * VIDEO_STEP,  # up to the keyframe, not cut at 2 s
            frames=75,
            captured_end=pytest.approx(1_700_000_000.0 + 75 / 30),
            received_end=pytest.approx(75 / 30),
            captured_start=pytest.approx(1_700_000_000.0),
        )
    ]
    opens = [d for d in out if isinstance(d, OpenSegment)]
    assert [o.index for o in opens] == [0, 1]
    # The new segment's timestamps start again at zero, on the keyframe.
    writes = [d for d in out if isinstance(d, WriteFrame) and d.index == 1]
    assert writes[0] == WriteFrame(index=1, pts=0, data=b"K", keyframe=True)
    assert [w.pts for w in writes[:3]] == [0, VIDEO_STEP, 2 * VIDEO_STEP]


def test_keyframe_request_comes_the_lead_time_before_the_boundary_and_repeats() -> None:
    seg = TrackSegmenter(
        kind="video", clock_rate=90_000, segment_s=2, keyframe_lead_s=0.5, keyframe_retry_s=1
    )
    out = feed_video(seg, 0, 150, keys=frozenset({0}))  # 5 s, no keyframe after the first
    asked_at = []
    frame = 0
    for d in out:
        if isinstance(d, WriteFrame):
            frame += 1
        elif isinstance(d, RequestKeyframe):
            asked_at.append(frame / 30)
    # First at 1.5 s (2 s - 0.5 s lead), then every second while none comes.
    assert asked_at[0] == pytest.approx(1.5, abs=0.05)
    assert [round(b - a, 1) for a, b in itertools.pairwise(asked_at)] == [1.0] * (len(asked_at) - 1)
    # Never cut without a keyframe: one segment still open, all frames in it.
    assert kinds(out).count("OpenSegment") == 1
    assert "CloseSegment" not in kinds(out)
    assert seg.recording


def test_a_new_resolution_starts_a_new_segment() -> None:
    seg = TrackSegmenter(kind="video", clock_rate=90_000, segment_s=10)
    seg.feed(video(0, key=True), 0)
    seg.feed(video(VIDEO_STEP), 0.03)
    out = seg.feed(video(2 * VIDEO_STEP, key=True, size=(320, 240), at=0.06), 0.06)
    assert isinstance(out[0], CloseSegment)
    assert out[0].reason is CloseReason.RESOLUTION
    assert out[0].frames == 2
    assert out[1] == OpenSegment(
        index=1, width=320, height=240, captured_at=1_700_000_000.06, received_at=0.06
    )
    # A keyframe of the same size is just a keyframe.
    assert kinds(seg.feed(video(3 * VIDEO_STEP, key=True, size=(320, 240)), 0.1)) == ["WriteFrame"]


def test_timestamps_continue_across_the_32_bit_wrap() -> None:
    seg = TrackSegmenter(kind="video", clock_rate=90_000, segment_s=10)
    start = (1 << 32) - 2 * VIDEO_STEP
    out = feed_video(seg, start, 5, keys=frozenset({0}))
    pts = [d.pts for d in out if isinstance(d, WriteFrame)]
    assert pts == [0, VIDEO_STEP, 2 * VIDEO_STEP, 3 * VIDEO_STEP, 4 * VIDEO_STEP]
    assert "CloseSegment" not in kinds(out)


def test_lost_frames_leave_a_gap_of_their_length() -> None:
    seg = TrackSegmenter(kind="audio", clock_rate=48_000, segment_s=10)
    out: list[Decision] = []
    for i in (0, 1, 2, 6, 7):  # frames 3-5 lost
        out += seg.feed(audio(5000 + i * AUDIO_STEP, at=i * 0.02), i * 0.02)
    assert [d.pts for d in out if isinstance(d, WriteFrame)] == [
        0,
        AUDIO_STEP,
        2 * AUDIO_STEP,
        6 * AUDIO_STEP,
        7 * AUDIO_STEP,
    ]
    (close,) = seg.stop()
    assert isinstance(close, CloseSegment)
    assert close.duration == 8 * AUDIO_STEP
    assert close.frames == 5
    assert close.reason is CloseReason.STOPPED


def test_a_segment_opened_before_the_first_sender_report_is_placed_by_the_later_mapping() -> None:
    """The first frames come before the publisher's first sender report (no capture time); the
    close carries the first frame's capture time through the mapping the later frames have."""
    seg = TrackSegmenter(kind="audio", clock_rate=48_000, segment_s=10)
    mapped_from = 1_700_000_000.0 - 0.25  # the sender's clock: frame i captured at this + i/50
    out: list[Decision] = []
    for i in range(100):  # 2 s; the first report arrives with frame 60; frames 40-41 are lost
        if i in (40, 41):
            continue
        frame = replace(
            audio(3000 + i * AUDIO_STEP, at=0.4 + i * 0.02),
            captured_at=mapped_from + i * 0.02 if i >= 60 else None,
        )
        out += seg.feed(frame, frame.received_at)
    (opened,) = [d for d in out if isinstance(d, OpenSegment)]
    assert opened.captured_at is None
    assert opened.received_at == pytest.approx(0.4)
    (close,) = seg.stop()
    assert isinstance(close, CloseSegment)
    assert close.captured_start == pytest.approx(mapped_from)
    assert close.captured_end == pytest.approx(mapped_from + 2.0)
    # Never synced: nothing to place it by but arrival.
    seg = TrackSegmenter(kind="audio", clock_rate=48_000, segment_s=10)
    seg.feed(audio(0), 0.0)
    (close,) = seg.stop()
    assert isinstance(close, CloseSegment)
    assert close.captured_start is None
    assert close.captured_end is None


def test_audio_rotates_on_length_alone_and_drops_duplicates() -> None:
    seg = TrackSegmenter(kind="audio", clock_rate=48_000, segment_s=1)
    out: list[Decision] = []
    for i in range(120):  # 2.4 s
        out += seg.feed(audio(i * AUDIO_STEP, at=i * 0.02), i * 0.02)
    out += seg.feed(audio(119 * AUDIO_STEP, at=2.4), 2.4)  # a duplicate
    closes = [d for d in out if isinstance(d, CloseSegment)]
    assert [(c.index, c.frames, c.duration) for c in closes] == [
        (0, 50, 48_000),
        (1, 50, 48_000),
    ]
    assert "RequestKeyframe" not in kinds(out)
    assert sum(isinstance(d, WriteFrame) for d in out) == 120


def test_a_new_ssrc_or_a_timestamp_jump_starts_a_new_timeline() -> None:
    seg = TrackSegmenter(kind="video", clock_rate=90_000, segment_s=10, max_jump_s=5)
    seg.feed(video(0, key=True), 0)
    # The publisher restarted: new SSRC, timestamps anywhere. The old segment closes; the new
    # one waits for a keyframe.
    out = seg.feed(video(123_456, ssrc=2), 0.1)
    assert isinstance(out[0], CloseSegment)
    assert out[0].reason is CloseReason.DISCONTINUITY
    assert kinds(out[1:]) == ["RequestKeyframe"]
    out = seg.feed(video(123_456 + VIDEO_STEP, key=True, ssrc=2), 0.2)
    assert kinds(out) == ["OpenSegment", "WriteFrame"]
    # A jump of more than 5 s in the timestamps (or backwards) is no continuation either.
    out = seg.feed(video(123_456 + 10 * 90_000, key=True, ssrc=2), 0.3)
    assert kinds(out) == ["CloseSegment", "OpenSegment", "WriteFrame"]
    out = seg.feed(video(100, key=True, ssrc=2), 0.4)
    assert kinds(out) == ["CloseSegment", "OpenSegment", "WriteFrame"]
    assert [d.pts for d in out if isinstance(d, WriteFrame)] == [0]


def test_stop_closes_and_the_next_segment_needs_a_keyframe_again() -> None:
    seg = TrackSegmenter(kind="video", clock_rate=90_000, segment_s=10)
    assert seg.stop() == []
    feed_video(seg, 0, 10, keys=frozenset({0}))
    (close,) = seg.stop()
    assert isinstance(close, CloseSegment)
    assert close.frames == 10
    assert close.duration == 10 * VIDEO_STEP
    assert not seg.recording
    out = seg.feed(video(20 * VIDEO_STEP), 1.0)
    assert kinds(out) == ["RequestKeyframe"]
    out = seg.feed(video(21 * VIDEO_STEP, key=True), 1.03)
    assert [d.index for d in out if isinstance(d, OpenSegment)] == [1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "screen", "clock_rate": 90_000},
        {"kind": "video", "clock_rate": 90_000, "segment_s": 0},
        {"kind": "video", "clock_rate": 90_000, "keyframe_retry_s": 0},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"kind|must be"):
        TrackSegmenter(**kwargs)  # type: ignore[arg-type]
