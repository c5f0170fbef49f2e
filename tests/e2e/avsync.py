"""Audio/video alignment of a recording, measured from a flash-and-beep test signal.

The participant's browser captures from Chromium's fake devices fed by two files
(``write_sync_sources``, ``fake_capture_args``): a dark picture that flashes white, and silence
broken by a 1 kHz beep, at the same instants. In a recording of that participant, each flash
is found from the decoded pictures (``flash_times``) and each beep from the decoded sound
(``beep_times``); ``av_offsets`` pairs them and reports audio minus video. Positive: the sound
comes late.

Times come from the decoded frames' own timestamps, plus the start the caller gives each
file, so one composite file and per-track segment files (each with its wall-clock start) are
measured the same way.

The signal repeats every ``period_s``, so an offset is only known modulo the period: pairs
further apart than ``max_offset_s`` (under half a period) are not counted.

The fixture itself is not at zero: Chromium starts its fake camera and microphone
independently, so in the browser the two loops begin some tens of ms apart (different at each
launch, then fixed while the devices stay open). Compare a recording's offset with one taken
in the same browser session (the page's own MediaRecorder, as test_avsync_fixture does), not
with zero.
"""

from __future__ import annotations

import statistics
import wave
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import av
import numpy as np
from av.container import InputContainer

# Chromium's fake microphone runs at 44.1 kHz in 10 ms buffers (AudioParameters::
# UnavailableDeviceParams). A file at that rate, a whole number of buffers long, plays sample
# for sample; a 48 kHz file goes through a resampler that pulls past the end of the file
# between two rewinds, so each loop gains a few ms of silence and the beeps drift.
SAMPLE_RATE = 44_100
BEEP_HZ = 1_000.0
BEEP_AMPLITUDE = 0.5  # of full scale: -9 dBFS RMS, far above any codec noise
DARK_Y = 48  # dark grey (video range is 16..235)
FLASH_Y = 235  # white
MARKER_Y = 110
MARKER_SIZE = 24
LUMA_THRESHOLD = 128.0  # mean Y of a flash frame is ~235, of the rest ~48
BEEP_THRESHOLD_DBFS = -30.0
WINDOW_S = 0.005
MIN_SILENCE_S = 0.1
MAX_OFFSET_S = 0.4

MediaFile: TypeAlias = str | Path
# One file at 0 s, or files each with its start (seconds) on the clock the caller measures in.
Media: TypeAlias = MediaFile | Sequence[tuple[MediaFile, float]]
Region: TypeAlias = tuple[int, int, int, int]  # x, y, width, height in decoded pixels


