"""The audio/video alignment measure (tests/e2e/avsync.py) on WebM files made here with PyAV
(VP8 + Opus) from the flash-and-beep sources, with the sound shifted by a known amount."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.e2e.avsync import (
    av_offsets,
    beep_times,
    flash_times,
    offset_changes,
    write_sync_sources,
)

FPS = 30
RATE = 48_000  # Opus's own rate; Chromium's fake microphone file is 44.1 kHz (see avsync)
SECONDS = 3.0  # three flash/beep pairs, at 0.5, 1.5 and 2.5 s
FRAME_MS = 1000 / FPS
# The flashes here fall exactly on frames and a beep's onset is found to the sample, so what
# is left is the codecs' own error (Opus keeps the onset within a fraction of a ms): a
# mishandled Opus pre-skip (6.5 ms) or a lost frame (33 ms) fails, well inside a frame.
TOLERANCE_MS = 2.0


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], Any]:
    """The loop's pictures (decoded from the y4m) and sound (the wav's samples, -1..1)."""
    y4m, wav = write_sync_sources(
        tmp_path_factory.mktemp("sources"),
        width=160,
        height=90,
        fps=FPS,
        seconds=SECONDS,
        sample_rate=RATE,
    )
    with av.open(str(y4m)) as container:
        pictures = [frame.to_ndarray() for frame in container.decode(video=0)]
    # Chromium plays frame 0 again in the last slot of each loop; so does this copy of it.
    pictures.append(pictures[0])
    with wave.open(str(wav), "rb") as w:
        sound = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768
    return pictures, sound


def write_webm(path: Path, *, pictures: list[Any] | None = None, sound: Any | None = None) -> Path:
    """VP8 at ``FPS`` and Opus at ``RATE``, each stream's timestamps from 0."""
    with av.open(str(path), "w", format="webm") as container:
        if pictures is not None:
            video: Any = container.add_stream("libvpx", rate=FPS)
            video.height, video.width = pictures[0].shape[0] * 2 // 3, pictures[0].shape[1]
            video.pix_fmt = "yuv420p"
            video.codec_context.options = {"deadline": "realtime", "cpu-used": "8"}
        if sound is not None:
            audio: Any = container.add_stream("libopus", rate=RATE, layout="mono")
        if pictures is not None:
            for i, picture in enumerate(pictures):
                frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
                frame.pts, frame.time_base = i, Fraction(1, FPS)
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
        if sound is not None:
            pcm = (np.asarray(sound) * 32767).round().astype(np.int16)
            for start in range(0, len(pcm) - 959, 960):
                frame = av.AudioFrame.from_ndarray(
                    pcm[None, start : start + 960], format="s16", layout="mono"
                )
                frame.sample_rate, frame.pts = RATE, start
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
    return path


def delayed(sound: Any, ms: float) -> Any:
    # The loop is periodic, so a rotation is a shift in time: every beep moves by ``ms``.
    return np.roll(sound, round(RATE * ms / 1000))


