"""The playback composite: real segments in, a real WebM out, decoded again to check that
each participant's picture is in their cell at the right wall-clock time, black where they
were not recorded, and that the audio is the clipped mix of every track, silent in a pause."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from tests.unit.recording.encoded import opus_tone, vp8_colour_frames
from yunting.recording.composite import (
    CompositeError,
    CompositeResult,
    Rect,
    SegmentSource,
    TrackSource,
    fit_rect,
    grid_layout,
    render_composite,
)
from yunting.recording.webm import WebmSegmentWriter

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
WIDTH, HEIGHT, FPS = 320, 180, 10
DURATION_S = 4.0

BLACK = (16, 128, 128)
RED = (81, 90, 240)
GREEN = (145, 54, 34)
BLUE = (41, 240, 110)
COLOURS = {"black": BLACK, "red": RED, "green": GREEN, "blue": BLUE}

VIDEO_STEP = 9000  # 10 fps at 90 kHz
AUDIO_STEP = 960  # 20 ms at 48 kHz
TONE = 0.7  # each tone's amplitude: two at once go past full scale


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def write_video(
    path: Path, start_s: float, frames: tuple[tuple[bytes, bool], ...], size: tuple[int, int]
) -> SegmentSource:
    writer = WebmSegmentWriter(path, kind="video", clock_rate=90_000, width=size[0], height=size[1])
    for i, (data, key) in enumerate(frames):
        writer.write(pts=i * VIDEO_STEP, data=data, keyframe=key)
    writer.close()
    return SegmentSource(path, at(start_s), at(start_s + len(frames) / 10))


def write_audio(path: Path, start_s: float, frames: tuple[bytes, ...]) -> SegmentSource:
    writer = WebmSegmentWriter(path, kind="audio", clock_rate=48_000)
    for i, data in enumerate(frames):
        writer.write(pts=i * AUDIO_STEP, data=data, keyframe=True)
    writer.close()
    return SegmentSource(path, at(start_s), at(start_s + len(frames) * 0.02))


def track(kind: str, *segments: SegmentSource, label: str = "张法官 · judge") -> TrackSource:
    return TrackSource(participant_id=uuid.uuid4(), label=label, kind=kind, segments=segments)


def hearing(directory: Path) -> list[TrackSource]:
    """A 4 s hearing. A (4:3 camera): red for 2 s, then green. B (16:9 camera): blue, with a
    pause from 1.5 s to 2.5 s. Audio C: a tone with the same pause. Audio D: the same tone,
    in phase, from 0.5 s to 1.0 s."""
    directory.mkdir(parents=True, exist_ok=True)
    a_frames = vp8_colour_frames((RED,) * 20 + (GREEN,) * 20, 160, 120)
    b_frames = vp8_colour_frames((BLUE,) * 15, 320, 180)
    return [
        track("video", write_video(directory / "a.webm", 0.0, a_frames, (160, 120))),
        track(
            "video",
            write_video(directory / "b0.webm", 0.0, b_frames, (320, 180)),
            write_video(directory / "b1.webm", 2.5, b_frames, (320, 180)),
        ),
        track(
            "audio",
            write_audio(directory / "c0.webm", 0.0, opus_tone(75, 200.0, TONE)),
            write_audio(directory / "c1.webm", 2.5, opus_tone(75, 200.0, TONE)),
        ),
        track("audio", write_audio(directory / "d.webm", 0.5, opus_tone(25, 200.0, TONE))),
    ]


def render(tracks: list[TrackSource], output: Path, **kwargs: object) -> CompositeResult:
    return render_composite(
        tracks=tracks,
        output=output,
        started_at=T0,
        ended_at=at(DURATION_S),
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        **kwargs,  # type: ignore[arg-type]
    )


class Rendered:
    def __init__(self, result: CompositeResult, progress: list[float]) -> None:
        self.result = result
        self.progress = progress
        with av.open(str(result.path)) as container:
            self.container_duration = (container.duration or 0) / 1_000_000
            self.codecs = sorted(s.codec_context.name for s in container.streams)
            self.sample_rate = container.streams.audio[0].codec_context.sample_rate
            self.frames = list(container.decode(video=0))
        with av.open(str(result.path)) as container:
            chunks = [f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)]
        self.audio: npt.NDArray[np.float64] = np.concatenate(chunks)

    def colour(self, k: int, x: int, y: int) -> str:
        """The nearest named colour around (x, y) of the frame at ``k / FPS`` s."""
        frame = self.frames[k]
        planes = [
            np.frombuffer(memoryview(p), np.uint8).reshape(-1, p.line_size) for p in frame.planes
        ]
        yuv = (
            planes[0][y - 2 : y + 2, x - 2 : x + 2].mean(),
            planes[1][y // 2 - 1 : y // 2 + 1, x // 2 - 1 : x // 2 + 1].mean(),
            planes[2][y // 2 - 1 : y // 2 + 1, x // 2 - 1 : x // 2 + 1].mean(),
        )
        return min(
            COLOURS, key=lambda n: sum((a - b) ** 2 for a, b in zip(COLOURS[n], yuv, strict=True))
        )

    def rms(self, start_s: float, end_s: float) -> float:
        part = self.audio[round(start_s * 48_000) : round(end_s * 48_000)]
        return float(np.sqrt(np.mean(part**2)))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    directory = tmp_path_factory.mktemp("composite")
    progress: list[float] = []
    result = render(
        hearing(directory / "segments"), directory / "out.webm", progress=progress.append
    )
    return Rendered(result, progress)


def test_the_composite_lasts_the_hearing_and_is_in_place(rendered: Rendered) -> None:
    result = rendered.result
    assert rendered.codecs == ["opus", "vp8"]
    assert rendered.sample_rate == 48_000
    assert {(f.width, f.height) for f in rendered.frames} == {(WIDTH, HEIGHT)}
    assert result.video_frames == len(rendered.frames) == DURATION_S * FPS
    assert result.duration_s == DURATION_S
    assert rendered.container_duration == pytest.approx(DURATION_S, abs=1 / FPS)
    last = rendered.frames[-1]
    assert last.time == pytest.approx(DURATION_S - 1 / FPS, abs=0.002)
    assert result.audio_samples == DURATION_S * 48_000
    assert len(rendered.audio) == pytest.approx(DURATION_S * 48_000, abs=960)
    assert result.size == result.path.stat().st_size
    assert result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()
    assert [p.name for p in result.path.parent.iterdir() if p.is_file()] == ["out.webm"]


def test_progress_rises_to_one(rendered: Rendered) -> None:
    values = rendered.progress
    assert len(values) >= 3
    assert values == sorted(values)
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values[-1] == 1.0
    assert values[-2] < 1.0  # 1.0 only once the file is in place


def test_each_participant_is_in_their_cell_at_the_right_time(rendered: Rendered) -> None:
    # Two cells side by side, 160x90 each, letterboxed at y 44..134. A's 4:3 picture is
    # pillarboxed to 120x90 at x 20..140; B's 16:9 picture is scaled down to fill its cell.
    a = [rendered.colour(k, 80, 89) for k in range(40)]
    b = [rendered.colour(k, 240, 89) for k in range(40)]
    assert a == ["red"] * 20 + ["green"] * 20
    # B paused from 1.5 s to 2.5 s: its cell is black then, not its last picture frozen.
    assert b == ["blue"] * 15 + ["black"] * 10 + ["blue"] * 15
    for k in (5, 18, 35):
        assert rendered.colour(k, 8, 89) == "black"  # A's pillarbox
        assert rendered.colour(k, 150, 89) == "black"
        assert rendered.colour(k, 80, 20) == "black"  # above the cells
        assert rendered.colour(k, 240, 160) == "black"  # below


def test_the_audio_is_the_clipped_mix_and_silent_in_the_pause(rendered: Rendered) -> None:
    single = TONE / np.sqrt(2)
    assert rendered.rms(0.1, 0.4) == pytest.approx(single, rel=0.1)
    assert rendered.rms(1.1, 1.4) == pytest.approx(single, rel=0.1)
    assert rendered.rms(2.6, 3.9) == pytest.approx(single, rel=0.1)
    assert rendered.rms(1.6, 2.4) < 0.005
    # C and D together reach 1.4: clipped, the mix is louder than one tone and sits at full
    # scale for half of each cycle. Wrapped around, it would flip sign at its peaks (quieter,
    # never near full scale); unclipped, it would go to 1.4.
    both = rendered.audio[round(0.6 * 48_000) : round(0.9 * 48_000)]
    assert float(np.abs(both).max()) < 1.1
    assert rendered.rms(0.6, 0.9) > 1.2 * single
    assert float(np.mean(np.abs(both) > 0.9)) > 0.3


def test_the_timeline_cuts_segments_at_its_ends(tmp_path: Path) -> None:
    # X's segment began half a second before the composite's start: it opens on the frame due
    # then. Y's only segment is after the end: Y gets no cell, X has the whole picture.
    x = write_video(
        tmp_path / "x.webm", -0.5, vp8_colour_frames((RED,) * 5 + (GREEN,) * 10), (160, 120)
    )
    y = write_video(tmp_path / "y.webm", 5.0, vp8_colour_frames((BLUE,) * 5), (160, 120))
    result = render_composite(
        tracks=[track("video", x), track("video", y)],
        output=tmp_path / "out.webm",
        started_at=T0,
        ended_at=at(1.0),
        width=64,
        height=36,
        fps=10,
    )
    composite = Rendered(result, [])
    assert [composite.colour(k, 32, 18) for k in range(10)] == ["green"] * 10
    assert composite.colour(5, 4, 18) == "black"  # X's 4:3 picture is pillarboxed


def test_a_corrupt_segment_fails_the_render_and_leaves_nothing(tmp_path: Path) -> None:
    tracks = hearing(tmp_path / "segments")
    broken = tracks[1].segments[1].path
    broken.write_bytes(b"\x1a\x45\xdf\xa3 not really a webm file" * 10)
    output = tmp_path / "out" / "composite.webm"
    with pytest.raises(CompositeError, match=f"video segment {broken}"):
        render(tracks, output)
    assert list(output.parent.iterdir()) == []


def test_a_missing_segment_fails_before_rendering(tmp_path: Path) -> None:
    tracks = hearing(tmp_path / "segments")
    missing = tracks[2].segments[0].path
    missing.unlink()
    output = tmp_path / "composite.webm"
    progress: list[float] = []
    with pytest.raises(CompositeError, match=f"segment {missing} is missing"):
        render(tracks, output, progress=progress.append)
    assert progress == []
    assert not output.exists()
    assert not output.with_name("composite.webm.part").exists()


def test_a_segment_of_the_wrong_kind_is_reported(tmp_path: Path) -> None:
    audio = write_audio(tmp_path / "a.webm", 0.0, opus_tone(10))
    with pytest.raises(CompositeError, match=f"segment {audio.path} has no video stream"):
        render([track("video", audio)], tmp_path / "out.webm")
    assert [p.name for p in tmp_path.iterdir()] == ["a.webm"]


def test_an_error_in_progress_stops_the_render_as_is(tmp_path: Path) -> None:
    # The job cancels a render by raising from its progress callback.
    class CancelledError(Exception):
        pass

    def cancel(fraction: float) -> None:
        if fraction > 0.3:
            raise CancelledError

    with pytest.raises(CancelledError):
        render(hearing(tmp_path / "segments"), tmp_path / "out.webm", progress=cancel)
    assert not (tmp_path / "out.webm").exists()
    assert not (tmp_path / "out.webm.part").exists()


def test_a_hearing_with_no_media_is_black_and_silent(tmp_path: Path) -> None:
    result = render_composite(
        tracks=[],
        output=tmp_path / "out.webm",
        started_at=T0,
        ended_at=at(1.0),
        width=64,
        height=36,
        fps=5,
    )
    assert result.video_frames == 5
    with av.open(str(result.path)) as container:
        frame = next(container.decode(video=0))
        assert int(frame.to_ndarray()[:36].max()) <= 20
    with av.open(str(result.path)) as container:
        audio = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
        assert float(np.abs(audio).max()) < 0.001


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ended_at": T0}, "expected ended_at after started_at"),
        ({"started_at": T0.replace(tzinfo=None)}, "timezone-aware"),
        ({"width": 321}, "even width"),
        ({"fps": 0}, "fps >= 1"),
        ({"tracks": [track("screen")]}, "audio or video, got 'screen'"),
        (
            {"tracks": [track("audio", SegmentSource(Path("x.webm"), at(2), at(1)))]},
            "ends before it starts",
        ),
    ],
)
def test_inconsistent_input_is_refused(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "tracks": [],
        "output": tmp_path / "out.webm",
        "started_at": T0,
        "ended_at": at(1.0),
        "width": 64,
        "height": 36,
        "fps": 5,
    }
    with pytest.raises(CompositeError, match=message):
        render_composite(**(arguments | change))  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# The layout.


def test_one_participant_fills_the_picture() -> None:
    assert grid_layout(1, 1280, 720) == [Rect(0, 0, 1280, 720)]


def test_two_sit_side_by_side_letterboxed() -> None:
    assert grid_layout(2, 1280, 720) == [Rect(0, 180, 640, 360), Rect(640, 180, 640, 360)]


def test_three_and_four_share_a_two_by_two_grid() -> None:
    assert grid_layout(4, 1280, 720) == [
        Rect(0, 0, 640, 360),
        Rect(640, 0, 640, 360),
        Rect(0, 360, 640, 360),
        Rect(640, 360, 640, 360),
    ]
    # The third sits centred in the second row.
    assert grid_layout(3, 1280, 720)[2] == Rect(320, 360, 640, 360)


@pytest.mark.parametrize(
    ("count", "rows", "cols"),
    [(5, 2, 3), (6, 2, 3), (7, 3, 3), (9, 3, 3), (10, 3, 4), (16, 4, 4), (17, 4, 5)],
)
def test_larger_hearings_get_a_near_square_grid(count: int, rows: int, cols: int) -> None:
    for width, height in ((1280, 720), (320, 180), (1920, 1080), (1080, 1080)):
        rects = grid_layout(count, width, height)
        assert len(rects) == count
        assert len({r.y for r in rects}) == rows
        assert len({r.x for r in rects[:cols]}) == cols
        for r in rects:
            assert all(v % 2 == 0 for v in (r.x, r.y, r.width, r.height)), r
            assert r.x >= 0
            assert r.y >= 0
            assert r.x + r.width <= width
            assert r.y + r.height <= height
            assert r.width / r.height == pytest.approx(16 / 9, rel=0.03)
        for i, r in enumerate(rects):  # no two cells overlap
            for s in rects[i + 1 :]:
                assert (
                    r.x + r.width <= s.x
                    or s.x + s.width <= r.x
                    or r.y + r.height <= s.y
                    or s.y + s.height <= r.y
                )


def test_no_participants_no_cells_and_bad_sizes_are_refused() -> None:
    assert grid_layout(0, 1280, 720) == []
    with pytest.raises(ValueError, match="count >= 0"):
        grid_layout(-1, 1280, 720)
    with pytest.raises(ValueError, match="even width"):
        grid_layout(2, 1279, 720)


def test_a_picture_keeps_its_shape_in_its_cell() -> None:
    cell = Rect(640, 180, 640, 360)
    assert fit_rect(640, 480, cell) == Rect(720, 180, 480, 360)  # 4:3 pillarboxed
    assert fit_rect(1280, 720, cell) == cell  # 16:9 scaled down to fill
    assert fit_rect(360, 640, cell) == Rect(858, 180, 202, 360)  # portrait phone
    assert fit_rect(1000, 100, cell) == Rect(640, 328, 640, 64)  # very wide


def test_frames_are_stamped_on_the_output_time_base(rendered: Rendered) -> None:
    times = [f.time for f in rendered.frames]
    assert times == pytest.approx([k / FPS for k in range(40)], abs=0.002)