def write_sync_sources(
    directory: Path,
    *,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    period_s: float = 1.0,
    seconds: float = 2.0,
    flash_frames: int = 5,
    beep_s: float = 0.06,
    sample_rate: int = SAMPLE_RATE,
) -> tuple[Path, Path]:
    """Write ``sync.y4m`` (YUV 4:2:0, "C420") and ``sync.wav`` (mono 16-bit) into ``directory``:
    one loop of ``seconds`` each, as Chromium's fake devices play them.

    A flash of ``flash_frames`` frames and a beep of ``beep_s`` start together in the middle of
    every period: in the middle rather than at its start so that the very first one already
    follows darkness and silence (an edge at a file's first instant cannot be told from the
    start of a recording) and no event sits on the loop's seam. The flash lasts five frames
    (167 ms at 30 fps), longer than two frame intervals of a 15 fps composite: a composite
    samples the picture at its own rate, and as a 1 s period is a whole number of its frames,
    a shorter flash that falls between two samples once falls between them every time until
    the track restarts (that lost every flash of a CI run but two). A small marker moves
    across the dark picture so no two frames of a loop are alike and no encoder settles into
    skipping frames.

    The y4m holds one frame less than ``seconds``: at the end of the file Chromium's
    ``Y4mFileParser`` rewinds and reads the first frame without moving past it, so every
    loop after the first plays frame 0 twice. Without the last frame (dark, like frame 0 that
    takes its place) each loop lasts exactly ``seconds``, as the wav does; with it, the
    picture falls one frame behind the sound at every loop.
    """
    n_frames = _whole(fps * seconds, f"frames in {seconds} s at {fps} fps")
    per_period = _whole(fps * period_s, f"frames in a {period_s} s period at {fps} fps")
    _whole(seconds * 100, f"10 ms buffers in {seconds} s")
    periods = _whole(seconds / period_s, f"periods of {period_s} s in {seconds} s")
    n_samples = _whole(sample_rate * seconds, f"samples in {seconds} s")
    n_period = _whole(sample_rate * period_s, f"samples in a {period_s} s period")
    if width % 2 or height % 2:
        raise ValueError(f"expected even width and height for 4:2:0, got {width}x{height}")
    if periods < 1 or n_frames < 2:
        raise ValueError(f"expected at least one period and two frames, got {seconds} s")
    if not (0 < flash_frames < per_period / 2 and 0 < beep_s < period_s / 2):
        raise ValueError(
            f"expected flash and beep shorter than half a period, got {flash_frames} frames "
            f"and {beep_s} s"
        )
    directory.mkdir(parents=True, exist_ok=True)
    y4m_path = directory / "sync.y4m"
    wav_path = directory / "sync.wav"

    flash_from = per_period // 2
    chroma = np.full(2 * (width // 2) * (height // 2), 128, np.uint8).tobytes()
    with y4m_path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420\n".encode("ascii"))
        for i in range(n_frames - 1):  # the last is Chromium's second frame 0 (see above)
            flashing = flash_from <= i % per_period < flash_from + flash_frames
            luma = np.full((height, width), FLASH_Y if flashing else DARK_Y, np.uint8)
            x = i * (width - MARKER_SIZE) // (n_frames - 1)
            y = height - 2 * MARKER_SIZE
            luma[y : y + MARKER_SIZE, x : x + MARKER_SIZE] = MARKER_Y
            out.write(b"FRAME\n")
            out.write(luma.tobytes())
            out.write(chroma)

    t = np.arange(round(sample_rate * beep_s)) / sample_rate
    beep = BEEP_AMPLITUDE * np.sin(2 * np.pi * BEEP_HZ * t)
    signal = np.zeros(n_samples)
    for start in range(n_period // 2, n_samples, n_period):
        signal[start : start + len(beep)] = beep
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes((signal * 32767).round().astype("<i2").tobytes())
    return y4m_path, wav_path


def _whole(value: float, what: str) -> int:
    if abs(value - round(value)) > 1e-6:
        raise ValueError(f"expected whole {what}, got {value}")
    return round(value)


def fake_capture_args(y4m_path: Path, wav_path: Path) -> list[str]:
    """Chromium flags that make its fake camera and microphone (``MEDIA_ARGS`` in conftest:
    ``--use-fake-device-for-media-stream``) play these files. Both loop: without a suffix the
    wav loops too (``%noloop`` after its path would stop the sound after one pass while the
    picture goes on looping)."""
    return [
        f"--use-file-for-fake-video-capture={y4m_path}",
        f"--use-file-for-fake-audio-capture={wav_path}",
    ]


@dataclass(frozen=True, slots=True)
class AvOffset:
    """Audio minus video, in ms, of each flash paired with its beep (positive: sound late)."""

    offsets_ms: tuple[float, ...]
    flash_times: tuple[float, ...]
    beep_times: tuple[float, ...]
    paired_at: tuple[float, ...] = ()  # the flash of each offset, on the caller's clock

    @property
    def count(self) -> int:
        return len(self.offsets_ms)

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.offsets_ms) if self.offsets_ms else None

    @property
    def min_ms(self) -> float | None:
        return min(self.offsets_ms) if self.offsets_ms else None

    @property
    def max_ms(self) -> float | None:
        return max(self.offsets_ms) if self.offsets_ms else None

    def __str__(self) -> str:
        if not self.offsets_ms:
            return (
                f"no flash/beep pairs ({len(self.flash_times)} flashes, "
                f"{len(self.beep_times)} beeps)"
            )
        return (
            f"audio-video {self.median_ms:+.1f} ms median (min {self.min_ms:+.1f}, "
            f"max {self.max_ms:+.1f}) over {self.count} pairs "
            f"({len(self.flash_times)} flashes, {len(self.beep_times)} beeps)"
        )


@contextmanager
def _opened(source: MediaFile | InputContainer) -> Iterator[InputContainer]:
    if isinstance(source, InputContainer):
        yield source  # the caller's: left open
        return
    with av.open(str(source)) as container:
        yield container


def flash_times(
    source: MediaFile | InputContainer,
    *,
    stream: int = 0,
    start_s: float = 0.0,
    region: Region | None = None,
    threshold: float = LUMA_THRESHOLD,
) -> list[float]:
    """Times (seconds, ``start_s`` plus frame time) of the frames whose mean luma rises to
    ``threshold`` or above from below, in the ``stream``-th video stream, over the whole
    picture or a ``region`` of it (a participant's tile in a composite). A file that starts
    bright has no flash at its start: an edge needs a dark frame before it."""
    times: list[float] = []
    with _opened(source) as container:
        video = container.streams.video[stream]
        was_dark = False
        for frame in container.decode(video):
            if frame.time is None:
                raise ValueError(f"expected timestamped video frames in {container.name}")
            bright = _mean_luma(frame, region) >= threshold
            if bright and was_dark:
                times.append(start_s + frame.time)
            was_dark = not bright
    return times


def _mean_luma(frame: av.VideoFrame, region: Region | None) -> float:
    luma: Any  # the Y plane as it is (16..235), not rescaled to full range as "gray" would be
    if frame.format.name in ("yuv420p", "yuvj420p", "yuva420p", "yuv422p", "yuv444p"):
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        luma = rows[: frame.height, : frame.width]
    else:
        luma = frame.to_ndarray(format="gray")
    if region is not None:
        x, y, w, h = region
        luma = luma[y : y + h, x : x + w]
        if luma.size == 0:
            raise ValueError(f"expected a region inside {frame.width}x{frame.height}, got {region}")
    return float(luma.mean())


def beep_times(
    source: MediaFile | InputContainer,
    *,
    stream: int = 0,
    start_s: float = 0.0,
    threshold_dbfs: float = BEEP_THRESHOLD_DBFS,
    window_s: float = WINDOW_S,
    min_silence_s: float = MIN_SILENCE_S,
) -> list[float]:
    """Times (seconds, ``start_s`` plus sample time) at which the RMS (all channels) of the
    ``stream``-th audio stream over the last ``window_s`` reaches ``threshold_dbfs``, after at
    least ``min_silence_s`` below it. The window slides sample by sample, so a beep's onset is
    found to within a sample or two, not a window. A gap in the timestamps counts as neither
    sound nor silence: the next onset needs ``min_silence_s`` of silence heard after it."""
    threshold = 10 ** (threshold_dbfs / 20)
    times: list[float] = []
    with _opened(source) as container:
        audio = container.streams.audio[stream]
        for run_start, rate, power in _contiguous_runs(_power_blocks(container, audio)):
            window = max(1, round(window_s * rate))
            if len(power) < window:
                continue
            summed = np.concatenate(([0.0], np.cumsum(power)))
            # loud[k]: the window ending at sample k + window - 1 reaches the threshold.
            loud = np.sqrt((summed[window:] - summed[:-window]) / window) >= threshold
            needed = max(1, round(min_silence_s * rate))
            previous = -1  # the run's start: silence is counted from there
            for k in np.flatnonzero(loud).tolist():
                if k - previous - 1 >= needed:
                    times.append(start_s + run_start + (k + window - 1) / rate)
                previous = k
    return times


def _power_blocks(container: InputContainer, audio: Any) -> Iterator[tuple[float, int, Any]]:
    """(time, sample rate, per-sample power averaged over channels) of each decoded frame."""
    for frame in container.decode(audio):
        if frame.time is None:
            raise ValueError(f"expected timestamped audio frames in {container.name}")
        data = frame.to_ndarray()
        channels = frame.layout.nb_channels
        samples = (
            data.reshape(channels, -1) if frame.format.is_planar else data.reshape(-1, channels).T
        )
        if np.issubdtype(samples.dtype, np.integer):
            scaled = samples.astype(np.float64) / np.iinfo(samples.dtype).max
        else:
            scaled = samples.astype(np.float64)
        yield frame.time, frame.sample_rate, (scaled**2).mean(axis=0)


def _contiguous_runs(
    blocks: Iterator[tuple[float, int, Any]],
) -> list[tuple[float, int, Any]]:
    """Join frames that follow each other without a gap (within one window) into runs."""
    runs: list[tuple[float, int, list[Any]]] = []
    end = 0.0
    for time, rate, power in blocks:
        if runs and runs[-1][1] == rate and abs(time - end) < WINDOW_S:
            runs[-1][2].append(power)
        else:
            runs.append((time, rate, [power]))
        end = time + len(power) / rate
    return [(start, rate, np.concatenate(parts)) for start, rate, parts in runs]


def _files(media: Media) -> list[tuple[MediaFile, float]]:
    if isinstance(media, str | Path):
        return [(media, 0.0)]
    return list(media)


def av_offsets(
    video: Media,
    audio: Media | None = None,
    *,
    video_stream: int = 0,
    audio_stream: int = 0,
    region: Region | None = None,
    luma_threshold: float = LUMA_THRESHOLD,
    beep_threshold_dbfs: float = BEEP_THRESHOLD_DBFS,
    max_offset_s: float = MAX_OFFSET_S,
) -> AvOffset:
    """Pair each flash in ``video`` with the nearest beep in ``audio`` (the same files when
    ``None``: a composite) and report beep minus flash for pairs within ``max_offset_s``.

    ``video`` and ``audio`` are one file, or a list of ``(file, start_s)``: per-track segments,
    each with its start on one clock shared by both lists (seconds after any common origin,
    e.g. the recording's first segment). Frame times within a file are added to its start.
    """
    files = _files(video)
    flashes = sorted(
        t
        for path, start in files
        for t in flash_times(
            path, stream=video_stream, start_s=start, region=region, threshold=luma_threshold
        )
    )
    beeps = sorted(
        t
        for path, start in (files if audio is None else _files(audio))
        for t in beep_times(
            path, stream=audio_stream, start_s=start, threshold_dbfs=beep_threshold_dbfs
        )
    )
    offsets: list[float] = []
    paired_at: list[float] = []
    if beeps:
        for flash in flashes:
            nearest = min(beeps, key=lambda beep: abs(beep - flash))
            if abs(nearest - flash) <= max_offset_s:
                offsets.append((nearest - flash) * 1000)
                paired_at.append(flash)
    return AvOffset(
        offsets_ms=tuple(offsets),
        flash_times=tuple(flashes),
        beep_times=tuple(beeps),
        paired_at=tuple(paired_at),
    )


def offset_changes(
    measured: AvOffset, reference: AvOffset, *, max_apart_s: float = MAX_OFFSET_S
) -> tuple[float, ...]:
    """``measured``'s offset minus ``reference``'s at the same flash: each pair of ``measured``
    against the reference pair whose flash is nearest on the same clock, if within
    ``max_apart_s``. Both must be measured on one clock (the files' starts given on it).

    Pair by pair rather than median against median: the fake devices' offset wanders on a
    loaded host (Chromium paces its fake camera by a timer that runs late under load, so the
    picture slips against the sound by tens to hundreds of ms over a minute), and the
    recording must be judged against what the browser had at the same moment."""
    if not reference.paired_at:
        return ()
    changes: list[float] = []
    for at, offset in zip(measured.paired_at, measured.offsets_ms, strict=True):
        nearest = min(
            range(len(reference.paired_at)), key=lambda i: abs(reference.paired_at[i] - at)
        )
        if abs(reference.paired_at[nearest] - at) <= max_apart_s:
            changes.append(offset - reference.offsets_ms[nearest])
    return tuple(changes)