def test_the_sources_flash_and_beep_together_in_the_middle_of_each_period(
    tmp_path: Path,
) -> None:
    y4m, wav = write_sync_sources(tmp_path, fps=FPS, seconds=SECONDS)
    assert flash_times(y4m) == pytest.approx([0.5, 1.5, 2.5])
    assert beep_times(wav) == pytest.approx([0.5, 1.5, 2.5], abs=0.001)
    with av.open(str(y4m)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    with wave.open(str(wav), "rb") as w:
        samples, rate = w.getnframes(), w.getframerate()
    assert (rate, samples) == (44_100, 3 * 44_100)
    # One frame short: Chromium's loop plays frame 0 twice, which makes the loops equal.
    assert frames == FPS * SECONDS - 1


@pytest.mark.parametrize("delay_ms", [0, 80, -120])
def test_a_composite_reports_how_late_the_sound_is(
    tmp_path: Path, sources: tuple[list[Any], Any], delay_ms: float
) -> None:
    pictures, sound = sources
    path = write_webm(tmp_path / "av.webm", pictures=pictures, sound=delayed(sound, delay_ms))

    result = av_offsets(path)

    assert result.count == 3, result
    assert result.median_ms == pytest.approx(delay_ms, abs=TOLERANCE_MS)
    assert result.max_ms - result.min_ms < TOLERANCE_MS


def test_separate_tracks_are_placed_on_one_clock_by_their_start_times(
    tmp_path: Path, sources: tuple[list[Any], Any]
) -> None:
    # Two video segments (the second from 1.2 s) and one audio track that began at 0.37 s,
    # each file's timestamps from 0, as the recorder writes them; the sound is 80 ms late.
    pictures, sound = sources
    split, audio_start = 36, 0.37
    video = [
        (write_webm(tmp_path / "v0.webm", pictures=pictures[:split]), 0.0),
        (write_webm(tmp_path / "v1.webm", pictures=pictures[split:]), split / FPS),
    ]
    audio = [
        (
            write_webm(tmp_path / "a.webm", sound=delayed(sound, 80)[round(RATE * audio_start) :]),
            audio_start,
        )
    ]

    result = av_offsets(video, audio)

    assert result.count == 3, result
    assert result.median_ms == pytest.approx(80, abs=TOLERANCE_MS)
    # Without the start times the same files say something else entirely.
    unplaced = av_offsets([(path, 0.0) for path, _ in video], [(audio[0][0], 0.0)])
    assert unplaced.flash_times != result.flash_times
    assert unplaced.median_ms != pytest.approx(80, abs=FRAME_MS)


def test_a_flash_without_a_beep_is_not_paired(
    tmp_path: Path, sources: tuple[list[Any], Any]
) -> None:
    pictures, sound = sources
    silent_middle = np.array(sound)
    silent_middle[RATE : 2 * RATE] = 0  # no beep at 1.5 s
    path = write_webm(tmp_path / "av.webm", pictures=pictures, sound=silent_middle)

    result = av_offsets(path)

    assert result.flash_times == pytest.approx([0.5, 1.5, 2.5])
    assert len(result.beep_times) == 2
    assert result.count == 2


def test_a_region_finds_one_tile_s_flashes_in_a_composite(
    tmp_path: Path, sources: tuple[list[Any], Any]
) -> None:
    # The participant's picture fills only the top-left quarter; the rest stays dark.
    pictures, sound = sources
    tiled = []
    for picture in pictures:
        tile = np.array(picture)
        tile[:45, 80:] = tile[45:90, :] = 48  # Y plane: 160x90, rows 0..89
        tiled.append(tile)
    path = write_webm(tmp_path / "grid.webm", pictures=tiled, sound=sound)

    assert av_offsets(path).count == 0  # a quarter of white in the whole picture: too dim
    result = av_offsets(path, region=(0, 0, 80, 45))
    assert result.count == 3, result
    assert result.median_ms == pytest.approx(0, abs=TOLERANCE_MS)


def test_offsets_are_compared_flash_by_flash_on_one_clock(
    tmp_path: Path, sources: tuple[list[Any], Any]
) -> None:
    # A "reference" that began 1.2 s later on the caller's clock (its flashes at 1.7, 2.7 and
    # 3.7 s) with the sound 80 ms late, and a "recording" of 3 + 3 s from 0 s with the sound
    # 30 ms late: only the recording's flashes at 1.5 .. 3.5 s have a reference flash near them
    # (within 0.4 s), and each is compared with that one.
    pictures, sound = sources
    reference = av_offsets(
        [(write_webm(tmp_path / "r.webm", pictures=pictures, sound=delayed(sound, 80)), 1.2)]
    )
    recording = av_offsets(
        [
            (write_webm(tmp_path / "a.webm", pictures=pictures, sound=delayed(sound, 30)), 0.0),
            (write_webm(tmp_path / "b.webm", pictures=pictures, sound=delayed(sound, 30)), 3.0),
        ]
    )
    assert recording.paired_at == pytest.approx((0.5, 1.5, 2.5, 3.5, 4.5, 5.5), abs=0.04)

    changes = offset_changes(recording, reference)

    assert changes == pytest.approx((-50, -50, -50), abs=TOLERANCE_MS)
    assert offset_changes(recording, reference, max_apart_s=0.1) == ()
    silent = av_offsets(
        tmp_path / "a.webm", write_webm(tmp_path / "silent.webm", sound=np.zeros_like(sound))
    )
    assert silent.count == 0
    assert offset_changes(recording, silent) == ()  # nothing to compare with
